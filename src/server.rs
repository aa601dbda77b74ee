//! HTTP serving, the only module that knows axum: `POST /graphql` and `GET /graphql`
//! (queries only), GraphiQL at `/` with its assets (`playground_routes`), `/healthz`,
//! `/readyz` (503 while draining or while a store of the replica is unreachable;
//! `?strict=true` also needs every block) and `/metrics` (behind `GATEWAY_METRICS_TOKEN`
//! when set); the transport rules (media types, CSRF, body and batch limits), CORS and the
//! panic guard.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_graphql::{BatchRequest, BatchResponse, Request, parser::types::OperationType};
use axum::{
    Json, Router,
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::IntoResponse,
    routing::get,
};
use futures::future::join_all;
use secrecy::SecretString;
use serde_json::json;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
};

mod playground_routes;

use crate::{
    admission::{ParsedDocuments, ReadOnlyTransport},
    callers::{Caller, bearer_token_matches, forwarded_header_names},
    config::ServerSettings,
    error_code::ErrorCode,
    gateway::Gateway,
    limits::{Limit, LimitViolation},
    loaders::RequestScope,
    metrics::Metrics,
    schema::errors::{SchemaError, request_error_response},
};

/// Whether the replica is draining (then `/readyz` answers 503). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// Whether a shutdown began.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the replica as going away.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// What every route handler reads.
#[derive(Clone)]
struct AppState {
    gateway: Gateway,
    readiness: Readiness,
    csrf_prevention: bool,
    metrics_token: Option<Arc<SecretString>>,
    origins: Arc<BrowserOrigins>,
}

/// The browser origins allowed to call: the configured list, and in the sandbox any
/// loopback origin. CORS answers them, and a request from one is not a forgery.
#[derive(Debug, Default)]
struct BrowserOrigins {
    listed: Vec<HeaderValue>,
    loopback: bool,
}

impl BrowserOrigins {
    fn new(settings: &ServerSettings) -> Self {
        Self {
            listed: settings.cors_origins.clone(),
            loopback: settings.cors_loopback,
        }
    }

    /// Whether any origin is allowed at all (else no CORS layer runs).
    fn any(&self) -> bool {
        self.loopback || !self.listed.is_empty()
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.listed.iter().any(|listed| listed == origin) || (self.loopback && is_loopback_origin(origin))
    }
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, any port, nothing after: a page served
/// from this machine (a frontend dev server).
fn is_loopback_origin(origin: &HeaderValue) -> bool {
    let Some(url) = origin.to_str().ok().and_then(|text| url::Url::parse(text).ok()) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    };
    loopback
        && matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.path() == "/"
        && url.query().is_none()
        && !origin.as_bytes().ends_with(b"/")
}

/// The media type of the GraphQL-over-HTTP specification.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The router over a gateway; tests call it directly or serve it on a port-0 listener.
/// `readiness` is what `/readyz` reports (the shutdown sets it draining).
pub fn router(gateway: Gateway, settings: &ServerSettings, readiness: Readiness) -> Router {
    let mut routes = Router::new();
    if gateway.introspection() {
        // GraphiQL needs introspection; without it the page would only show errors.
        routes = routes.merge(playground_routes::playground_routes());
    }
    let metrics = gateway.metrics().clone();
    let state = AppState {
        gateway,
        readiness,
        csrf_prevention: settings.csrf_prevention,
        metrics_token: settings.metrics_token.clone().map(Arc::new),
        origins: Arc::new(BrowserOrigins::new(settings)),
    };
    let routes = routes
        .route("/graphql", get(graphql).post(graphql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_endpoint))
        .layer(axum::middleware::from_fn_with_state(metrics, track_in_flight))
        .with_state(state);
    protect(routes, settings)
}

/// The layers every route of the gateway runs behind: a panic anywhere becomes a generic
/// 500 (the process keeps serving), and browsers may call only from the allowed origins
/// (the CORS layer answers their preflight `OPTIONS`).
pub fn protect(routes: Router, settings: &ServerSettings) -> Router {
    let routes = routes.layer(CatchPanicLayer::custom(panic_response));
    let origins = BrowserOrigins::new(settings);
    if !origins.any() {
        return routes;
    }
    let mut allowed_headers = vec![
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        header::CACHE_CONTROL,
        HeaderName::from_static("apollo-require-preflight"),
        HeaderName::from_static("x-apollo-operation-name"),
    ];
    allowed_headers.extend(forwarded_header_names().map(HeaderName::from_static));
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| origins.allows(origin)))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(allowed_headers)
        .max_age(Duration::from_secs(600));
    routes.layer(cors)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// `GET /metrics`: the Prometheus text exposition; with `GATEWAY_METRICS_TOKEN` set, only
