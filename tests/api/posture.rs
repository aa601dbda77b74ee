//! Production posture: CSRF prevention, CORS from an allow-list, introspection and
//! suggestions off on demand, panics contained, and no secret in any response or log line.

use std::time::Duration;

use axum::{Router, routing::get};
use blocks_gateway::{
    blocks::BlockName,
    cache::CacheSettings,
    callers::CallerSettings,
    config::ServerSettings,
    playground::{asset_path, assets},
    server::{self, Readiness},
};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, spawn_app, spawn_app_with},
    log_capture,
};

const DELETE_PERSON: &str = "mutation ($id: ID!) { deletePerson(id: $id) { __typename } }";

/// The CORS preflight a browser sends from `origin` before a `method` with a caller key.
fn preflight(app: &TestApp, origin: &str, method: &str) -> impl Future<Output = reqwest::Result<reqwest::Response>> {
    app.http
        .request(reqwest::Method::OPTIONS, app.endpoint())
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type, authorization")
        .send()
}

fn first_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("")
}

fn person_id(app: &TestApp) -> String {
    app.sandbox.demo.persons[0].id.to_string()
}

#[tokio::test]
async fn csrf_prevention_refuses_simple_requests_before_anything_runs() {
    let app = spawn_app().await;
    let body = json!({ "query": DELETE_PERSON, "variables": { "id": person_id(&app) } }).to_string();

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = app.http.post(app.endpoint()).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("answer");
        assert_eq!(response.status(), 415, "{content_type:?}");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
    }

    let get = app
        .http
        .get(app.endpoint())
        .query(&[("query", "{ persons(first: 1) { totalCount } }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(get.status(), 400);
    let answer: Value = get.json().await.expect("JSON");
    assert!(first_message(&answer).contains("apollo-require-preflight"), "{answer}");
    assert_eq!(app.total_requests(), 0, "nothing reached a block");

    let preflighted = app
        .http
        .get(app.endpoint())
        .header("x-apollo-operation-name", "Count")
        .query(&[("query", "query Count { persons(first: 1) { totalCount } }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(preflighted.status(), 200);

    // A non-simple content type forces a preflight too; a simple one does not.
    let json_typed = app
        .http
        .get(app.endpoint())
        .header("content-type", "application/json")
        .query(&[("query", "{ persons(first: 1) { totalCount } }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(json_typed.status(), 200);
    let text_typed = app
        .http
        .get(app.endpoint())
        .header("content-type", "text/plain")
        .query(&[("query", "{ persons(first: 1) { totalCount } }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(text_typed.status(), 400);
}

/// The `Accept` urql 6 sends with every query (`@urql/core` 6.0.3, `makeFetchOptions` in
/// `dist/urql-core-chunk.mjs`); it adds `Content-Type: application/json` only to a body, so
/// a GET has none.
const URQL_ACCEPT: &str =
    "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed";
/// The `Accept` Apollo Client 4's `HttpLink` sends with every request, beside a
/// `Content-Type: application/json` it sends on GET too (`@apollo/client` 4.3.8,
/// `fallbackHttpConfig` in `link/http/selectHttpOptionsAndBody.js`).
const APOLLO_ACCEPT: &str = "application/graphql-response+json,application/json;q=0.9";
const COUNT_QUERY: &str = "query Count { persons(first: 1) { totalCount } }";
const CALLER_KEY: &str = "frontend-key-5f1c";

/// A GET as urql sends a query that fits in a URL: the request in the query string,
/// `Accept` and whatever `fetchOptions.headers` adds, no `Content-Type`.
fn urql_get(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let mut request = app
        .http
        .get(app.endpoint())
        .query(&[("query", COUNT_QUERY), ("operationName", "Count")])
        .header("accept", URQL_ACCEPT);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

async fn status_and_body(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn urql_and_apollo_requests_pass_csrf_prevention_against_a_keyed_gateway() {
    let app = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::service(&[CALLER_KEY]),
        CacheSettings::default(),
    )
    .await;
    let bearer = format!("Bearer {CALLER_KEY}");
    let counted = |body: &Value| body["data"]["persons"]["totalCount"].is_u64();

    // urql, GET without Content-Type: the caller key proves a preflight.
    let (status, body) = status_and_body(urql_get(&app, &[("authorization", &bearer)])).await;
    assert_eq!(status, 200, "{body}");
    assert!(counted(&body), "{body}");
    // urql, POST (a query too long for a URL, or a mutation).
    let urql_post = app
        .http
        .post(app.endpoint())
        .header("accept", URQL_ACCEPT)
        .header("content-type", "application/json")
        .header("authorization", &bearer)
        .body(json!({ "query": COUNT_QUERY, "operationName": "Count" }).to_string());
    let (status, body) = status_and_body(urql_post).await;
    assert_eq!(status, 200, "{body}");
    assert!(counted(&body), "{body}");
    // Apollo Client, POST (its default) and GET (`useGETForQueries`), JSON-typed both.
    let apollo_body = json!({
        "operationName": "Count",
        "variables": {},
        "extensions": { "clientLibrary": { "name": "@apollo/client", "version": "4.3.8" } },
        "query": COUNT_QUERY,
    });
    let apollo_post = app
        .http
        .post(app.endpoint())
        .header("accept", APOLLO_ACCEPT)
        .header("content-type", "application/json")
        .header("authorization", &bearer)
        .body(apollo_body.to_string());
    let (status, body) = status_and_body(apollo_post).await;
    assert_eq!(status, 200, "{body}");
    assert!(counted(&body), "{body}");
    let apollo_get = app
        .http
        .get(app.endpoint())
        .query(&[
            ("query", COUNT_QUERY),
            ("operationName", "Count"),
            ("variables", "{}"),
            ("extensions", &apollo_body["extensions"].to_string()),
        ])
        .header("accept", APOLLO_ACCEPT)
        .header("content-type", "application/json")
        .header("authorization", &bearer);
    let (status, body) = status_and_body(apollo_get).await;
    assert_eq!(status, 200, "{body}");
    assert!(counted(&body), "{body}");

    // Without the key the caller is refused for what it is: unauthenticated, not forged.
    let (status, body) = status_and_body(urql_get(&app, &[])).await;
    assert_eq!(status, 400, "CSRF prevention still answers first: {body}");
}

#[tokio::test]
async fn get_requests_a_page_could_forge_are_still_refused() {
    let app = spawn_app_with(
        |settings| settings.server.cors_origins = vec![HeaderValue::from_static("https://app.example.com")],
        CacheSettings::default(),
    )
    .await;
    let forgeable: [&[(&str, &str)]; 6] = [
        &[],
        &[("cookie", "session=s3cr3t")],
        &[("authorization", "Basic dXNlcjpwYXNz")],
        &[("authorization", "Bearer ")],
        &[("origin", "https://evil.example.net")],
        &[("content-type", "text/plain"), ("origin", "null")],
    ];
    for headers in forgeable {
        let (status, body) = status_and_body(urql_get(&app, headers)).await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert!(first_message(&body).contains("Authorization: Bearer"), "{body}");
    }
    assert_eq!(app.total_requests(), 0, "nothing reached a block");

    // An open gateway takes a bearer token it does not check as the preflight proof it is,
    // and a browser request from an allowed origin.
    for headers in [
        &[("authorization", "Bearer anything")][..],
        &[("origin", "https://app.example.com")][..],
        &[("x-crm-authorization", "Api-Token t")][..],
    ] {
        let (status, body) = status_and_body(urql_get(&app, headers)).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
    }
}

#[tokio::test]
async fn the_sandbox_lets_a_frontend_dev_server_on_loopback_call() {
    let app = spawn_app_with(
        |settings| settings.server.cors_loopback = true,
        CacheSettings::default(),
    )
    .await;
    let preflight = |origin| preflight(&app, origin, "GET");
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:3000",
        "http://[::1]:8080",
        "https://localhost",
    ] {
        let answer = preflight(origin).await.expect("answer");
        assert!(answer.status().is_success(), "{origin}: {}", answer.status());
        assert_eq!(answer.headers()["access-control-allow-origin"], origin);
        let methods = answer.headers()["access-control-allow-methods"].to_str().unwrap_or("");
        assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
    }
    for origin in [
        "http://localhost.evil.example",
        "http://evil.example:5173",
        "http://127.0.0.2.nip.io",
        "null",
    ] {
        let answer = preflight(origin).await.expect("answer");
        assert!(
            answer.headers().get("access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
    // urql's GET from the dev server needs no extra header: the browser names the origin.
    let (status, body) = status_and_body(urql_get(&app, &[("origin", "http://localhost:5173")])).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn without_an_allowed_origin_the_preflight_is_not_answered() {
    let app = spawn_app().await;
    let answer = preflight(&app, "http://localhost:5173", "POST").await.expect("answer");
    assert!(answer.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn get_queries_need_no_header_when_csrf_prevention_is_off() {
    let app = spawn_app_with(
        |settings| settings.server.csrf_prevention = false,
        CacheSettings::default(),
    )
    .await;
    let get = app
        .http
        .get(app.endpoint())
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(get.status(), 200);
    let text_plain = app
        .http
        .post(app.endpoint())
        .header("content-type", "text/plain")
        .body(json!({ "query": "{ __typename }" }).to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(text_plain.status(), 415, "only JSON bodies are ever served");
}

#[tokio::test]
async fn cors_answers_only_the_allowed_origins() {
    let allowed = "https://app.example.com";
    let app = spawn_app_with(
        |settings| settings.server.cors_origins = vec![HeaderValue::from_static("https://app.example.com")],
        CacheSettings::default(),
    )
    .await;
    let preflight = |origin| preflight(&app, origin, "POST");

    let ok = preflight(allowed).await.expect("answer");
    assert_eq!(ok.headers()["access-control-allow-origin"], allowed);
    let allowed_headers = ok.headers()["access-control-allow-headers"].to_str().unwrap_or("");
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");

    let other = preflight("https://evil.example.net").await.expect("answer");
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let post = app
        .http
        .post(app.endpoint())
        .header("origin", allowed)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(post.headers()["access-control-allow-origin"], allowed);
}

#[tokio::test]
async fn without_cors_origins_no_browser_origin_is_allowed() {
    let app = spawn_app().await;
    let post = app
        .http
        .post(app.endpoint())
        .header("origin", "https://app.example.com")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answer");
    assert!(post.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn introspection_off_means_no_schema_no_suggestions_and_no_playground() {
    let app = spawn_app_with(
        |settings| settings.gateway.introspection = false,
        CacheSettings::default(),
    )
    .await;

    let schema = app.query("{ __schema { types { name } } }", json!({})).await;
    assert!(schema["data"].is_null() || schema.get("data").is_none(), "{schema}");
    assert_eq!(schema["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{schema}");
    let by_name = app.query("{ __type(name: \"Person\") { name } }", json!({})).await;
    assert!(by_name.get("errors").is_some(), "{by_name}");

    let typo = app.query("{ persns(first: 1) { totalCount } }", json!({})).await;
    let message = typo["errors"][0]["message"].as_str().unwrap_or("");
    assert!(!message.contains("Did you mean"), "{message}");

    let playground_paths = [String::new(), asset_path(assets::version(), "playground.js")];
    for path in playground_paths {
        let page = app
            .http
            .get(format!("http://{}/{path}", app.address))
            .send()
            .await
            .expect("answer");
        assert_eq!(page.status(), 404, "/{path}");
    }
}

#[tokio::test]
async fn introspection_on_suggests_fields() {
    let app = spawn_app().await;
    let typo = app.query("{ persns(first: 1) { totalCount } }", json!({})).await;
    let message = typo["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("Did you mean"), "{message}");
}

async fn explode() -> &'static str {
    panic!("secret detail: token-123")
}

#[tokio::test]
async fn a_panic_becomes_a_generic_500_and_the_gateway_keeps_serving() {
    let app = spawn_app().await;
    // The same protective layers the gateway's router runs behind, over one route that
    // panics (no resolver of the gateway panics on purpose).
    let routes = Router::new().route("/panic", get(explode)).merge(server::router(
        app.gateway.clone(),
        &app.server,
        Readiness::default(),
    ));
    let protected = server::protect(routes, &ServerSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, protected).await;
    });

    let panicked = app
        .http
        .get(format!("http://{address}/panic"))
        .send()
        .await
        .expect("an answer despite the panic");
    assert_eq!(panicked.status(), 500);
    let body: Value = panicked.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    assert!(!body.to_string().contains("token-123"), "{body}");

    let after = app
        .http
        .post(format!("http://{address}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("still serving");
    assert_eq!(after.status(), 200);
}

/// Every secret of the sandbox plus the ones a test adds.
fn secrets(app: &TestApp, extra: &[&str]) -> Vec<String> {
    let credentials = &app.sandbox.credentials;
    let mut secrets = vec![
        credentials.sales_token.clone(),
        credentials.sales_app_id.clone(),
        credentials.search_token.clone(),
        credentials.search_app_id.clone(),
        credentials.assets_token.clone(),
        credentials.assets_app_id.clone(),
        credentials.b2b_token.clone(),
        credentials.crm_api_key.clone(),
    ];
    secrets.extend(extra.iter().map(|secret| (*secret).to_owned()));
    secrets
}

#[tokio::test]
async fn no_secret_reaches_a_response_or_a_log_line() {
    let logs = log_capture::install();
    let api_key = "api-key-7d2e91";
    let forwarded = "forwarded-crm-secret-41b";
    let service = spawn_app_with(
        |settings| {
            settings.gateway.callers = CallerSettings::service(&[api_key]);
            settings.gateway.http.request_timeout = Duration::from_millis(300);
            for block in &mut settings.gateway.blocks {
                if block.block == BlockName::B2b {
                    block.base_url = "http://127.0.0.1:9/".parse().expect("url");
                }
            }
        },
        CacheSettings::default(),
    )
    .await;
    let id = service.sandbox.demo.identities[0].unique_id.clone();
    service.block("search").control.set_failure(1.0, 401);
    service.block("assets").control.set_hang(true);
    service.block("sales").control.set_garbage(true);
    let everything = "query ($id: ID!) { identity(id: $id) { sales { email } search { name } assets { username } b2bUser { email } } persons(first: 2) { totalCount } }";
    let mut responses = Vec::new();
    for key in ["", "wrong-key", api_key] {
        let response = service
            .http
            .post(service.endpoint())
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({ "query": everything, "variables": { "id": id } }))
            .send()
            .await
            .expect("answer");
        responses.push(response.text().await.expect("body"));
    }

    let forward = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::forward(),
        CacheSettings::default(),
    )
    .await;
    let response = forward
        .http
        .post(forward.endpoint())
        .header("x-crm-authorization", format!("Api-Token {forwarded}"))
        .json(&json!({ "query": "{ persons(first: 2) { totalCount } }" }))
        .send()
        .await
        .expect("answer");
    responses.push(response.text().await.expect("body"));
    assert!(responses[3].contains("UNAUTHENTICATED"), "{}", responses[3]);

    let logged = logs.contents();
    assert!(!logged.is_empty(), "the capture is on");
    let mut all_secrets = secrets(&service, &[api_key, forwarded]);
    all_secrets.extend(secrets(&forward, &[]));
    for secret in &all_secrets {
        assert!(!logged.contains(secret.as_str()), "a secret was logged");
        for response in &responses {
            assert!(!response.contains(secret.as_str()), "a secret was answered: {response}");
        }
    }
}
