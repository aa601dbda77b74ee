//! Explain: what one operation did, for a caller who asked with
//! `"extensions": { "explain": true }`: every upstream request (block, method, route
//! template, status, when it started and how long it took), the cache lookups by tier, the
//! loader batches, the operation's total time and the time spent waiting on blocks.
//!
//! A leaf, like `metrics`: it takes plain labels. The layers below the gateway record into
//! an [`OperationTrace`] they are handed only when the caller asked (an `Option` that is
//! `None` otherwise: nothing is allocated or measured for other operations); the gateway
//! turns it into `extensions.explain`.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use serde::Serialize;

/// Who may ask for an explanation (`GATEWAY_EXPLAIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExplainAccess {
    /// Nobody: the flag is refused with a note in `extensions`.
    Off,
    /// Every caller the gateway lets in (any authenticated caller; everyone in open mode).
    #[default]
    Callers,
}

impl ExplainAccess {
    /// The value as `GATEWAY_EXPLAIN` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Callers => "callers",
        }
    }
}

impl std::str::FromStr for ExplainAccess {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "callers" => Ok(Self::Callers),
            other => Err(format!("{other:?} is neither `off` nor `callers`")),
        }
    }
}

/// A cache tier a lookup went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTier {
    /// The in-process tier.
    Memory,
    /// The Redis tier.
    Redis,
}

/// What a cache lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupOutcome {
    /// Answered from the tier.
    Hit,
    /// Not there (or not current).
    Miss,
    /// The tier did not answer (Redis down).
    Unavailable,
}

/// Hits and misses of one cache tier.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TierCounts {
    /// Lookups answered by the tier.
    pub hits: u64,
    /// Lookups it could not answer.
    pub misses: u64,
    /// Lookups it did not answer at all (Redis only).
    #[serde(skip_serializing_if = "is_zero")]
    pub unavailable: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// Batches and keys of one loader resource.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    /// DataLoader batches dispatched.
    pub batches: u64,
    /// Keys they asked for.
    pub keys: u64,
}

/// One request sent to a block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamCall {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The route template (`persons/{id}/`), never the ids themselves.
    pub path: &'static str,
    /// The HTTP status; `None` when no answer came (connection failure, timeout).
    pub status: Option<u16>,
    /// Milliseconds from the start of the operation to the request.
    pub start_ms: f64,
    /// Milliseconds until its answer body was read (or it was given up).
    pub ms: f64,
}

/// What one block was asked during the operation.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCalls {
    /// Requests sent (retries included).
    pub requests: usize,
    /// Their summed time in milliseconds.
    pub total_ms: f64,
    /// Each request, in the order they were sent.
    pub calls: Vec<UpstreamCall>,
}

/// `extensions.explain` of one operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// Milliseconds from the operation's start to its answer.
    pub total_ms: f64,
    /// Milliseconds during which at least one block request was in flight.
    pub block_wait_ms: f64,
    /// Upstream requests by block (`SALES`, `CRM`, ...).
    pub blocks: BTreeMap<&'static str, BlockCalls>,
    /// Cache lookups by tier (`memory`, `redis`).
    pub cache: BTreeMap<&'static str, TierCounts>,
    /// Loader batches by resource (`crm_person`, ...).
    pub batches: BTreeMap<&'static str, BatchCounts>,
}

/// What one operation did, recorded while it runs. Shared by the operation's loaders and
/// block clients behind an `Arc`.
#[derive(Debug)]
pub struct OperationTrace {
    started: Instant,
    recorded: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<(&'static str, UpstreamCall)>,
    memory: TierCounts,
    redis: Option<TierCounts>,
    batches: BTreeMap<&'static str, BatchCounts>,
}

impl Default for OperationTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl OperationTrace {
    /// A trace whose clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            recorded: Mutex::new(Recorded::default()),
        }
    }

    fn recorded(&self) -> MutexGuard<'_, Recorded> {
        // A poisoned lock only means a recorder panicked mid-push; the counts stay usable.
        self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts timing one request to `block` on `route` (`GET /api/crm/persons/{id}/`, or
    /// the path template alone); the returned timer records it when it is
    /// [answered](UpstreamTimer::answered), or as unanswered when dropped.
    pub fn upstream_started(
        &self,
        block: &'static str,
        method: &'static str,
        route: &'static str,
    ) -> UpstreamTimer<'_> {
        let path = route.strip_prefix(method).map(str::trim_start).unwrap_or(route);
        UpstreamTimer {
            trace: self,
            block,
            method,
            path,
            started: Instant::now(),
            done: false,
        }
    }

    /// Counts one cache lookup in `tier`.
    pub fn cache_lookup(&self, tier: CacheTier, outcome: LookupOutcome) {
        let mut recorded = self.recorded();
        let counts = match tier {
            CacheTier::Memory => &mut recorded.memory,
            CacheTier::Redis => recorded.redis.get_or_insert_with(TierCounts::default),
        };
        match outcome {
            LookupOutcome::Hit => counts.hits += 1,
            LookupOutcome::Miss => counts.misses += 1,
            LookupOutcome::Unavailable => counts.unavailable += 1,
        }
    }

    /// Counts one loader batch of `keys` keys for `resource`.
    pub fn loader_batch(&self, resource: &'static str, keys: usize) {
        let mut recorded = self.recorded();
        let counts = recorded.batches.entry(resource).or_default();
        counts.batches += 1;
        counts.keys += keys as u64;
    }

    /// The explanation as of now (the operation's total time ends here).
    pub fn explanation(&self) -> Explanation {
        let total = self.started.elapsed();
        let recorded = self.recorded();
        let mut blocks: BTreeMap<&'static str, BlockCalls> = BTreeMap::new();
        for (block, call) in &recorded.calls {
            let calls = blocks.entry(block).or_default();
            calls.requests += 1;
            calls.total_ms += call.ms;
            calls.calls.push(call.clone());
        }
        let mut cache = BTreeMap::from([("memory", recorded.memory)]);
        if let Some(redis) = recorded.redis {
            cache.insert("redis", redis);
        }
        Explanation {
            total_ms: millis(total),
            block_wait_ms: millis(covered(recorded.calls.iter().map(|(_, call)| call))),
            blocks,
            cache,
            batches: recorded.batches.clone(),
        }
    }
}

