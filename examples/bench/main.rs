//! The benchmark: `cargo run --release --example bench [-- --quick | --large]`.
//!
//! Starts the sandbox blocks in-process with 25 ms of latency on every block, a gateway in
//! front of them on loopback, and prints one JSON line of figures per scenario:
//! `fanout_cold`, `fanout_warm`, `throughput_warm` (with the floor: a one-field schema on
//! the same axum stack), `cache_memory`, then the `large_*` lines of production-sized
//! blocks (see `large.rs`; `--large` runs those alone). Each line carries its targets and
//! `pass`.
//! `fanout_cold` is measured with an empty cache on a gateway that has served before (its
//! connections pooled), and reports a new gateway's first query beside it.
//! `--quick` shortens the throughput runs from 5 s to 1 s.

mod large;

/// glibc's malloc serializes on its arena locks under concurrent load; mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{
    collections::HashSet,
    error::Error,
    io::Write,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_graphql::{BatchRequest, BatchResponse, EmptyMutation, EmptySubscription, Object, Schema};
use async_graphql_axum::GraphQLBatchRequest;
use axum::{
    Router,
    extract::State,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::post,
};
use blocks_gateway::{
    blocks::{
        crm::{CrmPerson, PersonFilter},
        http::shared_client,
    },
    cache::{CacheKey, CacheSettings, EntryKind, Record, Resource, ResponseCache},
    config::Settings,
    gateway::Gateway,
    link_index::LinkIndexLocation,
    server::{self, Readiness},
};
use blocks_sandbox::{Sandbox, SandboxOptions};
use bytes::Bytes;
use serde_json::{Value, json};

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Latency every sandbox block adds to each answer.
const BLOCK_LATENCY: Duration = Duration::from_millis(25);
/// Round trips on the fan-out's critical path: the persons page, then everything it names.
const CRITICAL_ROUND_TRIPS: u32 = 2;
/// Identities seeded in the sandbox.
const IDENTITIES: usize = 300;
/// Per-block upstream concurrency for the benchmark's gateway (the fan-out needs ≥ 128).
const UPSTREAM_CONCURRENCY: usize = 256;
/// Cold fan-out repetitions, each on a new gateway: its first query (no pooled connections
/// yet), then the same query after emptying its cache (the figure the target is about).
const COLD_TRIALS: usize = 9;
/// Warm fan-out repetitions.
const WARM_TRIALS: usize = 5;
/// Concurrent connections of the load generator.
const CONNECTIONS: usize = 64;
/// Upper bound of requests per throughput run, whatever the duration.
const MAX_REQUESTS: usize = 2_000_000;
/// Records put in the cache by `cache_memory`.
const CACHE_RECORDS: usize = 100_000;
/// The byte bound of the `cache_memory` cache (the gateway's default).
const CACHE_BOUND: u64 = 64 * 1024 * 1024;
/// A bound large enough for every record, to see what 100,000 cached records cost.
const CACHE_ROOMY_BOUND: u64 = 1024 * 1024 * 1024;

const FANOUT_QUERY: &str = "{ persons(first: 100) { edges { node { name organization { name } \
    identity { sales { ordersCount } search { roleName } assets { assetsCount } } } } } }";
