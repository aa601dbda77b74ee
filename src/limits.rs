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

impl OperationLimits {
    /// A fresh budget for one operation: its deadline starts now.
    pub fn operation_budget(&self) -> OperationBudget {
        OperationBudget::new(Some(self.operation_timeout), Some(self.max_upstream_requests))
    }
}
