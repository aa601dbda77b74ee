//! Stale-if-error: when a block fails (5xx, timeout, open circuit), a cached record that
//! expired at most `CACHE_STALE_IF_ERROR_MS` ago answers instead, and `extensions.stale`
//! says which block, at which paths, how old. Never past the window, never for a write or a
//! `no-cache` read.

use std::time::Duration;

use blocks_gateway::cache::CacheSettings;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, first_error_extensions, spawn_app_with},
    replicas::{required_env, sample, shared_tier, spawn_replicas_with},
};

const PERSON: &str = "query Person($id: ID!) { person(id: $id) { id name } }";

/// A cache whose records expire after `ttl_ms` and may stand in for `window_ms` more.
fn short_lived(ttl_ms: u64, window_ms: u64) -> CacheSettings {
    CacheSettings {
        detail_ttl: Duration::from_millis(ttl_ms),
        list_ttl: Duration::from_millis(ttl_ms),
        stale_if_error: Duration::from_millis(window_ms),
        ..CacheSettings::default()
    }
}

async fn metrics(app: &TestApp) -> String {
    app.gateway.render_metrics().await.expect("metrics render")
}

#[tokio::test]
async fn a_failing_block_is_answered_from_the_expired_copy_and_says_so() {
    let app = spawn_app_with(|_| {}, short_lived(150, 60_000)).await;
    let id = app.sandbox.demo.persons[0].id.to_string();
    let fresh = app.query(PERSON, json!({ "id": id })).await;
    assert!(fresh.get("extensions").is_none(), "{fresh}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.block("crm").control.set_failure(1.0, 503);
    app.clear_requests();
    let body = app.query(PERSON, json!({ "id": id })).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"], fresh["data"], "the copy, not an error");
    let stale = &body["extensions"]["stale"];
    assert_eq!(stale.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(stale[0]["block"], "CRM");
    assert_eq!(stale[0]["resource"], "crm_person");
    assert_eq!(stale[0]["paths"], json!([["person"]]));
    assert_eq!(stale[0]["cause"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(stale[0]["status"], 503);
    assert!(stale[0]["ageMs"].as_u64().expect("age") >= 300, "{stale}");
    assert!(
        stale[0]["expiredForMs"].as_u64().expect("expired for") >= 150,
        "{stale}"
    );
    assert_eq!(
        app.block("crm").control.count("GET", &format!("/api/crm/persons/{id}")),
        1,
        "the block was asked first"
    );
    assert_eq!(
        sample(
            &metrics(&app).await,
            "gateway_stale_answers_total{block=\"CRM\",resource=\"crm_person\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn past_the_window_the_failure_is_the_answer() {
    let app = spawn_app_with(|_| {}, short_lived(100, 300)).await;
    let id = app.sandbox.demo.persons[1].id.to_string();
    app.query(PERSON, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.block("crm").control.set_failure(1.0, 503);
    let body = app.query(PERSON, json!({ "id": id })).await;
    assert_eq!(body["data"]["person"], Value::Null, "{body}");
    assert_eq!(first_error_extensions(&body)["code"], "UPSTREAM_UNAVAILABLE");
    assert!(body.get("extensions").is_none(), "{body}");
}

#[tokio::test]
async fn a_timeout_then_an_open_circuit_are_answered_stale_too() {
    let app = spawn_app_with(
        |settings| {
            settings.gateway.http.request_timeout = Duration::from_millis(200);
            settings.gateway.http.breaker.threshold = 1;
        },
        short_lived(100, 60_000),
    )
    .await;
    let id = app.sandbox.demo.persons[2].id.to_string();
    let fresh = app.query(PERSON, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.block("crm").control.set_hang(true);
    let timed_out = app.query(PERSON, json!({ "id": id })).await;
    assert_eq!(timed_out["data"], fresh["data"], "{timed_out}");
    assert_eq!(timed_out["extensions"]["stale"][0]["cause"], "UPSTREAM_TIMEOUT");
    assert_eq!(timed_out["extensions"]["stale"][0]["status"], Value::Null);

    // The timeout opened the circuit: the next read sends nothing and is answered stale.
    app.clear_requests();
    let refused = app.query(PERSON, json!({ "id": id })).await;
    assert_eq!(refused["data"], fresh["data"], "{refused}");
    assert_eq!(refused["extensions"]["stale"][0]["cause"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(app.block("crm").control.request_count(), 0, "the circuit is open");
}

#[tokio::test]
async fn a_connection_answers_from_its_expired_page_with_the_path_of_the_list() {
    let app = spawn_app_with(|_| {}, short_lived(100, 60_000)).await;
    let query = "{ persons(first: 3) { edges { node { id name } } } }";
    let fresh = app.query(query, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.block("crm").control.set_failure(1.0, 502);
    let body = app.query(query, json!({})).await;
    assert_eq!(body["data"], fresh["data"], "{body}");
    assert_eq!(body["extensions"]["stale"][0]["resource"], "crm_persons_page");
    assert_eq!(body["extensions"]["stale"][0]["paths"], json!([["persons"]]));
}

#[tokio::test]
async fn writes_and_no_cache_reads_never_get_a_stale_copy() {
    let app = spawn_app_with(|_| {}, short_lived(100, 60_000)).await;
    let identity = app.sandbox.demo.identities[0].unique_id.clone();
    let user = app.sandbox.demo.b2b_users[0].id;
    let read = "query ($id: ID!) { identity(id: $id) { sales { uniqueId } search { uniqueId } assets { uniqueId } } }";
    app.query(read, json!({ "id": identity })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for block in ["sales", "search", "assets"] {
        app.block(block).control.set_failure(1.0, 503);
    }

    // A mutation's reads (does any block know the identity?) fail with their block...
    let link = app
        .query(
            "mutation ($input: IdentityLinkInput!) { linkIdentity(input: $input) { link { externalId } userErrors { code } } }",
            json!({ "input": { "identityId": identity, "b2bUserId": user } }),
        )
        .await;
    assert_eq!(first_error_extensions(&link)["code"], "UPSTREAM_UNAVAILABLE", "{link}");
    assert!(link.get("extensions").is_none(), "{link}");

    // ...and so does a read that asked for fresh answers...
    let fresh_only = app
        .http
        .post(app.endpoint())
        .header("cache-control", "no-cache")
        .json(&json!({ "query": read, "variables": { "id": identity } }))
        .send()
        .await
        .expect("answers")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(
        first_error_extensions(&fresh_only)["code"],
        "UPSTREAM_UNAVAILABLE",
        "{fresh_only}"
    );
    assert!(fresh_only.get("extensions").is_none(), "{fresh_only}");

    // ...while a plain query is answered from the same copies.
    let body = app.query(read, json!({ "id": identity })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let paths: Vec<&Value> = body["extensions"]["stale"]
        .as_array()
        .expect("stale answers")
        .iter()
        .flat_map(|answer| answer["paths"].as_array().expect("paths"))
        .collect();
    for field in ["sales", "search", "assets"] {
        assert!(paths.contains(&&json!(["identity", field])), "{field}: {body}");
    }
}

#[tokio::test]
async fn another_replica_answers_from_the_expired_copy_in_redis() {
    let Some(url) = required_env("REDIS_URL", "another_replica_answers_from_the_expired_copy_in_redis") else {
        return;
    };
    let replicas = spawn_replicas_with(shared_tier(&url), |settings| {
        settings.gateway.cache = short_lived(150, 60_000);
    })
    .await;
    let id = replicas.sandbox.demo.persons[4].id.to_string();
    let name = replicas.person_name(&replicas.a, &id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    replicas.sandbox.crm.control.set_failure(1.0, 503);
    // B never read the person: only Redis holds a copy.
    let body = replicas.query(&replicas.b, PERSON, json!({ "id": id })).await;
    assert_eq!(body["data"]["person"]["name"], name.as_str(), "{body}");
    assert_eq!(body["extensions"]["stale"][0]["block"], "CRM");
    assert!(body["extensions"]["stale"][0]["ageMs"].as_u64().expect("age") >= 300);
    assert_eq!(
        sample(
            &replicas.metrics(&replicas.b).await,
            "gateway_stale_answers_total{block=\"CRM\",resource=\"crm_person\"}"
        ),
        1.0
    );
}
