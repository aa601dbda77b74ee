//! What one GraphQL operation may cost: document limits checked before execution (tokens,
//! aliases, root fields, introspection nesting; depth, complexity and directives through
//! async-graphql's own limits), request limits (body size, batch size), and what execution
//! may spend upstream (a deadline and a request cap).

use std::time::Duration;

use crate::blocks::operation::OperationBudget;

/// The configured limits. Defaults follow the strictest common gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationLimits {
    /// Deepest field nesting (`GATEWAY_MAX_DEPTH`).
    pub max_depth: usize,
    /// Aliased fields in one document (`GATEWAY_MAX_ALIASES`).
    pub max_aliases: usize,
    /// Fields at the root of the executed operation (`GATEWAY_MAX_ROOT_FIELDS`).
    pub max_root_fields: usize,
    /// Directives on one field (`GATEWAY_MAX_DIRECTIVES`).
    pub max_directives: usize,
    /// Lexical tokens in the query text (`GATEWAY_MAX_TOKENS`).
    pub max_tokens: usize,
    /// Complexity: one per field, a connection's `first` multiplying its selection
    /// (`GATEWAY_MAX_COMPLEXITY`).
    pub max_complexity: usize,
    /// Request body size in bytes (`GATEWAY_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Operations in one batched request; 0 turns batching off (`GATEWAY_MAX_BATCH`).
    pub max_batch: usize,
    /// Time one operation may take; fields still waiting for a block then fail with
    /// `UPSTREAM_TIMEOUT` (`GATEWAY_OPERATION_TIMEOUT_MS`).
    pub operation_timeout: Duration,
    /// Upstream requests one operation may send, retries included
    /// (`GATEWAY_MAX_UPSTREAM_REQUESTS`).
    pub max_upstream_requests: usize,
}

impl Default for OperationLimits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_aliases: 30,
            max_root_fields: 10,
            max_directives: 5,
            max_tokens: 5_000,
            max_complexity: 1_000,
            max_body_bytes: 1024 * 1024,
            max_batch: 10,
            operation_timeout: Duration::from_secs(15),
            max_upstream_requests: 500,
        }
    }
}

/// The limits a request or operation can exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Field nesting.
    Depth,
    /// Aliased fields.
    Aliases,
    /// Root fields.
    RootFields,
    /// Directives on one field.
    Directives,
    /// Lexical tokens.
    Tokens,
    /// Complexity points.
    Complexity,
    /// Nested `fields`/`interfaces`/`possibleTypes`/`inputFields` in introspection.
    IntrospectionDepth,
    /// Request body bytes.
    BodyBytes,
    /// Operations in one batched request.
    Batch,
}

impl Limit {
    /// The name sent as `extensions.limit`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Depth => "depth",
            Self::Aliases => "aliases",
            Self::RootFields => "rootFields",
            Self::Directives => "directives",
            Self::Tokens => "tokens",
            Self::Complexity => "complexity",
            Self::IntrospectionDepth => "introspectionDepth",
            Self::BodyBytes => "bodyBytes",
            Self::Batch => "batch",
        }
    }

    fn allowance(self, max: usize) -> String {
        match self {
            Self::Depth => format!("fields may be nested at most {max} levels deep"),
            Self::Aliases => format!("a document may use at most {max} aliases"),
            Self::RootFields => format!("an operation may select at most {max} root fields"),
            Self::Directives => format!("a field may carry at most {max} directives"),
            Self::Tokens => format!("a document may have at most {max} tokens"),
            Self::Complexity => format!(
                "an operation may cost at most {max} points (one per field, a connection's `first` multiplying its selection)"
            ),
            Self::IntrospectionDepth => {
                format!(
                    "introspection may nest `fields`, `interfaces`, `possibleTypes` and `inputFields` at most {max} deep"
                )
            }
            Self::BodyBytes => format!("a request body may have at most {max} bytes"),
            Self::Batch if max == 0 => "batched requests are turned off: send one operation per request".to_owned(),
            Self::Batch => format!("a batched request may carry at most {max} operations"),
        }
    }
}

/// A refused request or operation: which limit, and its configured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operation exceeds the {} limit: {}", .limit.name(), .limit.allowance(*.max))]
pub struct LimitViolation {
    /// The limit.
    pub limit: Limit,
    /// Its configured value.
    pub max: usize,
}

impl OperationLimits {
    /// A fresh budget for one operation: its deadline starts now.
    pub fn operation_budget(&self) -> OperationBudget {
        OperationBudget::new(Some(self.operation_timeout), Some(self.max_upstream_requests))
    }
}
