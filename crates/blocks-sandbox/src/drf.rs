//! Django REST framework behaviour the B2B and CRM blocks share: field validation with
//! DRF's own messages, django-filter query parsing, and page-number pagination.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::respond::{Params, Reject, drf_detail, json_response};

/// DRF's message for a missing required field.
pub(crate) const REQUIRED: &str = "This field is required.";
const NOT_NULL: &str = "This field may not be null.";

/// A 400 carrying a DRF error map (`{"field": ["message"]}`).
pub(crate) fn field_errors(errors: Map<String, Value>) -> Response {
    json_response(StatusCode::BAD_REQUEST, Value::Object(errors))
}

/// A 400 for a single field.
pub(crate) fn field_error(field: &str, message: &str) -> Response {
    let mut errors = Map::new();
    errors.insert(field.to_owned(), json!([message]));
    field_errors(errors)
}

/// Python's name for a JSON value's type, as DRF messages print it.
fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Rules of a DRF `CharField`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Text {
    /// Whether the field must be present.
    pub(crate) required: bool,
    /// Whether `""` is accepted.
    pub(crate) allow_blank: bool,
    /// Longest accepted value, in characters.
    pub(crate) max_length: usize,
}

/// Reads a request body field by field, collecting every error before answering, as a
/// DRF serializer does.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    data: &'a Map<String, Value>,
    errors: Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Starts reading `body`, which must be a JSON object.
    pub(crate) fn new(body: &'a Value) -> Result<Self, Reject> {
        match body {
            Value::Object(data) => Ok(Self {
                data,
                errors: Map::new(),
            }),
            other => {
                let message = format!("Invalid data. Expected a dictionary, but got {}.", python_type(other));
                Err(field_error("non_field_errors", &message).into())
            }
        }
    }

    /// Adds an error message to `field`.
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self
            .errors
            .entry(field.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(messages) = entry {
            messages.push(Value::String(message.into()));
        }
    }

    /// The raw value of `field`; a missing required field is an error.
    fn raw(&mut self, field: &str, required: bool) -> Option<&'a Value> {
        let value = self.data.get(field);
        if value.is_none() && required {
            self.add(field, REQUIRED);
        }
        value
    }

    /// A `CharField` (trimmed, as DRF does by default).
    pub(crate) fn text(&mut self, field: &str, rule: Text) -> Option<String> {
        let text = match self.raw(field, rule.required)? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Null => return self.fail(field, NOT_NULL),
            _ => return self.fail(field, "Not a valid string."),
        };
        if text.is_empty() && !rule.allow_blank {
            return self.fail(field, "This field may not be blank.");
        }
        if text.chars().count() > rule.max_length {
            let message = format!("Ensure this field has no more than {} characters.", rule.max_length);
            return self.fail(field, message);
        }
        Some(text)
    }

    /// An `EmailField`: a `CharField` whose non-blank value must look like an address.
    pub(crate) fn email(&mut self, field: &str, rule: Text) -> Option<String> {
        let email = self.text(field, rule)?;
        if !email.is_empty() && !looks_like_email(&email) {
            return self.fail(field, "Enter a valid email address.");
        }
        Some(email)
    }

    /// An `IntegerField`; the inner `None` is an accepted `null`.
    pub(crate) fn integer(&mut self, field: &str, required: bool, nullable: bool) -> Option<Option<i64>> {
        let parsed = match self.raw(field, required)? {
            Value::Null if nullable => return Some(None),
            Value::Null => return self.fail(field, NOT_NULL),
            value => integer(value),
        };
        match parsed {
            Some(n) => Some(Some(n)),
            None => self.fail(field, "A valid integer is required."),
        }
    }

    /// A `BooleanField` (JSON booleans and DRF's textual spellings).
    pub(crate) fn boolean(&mut self, field: &str) -> Option<bool> {
        let parsed = match self.raw(field, false)? {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Value::String(s) => parse_bool(s),
            _ => None,
        };
        match parsed {
            Some(b) => Some(b),
            None => self.fail(field, "Must be a valid boolean."),
        }
    }

    /// A `JSONField`: any value, `null` included.
    pub(crate) fn any(&mut self, field: &str) -> Option<Value> {
        self.raw(field, false).cloned()
    }

    /// A `DictField`.
    pub(crate) fn dict(&mut self, field: &str) -> Option<Map<String, Value>> {
        match self.raw(field, false)? {
            Value::Object(map) => Some(map.clone()),
            other => {
                let message = format!(
                    "Expected a dictionary of items but got type \"{}\".",
                    python_type(other)
                );
                self.fail(field, message)
            }
        }
    }

    /// A `ChoiceField` over `choices`.
    pub(crate) fn choice(
        &mut self,
        field: &str,
        required: bool,
        choices: &'static [&'static str],
    ) -> Option<&'static str> {
        let value = self.raw(field, required)?;
        let text = match value {
            Value::Null => return self.fail(field, NOT_NULL),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match choices.iter().find(|choice| **choice == text) {
            Some(choice) => Some(choice),
            None => self.fail(field, format!("\"{text}\" is not a valid choice.")),
        }
    }

    /// A serializer `UUIDField`.
    pub(crate) fn uuid(&mut self, field: &str, required: bool) -> Option<Uuid> {
        match self.raw(field, required)? {
            Value::String(s) => match Uuid::parse_str(s.trim()) {
                Ok(id) => Some(id),
                Err(_) => self.fail(field, "Must be a valid UUID."),
            },
            Value::Null => self.fail(field, NOT_NULL),
            _ => self.fail(field, "Must be a valid UUID."),
        }
    }

    /// A non-empty `ListField(child=UUIDField())`; bad items are reported by index.
    pub(crate) fn uuid_list(&mut self, field: &str, required: bool) -> Option<Vec<Uuid>> {
        let items = match self.raw(field, required)? {
            Value::Array(items) => items,
            Value::Null => return self.fail(field, NOT_NULL),
            other => {
                let message = format!("Expected a list of items but got type \"{}\".", python_type(other));
                return self.fail(field, message);
            }
        };
        if items.is_empty() {
            return self.fail(field, "This list may not be empty.");
        }
        let mut ids = Vec::with_capacity(items.len());
        let mut bad = Map::new();
        for (index, item) in items.iter().enumerate() {
            match item.as_str().and_then(|s| Uuid::parse_str(s.trim()).ok()) {
                Some(id) => ids.push(id),
                None => {
                    bad.insert(index.to_string(), json!(["Must be a valid UUID."]));
                }
            }
        }
        if bad.is_empty() {
            Some(ids)
        } else {
            self.errors.insert(field.to_owned(), Value::Object(bad));
            None
        }
    }

    /// A nullable `PrimaryKeyRelatedField` to a UUID-keyed model; the caller checks that
    /// the target exists. The inner `None` is an accepted `null`.
    pub(crate) fn related_uuid(&mut self, field: &str) -> Option<Option<Uuid>> {
        let text = match self.raw(field, false)? {
            Value::Null => return Some(None),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match Uuid::parse_str(text.trim()) {
            Ok(id) => Some(Some(id)),
            Err(_) => self.fail(field, format!("\u{201c}{text}\u{201d} is not a valid UUID.")),
        }
    }

    /// Records `message` for `field` and yields nothing, so readers can `return self.fail(..)`.
    fn fail<T>(&mut self, field: &str, message: impl Into<String>) -> Option<T> {
        self.add(field, message);
        None
    }

    /// `Ok` when every field passed, else the 400 with all the errors.
    pub(crate) fn finish(self) -> Result<(), Reject> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(field_errors(self.errors).into())
        }
    }
}

