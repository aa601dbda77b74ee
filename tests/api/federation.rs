//! The federation subgraph (`GATEWAY_FEDERATION`) through the HTTP endpoint: `_service`
//! answers `subgraph.graphql`; `_entities` answers a mixed list in order, through the
//! operation's loaders and the shared cache (one request per distinct key, sent together),
//! with null for an unknown key and an error at its own index for a failed one; admission,
//! callers and limits apply to both fields as to any other.

use blocks_gateway::{cache::CacheSettings, callers::CallerSettings, config::Settings};
use blocks_sandbox::{DemoIdentity, DemoIndex};
use serde_json::{Value, json};

use crate::helpers::{TestApp, first_error_extensions, spawn_app, spawn_app_with};

const ENTITIES: &str = "query ($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Person { id name }
    ... on Organization { id name }
    ... on Identity { id email }
  }
}";

const UNKNOWN_UUID: &str = "00000000-0000-4000-8000-00000000dead";

async fn spawn_subgraph_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(
        |settings| {
            settings.gateway.federation = true;
            tweak(settings);
        },
        CacheSettings::default(),
    )
    .await
}

async fn spawn_subgraph() -> TestApp {
    spawn_subgraph_with(|_| {}).await
}

fn representation(typename: &str, id: &str) -> Value {
    json!({ "__typename": typename, "id": id })
}

async fn entities(app: &TestApp, representations: Vec<Value>) -> Value {
    app.query(ENTITIES, json!({ "representations": representations })).await
}

/// An identity Sales knows (its email comes from there).
fn sales_identity(demo: &DemoIndex) -> &DemoIdentity {
    demo.identities.iter().find(|i| i.in_sales).expect("a Sales identity")
}

fn person_path(id: &str) -> String {
    format!("/api/crm/persons/{id}/")
}

