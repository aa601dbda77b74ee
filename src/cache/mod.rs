//! The response cache under the loaders, in two tiers:
//! - the **memory tier** (`memory.rs`, moka, in this process): bounded by estimated bytes, a
//!   TTL per kind of entry (detail records, list pages, 404s), single flight for concurrent
//!   misses of one key;
//! - the optional **Redis tier** (`redis.rs`, `REDIS_URL`): a second level for detail
//!   records shared by replicas, and the channel that carries invalidations between them.
//!
//! Keys include the caller's credential fingerprint when credentials are forwarded. Errors
//! other than 404 are never cached. Records and pages are kept past their TTL for the
//! stale-if-error window (`CACHE_STALE_IF_ERROR_MS`): then they answer no read, but may
//! stand in, labelled, for a block that fails. [`ResponseCache`] is the one handle the rest of the
//! gateway uses; it owns both tiers.

mod entries;
mod footprint;
mod memory;
pub mod redis;
mod redis_connection;

use std::{future::Future, sync::Arc};

use serde::Serialize;

pub use entries::{Answer, CacheKey, CacheSettings, EntryKind, Record, Resource, Staleness};
pub use memory::CacheEvictions;
pub use redis::{RedisTier, RedisTierError, RedisTierSettings, settle_invalidations};

use crate::{blocks::BlockError, metrics::Metrics};
use memory::MemoryTier;

/// The response cache: the memory tier, and the Redis tier when configured. Cheap to clone.
#[derive(Clone)]
pub struct ResponseCache {
    memory: MemoryTier,
    redis: Option<RedisTier>,
}

impl ResponseCache {
    /// A cache in this process only, with the given bound and TTLs.
    pub fn new(settings: CacheSettings) -> Self {
        Self {
            memory: MemoryTier::new(settings),
            redis: None,
        }
    }

    /// A cache with the Redis tier behind the memory tier when `redis` is given (it must be
    /// called inside a Tokio runtime: the tier's subscriber starts at once).
    pub fn with_tiers(
        settings: CacheSettings,
        redis: Option<&RedisTierSettings>,
        metrics: &Metrics,
    ) -> Result<Self, RedisTierError> {
        let memory = MemoryTier::new(settings);
        let redis = match redis {
            Some(redis) => Some(RedisTier::start(redis, memory.clone(), metrics.clone())?),
            None => None,
        };
        Ok(Self { memory, redis })
    }

    /// The Redis tier, when there is one.
    pub fn redis_tier(&self) -> Option<&RedisTier> {
        self.redis.as_ref()
    }

    /// Evictions of the memory tier counted so far, by cause.
    pub fn evictions(&self) -> &CacheEvictions {
        self.memory.evictions()
    }

    /// The settings in force.
    pub fn settings(&self) -> &CacheSettings {
        self.memory.settings()
    }

    /// A cached answer: `Some(Some(record))`, `Some(None)` for a remembered 404, `None` on a miss.
    pub fn get<'a, T: Send + Sync + 'static>(
        &'a self,
        key: &'a CacheKey,
    ) -> impl Future<Output = Option<Option<Arc<T>>>> + 'a {
        // Delegates without an async layer of its own: in debug builds every layer of a
        // future is a stack frame the size of everything it holds.
        self.memory.get(key)
    }

    /// Answers from the memory tier, or runs `fetch` once for all concurrent callers of the
    /// same key (single flight) and caches its success or 404. Errors are shared with the
    /// callers waiting at that moment but not kept. With `stale_ok`, a block outage is
    /// answered with the copy past its TTL, when one is within the stale window
    /// ([`Answer::stale`] says so).
    pub fn get_or_fetch<'a, T, F>(
        &'a self,
        key: CacheKey,
        kind: EntryKind,
        stale_ok: bool,
        fetch: F,
    ) -> impl Future<Output = Result<Answer<T>, BlockError>> + 'a
    where
        T: Serialize + Send + Sync + 'static,
        F: Future<Output = Result<Option<Arc<T>>, BlockError>> + 'a,
    {
        self.memory.get_or_fetch(key, kind, stale_ok, fetch)
    }

    /// Stores a fresh answer (priming from lists, refreshing after a `no-cache` read,
    /// caching the answer of a write).
    pub fn insert<T: Serialize + Send + Sync + 'static>(
        &self,
        key: CacheKey,
        kind: EntryKind,
        value: Option<Arc<T>>,
    ) -> impl Future<Output = ()> + '_ {
        self.memory.insert(key, kind, value)
    }

    /// Forgets one key in this process.
    pub fn invalidate<'a>(&'a self, key: &'a CacheKey) -> impl Future<Output = ()> + 'a {
        self.memory.invalidate(key)
    }

    /// Forgets one record for every tenant, plus every cached page of the given list
    /// resources (a write can change any page). With the Redis tier, every other replica
    /// evicts the same before the operation's answer is sent.
    pub fn invalidate_record(&self, resource: Resource, id: &str, lists: &[Resource]) {
        self.invalidate_records(&[resource], id, lists);
    }

    /// [`invalidate_record`](Self::invalidate_record) for one id in several resources (an
    /// identity kept by several blocks): one pass over the memory tier, one eviction message
    /// per resource to the other replicas.
    pub fn invalidate_records(&self, resources: &[Resource], id: &str, lists: &[Resource]) {
        self.memory.evict_records(resources, id, lists);
        if let Some(redis) = &self.redis {
            for &resource in resources {
                redis.invalidated(resource, id, lists);
            }
        }
    }

    /// Forgets everything this process holds (the Redis tier is left alone).
    pub fn evict_all(&self) {
        self.memory.evict_all();
    }

    /// Entries and estimated bytes the memory tier holds now (after pending maintenance).
    pub async fn usage(&self) -> (u64, u64) {
        self.memory.usage().await
    }
}
