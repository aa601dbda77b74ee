//! `/metrics` scraped after real operations and compared with what the blocks saw.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// One sample: its labels and its value.
type Sample = (BTreeMap<String, String>, f64);

/// One scrape: every sample by metric name.
struct Scrape {
    samples: HashMap<String, Vec<Sample>>,
}

impl Scrape {
    async fn of(app: &TestApp) -> Self {
        let response = app
            .http
            .get(format!("http://{}/metrics", app.address))
            .send()
            .await
            .expect("metrics answer");
        assert_eq!(response.status(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        Self::parse(&response.text().await.expect("text"))
    }

    /// The text exposition format: `name{label="value",...} number`, comments skipped.
    fn parse(text: &str) -> Self {
        let mut samples: HashMap<String, Vec<Sample>> = HashMap::new();
        for line in text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.entry(name.to_owned()).or_default().push((labels, value));
        }
        Self { samples }
    }

    /// The sum of the samples of `name` whose labels include every pair of `filter`.
    fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(labels, _)| {
                filter
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, value)| value)
            .sum()
    }

    /// Every label set of `name`.
    fn series(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .map(|(labels, _)| labels)
            .collect()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    // Values written by the gateway hold no `",` sequence (route templates, names).
    text.split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
            (key.to_owned(), value.trim_end_matches('"').to_owned())
        })
        .collect()
}

/// Whether a recorded request is an instance of a route template (`GET /api/crm/persons/{id}/`).
fn matches_route(route: &str, method: &str, path: &str) -> bool {
    let (route_method, template) = route.split_once(' ').unwrap_or(("", route));
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    (route_method.is_empty() || route_method == method)
        && template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(expected, actual)| expected.starts_with('{') || expected == actual)
}

const PERSONS: &str = "query MetricsPersons { persons(first: 4) { edges { node { id name organization { name } } } } }";

#[tokio::test]
async fn upstream_request_metrics_match_what_the_blocks_saw() {
    let app = spawn_app().await;
    let body = app.query(PERSONS, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    app.block("crm").control.set_failure(1.0, 503);
    let failed = app
        .query(
            "query MetricsPerson($id: ID!) { person(id: $id) { name } }",
            // Not on the first page the list above primed into the cache.
            json!({ "id": app.sandbox.demo.persons.last().expect("persons").id.to_string() }),
        )
        .await;
    assert!(failed.get("errors").is_some(), "{failed}");

    let scrape = Scrape::of(&app).await;
    for server in app.sandbox.servers() {
        let block = server.name.to_uppercase();
        let seen = server.control.requests();
        let counted = scrape.sum("gateway_upstream_requests_total", &[("block", &block)]);
        assert_eq!(counted as usize, seen.len(), "{block}: counted vs received");
        for labels in scrape.series("gateway_upstream_requests_total") {
            if labels["block"] != block {
                continue;
            }
            let route = labels["route"].as_str();
            let received = seen
                .iter()
                .filter(|request| matches_route(route, &request.method, &request.path))
                .count();
            let counted = scrape.sum(
                "gateway_upstream_requests_total",
                &[("block", &block), ("route", route)],
            );
            assert_eq!(counted as usize, received, "{block} {route}");
            let timed = scrape.sum(
                "gateway_upstream_request_duration_seconds_count",
                &[("block", &block), ("route", route)],
            );
            assert_eq!(timed, counted, "every counted request is timed: {route}");
        }
    }
    let failed_person = scrape.sum(
        "gateway_upstream_requests_total",
        &[("route", "GET /api/crm/persons/{id}/"), ("status", "503")],
    );
    assert_eq!(failed_person, 1.0, "the 503 the CRM sent is counted with its status");
}

#[tokio::test]
async fn operations_cache_batches_and_in_flight_are_counted() {
    let app = spawn_app().await;
    let first = app.query(PERSONS, json!({})).await;
    assert!(first.get("errors").is_none(), "{first}");
    let crm_after_first = app.block("crm").control.request_count();
    let cold = Scrape::of(&app).await;
    let second = app.query(PERSONS, json!({})).await;
    assert_eq!(first, second);
    assert_eq!(
        app.block("crm").control.request_count(),
        crm_after_first,
        "the repeat is answered from the cache"
    );
    app.block("crm").control.set_failure(1.0, 500);
    let partial = app
        .query(
            "query MetricsPartial { persons(first: 1) { totalCount } identities(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert!(partial["errors"].is_array() && !partial["data"].is_null(), "{partial}");
    let warm = Scrape::of(&app).await;

    let operations = |scrape: &Scrape, outcome: &str| {
        scrape.sum(
            "gateway_operations_total",
            &[("operation", "MetricsPersons"), ("type", "query"), ("outcome", outcome)],
        )
    };
    assert_eq!(operations(&cold, "ok"), 1.0);
    assert_eq!(operations(&warm, "ok"), 2.0);
    assert_eq!(
        warm.sum(
            "gateway_operations_total",
            &[("operation", "MetricsPartial"), ("outcome", "partial")]
        ),
        1.0
    );
    assert_eq!(
        warm.sum(
            "gateway_operation_duration_seconds_count",
            &[("operation", "MetricsPersons")]
        ),
        2.0
    );

    // The cold run missed on the persons page and every organization; the warm run hit them.
    let page = [("resource", "crm_persons_page")];
    assert!(cold.sum("gateway_cache_misses_total", &page) >= 1.0);
    assert_eq!(cold.sum("gateway_cache_hits_total", &page), 0.0);
    assert_eq!(
        warm.sum("gateway_cache_misses_total", &[("resource", "crm_organization")]),
        cold.sum("gateway_cache_misses_total", &[("resource", "crm_organization")]),
        "no new organization misses"
    );
    assert!(warm.sum("gateway_cache_hits_total", &page) >= 1.0);
    assert!(warm.sum("gateway_cache_entries", &[]) > 0.0);
    assert!(warm.sum("gateway_cache_size_bytes", &[]) > 0.0);

    // Every organization the CRM was asked for was a key of some loader batch.
    let organization_requests = app
        .block("crm")
        .control
        .requests()
        .iter()
        .filter(|request| matches_route("GET /api/crm/organizations/{id}/", &request.method, &request.path))
        .count();
    assert!(organization_requests > 0);
    assert_eq!(
        cold.sum("gateway_loader_batch_size_sum", &[("resource", "crm_organization")]) as usize,
        organization_requests
    );

    // Nothing is executing but the scrape itself.
    assert_eq!(warm.sum("gateway_operations_in_flight", &[]), 0.0);
    assert_eq!(warm.sum("gateway_http_requests_in_flight", &[]), 1.0);
}

#[tokio::test]
async fn metric_labels_carry_no_ids() {
    let app = spawn_app().await;
    let id = app.sandbox.demo.persons[0].id.to_string();
    let email = app.sandbox.demo.identities[0].email.clone();
    app.query(
        "query Lookup($id: ID!, $email: String!) { person(id: $id) { name } identityByEmail(email: $email) { id } }",
        json!({ "id": id, "email": email }),
    )
    .await;
    let text = app
        .http
        .get(format!("http://{}/metrics", app.address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("operation=\"Lookup\""), "the operation is counted");
    assert!(
        !text.contains(&id) && !text.contains(&email),
        "no id or email in any label"
    );
}
