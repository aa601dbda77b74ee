//! Each block's own lists: `b2bUsers` (every documented filter, the block's paging and
//! total), `salesEntities` (the block's paging), `assetsUsers` (an unpaged list paged by
//! the gateway, read to the end or refused).

use std::sync::{Arc, Mutex};

use axum::{Router, extract::Query, routing::get};
use blocks_gateway::blocks::{BlockError, BlockName, assets::AssetsClient};
use serde_json::{Value, json};

use crate::helpers::{assets_client_at, first_error_extensions, spawn_app};

const B2B_USERS: &str = r#"
query ($first: Int!, $after: String, $filter: B2BUserFilter) {
  b2bUsers(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { node { id email firstName lastName phoneNumber isActive remoteId division { id divisionType } } }
  }
}"#;

const SALES_ENTITIES: &str = r#"
query ($first: Int!, $after: String) {
  salesEntities(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id uniqueId name entityType } }
  }
}"#;

const ASSETS_USERS: &str = r#"
query ($first: Int!, $after: String) {
  assetsUsers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id uniqueId email } }
  }
}"#;

/// The nodes' `field` values of a connection.
fn column<'a>(connection: &'a Value, field: &str) -> Vec<&'a Value> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges in {connection}"))
        .iter()
        .map(|edge| &edge["node"][field])
        .collect()
}

#[tokio::test]
async fn b2b_users_are_paged_in_the_blocks_order_with_its_total() {
    let app = spawn_app().await;
    let listed: Vec<i64> = app
        .sandbox
        .demo
        .b2b_users
        .iter()
        .filter(|u| u.listed)
        .map(|u| u.id)
        .collect();
    assert!(
        listed.len() < app.sandbox.demo.b2b_users.len(),
        "some users lack a remote id"
    );
    app.clear_requests();
    let first = app.query(B2B_USERS, json!({ "first": 5 })).await;
    let page = &first["data"]["b2bUsers"];
    assert_eq!(page["totalCount"], listed.len(), "{first}");
    let ids = |page: &Value| -> Vec<i64> { column(page, "id").into_iter().filter_map(Value::as_i64).collect() };
    assert_eq!(ids(page), listed[..5]);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let second = app
        .query(B2B_USERS, json!({ "first": 5, "after": page["pageInfo"]["endCursor"] }))
        .await;
    let page = &second["data"]["b2bUsers"];
    assert_eq!(ids(page), listed[5..10]);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(
        app.query_strings("b2b", "GET", "/api/v1/users/"),
        ["limit=5&page=1", "limit=5&page=2"]
    );
}

#[tokio::test]
async fn every_documented_b2b_filter_reaches_the_block_and_narrows_the_list() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let sub_divisions: Vec<i64> = demo
        .b2b_divisions
        .iter()
        .filter(|d| d.division_type == "sub")
        .map(|d| d.id)
        .collect();
    let active_in_sub = demo
        .b2b_users
        .iter()
        .filter(|u| u.listed && u.is_active && sub_divisions.contains(&u.division_id))
        .count();
    let cases = [
        (
            json!({ "isActive": true, "divisionType": "SUB" }),
            "is_active=true&division_type=sub",
            active_in_sub,
        ),
        // Contains, in any case: three partner desks are listed (a fourth has no remote id).
        (json!({ "email": "partner-SHOP" }), "email=partner-SHOP", 3),
        (json!({ "firstName": "purch" }), "first_name=purch", 3),
        (
            json!({ "lastName": "DESK", "phoneNumber": "0555", "division": 1 }),
            "division=1&last_name=DESK&phone_number=0555",
            1,
        ),
        (json!({ "id": demo.b2b_users[0].id }), "id=1", 1),
    ];
    for (filter, sent, count) in cases {
        app.clear_requests();
        let body = app.query(B2B_USERS, json!({ "first": 100, "filter": filter })).await;
        let page = &body["data"]["b2bUsers"];
        assert_eq!(page["totalCount"], count, "{filter} → {body}");
        assert_eq!(column(page, "id").len(), count);
        assert_eq!(
            app.query_strings("b2b", "GET", "/api/v1/users/"),
            [format!("{sent}&limit=100&page=1")],
            "{filter}"
        );
    }
    let body = app
        .query(
            B2B_USERS,
            json!({ "first": 100, "filter": { "isActive": true, "divisionType": "SUB" } }),
        )
        .await;
    let page = &body["data"]["b2bUsers"];
    for node in page["edges"].as_array().expect("edges").iter().map(|e| &e["node"]) {
        assert_eq!(node["isActive"], true);
        assert_eq!(node["division"]["divisionType"], "sub");
        assert!(node["remoteId"].is_i64(), "listed users have a remote id: {node}");
    }
}

