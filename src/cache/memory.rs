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
    entries::{Answer, CacheKey, CacheSettings, EntryKind, Resource, Staleness},
    footprint,
};
use crate::blocks::BlockError;

/// One cached answer: a value, or a remembered 404. An entry answers reads until
/// `fresh_until`; past that, until `keep_until` (the stale-if-error window), it may only
/// stand in for its block when the block fails, and then moka drops it.
#[derive(Clone)]
struct Entry {
    value: Option<Arc<dyn Any + Send + Sync>>,
    weight: u32,
    /// When the block answered it.
    fetched_at: Instant,
    /// Reads are answered from it until then.
    fresh_until: Instant,
    /// It is kept, as a stand-in for a failing block, until then.
    keep_until: Instant,
    /// Set on the entry a failed fetch hands to the callers waiting for it (the copy it
    /// failed to replace, or nothing): never an answer by itself.
    failure: Option<Arc<BlockError>>,
}

impl Entry {
    fn is_fresh(&self, now: Instant) -> bool {
        self.failure.is_none() && now < self.fresh_until
    }

    /// Only the record of a failed fetch, with no copy to stand in.
    fn is_bare_failure(&self) -> bool {
        self.failure.is_some() && self.value.is_none()
    }
}

/// moka drops an entry at its `keep_until`.
struct KeepUntil;

