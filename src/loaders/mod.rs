//! Request-scoped batched loading. One [`BlockLoader`] per GraphQL request, wrapped in an
//! async-graphql `DataLoader`: one upstream request per distinct key per query, keys of a
//! batch fetched concurrently (bounded per block by the HTTP core), each key's outcome
//! kept apart (found, 404, or that key's error), and answers shared across requests
//! through the [`ResponseCache`].

mod invalidate;
mod keys;
mod memo;
mod stale;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use futures::FutureExt;
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::task::TaskTracker;

pub use invalidate::{Touched, forget};
pub use keys::*;
pub use stale::{StaleAnswer, StaleAnswers};

use crate::{
    blocks::{BlockClients, BlockError, operation::OperationBudget},
    cache::{Answer, CacheKey, EntryKind, Record, Resource, ResponseCache},
    explain::{CacheTier, LookupOutcome, OperationTrace},
    link_index::LinkIndex,
    metrics::Metrics,
};

use memo::OperationMemo;

/// What loading one key gave: the record, `None` for a 404, or the block's error.
pub type Loaded<T> = Result<Option<Arc<Record<T>>>, BlockError>;

/// The per-request loader handle resolvers use.
pub type Loaders = DataLoader<BlockLoader, HashMapCache>;

/// Per-request facts that change how loading behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestScope {
    /// Fingerprint of forwarded caller credentials (0 with service credentials).
    pub tenant: u64,
    /// `Cache-Control: no-cache`: skip cached answers, refresh them.
    pub bypass_cache: bool,
    /// A block outage may be answered from a cached copy past its TTL (stale-if-error):
    /// queries only, never a mutation's reads, never with `no-cache`.
    pub stale_if_error: bool,
}

/// The loader behind every key type: the block clients, the shared cache, the scope.
pub struct BlockLoader {
    clients: Arc<BlockClients>,
    cache: ResponseCache,
    scope: RequestScope,
    budget: Option<Arc<OperationBudget>>,
    metrics: Option<Metrics>,
    priming: Option<TaskTracker>,
    stale: Option<Arc<StaleAnswers>>,
    trace: Option<Arc<OperationTrace>>,
    lookup_index: Option<LinkIndex>,
    /// What this operation fetched past the shared cache (`no-cache`): still one upstream
    /// request per distinct key.
    memo: OperationMemo,
}

impl BlockLoader {
    /// A loader for one request.
    pub fn new(clients: Arc<BlockClients>, cache: ResponseCache, scope: RequestScope) -> Self {
        Self {
            clients,
            cache,
            scope,
            budget: None,
            metrics: None,
            priming: None,
            stale: None,
            trace: None,
            lookup_index: None,
            memo: OperationMemo::default(),
        }
    }

    /// Finds what the blocks cannot look up by key (a Sales entity's page, a B2B user by
    /// exact email) through the lookups of `index`, and keeps them fresh.
    pub fn with_lookup_index(mut self, index: LinkIndex) -> Self {
        self.lookup_index = Some(index);
        self
    }

    /// The lookup index, when the loader has one.
    pub fn lookup_index(&self) -> Option<&LinkIndex> {
        self.lookup_index.as_ref()
    }

    /// Notes the operation's stale answers in `stale` (which the gateway reports); a
    /// loader without it answers no stale copy.
    pub fn with_stale_answers(mut self, stale: Arc<StaleAnswers>) -> Self {
        self.stale = Some(stale);
        self
    }

