//! The one place where errors become GraphQL errors with `extensions.code` (and, for
//! upstream failures, `extensions.block` and `extensions.status`). Internal and upstream
//! details go to the log, never to the caller.

use std::sync::Arc;

use async_graphql::{ErrorExtensions, ServerError};

use crate::{
    blocks::{BlockError, BlockName},
    callers::CallerError,
    error_code::ErrorCode,
    limits::{LimitViolation, OperationLimits},
    link_index::LinkError,
};

/// Errors of the schema layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchemaError {
    /// The caller's input is wrong; nothing was sent upstream.
    #[error("{message}")]
    BadUserInput {
        /// What is wrong, naming the argument.
        message: String,
    },
    /// A block failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A block answered without a field its contract requires.
    #[error("the {block} block sent a record without `{field}`")]
    MissingField {
        /// The block.
        block: BlockName,
        /// The missing wire field.
        field: &'static str,
    },
    /// A block listed records without the key a client caches them by (`unique_id`); the
    /// list answers without them.
    #[error("the {block} block sent {left_out} record(s) without `unique_id`; they are left out of this list")]
    UnkeyedItems {
        /// The block.
        block: BlockName,
        /// How many records were left out.
        left_out: usize,
    },
    /// A block sent a value outside its contract's set (an unknown enum value).
    #[error("the {block} block sent an unknown `{field}` value")]
    UnknownValue {
        /// The block.
        block: BlockName,
        /// The wire field.
        field: &'static str,
    },
    /// A bug in the gateway; details are logged.
    #[error("internal error")]
    Internal,
    /// The identity link index failed; details are logged.
    #[error("the identity link index is unavailable")]
    LinkIndex(Arc<LinkError>),
    /// Several records match where the caller asked for one (an email shared by identities).
    #[error("{message}")]
    Ambiguous {
        /// What matched more than once.
        message: String,
    },
    /// The operation ran past its deadline and was abandoned as a whole.
    #[error("the operation did not finish within its time limit")]
    OperationAbandoned,
    /// The caller was not let in (HTTP 401).
    #[error(transparent)]
    Caller(#[from] CallerError),
    /// The request or operation exceeds a configured limit; nothing was sent upstream.
    #[error(transparent)]
    Limit(#[from] LimitViolation),
    /// A hash alone named a document the gateway does not hold (the Apollo protocol's
    /// message, which clients match).
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    /// A hash alone was sent while persisted documents are off (the Apollo protocol's message).
    #[error("PersistedQueryNotSupported")]
    PersistedQueryNotSupported,
    /// Trusted documents are on and this document is not one of them.
    #[error("this document is not one of the gateway's trusted documents")]
    DocumentNotTrusted,
}

impl SchemaError {
    /// A `BAD_USER_INPUT` error.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadUserInput {
            message: message.into(),
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::BadUserInput { .. } => ErrorCode::BadUserInput,
            Self::Block(error) => error.code(),
            Self::MissingField { .. } | Self::UnkeyedItems { .. } | Self::UnknownValue { .. } => {
                ErrorCode::UpstreamError
            }
            Self::Internal | Self::LinkIndex(_) => ErrorCode::InternalServerError,
            Self::Ambiguous { .. } => ErrorCode::Conflict,
            Self::OperationAbandoned => ErrorCode::UpstreamTimeout,
            Self::Caller(_) => ErrorCode::Unauthenticated,
            Self::Limit(_) => ErrorCode::BadUserInput,
            Self::PersistedQueryNotFound => ErrorCode::PersistedQueryNotFound,
            Self::PersistedQueryNotSupported => ErrorCode::PersistedQueryNotSupported,
            Self::DocumentNotTrusted => ErrorCode::Forbidden,
        }
    }

    fn block(&self) -> Option<BlockName> {
        match self {
            Self::Block(error) => Some(error.block()),
            Self::MissingField { block, .. } | Self::UnkeyedItems { block, .. } | Self::UnknownValue { block, .. } => {
                Some(*block)
            }
            _ => None,
        }
    }

    fn log(&self) {
        match self {
            Self::Block(BlockError::Unreachable { block, reason }) => {
                tracing::warn!(%block, reason, "block unreachable");
            }
            Self::Block(BlockError::Decode { block, reason }) => {
                tracing::warn!(%block, reason, "block answer undecodable");
            }
            Self::Block(error @ BlockError::Status { status, .. }) if *status >= 500 => {
                tracing::warn!(block = %error.block(), status, "block failed");
            }
            Self::MissingField { .. } | Self::UnkeyedItems { .. } | Self::UnknownValue { .. } => {
                tracing::warn!(error = %self, "contract violation")
            }
            Self::Internal => tracing::error!("internal error reported to a caller"),
            Self::LinkIndex(error) => tracing::error!(%error, "identity link index failed"),
            _ => {}
        }
    }
}

