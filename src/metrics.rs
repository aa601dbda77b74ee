//! Prometheus metrics, one registry per [`Gateway`] (two gateways in one process, as in the
//! tests, count apart), exposed at `/metrics` in the text exposition format.
//!
//! Recorded where things happen: operations in [`Gateway::execute`], upstream requests in
//! the shared HTTP core, cache lookups and loader batches in the loaders, the shared tier
//! in `shared_cache`. Cache size and evictions are read from the cache at scrape time.
//! Labels hold route templates, block names, resources and operation names only: never ids
//! of people, never secrets.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use async_graphql::parser::types::OperationType;
use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use moka::notification::RemovalCause;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use reqwest::Method;

use crate::{
    blocks::BlockName,
    cache::{Resource, documents::ParsedDocuments},
    gateway::Gateway,
    telemetry,
};

/// At most this many distinct operation names become label values; the rest count as
/// `other`, so callers cannot grow the label set without bound.
const MAX_OPERATION_NAMES: usize = 200;
/// Operation names longer than this are not used as label values.
const MAX_OPERATION_NAME_LEN: usize = 64;

/// Latency buckets in seconds, 1 ms to about 16 s.
fn latency_buckets() -> Vec<f64> {
    (0..15).map(|power| 0.001 * f64::from(1u32 << power)).collect()
}

/// The gateway's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

struct Families {
    registry: Registry,
    operations: IntCounterVec,
    operation_seconds: HistogramVec,
    operations_in_flight: IntGauge,
    http_in_flight: IntGauge,
    upstream_requests: IntCounterVec,
    upstream_seconds: HistogramVec,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    cache_evictions: IntCounterVec,
    cache_entries: IntGauge,
    cache_bytes: IntGauge,
    loader_batch_size: HistogramVec,
    shared_lookups: IntCounterVec,
    shared_refetches: IntCounter,
    invalidations_published: IntCounterVec,
    invalidations_received: IntCounter,
    operation_names: Mutex<HashSet<String>>,
    /// Serializes scrapes: counters synced from the cache's own counts add the difference.
    scrape: tokio::sync::Mutex<()>,
}

