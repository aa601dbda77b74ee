//! The payload vocabulary every mutation shares: user errors (expected failures, with the
//! input field they concern) and per-block outcomes.

use async_graphql::{Enum, SimpleObject};

use super::super::identity::Block;
use crate::{blocks::BlockError, error_code::ErrorCode};

/// An expected failure: bad input, a conflict, a refusal by a block.
#[derive(SimpleObject, Debug, Clone)]
pub struct UserError {
    /// Path to the input field concerned (`["input", "email"]`), when one is.
    pub field: Option<Vec<String>>,
    /// Machine-readable code (`BAD_USER_INPUT`, `CONFLICT`, `NOT_FOUND`, ...).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl UserError {
    /// A user error about `field` (a path below `input`).
    pub fn new(field: &[&str], code: &str, message: impl Into<String>) -> Self {
        let field = (!field.is_empty()).then(|| field.iter().map(|part| (*part).to_owned()).collect());
        Self {
            field,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// Bad input about `field`.
    pub fn bad_input(field: &[&str], message: impl Into<String>) -> Self {
        Self::new(field, ErrorCode::BadUserInput.as_str(), message)
    }

    /// A block's refusal, pointing at the input field the block named when it can be told.
    pub fn from_block(error: &BlockError, default_field: &[&str]) -> Self {
        let named = error
            .problem()
            .and_then(|problem| problem.fields.iter().find_map(|issue| issue.field.clone()))
            .map(|wire| vec!["input".to_owned(), input_field_name(&wire)]);
        let field = named
            .or_else(|| (!default_field.is_empty()).then(|| default_field.iter().map(|p| (*p).to_owned()).collect()));
        Self {
            field,
            code: error.code().as_str().to_owned(),
            message: error.to_string(),
        }
    }
}

/// The input field (camelCase) a block's wire field corresponds to.
fn input_field_name(wire: &str) -> String {
    match wire {
        "organization" => "organizationId".to_owned(),
        "owner" => "ownerId".to_owned(),
        other => {
            let mut name = String::with_capacity(other.len());
            let mut upper = false;
            for c in other.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    name.extend(c.to_uppercase());
                    upper = false;
                } else {
                    name.push(c);
                }
            }
            name
        }
    }
}

/// What a mutation did in one block.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeStatus {
    /// The record was created.
    Created,
    /// The record already existed (the block said so and the gateway confirmed it).
    AlreadyRegistered,
    /// The record was updated.
    Updated,
    /// The block refused or failed; see `error`.
    Failed,
    /// Not attempted because an earlier step failed (see the other outcomes).
    Skipped,
}

/// One block's outcome of a multi-block mutation.
#[derive(SimpleObject, Debug, Clone)]
pub struct BlockOutcome {
    /// The block.
    pub block: Block,
    /// What happened there.
    pub status: OutcomeStatus,
    /// Why it failed, when it did.
    pub error: Option<UserError>,
}

impl BlockOutcome {
    /// A successful outcome.
    pub fn ok(block: Block, status: OutcomeStatus) -> Self {
        Self {
            block,
            status,
            error: None,
        }
    }

    /// A failure caused by `error`.
    pub fn failed(block: Block, error: &BlockError) -> Self {
        Self {
            block,
            status: OutcomeStatus::Failed,
            error: Some(UserError::from_block(error, &["input"])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_fields_become_input_fields() {
        assert_eq!(input_field_name("primary_email"), "primaryEmail");
        assert_eq!(input_field_name("organization"), "organizationId");
        assert_eq!(input_field_name("name"), "name");
    }
}
