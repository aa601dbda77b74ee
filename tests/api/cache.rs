//! The shared cache and batching, judged by what the blocks saw: single flight across
//! concurrent requests, list priming, per-kind TTLs, `Cache-Control: no-cache`, tenant
//! separation, 404 negative caching, errors never cached, the byte bound, and fan-outs
//! that cost one request per distinct key. No timing assertions: sleeps only let TTLs pass.

use std::{collections::HashSet, time::Duration};

use blocks_gateway::{cache::CacheSettings, loaders::RequestScope};
use serde_json::{Value, json};

use crate::helpers::{TestApp, first_error_extensions, spawn_app, spawn_app_with};

const PERSON_NAME: &str = "query ($id: ID!) { person(id: $id) { id name } }";

/// Requests the CRM saw for one person's detail.
fn person_reads(app: &TestApp, id: &str) -> usize {
    app.block("crm")
        .control
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/persons/{id}/")))
        .count()
}

fn first_person_id(app: &TestApp) -> String {
    app.sandbox.demo.persons[0].id.to_string()
}

async fn person_name(app: &TestApp, id: &str) -> Value {
    let body = app.query(PERSON_NAME, json!({ "id": id })).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["person"]["name"].clone()
}

/// A cache whose every TTL is `ttl`.
fn short_ttls(ttl: Duration) -> CacheSettings {
    CacheSettings {
        detail_ttl: ttl,
        list_ttl: ttl,
        not_found_ttl: ttl,
        ..CacheSettings::default()
    }
}

#[tokio::test]
async fn ten_concurrent_queries_for_one_cold_person_make_one_request() {
    let app = spawn_app().await;
    let id = first_person_id(&app);
    // Long enough that all ten queries arrive while the first fetch is in flight.
    app.block("crm").control.set_latency(Duration::from_millis(300));

    let queries = (0..10).map(|_| app.query(PERSON_NAME, json!({ "id": id })));
    let answers = futures::future::join_all(queries).await;

    let expected = app.sandbox.demo.persons[0].name.as_str();
    for body in &answers {
        assert_eq!(body["data"]["person"]["name"], expected, "{body}");
    }
    assert_eq!(person_reads(&app, &id), 1);
    assert_eq!(app.block("crm").control.request_count(), 1);
}

#[tokio::test]
async fn persons_listed_then_read_by_id_cost_nothing() {
    let app = spawn_app().await;
    let listed = app
        .query("{ persons(first: 30) { edges { node { id name } } } }", json!({}))
        .await;
    let ids: Vec<String> = listed["data"]["persons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|edge| edge["node"]["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 30, "{listed}");
    app.clear_requests();

    for id in &ids {
        person_name(&app, id).await;
    }

    assert_eq!(app.total_requests(), 0, "{:?}", app.requests());
}