    /// Records cache lookups and loader batches in `trace` (an explained operation).
    pub fn with_trace(mut self, trace: Arc<OperationTrace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The operation's stale answers, when they are noted.
    pub fn stale_answers(&self) -> Option<&StaleAnswers> {
        self.stale.as_deref()
    }

    /// Primes the shared cache with list items on tasks of `priming` instead of before the
    /// list is answered: the operation's reads of those items go on at once (its own memo
    /// has them), and the operation waits for `priming` before its answer leaves, so the
    /// items are cached by the time a client can ask for them again.
    pub fn with_priming(mut self, priming: TaskTracker) -> Self {
        self.priming = Some(priming);
        self
    }

    /// Records cache hits and misses and batch sizes in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn record_lookup(&self, resource: Resource, hit: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.cache_lookup(resource.label(), hit);
        }
        if let Some(trace) = &self.trace {
            let outcome = if hit { LookupOutcome::Hit } else { LookupOutcome::Miss };
            trace.cache_lookup(CacheTier::Memory, outcome);
        }
    }

    /// Whether loads skip the shared cache: `no-cache`, or the Redis invalidation channel
    /// is down (an eviction from another replica could be missed).
    fn bypasses_cache(&self) -> bool {
        self.scope.bypass_cache || self.cache.redis_tier().is_some_and(|tier| !tier.is_subscribed())
    }

    /// Whether a block outage may be answered from a stale copy: the operation allows it,
    /// says so in its answer, and the cache is in use (a bypassed cache may hold what a
    /// write evicted elsewhere).
    fn takes_stale(&self) -> bool {
        self.scope.stale_if_error && self.stale.is_some() && !self.bypasses_cache()
    }

    /// Notes (and counts) a record answered from a stale copy.
    fn answered_stale<T>(&self, record: &Arc<T>, resource: Resource, staleness: &crate::cache::Staleness) {
        tracing::warn!(block = %resource.block(), resource = resource.label(), age_ms = staleness.age.as_millis() as u64, cause = %staleness.cause, "answered from a stale copy: the block failed");
        if let Some(metrics) = &self.metrics {
            metrics.stale_answer(resource.block().label(), resource.label());
        }
        if let Some(stale) = &self.stale {
            stale.record(record, resource, staleness);
        }
    }

    /// The value of a cache answer, noting it when it is a stale copy.
    fn noted<T>(&self, answer: Answer<T>, resource: Resource) -> Option<Arc<T>> {
        if let (Some(staleness), Some(value)) = (&answer.stale, &answer.value) {
            self.answered_stale(value, resource, staleness);
        }
        answer.value
    }

    /// After a block outage the memory tier could not cover: the Redis tier's copy past
    /// its TTL, when it holds one within the window (another replica may have read it).
    async fn stale_from_redis<K: RecordKey>(&self, key: &CacheKey, error: BlockError) -> Loaded<K::Record> {
        let tier = match self.cache.redis_tier() {
            Some(tier) if K::KIND == EntryKind::Detail && self.takes_stale() && error.is_block_outage() => tier,
            _ => return Err(error),
        };
        match tier.stale_copy::<K::Record>(key, &error).await {
            Some((data, staleness)) => {
                let record = Record::complete(data);
                self.answered_stale(&record, K::RESOURCE, &staleness);
                Ok(Some(record))
            }
            None => Err(error),
        }
    }

    /// Fetches a key from its block, through the Redis tier for detail records when there
    /// is one (`use_stored` false: refresh what Redis holds without using it).
    async fn fetch_shared<K: RecordKey>(
        &self,
        key: &K,
        cache_key: &CacheKey,
        use_stored: bool,
    ) -> Result<Option<K::Record>, BlockError> {
        match self.cache.redis_tier() {
            Some(tier) if K::KIND == EntryKind::Detail => {
                tier.read_through(cache_key, use_stored, self.trace.as_deref(), || {
                    Box::pin(key.fetch(self))
                })
                .await
            }
            // Boxed: some keys load others while fetching (an entity's list page), and
            // nesting their futures inline could exhaust a thread's stack.
            _ => Box::pin(key.fetch(self)).await,
        }
    }

    /// Bounds every load by the operation's deadline, also a wait for another request's
    /// fetch of the same key (the clients themselves should carry the same budget).
    pub fn with_budget(mut self, budget: Arc<OperationBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Loads one key within the operation's deadline, if it has one.
    async fn load_within_deadline<K: RecordKey>(&self, key: &K) -> Loaded<K::Record> {
        let Some((deadline, limit)) = self
            .budget
            .as_ref()
            .and_then(|budget| Some((budget.deadline()?, budget.time_limit())))
        else {
            return self.load_key(key).await;
        };
        tokio::time::timeout_at(deadline, self.load_key(key))
            .await
            .unwrap_or(Err(BlockError::DeadlineExceeded {
                block: K::RESOURCE.block(),
                limit,
            }))
    }

    /// Wraps it in a request-scoped `DataLoader` whose per-request memo makes every
    /// distinct key cost at most one upstream request per query. Every key is dispatched
    /// at once as its own batch: the blocks read one record per request (they have no
    /// multi-id endpoint), so gathering a batch could only delay it, and the DataLoader
    /// gathers on a tokio timer that fires on the timer's next millisecond tick, even with
    /// a zero delay (about 1 ms lost per round of loads: twice in a fan-out).
    pub fn into_data_loader(self) -> Loaders {
        DataLoader::with_cache(self, tokio::spawn, HashMapCache::default()).max_batch_size(1)
    }

    /// The block clients (mutations call them directly).
    pub fn clients(&self) -> &BlockClients {
        &self.clients
    }

    /// The shared cache.
    pub fn cache(&self) -> &ResponseCache {
        &self.cache
    }

    /// The request scope.
    pub fn scope(&self) -> RequestScope {
        self.scope
    }

    /// The cache key of `id` in `resource` for this request's tenant.
    pub fn cache_key(&self, resource: Resource, id: &str) -> CacheKey {
        CacheKey {
            tenant: self.scope.tenant,
            resource,
            id: Arc::from(id),
        }
    }

    /// Loads one key through the cache: a hit answers at once (unless the request bypasses
    /// the cache, or the key needs a complete record and the cached one is partial);
    /// a miss fetches once for all concurrent callers.
    /// What the shared cache holds for `key` and may answer with at once: `Some(None)` is a
    /// remembered 404. Warm reads skip the DataLoader, whose batching delay only helps keys
    /// that go upstream.
    async fn cache_hit<K: RecordKey>(&self, key: &K) -> Option<Option<Arc<Record<K::Record>>>> {
        if self.bypasses_cache() {
            return None;
        }
        let cache_key = self.cache_key(K::RESOURCE, &key.cache_id());
        match self.cache.get::<Record<K::Record>>(&cache_key).await? {
            Some(record) if key.needs_complete() && !record.complete => None,
            hit => {
                self.record_lookup(K::RESOURCE, true);
                Some(hit)
            }
        }
    }

    async fn load_key<K: RecordKey>(&self, key: &K) -> Loaded<K::Record> {
        let cache_key = self.cache_key(K::RESOURCE, &key.cache_id());
        let bypass = self.bypasses_cache();
        if !bypass
            && key.needs_complete()
            && matches!(self.cache.get::<Record<K::Record>>(&cache_key).await, Some(Some(ref hit)) if !hit.complete)
        {
            // A list item lacks fields this key needs. Forgetting it lets every concurrent
            // caller of the key share the one detail read below (single flight).
            self.cache.invalidate(&cache_key).await;
        }
        let missed = AtomicBool::new(false);
        let fetch = || async {
            missed.store(true, Ordering::Relaxed);
            let fetched = self.fetch_shared(key, &cache_key, !bypass).await?;
            Ok(fetched.map(Record::complete))
        };
        if bypass {
            let refreshed = Box::pin(self.refresh(cache_key.clone(), K::KIND, fetch()));
            return self.memo.get_or_fetch(cache_key.clone(), refreshed).await;
        }
        let answer = self
            .cache
            .get_or_fetch(cache_key.clone(), K::KIND, self.takes_stale(), fetch())
            .await;
        self.record_lookup(K::RESOURCE, !missed.load(Ordering::Relaxed));
        let loaded = match answer {
            Ok(answer) => Ok(self.noted(answer, K::RESOURCE)),
            Err(error) => self.stale_from_redis::<K>(&cache_key, error).await,
        };
        match loaded {
            // A list page primed the partial item again in the meantime: read the detail.
            Ok(Some(record)) if key.needs_complete() && !record.complete => {
                self.refresh(cache_key.clone(), K::KIND, fetch()).await
            }
            loaded => loaded,
        }
    }

    /// Fetches past the cache and stores the answer (a success or a 404).
    async fn refresh<T: Serialize + Send + Sync + 'static>(
        &self,
        key: CacheKey,
        kind: EntryKind,
        fetch: impl Future<Output = Result<Option<Arc<T>>, BlockError>>,
    ) -> Result<Option<Arc<T>>, BlockError> {
        let fresh = fetch.await;
        if let Ok(value) = &fresh {
            self.cache.insert(key, kind, value.clone()).await;
        }
        fresh
    }

    /// Loads through the cache a value that is not a [`RecordKey`] (a whole list read into a map).
    pub(crate) async fn cached<T, F, Fut>(
        &self,
        resource: Resource,
        id: &str,
        kind: EntryKind,
        fetch: F,
    ) -> Result<Option<Arc<T>>, BlockError>
    where
        T: Serialize + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Arc<T>>, BlockError>>,
    {
        let key = self.cache_key(resource, id);
        if self.bypasses_cache() {
            let refreshed = Box::pin(self.refresh(key.clone(), kind, fetch()));
            return self.memo.get_or_fetch(key, refreshed).await;
        }
        // No stale copy here: what this builds is cached as a current answer by its caller.
        let answer = self.cache.get_or_fetch(key, kind, false, fetch()).await?;
        Ok(answer.value)
    }

    /// What the shared cache (or, past it, this operation) already holds under
    /// `(resource, id)`, without fetching it.
    pub(crate) async fn peek<T: Send + Sync + 'static>(&self, resource: Resource, id: &str) -> Option<Arc<T>> {
        let key = self.cache_key(resource, id);
        if self.bypasses_cache() {
            return self.memo.peek(&key);
        }
        self.cache.get::<T>(&key).await.flatten()
    }

    /// Primes the shared cache with records that arrived in a list (in the background when
    /// the loader has a priming tracker, see [`BlockLoader::with_priming`]).
    pub async fn prime<K: RecordKey>(&self, records: impl IntoIterator<Item = (K, Arc<Record<K::Record>>)>) {
        let entries: Vec<_> = records
            .into_iter()
            .map(|(key, record)| (self.cache_key(K::RESOURCE, &key.cache_id()), record))
            .collect();
        let cache = self.cache.clone();
        let insert_all = async move {
            for (cache_key, record) in entries {
                cache.insert(cache_key, K::KIND, Some(record)).await;
            }
        };
        match &self.priming {
            Some(priming) => drop(priming.spawn(insert_all)),
            None => insert_all.await,
        }
    }
}

