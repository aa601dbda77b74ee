//! What happens to an operation's document before it runs, in this order: persisted
//! documents resolve or refuse it (trusted documents, or automatic persisted queries), the
//! token limit, the parse (kept in [`ParsedDocuments`]), the document limits, the
//! introspection switch, and, for a document found by its hash over a read-only transport,
//! the refusal of mutations. The schema then runs the parsed document.
//!
//! Persisted documents come in two modes:
//! - **trusted documents** (`GATEWAY_TRUSTED_DOCUMENTS`, see [`crate::trusted_documents`]):
//!   only the manifest's documents run; APQ registration is then off, since it would let any
//!   document in.
//! - **APQ** (otherwise; `GATEWAY_APQ_CAPACITY` documents, 0 turns it off): documents
//!   registered with their hash are kept (the least used are forgotten first) and may then
//!   be sent by hash alone.
//!
//! This runs before `Schema::execute` rather than as async-graphql extensions: a schema
//! with any extension sends every field of every operation through the extension chain
//! (a boxed future per extension per field), which cost a fifth of a warm request.

mod parsed_documents;

use std::sync::Arc;

use async_graphql::{
    Request, ServerError,
    parser::types::{ExecutableDocument, OperationType},
};
use serde::Deserialize;

pub use parsed_documents::{DEFAULT_PARSED_DOCUMENTS, ParsedDocuments};

use crate::{
    limits::{self, OperationLimits},
    schema::errors::{SchemaError, request_error},
    trusted_documents::{TrustedDocuments, document_hash, sha256_hex},
};

/// Documents APQ remembers by default.
pub const DEFAULT_APQ_CAPACITY: usize = 1000;

/// How the gateway treats persisted documents (`GATEWAY_TRUSTED_DOCUMENTS`,
/// `GATEWAY_APQ_CAPACITY`).
#[derive(Debug, Clone)]
pub struct PersistedDocumentSettings {
    /// The allow-list; when set, nothing else runs and APQ registration is off.
    pub trusted: Option<Arc<TrustedDocuments>>,
    /// Documents automatic persisted queries remember; 0 turns APQ off.
    pub apq_capacity: usize,
}

impl Default for PersistedDocumentSettings {
    fn default() -> Self {
        Self {
            trusted: None,
            apq_capacity: DEFAULT_APQ_CAPACITY,
        }
    }
}

/// The request extension carrying a persisted query's hash.
const PERSISTED_QUERY: &str = "persistedQuery";

/// How persisted documents are treated.
enum Persisted {
    /// Only the manifest's documents run.
    Trusted(Arc<TrustedDocuments>),
    /// Automatic persisted queries: documents registered by hash, kept up to a capacity.
    Automatic(moka::sync::Cache<String, Arc<str>>),
    /// No persisted documents.
    Off,
}

/// Request data a transport attaches when the request may only read (HTTP GET): a
/// document found by its hash must then be a query, as a document sent in full must.
#[derive(Clone, Copy, Debug)]
pub struct ReadOnlyTransport;

/// `extensions.persistedQuery` of the Apollo protocol. The hash is hex, with or without the
/// `sha256:` prefix GraphQL Code Generator's client preset puts on it.
#[derive(Deserialize)]
struct PersistedQuery {
    version: i32,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

/// The checks every operation passes before execution. Cheap to clone.
#[derive(Clone)]
pub struct Admission {
    persisted: Arc<Persisted>,
    limits: OperationLimits,
    introspection: bool,
    documents: ParsedDocuments,
}

impl Admission {
    /// The admission of a gateway: its document settings, limits and introspection switch;
    /// parsed documents are kept in `documents`.
    pub fn new(
        settings: &PersistedDocumentSettings,
        limits: OperationLimits,
        introspection: bool,
        documents: ParsedDocuments,
    ) -> Self {
        let persisted = match &settings.trusted {
            Some(trusted) => Persisted::Trusted(trusted.clone()),
            None if settings.apq_capacity > 0 => {
                Persisted::Automatic(moka::sync::Cache::new(settings.apq_capacity as u64))
            }
            None => Persisted::Off,
        };
        Self {
            persisted: Arc::new(persisted),
            limits,
            introspection,
            documents,
        }
    }

