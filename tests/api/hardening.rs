//! Staying up when blocks misbehave: hangs, 500s, garbage, refused connections, 429s; the
//! circuit breaker, the retry budget, the operation deadline and the request cap.

use std::time::{Duration, Instant};

use blocks_gateway::{blocks::BlockName, cache::CacheSettings, config::Settings};
use serde_json::{Value, json};

use crate::helpers::{TestApp, first_error_extensions, spawn_app_with};

const SALES_AND_ASSETS: &str = "query ($id: ID!) { identity(id: $id) { sales { email } assets { username } } }";
const SEARCH_NAME: &str = "query ($id: ID!) { identity(id: $id) { search { name } } }";

/// An identity every 23blocks block knows.
fn known_everywhere(app: &TestApp) -> String {
    app.sandbox
        .demo
        .identities
        .iter()
        .find(|identity| identity.in_sales && identity.in_search && identity.in_assets)
        .expect("a demo identity in Sales, Search and Assets")
        .unique_id
        .clone()
}

async fn spawn(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    // No cache: every query must reach the blocks for the counts below to mean anything.
    spawn_app_with(tweak, no_cache()).await
}

fn no_cache() -> CacheSettings {
    CacheSettings {
        detail_ttl: Duration::ZERO,
        list_ttl: Duration::ZERO,
        not_found_ttl: Duration::ZERO,
        ..CacheSettings::default()
    }
}

async fn timed_query(app: &TestApp, query: &str, id: &str) -> (Value, Duration) {
    let started = Instant::now();
    let body = app.query(query, json!({ "id": id })).await;
    (body, started.elapsed())
}

/// The error whose path ends in `field`.
fn error_at<'a>(body: &'a Value, field: &str) -> &'a Value {
    body["errors"]
        .as_array()
        .and_then(|errors| {
            errors
                .iter()
                .find(|error| error["path"].as_array().and_then(|p| p.last()) == Some(&json!(field)))
        })
        .unwrap_or_else(|| panic!("expected an error at `{field}`: {body}"))
}

#[tokio::test]
async fn a_hanging_block_costs_its_timeout_and_only_its_fields() {
    let app = spawn(|settings| settings.gateway.http.request_timeout = Duration::from_millis(300)).await;
    let id = known_everywhere(&app);
    app.block("assets").control.set_hang(true);

    let (body, elapsed) = timed_query(&app, SALES_AND_ASSETS, &id).await;

    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
    assert_eq!(error_at(&body, "assets")["extensions"]["code"], "UPSTREAM_TIMEOUT");
    assert_eq!(error_at(&body, "assets")["extensions"]["block"], "ASSETS");
    // Generous upper bound against a hang: the block would hold the request for an hour.
    assert!(elapsed < Duration::from_secs(5), "answered after {elapsed:?}");
}

#[tokio::test]
async fn the_operation_deadline_fails_pending_fields_and_keeps_fetched_data() {
    let app = spawn(|settings| {
        settings.gateway.http.request_timeout = Duration::from_secs(30);
        settings.gateway.limits.operation_timeout = Duration::from_millis(400);
    })
    .await;
    let id = known_everywhere(&app);
    app.block("assets").control.set_latency(Duration::from_secs(20));

    let (body, elapsed) = timed_query(&app, SALES_AND_ASSETS, &id).await;

    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
    let assets = error_at(&body, "assets");
    assert_eq!(assets["extensions"]["code"], "UPSTREAM_TIMEOUT", "{body}");
    assert!(
        assets["message"].as_str().unwrap_or("").contains("time limit"),
        "{body}"
    );
    assert!(elapsed < Duration::from_secs(10), "answered after {elapsed:?}");
}

#[tokio::test]
async fn a_block_answering_500_is_an_upstream_error_without_its_body() {
    let app = spawn(|_| {}).await;
    let id = known_everywhere(&app);
    app.block("search").control.set_failure(1.0, 500);

    let body = app.query(SEARCH_NAME, json!({ "id": id })).await;

    let extensions = first_error_extensions(&body);
    assert_eq!(extensions["code"], "UPSTREAM_ERROR");
    assert_eq!(extensions["status"], 500);
    assert!(
        !body.to_string().contains("Injected failure"),
        "upstream text leaked: {body}"
    );
}