#[tokio::test]
async fn organizations_listed_then_read_by_id_cost_nothing() {
    let app = spawn_app().await;
    let listed = app
        .query("{ organizations(first: 10) { edges { node { id } } } }", json!({}))
        .await;
    let ids: Vec<&str> = listed["data"]["organizations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|edge| edge["node"]["id"].as_str())
        .collect();
    assert!(!ids.is_empty(), "{listed}");
    app.clear_requests();

    for id in &ids {
        let body = app
            .query(
                "query ($id: ID!) { organization(id: $id) { name } }",
                json!({ "id": id }),
            )
            .await;
        assert!(body["data"]["organization"]["name"].is_string(), "{body}");
    }

    assert_eq!(app.total_requests(), 0, "{:?}", app.requests());
}

#[tokio::test]
async fn identities_listed_then_read_with_their_sales_email_cost_nothing() {
    let app = spawn_app().await;
    let listed = app
        .query("{ identities(first: 20) { edges { node { id } } } }", json!({}))
        .await;
    let ids: Vec<&str> = listed["data"]["identities"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|edge| edge["node"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 20, "{listed}");
    app.clear_requests();

    for id in &ids {
        let body = app
            .query(
                "query ($id: ID!) { identity(id: $id) { sales { email } } }",
                json!({ "id": id }),
            )
            .await;
        let expected = app.sandbox.demo.identity(id).expect("seeded").email.as_str();
        assert_eq!(body["data"]["identity"]["sales"]["email"], expected, "{body}");
    }

    assert_eq!(app.total_requests(), 0, "{:?}", app.requests());
}

#[tokio::test]
async fn a_record_is_fetched_again_once_its_ttl_has_passed() {
    let ttl = Duration::from_millis(200);
    let app = spawn_app_with(|_| {}, short_ttls(ttl)).await;
    let id = first_person_id(&app);

    person_name(&app, &id).await;
    person_name(&app, &id).await;
    assert_eq!(person_reads(&app, &id), 1, "the second read within the TTL is cached");

    tokio::time::sleep(ttl * 3).await;
    person_name(&app, &id).await;
    assert_eq!(person_reads(&app, &id), 2, "after the TTL the read goes upstream");
}

#[tokio::test]
async fn each_kind_of_entry_keeps_its_own_ttl() {
    let short = Duration::from_millis(200);
    let cache = CacheSettings {
        detail_ttl: Duration::from_secs(60),
        not_found_ttl: short,
        ..CacheSettings::default()
    };
    let app = spawn_app_with(|_| {}, cache).await;
    let known = first_person_id(&app);
    let unknown = uuid::Uuid::new_v4().to_string();

    person_name(&app, &known).await;
    app.query(PERSON_NAME, json!({ "id": unknown })).await;
    tokio::time::sleep(short * 3).await;
    person_name(&app, &known).await;
    app.query(PERSON_NAME, json!({ "id": unknown })).await;

    assert_eq!(person_reads(&app, &known), 1, "the detail TTL has not passed");
    assert_eq!(person_reads(&app, &unknown), 2, "the 404 TTL has passed");
}

/// Renames a person directly in the sandbox CRM, behind the gateway's back.
async fn rename_upstream(app: &TestApp, id: &str, name: &str) {
    let url = format!("{}/api/crm/persons/{id}/", app.sandbox.crm.base_url);
    let response = app
        .http
        .patch(url)
        .header(
            "authorization",
            format!("Api-Token {}", app.sandbox.credentials.crm_api_key),
        )
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("sandbox answers");
    assert!(response.status().is_success(), "{}", response.status());
}

async fn person_name_without_cache(app: &TestApp, id: &str) -> Value {
    let body: Value = app
        .http
        .post(app.endpoint())
        .header("cache-control", "no-cache")
        .json(&json!({ "query": PERSON_NAME, "variables": { "id": id } }))
        .send()
        .await
        .expect("gateway answers")
        .json()
        .await
        .expect("JSON answer");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["person"]["name"].clone()
}

#[tokio::test]
async fn no_cache_header_bypasses_the_cache_and_refreshes_it() {
    let app = spawn_app().await;
    let id = first_person_id(&app);
    let original = person_name(&app, &id).await;
    rename_upstream(&app, &id, "Renamed Upstream").await;
    assert_eq!(person_name(&app, &id).await, original, "a plain read is served cached");
    app.clear_requests();

    assert_eq!(person_name_without_cache(&app, &id).await, "Renamed Upstream");
    assert_eq!(person_reads(&app, &id), 1, "no-cache goes upstream");

    assert_eq!(
        person_name(&app, &id).await,
        "Renamed Upstream",
        "the cache was refreshed"
    );
    assert_eq!(person_reads(&app, &id), 1, "the refreshed entry answers");
}

async fn execute_as(app: &TestApp, tenant: u64, id: &str) -> Value {
    let request =
        async_graphql::Request::new(PERSON_NAME).variables(async_graphql::Variables::from_json(json!({ "id": id })));
    let scope = RequestScope {
        tenant,
        ..RequestScope::default()
    };
    let response = app.gateway.execute(request, scope).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    response.data.into_json().expect("JSON data")
}

#[tokio::test]
async fn tenants_do_not_share_cache_entries() {
    let app = spawn_app().await;
    let id = first_person_id(&app);

    execute_as(&app, 1, &id).await;
    assert_eq!(person_reads(&app, &id), 1);
    let second = execute_as(&app, 2, &id).await;
    assert_eq!(person_reads(&app, &id), 2, "another tenant goes upstream");
    assert_eq!(second["person"]["id"], id.as_str());

    execute_as(&app, 1, &id).await;
    execute_as(&app, 2, &id).await;
    assert_eq!(person_reads(&app, &id), 2, "each tenant's own entry answers");
}

#[tokio::test]
async fn a_404_is_remembered_within_its_ttl() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    for _ in 0..2 {
        let body = app.query(PERSON_NAME, json!({ "id": unknown })).await;
        assert_eq!(body["data"]["person"], Value::Null, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }

    assert_eq!(person_reads(&app, &unknown), 1);
}

#[tokio::test]
async fn a_failure_is_not_cached() {
    let app = spawn_app().await;
    let id = first_person_id(&app);
    app.block("crm").control.set_failure(1.0, 500);

    let failed = app.query(PERSON_NAME, json!({ "id": id })).await;
    assert_eq!(first_error_extensions(&failed)["code"], "UPSTREAM_ERROR", "{failed}");

    app.block("crm").control.reset_faults();
    let name = person_name(&app, &id).await;
    assert_eq!(name, app.sandbox.demo.persons[0].name.as_str());
    assert_eq!(person_reads(&app, &id), 2, "the read after the failure went upstream");
}

#[tokio::test]
async fn the_cache_stays_within_its_byte_bound() {
    let max_bytes = 30_000;
    let cache = CacheSettings {
        max_bytes,
        ..CacheSettings::default()
    };
    let app = spawn_app_with(|_| {}, cache).await;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    // Every page primes its persons: far more bytes than the bound over a few pages.
    loop {
        let body = app
            .query(
                "query ($after: String) { persons(first: 25, after: $after) { edges { node { id name emails metadata } } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": cursor }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        pages += 1;
        let (entries, bytes) = app.gateway.cache().usage().await;
        assert!(entries > 0, "something is cached");
        assert!(bytes <= max_bytes, "{bytes} bytes held, bound {max_bytes}");
        // Near the bound: the pages weigh more than it, so entries were evicted to fit.
        assert!(bytes > max_bytes / 2, "{bytes} bytes held: the weigher undercounts");
        let info = &body["data"]["persons"]["pageInfo"];
        if info["hasNextPage"] != true || pages >= 20 {
            break;
        }
        cursor = info["endCursor"].as_str().map(str::to_owned);
    }
    assert!(pages >= 3, "the sandbox has several pages of persons");
}

#[tokio::test]
async fn persons_of_several_organizations_cost_one_list_request_each() {
    let app = spawn_app().await;
    app.clear_requests();

    let body = app
        .query(
            "{ organizations(first: 6) { edges { node { id persons(first: 5) { edges { node { id } } } } } } }",
            json!({}),
        )
        .await;

    assert!(body.get("errors").is_none(), "{body}");
    let organizations: Vec<&str> = body["data"]["organizations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|edge| edge["node"]["id"].as_str())
        .collect();
    assert_eq!(organizations.len(), 6, "{body}");
    let requests = app.block("crm").control.requests();
    let person_lists: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/persons/"))
        .filter_map(|r| r.query.as_deref())
        .collect();
    assert_eq!(person_lists.len(), organizations.len(), "{person_lists:?}");
    for organization in &organizations {
        assert_eq!(
            person_lists
                .iter()
                .filter(|query| query.contains(&format!("organization={organization}")))
                .count(),
            1,
            "{organization}: {person_lists:?}"
        );
    }
    assert_eq!(
        requests.len(),
        1 + organizations.len(),
        "one organizations page plus one list each"
    );
}

#[tokio::test]
async fn b2b_users_of_many_identities_cost_one_filtered_request_per_distinct_email() {
    let app = spawn_app().await;
    app.clear_requests();

    let body = app
        .query(
            "{ identities(first: 30) { edges { node { email b2bUser { id } } } } }",
            json!({}),
        )
        .await;

    assert!(body.get("errors").is_none(), "{body}");
    let emails: HashSet<String> = body["data"]["identities"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|edge| edge["node"]["email"].as_str().map(str::to_lowercase))
        .collect();
    assert!(emails.len() > 1, "{body}");
    let lookups = app.block("b2b").control.requests();
    assert_eq!(lookups.len(), emails.len(), "{lookups:?}");
    assert!(
        lookups
            .iter()
            .all(|r| r.query.as_deref().is_some_and(|q| q.contains("email=")))
    );
    assert!(
        body["data"]["identities"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|edge| edge["node"]["b2bUser"]["id"].is_i64()),
        "some identities have B2B users: {body}"
    );
}

// Invalidation after mutations (the lead's tests/api/mutations.rs covers updatePerson,
// mergePersons and linkPersonToUser): each read below is warm before the mutation, so only
// an invalidated cache shows the change.

/// Runs a mutation and fails unless it answered without errors or user errors.
async fn mutate(app: &TestApp, mutation: &str, payload: &str) -> Value {
    let body = app.query(mutation, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let user_errors = &body["data"][payload]["userErrors"];
    assert_eq!(user_errors, &json!([]), "{body}");
    body
}

async fn read(app: &TestApp, query: &str, pointer: &str) -> Value {
    let body = app.query(query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    body.pointer(pointer).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn updating_an_organization_refreshes_it_and_its_persons_view_of_it() {
    let app = spawn_app().await;
    let person = app
        .sandbox
        .demo
        .persons
        .iter()
        .find(|p| p.organization.is_some())
        .expect("a person with an organization");
    let organization = person.organization.expect("organization");
    let through_person = format!(r#"{{ person(id: "{}") {{ organization {{ name }} }} }}"#, person.id);
    let direct = format!(r#"{{ organization(id: "{organization}") {{ name }} }}"#);
    let before = read(&app, &through_person, "/data/person/organization/name").await;
    assert_eq!(read(&app, &direct, "/data/organization/name").await, before);

    mutate(
        &app,
        &format!(
            r#"mutation {{ updateOrganization(input: {{ id: "{organization}", name: "Renamed Organization" }}) {{ userErrors {{ code }} }} }}"#
        ),
        "updateOrganization",
    )
    .await;

    assert_eq!(
        read(&app, &direct, "/data/organization/name").await,
        "Renamed Organization"
    );
    assert_eq!(
        read(&app, &through_person, "/data/person/organization/name").await,
        "Renamed Organization"
    );
}

#[tokio::test]
async fn deleting_a_person_or_an_organization_forgets_it() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let lead = demo
        .persons
        .iter()
        .find(|p| p.unique_id.is_empty() && p.duplicate_group.is_none() && p.platform_user.is_none())
        .expect("a plain lead");
    let organization = demo.organizations.last().expect("an organization").id;
    let person_query = format!(r#"{{ person(id: "{}") {{ name }} }}"#, lead.id);
    let organization_query = format!(r#"{{ organization(id: "{organization}") {{ name }} }}"#);
    assert!(read(&app, &person_query, "/data/person/name").await.is_string());
    assert!(
        read(&app, &organization_query, "/data/organization/name")
            .await
            .is_string()
    );

    let deleted = format!(
        r#"mutation {{ deletePerson(id: "{}") {{ deletedId userErrors {{ code }} }} }}"#,
        lead.id
    );
    mutate(&app, &deleted, "deletePerson").await;
    let deleted =
        format!(r#"mutation {{ deleteOrganization(id: "{organization}") {{ deletedId userErrors {{ code }} }} }}"#);
    mutate(&app, &deleted, "deleteOrganization").await;

    assert_eq!(read(&app, &person_query, "/data/person").await, Value::Null);
    assert_eq!(read(&app, &organization_query, "/data/organization").await, Value::Null);
}

#[tokio::test]
async fn creating_a_person_refreshes_the_persons_list() {
    let app = spawn_app().await;
    let count = "{ persons(first: 1) { totalCount } }";
    let before = read(&app, count, "/data/persons/totalCount")
        .await
        .as_u64()
        .expect("count");

    mutate(
        &app,
        r#"mutation { createPerson(input: { name: "Brand New Person" }) { person { id } userErrors { code } } }"#,
        "createPerson",
    )
    .await;

    assert_eq!(read(&app, count, "/data/persons/totalCount").await, before + 1);
}

#[tokio::test]
async fn updating_an_identity_refreshes_its_block_records() {
    let app = spawn_app().await;
    let id = app.sandbox.demo.identities[0].unique_id.clone();
    let query = format!(r#"{{ identity(id: "{id}") {{ sales {{ firstName }} }} }}"#);
    let before = read(&app, &query, "/data/identity/sales/firstName").await;
    assert_ne!(before, "Zebulon");

    mutate(
        &app,
        &format!(r#"mutation {{ updateIdentity(input: {{ id: "{id}", firstName: "Zebulon" }}) {{ userErrors {{ code }} }} }}"#),
        "updateIdentity",
    )
    .await;

    assert_eq!(read(&app, &query, "/data/identity/sales/firstName").await, "Zebulon");
}

#[tokio::test]
async fn deactivating_a_b2b_user_refreshes_it() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let user = demo
        .b2b_users
        .iter()
        .find(|u| u.is_active && u.division_id != demo.inactive_division_id)
        .expect("an active B2B user");
    let query = format!("{{ b2bUser(id: {}) {{ isActive }} }}", user.id);
    assert_eq!(read(&app, &query, "/data/b2bUser/isActive").await, true);

    mutate(
        &app,
        &format!(
            "mutation {{ setB2BUserActive(id: {}, active: false) {{ userErrors {{ code }} }} }}",
            user.id
        ),
        "setB2BUserActive",
    )
    .await;

    assert_eq!(read(&app, &query, "/data/b2bUser/isActive").await, false);
}
