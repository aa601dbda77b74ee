//! The 23blocks Rails services (Sales, Search, Assets) all behave alike: JSON:API
//! documents, records keyed by `unique_id`, `register` under a body root key, updates
//! answering only what changed, Rails-worded validation errors. Written once here; each
//! block only describes its record kinds.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::respond::{
    Params, Reject, json_api_error, json_api_error_object, json_api_errors, json_response, now, rails_time,
};

/// A record's attributes, exactly as they appear in a detail answer.
pub(crate) type Attributes = Map<String, Value>;

/// How a block reports a `register` for an id it already knows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Taken {
    /// Rails uniqueness validation: 422 "Unique has already been taken".
    Unprocessable,
    /// An explicit 409 (the Search block).
    Conflict,
}

/// One kind of 23blocks record and how it appears on the wire.
#[derive(Debug)]
pub(crate) struct Kind {
    /// The JSON:API `type` ("user", "user_identity", ...).
    pub(crate) json_type: &'static str,
    /// The body's root key for register and update (`{"user": {...}}`).
    pub(crate) body_root: &'static str,
    /// Human name for error titles ("User", "Identity").
    pub(crate) label: &'static str,
    /// The attribute that may not be blank.
    pub(crate) required: &'static str,
    /// Attributes `register` accepts.
    pub(crate) registrable: &'static [&'static str],
    /// Attributes an update accepts.
    pub(crate) updatable: &'static [&'static str],
    /// Attributes list items carry (`None`: all of them).
    pub(crate) list_attributes: Option<&'static [&'static str]>,
    /// Attributes the 201 of `register` carries, besides the ones the caller supplied.
    pub(crate) created_attributes: &'static [&'static str],
    /// Server-side defaults a new record starts with (status, counters, ...), given its id.
    pub(crate) defaults: fn(&str, &mut Attributes),
    /// Whether the model has `updated_at` (the Sales entity and customer models do not).
    pub(crate) has_updated_at: bool,
    /// How an already registered id is refused.
    pub(crate) taken: Taken,
}

/// Records of one kind in insertion order, indexed by `unique_id`.
#[derive(Debug, Default)]
pub(crate) struct Store {
    rows: Vec<Attributes>,
    index: HashMap<String, usize>,
}

impl Store {
    /// Adds (or replaces) the record whose `unique_id` attribute is `id`.
    pub(crate) fn insert(&mut self, id: String, attributes: Attributes) {
        match self.index.get(&id) {
            Some(&at) => self.rows[at] = attributes,
            None => {
                self.index.insert(id, self.rows.len());
                self.rows.push(attributes);
            }
        }
    }

    /// The record with this id.
    pub(crate) fn get(&self, id: &str) -> Option<&Attributes> {
        self.index.get(id).map(|&at| &self.rows[at])
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Attributes> {
        self.index.get(id).map(|&at| &mut self.rows[at])
    }

    /// Whether a record with this id exists.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    /// Every record, in insertion order.
    #[cfg(test)]
    pub(crate) fn rows(&self) -> &[Attributes] {
        &self.rows
    }
}

/// A JSON:API resource object.
pub(crate) fn resource(json_type: &str, id: &str, attributes: Attributes) -> Value {
    json!({ "id": id, "type": json_type, "attributes": attributes })
}

/// Only the named attributes of a record (missing ones are skipped, not invented).
fn pick(attributes: &Attributes, names: &[&str]) -> Attributes {
    names
        .iter()
        .filter_map(|name| attributes.get(*name).map(|v| ((*name).to_owned(), v.clone())))
        .collect()
}

/// The kind's JSON:API 404 ("User Not Found").
pub(crate) fn not_found(kind: &Kind) -> Response {
    json_api_error(
        StatusCode::NOT_FOUND,
        &format!("{} Not Found", kind.label),
        &format!("The requested {} could not be found.", kind.label.to_lowercase()),
    )
}

/// `GET /<kind>/{id}`: every attribute, or 404.
pub(crate) fn show(kind: &Kind, store: &Store, id: &str) -> Response {
    match store.get(id) {
        Some(attributes) => json_response(
            StatusCode::OK,
            json!({ "data": resource(kind.json_type, id, attributes.clone()) }),
        ),
        None => not_found(kind),
    }
}

/// The list items of a kind, each reduced to the list attributes.
fn list_items<'a>(kind: &'a Kind, rows: &'a [Attributes]) -> impl Iterator<Item = Value> + 'a {
    rows.iter().map(move |attributes| {
        let id = attributes.get("unique_id").and_then(Value::as_str).unwrap_or_default();
        let shown = match kind.list_attributes {
            Some(names) => pick(attributes, names),
            None => attributes.clone(),
        };
        resource(kind.json_type, id, shown)
    })
}

/// A list without pagination (the Assets block documents none): `{"data": [...]}`.
pub(crate) fn list_all(kind: &Kind, store: &Store) -> Response {
    let data: Vec<Value> = list_items(kind, &store.rows).collect();
    json_response(StatusCode::OK, json!({ "data": data }))
}

/// A Kaminari-style page: `page` (default 1) and `records` (default 15, at most 100);
/// odd values fall back to the defaults the way Rails' `to_i` would.
pub(crate) fn list_page(kind: &Kind, store: &Store, params: &Params) -> Response {
    let page = positive(params.get("page")).unwrap_or(1);
    let records = positive(params.get("records")).unwrap_or(15).min(100);
    let total = store.len();
    let start = (page - 1).saturating_mul(records).min(total);
    let end = start.saturating_add(records).min(total);
    let data: Vec<Value> = list_items(kind, &store.rows[start..end]).collect();
    json_response(
        StatusCode::OK,
        json!({
            "data": data,
            "meta": { "totalPages": total.div_ceil(records), "totalRecords": total },
        }),
    )
}

fn positive(value: Option<&str>) -> Option<usize> {
    value.and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0)
}