/// An integer from a JSON number (integral) or a numeric string.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// DRF's and django-filter's accepted boolean spellings.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Django's email check, reduced to its shape: one `@`, a non-empty local part and a
/// dotted domain, no spaces.
pub(crate) fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !email.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// A django-filter `NumberFilter` value; errors read "Enter a number.".
pub(crate) fn number_filter(params: &Params, name: &str, errors: &mut Map<String, Value>) -> Option<f64> {
    let text = params.filter(name)?;
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Some(n),
        _ => {
            errors.insert(name.to_owned(), json!(["Enter a number."]));
            None
        }
    }
}

/// The django-filter message for a value outside a choice list.
pub(crate) fn invalid_choice(value: &str) -> Value {
    json!([format!(
        "Select a valid choice. {value} is not one of the available choices."
    )])
}

/// How a block paginates: which parameter sets the page size, its default and cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageRules {
    /// The page size parameter (`page_size`, `limit`).
    pub(crate) size_param: &'static str,
    /// Size when none (or an invalid one) is asked for.
    pub(crate) default_size: usize,
    /// Largest size served.
    pub(crate) max_size: usize,
    /// Whether `next`/`previous` always spell the size out (the B2B block's links do).
    pub(crate) size_in_links: bool,
}

/// The records a list answers: every record of a store, or those a filter keeps. Neither
/// copies the store: a page of the whole store is a slice of it, a filtered page is found
/// by scanning.
pub(crate) struct Listed<'a, T> {
    items: &'a [T],
    keep: Option<&'a dyn Fn(&T) -> bool>,
}

