//! The shared response cache under the loaders (moka): bounded by bytes, a TTL per kind
//! of entry (detail records, list pages, 404s), single-flight for concurrent misses of one
//! key, and keys that include the caller's credential fingerprint when credentials are
//! forwarded. Errors other than 404 are never cached.

use std::{
    any::Any,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache};
use serde::{Deserialize, Serialize};

use crate::{
    blocks::{BlockError, BlockName},
    metrics::CacheEvictions,
    shared_cache::SharedTier,
};

pub mod documents;
mod footprint;

/// What a cache entry holds, which decides its TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// One record read by id.
    Detail,
    /// One page of a list, or an index built from lists.
    List,
}

/// The resources the gateway caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resource {
    /// Sales user by unique id.
    SalesUser,
    /// Sales customer by unique id.
    SalesCustomer,
    /// Sales users list page.
    SalesUsersPage,
    /// Every Sales entity (the block has no entity detail endpoint).
    SalesEntities,
    /// Search identity by unique id.
    SearchIdentity,
    /// Assets user by unique id.
    AssetsUser,
    /// An Assets user's assets.
    AssetsUserAssets,
    /// An Assets user's entities.
    AssetsUserEntities,
    /// An Assets user's ownership records.
    AssetsUserOwnership,
    /// B2B user by id.
    B2bUser,
    /// B2B user matched by email.
    B2bUserByEmail,
    /// CRM person by id.
    CrmPerson,
    /// CRM persons list page.
    CrmPersonsPage,
    /// CRM organization by id.
    CrmOrganization,
    /// CRM organizations list page.
    CrmOrganizationsPage,
}

impl Resource {
    /// The block that owns the resource.
    pub fn block(self) -> BlockName {
        match self {
            Self::SalesUser | Self::SalesCustomer | Self::SalesUsersPage | Self::SalesEntities => BlockName::Sales,
            Self::SearchIdentity => BlockName::Search,
            Self::AssetsUser | Self::AssetsUserAssets | Self::AssetsUserEntities | Self::AssetsUserOwnership => {
                BlockName::Assets
            }
            Self::B2bUser | Self::B2bUserByEmail => BlockName::B2b,
            Self::CrmPerson | Self::CrmPersonsPage | Self::CrmOrganization | Self::CrmOrganizationsPage => {
                BlockName::Crm
            }
        }
    }
}

/// A cache key: whose credentials, which resource, which id (or page parameters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Fingerprint of the forwarded caller credential; 0 for the gateway's own credentials.
    pub tenant: u64,
    /// The resource.
    pub resource: Resource,
    /// Record id, or the canonical form of a list query.
    pub id: Arc<str>,
}

/// A record as loaded: `complete` is false for items that came from a list page whose
/// items may carry fewer fields than the detail answer (a deserialized record counts as
/// partial: only the loader knows where it came from).
#[derive(Debug, Serialize, Deserialize)]
pub struct Record<T> {
    /// The wire record.
    pub data: T,
    /// Whether the record came from a detail read.
    #[serde(skip)]
    pub complete: bool,
}

impl<T> Record<T> {
    /// A record from a detail read.
    pub fn complete(data: T) -> Arc<Self> {
        Arc::new(Self { data, complete: true })
    }

    /// A record from a list item.
    pub fn partial(data: T) -> Arc<Self> {
        Arc::new(Self { data, complete: false })
    }
}

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

/// TTLs and size bound of the cache.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Upper bound of the estimated bytes held.
    pub max_bytes: u64,
    /// TTL of detail records; zero disables caching them.
    pub detail_ttl: Duration,
    /// TTL of list pages and list-built indexes.
    pub list_ttl: Duration,
    /// TTL of remembered 404s.
    pub not_found_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            detail_ttl: Duration::from_secs(30),
            list_ttl: Duration::from_secs(5),
            not_found_ttl: Duration::from_secs(5),
        }
    }
}

/// The shared cache. Cheap to clone.
#[derive(Clone)]
pub struct ResponseCache {
    entries: Cache<CacheKey, Entry>,
    settings: Arc<CacheSettings>,
    /// Evictions by cause (read by `/metrics`).
    evictions: Arc<CacheEvictions>,
    /// The Redis tier, when `REDIS_URL` is set: second level and invalidation channel.
    shared: Option<SharedTier>,
}

