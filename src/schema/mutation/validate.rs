//! Input checks run before any upstream call; each failure names the input field. Fields
//! of update inputs tell an absent value (leave it) from `null` (clear it, or a user error
//! where the block cannot hold none).

use async_graphql::MaybeUndefined;

use super::outcome::UserError;
use crate::{
    blocks::wire::Patch,
    schema::{crm::parse_uuid, query::identity_id},
};

/// An update's field as the write sends it: absent leaves the block's value, `null` clears
/// it (an explicit JSON null).
pub fn patch<T>(value: MaybeUndefined<T>) -> Patch<T> {
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(value) => Patch::Set(value),
    }
}

/// An update's text field whose "none" is the empty text in the block (no null there):
/// absent is `None`, `null` is `""`.
pub fn blank_when_null(value: MaybeUndefined<String>) -> Option<String> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(String::new()),
        MaybeUndefined::Value(value) => Some(value),
    }
}

/// Longest email accepted (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

/// Collects user errors while checking an input.
#[derive(Default)]
pub struct Checks {
    errors: Vec<UserError>,
}

impl Checks {
    /// Records an error.
    pub fn fail(&mut self, error: UserError) {
        self.errors.push(error);
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors found.
    pub fn into_errors(self) -> Vec<UserError> {
        self.errors
    }

    /// A required, plausible email (one `@`, a dotted domain, no spaces), trimmed.
    pub fn email(&mut self, field: &[&str], email: &str) -> Option<String> {
        let email = email.trim();
        let plausible = email.len() <= MAX_EMAIL_LEN
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if plausible {
            Some(email.to_owned())
        } else {
            self.fail(UserError::bad_input(
                field,
                format!("{email:?} is not a valid email address"),
            ));
            None
        }
    }

    /// A CRM UUID in canonical form.
    pub fn uuid(&mut self, field: &[&str], id: &str) -> Option<String> {
        match parse_uuid(id, &field.join(".")) {
            Ok(id) => Some(id),
            Err(error) => {
                self.fail(UserError::bad_input(field, error.to_string()));
                None
            }
        }
    }

    /// A 23blocks identity id.
    pub fn identity_id(&mut self, field: &[&str], id: &str) -> Option<String> {
        match identity_id(id) {
            Ok(id) => Some(id),
            Err(error) => {
                self.fail(UserError::bad_input(field, error.to_string()));
                None
            }
        }
    }

    /// A text no longer than `max` characters, when given.
    pub fn bounded(&mut self, field: &[&str], text: Option<&str>, max: usize) {
        if let Some(text) = text
            && text.chars().count() > max
        {
            self.fail(UserError::bad_input(field, format!("must be at most {max} characters")));
        }
    }

    /// An update's field the block cannot hold without: its value when given, `None` when
    /// absent; `null` fails, saying `why`.
    pub fn not_cleared<T: Clone>(&mut self, field: &[&str], value: &MaybeUndefined<T>, why: &str) -> Option<T> {
        match value {
            MaybeUndefined::Value(value) => Some(value.clone()),
            MaybeUndefined::Null => {
                self.fail(UserError::bad_input(field, format!("cannot be cleared: {why}")));
                None
            }
            MaybeUndefined::Undefined => None,
        }
    }

    /// A positive id.
    pub fn positive(&mut self, field: &[&str], value: i64) {
        if value <= 0 {
            self.fail(UserError::bad_input(
                field,
                format!("must be a positive integer, got {value}"),
            ));
        }
    }
}
