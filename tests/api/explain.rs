//! `"extensions": {"explain": true}`: the answer says what the operation did, and its counts
//! are what the blocks saw. Without the flag nothing is added; `GATEWAY_EXPLAIN=off`
//! refuses it.

use std::collections::BTreeMap;

use blocks_gateway::{cache::CacheSettings, callers::CallerSettings, explain::ExplainAccess};
use blocks_sandbox::RecordedRequest;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const FANOUT: &str = "{ persons(first: 5) { edges { node { name organization { name } \
    identity { sales { ordersCount } search { roleName } } } } } }";

async fn explained(app: &TestApp, query: &str) -> Value {
    let (status, body) = app
        .post_json(json!({ "query": query, "extensions": { "explain": true } }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body
}

/// Whether `path` fits the template (`{...}` stands for one segment).
fn fits(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(expected, actual)| expected.starts_with('{') || expected == actual)
}

/// The requests a block saw, counted by the (method, template) of the explanation they fit.
fn seen_by_template(calls: &[Value], seen: &[RecordedRequest]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for request in seen {
        let template = calls
            .iter()
            .map(|call| call["path"].as_str().expect("path"))
            .find(|template| fits(template, &request.path))
            .unwrap_or_else(|| panic!("{} {} is in no explained call", request.method, request.path));
        *counts.entry((request.method.clone(), template.to_owned())).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn the_explanation_counts_what_the_blocks_saw() {
    let app = spawn_app().await;
    let body = explained(&app, FANOUT).await;
    let explain = &body["extensions"]["explain"];
    let blocks = explain["blocks"].as_object().expect("blocks");
    for (block, name) in [("crm", "CRM"), ("sales", "SALES"), ("search", "SEARCH")] {
        let seen = app.block(block).control.requests();
        let calls = blocks[name]["calls"].as_array().expect("calls");
        assert_eq!(blocks[name]["requests"], seen.len(), "{name}: {explain}");
        assert_eq!(calls.len(), seen.len());
        let mut explained_counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for call in calls {
            assert!(
                call["status"]
                    .as_u64()
                    .is_some_and(|status| (200..500).contains(&status)),
                "{call}"
            );
            assert!(call["ms"].as_f64().expect("ms") >= 0.0);
            let key = (
                call["method"].as_str().expect("method").to_owned(),
                call["path"].as_str().expect("path").to_owned(),
            );
            *explained_counts.entry(key).or_default() += 1;
        }
        assert_eq!(explained_counts, seen_by_template(calls, &seen), "{name}");
    }
    for unasked in ["ASSETS", "B2B"] {
        assert!(blocks.get(unasked).is_none(), "{unasked} was not called");
    }
    let crm_pages = app.block("crm").control.count("GET", "/api/crm/persons/");
    assert_eq!(
        explain["batches"]["crm_persons_page"],
        json!({ "batches": 1, "keys": 1 })
    );
    assert!(crm_pages >= 1);
    let sales_requests = app.block("sales").control.request_count() as u64;
    assert_eq!(explain["batches"]["sales_user"]["keys"], sales_requests, "{explain}");
    let memory = &explain["cache"]["memory"];
    assert!(
        memory["misses"].as_u64().expect("misses") >= sales_requests,
        "{explain}"
    );
    assert!(explain["cache"].get("redis").is_none(), "no Redis tier here");
    let (total, waited) = (
        explain["totalMs"].as_f64().expect("total"),
        explain["blockWaitMs"].as_f64().expect("wait"),
    );
    assert!(waited > 0.0 && waited <= total, "{explain}");

    // The same operation again: answered from the cache, nothing upstream.
    app.clear_requests();
    let warm = explained(&app, FANOUT).await;
    let explain = &warm["extensions"]["explain"];
    assert_eq!(app.total_requests(), 0);
    assert_eq!(explain["blocks"], json!({}), "{explain}");
    assert_eq!(explain["blockWaitMs"], 0.0);
    assert_eq!(explain["cache"]["memory"]["misses"], 0, "{explain}");
    assert!(explain["cache"]["memory"]["hits"].as_u64().expect("hits") > 0);
}

#[tokio::test]
async fn failed_requests_are_explained_with_their_status() {
    let app = spawn_app().await;
    app.block("search").control.set_failure(1.0, 503);
    let identity = app.sandbox.demo.identities[0].unique_id.clone();
    let (_, body) = app
        .post_json(json!({
            "query": "query ($id: ID!) { identity(id: $id) { search { uniqueId } } }",
            "variables": { "id": identity },
            "extensions": { "explain": true },
        }))
        .await;
    let calls = &body["extensions"]["explain"]["blocks"]["SEARCH"]["calls"];
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(calls[0]["status"], 503);
    assert_eq!(calls[0]["method"], "GET");
}

#[tokio::test]
async fn without_the_flag_nothing_is_added() {
    let app = spawn_app().await;
    let body = app.query(FANOUT, json!({})).await;
    assert!(body.get("extensions").is_none(), "{body}");
    let (_, body) = app
        .post_json(json!({ "query": FANOUT, "extensions": { "explain": false } }))
        .await;
    assert!(body.get("extensions").is_none(), "{body}");
}

#[tokio::test]
async fn explain_off_refuses_and_says_so() {
    let app = spawn_app_with(
        |settings| settings.gateway.explain = ExplainAccess::Off,
        CacheSettings::default(),
    )
    .await;
    let (status, body) = app
        .post_json(json!({ "query": FANOUT, "extensions": { "explain": true } }))
        .await;
    assert_eq!(status, 200);
    assert!(body["data"]["persons"].is_object(), "the operation still runs");
    assert!(body["extensions"].get("explain").is_none(), "{body}");
    assert!(
        body["extensions"]["explainRefused"]
            .as_str()
            .is_some_and(|message| message.contains("GATEWAY_EXPLAIN")),
        "{body}"
    );
}

#[tokio::test]
async fn an_authenticated_caller_may_ask() {
    const KEY: &str = "explain-test-key";
    let app = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::service(&[KEY]),
        CacheSettings::default(),
    )
    .await;
    let body: Value = app
        .http
        .post(app.endpoint())
        .bearer_auth(KEY)
        .json(&json!({ "query": "{ persons(first: 1) { totalCount } }", "extensions": { "explain": true } }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["extensions"]["explain"]["blocks"]["CRM"]["requests"], 1, "{body}");
}