#[tokio::test]
async fn service_sdl_is_the_committed_subgraph_file() {
    let app = spawn_subgraph().await;
    let body = app.query("{ _service { sdl } }", json!({})).await;
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/subgraph.graphql"))
        .expect("subgraph.graphql exists at the repository root");
    assert_eq!(body["data"]["_service"]["sdl"], committed.as_str(), "{body}");
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn entities_answer_a_mixed_list_in_order_with_null_for_unknown_keys() {
    let app = spawn_subgraph().await;
    let demo = &app.sandbox.demo;
    let person = &demo.persons[0];
    let organization = &demo.organizations[0];
    let identity = sales_identity(demo);
    let person_id = person.id.to_string();
    let organization_id = organization.id.to_string();
    app.clear_requests();

    let body = entities(
        &app,
        vec![
            representation("Person", &person_id),
            representation("Organization", &organization_id),
            representation("Identity", &identity.unique_id),
            // The same person again, its UUID in capitals: the same key.
            representation("Person", &person_id.to_uppercase()),
            representation("Person", UNKNOWN_UUID),
            representation("Organization", UNKNOWN_UUID),
            representation("Identity", "nobody-knows-this-id"),
        ],
    )
    .await;

    assert_eq!(
        body,
        json!({ "data": { "_entities": [
            { "__typename": "Person", "id": person_id, "name": person.name },
            { "__typename": "Organization", "id": organization_id, "name": organization.name },
            { "__typename": "Identity", "id": identity.unique_id, "email": identity.email },
            { "__typename": "Person", "id": person_id, "name": person.name },
            null,
            null,
            null,
        ] } })
    );
    let crm = &app.block("crm").control;
    assert_eq!(crm.count("GET", &person_path(&person_id)), 1, "the person is read once");
    assert_eq!(crm.count("GET", &person_path(UNKNOWN_UUID)), 1);
    assert_eq!(
        crm.count("GET", &format!("/api/crm/organizations/{organization_id}/")),
        1
    );
    app.assert_no_duplicate_requests();
}

#[tokio::test]
async fn many_person_keys_are_one_round_of_requests_one_per_distinct_key_then_cached() {
    let app = spawn_subgraph().await;
    let persons: Vec<String> = app
        .sandbox
        .demo
        .persons
        .iter()
        .take(12)
        .map(|p| p.id.to_string())
        .collect();
    // Every key twice, interleaved.
    let representations: Vec<Value> = persons
        .iter()
        .chain(persons.iter())
        .map(|id| representation("Person", id))
        .collect();
    let crm = &app.block("crm").control;
    // Slow enough that requests sent one after another could not overlap.
    crm.set_latency(std::time::Duration::from_millis(40));
    app.clear_requests();

    let body = entities(&app, representations.clone()).await;

    let answered: Vec<&str> = body["data"]["_entities"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|entity| entity["id"].as_str().expect("every person found"))
        .collect();
    let expected: Vec<&str> = persons.iter().chain(persons.iter()).map(String::as_str).collect();
    assert_eq!(answered, expected);
    assert_eq!(
        crm.count("GET", "/api/crm/persons/"),
        persons.len(),
        "one read per distinct key"
    );
    app.assert_no_duplicate_requests();
    assert!(crm.max_in_flight() > 1, "the reads were sent one after another");

    app.clear_requests();
    let again = entities(&app, representations.clone()).await;
    assert_eq!(again, body);
    assert_eq!(app.total_requests(), 0, "the second time comes from the cache");

    // Past the cache, duplicates still cost nothing.
    app.clear_requests();
    let request = json!({ "query": ENTITIES, "variables": { "representations": representations } });
    let (_, fresh) = app.post_json_with(request, &[("cache-control", "no-cache")]).await;
    assert_eq!(fresh, body);
    assert_eq!(crm.count("GET", "/api/crm/persons/"), persons.len());
}

#[tokio::test]
async fn entities_of_a_list_already_read_cost_no_request() {
    let app = spawn_subgraph().await;
    let listed = app
        .query("{ persons(first: 5) { edges { node { id name } } } }", json!({}))
        .await;
    let nodes: Vec<&Value> = listed["data"]["persons"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|edge| &edge["node"])
        .collect();
    app.clear_requests();

    let body = entities(
        &app,
        nodes
            .iter()
            .map(|node| representation("Person", node["id"].as_str().expect("id")))
            .collect(),
    )
    .await;

    let expected: Vec<Value> = nodes
        .iter()
        .map(|node| json!({ "__typename": "Person", "id": node["id"], "name": node["name"] }))
        .collect();
    assert_eq!(body, json!({ "data": { "_entities": expected } }));
    assert_eq!(app.total_requests(), 0, "{:?}", app.requests());
}

#[tokio::test]
async fn a_failing_block_fails_only_its_own_entities() {
    let app = spawn_subgraph().await;
    let demo = &app.sandbox.demo;
    let identity = sales_identity(demo);
    app.block("crm").control.set_failure(1.0, 500);

    let body = entities(
        &app,
        vec![
            representation("Person", &demo.persons[0].id.to_string()),
            representation("Identity", &identity.unique_id),
            representation("Organization", &demo.organizations[0].id.to_string()),
        ],
    )
    .await;

    assert_eq!(
        body["data"],
        json!({ "_entities": [
            null,
            { "__typename": "Identity", "id": identity.unique_id, "email": identity.email },
            null,
        ] })
    );
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{body}"));
    let mut paths: Vec<&Value> = errors.iter().map(|error| &error["path"]).collect();
    paths.sort_by_key(|path| path[1].as_i64());
    assert_eq!(paths, [&json!(["_entities", 0]), &json!(["_entities", 2])]);
    for error in errors {
        assert_eq!(error["extensions"]["code"], "UPSTREAM_ERROR", "{error}");
        assert_eq!(error["extensions"]["block"], "CRM", "{error}");
        assert_eq!(error["extensions"]["status"], 500, "{error}");
    }
}

#[tokio::test]
async fn an_entity_field_error_keeps_the_entity_index_in_its_path() {
    let app = spawn_subgraph().await;
    let demo = &app.sandbox.demo;
    let identity = sales_identity(demo);
    app.block("sales").control.set_failure(1.0, 500);

    let body = app
        .query(
            "query ($r: [_Any!]!) { _entities(representations: $r) {
                ... on Person { name }
                ... on Identity { id sales { email } }
            } }",
            json!({ "r": [
                representation("Person", &demo.persons[0].id.to_string()),
                representation("Identity", &identity.unique_id),
            ] }),
        )
        .await;

    let answered = &body["data"]["_entities"];
    assert_eq!(answered[0], json!({ "name": demo.persons[0].name }), "{body}");
    assert_eq!(answered[1]["id"], identity.unique_id.as_str(), "{body}");
    assert!(answered[1]["sales"].is_null(), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["_entities", 1, "sales"]), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["block"], "SALES");
}

