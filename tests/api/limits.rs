//! What a query may cost: each operation limit just under and just over; a refused
//! operation names its limit and costs no upstream request; the playground's introspection
//! query passes the depth and complexity limits.

use blocks_gateway::{cache::CacheSettings, config::Settings, limits::OperationLimits};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

/// graphql-js 16's `getIntrospectionQuery()`, as GraphiQL sends it.
const INTROSPECTION_QUERY: &str = include_str!("../fixtures/graphql/introspection.graphql");

async fn spawn_with_limits(tweak: impl FnOnce(&mut OperationLimits)) -> TestApp {
    spawn_app_with(
        |settings: &mut Settings| tweak(&mut settings.gateway.limits),
        CacheSettings::default(),
    )
    .await
}

/// Asserts the body is a refusal naming `limit` with `max`, and that no block was called.
fn assert_refused(app: &TestApp, body: &Value, limit: &str, max: usize) {
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(error["extensions"]["limit"], limit, "{body}");
    assert_eq!(error["extensions"]["max"], max, "{body}");
    let message = error["message"].as_str().unwrap_or("");
    assert!(max == 0 || message.contains(&max.to_string()), "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    assert_eq!(app.total_requests(), 0, "a refused operation costs no upstream request");
}

fn assert_ran(body: &Value) {
    assert!(body["data"].is_object(), "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn depth_limit() {
    let app = spawn_with_limits(|limits| limits.max_depth = 4).await;
    assert_ran(
        &app.query("{ persons(first: 1) { edges { node { id } } } }", json!({}))
            .await,
    );
    app.clear_requests();
    let body = app
        .query(
            "{ persons(first: 1) { edges { node { organization { id } } } } }",
            json!({}),
        )
        .await;
    assert_refused(&app, &body, "depth", 4);
}

#[tokio::test]
async fn alias_limit() {
    let app = spawn_with_limits(|limits| limits.max_aliases = 2).await;
    assert_ran(&app.query("{ a: __typename b: __typename }", json!({})).await);
    let body = app
        .query("{ a: __typename b: __typename c: __typename }", json!({}))
        .await;
    assert_refused(&app, &body, "aliases", 2);
}

#[tokio::test]
async fn aliases_in_fragments_count_too() {
    let app = spawn_with_limits(|limits| limits.max_aliases = 2).await;
    let body = app
        .query(
            "{ a: __typename ...F } fragment F on Query { b: __typename c: __typename }",
            json!({}),
        )
        .await;
    assert_refused(&app, &body, "aliases", 2);
}

#[tokio::test]
async fn root_field_limit_counts_through_fragments() {
    let app = spawn_with_limits(|limits| limits.max_root_fields = 3).await;
    assert_ran(
        &app.query(
            "{ __typename a: __typename ...F } fragment F on Query { b: __typename }",
            json!({}),
        )
        .await,
    );
    let body = app
        .query(
            "{ __typename a: __typename ...F } fragment F on Query { b: __typename c: __typename }",
            json!({}),
        )
        .await;
    assert_refused(&app, &body, "rootFields", 3);
}

#[tokio::test]
async fn directive_limit() {
    let app = spawn_with_limits(|limits| limits.max_directives = 1).await;
    assert_ran(&app.query("{ __typename @include(if: true) }", json!({})).await);
    let body = app
        .query("{ __typename @include(if: true) @skip(if: false) }", json!({}))
        .await;
    assert_refused(&app, &body, "directives", 1);
}

#[tokio::test]
async fn token_limit() {
    // 11 tokens: `{`, three times `x : __typename`, `}`.
    let eleven = "{ a: __typename b: __typename c: __typename }";
    let app = spawn_with_limits(|limits| limits.max_tokens = 11).await;
    assert_ran(&app.query(eleven, json!({})).await);
    let twelve = "{ a: __typename b: __typename c: __typename __typename } # comments and, commas, are free";
    let body = app.query(twelve, json!({})).await;
    assert_refused(&app, &body, "tokens", 11);
}

#[tokio::test]
async fn complexity_limit_multiplies_by_first() {
    // persons(first: n) { edges { node { id } } } costs n * 3 + 1.
    let app = spawn_with_limits(|limits| limits.max_complexity = 49).await;
    assert_ran(
        &app.query("{ persons(first: 16) { edges { node { id } } } }", json!({}))
            .await,
    );
    app.clear_requests();
    let body = app
        .query(
            "query ($n: Int!) { persons(first: $n) { edges { node { id } } } }",
            json!({ "n": 17 }),
        )
        .await;
    assert_refused(&app, &body, "complexity", 49);
}

#[tokio::test]
async fn nested_connections_are_refused_by_default() {
    let app = spawn_with_limits(|_| {}).await;
    let body = app
        .query(
            "{ organizations(first: 100) { edges { node { persons(first: 100) { edges { node { id name } } } } } } }",
            json!({}),
        )
        .await;
    assert_refused(&app, &body, "complexity", OperationLimits::default().max_complexity);
}

#[tokio::test]
async fn the_playground_introspection_query_passes_the_default_limits() {
    let app = spawn_with_limits(|_| {}).await;
    let body = app.query(INTROSPECTION_QUERY, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "Identity"));
}

#[tokio::test]
async fn introspection_that_nests_type_lists_is_refused() {
    let app = spawn_with_limits(|_| {}).await;
    let body = app
        .query(
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
            json!({}),
        )
        .await;
    assert_refused(&app, &body, "introspectionDepth", 2);
}

#[tokio::test]
async fn introspection_mixed_with_data_keeps_the_depth_limit() {
    let app = spawn_with_limits(|limits| limits.max_depth = 3).await;
    let body = app
        .query(
            "{ persons(first: 1) { totalCount } __type(name: \"Person\") { fields { type { ofType { name } } } } }",
            json!({}),
        )
        .await;
    assert_refused(&app, &body, "depth", 3);
}

/// POSTs `body` as JSON as it is; the status and the JSON answer.
pub(crate) async fn post_raw(app: &TestApp, body: String) -> (u16, Value) {
    let response = app
        .http
        .post(app.endpoint())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn batch_limit() {
    let app = spawn_with_limits(|limits| limits.max_batch = 2).await;
    let operation = json!({ "query": "{ __typename }" });
    let (status, body) = post_raw(&app, json!([operation, operation]).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = post_raw(&app, json!([operation, operation, operation]).to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert_refused(&app, &body, "batch", 2);
}

#[tokio::test]
async fn batching_can_be_turned_off() {
    let app = spawn_with_limits(|limits| limits.max_batch = 0).await;
    let (status, body) = post_raw(&app, json!([{ "query": "{ __typename }" }]).to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert_refused(&app, &body, "batch", 0);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("turned off")
    );
}

#[tokio::test]
async fn body_size_limit() {
    let app = spawn_with_limits(|limits| limits.max_body_bytes = 200).await;
    let padded = |size: usize| {
        let body = json!({ "query": "{ __typename }", "extensions": { "pad": "" } }).to_string();
        let pad = "x".repeat(size - body.len());
        json!({ "query": "{ __typename }", "extensions": { "pad": pad } }).to_string()
    };
    let (status, body) = post_raw(&app, padded(200)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_raw(&app, padded(201)).await;
    assert_eq!(status, 413, "{body}");
    assert_refused(&app, &body, "bodyBytes", 200);
}

#[tokio::test]
async fn a_fragment_bomb_is_answered_promptly() {
    let app = spawn_with_limits(|_| {}).await;
    let mut document = String::from("{ ...F0 }");
    for level in 0..40 {
        document.push_str(&format!(
            " fragment F{level} on Query {{ ...F{next} ...F{next} }}",
            next = level + 1
        ));
    }
    document.push_str(" fragment F40 on Query { __typename }");
    let started = std::time::Instant::now();
    let body = app.query(&document, json!({})).await;
    // A generous bound against an expansion of 2^40 selections.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(body["errors"][0]["extensions"]["code"].is_string(), "{body}");
}