#[tokio::test]
async fn bad_b2b_filters_are_refused_before_any_call() {
    let app = spawn_app().await;
    app.clear_requests();
    for filter in [
        json!({ "id": 0 }),
        json!({ "division": -1 }),
        json!({ "email": "" }),
        json!({ "lastName": "   " }),
        json!({ "phoneNumber": "05\u{1}55" }),
        json!({ "firstName": "x".repeat(255) }),
        json!({ "divisionType": "MAIN_AND_SUB" }),
    ] {
        let body = app.query(B2B_USERS, json!({ "first": 10, "filter": filter })).await;
        assert_eq!(
            first_error_extensions(&body)["code"],
            "BAD_USER_INPUT",
            "{filter} → {body}"
        );
    }
    let body = app.query(B2B_USERS, json!({ "first": 101 })).await;
    assert_eq!(first_error_extensions(&body)["code"], "BAD_USER_INPUT");
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn sales_entities_are_paged_in_the_blocks_order() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let mut expected: Vec<String> = demo
        .organizations
        .iter()
        .filter(|o| o.has_sales_entity)
        .map(|o| o.id.to_string())
        .collect();
    expected.extend(demo.standalone_sales_entity_ids.iter().cloned());
    app.clear_requests();
    let first = app.query(SALES_ENTITIES, json!({ "first": 6 })).await;
    let page = &first["data"]["salesEntities"];
    assert_eq!(page["totalCount"], expected.len(), "{first}");
    let ids: Vec<&str> = column(page, "id").into_iter().filter_map(Value::as_str).collect();
    assert_eq!(ids, expected[..6]);
    assert_eq!(column(page, "id"), column(page, "uniqueId"), "the id is the unique id");
    // A window across two upstream pages: items 4 to 9 at a page size of 6.
    let third = page["edges"][2]["cursor"].clone();
    let body = app.query(SALES_ENTITIES, json!({ "first": 6, "after": third })).await;
    let ids: Vec<&str> = column(&body["data"]["salesEntities"], "id")
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids, expected[3..9], "{body}");
    assert_eq!(
        app.query_strings("sales", "GET", "/entities/"),
        ["page=1&records=6", "page=2&records=6"],
        "page 1 is reused from the cache"
    );
}

#[tokio::test]
async fn assets_users_are_the_whole_list_paged_by_the_gateway() {
    let app = spawn_app().await;
    let expected: Vec<String> = app
        .sandbox
        .demo
        .identities
        .iter()
        .filter(|i| i.in_assets)
        .map(|i| i.unique_id.clone())
        .collect();
    app.clear_requests();
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app.query(ASSETS_USERS, json!({ "first": 7, "after": after })).await;
        let page = &body["data"]["assetsUsers"];
        assert_eq!(page["totalCount"], expected.len(), "{body}");
        seen.extend(
            column(page, "id")
                .into_iter()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
        after = page["pageInfo"]["endCursor"].clone();
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        assert!(seen.len() <= expected.len(), "more pages than users");
    }
    assert_eq!(seen, expected);
    // The documented request, once: the list is cached briefly and cut by the gateway.
    assert_eq!(app.query_strings("assets", "GET", "/users"), [String::new()]);
    let beyond = app.query(ASSETS_USERS, json!({ "first": 7, "after": after })).await;
    assert_eq!(beyond["data"]["assetsUsers"]["edges"], json!([]), "{beyond}");
    assert_eq!(beyond["data"]["assetsUsers"]["pageInfo"]["hasNextPage"], false);
}

/// An Assets server that pages its users list anyway (3 pages of 2, with `meta`); with
/// `ignore_page` it serves the first page whatever `page` says.
async fn paging_assets(ignore_page: bool) -> (AssetsClient, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let app = Router::new().route(
        "/users",
        get(move |Query(params): Query<Vec<(String, String)>>| {
            let recorder = recorder.clone();
            async move {
                let page: usize = params
                    .iter()
                    .find(|(k, _)| k == "page")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(1);
                if let Ok(mut seen) = recorder.lock() {
                    seen.push(format!("page {page}"));
                }
                let page = if ignore_page { 1 } else { page };
                let data: Vec<Value> = (0..2)
                    .map(|k| {
                        let id = format!("u-{}", (page - 1) * 2 + k);
                        json!({ "id": id, "type": "user_identity", "attributes": { "unique_id": id } })
                    })
                    .collect();
                axum::Json(json!({ "data": data, "meta": { "totalPages": 3, "totalRecords": 6 } }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (assets_client_at(&format!("http://{address}")), seen)
}

#[tokio::test]
async fn a_paged_assets_list_is_read_to_the_end() {
    let (assets, seen) = paging_assets(false).await;
    let users = assets.list_users().await.expect("the whole list");
    let ids: Vec<&str> = users.iter().filter_map(|u| u.unique_id.as_deref()).collect();
    assert_eq!(ids, ["u-0", "u-1", "u-2", "u-3", "u-4", "u-5"]);
    let mut pages = seen.lock().map(|s| s.clone()).unwrap_or_default();
    pages.sort();
    assert_eq!(pages, ["page 1", "page 2", "page 3"]);
}

#[tokio::test]
async fn an_assets_list_served_in_part_is_an_error_not_a_shorter_list() {
    let (assets, _) = paging_assets(true).await;
    match assets.list_users().await {
        Err(error @ BlockError::Incomplete { .. }) => {
            let BlockError::Incomplete { block, read, total } = &error else {
                unreachable!()
            };
            assert_eq!((*block, *read, *total), (BlockName::Assets, 2, 6));
            assert_eq!(error.code().as_str(), "INCOMPLETE");
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
}

#[tokio::test]
async fn a_list_served_in_part_answers_incomplete_to_the_caller() {
    let (assets, _) = paging_assets(true).await;
    let settings = blocks_gateway::config::Settings::from_variables(&[
        ("ASSETS_API_URL", assets.http().base_url().to_string()),
        ("ASSETS_AUTH_TOKEN", "token".to_owned()),
        ("ASSETS_API_KEY", "key".to_owned()),
    ])
    .expect("settings");
    let gateway = blocks_gateway::gateway::Gateway::new(&settings.gateway).expect("gateway");
    let (address, _shutdown) = crate::helpers::serve_on_loopback(gateway, &settings.server).await;
    let answer: Value = reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .json(&json!({ "query": "{ assetsUsers(first: 10) { edges { node { uniqueId } } } }" }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(first_error_extensions(&answer)["code"], "INCOMPLETE", "{answer}");
    assert!(
        answer["data"].is_null() || answer["data"]["assetsUsers"].is_null(),
        "{answer}"
    );
}
