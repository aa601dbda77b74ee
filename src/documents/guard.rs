//! The document guard: an async-graphql extension that runs before parsing. In trusted
//! mode it admits only allow-listed documents (resolving hash-only requests from the
//! manifest); in APQ mode it gives the errors of async-graphql's `ApolloPersistedQueries`
//! (which runs inside it) their `extensions.code`; with both off it tells clients that
//! send a hash alone that persisted queries are not supported.

use std::sync::Arc;

use async_graphql::{
    Request, ServerError, ServerResult,
    async_trait::async_trait,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
    parser::types::OperationType,
};
use serde::Deserialize;

use super::manifest::{TrustedDocuments, sha256_hex};
use crate::schema::errors::{SchemaError, request_error};

/// The request extension carrying a persisted query's hash.
const PERSISTED_QUERY: &str = "persistedQuery";
/// The message async-graphql's APQ extension (and the Apollo protocol) uses for an unknown
/// hash.
const APQ_NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";

/// Request data a transport attaches when the request may only read (HTTP GET): a
/// document found by its hash must then be a query, as a document sent in full must.
#[derive(Clone, Copy, Debug)]
pub struct ReadOnlyTransport;

/// What the guard enforces.
pub(super) enum Mode {
    /// Only the manifest's documents run.
    Trusted(Arc<TrustedDocuments>),
    /// Automatic persisted queries: async-graphql's extension does the work.
    Automatic,
    /// No persisted documents.
    Off,
}

/// The extension factory.
pub(super) struct DocumentGuard {
    mode: Arc<Mode>,
}

impl DocumentGuard {
    pub(super) fn new(mode: Mode) -> Self {
        Self { mode: Arc::new(mode) }
    }
}

impl ExtensionFactory for DocumentGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension {
            mode: self.mode.clone(),
        })
    }
}

struct GuardExtension {
    mode: Arc<Mode>,
}

/// `extensions.persistedQuery` of the Apollo protocol.
#[derive(Deserialize)]
struct PersistedQuery {
    version: i32,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

#[async_trait]
impl Extension for GuardExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let by_hash = request.query.is_empty() && request.extensions.contains_key(PERSISTED_QUERY);
        let request = match self.mode.as_ref() {
            Mode::Trusted(trusted) => admit_trusted(trusted, request)?,
            Mode::Automatic => request,
            Mode::Off if by_hash => return Err(request_error(&SchemaError::PersistedQueryNotSupported)),
            Mode::Off => request,
        };
        let mut request = next.run(ctx, request).await.map_err(with_code)?;
        if by_hash && request.data.contains_key(&std::any::TypeId::of::<ReadOnlyTransport>()) {
            refuse_mutation(&mut request)?;
        }
        Ok(request)
    }
}

/// Trusted mode: a hash alone is looked up, a full document must be allow-listed.
fn admit_trusted(trusted: &TrustedDocuments, mut request: Request) -> ServerResult<Request> {
    let persisted = match request.extensions.remove(PERSISTED_QUERY) {
        Some(value) => Some(persisted_query(value)?),
        None => None,
    };
    if request.query.is_empty() {
        let Some(persisted) = persisted else {
            return Ok(request);
        };
        let hash = persisted.sha256_hash.to_ascii_lowercase();
        let document = trusted
            .document(&hash)
            .ok_or_else(|| request_error(&SchemaError::PersistedQueryNotFound))?;
        request.query = document.to_string();
        return Ok(request);
    }
    let hash = sha256_hex(&request.query);
    if persisted.is_some_and(|p| !p.sha256_hash.eq_ignore_ascii_case(&hash)) {
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

fn persisted_query(value: async_graphql::Value) -> ServerResult<PersistedQuery> {
    let persisted: PersistedQuery = async_graphql::from_value(value)
        .map_err(|_| request_error(&SchemaError::bad_input("invalid \"persistedQuery\" extension")))?;
    if persisted.version != 1 {
        return Err(request_error(&SchemaError::bad_input(
            "only version 1 of the \"persistedQuery\" extension is supported",
        )));
    }
    Ok(persisted)
}

/// Errors raised inside the guard (by async-graphql's APQ extension) without a code get
/// theirs; errors that already carry one pass unchanged.
fn with_code(error: ServerError) -> ServerError {
    let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
    if has_code {
        error
    } else if error.message == APQ_NOT_FOUND_MESSAGE {
        request_error(&SchemaError::PersistedQueryNotFound)
    } else {
        request_error(&SchemaError::bad_input(error.message))
    }
}

/// A document found by its hash over a read-only transport must not be a mutation.
fn refuse_mutation(request: &mut Request) -> ServerResult<()> {
    let operation_name = request.operation_name.clone();
    let document = request.parsed_query()?;
    let selected = document.operations.iter().find(|(name, _)| match &operation_name {
        Some(wanted) => name.is_some_and(|name| name.as_str() == wanted),
        None => true,
    });
    match selected {
        Some((_, operation)) if operation.node.ty == OperationType::Mutation => Err(request_error(
            &SchemaError::bad_input("mutations must be sent with POST"),
        )),
        _ => Ok(()),
    }
}
