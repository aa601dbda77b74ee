//! Bad input never hurts: each kind of malformed request gets a 4xx or a GraphQL error
//! with a code, never a 500 or a panic, and costs no upstream request; plus a bounded
//! property test throwing arbitrary bodies, documents and variables at the router.

use axum::{
    body::Body,
    http::{Request, header},
};
use blocks_gateway::server::{self, Readiness};
use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    helpers::{TestApp, spawn_app},
    limits::post_raw,
};

/// Asserts every error of `body` carries a code, and returns the first one.
fn first_code(body: &Value) -> String {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors: {body}"));
    for error in errors {
        assert!(
            error["extensions"]["code"].is_string(),
            "an error without a code: {body}"
        );
    }
    errors[0]["extensions"]["code"].as_str().unwrap_or_default().to_owned()
}

async fn refused_without_upstream(app: &TestApp, query: &str, variables: Value) -> Value {
    app.clear_requests();
    let (status, body) = app.post_json(json!({ "query": query, "variables": variables })).await;
    assert!(status < 500, "{status}: {body}");
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(app.total_requests(), 0, "bad input costs no upstream request: {body}");
    body
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_code() {
    let app = spawn_app().await;
    for body in [
        "{ \"query\": ",
        "[1, 2",
        "\u{0}\u{1}",
        "",
        "{\"query\": 5}",
        "\"just a string\"",
    ] {
        let (status, answer) = post_raw(&app, body.to_owned()).await;
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(first_code(&answer), "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn json_nested_too_deep_is_refused() {
    let app = spawn_app().await;
    let deep = format!(
        "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (status, _) = post_raw(&app, deep).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn wrong_variable_types_are_refused() {
    let app = spawn_app().await;
    refused_without_upstream(
        &app,
        "query ($n: Int!) { persons(first: $n) { totalCount } }",
        json!({ "n": "ten" }),
    )
    .await;
    refused_without_upstream(
        &app,
        "query ($n: Int!) { persons(first: $n) { totalCount } }",
        json!({ "n": 1.5 }),
    )
    .await;
    refused_without_upstream(
        &app,
        "query ($id: ID!) { person(id: $id) { id } }",
        json!({ "id": null }),
    )
    .await;
    refused_without_upstream(
        &app,
        "query ($id: ID!) { person(id: $id) { id } }",
        json!({ "id": [1] }),
    )
    .await;
}

#[tokio::test]
async fn negative_and_huge_first_are_refused() {
    let app = spawn_app().await;
    for first in ["-1", "101", "2147483647", "2147483648", "-2147483649", "1e3"] {
        let query = format!("{{ persons(first: {first}) {{ totalCount }} }}");
        refused_without_upstream(&app, &query, json!({})).await;
    }
}

#[tokio::test]
async fn invalid_ids_emails_and_enum_values_are_refused() {
    let app = spawn_app().await;
    refused_without_upstream(&app, "{ person(id: \"not-a-uuid\") { id } }", json!({})).await;
    refused_without_upstream(&app, "{ organization(id: \"../../etc\") { id } }", json!({})).await;
    refused_without_upstream(&app, "{ b2bUser(id: -4) { id } }", json!({})).await;
    refused_without_upstream(
        &app,
        "{ persons(filter: { lifecycleStage: NOT_A_STAGE }) { totalCount } }",
        json!({}),
    )
    .await;
    refused_without_upstream(
        &app,
        "query ($s: LifecycleStage) { persons(filter: { lifecycleStage: $s }) { totalCount } }",
        json!({ "s": "lead" }),
    )
    .await;
    let body = app
        .query(
            "query ($e: String!) { identityByEmail(email: $e) { id } }",
            json!({ "e": "not an email" }),
        )
        .await;
    assert!(body["data"]["identityByEmail"].is_null(), "{body}");
    if body.get("errors").is_some() {
        first_code(&body);
    }
}

#[tokio::test]
async fn huge_strings_are_refused_without_reaching_a_block() {
    let app = spawn_app().await;
    let huge = "x".repeat(200_000);
    refused_without_upstream(
        &app,
        "query ($id: ID!) { identity(id: $id) { id } }",
        json!({ "id": huge }),
    )
    .await;
    refused_without_upstream(
        &app,
        "query ($id: ID!) { person(id: $id) { id } }",
        json!({ "id": huge }),
    )
    .await;
    let control = format!("abc{}def", '\u{7}');
    refused_without_upstream(
        &app,
        "query ($id: ID!) { identity(id: $id) { id } }",
        json!({ "id": control }),
    )
    .await;
}

/// Pieces documents are assembled from: valid and invalid syntax, real and unknown fields,
/// good and bad arguments.
const PIECES: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "$v",
    "$",
    "@include(if: true)",
    "@skip",
    "...",
    "...F",
    "fragment F on Query",
    "query",
    "mutation",
    "subscription",
    "persons",
    "persons(first: 2)",
    "persons(first: -5)",
    "persons(first: 1e9)",
    "identity(id: \"x\")",
    "identity(id: $v)",
    "person(id: \"nope\")",
    "organization(id: 7)",
    "b2bUser(id: 0)",
    "edges",
    "node",
    "id",
    "name",
    "totalCount",
    "__typename",
    "__schema",
    "__type(name: \"Query\")",
    "fields",
    "a:",
    "\"str\"",
    "\"\"\"block\"\"\"",
    "\"unterminated",
    "#comment\n",
    ",",
    "null",
    "true",
    "12",
    "-0",
    "1.5e300",
    "filter: { lifecycleStage: LEAD }",
    "filter: { lifecycleStage: 5 }",
    "\u{feff}",
    "é",
    "\u{0}",
];

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|pieces| pieces.join(" "))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map("[a-z$]{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A request body: raw bytes, or a JSON request with a generated document and variables.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (document(), json_value(), prop::option::of(".{0,12}")).prop_map(|(query, variables, name)| {
            json!({ "query": query, "variables": variables, "operationName": name })
                .to_string()
                .into_bytes()
        }),
        (json_value(), json_value()).prop_map(|(query, variables)| {
            json!({ "query": query, "variables": variables })
                .to_string()
                .into_bytes()
        }),
        prop::collection::vec(document(), 0..4).prop_map(|documents| {
            let batch: Vec<Value> = documents.into_iter().map(|query| json!({ "query": query })).collect();
            Value::from(batch).to_string().into_bytes()
        }),
    ]
}

/// Whatever the body, the gateway answers below 500, and every GraphQL error has a code.
#[test]
fn arbitrary_requests_never_get_a_500_or_an_error_without_a_code() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(spawn_app());
    let router = server::router(app.gateway.clone(), &app.server, Readiness::default());
    let config = Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&(body(), any::<bool>()), |(body, as_get)| {
        let request = if as_get {
            let query = String::from_utf8_lossy(&body).into_owned();
            let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
            Request::get(format!("/graphql?query={encoded}"))
                .header("apollo-require-preflight", "true")
                .body(Body::empty())
        } else {
            Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
        }
        .expect("a request");
        let (status, bytes) = runtime.block_on(async {
            let response = router.clone().oneshot(request).await.expect("the router answers");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 4 * 1024 * 1024)
                .await
                .expect("a body");
            (status, bytes)
        });
        prop_assert!(status.as_u16() < 500, "status {status}");
        if let Ok(answer) = serde_json::from_slice::<Value>(&bytes) {
            let responses = match &answer {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            for response in responses {
                for error in response["errors"].as_array().into_iter().flatten() {
                    prop_assert!(error["extensions"]["code"].is_string(), "{response}");
                }
            }
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
