//! Trusted documents: an allow-list of operation documents by the SHA-256 of their text
//! (`GATEWAY_TRUSTED_DOCUMENTS=manifest.json`), as GraphQL Code Generator's client preset
//! writes it or `blocks-gateway trusted-documents DIR` prints it. Only those documents run;
//! a request may send the hash alone. The [`crate::admission`] applies the list; this
//! module reads and checks manifests, and validates documents against the schema without
//! running them.

mod manifest;
mod validate;

pub use manifest::{TrustedDocuments, document_hash, manifest_from_dir, sha256_hex};
pub use validate::validation_errors;

/// Why a manifest or an operations directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustedDocumentsError {
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
    #[error("the manifest key {key:?} is not the SHA-256 hex digest of its document (optionally prefixed `sha256:`)")]
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
