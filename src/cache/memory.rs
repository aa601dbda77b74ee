//! The in-process tier: a moka cache bounded by estimated bytes, with a TTL per entry and
//! single flight for concurrent misses of one key. Values are kept as `Arc<dyn Any>`, so
//! a hit costs no decoding.

use std::{
    any::Any,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache, notification::RemovalCause};
use serde::Serialize;

use super::{
    entries::{CacheKey, CacheSettings, EntryKind, Resource},
    footprint,
};
use crate::blocks::BlockError;

/// One cached answer: a value, or a remembered 404.
#[derive(Clone)]
struct Entry {
    value: Option<Arc<dyn Any + Send + Sync>>,
    weight: u32,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &CacheKey, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        entry: &Entry,
        _now: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// The moka tier. Cheap to clone.
#[derive(Clone)]
pub(crate) struct MemoryTier {
    entries: Cache<CacheKey, Entry>,
    settings: Arc<CacheSettings>,
    /// Evictions by cause (read by `/metrics`).
    evictions: Arc<CacheEvictions>,
}

/// Fixed per-entry cost beyond the value: moka's bookkeeping (hash-table slot, entry
/// info, access and write order nodes, timer-wheel node) and the key. Measured with the
/// benchmark's `cache_memory` scenario: with it, the weight of a CRM person matches the
/// RSS it costs (about 2.7 KB).
const ENTRY_OVERHEAD: usize = 640;

impl MemoryTier {
    /// A cache with the given bound and TTLs.
    pub(super) fn new(settings: CacheSettings) -> Self {
        let evictions = Arc::new(CacheEvictions::default());
        let entries = Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(|key: &CacheKey, entry: &Entry| {
                let id = u32::try_from(footprint::allocation(key.id.len() + 16)).unwrap_or(u32::MAX);
                entry.weight.saturating_add(id)
            })
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .eviction_listener({
                let evictions = evictions.clone();
                move |_key, _entry, cause| evictions.record(cause)
            })
            .build();
        Self {
            entries,
            settings: Arc::new(settings),
            evictions,
        }
    }

    /// Evictions counted so far, by cause.
    pub(super) fn evictions(&self) -> &CacheEvictions {
        &self.evictions
    }

    /// The settings in force.
    pub(super) fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// A cached answer: `Some(Some(record))`, `Some(None)` for a remembered 404, `None` on a miss.
    pub(super) async fn get<T: Send + Sync + 'static>(&self, key: &CacheKey) -> Option<Option<Arc<T>>> {
        let entry = self.entries.get(key).await?;
        match entry.value {
            None => Some(None),
            Some(value) => value.downcast::<T>().ok().map(Some),
        }
    }

    /// Answers from the cache, or runs `fetch` once for all concurrent callers of the same
    /// key (single flight) and caches its success or 404. Errors are shared with the
    /// callers waiting at that moment but not kept.
    pub(super) async fn get_or_fetch<T, F>(
        &self,
        key: CacheKey,
        kind: EntryKind,
        fetch: F,
    ) -> Result<Option<Arc<T>>, BlockError>
    where
        T: Serialize + Send + Sync + 'static,
        F: Future<Output = Result<Option<Arc<T>>, BlockError>>,
    {
        if self.ttl(kind, false).is_zero() {
            return fetch.await;
        }
        let settings = self.settings.clone();
        let entry = self
            .entries
            .try_get_with(key, async move {
                let value = fetch.await?;
                Ok::<_, BlockError>(make_entry(&settings, kind, value))
            })
            .await
            .map_err(|error: Arc<BlockError>| (*error).clone())?;
        Ok(downcast(entry))
    }

