//! HTTP serving (the only module that knows axum): `POST /graphql` and `GET /graphql`
//! (queries only), GraphiQL at `/`, `/healthz` and `/readyz`.

use std::time::Duration;

use async_graphql::{
    BatchRequest, BatchResponse, ErrorExtensions, Request, Response,
    http::GraphiQLSource,
    parser::{parse_query, types::OperationType},
};
use async_graphql_axum::GraphQLBatchRequest;
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse},
    routing::get,
};
use futures::future::join_all;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{error::ErrorCode, gateway::Gateway, loaders::RequestScope};

/// The media type of the GraphQL-over-HTTP specification.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// Operations one batched request may carry.
const MAX_BATCH: usize = 10;

/// The router over a gateway; tests call it directly or serve it on a port-0 listener.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/", get(playground))
        .route("/graphql", get(graphql).post(graphql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(gateway)
}

/// Serves the router on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn playground() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .title("blocks-gateway")
            .finish(),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when every configured block answers HTTP at all (any status): reachability only.
async fn readyz(State(gateway): State<Gateway>) -> impl IntoResponse {
    let probes = gateway.clients().configured().into_iter().map(|http| async move {
        let reachable = http.probe(Duration::from_secs(2)).await;
        (http.block().label(), reachable)
    });
    let results = join_all(probes).await;
    let ready = results.iter().all(|(_, reachable)| *reachable);
    let blocks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(block, reachable)| {
            (
                block.to_owned(),
                json!(if reachable { "reachable" } else { "unreachable" }),
            )
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "blocks": blocks })))
}

async fn graphql(
    State(gateway): State<Gateway>,
    method: Method,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> axum::response::Response {
    let media_type = negotiate(&headers);
    let scope = RequestScope {
        tenant: 0,
        bypass_cache: wants_fresh(&headers),
    };
    let batch = request.into_inner();
    if let Some(refusal) = refuse(&method, &batch) {
        return respond(media_type, refusal.0, BatchResponse::Single(refusal.1));
    }
    let response = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(gateway.execute(request, scope).await),
        BatchRequest::Batch(requests) => {
            BatchResponse::Batch(join_all(requests.into_iter().map(|request| gateway.execute(request, scope))).await)
        }
    };
    let status = status_for(media_type, &response);
    respond(media_type, status, response)
}

/// Requests refused before execution: mutations over GET, oversized batches.
fn refuse(method: &Method, batch: &BatchRequest) -> Option<(StatusCode, Response)> {
    let requests: Vec<&Request> = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => requests.iter().collect(),
    };
    if requests.len() > MAX_BATCH {
        let message = format!("a batch may carry at most {MAX_BATCH} operations");
        return Some((
            StatusCode::BAD_REQUEST,
            error_response(&message, ErrorCode::BadUserInput),
        ));
    }
    if method == Method::GET && requests.iter().any(|request| is_mutation(request)) {
        let message = "mutations must be sent with POST";
        return Some((
            StatusCode::METHOD_NOT_ALLOWED,
            error_response(message, ErrorCode::BadUserInput),
        ));
    }
    None
}

fn is_mutation(request: &Request) -> bool {
    let Ok(document) = parse_query(&request.query) else {
        return false;
    };
    let chosen = request.operation_name.as_deref();
    document.operations.iter().any(|(name, operation)| {
        let selected = match (chosen, name) {
            (Some(chosen), Some(name)) => chosen == name.as_str(),
            (Some(_), None) => false,
            (None, _) => true,
        };
        selected && operation.node.ty == OperationType::Mutation
    })
}

fn error_response(message: &str, code: ErrorCode) -> Response {
    let error = async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()));
    Response::from_errors(vec![error.into_server_error(async_graphql::Pos::default())])
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

/// With the GraphQL media type a request that could not execute (no `data`) is a 400;
/// with `application/json` every well-formed request answers 200.
fn status_for(media_type: &str, response: &BatchResponse) -> StatusCode {
    let failed_before_execution = match response {
        BatchResponse::Single(response) => response.data == async_graphql::Value::Null && !response.errors.is_empty(),
        BatchResponse::Batch(_) => false,
    };
    if media_type == GRAPHQL_RESPONSE_JSON && failed_before_execution {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

fn respond(media_type: &'static str, status: StatusCode, response: BatchResponse) -> axum::response::Response {
    let body = match serde_json::to_vec(&response) {
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
