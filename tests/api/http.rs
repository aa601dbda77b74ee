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
