//! Prometheus metrics: a registry that the layers above record into, one per gateway (two
//! gateways in one process, as in the tests, count apart), rendered in the text exposition
//! format for `/metrics`.
//!
//! A leaf: it takes plain label values and knows nothing of the modules that record.
//! Operations are recorded by the gateway, upstream requests by the shared HTTP core of the
//! blocks, cache lookups and loader batches by the loaders, the Redis tier by the cache;
//! the `/metrics` handler passes the cache's size and evictions at scrape time. Labels hold
//! route templates, block names, resources and operation names only: never ids of people,
//! never secrets.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Instant,
};

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::telemetry;

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
    stale_answers: IntCounterVec,
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
            stale_answers: counter_vec(
                &registry,
                "gateway_stale_answers_total",
                "Records answered from a cached copy past its TTL because their block failed (stale-if-error), by block and resource.",
                &["block", "resource"],
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

    /// Starts observing one GraphQL operation of type `kind` (`query`, `mutation`,
    /// `subscription`, `unknown`) named `name`: its span, the in-flight gauge, the timer.
    pub fn operation_started(&self, name: Option<&str>, kind: &'static str) -> OperationObservation {
        let name = self.operation_label(name);
        self.inner.operations_in_flight.inc();
        OperationObservation {
            span: telemetry::operation_span(&name, kind),
            metrics: self.clone(),
            name,
            kind,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Operations being executed now.
    pub fn operations_in_flight(&self) -> i64 {
        self.inner.operations_in_flight.get()
    }

    /// Counts one HTTP request being served until the returned guard is dropped (also when
    /// the request's future is cancelled).
    pub fn http_request_started(&self) -> InFlightHttpRequest {
        let gauge = self.inner.http_in_flight.clone();
        gauge.inc();
        InFlightHttpRequest(gauge)
    }

    /// Records a cache lookup of a loader for `resource`: answered from the cache, or not.
    pub fn cache_lookup(&self, resource: &'static str, hit: bool) {
        let family = if hit {
            &self.inner.cache_hits
        } else {
            &self.inner.cache_misses
        };
        family.with_label_values(&[resource]).inc();
    }

    /// Records a record answered from a stale copy because `block` failed.
    pub fn stale_answer(&self, block: &'static str, resource: &'static str) {
        self.inner.stale_answers.with_label_values(&[block, resource]).inc();
    }

    /// Records the size of one DataLoader batch.
    pub fn loader_batch(&self, resource: &'static str, keys: usize) {
        self.inner
            .loader_batch_size
            .with_label_values(&[resource])
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

    /// The text exposition of every metric, with the cache's state at scrape time.
    pub async fn render(&self, cache: CacheState) -> Result<String, prometheus::Error> {
        let _one_scrape_at_a_time = self.inner.scrape.lock().await;
        self.inner
            .cache_entries
            .set(i64::try_from(cache.entries).unwrap_or(i64::MAX));
        self.inner
            .cache_bytes
            .set(i64::try_from(cache.bytes).unwrap_or(i64::MAX));
        for (cause, count) in cache.evictions {
            let counter = self.inner.cache_evictions.with_label_values(&[cause]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
        TextEncoder::new().encode_to_string(&self.inner.registry.gather())
    }

    /// The label value for an operation name: the name when it is a well-formed GraphQL
    /// name among the first [`MAX_OPERATION_NAMES`] seen, else `anonymous` or `other`.
    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".to_owned();
        };
        if !is_graphql_name(name) {
            return "other".to_owned();
        }
        let Ok(mut known) = self.inner.operation_names.lock() else {
            return "other".to_owned();
        };
        if known.contains(name) || known.len() < MAX_OPERATION_NAMES && known.insert(name.to_owned()) {
            name.to_owned()
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

fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_OPERATION_NAME_LEN
        && chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The cache's state at scrape time: entries and estimated bytes held, evictions by cause.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheState {
    /// Entries held.
    pub entries: u64,
    /// Estimated bytes held.
    pub bytes: u64,
    /// Evictions so far by cause (`size`, `expired`, `invalidated`).
    pub evictions: [(&'static str, u64); 3],
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
    block: &'static str,
    method: &'static str,
    route: &'static str,
    started: Instant,
    done: bool,
}

impl UpstreamObservation {
    /// Starts the clock; with no metrics (a core built without them) it records nothing.
    pub fn start(metrics: Option<&Metrics>, block: &'static str, method: &'static str, route: &'static str) -> Self {
        Self {
            metrics: metrics.cloned(),
            block,
            method,
            route,
            started: Instant::now(),
            done: false,
        }
    }

    /// Records the block's answer (status read, body received): its HTTP status code.
    pub fn answered(mut self, status: &str) {
        self.record(status);
        self.done = true;
    }

    fn record(&self, status: &str) {
        let Some(metrics) = &self.metrics else { return };
        let labels = [self.block, self.method, self.route, status];
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

/// One HTTP request counted as in flight; dropping it ends the count.
pub struct InFlightHttpRequest(IntGauge);

impl Drop for InFlightHttpRequest {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_are_bounded_and_well_formed() {
        let metrics = Metrics::new().expect("metrics");
        assert_eq!(metrics.operation_label(None), "anonymous");
        assert_eq!(metrics.operation_label(Some("bad name{}")), "other");
        for n in 0..MAX_OPERATION_NAMES {
            assert_eq!(metrics.operation_label(Some(&format!("Op{n}"))), format!("Op{n}"));
        }
        assert_eq!(metrics.operation_label(Some("OneTooMany")), "other");
        assert_eq!(metrics.operation_label(Some("Op0")), "Op0");
    }

    #[test]
    fn dropped_observations_count_as_cancelled_and_no_answer() {
        let metrics = Metrics::new().expect("metrics");
        drop(metrics.operation_started(Some("Q"), "query"));
        drop(UpstreamObservation::start(
            Some(&metrics),
            "CRM",
            "GET",
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