impl Metrics {
    /// A fresh registry with every metric family registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let families = Families {
            operations: counter_vec(
                &registry,
                "gateway_operations_total",
                "GraphQL operations by name, type and outcome (ok, partial, error, cancelled).",
                &["operation", "type", "outcome"],
            )?,
            operation_seconds: histogram_vec(
                &registry,
                "gateway_operation_duration_seconds",
                "Time to answer one GraphQL operation.",
                &["operation", "type"],
            )?,
            operations_in_flight: gauge(
                &registry,
                "gateway_operations_in_flight",
                "GraphQL operations being executed now.",
            )?,
            http_in_flight: gauge(
                &registry,
                "gateway_http_requests_in_flight",
                "HTTP requests being served now (every route).",
            )?,
            upstream_requests: counter_vec(
                &registry,
                "gateway_upstream_requests_total",
                "Requests sent to the blocks, by block, method, route template and HTTP status (no_answer: none came).",
                &["block", "method", "route", "status"],
            )?,
            upstream_seconds: histogram_vec(
                &registry,
                "gateway_upstream_request_duration_seconds",
                "Time from sending a request to a block until its answer body was read.",
                &["block", "method", "route", "status"],
            )?,
            cache_hits: counter_vec(
                &registry,
                "gateway_cache_hits_total",
                "Loads answered by the response cache without an upstream request.",
                &["resource"],
            )?,
            cache_misses: counter_vec(
                &registry,
                "gateway_cache_misses_total",
                "Loads the response cache could not answer.",
                &["resource"],
            )?,
            cache_evictions: counter_vec(
                &registry,
                "gateway_cache_evictions_total",
                "Entries that left the response cache, by cause (size, expired, invalidated).",
                &["cause"],
            )?,
            cache_entries: gauge(&registry, "gateway_cache_entries", "Entries in the response cache.")?,
            cache_bytes: gauge(
                &registry,
                "gateway_cache_size_bytes",
                "Estimated bytes held by the response cache.",
            )?,
            loader_batch_size: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "gateway_loader_batch_size",
                        "Keys one DataLoader batch asked for, by resource (1 while every key is dispatched at once).",
                    )
                    .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]),
                    &["resource"],
                )?,
            )?,
            shared_lookups: counter_vec(
                &registry,
                "gateway_shared_cache_lookups_total",
                "Lookups in the Redis tier by result (hit, miss, unavailable).",
                &["result"],
            )?,
            shared_refetches: register(
                &registry,
                IntCounter::new(
                    "gateway_shared_cache_refetches_total",
                    "Loads fetched again because an invalidation overlapped them.",
                )?,
            )?,
            invalidations_published: counter_vec(
                &registry,
                "gateway_shared_cache_invalidations_published_total",
                "Invalidations sent to the other replicas, by outcome (confirmed, unconfirmed, failed).",
                &["outcome"],
            )?,
            invalidations_received: register(
                &registry,
                IntCounter::new(
                    "gateway_shared_cache_invalidations_received_total",
                    "Invalidations received from other replicas.",
                )?,
            )?,
            operation_names: Mutex::new(HashSet::new()),
            scrape: tokio::sync::Mutex::new(()),
            registry,
        };
        Ok(Self {
            inner: Arc::new(families),
        })
    }

    /// Starts observing one GraphQL operation: its span, the in-flight gauge, the timer.
    /// The document comes from `documents`, so a warm request is not parsed again here.
    pub fn operation_started(
        &self,
        request: &async_graphql::Request,
        documents: &ParsedDocuments,
    ) -> OperationObservation {
        let info = OperationInfo::of(request, documents);
        let name = self.operation_label(&info.name);
        self.inner.operations_in_flight.inc();
        OperationObservation {
            span: telemetry::operation_span(&name, info.kind),
            metrics: self.clone(),
            name,
            kind: info.kind,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Operations being executed now.
    pub fn operations_in_flight(&self) -> i64 {
        self.inner.operations_in_flight.get()
    }

    /// Records a cache lookup of a loader: answered from the cache, or not.
    pub fn cache_lookup(&self, resource: Resource, hit: bool) {
        let family = if hit {
            &self.inner.cache_hits
        } else {
            &self.inner.cache_misses
        };
        family.with_label_values(&[resource_label(resource)]).inc();
    }

    /// Records the size of one DataLoader batch.
    pub fn loader_batch(&self, resource: Resource, keys: usize) {
        self.inner
            .loader_batch_size
            .with_label_values(&[resource_label(resource)])
            .observe(keys as f64);
    }

    /// Records a lookup in the Redis tier.
    pub fn shared_lookup(&self, result: SharedLookup) {
        self.inner.shared_lookups.with_label_values(&[result.label()]).inc();
    }

    /// Records a load fetched again because an invalidation overlapped it.
    pub fn shared_refetch(&self) {
        self.inner.shared_refetches.inc();
    }

    /// Records an invalidation sent to the other replicas.
    pub fn invalidation_published(&self, outcome: PublishOutcome) {
        self.inner
            .invalidations_published
            .with_label_values(&[outcome.label()])
            .inc();
    }

    /// Records an invalidation received from another replica.
    pub fn invalidation_received(&self) {
        self.inner.invalidations_received.inc();
    }

    /// The text exposition of every metric, after reading the cache's size and evictions.
    pub async fn render(&self, gateway: &Gateway) -> Result<String, prometheus::Error> {
        let _one_scrape_at_a_time = self.inner.scrape.lock().await;
        let cache = gateway.cache();
        let (entries, bytes) = cache.usage().await;
        self.inner.cache_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.inner.cache_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        for (cause, count) in cache.evictions().counts() {
            let counter = self.inner.cache_evictions.with_label_values(&[cause]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
        TextEncoder::new().encode_to_string(&self.inner.registry.gather())
    }

    /// The label value for an operation name: the name when it is a well-formed GraphQL
    /// name among the first [`MAX_OPERATION_NAMES`] seen, else `anonymous` or `other`.
    fn operation_label(&self, name: &Option<String>) -> String {
        let Some(name) = name else {
            return "anonymous".to_owned();
        };
        if !is_graphql_name(name) {
            return "other".to_owned();
        }
        let Ok(mut known) = self.inner.operation_names.lock() else {
            return "other".to_owned();
        };
        if known.contains(name) || known.len() < MAX_OPERATION_NAMES && known.insert(name.clone()) {
            name.clone()
        } else {
            "other".to_owned()
        }
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<HistogramVec> {
    let opts = HistogramOpts::new(name, help).buckets(latency_buckets());
    register(registry, HistogramVec::new(opts, labels)?)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    register(registry, IntGauge::new(name, help)?)
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> prometheus::Result<C> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// The metric label of a cached resource.
pub fn resource_label(resource: Resource) -> &'static str {
    match resource {
        Resource::SalesUser => "sales_user",
        Resource::SalesCustomer => "sales_customer",
        Resource::SalesUsersPage => "sales_users_page",
        Resource::SalesEntities => "sales_entities",
        Resource::SearchIdentity => "search_identity",
        Resource::AssetsUser => "assets_user",
        Resource::AssetsUserAssets => "assets_user_assets",
        Resource::AssetsUserEntities => "assets_user_entities",
        Resource::AssetsUserOwnership => "assets_user_ownership",
        Resource::B2bUser => "b2b_user",
        Resource::B2bUserByEmail => "b2b_user_by_email",
        Resource::CrmPerson => "crm_person",
        Resource::CrmPersonsPage => "crm_persons_page",
        Resource::CrmOrganization => "crm_organization",
        Resource::CrmOrganizationsPage => "crm_organizations_page",
    }
}

fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_OPERATION_NAME_LEN
        && chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// What a request asks for: the selected operation's name and type.
struct OperationInfo {
    name: Option<String>,
    kind: &'static str,
}

impl OperationInfo {
    /// Reads the request's document; an unparsable one is an `unknown` operation (its
    /// execution fails and is counted as an error).
    fn of(request: &async_graphql::Request, documents: &ParsedDocuments) -> Self {
        let chosen = request.operation_name.as_deref();
        let Ok(document) = documents.parse(&request.query) else {
            return Self {
                name: chosen.map(str::to_owned),
                kind: "unknown",
            };
        };
        match crate::documents::selected_operation(&document, chosen) {
            Some((name, operation)) => Self {
                name: name.map(|name| name.to_string()),
                kind: match operation.node.ty {
                    OperationType::Query => "query",
                    OperationType::Mutation => "mutation",
                    OperationType::Subscription => "subscription",
                },
            },
            None => Self {
                name: chosen.map(str::to_owned),
                kind: "unknown",
            },
        }
    }
}

/// One operation being observed; [`finish`](Self::finish) records its outcome. Dropped
/// unfinished (the caller went away), it counts as `cancelled`.
pub struct OperationObservation {
    metrics: Metrics,
    span: tracing::Span,
    name: String,
    kind: &'static str,
    started: Instant,
    finished: bool,
}

impl OperationObservation {
    /// The operation's span: execution runs inside it.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Records the outcome: `ok` without errors, `partial` with data and errors, `error`
    /// without data.
    pub fn finish(mut self, response: &async_graphql::Response) {
        let outcome = match (response.errors.is_empty(), response.data == async_graphql::Value::Null) {
            (true, _) => "ok",
            (false, false) => "partial",
            (false, true) => "error",
        };
        self.record(outcome);
        self.finished = true;
    }

    fn record(&self, outcome: &'static str) {
        let families = &self.metrics.inner;
        let elapsed = self.started.elapsed();
        families
            .operations
            .with_label_values(&[self.name.as_str(), self.kind, outcome])
            .inc();
        families
            .operation_seconds
            .with_label_values(&[self.name.as_str(), self.kind])
            .observe(elapsed.as_secs_f64());
        telemetry::operation_finished(&self.span, outcome, elapsed);
    }
}

impl Drop for OperationObservation {
    fn drop(&mut self) {
        if !self.finished {
            self.record("cancelled");
        }
        self.metrics.inner.operations_in_flight.dec();
    }
}

/// One request to a block being observed; [`answered`](Self::answered) records its status.
/// Dropped without an answer (connection failure, timeout), it counts as `no_answer`.
pub struct UpstreamObservation {
    metrics: Option<Metrics>,
    block: BlockName,
    method: Method,
    route: &'static str,
    started: Instant,
    done: bool,
}

impl UpstreamObservation {
    /// Starts the clock; with no metrics (a core built without them) it records nothing.
    pub fn start(metrics: Option<&Metrics>, block: BlockName, method: &Method, route: &'static str) -> Self {
        Self {
            metrics: metrics.cloned(),
            block,
            method: method.clone(),
            route,
            started: Instant::now(),
            done: false,
        }
    }

    /// Records the block's answer (status read, body received).
    pub fn answered(mut self, status: StatusCode) {
        tracing::Span::current().record("status", status.as_u16());
        self.record(status.as_str());
        self.done = true;
    }

    fn record(&self, status: &str) {
        let Some(metrics) = &self.metrics else { return };
        let labels = [self.block.label(), self.method.as_str(), self.route, status];
        let families = &metrics.inner;
        families.upstream_requests.with_label_values(&labels).inc();
        families
            .upstream_seconds
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for UpstreamObservation {
    fn drop(&mut self) {
        if !self.done {
            self.record("no_answer");
        }
    }
}

/// Result of a lookup in the Redis tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedLookup {
    /// A current record was found.
    Hit,
    /// Nothing current was stored.
    Miss,
    /// Redis did not answer (the load went to the block).
    Unavailable,
}

impl SharedLookup {
    fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Unavailable => "unavailable",
        }
    }
}

/// What became of an invalidation sent to the other replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Every subscribed replica confirmed the eviction.
    Confirmed,
    /// Published, but not every replica confirmed within the bound.
    Unconfirmed,
    /// Redis refused or did not answer.
    Failed,
}

impl PublishOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Unconfirmed => "unconfirmed",
            Self::Failed => "failed",
        }
    }
}

