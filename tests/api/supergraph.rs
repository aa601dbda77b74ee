//! The gateway in a federation supergraph, end to end: `clients/federation/supergraph-e2e.mjs`
//! composes `subgraph.graphql` with a second subgraph (loyalty: `Person.loyaltyTier`,
//! `Organization.accountManager`, `Query.topCustomers`) and runs Hive Gateway on that
//! supergraph in front of this gateway (service mode: a key is required) and the loyalty
//! subgraph, all on loopback. Queries mixing both subgraphs' fields must return both
//! subgraphs' data, with the caller's `Authorization` forwarded to this gateway only.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use blocks_gateway::{cache::CacheSettings, callers::CallerSettings};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::{node_project, spawn_app_with};

const KEY: &str = "supergraph-key-41c7";

const TOP_CUSTOMERS: &str = "{ topCustomers { id name loyaltyTier organization { id name accountManager } } }";

const PERSON: &str = "query ($id: ID!) { person(id: $id) { name loyaltyTier organization { name accountManager } } }";

/// What the script reports.
#[derive(Debug, Deserialize)]
struct Run {
    errors: Vec<String>,
    hints: Vec<String>,
    responses: Vec<Answer>,
    #[serde(rename = "loyaltyRequests")]
    loyalty_requests: Vec<LoyaltyRequest>,
    millis: Value,
    #[serde(rename = "gatewayLog", default)]
    gateway_log: String,
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: u16,
    body: Value,
}

#[derive(Debug, Deserialize)]
struct LoyaltyRequest {
    headers: serde_json::Map<String, Value>,
}

#[tokio::test]
async fn hive_gateway_joins_the_blocks_with_a_second_subgraph() {
    let Some(dir) = node_project("clients/federation", ".bin/hive-gateway") else {
        return;
    };
    let app = spawn_app_with(
        |settings| {
            settings.gateway.federation = true;
            settings.gateway.callers = CallerSettings::service(&[KEY]);
        },
        CacheSettings::default(),
    )
    .await;
    let demo = &app.sandbox.demo;
    let mut with_organization = demo.persons.iter().filter(|p| p.organization.is_some());
    let gold = with_organization.next().expect("a person with an organization");
    let plain = with_organization
        .find(|p| p.organization != gold.organization)
        .expect("a person of another organization");
    let organization_of = |person: &blocks_sandbox::DemoPerson| {
        let id = person.organization.expect("organization");
        demo.organizations
            .iter()
            .find(|o| o.id == id)
            .expect("seeded organization")
    };
    let (gold_organization, plain_organization) = (organization_of(gold), organization_of(plain));
    let authorized = json!({ "authorization": format!("Bearer {KEY}") });
    let input = json!({
        "blocksUrl": app.endpoint(),
        "loyalty": {
            "tiers": { gold.id.to_string(): "GOLD" },
            "accountManagers": { gold_organization.id.to_string(): "Dana Whitfield" },
            // The gold customer twice: the gateway reads it once.
            "topCustomers": [gold.id, plain.id, gold.id],
        },
        "requests": [
            { "query": TOP_CUSTOMERS, "headers": authorized },
            { "query": PERSON, "variables": { "id": gold.id }, "headers": authorized },
            { "query": TOP_CUSTOMERS, "headers": {} },
        ],
    });
    app.clear_requests();

    let run = run_script(&dir, input).await;

    assert!(run.errors.is_empty(), "composition errors: {:#?}", run.errors);
    assert!(run.hints.is_empty(), "composition hints: {:#?}", run.hints);
    let log = &run.gateway_log;
    let [top, person, unauthorized] = &run.responses[..] else {
        panic!("three answers expected: {:#?}\n{log}", run.responses);
    };
    let gold_json = json!({
        "id": gold.id, "name": gold.name, "loyaltyTier": "GOLD",
        "organization": { "id": gold_organization.id, "name": gold_organization.name, "accountManager": "Dana Whitfield" },
    });
    let plain_json = json!({
        "id": plain.id, "name": plain.name, "loyaltyTier": null,
        "organization": { "id": plain_organization.id, "name": plain_organization.name, "accountManager": null },
    });
    assert_eq!(top.status, 200, "{log}");
    assert_eq!(
        top.body,
        json!({ "data": { "topCustomers": [gold_json, plain_json, gold_json] } }),
        "{log}"
    );
    assert_eq!(
        person.body,
        json!({ "data": { "person": {
            "name": gold.name, "loyaltyTier": "GOLD",
            "organization": { "name": gold_organization.name, "accountManager": "Dana Whitfield" },
        } } }),
        "{log}"
    );
    // Without the key this gateway answered 401: Hive Gateway passes its error on, and no
    // data from it.
    let refusal = &unauthorized.body["errors"][0]["extensions"];
    assert_eq!(refusal["code"], "UNAUTHENTICATED", "{}", unauthorized.body);
    assert_eq!(refusal["serviceName"], "blocks", "{}", unauthorized.body);
    assert!(
        !unauthorized.body.to_string().contains(&gold.name),
        "{}",
        unauthorized.body
    );

    // The duplicate customer and the second query cost no further read.
    let crm = &app.block("crm").control;
    assert_eq!(crm.count("GET", &format!("/api/crm/persons/{}/", gold.id)), 1);
    assert_eq!(crm.count("GET", &format!("/api/crm/persons/{}/", plain.id)), 1);
    app.assert_no_duplicate_requests();
    // The caller's credentials reach this gateway alone.
    assert!(!run.loyalty_requests.is_empty());
    for request in &run.loyalty_requests {
        assert!(!request.headers.contains_key("authorization"), "{:?}", request.headers);
    }
    eprintln!(
        "supergraph run (ms): {}; without a key: {}",
        run.millis, unauthorized.body
    );
}

/// Runs the script with `input` on stdin (on a blocking thread: the gateway answers on this
/// test's runtime meanwhile) and reads its report.
async fn run_script(dir: &Path, input: Value) -> Run {
    let dir = dir.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg("supergraph-e2e.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs (Node 20 is on the machine)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.to_string().as_bytes())
            .expect("the script reads its input");
        child.wait_with_output().expect("the script ends")
    })
    .await
    .expect("the script's thread ends");
    assert!(
        output.status.success(),
        "the supergraph script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the script prints its report as JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
