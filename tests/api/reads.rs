//! Read queries against the sandbox: data correctness, lazy assembly, no duplicate upstream
//! request within a query, concurrency, pagination and input validation.

use std::{collections::HashSet, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{first_error_extensions, spawn_app};

const IDENTITY_EVERYWHERE: &str = r#"
query ($id: ID!) {
  identity(id: $id) {
    id email displayName phone avatarUrl registeredIn
    sales { uniqueId email firstName lastName phone ordersCount status }
    customer { uniqueId companyName totalSpent }
    search { uniqueId roleName enabled }
    assets { uniqueId assetsCount assets { name serialNumber } entities { name } ownership { assetName } }
    b2bUser { id email division { id name } }
  }
}"#;

#[tokio::test]
async fn an_identity_known_everywhere_is_assembled_from_every_block() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo.identities[0];
    app.clear_requests();

    let body = app.query(IDENTITY_EVERYWHERE, json!({ "id": demo.unique_id })).await;

    assert!(body.get("errors").is_none(), "{body}");
    let identity = &body["data"]["identity"];
    assert_eq!(identity["id"], demo.unique_id.as_str());
    assert_eq!(identity["email"], demo.email.as_str());
    assert_eq!(identity["sales"]["email"], demo.email.as_str());
    assert_eq!(identity["sales"]["firstName"], demo.first_name.as_str());
    assert!(identity["sales"]["ordersCount"].is_i64(), "{identity}");
    assert_eq!(
        identity["assets"]["assets"].as_array().map(Vec::len),
        Some(demo.asset_count)
    );
    let b2b_id = demo.b2b_user_id.expect("first identity has a B2B user");
    assert_eq!(identity["b2bUser"]["id"], b2b_id);
    let b2b_email = identity["b2bUser"]["email"].as_str().expect("email");
    assert_ne!(b2b_email, demo.email, "the sandbox stores B2B emails in another case");
    assert_eq!(b2b_email.to_lowercase(), demo.email);
    let registered: HashSet<&str> = identity["registeredIn"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        registered,
        HashSet::from(["SALES", "CUSTOMER", "SEARCH", "ASSETS", "B2B"])
    );

    app.assert_no_duplicate_requests();
    let sales = app.block("sales").control.requests();
    assert!(
        sales
            .iter()
            .all(|r| r.header("authorization") == Some(&*format!("Bearer {}", app.sandbox.credentials.sales_token)))
    );
    assert!(
        sales
            .iter()
            .all(|r| r.header("appid") == Some(app.sandbox.credentials.sales_app_id.as_str()))
    );
    let b2b = app.block("b2b").control.requests();
    assert_eq!(b2b.len(), 1, "one email lookup");
    assert_eq!(
        b2b[0].header("authorization"),
        Some(&*format!("Token {}", app.sandbox.credentials.b2b_token))
    );
    assert_eq!(app.block("crm").control.request_count(), 0);
}

#[tokio::test]
async fn asking_only_for_sales_calls_only_sales() {
    let app = spawn_app().await;
    let id = &app.sandbox.demo.identities[0].unique_id;
    app.clear_requests();

    let body = app
        .query(
            "query ($id: ID!) { identity(id: $id) { sales { email } } }",
            json!({ "id": id }),
        )
        .await;

    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
    assert_eq!(app.block("sales").control.request_count(), 1);
    for other in ["search", "assets", "b2b", "crm"] {
        assert_eq!(app.block(other).control.request_count(), 0, "{other} was called");
    }
}