/// Evictions of the response cache by cause, counted by the cache's eviction listener and
/// read at scrape time.
#[derive(Debug, Default)]
pub struct CacheEvictions {
    size: AtomicU64,
    expired: AtomicU64,
    invalidated: AtomicU64,
}

impl CacheEvictions {
    /// Counts one removal; a replaced value is not an eviction.
    pub fn record(&self, cause: RemovalCause) {
        let counter = match cause {
            RemovalCause::Size => &self.size,
            RemovalCause::Expired => &self.expired,
            RemovalCause::Explicit => &self.invalidated,
            RemovalCause::Replaced => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts by cause label.
    pub fn counts(&self) -> [(&'static str, u64); 3] {
        [
            ("size", self.size.load(Ordering::Relaxed)),
            ("expired", self.expired.load(Ordering::Relaxed)),
            ("invalidated", self.invalidated.load(Ordering::Relaxed)),
        ]
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn endpoint(State(gateway): State<Gateway>) -> Response {
    match gateway.metrics().render(&gateway).await {
        Ok(body) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "could not encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Middleware counting the HTTP requests in flight.
pub async fn track_in_flight(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let gauge = metrics.inner.http_in_flight.clone();
    gauge.inc();
    let _decrement = DecrementOnDrop(gauge);
    next.run(request).await
}

/// Decrements a gauge when dropped, also when the request future is cancelled.
struct DecrementOnDrop(IntGauge);

impl Drop for DecrementOnDrop {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, name: Option<&str>) -> async_graphql::Request {
        let request = async_graphql::Request::new(query);
        match name {
            Some(name) => request.operation_name(name),
            None => request,
        }
    }

    #[test]
    fn operation_name_and_type_come_from_the_selected_operation() {
        let info = OperationInfo::of(
            &request("query A { a } mutation B { b }", Some("B")),
            &ParsedDocuments::new(8),
        );
        assert_eq!((info.name.as_deref(), info.kind), (Some("B"), "mutation"));
        let info = OperationInfo::of(&request("{ a }", None), &ParsedDocuments::new(8));
        assert_eq!((info.name, info.kind), (None, "query"));
        let info = OperationInfo::of(&request("query {", Some("Broken")), &ParsedDocuments::new(8));
        assert_eq!(info.kind, "unknown");
    }

    #[test]
    fn operation_labels_are_bounded_and_well_formed() {
        let metrics = Metrics::new().expect("metrics");
        assert_eq!(metrics.operation_label(&None), "anonymous");
        assert_eq!(metrics.operation_label(&Some("bad name{}".to_owned())), "other");
        for n in 0..MAX_OPERATION_NAMES {
            assert_eq!(metrics.operation_label(&Some(format!("Op{n}"))), format!("Op{n}"));
        }
        assert_eq!(metrics.operation_label(&Some("OneTooMany".to_owned())), "other");
        assert_eq!(metrics.operation_label(&Some("Op0".to_owned())), "Op0");
    }

    #[test]
    fn dropped_observations_count_as_cancelled_and_no_answer() {
        let metrics = Metrics::new().expect("metrics");
        drop(metrics.operation_started(&request("query Q { a }", None), &ParsedDocuments::new(8)));
        drop(UpstreamObservation::start(
            Some(&metrics),
            BlockName::Crm,
            &Method::GET,
            "persons/{id}/",
        ));
        let families = &metrics.inner;
        assert_eq!(
            families
                .operations
                .with_label_values(&["Q", "query", "cancelled"])
                .get(),
            1
        );
        assert_eq!(families.operations_in_flight.get(), 0);
        assert_eq!(
            families
                .upstream_requests
                .with_label_values(&["CRM", "GET", "persons/{id}/", "no_answer"])
                .get(),
            1
        );
    }
}