/// for `Authorization: Bearer <token>` (401 otherwise).
async fn metrics_endpoint(State(state): State<AppState>, headers: HeaderMap) -> axum::response::Response {
    if let Some(token) = &state.metrics_token
        && !bearer_token_matches(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            "send the metrics token as `Authorization: Bearer <token>`\n",
        )
            .into_response();
    }
    match state.gateway.render_metrics().await {
        Ok(body) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "could not encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Counts the HTTP requests in flight (every route).
async fn track_in_flight(
    State(metrics): State<Metrics>,
    request: axum::extract::Request,
    next: Next,
) -> axum::response::Response {
    let _in_flight = metrics.http_request_started();
    next.run(request).await
}

async fn healthz() -> &'static str {
    "ok"
}

/// `/readyz` parameters.
#[derive(Debug, Default, serde::Deserialize)]
struct ReadinessQuery {
    /// Also probe every block and fail while one is unreachable or its circuit is open.
    #[serde(default)]
    strict: bool,
}

/// Ready while this replica can serve: not draining, its stores reachable. The blocks'
/// states are listed and count only with `?strict=true` (a block down is answered per
/// field; taking every replica out of the load balancer for it would be a total outage).
async fn readyz(State(state): State<AppState>, Query(query): Query<ReadinessQuery>) -> impl IntoResponse {
    // A replica that is shutting down leaves the load balancer first (see `shutdown`).
    if state.readiness.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "draining": true })),
        );
    }
    let report = state.gateway.readiness(query.strict).await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!(report)))
}

async fn graphql(State(state): State<AppState>, request: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let media_type = negotiate(&parts.headers);
    let gateway = &state.gateway;
    let (caller, batch) = match admit(&state, &parts, body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(media_type),
    };
    let scope = RequestScope {
        bypass_cache: wants_fresh(&parts.headers),
        ..RequestScope::default()
    };
    // A document named only by its hash is resolved later: over GET it must be a query too.
    let batch = if parts.method == Method::GET {
        batch.data(ReadOnlyTransport)
    } else {
        batch
    };
    let response = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(gateway.execute_as(request, scope, &caller).await),
        BatchRequest::Batch(requests) => BatchResponse::Batch(
            join_all(
                requests
                    .into_iter()
                    .map(|request| gateway.execute_as(request, scope, &caller)),
            )
            .await,
        ),
    };
    let status = status_for(media_type, &response);
    respond(media_type, status, response)
}

/// A request turned away before any operation ran (and so before any upstream request).
struct Refusal {
    status: StatusCode,
    error: SchemaError,
}

impl Refusal {
    fn new(status: StatusCode, error: impl Into<SchemaError>) -> Self {
        Self {
            status,
            error: error.into(),
        }
    }

    fn bad_request(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, SchemaError::bad_input(message))
    }

    fn into_response(self, media_type: &'static str) -> axum::response::Response {
        let body = BatchResponse::Single(request_error_response(&self.error));
        let mut response = respond(media_type, self.status, body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The checks before execution, cheapest first: transport, caller, body, batch.
async fn admit(state: &AppState, parts: &Parts, body: Body) -> Result<(Caller, BatchRequest), Refusal> {
    let gateway = &state.gateway;
    if state.csrf_prevention {
        check_forgery(parts, &state.origins)?;
    }
    check_media_type(parts)?;
    let caller = gateway
        .callers()
        .authenticate(&parts.headers)
        .map_err(|error| Refusal::new(StatusCode::UNAUTHORIZED, error))?;
    let limits = gateway.limits();
    let batch = if parts.method == Method::GET {
        read_query_string(parts)?
    } else {
        read_body(parts, body, limits.max_body_bytes).await?
    };
    check_batch(&parts.method, &batch, limits.max_batch, gateway.parsed_documents())?;
    Ok((caller, batch))
}

/// Headers a browser cannot add cross-site without a CORS preflight, which the
/// allow-list then answers.
const PREFLIGHT_HEADERS: [&str; 2] = ["apollo-require-preflight", "x-apollo-operation-name"];

/// POST bodies must be `application/json`: the only body type served, and one a browser
/// cannot send cross-site without a preflight (a form or `text/plain` post is refused with
/// 415 before anything runs).
fn check_media_type(parts: &Parts) -> Result<(), Refusal> {
    if parts.method == Method::POST && !is_json(&parts.headers) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            SchemaError::bad_input("send the request as `Content-Type: application/json`"),
        ));
    }
    Ok(())
}