impl<'a, T> Listed<'a, T> {
    /// Every record.
    pub(crate) fn all(items: &'a [T]) -> Self {
        Self { items, keep: None }
    }

    /// The records `keep` accepts, in store order.
    pub(crate) fn filtered(items: &'a [T], keep: &'a dyn Fn(&T) -> bool) -> Self {
        Self {
            items,
            keep: Some(keep),
        }
    }

    fn count(&self) -> usize {
        match self.keep {
            None => self.items.len(),
            Some(keep) => self.items.iter().filter(|item| keep(item)).count(),
        }
    }

    /// The `len` listed records from the `start`-th on, rendered.
    fn page(&self, start: usize, len: usize, render: impl Fn(&T) -> Value) -> Vec<Value> {
        match self.keep {
            None => {
                let end = start.saturating_add(len).min(self.items.len());
                self.items[start.min(end)..end].iter().map(render).collect()
            }
            Some(keep) => self
                .items
                .iter()
                .filter(|item| keep(item))
                .skip(start)
                .take(len)
                .map(render)
                .collect(),
        }
    }
}

/// Whether `text` contains `wanted` (already lower case) in any case, as django-filter's
/// `icontains` does; ASCII text is compared without allocating.
pub(crate) fn contains_ignoring_case(text: &str, wanted: &str) -> bool {
    if text.is_ascii() && wanted.is_ascii() {
        let (text, wanted) = (text.as_bytes(), wanted.as_bytes());
        wanted.is_empty()
            || text
                .windows(wanted.len())
                .any(|window| window.eq_ignore_ascii_case(wanted))
    } else {
        text.to_lowercase().contains(wanted)
    }
}

/// DRF page-number pagination: `{"count","next","previous","results"}` with absolute
/// links, 404 `Invalid page.` for a page that does not exist.
pub(crate) fn paginate<T>(
    listed: Listed<'_, T>,
    render: impl Fn(&T) -> Value,
    params: &Params,
    base_url: &str,
    rules: PageRules,
) -> Response {
    let size = params
        .get(rules.size_param)
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map_or(rules.default_size, |n| n.min(rules.max_size));
    let count = listed.count();
    let pages = count.div_ceil(size).max(1);
    let page = match params.get("page").map(str::trim) {
        None => 1,
        Some("last") => pages,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=pages).contains(&n) => n,
            _ => return drf_detail(StatusCode::NOT_FOUND, "Invalid page."),
        },
    };
    let forced: Vec<(&str, String)> = if rules.size_in_links {
        vec![(rules.size_param, size.to_string())]
    } else {
        Vec::new()
    };
    let link = |target: usize| Value::String(params.page_link(base_url, target as u64, &forced));
    let next = if page < pages { link(page + 1) } else { Value::Null };
    let previous = if page > 1 { link(page - 1) } else { Value::Null };
    let results = listed.page((page - 1) * size, size, render);
    json_response(
        StatusCode::OK,
        json!({
            "count": count,
            "next": next,
            "previous": previous,
            "results": results,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::{contains_ignoring_case, looks_like_email};

    #[test]
    fn email_shape() {
        assert!(looks_like_email("First.Last.3@Example.com"));
        assert!(!looks_like_email("no-at-sign"));
        assert!(!looks_like_email("a@localhost"));
        assert!(!looks_like_email("a b@example.com"));
    }

    #[test]
    fn contains_ignores_case_in_ascii_and_beyond() {
        assert!(contains_ignoring_case("JoAnn@Large.Example", "ann@large.example"));
        assert!(contains_ignoring_case("Ann@Large.example", "ann@large.example"));
        assert!(!contains_ignoring_case("Ann@Large.example", "jann@large.example"));
        assert!(contains_ignoring_case("anything", ""));
        assert!(contains_ignoring_case("Zo\u{eb}.\u{c9}mile@Example.com", "\u{e9}mile"));
        assert!(!contains_ignoring_case("ann", "anna"));
    }
}