const PERSON_QUERY: &str = "query ($id: ID!) { person(id: $id) { name organization { name } } }";
const FLOOR_QUERY: &str = "{ hello }";
/// The flag the benchmark passes to itself to run `cache_memory` alone.
const CACHE_MEMORY_ONLY: &str = "--cache-memory-only";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let flag = |name: &str| std::env::args().any(|arg| arg == name);
    let outcome = if flag(CACHE_MEMORY_ONLY) {
        cache_memory_only().await
    } else if flag(large::REINDEX_CHILD) {
        large::reindex_child().await
    } else if flag("--large") {
        large::run().await
    } else {
        match run(quick).await {
            Ok(()) => large::run().await,
            Err(error) => Err(error),
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(quick: bool) -> BenchResult<()> {
    let (sandbox, settings) = start_sandbox().await?;
    let client = shared_client(Duration::from_secs(5))?;

    let page = first_persons_page(&settings).await?;
    let (gateway, endpoint) = fanout_cold(&sandbox, &settings, &client, &page).await?;
    fanout_warm(&sandbox, &client, &endpoint).await?;
    let duration = Duration::from_secs(if quick { 1 } else { 5 });
    throughput_warm(&sandbox, &endpoint, &page, duration).await?;
    drop(gateway);
    cache_memory_in_child()
}

/// The sandbox with `BLOCK_LATENCY` on every block, and gateway settings pointing at it.
async fn start_sandbox() -> BenchResult<(Sandbox, Settings)> {
    let sandbox = Sandbox::start(SandboxOptions {
        identities: IDENTITIES,
        ..SandboxOptions::default()
    })
    .await?;
    for server in sandbox.servers() {
        server.control.set_latency(BLOCK_LATENCY);
    }
    let mut settings = Settings::from_variables(&sandbox.environment())?;
    settings.gateway.link_index = LinkIndexLocation::Memory;
    settings.gateway.http.max_concurrency = UPSTREAM_CONCURRENCY;
    Ok((sandbox, settings))
}

/// Runs `cache_memory` in a fresh process, so that its RSS is the cache's and not what the
/// earlier scenarios left behind, and passes its line on.
fn cache_memory_in_child() -> BenchResult<()> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg(CACHE_MEMORY_ONLY)
        .output()?;
    if !output.status.success() {
        return Err(format!("cache_memory: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    std::io::stdout().lock().write_all(&output.stdout)?;
    Ok(())
}

async fn cache_memory_only() -> BenchResult<()> {
    let (_sandbox, settings) = start_sandbox().await?;
    let page = first_persons_page(&settings).await?;
    cache_memory(&page).await
}

/// The first page of 100 persons, read straight from the CRM (not through the gateway
/// under test), to compute the naive request minimum.
async fn first_persons_page(settings: &Settings) -> BenchResult<Vec<CrmPerson>> {
    let direct = Gateway::new(&settings.gateway)?;
    let page = direct
        .clients()
        .crm()?
        .list_persons(&PersonFilter::default(), 1, 100)
        .await?;
    Ok(page.items)
}

/// 1 page + distinct organizations + distinct non-blank unique ids once per block asked
/// (Sales, Search, Assets).
fn naive_minimum(page: &[CrmPerson]) -> usize {
    let (organizations, identities) = distinct_references(page);
    1 + organizations.len() + 3 * identities.len()
}

/// The distinct organizations and non-blank identity ids the persons of a page name.
fn distinct_references(page: &[CrmPerson]) -> (HashSet<&str>, HashSet<&str>) {
    let organizations = page.iter().filter_map(|p| p.organization.as_deref()).collect();
    let identities = page
        .iter()
        .filter_map(|p| p.unique_id.as_deref().map(str::trim))
        .filter(|id| !id.is_empty())
        .collect();
    (organizations, identities)
}

/// A gateway with an empty cache served on a loopback port.
async fn serve_gateway(settings: &Settings) -> BenchResult<(Gateway, String)> {
    let gateway = Gateway::new(&settings.gateway)?;
    let address = serve(server::router(gateway.clone(), &settings.server, Readiness::default())).await?;
    Ok((gateway, format!("http://{address}/graphql")))
}

async fn serve(router: Router) -> BenchResult<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            eprintln!("bench: a server stopped: {error}");
        }
    });
    Ok(address)
}

fn upstream_requests(sandbox: &Sandbox) -> usize {
    sandbox.servers().iter().map(|s| s.control.request_count()).sum()
}