/// CSRF prevention. A GET is a "simple" request a page on another site can make a browser
/// send with the user's cookies or network position (an open gateway on a private
/// network), so it runs only when it could not have been forged that way:
/// - it carries what a page can send only after a CORS preflight, which the allow-list
///   answers: a caller credential (`Authorization: Bearer`, a forwarded block credential),
///   a preflight header, or a non-simple `Content-Type` (Apollo Client sends
///   `application/json` even on GET; urql sends no `Content-Type` on GET);
/// - or the browser says it comes from an allowed origin (`Origin` cannot be forged by a
///   page, and a cross-site form, image or `no-cors` fetch sends none on GET).
///
/// A GET with cookies alone, or with none of these (an open gateway's usual caller), is
/// refused as before. Non-browser clients are not at risk and can send any header.
fn check_forgery(parts: &Parts, origins: &BrowserOrigins) -> Result<(), Refusal> {
    if parts.method != Method::GET {
        return Ok(());
    }
    let headers = &parts.headers;
    let present = |name: &str| {
        headers
            .get(name)
            .is_some_and(|value| !value.as_bytes().trim_ascii().is_empty())
    };
    let preflighted = has_bearer_credential(headers)
        || forwarded_header_names().any(present)
        || PREFLIGHT_HEADERS.iter().any(|name| present(name))
        || has_non_simple_content_type(headers)
        || headers.get(header::ORIGIN).is_some_and(|origin| origins.allows(origin));
    if preflighted {
        return Ok(());
    }
    Err(Refusal::bad_request(
        "GET requests need a header a browser sends only after a CORS preflight, as CSRF prevention: `Authorization: Bearer <key>`, `apollo-require-preflight: true` (or `x-apollo-operation-name`) or `Content-Type: application/json`; or use POST with `Content-Type: application/json`",
    ))
}

/// `Authorization: Bearer ...`: a page sets it only through a preflighted request. Other
/// schemes are left out on purpose: a browser attaches HTTP Basic, Digest or Negotiate
/// credentials to cross-site requests by itself, as it does cookies.
fn has_bearer_credential(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim_start().split_once(' '))
        .is_some_and(|(scheme, credential)| scheme.eq_ignore_ascii_case("bearer") && !credential.trim().is_empty())
}

