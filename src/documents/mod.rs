//! Operation documents as a product: the example operations frontends start from, the
//! GraphiQL page that opens with them, trusted documents (an allow-list of document hashes)
//! and automatic persisted queries (the Apollo `persistedQuery` extension).
//!
//! Both persisted-document modes act in the [`Admission`] of a request, before parsing,
//! validation and any upstream call:
//! - **trusted documents** (`GATEWAY_TRUSTED_DOCUMENTS=manifest.json`): only documents whose
//!   SHA-256 is in the manifest run; a request may send the hash alone. APQ registration is
//!   then off, since it would let any document in.
//! - **APQ** (otherwise; `GATEWAY_APQ_CAPACITY` documents, 0 turns it off): documents
//!   registered with their hash are kept (the least used are forgotten first) and may then be
//!   sent by hash alone.

mod admission;
mod manifest;
pub mod playground;
mod validate;

use std::sync::Arc;

use async_graphql::{
    Name, Positioned,
    parser::types::{ExecutableDocument, OperationDefinition},
};

pub use admission::{Admission, ReadOnlyTransport};
pub use manifest::{TrustedDocuments, manifest_from_dir, sha256_hex};
pub use validate::validation_errors;

/// Documents APQ remembers by default.
pub const DEFAULT_APQ_CAPACITY: usize = 1000;

/// Why a manifest or an operations directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DocumentsError {
    /// The file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is not a JSON object of hash to document.
    #[error("{path} is not a JSON object mapping SHA-256 hashes to documents: {reason}")]
    NotAManifest {
        /// The manifest path.
        path: String,
        /// The JSON error.
        reason: String,
    },
    /// A manifest key is not the SHA-256 of its document.
    #[error("the manifest key {key:?} is not the SHA-256 hex digest of its document")]
    HashMismatch {
        /// The key.
        key: String,
    },
    /// A document does not parse or does not validate against the schema.
    #[error("{name}: {problems}")]
    InvalidDocument {
        /// The file name or manifest key.
        name: String,
        /// The parser's or the validator's messages.
        problems: String,
    },
    /// The manifest or the directory holds no document.
    #[error("{path} holds no document")]
    Empty {
        /// The path.
        path: String,
    },
}

/// How the gateway treats persisted documents (`GATEWAY_TRUSTED_DOCUMENTS`,
/// `GATEWAY_APQ_CAPACITY`).
#[derive(Debug, Clone)]
pub struct DocumentSettings {
    /// The allow-list; when set, nothing else runs and APQ registration is off.
    pub trusted: Option<Arc<TrustedDocuments>>,
    /// Documents automatic persisted queries remember; 0 turns APQ off.
    pub apq_capacity: usize,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        Self {
            trusted: None,
            apq_capacity: DEFAULT_APQ_CAPACITY,
        }
    }
}

/// The operation a request runs: the one named `operation_name`, or the first when none is
/// named (execution itself refuses an unnamed request among several operations).
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<(Option<&'a Name>, &'a Positioned<OperationDefinition>)> {
    document.operations.iter().find(|(name, _)| match operation_name {
        Some(wanted) => name.is_some_and(|name| name.as_str() == wanted),
        None => true,
    })
}