#[tokio::test]
async fn a_wrong_representation_is_refused_at_its_index_only() {
    let app = spawn_subgraph().await;
    let person = &app.sandbox.demo.persons[0];
    app.clear_requests();

    let body = entities(
        &app,
        vec![
            json!({ "__typename": "Asset", "id": "1" }),
            representation("Person", "not-a-uuid"),
            json!({ "__typename": "Organization" }),
            json!({ "id": person.id }),
            representation("Person", &person.id.to_string()),
        ],
    )
    .await;

    assert_eq!(
        body["data"]["_entities"],
        json!([null, null, null, null, { "__typename": "Person", "id": person.id, "name": person.name }])
    );
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{body}"));
    let mut indexes: Vec<i64> = errors.iter().filter_map(|error| error["path"][1].as_i64()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2, 3]);
    assert!(
        errors
            .iter()
            .all(|error| error["extensions"]["code"] == "BAD_USER_INPUT"),
        "{body}"
    );
    assert_eq!(app.total_requests(), 1, "only the valid person was read");
}

#[tokio::test]
async fn without_the_setting_the_federation_fields_do_not_exist() {
    let app = spawn_app().await;
    let body = app.query("{ _service { sdl } }", json!({})).await;
    assert_eq!(first_error_extensions(&body)["code"], "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("_service")),
        "{body}"
    );
    let body = entities(&app, vec![representation("Person", UNKNOWN_UUID)]).await;
    assert_eq!(first_error_extensions(&body)["code"], "BAD_USER_INPUT");
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn with_introspection_off_the_sdl_is_refused_and_entities_still_answer() {
    let app = spawn_subgraph_with(|settings| settings.gateway.introspection = false).await;
    let body = app.query("{ _service { sdl } }", json!({})).await;
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(first_error_extensions(&body)["code"], "BAD_USER_INPUT");
    let person = &app.sandbox.demo.persons[0];
    let body = entities(&app, vec![representation("Person", &person.id.to_string())]).await;
    assert_eq!(body["data"]["_entities"][0]["name"], person.name.as_str(), "{body}");
}

#[tokio::test]
async fn entities_count_against_the_complexity_limit_before_any_request() {
    let app = spawn_subgraph_with(|settings| settings.gateway.limits.max_complexity = 60).await;
    let ids: Vec<String> = app
        .sandbox
        .demo
        .persons
        .iter()
        .take(30)
        .map(|p| p.id.to_string())
        .collect();
    let query = "query ($r: [_Any!]!) { _entities(representations: $r) { ... on Person { id name } } }";
    app.clear_requests();

    // 30 entities of 2 fields: 61 points.
    let body = app
        .query(
            query,
            json!({ "r": ids.iter().map(|id| representation("Person", id)).collect::<Vec<_>>() }),
        )
        .await;
    assert_eq!(first_error_extensions(&body)["limit"], "complexity", "{body}");
    assert_eq!(app.total_requests(), 0);

    // 29 of them: 59 points.
    let body = app
        .query(
            query,
            json!({ "r": ids[1..].iter().map(|id| representation("Person", id)).collect::<Vec<_>>() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn in_service_mode_entities_need_the_callers_key() {
    let key = "subgraph-key-7d2e";
    let app = spawn_subgraph_with(|settings| settings.gateway.callers = CallerSettings::service(&[key])).await;
    let person = app.sandbox.demo.persons[0].id.to_string();
    let request = json!({ "query": ENTITIES, "variables": { "representations": [representation("Person", &person)] } });
    app.clear_requests();

    let (status, _) = app.post_json_with(request.clone(), &[]).await;
    assert_eq!(status, 401);
    assert_eq!(app.total_requests(), 0);

    let bearer = format!("Bearer {key}");
    let (status, body) = app.post_json_with(request, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["_entities"][0]["id"], person.as_str(), "{body}");
}