/// How long at least one of `calls` was in flight (the union of their intervals).
fn covered<'a>(calls: impl Iterator<Item = &'a UpstreamCall>) -> Duration {
    let mut intervals: Vec<(f64, f64)> = calls.map(|call| (call.start_ms, call.start_ms + call.ms)).collect();
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in intervals {
        current = match current {
            Some((from, to)) if start <= to => Some((from, to.max(end))),
            Some((from, to)) => {
                total += to - from;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((from, to)) = current {
        total += to - from;
    }
    Duration::from_secs_f64(total.max(0.0) / 1000.0)
}

/// Milliseconds with microsecond precision.
fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// One upstream request being timed; see [`OperationTrace::upstream_started`].
pub struct UpstreamTimer<'a> {
    trace: &'a OperationTrace,
    block: &'static str,
    method: &'static str,
    path: &'static str,
    started: Instant,
    done: bool,
}

impl UpstreamTimer<'_> {
    /// Records the block's answer with its HTTP status.
    pub fn answered(mut self, status: u16) {
        self.record(Some(status));
        self.done = true;
    }

    fn record(&self, status: Option<u16>) {
        let call = UpstreamCall {
            method: self.method,
            path: self.path,
            status,
            start_ms: millis(self.started.saturating_duration_since(self.trace.started)),
            ms: millis(self.started.elapsed()),
        };
        self.trace.recorded().calls.push((self.block, call));
    }
}

impl Drop for UpstreamTimer<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(start_ms: f64, ms: f64) -> UpstreamCall {
        UpstreamCall {
            method: "GET",
            path: "x",
            status: Some(200),
            start_ms,
            ms,
        }
    }

    #[test]
    fn waiting_time_is_the_union_of_the_requests() {
        let calls = [call(0.0, 10.0), call(5.0, 10.0), call(20.0, 5.0), call(21.0, 1.0)];
        assert_eq!(millis(covered(calls.iter())), 20.0);
        assert_eq!(covered([].iter()), Duration::ZERO);
    }

    #[test]
    fn an_unanswered_request_is_recorded_without_status() {
        let trace = OperationTrace::new();
        trace
            .upstream_started("CRM", "GET", "GET /api/crm/persons/{id}/")
            .answered(200);
        drop(trace.upstream_started("CRM", "GET", "/api/crm/persons/{id}/"));
        trace.cache_lookup(CacheTier::Memory, LookupOutcome::Miss);
        trace.loader_batch("crm_person", 1);
        let explanation = trace.explanation();
        let crm = &explanation.blocks["CRM"];
        assert_eq!(crm.requests, 2);
        assert_eq!(crm.calls[0].status, Some(200));
        assert_eq!(crm.calls[1].status, None);
        assert!(crm.calls.iter().all(|call| call.path == "/api/crm/persons/{id}/"));
        assert_eq!(explanation.cache["memory"].misses, 1);
        assert!(!explanation.cache.contains_key("redis"));
        assert_eq!(explanation.batches["crm_person"], BatchCounts { batches: 1, keys: 1 });
    }

    #[test]
    fn the_access_setting_reads_its_two_values() {
        assert_eq!("off".parse(), Ok(ExplainAccess::Off));
        assert_eq!(" Callers ".parse(), Ok(ExplainAccess::Callers));
        assert!("everyone".parse::<ExplainAccess>().is_err());
    }
}