    /// The request ready to run (its document parsed), or the error that refuses it.
    pub fn admit(&self, request: Request) -> Result<Request, ServerError> {
        let by_hash = request.query.is_empty() && request.extensions.contains_key(PERSISTED_QUERY);
        let mut request = self.resolve_persisted(request)?;
        let refuse = |limit| request_error(&SchemaError::Limit(limit));
        self.limits.check_tokens(&request.query).map_err(refuse)?;
        let document = self.documents.parse(&request.query)?;
        self.limits.check_document(&document).map_err(refuse)?;
        if !self.introspection && selects_introspection(&document) {
            return Err(request_error(&SchemaError::bad_input(
                "introspection is turned off on this gateway",
            )));
        }
        if by_hash && request.data.contains_key(&std::any::TypeId::of::<ReadOnlyTransport>()) {
            refuse_mutation(&document, request.operation_name.as_deref())?;
        }
        request.set_parsed_query(ExecutableDocument::clone(&document));
        Ok(request)
    }

    /// Fills in a document sent by its hash, registers one sent with its hash (APQ), and
    /// refuses what the persisted-document mode does not allow.
    fn resolve_persisted(&self, mut request: Request) -> Result<Request, ServerError> {
        let persisted = match request.extensions.remove(PERSISTED_QUERY) {
            Some(value) => Some(persisted_query(value)?),
            None => None,
        };
        match (self.persisted.as_ref(), persisted) {
            (Persisted::Trusted(trusted), persisted) => admit_trusted(trusted, request, persisted),
            (Persisted::Automatic(known), Some(persisted)) => {
                let hash = document_hash(&persisted.sha256_hash);
                if request.query.is_empty() {
                    let query = known
                        .get(&hash)
                        .ok_or_else(|| request_error(&SchemaError::PersistedQueryNotFound))?;
                    request.query = query.to_string();
                    return Ok(request);
                }
                if sha256_hex(&request.query) != hash {
                    return Err(request_error(&SchemaError::bad_input(
                        "provided sha does not match query",
                    )));
                }
                // Kept only once it parses: a broken document is refused, not remembered.
                self.documents.parse(&request.query)?;
                known.insert(hash, Arc::from(request.query.as_str()));
                Ok(request)
            }
            (Persisted::Off, Some(_)) if request.query.is_empty() => {
                Err(request_error(&SchemaError::PersistedQueryNotSupported))
            }
            (Persisted::Automatic(_) | Persisted::Off, _) => Ok(request),
        }
    }
}

/// Trusted mode: a hash alone is looked up, a full document must be allow-listed.
fn admit_trusted(
    trusted: &TrustedDocuments,
    mut request: Request,
    persisted: Option<PersistedQuery>,
) -> Result<Request, ServerError> {
    if request.query.is_empty() {
        let Some(persisted) = persisted else {
            return Ok(request);
        };
        let document = trusted
            .document(&persisted.sha256_hash)
            .ok_or_else(|| request_error(&SchemaError::PersistedQueryNotFound))?;
        request.query = document.to_string();
        return Ok(request);
    }
    let hash = sha256_hex(&request.query);
    if persisted.is_some_and(|p| document_hash(&p.sha256_hash) != hash) {
        return Err(request_error(&SchemaError::bad_input(
            "provided sha does not match query",
        )));
    }
    if !trusted.contains(&hash) {
        tracing::info!(%hash, "refused a document outside the trusted documents");
        return Err(request_error(&SchemaError::DocumentNotTrusted));
    }
    Ok(request)
}

fn persisted_query(value: async_graphql::Value) -> Result<PersistedQuery, ServerError> {
    let persisted: PersistedQuery = async_graphql::from_value(value)
        .map_err(|_| request_error(&SchemaError::bad_input("invalid \"persistedQuery\" extension")))?;
    if persisted.version != 1 {
        return Err(request_error(&SchemaError::bad_input(
            "only version 1 of the \"persistedQuery\" extension is supported",
        )));
    }
    Ok(persisted)
}

/// Whether any operation of `document` selects `__schema` or `__type` at its root
/// (async-graphql would answer them with a silent null when introspection is off), or the
/// federation subgraph's `_service`, whose SDL tells as much as introspection.
fn selects_introspection(document: &ExecutableDocument) -> bool {
    limits::root_field_names(document)
        .iter()
        .any(|name| matches!(name.as_str(), "__schema" | "__type" | "_service"))
}

/// A document found by its hash over a read-only transport must not be a mutation.
fn refuse_mutation(document: &ExecutableDocument, operation_name: Option<&str>) -> Result<(), ServerError> {
    match limits::selected_operation(document, operation_name) {
        Some((_, operation)) if operation.node.ty == OperationType::Mutation => Err(request_error(
            &SchemaError::bad_input("mutations must be sent with POST"),
        )),
        _ => Ok(()),
    }
}