impl Expiry<CacheKey, Entry> for KeepUntil {
    fn expire_after_create(&self, _key: &CacheKey, entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.keep_until.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        entry: &Entry,
        now: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.keep_until.saturating_duration_since(now))
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
            .expire_after(KeepUntil)
            .support_invalidation_closures()
            .eviction_listener({
                let evictions = evictions.clone();
                move |_key, entry: Entry, cause| {
                    // A failed fetch's bare record is no cached answer leaving.
                    if !entry.is_bare_failure() {
                        evictions.record(cause);
                    }
                }
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

    /// A current answer: `Some(Some(record))`, `Some(None)` for a remembered 404, `None` on
    /// a miss (or a copy past its TTL).
    pub(super) async fn get<T: Send + Sync + 'static>(&self, key: &CacheKey) -> Option<Option<Arc<T>>> {
        let entry = self.entries.get(key).await?;
        if !entry.is_fresh(Instant::now()) {
            return None;
        }
        match entry.value {
            None => Some(None),
            Some(value) => value.downcast::<T>().ok().map(Some),
        }
    }

    /// Answers from the cache, or runs `fetch` once for all concurrent callers of the same
    /// key (single flight) and caches its success or 404. Errors are shared with the
    /// callers waiting at that moment but not kept. When the block failed (see
    /// [`BlockError::is_block_outage`]) and a copy past its TTL is still within the stale
    /// window, callers with `stale_ok` get that copy, labelled, instead of the error.
    pub(super) async fn get_or_fetch<T, F>(
        &self,
        key: CacheKey,
        kind: EntryKind,
        stale_ok: bool,
        fetch: F,
    ) -> Result<Answer<T>, BlockError>
    where
        T: Serialize + Send + Sync + 'static,
        F: Future<Output = Result<Option<Arc<T>>, BlockError>>,
    {
        if self.ttl(kind, false).is_zero() {
            return fetch.await.map(Answer::current);
        }
        let previous = self.entries.get(&key).await;
        if let Some(entry) = &previous
            && entry.is_fresh(Instant::now())
        {
            return Ok(Answer::current(downcast(entry.clone())));
        }
        let settings = self.settings.clone();
        let init = async move {
            match fetch.await {
                Ok(value) => make_entry(&settings, kind, value),
                Err(error) => failed_entry(previous, error),
            }
        };
        // Like `try_get_with`, but a copy past its TTL is replaced (and kept, with the
        // failure, when the fetch fails: the callers waiting share the failure and the copy).
        let entry = self
            .entries
            .entry(key)
            .or_insert_with_if(init, |entry| !entry.is_fresh(Instant::now()))
            .await
            .into_value();
        answer(entry, stale_ok)
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

/// The longest any entry is kept, whatever the settings (an `Instant` must not overflow).
const MAX_KEEP: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

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
    let ttl = ttl_for(settings, kind, value.is_none()).min(MAX_KEEP);
    // A remembered 404 never stands in for a failing block.
    let window = match value {
        Some(_) => settings.stale_if_error.min(MAX_KEEP),
        None => Duration::ZERO,
    };
    let now = Instant::now();
    Entry {
        weight: u32::try_from(weight).unwrap_or(u32::MAX),
        value: value.map(|value| value as Arc<dyn Any + Send + Sync>),
        fetched_at: now,
        fresh_until: now + ttl,
        keep_until: now + ttl + window,
        failure: None,
    }
}

/// What a failed fetch leaves in the cache and hands to its waiters: the copy it could not
/// replace (kept until its own end), or a bare record of the failure that expires at once.
fn failed_entry(previous: Option<Entry>, error: BlockError) -> Entry {
    let failure = Some(Arc::new(error));
    match previous.filter(|previous| previous.value.is_some()) {
        Some(previous) => Entry { failure, ..previous },
        None => {
            let now = Instant::now();
            Entry {
                value: None,
                weight: ENTRY_OVERHEAD as u32,
                fetched_at: now,
                fresh_until: now,
                keep_until: now,
                failure,
            }
        }
    }
}

/// The answer an entry from [`MemoryTier::get_or_fetch`] gives a caller: its value, or, for
/// a failed fetch, the stale copy (when the caller takes one, the block itself failed and
/// the copy is within its window) or the error.
fn answer<T: Send + Sync + 'static>(entry: Entry, stale_ok: bool) -> Result<Answer<T>, BlockError> {
    let Some(failure) = entry.failure.clone() else {
        return Ok(Answer::current(downcast(entry)));
    };
    let now = Instant::now();
    if stale_ok && failure.is_block_outage() && now < entry.keep_until {
        let staleness = Staleness {
            age: now.saturating_duration_since(entry.fetched_at),
            expired_for: now.saturating_duration_since(entry.fresh_until),
            cause: (*failure).clone(),
        };
        if let Some(value) = downcast::<T>(entry) {
            return Ok(Answer {
                value: Some(value),
                stale: Some(staleness),
            });
        }
    }
    Err((*failure).clone())
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

    fn outage() -> BlockError {
        BlockError::Status {
            block: BlockName::Crm,
            status: 503,
            problem: Default::default(),
            retry_after: None,
        }
    }

    async fn fetch_string(
        cache: &MemoryTier,
        id: &str,
        stale_ok: bool,
        result: Result<Option<Arc<String>>, BlockError>,
    ) -> Result<Answer<String>, BlockError> {
        cache
            .get_or_fetch(key(id), EntryKind::Detail, stale_ok, async { result })
            .await
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_key_fetch_once() {
        let cache = MemoryTier::new(CacheSettings::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let fetches = (0..10).map(|_| {
            let calls = calls.clone();
            cache.get_or_fetch(key("a"), EntryKind::Detail, true, async move {
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
                .all(|r| matches!(r, Ok(Answer { value: Some(v), stale: None }) if v.as_str() == "person"))
        );
    }

    #[tokio::test]
    async fn errors_are_not_cached_but_not_found_is() {
        let cache = MemoryTier::new(CacheSettings::default());
        let failed = fetch_string(&cache, "b", true, Err(BlockError::Internal { block: BlockName::Crm })).await;
        assert!(failed.is_err());
        assert!(cache.get::<String>(&key("b")).await.is_none());
        let missing = fetch_string(&cache, "c", true, Ok(None)).await;
        assert!(matches!(
            missing,
            Ok(Answer {
                value: None,
                stale: None
            })
        ));
        assert!(matches!(cache.get::<String>(&key("c")).await, Some(None)));
    }

    #[tokio::test]
    async fn a_failing_block_gets_the_expired_copy_within_the_window_only() {
        let cache = MemoryTier::new(CacheSettings {
            detail_ttl: Duration::from_millis(30),
            stale_if_error: Duration::from_millis(300),
            ..CacheSettings::default()
        });
        let person = Some(Arc::new(String::from("person")));
        fetch_string(&cache, "d", true, Ok(person)).await.expect("stored");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(cache.get::<String>(&key("d")).await.is_none(), "expired: no plain hit");
        // A caller that takes no stale copy (a write, `no-cache`) gets the error.
        assert!(fetch_string(&cache, "d", false, Err(outage())).await.is_err());
        // A failure that is not the block's own (a 4xx) gets no stale copy either.
        let refused = BlockError::Status {
            block: BlockName::Crm,
            status: 403,
            problem: Default::default(),
            retry_after: None,
        };
        assert!(fetch_string(&cache, "d", true, Err(refused)).await.is_err());
        let answer = fetch_string(&cache, "d", true, Err(outage()))
            .await
            .expect("stale copy");
        let stale = answer.stale.expect("labelled stale");
        assert_eq!(answer.value.as_deref().map(String::as_str), Some("person"));
        assert!(stale.age >= Duration::from_millis(60) && stale.expired_for >= Duration::from_millis(30));
        assert_eq!(stale.cause.status(), Some(503));
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(
            fetch_string(&cache, "d", true, Err(outage())).await.is_err(),
            "past the window"
        );
    }

    #[tokio::test]
    async fn a_remembered_404_never_stands_in() {
        let cache = MemoryTier::new(CacheSettings {
            not_found_ttl: Duration::from_millis(20),
            stale_if_error: Duration::from_secs(60),
            ..CacheSettings::default()
        });
        fetch_string(&cache, "e", true, Ok(None)).await.expect("404 stored");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(fetch_string(&cache, "e", true, Err(outage())).await.is_err());
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
