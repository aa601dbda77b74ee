//! Wire shapes shared by several blocks: the JSON:API envelope of the 23blocks blocks,
//! the DRF page of B2B and the CRM, and tolerant field decoders. Upstream answers are
//! partial at times, so every attribute is optional and unknown fields are ignored.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};
use serde_json::Value;

/// One field of a partial write (PATCH or a Rails update): left as the block holds it, set,
/// or cleared with an explicit JSON `null`. Skip `Keep` with
/// `#[serde(skip_serializing_if = "Patch::is_keep")]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Patch<T> {
    /// Not sent: the block keeps its value.
    #[default]
    Keep,
    /// Sent as `null`: the block clears its value.
    Clear,
    /// Sent as this value.
    Set(T),
}

impl<T> Patch<T> {
    /// Whether the field is left out of the body.
    pub fn is_keep(&self) -> bool {
        matches!(self, Self::Keep)
    }

    /// `Set` for a value, `Keep` for none (a create, or an update that leaves it alone).
    pub fn set_or_keep(value: Option<T>) -> Self {
        value.map_or(Self::Keep, Self::Set)
    }

    /// The same patch with the value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Self::Keep => Patch::Keep,
            Self::Clear => Patch::Clear,
            Self::Set(value) => Patch::Set(f(value)),
        }
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // `Keep` is skipped by the containing struct; written alone it reads as absent.
            Self::Keep | Self::Clear => serializer.serialize_none(),
            Self::Set(value) => value.serialize(serializer),
        }
    }
}

/// One page of a list, whatever the block's pagination style.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page, in the block's order.
    pub items: Vec<T>,
    /// Total number of items across all pages, when the block reports it.
    pub total: Option<u64>,
    /// Whether a later page exists, when the block tells.
    pub has_next: Option<bool>,
}

/// A JSON:API resource object: `{"id", "type", "attributes"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource<A> {
    /// The resource id (the same value as `attributes.unique_id` in these blocks).
    #[serde(default)]
    pub id: Option<String>,
    /// The attributes.
    pub attributes: A,
}

/// Attributes that carry a `unique_id`, so the resource id can stand in for a missing one.
pub trait HasUniqueId {
    /// The attribute slot for the unique id.
    fn unique_id_mut(&mut self) -> &mut Option<String>;
}

impl<A: HasUniqueId> Resource<A> {
    /// The attributes, with `unique_id` taken from the resource id when the attributes omit it.
    pub fn into_attributes(self) -> A {
        let mut attributes = self.attributes;
        let slot = attributes.unique_id_mut();
        if slot.is_none() {
            *slot = self.id;
        }
        attributes
    }
}

/// Implements [`HasUniqueId`] for attribute structs with a `unique_id: Option<String>` field.
macro_rules! impl_has_unique_id {
    ($($ty:ty),*) => {$(
        impl $crate::blocks::wire::HasUniqueId for $ty {
            fn unique_id_mut(&mut self) -> &mut Option<String> {
                &mut self.unique_id
            }
        }
    )*};
}
pub(crate) use impl_has_unique_id;

/// `{"data": resource}`.
#[derive(Debug, Clone, Deserialize)]
pub struct JsonApiOne<A> {
    /// The resource.
    pub data: Resource<A>,
}

/// `{"data": [resource], "meta": {"totalPages", "totalRecords"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct JsonApiMany<A> {
    /// The resources.
    #[serde(default = "Vec::new")]
    pub data: Vec<Resource<A>>,
    /// Pagination metadata, when the endpoint paginates.
    #[serde(default)]
    pub meta: Option<JsonApiMeta>,
}

/// JSON:API pagination metadata of the 23blocks blocks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonApiMeta {
    /// Number of pages at the requested page size.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_pages: Option<u64>,
    /// Number of records in all pages.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_records: Option<u64>,
}

impl<A: HasUniqueId> JsonApiMany<A> {
    /// The attributes of every resource, with page facts for page number `page`.
    pub fn into_page(self, page: u32) -> Page<A> {
        let meta = self.meta.unwrap_or_default();
        Page {
            items: self.data.into_iter().map(Resource::into_attributes).collect(),
            total: meta.total_records,
            has_next: meta.total_pages.map(|pages| u64::from(page) < pages),
        }
    }

    /// The attributes of every resource (unpaginated lists).
    pub fn into_items(self) -> Vec<A> {
        self.data.into_iter().map(Resource::into_attributes).collect()
    }
}

/// The DRF page: `{"count", "next", "previous", "results"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct DrfPage<T> {
    /// Total count across pages.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub count: Option<u64>,
    /// URL of the next page, null on the last.
    #[serde(default)]
    pub next: Option<String>,
    /// The items.
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
}

impl<T> From<DrfPage<T>> for Page<T> {
    fn from(page: DrfPage<T>) -> Self {
        Page {
            items: page.results,
            total: page.count,
            has_next: Some(page.next.is_some()),
        }
    }
}

/// Reads a timestamp in RFC 3339, or the common `YYYY-MM-DD HH:MM:SS[.f]` form as UTC.
/// Anything else reads as absent (and is logged) rather than failing the whole record.
pub fn lenient_timestamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    Ok(parse_timestamp(&text))
}

/// Parses the timestamp forms the blocks are known to send.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    tracing::warn!(value = text, "unreadable upstream timestamp ignored");
    None
}

/// Reads a number sent either as a JSON number or as a string (Rails sends decimals as
/// strings).
pub fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    })
}

/// Reads an integer sent as a number or a numeric string.
pub fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(number)) => number.as_i64().or_else(|| number.as_f64().map(|f| f as i64)),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    })
}

/// Reads a non-negative integer sent as a number or a numeric string.
pub fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(lenient_i64(deserializer)?.and_then(|n| u64::try_from(n).ok()))
}

/// Decodes a JSON value into a wire model (used for bodies carried inside errors).
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Option<T> {
    serde_json::from_value(value.clone()).ok()
}
