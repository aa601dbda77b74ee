//! The one error type of the blocks layer.

use std::{fmt, sync::Arc, time::Duration};

use serde_json::Value;

use super::BlockName;
use crate::error_code::ErrorCode;

/// Result of a block call.
pub type Result<T, E = BlockError> = std::result::Result<T, E>;

/// One problem a block reported about one field of a write (DRF field errors, JSON:API
/// `source.pointer`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// The upstream field name (`email`, `division`, ...), or `None` for a whole-record issue.
    pub field: Option<String>,
    /// The block's message, as sent.
    pub message: String,
}

/// What the gateway could read from a block's error body.
#[derive(Debug, Clone, Default)]
pub struct UpstreamProblem {
    /// The block's own error code (JSON:API `code`), when it sent one.
    pub code: Option<String>,
    /// A human-readable detail (JSON:API `detail`/`title`, DRF `detail`).
    pub detail: Option<String>,
    /// Per-field problems (DRF field errors, `non_field_errors`, JSON:API errors with a pointer).
    pub fields: Vec<FieldIssue>,
    /// The parsed body, for callers that need a typed conflict body (CRM invite 409).
    /// Never shown to GraphQL callers.
    pub body: Option<Arc<Value>>,
}

/// Why a block call failed. Cloneable so one failure can be handed to every waiting
/// loader key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BlockError {
    /// The block has no URL configured; its fields answer `BLOCK_NOT_CONFIGURED`.
    #[error("the {block} block is not configured")]
    NotConfigured {
        /// The block.
        block: BlockName,
    },
    /// The gateway could not connect to the block (refused, DNS, TLS, reset).
    #[error("the {block} block could not be reached")]
    Unreachable {
        /// The block.
        block: BlockName,
        /// Transport detail, for logs only.
        reason: String,
    },
    /// The block did not answer within the configured time.
    #[error("the {block} block did not answer within {}ms", timeout.as_millis())]
    Timeout {
        /// The block.
        block: BlockName,
        /// The limit that was exceeded.
        timeout: Duration,
    },
    /// The block answered with a non-success HTTP status.
    #[error("the {block} block answered {status}{}", problem_suffix(*status, problem))]
    Status {
        /// The block.
        block: BlockName,
        /// The HTTP status.
        status: u16,
        /// What could be read from the body.
        problem: UpstreamProblem,
        /// `Retry-After` in seconds, for 429 and 503.
        retry_after: Option<u64>,
    },
    /// The block answered 2xx with a body that does not match its contract.
    #[error("the {block} block sent an answer the gateway could not read")]
    Decode {
        /// The block.
        block: BlockName,
        /// Parser detail, for logs only.
        reason: String,
    },
    /// The gateway's loader failed internally (a bug); logged with detail.
    #[error("internal error while loading from the {block} block")]
    Internal {
        /// The block.
        block: BlockName,
    },
    /// The id is `.` or `..`, which cannot be a URL path segment (URL rules resolve it,
    /// even percent-encoded, as navigation, so the request would reach another route).
    /// No request was sent.
    #[error("`.` and `..` cannot be used as ids with the {block} block")]
    UnaddressableId {
        /// The block.
        block: BlockName,
    },
    /// The block's circuit breaker is open after repeated failures: no request was sent.
    #[error("the {block} block is failing; the gateway stopped calling it for a moment")]
    CircuitOpen {
        /// The block.
        block: BlockName,
        /// Time left before the gateway tries the block again.
        retry_in: Duration,
    },
    /// The block asked for a pause (`429` with `Retry-After`) that has not ended: no request
    /// was sent.
    #[error("the {block} block asked the gateway to slow down; retry in {retry_after}s")]
    Throttled {
        /// The block.
        block: BlockName,
        /// Whole seconds left of the pause.
        retry_after: u64,
    },
    /// The operation's time limit passed before the block answered.
    #[error("the operation's time limit ({}ms) passed before the {block} block answered", limit.as_millis())]
    DeadlineExceeded {
        /// The block.
        block: BlockName,
        /// The operation's time limit.
        limit: Duration,
    },
    /// The operation already sent as many upstream requests as one operation may.
    #[error("the operation reached its limit of {limit} upstream requests; the {block} block was not called")]
    RequestLimitExceeded {
        /// The block.
        block: BlockName,
        /// The cap.
        limit: usize,
    },
    /// The block reported more records in a list than the gateway could read from it (the
    /// pages it served fell short of its own total): no answer is built from part of a list.
    #[error("the {block} block reports {total} records but served {read}; the list was not answered in part")]
    Incomplete {
        /// The block.
        block: BlockName,
        /// Distinct records read.
        read: u64,
        /// The total the block reported.
        total: u64,
    },
    /// A walk over a block's list was still told "more" after as many pages as any list
    /// could hold (a block that never says its list ended): nothing is answered from the
    /// pages read.
    #[error(
        "the {block} block's {list} did not end after {pages} pages; the gateway stopped reading and answers none of it"
    )]
    ListDidNotEnd {
        /// The block.
        block: BlockName,
        /// The list walked (`entities list`, ...).
        list: &'static str,
        /// Pages read before stopping.
        pages: u32,
    },
    /// The caller forwarded no credential for this block (forward mode): no request was sent.
    #[error("no credential for the {block} block was forwarded")]
    CredentialMissing {
        /// The block.
        block: BlockName,
    },
}