    /// Stores a fresh answer (priming from lists, refreshing after a `no-cache` read,
    /// caching the answer of a write).
    pub(super) async fn insert<T: Serialize + Send + Sync + 'static>(
        &self,
        key: CacheKey,
        kind: EntryKind,
        value: Option<Arc<T>>,
    ) {
        if self.ttl(kind, value.is_none()).is_zero() {
            return;
        }
        self.entries.insert(key, make_entry(&self.settings, kind, value)).await;
    }

    /// Forgets one key.
    pub(super) async fn invalidate(&self, key: &CacheKey) {
        self.entries.invalidate(key).await;
    }

    /// Forgets `id` in each of `resources` for every tenant, plus every cached page of the
    /// `lists` resources (a write can change any page).
    pub(super) fn evict_records(&self, resources: &[Resource], id: &str, lists: &[Resource]) {
        let id: Arc<str> = Arc::from(id);
        let (resources, lists) = (resources.to_vec(), lists.to_vec());
        // Only fails when invalidation closures are not enabled, which `new` enables.
        let _ = self.entries.invalidate_entries_if(move |key, _| {
            (resources.contains(&key.resource) && key.id == id) || lists.contains(&key.resource)
        });
    }

    /// Forgets everything in this process (invalidations from other replicas may have been
    /// missed).
    pub(super) fn evict_all(&self) {
        self.entries.invalidate_all();
    }

    /// Entries and estimated bytes held now (after pending maintenance).
    pub(super) async fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks().await;
        (self.entries.entry_count(), self.entries.weighted_size())
    }

    fn ttl(&self, kind: EntryKind, not_found: bool) -> Duration {
        ttl_for(&self.settings, kind, not_found)
    }
}

fn ttl_for(settings: &CacheSettings, kind: EntryKind, not_found: bool) -> Duration {
    match (kind, not_found) {
        (_, true) => settings.not_found_ttl,
        (EntryKind::Detail, false) => settings.detail_ttl,
        (EntryKind::List, false) => settings.list_ttl,
    }
}

fn make_entry<T: Serialize + Send + Sync + 'static>(
    settings: &CacheSettings,
    kind: EntryKind,
    value: Option<Arc<T>>,
) -> Entry {
    // The value's own allocation (an `Arc` adds two counters) plus everything it owns.
    let weight = value
        .as_ref()
        .map(|value| footprint::allocation(std::mem::size_of::<T>() + 16) + footprint::heap_bytes(value.as_ref()))
        .unwrap_or(0)
        .saturating_add(ENTRY_OVERHEAD);
    Entry {
        ttl: ttl_for(settings, kind, value.is_none()),
        weight: u32::try_from(weight).unwrap_or(u32::MAX),
        value: value.map(|value| value as Arc<dyn Any + Send + Sync>),
    }
}

fn downcast<T: Send + Sync + 'static>(entry: Entry) -> Option<Arc<T>> {
    entry.value.and_then(|value| value.downcast::<T>().ok())
}

/// Evictions of the in-process tier by cause, counted by the cache's eviction listener and
/// read at scrape time.
#[derive(Debug, Default)]
pub struct CacheEvictions {
    size: AtomicU64,
    expired: AtomicU64,
    invalidated: AtomicU64,
}

impl CacheEvictions {
    /// Counts one removal; a replaced value is not an eviction.
    fn record(&self, cause: RemovalCause) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockName;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(id: &str) -> CacheKey {
        CacheKey {
            tenant: 0,
            resource: Resource::CrmPerson,
            id: Arc::from(id),
        }
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_key_fetch_once() {
        let cache = MemoryTier::new(CacheSettings::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let fetches = (0..10).map(|_| {
            let calls = calls.clone();
            cache.get_or_fetch(key("a"), EntryKind::Detail, async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Some(Arc::new(String::from("person"))))
            })
        });
        let results = futures::future::join_all(fetches).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(Some(v)) if v.as_str() == "person"))
        );
    }

    #[tokio::test]
    async fn errors_are_not_cached_but_not_found_is() {
        let cache = MemoryTier::new(CacheSettings::default());
        let failed: Result<Option<Arc<String>>, _> = cache
            .get_or_fetch(key("b"), EntryKind::Detail, async {
                Err(BlockError::Internal { block: BlockName::Crm })
            })
            .await;
        assert!(failed.is_err());
        assert!(cache.get::<String>(&key("b")).await.is_none());
        let missing: Result<Option<Arc<String>>, _> = cache
            .get_or_fetch(key("c"), EntryKind::Detail, async { Ok(None) })
            .await;
        assert!(matches!(missing, Ok(None)));
        assert!(matches!(cache.get::<String>(&key("c")).await, Some(None)));
    }

    #[tokio::test]
    async fn byte_bound_holds() {
        let cache = MemoryTier::new(CacheSettings {
            max_bytes: 100_000,
            ..CacheSettings::default()
        });
        for n in 0..2_000 {
            cache
                .insert(key(&n.to_string()), EntryKind::Detail, Some(Arc::new("x".repeat(100))))
                .await;
        }
        let (_, bytes) = cache.usage().await;
        assert!(bytes <= 100_000, "{bytes}");
    }
}