#[tokio::test]
async fn an_identity_no_block_knows_is_null() {
    let app = spawn_app().await;
    let body = app
        .query(r#"{ identity(id: "nobody-knows-this-id") { id email } }"#, json!({}))
        .await;
    assert_eq!(body, json!({ "data": { "identity": null } }));
}

const PERSONS_FANOUT: &str = r#"
query ($first: Int!) {
  persons(first: $first) {
    totalCount
    edges { cursor node {
      id name primaryEmail lifecycleStage active createdAt
      organization { id name salesEntity { uniqueId name } }
      identity { id sales { ordersCount } search { roleName } assets { assetsCount } b2bUser { email } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

#[tokio::test]
async fn persons_with_organizations_and_identities_cost_one_request_per_distinct_key() {
    let app = spawn_app().await;
    for server in app.sandbox.servers() {
        server.control.set_latency(Duration::from_millis(30));
    }
    app.clear_requests();

    let body = app.query(PERSONS_FANOUT, json!({ "first": 50 })).await;

    assert!(body.get("errors").is_none(), "{body}");
    let edges = body["data"]["persons"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 50);
    app.assert_no_duplicate_requests();

    let with_identity: Vec<&Value> = edges
        .iter()
        .map(|e| &e["node"])
        .filter(|n| !n["identity"].is_null())
        .collect();
    assert!(!with_identity.is_empty());
    // Every person with an identity id maps to the seeded identity's blocks.
    for node in &with_identity {
        let id = node["identity"]["id"].as_str().expect("id");
        let demo = app.sandbox.demo.identity(id).expect("seeded identity");
        assert_eq!(node["identity"]["sales"].is_null(), !demo.in_sales, "{node}");
        assert_eq!(node["identity"]["search"].is_null(), !demo.in_search, "{node}");
        assert_eq!(node["identity"]["assets"].is_null(), !demo.in_assets, "{node}");
    }
    let organizations: HashSet<&str> = edges
        .iter()
        .filter_map(|e| e["node"]["organization"]["id"].as_str())
        .collect();
    let crm = app.block("crm").control.requests();
    let organization_reads = crm.iter().filter(|r| r.path.contains("/organizations/")).count();
    assert_eq!(
        organization_reads,
        organizations.len(),
        "one organization read per distinct organization"
    );
    assert_eq!(
        crm.iter().filter(|r| r.path.ends_with("/persons/")).count(),
        1,
        "one persons page"
    );
    // Requests to one block go out together, not one after another.
    assert!(
        app.block("search").control.max_in_flight() > 1,
        "Search requests were serialized"
    );
    assert!(
        app.block("crm").control.max_in_flight() > 1,
        "CRM organization requests were serialized"
    );
}

#[tokio::test]
async fn the_second_query_is_answered_from_the_cache() {
    let app = spawn_app().await;
    app.query(PERSONS_FANOUT, json!({ "first": 20 })).await;
    app.clear_requests();
    let again = app.query(PERSONS_FANOUT, json!({ "first": 20 })).await;
    assert!(again.get("errors").is_none(), "{again}");
    assert_eq!(app.total_requests(), 0, "{:?}", app.requests());
}

#[tokio::test]
async fn listed_persons_are_primed_for_later_reads() {
    let app = spawn_app().await;
    let listed = app
        .query("{ persons(first: 10) { edges { node { id } } } }", json!({}))
        .await;
    let id = listed["data"]["persons"]["edges"][3]["node"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.clear_requests();
    let body = app
        .query("query ($id: ID!) { person(id: $id) { id name } }", json!({ "id": id }))
        .await;
    assert_eq!(body["data"]["person"]["id"], id.as_str());
    assert_eq!(app.block("crm").control.request_count(), 0);
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_overlaps() {
    let app = spawn_app().await;
    let all = app
        .query("{ persons(first: 12) { totalCount edges { node { id } } } }", json!({}))
        .await;
    let all_ids: Vec<&str> = all["data"]["persons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["id"].as_str())
        .collect();
    assert!(all["data"]["persons"]["totalCount"].as_u64().expect("total") > 12);

    let mut collected = Vec::new();
    let mut after = Value::Null;
    for _ in 0..4 {
        let page = app
            .query(
                "query ($after: String) { persons(first: 3, after: $after) { edges { node { id } } pageInfo { endCursor hasNextPage hasPreviousPage } } }",
                json!({ "after": after }),
            )
            .await;
        let connection = &page["data"]["persons"];
        collected.extend(
            connection["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["id"].as_str().expect("id").to_owned()),
        );
        assert_eq!(connection["pageInfo"]["hasNextPage"], true);
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(collected, all_ids);

    // An unaligned window (after the 2nd item, 5 items) spans two upstream pages.
    let second = app
        .query("{ persons(first: 2) { pageInfo { endCursor } } }", json!({}))
        .await;
    let after_second = second["data"]["persons"]["pageInfo"]["endCursor"].clone();
    let window = app
        .query(
            "query ($after: String) { persons(first: 5, after: $after) { edges { node { id } } } }",
            json!({ "after": after_second }),
        )
        .await;
    let window_ids: Vec<&str> = window["data"]["persons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["id"].as_str())
        .collect();
    assert_eq!(window_ids, all_ids[2..7].to_vec());
}

#[tokio::test]
async fn first_above_the_cap_is_refused_before_any_request() {
    let app = spawn_app().await;
    app.clear_requests();
    let body = app
        .query("{ persons(first: 101) { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(first_error_extensions(&body)["code"], "BAD_USER_INPUT");
    let body = app
        .query(
            r#"{ persons(first: 5, after: "not-a-cursor") { edges { node { id } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(first_error_extensions(&body)["code"], "BAD_USER_INPUT");
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn malformed_ids_are_refused_and_unknown_ids_are_null() {
    let app = spawn_app().await;
    app.clear_requests();
    let body = app.query(r#"{ person(id: "not-a-uuid") { id } }"#, json!({})).await;
    assert_eq!(first_error_extensions(&body)["code"], "BAD_USER_INPUT");
    assert_eq!(app.total_requests(), 0);
    let body = app.query(r#"{ person(id: "00000000-0000-4000-8000-000000000000") { id } organization(id: "00000000-0000-4000-8000-000000000001") { id } b2bUser(id: 999999) { id } }"#, json!({})).await;
    assert_eq!(
        body,
        json!({ "data": { "person": null, "organization": null, "b2bUser": null } })
    );
}

#[tokio::test]
async fn an_organization_lists_its_persons_and_its_sales_entity() {
    let app = spawn_app().await;
    let organization = app
        .sandbox
        .demo
        .organizations
        .iter()
        .find(|o| o.has_sales_entity)
        .expect("an organization with an entity");
    let members: HashSet<String> = app
        .sandbox
        .demo
        .persons
        .iter()
        .filter(|p| p.organization == Some(organization.id))
        .map(|p| p.id.to_string())
        .collect();
    let body = app
        .query(
            "query ($id: ID!) { organization(id: $id) { name salesEntity { uniqueId name } persons(first: 100) { totalCount edges { node { id organization { id } } } } } }",
            json!({ "id": organization.id.to_string() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let found = &body["data"]["organization"];
    assert_eq!(found["name"], organization.name.as_str());
    assert_eq!(found["salesEntity"]["uniqueId"], organization.id.to_string());
    let listed: HashSet<String> = found["persons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed, members);
    assert_eq!(found["persons"]["totalCount"], members.len());
}

#[tokio::test]
async fn persons_filters_reach_the_crm() {
    let app = spawn_app().await;
    app.clear_requests();
    let body = app
        .query(
            r#"{ persons(first: 5, filter: { lifecycleStage: CUSTOMER, ownerId: 2, metadataHasKey: "source", createdAfter: "2020-01-01T00:00:00Z" }) { edges { node { lifecycleStage ownerId } } } }"#,
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    for edge in body["data"]["persons"]["edges"].as_array().expect("edges") {
        assert_eq!(edge["node"]["lifecycleStage"], "CUSTOMER");
        assert_eq!(edge["node"]["ownerId"], 2);
    }
    let request = &app.block("crm").control.requests()[0];
    let query = request.query.clone().unwrap_or_default();
    for expected in [
        "lifecycle_stage=customer",
        "owner=2",
        "metadata__has_key=source",
        "created_at__gte=2020-01-01T00%3A00%3A00Z",
        "page=1",
        "page_size=5",
    ] {
        assert!(query.contains(expected), "{expected} missing from {query}");
    }
}

#[tokio::test]
async fn identities_directory_fills_detail_only_fields() {
    let app = spawn_app().await;
    let body = app
        .query(
            "{ identities(first: 5) { totalCount edges { node { id sales { email phone ordersCount } } } } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    for edge in body["data"]["identities"]["edges"].as_array().expect("edges") {
        let id = edge["node"]["id"].as_str().expect("id");
        let demo = app.sandbox.demo.identity(id).expect("seeded");
        assert_eq!(edge["node"]["sales"]["phone"].as_str(), demo.phone.as_deref(), "{edge}");
        assert!(
            edge["node"]["sales"]["ordersCount"].is_i64(),
            "list items lack ordersCount; the detail must fill it: {edge}"
        );
    }
    app.assert_no_duplicate_requests();
}

#[tokio::test]
async fn b2b_users_are_read_by_id() {
    let app = spawn_app().await;
    let user = &app.sandbox.demo.b2b_users[0];
    let body = app
        .query(
            "query ($id: Int!) { b2bUser(id: $id) { id email isActive division { id } } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(body["data"]["b2bUser"]["email"], user.email.as_str());
    assert_eq!(body["data"]["b2bUser"]["division"]["id"], user.division_id);
    assert!(!body.to_string().contains("shop_token") && !body.to_string().contains("shopToken"));
}