/// The block's own words, shown only for client errors about the request's data: a 5xx
/// body may hold a stack trace, and an auth failure's may echo a credential.
fn problem_suffix(status: u16, problem: &UpstreamProblem) -> String {
    if !(400..500).contains(&status) || matches!(status, 401 | 403 | 407) {
        return String::new();
    }
    match (&problem.detail, problem.fields.first()) {
        (Some(detail), _) => format!(": {}", truncate(detail)),
        (None, Some(issue)) => match &issue.field {
            Some(field) => format!(": {field}: {}", truncate(&issue.message)),
            None => format!(": {}", truncate(&issue.message)),
        },
        (None, None) => String::new(),
    }
}

/// Upstream messages are echoed to callers only in bounded form.
fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl BlockError {
    /// The block that failed.
    pub fn block(&self) -> BlockName {
        match self {
            Self::NotConfigured { block }
            | Self::Unreachable { block, .. }
            | Self::Timeout { block, .. }
            | Self::Status { block, .. }
            | Self::Decode { block, .. }
            | Self::UnaddressableId { block }
            | Self::Internal { block }
            | Self::CircuitOpen { block, .. }
            | Self::Throttled { block, .. }
            | Self::DeadlineExceeded { block, .. }
            | Self::RequestLimitExceeded { block, .. }
            | Self::Incomplete { block, .. }
            | Self::ListDidNotEnd { block, .. }
            | Self::CredentialMissing { block } => *block,
        }
    }

    /// The upstream HTTP status, when the block answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem read from the error body, when the block answered with one.
    pub fn problem(&self) -> Option<&UpstreamProblem> {
        match self {
            Self::Status { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The caller-facing code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotConfigured { .. } => ErrorCode::BlockNotConfigured,
            Self::Unreachable { .. } => ErrorCode::UpstreamUnavailable,
            Self::Timeout { .. } => ErrorCode::UpstreamTimeout,
            Self::Decode { .. } => ErrorCode::UpstreamError,
            Self::Incomplete { .. } | Self::ListDidNotEnd { .. } => ErrorCode::Incomplete,
            Self::Internal { .. } => ErrorCode::InternalServerError,
            Self::UnaddressableId { .. } => ErrorCode::BadUserInput,
            Self::CircuitOpen { .. } => ErrorCode::UpstreamUnavailable,
            Self::Throttled { .. } => ErrorCode::RateLimited,
            Self::DeadlineExceeded { .. } => ErrorCode::UpstreamTimeout,
            Self::RequestLimitExceeded { .. } => ErrorCode::RequestLimitExceeded,
            Self::CredentialMissing { .. } => ErrorCode::Unauthenticated,
            Self::Status { status, .. } => match status {
                400 | 422 => ErrorCode::BadUserInput,
                401 => ErrorCode::Unauthenticated,
                403 => ErrorCode::Forbidden,
                404 => ErrorCode::NotFound,
                409 => ErrorCode::Conflict,
                429 => ErrorCode::RateLimited,
                502..=504 => ErrorCode::UpstreamUnavailable,
                _ => ErrorCode::UpstreamError,
            },
        }
    }

    /// Seconds after which a retry may succeed, when known (`extensions.retryAfter`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            Self::CircuitOpen { retry_in, .. } => Some(retry_in.as_secs_f64().ceil().max(1.0) as u64),
            _ => None,
        }
    }

    /// Whether the block itself failed: a 5xx, no answer in time, unreachable, or its
    /// circuit open. Then a recently expired cached copy may stand in (stale-if-error);
    /// answers about the request (4xx, 429) and the gateway's own limits never qualify.
    pub fn is_block_outage(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::CircuitOpen { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether a GET that failed this way may be sent again.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

impl fmt::Display for BlockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
