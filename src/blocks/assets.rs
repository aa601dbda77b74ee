//! Assets block (23blocks): users with their assets, entities and ownership records.
//! Contract: `assets.md`. Paths follow the documented requests (no trailing slash).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    BlockName,
    error::{BlockError, Result},
    http::BlockHttp,
    wire::{JsonApiMany, JsonApiOne, Patch, impl_has_unique_id, lenient_i64, lenient_timestamp},
};

/// An Assets user identity.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AssetsUser {
    /// The identity's shared unique id.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Username.
    #[serde(default)]
    pub username: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Avatar image URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Number of assigned assets.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub assets_count: Option<i64>,
    /// Number of entities.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub entities_count: Option<i64>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A digital entity associated with an Assets user.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AssetsEntity {
    /// Unique id.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Type classification.
    #[serde(default)]
    pub entity_type: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// Access level (`private`, ...).
    #[serde(default)]
    pub access_level: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
}

/// An asset assigned to an Assets user.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Asset {
    /// Unique id.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Serial number.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
}

/// An ownership record of an Assets user.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OwnershipRecord {
    /// Unique id.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// The asset's unique id.
    #[serde(default)]
    pub asset_unique_id: Option<String>,
    /// The asset's name.
    #[serde(default)]
    pub asset_name: Option<String>,
    /// `assigned`, `lent` or `transferred`.
    #[serde(default)]
    pub ownership_type: Option<String>,
    /// Assignment time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
}

impl_has_unique_id!(AssetsUser, AssetsEntity, Asset, OwnershipRecord);

/// Body of register and update (inside `{"user": ...}`); `Patch::Clear` sends null.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AssetsUserFields {
    /// Email (required to register).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Username.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub username: Patch<String>,
    /// Display name.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub display_name: Patch<String>,
    /// Avatar image URL (update only).
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub avatar_url: Patch<String>,
}

/// How many further pages of a paged users list are read at once.
const LIST_PAGE_CONCURRENCY: usize = 4;

/// Typed client of the Assets block.
#[derive(Clone)]
pub struct AssetsClient {
    http: BlockHttp,
}

impl AssetsClient {
    /// Wraps the shared HTTP core bound to Assets.
    pub fn new(http: BlockHttp) -> Self {
        Self { http }
    }

    /// The HTTP core.
    pub fn http(&self) -> &BlockHttp {
        &self.http
    }

    /// `GET /users`: the whole list. The contract documents no pagination, so one answer is
    /// the list. An answer whose `meta` reports more pages (a deployment that pages anyway,
    /// as the 23blocks SDK's `PageResult` hints) is read to the end with `page`; a list that
    /// still falls short of the `meta.totalRecords` it reports is an error, never a shorter
    /// list.
    pub async fn list_users(&self) -> Result<Vec<AssetsUser>> {
        let first = self.users_page(None).await?;
        let meta = first.meta.clone().unwrap_or_default();
        let mut users = first.into_items();
        let pages = meta.total_pages.unwrap_or(1);
        if pages > 1 {
            let rest: Vec<Vec<AssetsUser>> = stream::iter(2..=pages)
                .map(|page| async move { Ok::<_, BlockError>(self.users_page(Some(page)).await?.into_items()) })
                .buffered(LIST_PAGE_CONCURRENCY)
                .try_collect()
                .await?;
            users.extend(rest.into_iter().flatten());
        }
        if let Some(total) = meta.total_records {
            // Distinct ids: a block that ignores `page` serves the first page again.
            let read = users
                .iter()
                .filter_map(|u| u.unique_id.as_deref())
                .collect::<HashSet<_>>()
                .len() as u64;
            if read < total {
                return Err(BlockError::Incomplete {
                    block: BlockName::Assets,
                    read,
                    total,
                });
            }
        }
        Ok(users)
    }

    async fn users_page(&self, page: Option<u64>) -> Result<JsonApiMany<AssetsUser>> {
        let mut url = self.http.url(&["users"])?;
        if let Some(page) = page {
            url.query_pairs_mut().append_pair("page", &page.to_string());
        }
        self.http.get_json("GET /users", url).await
    }

    /// `GET /users/{id}`; `None` on 404.
    pub async fn get_user(&self, unique_id: &str) -> Result<Option<AssetsUser>> {
        let url = self.http.url(&["users", unique_id])?;
        let one: Option<JsonApiOne<AssetsUser>> = self.http.get_optional("GET /users/{id}", url).await?;
        Ok(one.map(|doc| doc.data.into_attributes()))
    }

    /// `GET /users/{id}/entities`; `None` when the user is unknown.
    pub async fn user_entities(&self, unique_id: &str) -> Result<Option<Vec<AssetsEntity>>> {
        let url = self.http.url(&["users", unique_id, "entities"])?;
        let list: Option<JsonApiMany<AssetsEntity>> = self.http.get_optional("GET /users/{id}/entities", url).await?;
        Ok(list.map(JsonApiMany::into_items))
    }

    /// `GET /users/{id}/assets`; `None` when the user is unknown.
    pub async fn user_assets(&self, unique_id: &str) -> Result<Option<Vec<Asset>>> {
        let url = self.http.url(&["users", unique_id, "assets"])?;
        let list: Option<JsonApiMany<Asset>> = self.http.get_optional("GET /users/{id}/assets", url).await?;
        Ok(list.map(JsonApiMany::into_items))
    }

    /// `GET /users/{id}/ownership`; `None` when the user is unknown.
    pub async fn user_ownership(&self, unique_id: &str) -> Result<Option<Vec<OwnershipRecord>>> {
        let url = self.http.url(&["users", unique_id, "ownership"])?;
        let list: Option<JsonApiMany<OwnershipRecord>> =
            self.http.get_optional("GET /users/{id}/ownership", url).await?;
        Ok(list.map(JsonApiMany::into_items))
    }

    /// `POST /users/{id}/register`.
    pub async fn register_user(&self, unique_id: &str, user: &AssetsUserFields) -> Result<AssetsUser> {
        let url = self.http.url(&["users", unique_id, "register"])?;
        let body = json!({ "user": user });
        let one: JsonApiOne<AssetsUser> = self
            .http
            .write_json(Method::POST, "POST /users/{id}/register", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }

    /// `PUT /users/{id}`; the answer may carry only the changed attributes.
    pub async fn update_user(&self, unique_id: &str, user: &AssetsUserFields) -> Result<AssetsUser> {
        let url = self.http.url(&["users", unique_id])?;
        let body = json!({ "user": user });
        let one: JsonApiOne<AssetsUser> = self
            .http
            .write_json(Method::PUT, "PUT /users/{id}", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }
}