/// The object under the body's root key, or Rails' `ParameterMissing` (400).
fn body_root<'a>(kind: &Kind, body: &'a Value) -> Result<&'a Map<String, Value>, Reject> {
    body.get(kind.body_root).and_then(Value::as_object).ok_or_else(|| {
        json_api_error(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            &format!("param is missing or the value is empty: {}", kind.body_root),
        )
        .into()
    })
}

/// The permitted attributes the caller supplied (strong parameters: others are dropped),
/// scalars coerced to strings as Rails does for string columns.
fn permitted(root: &Map<String, Value>, allowed: &[&str], errors: &mut Vec<Value>) -> Attributes {
    let mut supplied = Attributes::new();
    for name in allowed {
        let Some(value) = root.get(*name) else {
            continue;
        };
        let value = match value {
            Value::Null | Value::String(_) => value.clone(),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Array(_) | Value::Object(_) => {
                errors.push(validation_error(name, "is invalid"));
                continue;
            }
        };
        supplied.insert((*name).to_owned(), value);
    }
    supplied
}

/// Rails' `humanize`: `first_name` -> "First name", `unique_id` -> "Unique".
fn humanize(attribute: &str) -> String {
    let base = attribute.strip_suffix("_id").unwrap_or(attribute).replace('_', " ");
    let mut chars = base.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One failed validation as a JSON:API error (Rails full message, pointer to the attribute).
fn validation_error(attribute: &str, message: &str) -> Value {
    let mut error = json_api_error_object(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Validation Failed",
        &format!("{} {message}", humanize(attribute)),
    );
    error["source"] = json!({ "pointer": format!("/data/attributes/{attribute}") });
    error
}

fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    }
}

/// `POST /<kind>/{id}/register`: 201 with the new record, or the block's refusal.
pub(crate) fn register(kind: &Kind, store: &mut Store, id: &str, body: &Value) -> Response {
    let root = match body_root(kind, body) {
        Ok(root) => root,
        Err(reject) => return reject.into_response(),
    };
    if store.contains(id) && matches!(kind.taken, Taken::Conflict) {
        return json_api_error(
            StatusCode::CONFLICT,
            &format!("{} Already Registered", kind.label),
            &format!("{} has already been registered.", kind.label),
        );
    }
    let mut errors = Vec::new();
    let supplied = permitted(root, kind.registrable, &mut errors);
    if store.contains(id) {
        errors.push(validation_error("unique_id", "has already been taken"));
    }
    if is_blank(supplied.get(kind.required)) {
        errors.push(validation_error(kind.required, "can't be blank"));
    }
    if !errors.is_empty() {
        return json_api_errors(StatusCode::UNPROCESSABLE_ENTITY, errors);
    }

    let mut record = Attributes::new();
    for name in kind.registrable {
        record.insert((*name).to_owned(), Value::Null);
    }
    record.extend(supplied.clone());
    (kind.defaults)(id, &mut record);
    let stamp = Value::String(rails_time(now()));
    record.insert("unique_id".to_owned(), Value::String(id.to_owned()));
    record.insert("created_at".to_owned(), stamp.clone());
    if kind.has_updated_at {
        record.insert("updated_at".to_owned(), stamp);
    }

    let mut answer = pick(&record, kind.created_attributes);
    answer.extend(supplied);
    store.insert(id.to_owned(), record);
    json_response(
        StatusCode::CREATED,
        json!({ "data": resource(kind.json_type, id, answer) }),
    )
}

/// `PUT /<kind>/{id}`: applies the permitted attributes and answers only `unique_id`,
/// the attributes that were written, and `updated_at` (as the real blocks do).
pub(crate) fn update(kind: &Kind, store: &mut Store, id: &str, body: &Value) -> Response {
    let Some(record) = store.get_mut(id) else {
        return not_found(kind);
    };
    let root = match body_root(kind, body) {
        Ok(root) => root,
        Err(reject) => return reject.into_response(),
    };
    let mut errors = Vec::new();
    let supplied = permitted(root, kind.updatable, &mut errors);
    if supplied.contains_key(kind.required) && is_blank(supplied.get(kind.required)) {
        errors.push(validation_error(kind.required, "can't be blank"));
    }
    if !errors.is_empty() {
        return json_api_errors(StatusCode::UNPROCESSABLE_ENTITY, errors);
    }

    let stamp = Value::String(rails_time(now()));
    record.extend(supplied.clone());
    record.insert("updated_at".to_owned(), stamp.clone());

    let mut answer = Attributes::new();
    answer.insert("unique_id".to_owned(), Value::String(id.to_owned()));
    answer.extend(supplied);
    answer.insert("updated_at".to_owned(), stamp);
    json_response(StatusCode::OK, json!({ "data": resource(kind.json_type, id, answer) }))
}

#[cfg(test)]
mod tests {
    use super::humanize;

    #[test]
    fn humanize_follows_rails() {
        assert_eq!(humanize("unique_id"), "Unique");
        assert_eq!(humanize("email"), "Email");
        assert_eq!(humanize("first_name"), "First name");
    }
}
