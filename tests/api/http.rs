//! The HTTP surface: media types, GET queries, refused GET mutations, the playground and
//! the health endpoints.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn json_only_clients_get_application_json() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.endpoint())
        .header("accept", "application/json")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({ "data": { "__typename": "Query" } })
    );
}

#[tokio::test]
async fn graphql_response_media_type_is_used_when_accepted_and_bad_documents_are_400() {
    let app = spawn_app().await;
    let send = |query: &'static str| {
        app.http
            .post(app.endpoint())
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query }))
            .send()
    };
    let ok = send("{ __typename }").await.expect("answer");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/graphql-response+json");
    let invalid = send("{ noSuchField }").await.expect("answer");
    assert_eq!(invalid.status(), 400);
}

#[tokio::test]
async fn queries_work_over_get_and_mutations_do_not() {
    let app = spawn_app().await;
    // CSRF prevention: a GET carries a header a browser would have to preflight.
    let query = app
        .http
        .get(app.endpoint())
        .header("apollo-require-preflight", "true")
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(query.status(), 200);
    assert_eq!(
        query.json::<Value>().await.expect("json")["data"]["__typename"],
        "Query"
    );

    let mutation = app
        .http
        .get(app.endpoint())
        .header("apollo-require-preflight", "true")
        .query(&[("query", "mutation { __typename }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(mutation.status(), 405);
    let body: Value = mutation.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_playground_and_health_endpoints_answer() {
    let app = spawn_app().await;
    let base = format!("http://{}", app.address);
    let playground = app.http.get(format!("{base}/")).send().await.expect("answer");
    assert_eq!(playground.status(), 200);
    assert!(playground.text().await.expect("html").contains("graphiql"));
    assert_eq!(
        app.http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("answer")
            .status(),
        200
    );
    let ready = app.http.get(format!("{base}/readyz")).send().await.expect("answer");
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["ready"], true);
    assert_eq!(body["blocks"]["CRM"], "up");
}

/// The answer keeps the order the fields were selected in, as the GraphQL specification
/// asks (clients and people reading the playground expect it), with the errors first.
#[tokio::test]
async fn answers_keep_the_order_of_the_selection() {
    let app = spawn_app().await;
    let text = |query: &'static str| {
        let request = app.http.post(app.endpoint()).json(&json!({ "query": query }));
        async move { request.send().await.expect("answer").text().await.expect("body") }
    };
    let body = text("{ persons(first: 1) { totalCount edges { node { name id active } } } }").await;
    let at = |key: &str| {
        body.find(&format!("\"{key}\""))
            .unwrap_or_else(|| panic!("{key} in {body}"))
    };
    assert!(at("totalCount") < at("edges"), "{body}");
    assert!(at("name") < at("id") && at("id") < at("active"), "{body}");
    let body = text("{ person(id: \"not-a-uuid\") { zeta: id alpha: name } __typename }").await;
    assert!(body.starts_with("{\"errors\":"), "errors come first: {body}");
}