/// A key type the loader can fetch: which cached resource it is, and how one is fetched.
pub trait RecordKey: Clone + Eq + std::hash::Hash + Send + Sync + 'static {
    /// The wire record loaded for the key.
    type Record: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The cached resource.
    const RESOURCE: Resource;
    /// Detail record or list page (decides the TTL).
    const KIND: EntryKind = EntryKind::Detail;

    /// The id part of the cache key.
    fn cache_id(&self) -> String;

    /// Whether a partial record (from a list) is not good enough for this key.
    fn needs_complete(&self) -> bool {
        false
    }

    /// Fetches the record from its block; `Ok(None)` for a 404.
    fn fetch(&self, loader: &BlockLoader) -> impl Future<Output = Result<Option<Self::Record>, BlockError>> + Send;
}

impl<K: RecordKey> Loader<K> for BlockLoader {
    type Value = Loaded<K::Record>;
    type Error = Infallible;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, Self::Value>, Self::Error> {
        if let Some(metrics) = &self.metrics {
            metrics.loader_batch(K::RESOURCE.label(), keys.len());
        }
        if let Some(trace) = &self.trace {
            trace.loader_batch(K::RESOURCE.label(), keys.len());
        }
        let loads = keys.iter().map(|key| async move {
            // A panic while loading one key becomes that key's error: the DataLoader would
            // otherwise drop every waiting caller's channel and panic them all.
            let outcome = AssertUnwindSafe(self.load_within_deadline(key))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!(resource = ?K::RESOURCE, "loader panicked");
                    Err(BlockError::Internal {
                        block: K::RESOURCE.block(),
                    })
                });
            (key.clone(), outcome)
        });
        Ok(futures::future::join_all(loads).await.into_iter().collect())
    }
}

/// Loads one key through the request's DataLoader, flattening its infallible layer.
pub async fn load_one<K: RecordKey>(loaders: &Loaders, key: K) -> Loaded<K::Record>
where
    BlockLoader: Loader<K, Value = Loaded<K::Record>, Error = Infallible>,
{
    if let Some(hit) = loaders.loader().cache_hit(&key).await {
        return Ok(hit);
    }
    match loaders.load_one(key).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => Ok(None),
        Err(never) => match never {},
    }
}

/// Feeds list items into the request's DataLoader, so later reads of the same ids in this
/// query cost nothing even when the shared cache is bypassed or has let them go.
pub async fn remember<K: RecordKey>(loaders: &Loaders, records: Vec<(K, Arc<Record<K::Record>>)>)
where
    BlockLoader: Loader<K, Value = Loaded<K::Record>, Error = Infallible>,
{
    loaders
        .feed_many(records.into_iter().map(|(key, record)| (key, Ok(Some(record)))))
        .await;
}
