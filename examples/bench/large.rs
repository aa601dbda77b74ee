//! The `large` scenario: production-sized blocks (`LargeData::PRODUCTION`: 40,000 CRM
//! persons, 30,000 organizations, 23,000 Sales entities, 16,000 Sales users, 10,000 B2B
//! users with look-alike emails), every block 25 ms away. It prints, cold and warm, with
//! and without the lookup index, the upstream requests and wall time of:
//! - an organization's Sales entity, its entity on the first page and on the last page;
//! - a B2B user found by an email that 300 other B2B emails contain;
//! - a persons page deep in the list, with organizations, Sales entities and identities;
//! - a small query beside a cold walk of the entities list (per-block concurrency);
//! - `reindex` of everything, in a child process: time and peak memory.
//!
//! Every answer is checked; a wrong one fails the benchmark.

use std::time::Instant;

use blocks_gateway::{
    config::Settings,
    gateway::Gateway,
    link_index::{
        LinkIndexLocation,
        reindex::{NoProgress, ReindexOptions, reindex},
    },
};
use blocks_sandbox::{LargeData, LargeIndex, Sandbox, SandboxOptions, SandboxSize};
use serde_json::{Value, json};

use super::{BLOCK_LATENCY, BenchResult, all_true, emit, memory_status, millis, round, serve_gateway};

/// The flag the benchmark passes to itself to run the reindex alone.
pub const REINDEX_CHILD: &str = "--large-reindex-child";
/// Where the child writes the index the "with index" gateways then read.
const INDEX_FILE: &str = "blocks-gateway-bench-large.sqlite";
/// Reindex targets on the 2-core machine.
const REINDEX_SECONDS: f64 = 60.0;
const REINDEX_MIB: f64 = 200.0;

const ENTITY_QUERY: &str = "query ($id: ID!) { organization(id: $id) { id salesEntity { uniqueId } } }";
const B2B_QUERY: &str = "query ($id: ID!) { identity(id: $id) { id b2bUser { id } } }";
const DEEP_QUERY: &str = "query ($after: String) { persons(first: 100, after: $after) { edges { node { id \
    organization { id salesEntity { uniqueId } } identity { id sales { email } } } } } }";
const NEIGHBOUR_QUERY: &str = "query ($id: ID!) { organization(id: $id) { id name } }";

/// The HTTP client of the scenario (built by the gateway's constructor, which installs the
/// TLS crypto provider reqwest needs).
fn client() -> BenchResult<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    let client = blocks_gateway::blocks::http::shared_client(std::time::Duration::from_secs(30))?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// One measured query: what the blocks were asked and how long it took.
struct Measured {
    body: Value,
    requests: Value,
    total: usize,
    ms: f64,
}

/// Runs the scenario and prints its lines.
pub async fn run() -> BenchResult<()> {
    let seeding = Instant::now();
    let sandbox = Sandbox::start(SandboxOptions {
        size: SandboxSize::Large(LargeData::PRODUCTION),
        ..SandboxOptions::default()
    })
    .await?;
    let seeded_ms = millis(seeding.elapsed());
    let large = sandbox.large.clone().ok_or("the sandbox seeded no large data set")?;
    for server in sandbox.servers() {
        server.control.set_latency(BLOCK_LATENCY);
    }
    let look_alike_identity = register_look_alike_identity(&sandbox, &large).await?;
    let index_file = std::env::temp_dir().join(INDEX_FILE);
    let _ = std::fs::remove_file(&index_file);
    reindex_in_child(&sandbox, &index_file, seeded_ms)?;

    let mut plain = Settings::from_variables(&sandbox.environment())?;
    plain.gateway.link_index = LinkIndexLocation::Memory;
    let mut indexed = plain.clone();
    indexed.gateway.link_index = LinkIndexLocation::Sqlite(index_file.clone());

    sales_entity(&sandbox, &large, &plain, &indexed).await?;
    b2b_email(&sandbox, &large, &look_alike_identity, &plain, &indexed).await?;
    deep_persons(&sandbox, &large, &plain, &indexed).await?;
    neighbour_of_a_walk(&sandbox, &large, &plain).await?;
    let _ = std::fs::remove_file(&index_file);
    Ok(())
}