fn upstream_by_block(sandbox: &Sandbox) -> Value {
    sandbox
        .servers()
        .iter()
        .map(|s| (s.name.to_owned(), json!(s.control.request_count())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn clear_upstream(sandbox: &Sandbox) {
    for server in sandbox.servers() {
        server.control.clear_requests();
    }
}

/// Posts a query, fails on a non-200 or a GraphQL error, returns the answer and its time.
async fn timed_query(client: &reqwest::Client, endpoint: &str, query: &str) -> BenchResult<(Value, Duration)> {
    let started = Instant::now();
    let response = client.post(endpoint).json(&json!({ "query": query })).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    let elapsed = started.elapsed();
    if !status.is_success() || body.get("errors").is_some() {
        return Err(format!("query failed ({status}): {body}").into());
    }
    Ok((body, elapsed))
}

fn edges(body: &Value) -> usize {
    body.pointer("/data/persons/edges")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// What one cold fan-out trial measured.
struct ColdTrial {
    /// The first query of a new gateway: empty cache, no connections yet.
    fresh: Duration,
    fresh_requests: usize,
    /// The query again after emptying the cache: connections pooled, as in a gateway
    /// that has served before.
    emptied: Duration,
    emptied_requests: usize,
    /// When the upstream requests of the emptied-cache query arrived, from its start.
    arrivals: Arrivals,
}

/// When a fan-out's upstream requests reached the blocks, measured from the query's start.
#[derive(Clone, Copy)]
struct Arrivals {
    /// The persons page (the first request).
    page: Duration,
    /// The first and the last request of the second round trip.
    wave_first: Duration,
    wave_last: Duration,
}

impl Arrivals {
    fn of(sandbox: &Sandbox, started: Instant) -> Self {
        let mut offsets: Vec<Duration> = sandbox
            .servers()
            .iter()
            .flat_map(|server| server.control.requests())
            .map(|request| request.received_at.saturating_duration_since(started))
            .collect();
        offsets.sort_unstable();
        let at = |index: usize| offsets.get(index).copied().unwrap_or_default();
        Self {
            page: at(0),
            wave_first: at(1),
            wave_last: offsets.last().copied().unwrap_or_default(),
        }
    }
}

/// The cold fan-out, on fresh gateways; returns the last one (now warm).
async fn fanout_cold(
    sandbox: &Sandbox,
    settings: &Settings,
    client: &reqwest::Client,
    page: &[CrmPerson],
) -> BenchResult<(Gateway, String)> {
    let minimum = naive_minimum(page);
    let critical_path = BLOCK_LATENCY * CRITICAL_ROUND_TRIPS;
    let mut trials = Vec::new();
    let mut direct = Vec::new();
    let mut by_block = Value::Null;
    let mut last = None;
    for _ in 0..COLD_TRIALS {
        direct.push(direct_fanout(settings).await?);
        let (gateway, endpoint) = serve_gateway(settings).await?;
        trials.push(cold_trial(sandbox, &gateway, client, &endpoint, page.len()).await?);
        by_block = upstream_by_block(sandbox);
        last = Some((gateway, endpoint));
    }
    let mut walls: Vec<Duration> = trials.iter().map(|t| t.emptied).collect();
    let mut fresh_walls: Vec<Duration> = trials.iter().map(|t| t.fresh).collect();
    let each_trial: Vec<f64> = walls.iter().map(|w| millis(*w)).collect();
    let (wall, fresh_wall) = (median(&mut walls), median(&mut fresh_walls));
    let most_requests = trials
        .iter()
        .map(|t| t.emptied_requests.max(t.fresh_requests))
        .max()
        .unwrap_or(0);
    let ratio = wall.as_secs_f64() / critical_path.as_secs_f64();
    let arrival = |of: fn(&Arrivals) -> Duration| {
        let mut each: Vec<Duration> = trials.iter().map(|t| of(&t.arrivals)).collect();
        millis(median(&mut each))
    };
    let mut direct_pooled: Vec<Duration> = direct.iter().map(|d| d.pooled).collect();
    let mut direct_fresh: Vec<Duration> = direct.iter().map(|d| d.fresh).collect();
    let targets = json!({ "requests_at_most_minimum": most_requests <= minimum, "ratio_at_most_1_3": ratio <= 1.3 });
    emit(json!({
        "scenario": "fanout_cold",
        "upstream_requests": most_requests,
        "upstream_requests_by_block": by_block,
        "naive_minimum": minimum,
        "wall_ms": millis(wall),
        "wall_ms_each_trial": each_trial,
        "critical_path_ms": millis(critical_path),
        "ratio": round(ratio),
        "upstream_arrivals_ms": {
            "persons_page": arrival(|a| a.page),
            "second_round_first": arrival(|a| a.wave_first),
            "second_round_last": arrival(|a| a.wave_last),
        },
        "new_gateway": {
            "wall_ms": millis(fresh_wall),
            "ratio": round(fresh_wall.as_secs_f64() / critical_path.as_secs_f64()),
        },
        "direct_block_calls_ms": {
            "pooled": millis(median(&mut direct_pooled)),
            "new_connections": millis(median(&mut direct_fresh)),
        },
        "block_latency_ms": millis(BLOCK_LATENCY),
        "upstream_concurrency": settings.gateway.http.max_concurrency,
        "targets": targets,
        "pass": all_true(&targets),
    }))?;
    last.ok_or_else(|| "no trial ran".into())
}

/// The fan-out on a new gateway, then again after emptying its cache.
async fn cold_trial(
    sandbox: &Sandbox,
    gateway: &Gateway,
    client: &reqwest::Client,
    endpoint: &str,
    persons: usize,
) -> BenchResult<ColdTrial> {
    let measure = async || -> BenchResult<(Duration, usize, Arrivals)> {
        clear_upstream(sandbox);
        let started = Instant::now();
        let (body, wall) = timed_query(client, endpoint, FANOUT_QUERY).await?;
        if edges(&body) != persons {
            return Err(format!("expected {persons} persons: {body}").into());
        }
        Ok((wall, upstream_requests(sandbox), Arrivals::of(sandbox, started)))
    };
    let (fresh, fresh_requests, _) = measure().await?;
    gateway.cache().evict_all();
    let (entries, _) = gateway.cache().usage().await;
    if entries != 0 {
        return Err(format!("the emptied cache still holds {entries} entries").into());
    }
    let (emptied, emptied_requests, arrivals) = measure().await?;
    Ok(ColdTrial {
        fresh,
        fresh_requests,
        emptied,
        emptied_requests,
        arrivals,
    })
}

/// The direct calls' wall time with new connections, then with pooled ones.
struct DirectFanout {
    fresh: Duration,
    pooled: Duration,
}

/// The same upstream calls as the cold fan-out, made straight with new block clients (no
/// GraphQL, no cache): the page, then every organization and identity read at once; twice,
/// the second time over the pooled connections. What this machine allows for the
/// fan-out's HTTP work, beside the 2 × 25 ms critical path.
async fn direct_fanout(settings: &Settings) -> BenchResult<DirectFanout> {
    let direct = Gateway::new(&settings.gateway)?;
    let clients = direct.clients();
    let (crm, sales, search, assets) = (clients.crm()?, clients.sales()?, clients.search()?, clients.assets()?);
    let mut walls = [Duration::ZERO; 2];
    for wall in &mut walls {
        let started = Instant::now();
        let page = crm.list_persons(&PersonFilter::default(), 1, 100).await?.items;
        let (organizations, identities) = distinct_references(&page);
        let (organizations, users, searched, holders) = futures::join!(
            futures::future::join_all(organizations.iter().map(|id| crm.get_organization(id))),
            futures::future::join_all(identities.iter().map(|id| sales.get_user(id))),
            futures::future::join_all(identities.iter().map(|id| search.get_identity(id))),
            futures::future::join_all(identities.iter().map(|id| assets.get_user(id))),
        );
        *wall = started.elapsed();
        let failed = organizations.iter().any(Result::is_err)
            || users.iter().any(Result::is_err)
            || searched.iter().any(Result::is_err)
            || holders.iter().any(Result::is_err);
        if failed {
            return Err("a direct block call failed".into());
        }
    }
    Ok(DirectFanout {
        fresh: walls[0],
        pooled: walls[1],
    })
}

/// The same query again on the warm gateway.
async fn fanout_warm(sandbox: &Sandbox, client: &reqwest::Client, endpoint: &str) -> BenchResult<()> {
    clear_upstream(sandbox);
    let mut walls = Vec::new();
    for _ in 0..WARM_TRIALS {
        walls.push(timed_query(client, endpoint, FANOUT_QUERY).await?.1);
    }
    let requests = upstream_requests(sandbox);
    let targets = json!({ "zero_upstream_requests": requests == 0 });
    emit(json!({
        "scenario": "fanout_warm",
        "upstream_requests": requests,
        "wall_ms": millis(median(&mut walls)),
        "trials": WARM_TRIALS,
        "targets": targets,
        "pass": all_true(&targets),
    }))
}

async fn throughput_warm(sandbox: &Sandbox, endpoint: &str, page: &[CrmPerson], duration: Duration) -> BenchResult<()> {
    let bodies: Vec<Bytes> = page
        .iter()
        .map(|person| json!({ "query": PERSON_QUERY, "variables": { "id": person.id } }))
        .map(|body| serde_json::to_vec(&body).map(Bytes::from))
        .collect::<Result<_, _>>()?;
    let floor_endpoint = format!("http://{}/graphql", serve(floor_router()).await?);
    let floor_body = Bytes::from(serde_json::to_vec(&json!({ "query": FLOOR_QUERY }))?);

    // A short pass warms connections and checks every id answers without errors.
    load(endpoint, &bodies, Duration::from_millis(300)).await?;
    load(
        &floor_endpoint,
        std::slice::from_ref(&floor_body),
        Duration::from_millis(300),
    )
    .await?;
    clear_upstream(sandbox);
    let floor = load(&floor_endpoint, std::slice::from_ref(&floor_body), duration).await?;
    let gateway = load(endpoint, &bodies, duration).await?;
    let requests = upstream_requests(sandbox);
    let share = gateway.rps / floor.rps;
    let targets = json!({
        "rps_at_least_60_percent_of_floor": share >= 0.6,
        "p99_under_5x_p50": gateway.p99 < gateway.p50 * 5,
    });
    let memory = memory_status()?;
    emit(json!({
        "scenario": "throughput_warm",
        "connections": CONNECTIONS,
        "duration_s": duration.as_secs_f64(),
        "gateway": gateway.figures(),
        "floor": floor.figures(),
        "rps_share_of_floor": round(share),
        "upstream_requests": requests,
        "peak_rss_mib": memory.peak_mib,
        "rss_mib": memory.now_mib,
        "cores": cores(),
        "targets": targets,
        "pass": all_true(&targets),
    }))
}

/// What one load run measured.
struct LoadFigures {
    requests: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

impl LoadFigures {
    fn figures(&self) -> Value {
        json!({
            "requests": self.requests,
            "rps": self.rps.round(),
            "p50_ms": millis(self.p50),
            "p99_ms": millis(self.p99),
        })
    }
}

/// `CONNECTIONS` tasks, each with its own client (its own connection), posting the bodies
/// in turn until `duration` passes or `MAX_REQUESTS` were sent. Any failed answer fails
/// the run.
async fn load(endpoint: &str, bodies: &[Bytes], duration: Duration) -> BenchResult<LoadFigures> {
    let issued = Arc::new(AtomicUsize::new(0));
    let bodies: Arc<[Bytes]> = bodies.into();
    let clients = (0..CONNECTIONS)
        .map(|_| shared_client(Duration::from_secs(5)))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for (worker, client) in clients.into_iter().enumerate() {
        let (endpoint, issued, bodies) = (endpoint.to_owned(), issued.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut next = worker;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
                let body = bodies[next % bodies.len()].clone();
                next += 1;
                let sent = Instant::now();
                let response = client
                    .post(&endpoint)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                let answer = response.bytes().await?;
                if !status.is_success() || contains(&answer, b"\"errors\"") {
                    return Err(format!("failed answer ({status}): {}", String::from_utf8_lossy(&answer)).into());
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(LoadFigures {
        requests: latencies.len(),
        rps: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The floor: a one-field schema behind the same axum stack (batch-request extractor,
/// execution, JSON answer) as the gateway's `/graphql`.
struct FloorQuery;

#[Object]
impl FloorQuery {
    async fn hello(&self) -> &'static str {
        "world"
    }
}

type FloorSchema = Schema<FloorQuery, EmptyMutation, EmptySubscription>;

fn floor_router() -> Router {
    let schema = Schema::new(FloorQuery, EmptyMutation, EmptySubscription);
    Router::new().route("/graphql", post(floor_graphql)).with_state(schema)
}

async fn floor_graphql(State(schema): State<FloorSchema>, request: GraphQLBatchRequest) -> axum::response::Response {
    let response = match request.into_inner() {
        BatchRequest::Single(request) => BatchResponse::Single(schema.execute(request).await),
        BatchRequest::Batch(requests) => BatchResponse::Batch(
            futures::future::join_all(requests.into_iter().map(|request| schema.execute(request))).await,
        ),
    };
    match serde_json::to_vec(&response) {
        Ok(body) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Fills caches with `CACHE_RECORDS` CRM persons shaped like the sandbox's: once under the
/// default byte bound (which must hold) and once under a bound roomy enough for all of them
/// (what 100,000 cached records cost in RSS).
async fn cache_memory(page: &[CrmPerson]) -> BenchResult<()> {
    let before = memory_status()?;
    let roomy = fill_cache(page, CACHE_ROOMY_BOUND).await?;
    let after = memory_status()?;
    let roomy_figures = roomy.figures(CACHE_ROOMY_BOUND);
    let (roomy_entries, roomy_weighted) = (roomy.entries, roomy.weighted);
    drop(roomy);
    let bounded = fill_cache(page, CACHE_BOUND).await?;
    let bounded_figures = bounded.figures(CACHE_BOUND);
    let bounded_held = bounded.weighted <= CACHE_BOUND;
    drop(bounded);
    let measured_per_entry = (after.now_mib - before.now_mib) * 1024.0 * 1024.0 / CACHE_RECORDS as f64;
    let targets = json!({
        "bounded_within_bound": bounded_held,
        "roomy_within_bound": roomy_weighted <= CACHE_ROOMY_BOUND,
        "all_records_held_when_roomy": roomy_entries == CACHE_RECORDS as u64,
        "rss_under_300_mib": after.now_mib < 300.0,
    });
    emit(json!({
        "scenario": "cache_memory",
        "records_inserted": CACHE_RECORDS,
        "bounded": bounded_figures,
        "roomy": roomy_figures,
        "rss_bytes_per_entry": measured_per_entry.round(),
        "rss_mib_before": before.now_mib,
        "rss_mib_with_100k_records": after.now_mib,
        "record_rss_mib": round(after.now_mib - before.now_mib),
        "targets": targets,
        "pass": all_true(&targets),
    }))?;
    Ok(())
}

/// A filled cache and what it reports.
struct FilledCache {
    _cache: ResponseCache,
    entries: u64,
    weighted: u64,
}

impl FilledCache {
    fn figures(&self, bound: u64) -> Value {
        json!({
            "max_bytes": bound,
            "weighted_bytes": self.weighted,
            "entries": self.entries,
            "weighted_bytes_per_entry": self.weighted.checked_div(self.entries).unwrap_or(0),
        })
    }
}

async fn fill_cache(templates: &[CrmPerson], max_bytes: u64) -> BenchResult<FilledCache> {
    if templates.is_empty() {
        return Err("no persons to copy".into());
    }
    let cache = ResponseCache::new(CacheSettings {
        max_bytes,
        detail_ttl: Duration::from_secs(3600),
        ..CacheSettings::default()
    });
    for n in 0..CACHE_RECORDS {
        let mut person = templates[n % templates.len()].clone();
        person.id = uuid::Uuid::new_v4().to_string();
        person.name = person.name.map(|name| format!("{name} {n}"));
        let key = CacheKey {
            tenant: 0,
            resource: Resource::CrmPerson,
            id: Arc::from(person.id.as_str()),
        };
        cache
            .insert(key, EntryKind::Detail, Some(Record::complete(person)))
            .await;
    }
    let (entries, weighted) = cache.usage().await;
    Ok(FilledCache {
        _cache: cache,
        entries,
        weighted,
    })
}

struct Memory {
    now_mib: f64,
    peak_mib: f64,
}

/// VmRSS and VmHWM of this process (Linux).
fn memory_status() -> BenchResult<Memory> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> BenchResult<f64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .ok_or_else(|| format!("{name} missing in /proc/self/status"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .ok_or("malformed /proc/self/status")?
            .parse()?;
        Ok(round(kib / 1024.0))
    };
    Ok(Memory {
        now_mib: field("VmRSS:")?,
        peak_mib: field("VmHWM:")?,
    })
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn millis(duration: Duration) -> f64 {
    round(duration.as_secs_f64() * 1000.0)
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn all_true(targets: &Value) -> bool {
    targets
        .as_object()
        .is_some_and(|map| map.values().all(|v| v == &Value::Bool(true)))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Writes one JSON line to standard output.
fn emit(line: Value) -> BenchResult<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}
