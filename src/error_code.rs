//! The gateway's error vocabulary: one code per kind of failure a caller can see.
//!
//! Every error that reaches a caller carries one of these codes in `extensions.code`;
//! the mapping from layer errors to GraphQL errors lives in `schema::errors`.

use std::fmt;

/// A machine-readable error code, sent to callers as `extensions.code`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The record asked for does not exist in the block that owns it.
    NotFound,
    /// The caller's input is wrong (malformed id, bad cursor, limit exceeded, ...).
    BadUserInput,
    /// The write conflicts with what the block already holds.
    Conflict,
    /// The caller, or the gateway's credential for a block, was not accepted.
    Unauthenticated,
    /// The credential is valid but lacks the permission.
    Forbidden,
    /// The block could not be reached or answered 502/503/504.
    UpstreamUnavailable,
    /// The block did not answer in time.
    UpstreamTimeout,
    /// The block answered with an error or with a body the gateway could not read.
    UpstreamError,
    /// The block asked the gateway to slow down (429).
    RateLimited,
    /// A block's list could not be read to its end (it served fewer records than it
    /// reports, or never said it ended): the field is not answered from part of the list.
    Incomplete,
    /// The block has no URL configured, so its fields cannot be served.
    BlockNotConfigured,
    /// The operation needed more upstream requests than one operation may make.
    RequestLimitExceeded,
    /// Something failed inside the gateway itself.
    InternalServerError,
    /// A persisted document was asked for by a hash the gateway does not know.
    PersistedQueryNotFound,
    /// A hash alone was sent, but the gateway keeps no persisted documents.
    PersistedQueryNotSupported,
}

impl ErrorCode {
    /// The SCREAMING_SNAKE_CASE form sent in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Self::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Self::UpstreamError => "UPSTREAM_ERROR",
            Self::RateLimited => "RATE_LIMITED",
            Self::Incomplete => "INCOMPLETE",
            Self::BlockNotConfigured => "BLOCK_NOT_CONFIGURED",
            Self::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