/// Fixed per-entry cost beyond the value: moka's bookkeeping (hash-table slot, entry
/// info, access and write order nodes, timer-wheel node) and the key. Measured with the
/// benchmark's `cache_memory` scenario: with it, the weight of a CRM person matches the
/// RSS it costs (about 2.7 KB).
const ENTRY_OVERHEAD: usize = 640;

impl ResponseCache {
    /// A cache with the given bound and TTLs.
    pub fn new(settings: CacheSettings) -> Self {
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
            shared: None,
        }
    }

    /// The same cache with the Redis tier behind it and told about every invalidation.
    pub fn with_shared_tier(mut self, tier: SharedTier) -> Self {
        self.shared = Some(tier);
        self
    }

    /// The Redis tier, when there is one.
    pub fn shared_tier(&self) -> Option<&SharedTier> {
        self.shared.as_ref()
    }

    /// Evictions counted so far, by cause.
    pub fn evictions(&self) -> &CacheEvictions {
        &self.evictions
    }

    /// The settings in force.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// A cached answer: `Some(Some(record))`, `Some(None)` for a remembered 404, `None` on a miss.
    pub async fn get<T: Send + Sync + 'static>(&self, key: &CacheKey) -> Option<Option<Arc<T>>> {
        let entry = self.entries.get(key).await?;
        match entry.value {
            None => Some(None),
            Some(value) => value.downcast::<T>().ok().map(Some),
        }
    }

    /// Answers from the cache, or runs `fetch` once for all concurrent callers of the same
    /// key (single flight) and caches its success or 404. Errors are shared with the
    /// callers waiting at that moment but not kept.
    pub async fn get_or_fetch<T, F>(
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
    pub async fn insert<T: Serialize + Send + Sync + 'static>(
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
    pub async fn invalidate(&self, key: &CacheKey) {
        self.entries.invalidate(key).await;
    }

    /// Forgets one record for every tenant, plus every cached page of the given list
    /// resources (a write can change any page).
    /// With the Redis tier, every other replica evicts the same before the operation's
    /// answer is sent.
    pub fn invalidate_record(&self, resource: Resource, id: &str, lists: &[Resource]) {
        self.invalidate_records(&[resource], id, lists);
    }

    /// [`invalidate_record`](Self::invalidate_record) for one id in several resources (an
    /// identity kept by several blocks): one pass over the cache here, one eviction message
    /// per resource to the other replicas.
    pub fn invalidate_records(&self, resources: &[Resource], id: &str, lists: &[Resource]) {
        self.evict_records(resources, id, lists);
        if let Some(shared) = &self.shared {
            for &resource in resources {
                shared.invalidated(resource, id, lists);
            }
        }
    }

    /// [`invalidate_record`](Self::invalidate_record) in this process only (an eviction
    /// another replica sent).
    pub fn evict_record(&self, resource: Resource, id: &str, lists: &[Resource]) {
        self.evict_records(&[resource], id, lists);
    }

    fn evict_records(&self, resources: &[Resource], id: &str, lists: &[Resource]) {
        let id: Arc<str> = Arc::from(id);
        let (resources, lists) = (resources.to_vec(), lists.to_vec());
        // Only fails when invalidation closures are not enabled, which `new` enables.
        let _ = self.entries.invalidate_entries_if(move |key, _| {
            (resources.contains(&key.resource) && key.id == id) || lists.contains(&key.resource)
        });
    }

    /// Forgets everything in this process (invalidations from other replicas may have been
    /// missed).
    pub fn evict_all(&self) {
        self.entries.invalidate_all();
    }

    /// Entries and estimated bytes held now (after pending maintenance).
    pub async fn usage(&self) -> (u64, u64) {
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

#[cfg(test)]
mod tests {
    use super::*;
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
        let cache = ResponseCache::new(CacheSettings::default());
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
        let cache = ResponseCache::new(CacheSettings::default());
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
        let cache = ResponseCache::new(CacheSettings {
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
