//! Operation documents as a product: the example operations frontends start from, the
//! GraphiQL page that opens with them, trusted documents (an allow-list of document hashes)
//! and automatic persisted queries (the Apollo `persistedQuery` extension).
//!
//! Both persisted-document modes hook into the schema as async-graphql extensions, so they
//! act before parsing, validation and any upstream call:
//! - **trusted documents** (`GATEWAY_TRUSTED_DOCUMENTS=manifest.json`): only documents whose
//!   SHA-256 is in the manifest run; a request may send the hash alone. APQ registration is
//!   then off, since it would let any document in.
//! - **APQ** (otherwise; `GATEWAY_APQ_CAPACITY` documents, 0 turns it off): async-graphql's
//!   `ApolloPersistedQueries` with an LRU store; this module only gives its errors the codes
//!   clients expect.

mod guard;
mod manifest;
pub mod playground;
mod validate;

use std::sync::Arc;

use async_graphql::{
    SchemaBuilder,
    extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage},
};

pub use guard::ReadOnlyTransport;
pub use manifest::{TrustedDocuments, manifest_from_dir, sha256_hex};
pub use validate::validation_errors;

/// Documents APQ remembers by default (an LRU: the least recently used is forgotten).
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

impl DocumentSettings {
    /// Adds the document extensions to a schema under construction. The guard is added
    /// first, so it runs around the APQ extension and can give its errors their codes.
    pub fn install<Q, M, S>(&self, builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S> {
        let apq = (self.trusted.is_none())
            .then_some(self.apq_capacity)
            .filter(|&capacity| capacity > 0);
        let mode = match (&self.trusted, apq) {
            (Some(trusted), _) => guard::Mode::Trusted(trusted.clone()),
            (None, Some(_)) => guard::Mode::Automatic,
            (None, None) => guard::Mode::Off,
        };
        let builder = builder.extension(guard::DocumentGuard::new(mode));
        match apq {
            Some(capacity) => builder.extension(ApolloPersistedQueries::new(LruCacheStorage::new(capacity))),
            None => builder,
        }
    }
}