/// Registers a Sales user with the look-alike email (a real Sales write), so an identity
/// asks B2B for exactly that email.
async fn register_look_alike_identity(sandbox: &Sandbox, large: &LargeIndex) -> BenchResult<String> {
    let look_alike = large.look_alike.as_ref().ok_or("no look-alike B2B user")?;
    let id = "bench-look-alike-identity".to_owned();
    let credentials = &sandbox.credentials;
    let response = client()?
        .post(format!("{}/users/{id}/register/", sandbox.sales.base_url))
        .bearer_auth(&credentials.sales_token)
        .header("AppId", &credentials.sales_app_id)
        .json(&json!({ "user": { "email": look_alike.email, "first_name": "Ann" } }))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("registering the look-alike identity: {}", response.status()).into());
    }
    Ok(id)
}

/// `reindex` of everything in a fresh process: its time and its peak memory are its own.
fn reindex_in_child(sandbox: &Sandbox, index_file: &std::path::Path, seeded_ms: f64) -> BenchResult<()> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg(REINDEX_CHILD)
        .envs(sandbox.environment())
        .env("LINK_INDEX_PATH", index_file)
        .output()?;
    if !output.status.success() {
        return Err(format!("reindex child: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let mut figures: Value = serde_json::from_slice(&output.stdout)?;
    let seconds = figures["seconds"].as_f64().unwrap_or(f64::MAX);
    let peak = figures["peak_rss_mib"].as_f64().unwrap_or(f64::MAX);
    let targets = json!({
        "seconds_under_60": seconds < REINDEX_SECONDS,
        "peak_rss_under_200_mib": peak < REINDEX_MIB,
        "every_entity_positioned": figures["entity_positions"] == json!(LargeData::PRODUCTION.sales_entities),
        "every_b2b_email_recorded": figures["b2b_emails"] == json!(LargeData::PRODUCTION.b2b_users),
    });
    figures["scenario"] = json!("large_reindex");
    figures["sandbox_seed_ms"] = json!(seeded_ms);
    figures["pass"] = json!(all_true(&targets));
    figures["targets"] = targets;
    emit(figures)
}

/// The child's side: reindexes into `LINK_INDEX_PATH` from the blocks the environment
/// names, and prints its figures as one JSON object.
pub async fn reindex_child() -> BenchResult<()> {
    let settings = Settings::load(None)?;
    let gateway = Gateway::new(&settings.gateway)?;
    gateway.links().ready().await?;
    let started = Instant::now();
    let report = reindex(
        gateway.clients(),
        gateway.links(),
        ReindexOptions::default(),
        &NoProgress,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let memory = memory_status()?;
    let (entity_positions, b2b_emails) = gateway.links().lookup_sizes().await?;
    emit(json!({
        "seconds": round(seconds),
        "peak_rss_mib": memory.peak_mib,
        "links_added": report.added.len(),
        "conflicts": report.conflicts.len(),
        "identity_emails": report.emails_recorded,
        "entity_positions": entity_positions,
        "b2b_emails": b2b_emails,
        "concurrency": ReindexOptions::default().concurrency,
    }))
}

/// Posts `query` with `variables` to `endpoint` (`no_cache`: past the shared cache) and
/// counts what every block was asked meanwhile.
async fn measure(
    sandbox: &Sandbox,
    endpoint: &str,
    query: &str,
    variables: Value,
    no_cache: bool,
) -> BenchResult<Measured> {
    let before: Vec<usize> = sandbox.servers().iter().map(|s| s.control.request_count()).collect();
    let mut request = client()?
        .post(endpoint)
        .json(&json!({ "query": query, "variables": variables }));
    if no_cache {
        request = request.header("cache-control", "no-cache");
    }
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    let ms = millis(started.elapsed());
    if !status.is_success() || body.get("errors").is_some() {
        return Err(format!("query failed ({status}): {body}").into());
    }
    let counts: Vec<(String, usize)> = sandbox
        .servers()
        .iter()
        .zip(before)
        .map(|(server, before)| (server.name.to_owned(), server.control.request_count() - before))
        .collect();
    let total = counts.iter().map(|(_, n)| n).sum();
    let requests = counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| (name, json!(n)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    Ok(Measured {
        body,
        requests,
        total,
        ms,
    })
}

fn figures(measured: &Measured) -> Value {
    json!({ "requests": measured.requests, "ms": measured.ms })
}

/// An organization's Sales entity (first page, last page): without the index a cold read
/// walks the whole entities list; with it, one Sales request.
async fn sales_entity(sandbox: &Sandbox, large: &LargeIndex, plain: &Settings, indexed: &Settings) -> BenchResult<()> {
    let cases = [
        ("first_page", large.first_page_organization_id),
        ("last_page", large.last_page_organization_id),
    ];
    for (place, organization) in cases {
        let id = organization.ok_or("no organization entity")?.to_string();
        let variables = json!({ "id": id });
        let correct = |m: &Measured| m.body.pointer("/data/organization/salesEntity/uniqueId") == Some(&json!(id));
        let (_walking, walking) = serve_gateway(plain).await?;
        let cold = measure(sandbox, &walking, ENTITY_QUERY, variables.clone(), false).await?;
        let warm = measure(sandbox, &walking, ENTITY_QUERY, variables.clone(), false).await?;
        let (_indexed, with_index) = serve_gateway(indexed).await?;
        let indexed_cold = measure(sandbox, &with_index, ENTITY_QUERY, variables.clone(), false).await?;
        let indexed_warm = measure(sandbox, &with_index, ENTITY_QUERY, variables, false).await?;
        let targets = json!({
            "every_answer_correct": ([&cold, &warm, &indexed_cold, &indexed_warm].into_iter().all(correct)),
            "indexed_cold_at_most_2_sales_requests": indexed_cold.total <= 2,
            "warm_no_request": warm.total == 0 && indexed_warm.total == 0,
        });
        emit(json!({
            "scenario": "large_sales_entity",
            "entity_on": place,
            "without_index": { "cold": figures(&cold), "warm": figures(&warm) },
            "with_index": { "cold": figures(&indexed_cold), "warm": figures(&indexed_warm) },
            "pass": all_true(&targets),
            "targets": targets,
        }))?;
    }
    Ok(())
}

/// A B2B user by an email 300 other B2B emails contain (B2B filters by substring): without
/// the index the filter is read page after page until the exact email.
async fn b2b_email(
    sandbox: &Sandbox,
    large: &LargeIndex,
    identity: &str,
    plain: &Settings,
    indexed: &Settings,
) -> BenchResult<()> {
    let look_alike = large.look_alike.as_ref().ok_or("no look-alike B2B user")?;
    let variables = json!({ "id": identity });
    let correct = |m: &Measured| m.body.pointer("/data/identity/b2bUser/id") == Some(&json!(look_alike.user_id));
    let (_walking, walking) = serve_gateway(plain).await?;
    let cold = measure(sandbox, &walking, B2B_QUERY, variables.clone(), false).await?;
    let warm = measure(sandbox, &walking, B2B_QUERY, variables.clone(), false).await?;
    let (_indexed, with_index) = serve_gateway(indexed).await?;
    let indexed_cold = measure(sandbox, &with_index, B2B_QUERY, variables.clone(), false).await?;
    let indexed_warm = measure(sandbox, &with_index, B2B_QUERY, variables, false).await?;
    let b2b = |m: &Measured| m.requests.get("b2b").and_then(Value::as_u64).unwrap_or(0);
    let targets = json!({
        "every_answer_correct": ([&cold, &warm, &indexed_cold, &indexed_warm].into_iter().all(correct)),
        "indexed_cold_one_b2b_request": b2b(&indexed_cold) == 1,
        "warm_no_b2b_request": b2b(&warm) == 0 && b2b(&indexed_warm) == 0,
    });
    emit(json!({
        "scenario": "large_b2b_email",
        "contained_in": look_alike.contained_in,
        "without_index": { "cold": figures(&cold), "warm": figures(&warm) },
        "with_index": { "cold": figures(&indexed_cold), "warm": figures(&indexed_warm) },
        "pass": all_true(&targets),
        "targets": targets,
    }))
}

/// A page of 100 persons near the end of the list, with their organizations' Sales
/// entities and their identities.
async fn deep_persons(sandbox: &Sandbox, large: &LargeIndex, plain: &Settings, indexed: &Settings) -> BenchResult<()> {
    let last = large.deep_persons.last().ok_or("no deep person")?;
    let offset = last.position.saturating_sub(99);
    let after = (offset > 0).then(|| blocks_gateway::schema::pagination::encode_cursor("persons", offset as u64 - 1));
    let variables = json!({ "after": after });
    let correct = |m: &Measured| {
        m.body
            .pointer("/data/persons/edges")
            .and_then(Value::as_array)
            .is_some_and(|edges| edges.last().and_then(|e| e.pointer("/node/id")) == Some(&json!(last.id.to_string())))
    };
    let (_walking, walking) = serve_gateway(plain).await?;
    let cold = measure(sandbox, &walking, DEEP_QUERY, variables.clone(), false).await?;
    let warm = measure(sandbox, &walking, DEEP_QUERY, variables.clone(), false).await?;
    let (_indexed, with_index) = serve_gateway(indexed).await?;
    let indexed_cold = measure(sandbox, &with_index, DEEP_QUERY, variables.clone(), false).await?;
    let indexed_warm = measure(sandbox, &with_index, DEEP_QUERY, variables, false).await?;
    let targets = json!({
        "every_answer_correct": ([&cold, &warm, &indexed_cold, &indexed_warm].into_iter().all(correct)),
        "indexed_cold_fewer_requests": indexed_cold.total < cold.total,
    });
    emit(json!({
        "scenario": "large_persons_deep",
        "offset": offset,
        "without_index": { "cold": figures(&cold), "warm": figures(&warm) },
        "with_index": { "cold": figures(&indexed_cold), "warm": figures(&indexed_warm) },
        "pass": all_true(&targets),
        "targets": targets,
    }))
}

/// A small CRM query while a cold walk of the Sales entities list runs on the same
/// gateway: a walk holds at most 4 of its block's permits, and other blocks none.
async fn neighbour_of_a_walk(sandbox: &Sandbox, large: &LargeIndex, plain: &Settings) -> BenchResult<()> {
    let walked = large
        .last_page_organization_id
        .ok_or("no organization entity")?
        .to_string();
    let neighbour = large.crowded_organization_id.ok_or("no organization")?.to_string();
    let (_gateway, endpoint) = serve_gateway(plain).await?;
    let idle = measure(sandbox, &endpoint, NEIGHBOUR_QUERY, json!({ "id": neighbour }), true).await?;
    let walk = {
        let endpoint = endpoint.clone();
        let walked = walked.clone();
        let client = client()?;
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client
                .post(&endpoint)
                .json(&json!({ "query": ENTITY_QUERY, "variables": { "id": walked } }))
                .send()
                .await;
            (
                response.map(|r| r.status().is_success()).unwrap_or(false),
                started.elapsed(),
            )
        })
    };
    tokio::time::sleep(BLOCK_LATENCY * 4).await;
    let beside = measure(sandbox, &endpoint, NEIGHBOUR_QUERY, json!({ "id": neighbour }), true).await?;
    let (walk_ok, walk_took) = walk.await?;
    let targets = json!({
        "walk_answered": walk_ok,
        "beside_a_walk_within_2x_idle_plus_one_round_trip": beside.ms <= 2.0 * idle.ms + millis(BLOCK_LATENCY),
    });
    emit(json!({
        "scenario": "large_walk_neighbour",
        "idle_ms": idle.ms,
        "beside_walk_ms": beside.ms,
        "walk_ms": millis(walk_took),
        "pass": all_true(&targets),
        "targets": targets,
    }))
}