/// A `Content-Type` outside the CORS-safelisted three forces a preflight, so such a GET
/// cannot come from a cross-site form or image (the rule Apollo Router applies).
fn has_non_simple_content_type(headers: &HeaderMap) -> bool {
    const SIMPLE: [&str; 3] = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"];
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .is_some_and(|essence| !essence.is_empty() && !SIMPLE.iter().any(|simple| essence.eq_ignore_ascii_case(simple)))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn read_query_string(parts: &Parts) -> Result<BatchRequest, Refusal> {
    let query = parts.uri.query().unwrap_or("");
    async_graphql::http::parse_query_string(query)
        .map(BatchRequest::Single)
        .map_err(|_| Refusal::bad_request("a GET request needs a `query` parameter (and JSON `variables`, if any)"))
}

/// Reads at most `max_bytes` of body (413 past that) and decodes one operation or a batch.
async fn read_body(parts: &Parts, body: Body, max_bytes: usize) -> Result<BatchRequest, Refusal> {
    let too_large = || {
        let violation = LimitViolation {
            limit: Limit::BodyBytes,
            max: max_bytes,
        };
        Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, violation)
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, max_bytes).await.map_err(|_| too_large())?;
    serde_json::from_slice::<BatchRequest>(&bytes).map_err(|error| {
        let message = match error.classify() {
            serde_json::error::Category::Data => {
                "the body is not a GraphQL request: an object with a string `query` and optional `operationName`, `variables` and `extensions` objects (or an array of them)".to_owned()
            }
            _ => format!(
                "the body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
        };
        Refusal::bad_request(&message)
    })
}

/// Refuses oversized batches (or any batch when batching is off) and mutations over GET.
fn check_batch(
    method: &Method,
    batch: &BatchRequest,
    max_batch: usize,
    documents: &ParsedDocuments,
) -> Result<(), Refusal> {
    let requests: Vec<&Request> = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => {
            if max_batch == 0 || requests.len() > max_batch {
                let violation = LimitViolation {
                    limit: Limit::Batch,
                    max: max_batch,
                };
                return Err(Refusal::new(StatusCode::BAD_REQUEST, violation));
            }
            requests.iter().collect()
        }
    };
    // A hash alone (`extensions.persistedQuery`) stands for a document.
    if requests
        .iter()
        .any(|request| request.query.trim().is_empty() && !request.extensions.contains_key("persistedQuery"))
    {
        return Err(Refusal::bad_request("the request has no `query`"));
    }
    if method == Method::GET && requests.iter().any(|request| is_mutation(request, documents)) {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            SchemaError::bad_input("mutations must be sent with POST"),
        ));
    }
    Ok(())
}

/// Whether `request` may run a mutation: the named operation, or any when none is named
/// (parsed through the document cache the admission reads again).
fn is_mutation(request: &Request, documents: &ParsedDocuments) -> bool {
    let Ok(document) = documents.parse(&request.query) else {
        return false;
    };
    let chosen = request.operation_name.as_deref();
    document.operations.iter().any(|(name, operation)| {
        let selected = chosen.is_none_or(|chosen| name.is_some_and(|name| name.as_str() == chosen));
        selected && operation.node.ty == OperationType::Mutation
    })
}

/// `application/graphql-response+json` when the caller accepts it, else `application/json`
/// (the stock handler always answers the former, which breaks JSON-only clients).
fn negotiate(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains(GRAPHQL_RESPONSE_JSON) {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    }
}

fn wants_fresh(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-cache")))
}

/// A response to a request that never executed (it did not parse or validate, or was
/// refused): it has errors without paths and no data.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// With the GraphQL media type a request that could not execute is a 400; with
/// `application/json` every well-formed request answers 200.
fn status_for(media_type: &str, response: &BatchResponse) -> StatusCode {
    let failed_before_execution = match response {
        BatchResponse::Single(response) => is_request_error(response),
        BatchResponse::Batch(_) => false,
    };
    if media_type == GRAPHQL_RESPONSE_JSON && failed_before_execution {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// One response as sent: errors first (the specification's advice), then the data in the
/// order its fields were selected (async-graphql's values keep it; a detour through
/// `serde_json::Value` would sort them), then extensions. One that never executed has no
/// `data` entry at all, as the GraphQL-over-HTTP specification asks.
struct Sent<'a>(&'a async_graphql::Response);

impl serde::Serialize for Sent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let response = self.0;
        let mut map = serializer.serialize_map(None)?;
        if !response.errors.is_empty() {
            map.serialize_entry("errors", &response.errors)?;
        }
        if !is_request_error(response) {
            map.serialize_entry("data", &response.data)?;
        }
        if !response.extensions.is_empty() {
            map.serialize_entry("extensions", &response.extensions)?;
        }
        map.end()
    }
}

fn respond(media_type: &'static str, status: StatusCode, response: BatchResponse) -> axum::response::Response {
    let body = match &response {
        BatchResponse::Single(response) => serde_json::to_vec(&Sent(response)),
        BatchResponse::Batch(responses) => serde_json::to_vec(&responses.iter().map(Sent).collect::<Vec<_>>()),
    };
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "could not serialize a GraphQL response");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
        .into_response()
}

/// A panic anywhere in a request becomes a generic 500; the process keeps serving.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a request handler panicked");
    let body = json!({ "errors": [{ "message": "internal server error", "extensions": { "code": ErrorCode::InternalServerError.as_str() } }] });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}