impl ErrorExtensions for SchemaError {
    fn extend(&self) -> async_graphql::Error {
        self.log();
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", self.code().as_str());
            if let Some(block) = self.block() {
                extensions.set("block", block.label());
            }
            if let Self::Limit(violation) = self {
                extensions.set("limit", violation.limit.name());
                extensions.set("max", violation.max);
            }
            if let Self::Block(error) = self {
                if let Some(status) = error.status() {
                    extensions.set("status", status);
                }
                if let Some(seconds) = error.retry_after() {
                    extensions.set("retryAfter", seconds);
                }
            }
        })
    }
}

/// Converts layer results into GraphQL results through the one mapping above.
pub trait IntoGraphql<T> {
    /// The GraphQL result.
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> IntoGraphql<T> for Result<T, SchemaError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|error| error.extend())
    }
}

impl<T> IntoGraphql<T> for Result<T, Arc<LinkError>> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|error| SchemaError::LinkIndex(error).extend())
    }
}

impl<T> IntoGraphql<T> for Result<T, LinkError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|error| SchemaError::LinkIndex(Arc::new(error)).extend())
    }
}

impl<T> IntoGraphql<T> for Result<T, BlockError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|error| SchemaError::Block(error).extend())
    }
}

/// An error raised outside any field (a refused request, an abandoned operation), as the
/// GraphQL error the caller sees: no location, no path.
pub fn request_error(error: &SchemaError) -> ServerError {
    let extended = error.extend();
    let mut server_error = ServerError::new(extended.message, None);
    server_error.extensions = extended.extensions;
    server_error
}

/// Gives every error still without `extensions.code` one: only async-graphql's own errors
/// (a document that does not parse or validate, a variable of the wrong type) lack it, and
/// they are all about the caller's input.
pub fn ensure_codes(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::BadUserInput.as_str());
        }
    }
}

/// Puts `null` in `data` for every field that failed. async-graphql leaves a failed field
/// out of its parent object (the key is missing), which clients read as "not selected"
/// (Apollo Client warns and refetches); the specification asks for `null` beside the error.
/// The rest of the parent is kept, also when the failed field is non-null: one block's
/// failure costs only its own fields.
pub fn null_failed_fields(response: &mut async_graphql::Response) {
    for error in &response.errors {
        let Some((async_graphql::PathSegment::Field(key), parents)) = error.path.split_last() else {
            continue;
        };
        if let Some(parent) = object_at(&mut response.data, parents) {
            parent
                .entry(async_graphql::Name::new(key))
                .or_insert(async_graphql::Value::Null);
        }
    }
}

/// The object at `path` in `data`, when every step of the path is there.
fn object_at<'a>(
    data: &'a mut async_graphql::Value,
    path: &[async_graphql::PathSegment],
) -> Option<&'a mut async_graphql::indexmap::IndexMap<async_graphql::Name, async_graphql::Value>> {
    use async_graphql::{PathSegment, Value};
    let mut at = data;
    for segment in path {
        at = match (segment, at) {
            (PathSegment::Field(name), Value::Object(object)) => object.get_mut(name.as_str())?,
            (PathSegment::Index(index), Value::List(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    match at {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// Gives async-graphql's own limit errors (plain messages, no code) the form of ours:
/// which limit, its value, `BAD_USER_INPUT`.
pub fn explain_limit_refusals(response: &mut async_graphql::Response, limits: &OperationLimits) {
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        let Some(violation) = limits.builtin_refusal(&error.message).filter(|_| !has_code) else {
            continue;
        };
        let locations = std::mem::take(&mut error.locations);
        *error = request_error(&SchemaError::Limit(violation));
        error.locations = locations;
    }
}

/// A response made of one [`request_error`], without `data`.
pub fn request_error_response(error: &SchemaError) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![request_error(error)])
}

/// Reports an error for a field while the field still answers (a value found in a later
/// block when an earlier one failed).
pub fn report(ctx: &async_graphql::Context<'_>, error: SchemaError) {
    let server_error: ServerError = error.extend().into_server_error(ctx.item.pos);
    ctx.add_error(ctx.set_error_path(server_error));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_messages_are_still_the_ones_explained() {
        let mut response = async_graphql::Response::from_errors(vec![
            ServerError::new("Query is nested too deep.", None),
            ServerError::new("Query is too complex.", None),
        ]);
        explain_limit_refusals(&mut response, &OperationLimits::default());
        let limits: Vec<_> = response
            .errors
            .iter()
            .map(|error| error.extensions.as_ref().and_then(|e| e.get("limit")).cloned())
            .collect();
        assert_eq!(limits, vec![Some("depth".into()), Some("complexity".into())]);
    }
}