#[tokio::test]
async fn garbage_json_is_an_upstream_error_without_the_garbage() {
    let app = spawn(|_| {}).await;
    let id = known_everywhere(&app);
    app.block("assets").control.set_garbage(true);

    let body = app.query(SALES_AND_ASSETS, json!({ "id": id })).await;

    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
    assert_eq!(error_at(&body, "assets")["extensions"]["code"], "UPSTREAM_ERROR");
    assert!(!body.to_string().contains("<html>"), "upstream body leaked: {body}");
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_and_other_blocks_answer() {
    let app = spawn(|settings| {
        for block in &mut settings.gateway.blocks {
            if block.block == BlockName::Crm {
                // Port 9 (discard) is closed on loopback: connection refused.
                block.base_url = "http://127.0.0.1:9/api/crm".parse().expect("url");
            }
        }
    })
    .await;
    let b2b = app.sandbox.demo.b2b_users[0].id;

    let body = app
        .query(
            "query ($b: Int!) { persons(first: 2) { totalCount } b2bUser(id: $b) { id } }",
            json!({ "b": b2b }),
        )
        .await;

    assert_eq!(body["data"]["b2bUser"]["id"], b2b, "{body}");
    assert_eq!(first_error_extensions(&body)["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(first_error_extensions(&body)["block"], "CRM");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "transport detail leaked: {body}"
    );
}

#[tokio::test]
async fn a_429_is_rate_limited_and_its_pause_is_honoured_without_requests() {
    let app = spawn(|_| {}).await;
    let id = known_everywhere(&app);
    let search = &app.block("search").control;
    search.set_failure(1.0, 429);

    let first = app.query(SEARCH_NAME, json!({ "id": id })).await;
    assert_eq!(first_error_extensions(&first)["code"], "RATE_LIMITED", "{first}");
    assert_eq!(first_error_extensions(&first)["status"], 429);
    assert_eq!(first_error_extensions(&first)["retryAfter"], 1);
    assert_eq!(search.request_count(), 1);

    let paused = app.query(SEARCH_NAME, json!({ "id": id })).await;
    assert_eq!(first_error_extensions(&paused)["code"], "RATE_LIMITED", "{paused}");
    assert_eq!(first_error_extensions(&paused)["retryAfter"], 1);
    assert_eq!(search.request_count(), 1, "no request while the block's pause lasts");

    search.reset_faults();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let after = app.query(SEARCH_NAME, json!({ "id": id })).await;
    assert!(after["data"]["identity"]["search"]["name"].is_string(), "{after}");
    assert_eq!(search.request_count(), 2);
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_closes_after_a_good_probe() {
    let app = spawn(|settings| {
        settings.gateway.http.breaker.threshold = 3;
        settings.gateway.http.breaker.cool_down = Duration::from_millis(300);
    })
    .await;
    let id = known_everywhere(&app);
    let search = &app.block("search").control;
    search.set_failure(1.0, 503);

    for _ in 0..3 {
        let body = app.query(SEARCH_NAME, json!({ "id": id })).await;
        assert_eq!(first_error_extensions(&body)["status"], 503, "{body}");
    }
    assert_eq!(search.request_count(), 3);

    for _ in 0..3 {
        let body = app.query(SEARCH_NAME, json!({ "id": id })).await;
        let extensions = first_error_extensions(&body);
        assert_eq!(extensions["code"], "UPSTREAM_UNAVAILABLE", "{body}");
        assert_eq!(extensions["block"], "SEARCH");
        assert!(
            extensions.get("status").is_none(),
            "no upstream answer while open: {body}"
        );
    }
    assert_eq!(search.request_count(), 3, "an open circuit sends nothing");

    search.reset_faults();
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..2 {
        let body = app.query(SEARCH_NAME, json!({ "id": id })).await;
        assert!(body["data"]["identity"]["search"]["name"].is_string(), "{body}");
    }
    assert_eq!(search.request_count(), 5, "the probe closed the circuit");
}

#[tokio::test]
async fn a_failed_probe_reopens_the_circuit() {
    let app = spawn(|settings| {
        settings.gateway.http.breaker.threshold = 1;
        settings.gateway.http.breaker.cool_down = Duration::from_millis(200);
    })
    .await;
    let id = known_everywhere(&app);
    let search = &app.block("search").control;
    search.set_failure(1.0, 500);

    app.query(SEARCH_NAME, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.query(SEARCH_NAME, json!({ "id": id })).await;
    app.query(SEARCH_NAME, json!({ "id": id })).await;

    assert_eq!(
        search.request_count(),
        2,
        "one failure, one failed probe, then open again"
    );
}

#[tokio::test]
async fn retries_stay_within_the_retry_budget() {
    const QUERIES: usize = 20;
    let app = spawn(|settings| {
        settings.gateway.http.max_retries = 3;
        settings.gateway.http.retry_base_delay = Duration::from_millis(1);
        settings.gateway.http.retry_budget_percent = 10;
        settings.gateway.http.breaker.threshold = 0;
    })
    .await;
    let id = known_everywhere(&app);
    let search = &app.block("search").control;
    search.set_failure(1.0, 503);

    for _ in 0..QUERIES {
        app.query(SEARCH_NAME, json!({ "id": id })).await;
    }

    let sent = search.request_count();
    // Unbudgeted, 3 retries each would make 80. The budget allows its reserve of 10 plus
    // a tenth of the requests.
    assert!(sent > QUERIES, "failed GETs are retried: {sent}");
    assert!(
        sent <= QUERIES + 10 + QUERIES / 10 + 1,
        "retries beyond the budget: {sent}"
    );
}

#[tokio::test]
async fn the_request_cap_fails_the_remaining_loads_and_keeps_what_was_fetched() {
    let app = spawn(|settings| settings.gateway.limits.max_upstream_requests = 3).await;

    let body = app
        .query(
            "{ identities(first: 5) { edges { node { id search { name } } } } }",
            json!({}),
        )
        .await;

    let edges = body["data"]["identities"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 5, "{body}");
    assert!(edges.iter().all(|edge| edge["node"]["id"].is_string()), "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{body}");
    assert!(
        errors
            .iter()
            .all(|error| error["extensions"]["code"] == "REQUEST_LIMIT_EXCEEDED"),
        "{body}"
    );
    assert_eq!(app.total_requests(), 3, "the cap is exact");
}
