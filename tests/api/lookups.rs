//! What the blocks cannot look up by key (a Sales entity by id, a B2B user by exact email)
//! costs one or two requests once the lookup index knows it, a wrong entry is repaired
//! from the block's answer, and `no-cache` still reads each key once per operation.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const NO_CACHE: &[(&str, &str)] = &[("cache-control", "no-cache")];

const ORGANIZATION_ENTITY: &str = "query ($id: ID!) { organization(id: $id) { id salesEntity { uniqueId name } } }";

const IDENTITY_B2B_USER: &str = "query ($id: ID!) { identity(id: $id) { id b2bUser { id email } } }";

/// `query` with `variables`, past the shared cache (`Cache-Control: no-cache`).
async fn query_past_cache(app: &TestApp, query: &str, variables: Value) -> Value {
    let (status, body) = app
        .post_json_with(json!({ "query": query, "variables": variables }), NO_CACHE)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body
}

/// The Sales entities list pages the Sales block was asked for, in order.
fn entity_pages_read(app: &TestApp) -> Vec<String> {
    app.query_strings("sales", "GET", "/entities/")
}

/// A seeded organization with a Sales entity, and the number of entities in Sales.
fn organization_with_entity(app: &TestApp) -> String {
    app.sandbox
        .demo
        .organizations
        .iter()
        .find(|organization| organization.has_sales_entity)
        .expect("an organization with a Sales entity")
        .id
        .to_string()
}

#[tokio::test]
async fn no_cache_still_reads_each_key_once_per_operation() {
    let app = spawn_app().await;
    for server in app.sandbox.servers() {
        server.control.set_latency(std::time::Duration::from_millis(20));
    }
    app.clear_requests();
    let body = query_past_cache(
        &app,
        "query { persons(first: 100) { edges { node { id organization { id name } } } } }",
        json!({}),
    )
    .await;
    let organizations: HashSet<&str> = body["data"]["persons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|edge| edge["node"]["organization"]["id"].as_str())
        .collect();
    assert!(organizations.len() > 1, "{body}");
    let crm = app.block("crm").control.requests();
    let organization_reads = crm.iter().filter(|r| r.path.contains("/organizations/")).count();
    assert_eq!(
        organization_reads,
        organizations.len(),
        "one read per distinct organization"
    );
    app.assert_no_duplicate_requests();
}

#[tokio::test]
async fn a_wrong_entity_position_is_repaired_from_the_block() {
    let app = spawn_app().await;
    let id = organization_with_entity(&app);
    let index = app.gateway.links();
    index
        .record_entity_positions(&[(id.clone(), 7)], 100)
        .await
        .expect("recorded");
    app.clear_requests();

    let body = query_past_cache(&app, ORGANIZATION_ENTITY, json!({ "id": id })).await;
    assert_eq!(
        body["data"]["organization"]["salesEntity"]["uniqueId"],
        id.as_str(),
        "{body}"
    );
    let pages = entity_pages_read(&app);
    assert_eq!(
        pages.first().map(String::as_str),
        Some("page=7&records=100"),
        "{pages:?}"
    );
    assert!(
        pages.contains(&"page=1&records=100".to_owned()),
        "then the walk: {pages:?}"
    );
    let repaired = index.entity_position(&id).await.expect("read").expect("an entry");
    assert_eq!(repaired.page, Some(1), "the walk put the entity back on its page");

    app.clear_requests();
    query_past_cache(&app, ORGANIZATION_ENTITY, json!({ "id": id })).await;
    assert_eq!(entity_pages_read(&app), ["page=1&records=100"]);
}

#[tokio::test]
async fn an_organization_the_gateway_registered_costs_at_most_two_sales_requests() {
    let app = spawn_app().await;
    let body = app
        .query(
            "mutation { registerOrganization(input: { name: \"Difference Engines Ltd\" }) { organization { id } } }",
            json!({}),
        )
        .await;
    let id = body["data"]["registerOrganization"]["organization"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let position = app.gateway.links().entity_position(&id).await.expect("read");
    assert_eq!(
        position.and_then(|p| p.page),
        None,
        "registered: its place is not known yet"
    );
    app.clear_requests();

    let body = query_past_cache(&app, ORGANIZATION_ENTITY, json!({ "id": id })).await;
    assert_eq!(
        body["data"]["organization"]["salesEntity"]["uniqueId"],
        id.as_str(),
        "{body}"
    );
    assert!(entity_pages_read(&app).len() <= 2, "{:?}", entity_pages_read(&app));
    let position = app
        .gateway
        .links()
        .entity_position(&id)
        .await
        .expect("read")
        .expect("entry");
    assert!(position.page.is_some(), "its place is recorded once seen");
}

/// A seeded identity matched to a B2B user by email only, and that user.
fn identity_with_b2b_user(app: &TestApp) -> (String, i64, String) {
    let demo = &app.sandbox.demo;
    demo.identities
        .iter()
        .find_map(|identity| {
            let user = demo
                .b2b_users
                .iter()
                .find(|user| Some(user.id) == identity.b2b_user_id)?;
            (user.listed && identity.in_sales).then(|| (identity.unique_id.clone(), user.id, user.email.clone()))
        })
        .expect("an identity with a B2B user")
}

#[tokio::test]
async fn a_wrong_b2b_email_entry_is_repaired_and_a_right_one_costs_one_request() {
    let app = spawn_app().await;
    let (identity, user_id, email) = identity_with_b2b_user(&app);
    let other = app
        .sandbox
        .demo
        .b2b_users
        .iter()
        .find(|user| user.id != user_id)
        .expect("another B2B user")
        .id;
    let index = app.gateway.links();
    index
        .record_b2b_emails(&[(email.to_uppercase(), other)])
        .await
        .expect("recorded");
    app.clear_requests();

    let body = query_past_cache(&app, IDENTITY_B2B_USER, json!({ "id": identity })).await;
    assert_eq!(body["data"]["identity"]["b2bUser"]["id"], user_id, "{body}");
    let b2b = app.block("b2b").control.requests();
    assert!(
        b2b.iter().any(|r| r.path == format!("/api/v1/users/{other}/")),
        "the recorded user was checked: {b2b:?}"
    );
    assert_eq!(
        index.b2b_user_by_email(&email).await.expect("read"),
        Some(user_id),
        "repaired"
    );

    app.clear_requests();
    query_past_cache(&app, IDENTITY_B2B_USER, json!({ "id": identity })).await;
    let paths: Vec<String> = app
        .block("b2b")
        .control
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        [format!("/api/v1/users/{user_id}/")],
        "one request: the user by id"
    );
}
