//! The Redis tier (optional, `REDIS_URL`): Redis behind the memory tier as a second level
//! for detail records, and an invalidation channel between replicas.
//!
//! - **Second level.** A detail record missing from moka is looked up in Redis before the
//!   block is asked; what the block answers is stored in Redis with the same TTLs.
//! - **Generations fence stale writes.** Every record has a generation counter in Redis
//!   (and every resource one more); an invalidation increments it. A stored value carries
//!   the generations it was read under and counts only while they are current; a value is
//!   stored only if the record's generation did not move since the load began (a
//!   resource-wide move is caught when the value is read). So a load that started before a
//!   write can never put its old answer into Redis after the write.
//! - **Invalidation before the answer.** A write evicts locally (synchronously), then
//!   increments the generations and, once they are, publishes the eviction, then waits
//!   (bounded) until every subscribed replica confirmed it evicted. [`settle_invalidations`]
//!   wraps each operation so its answer leaves only after that.
//! - **A load overlapping an invalidation is done again** (a bounded number of times): an
//!   in-process fence counter per record slot tells that an eviction arrived meanwhile.
//! - **While the channel is down**, invalidations can be missed: the replica empties its
//!   moka cache when the subscription drops and again when it is back, and loads bypass the
//!   moka cache meanwhile.
//! - **Stale-if-error.** Values are kept past their TTL for the stale window
//!   (`CACHE_STALE_IF_ERROR_MS`) with the time they were read; past the TTL they are no
//!   longer current, but [`RedisTier::stale_copy`] hands one, still under the current
//!   generations, to a load whose block failed.
//!
//! Keys (`<prefix>` is `REDIS_KEY_PREFIX`; ids are SHA-256 hashed so no id of a person
//! appears in a key): `<prefix>:v<version>:val:<tenant>:{<resource>:<id hash>}`,
//! `<prefix>:gen:{<resource>:<id hash>}`, `<prefix>:gen:{<resource>}`; channels
//! `{<prefix>}:invalidations` and `{<prefix>}:acks`. The hash tags (`{...}`) keep what one
//! command touches in one cluster slot: a record's value and generation (the store script),
//! and the two channels (one shard for sharded pub/sub). The resource generation lives in
//! its own slot: it is read beside the record's keys, and a stored value carries the
//! generations it was read under, so a value stored while a resource-wide eviction ran is
//! never current. A single server, TLS (`rediss://`) and a Redis Cluster
//! (`REDIS_CLUSTER`) are served the same way; see `redis_connection.rs`.

use std::{
    cell::RefCell,
    collections::HashMap,
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use redis::{AsyncCommands, Script};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

use super::{
    entries::{CacheKey, CacheSettings, Resource, Staleness},
    memory::MemoryTier,
    redis_connection::{Commands, Delivery, Endpoints},
};
use crate::{
    blocks::BlockError,
    explain::{CacheTier, LookupOutcome, OperationTrace},
    metrics::{Metrics, PublishOutcome, SharedLookup},
};

/// How often a load overlapped by invalidations is tried before its answer is used anyway.
const MAX_LOAD_ATTEMPTS: usize = 3;
/// How long Redis may take to answer one command before the tier treats it as down.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failed command, the second level is skipped this long (reads go to the blocks).
const BACK_OFF_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Longest pause between two attempts to subscribe again.
const MAX_RESUBSCRIBE_DELAY: Duration = Duration::from_secs(5);
/// Generation counters outlive every value stored under them by this much.
const GENERATION_MARGIN: Duration = Duration::from_secs(600);
/// Record slots of the in-process fence (a collision only costs a needless refetch).
const FENCE_SLOTS: usize = 1024;
/// Resource slots of the in-process fence (more than there are resources).
const RESOURCE_SLOTS: usize = 64;

/// Stores a value only if the record's generation it was loaded under is still current (the
/// value and the generation share a slot; the resource generation is carried in the value).
const STORE_IF_CURRENT: &str = r"
local record = tonumber(redis.call('GET', KEYS[2]) or '0')
if record == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Why the shared tier could not start.
#[derive(Debug, thiserror::Error)]
pub enum RedisTierError {
    /// `REDIS_URL` is not a Redis URL (the value is not repeated: it may hold a password).
    #[error("REDIS_URL is not a valid redis:// or rediss:// URL (a comma-separated list of them with REDIS_CLUSTER)")]
    Url,
    /// The TLS set-up failed: `REDIS_CA_FILE` holds no usable certificate.
    #[error("REDIS_CA_FILE holds no usable PEM certificate for verifying Redis")]
    Tls,
    /// The tier needs a Tokio runtime to run its subscriber.
    #[error("the shared cache tier must be started inside a Tokio runtime")]
    NoRuntime,
    /// Redis could not be reached in time.
    #[error("could not subscribe to the Redis invalidation channel within {0:?}")]
    Unreachable(Duration),
}

/// Where Redis is and how the tier behaves.
#[derive(Clone)]
pub struct RedisTierSettings {
    /// `REDIS_URL` (may hold a password: never printed).
    pub url: SecretString,
    /// Prefix of every key and channel (`REDIS_KEY_PREFIX`), so deployments can share a Redis.
    pub key_prefix: String,
    /// How long a write waits for the other replicas to confirm an eviction
    /// (`REDIS_INVALIDATION_TIMEOUT_MS`).
    pub invalidation_timeout: Duration,
    /// PEM of the CA that signs the server's certificate for `rediss://` (`REDIS_CA_FILE`);
    /// `None`: the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Redis Cluster (`REDIS_CLUSTER`): `url` lists seed nodes, comma-separated.
    pub cluster: bool,
}

impl RedisTierSettings {
    /// Default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "blocks-gateway";
    /// Default wait for confirmations.
    pub const DEFAULT_INVALIDATION_TIMEOUT: Duration = Duration::from_secs(2);

    /// Settings for `url` with the defaults.
    pub fn new(url: SecretString) -> Self {
        Self {
            url,
            key_prefix: Self::DEFAULT_PREFIX.to_owned(),
            invalidation_timeout: Self::DEFAULT_INVALIDATION_TIMEOUT,
            ca_pem: None,
            cluster: false,
        }
    }
}

impl std::fmt::Debug for RedisTierSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTierSettings")
            .field("url", &"[REDACTED]")
            .field("key_prefix", &self.key_prefix)
            .field("invalidation_timeout", &self.invalidation_timeout)
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|pem| format!("{} bytes", pem.len())),
            )
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// The Redis tier of one gateway. Cheap to clone; the subscriber stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Commands,
    endpoints: Endpoints,
    keys: Keys,
    ttls: CacheSettings,
    invalidation_timeout: Duration,
    replica: Arc<str>,
    sequence: AtomicU64,
    fence: Arc<Fence>,
    acks: Arc<AckBook>,
    health: Health,
    metrics: Metrics,
    subscribed: watch::Receiver<bool>,
    store_script: Script,
    subscriber: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

/// One eviction as it travels between replicas.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Eviction {
    origin: String,
    sequence: u64,
    resource: Resource,
    id: String,
    lists: Vec<Resource>,
}

/// What a lookup in Redis found.
enum Lookup {
    /// A value stored under the current generations and within its TTL (a refresh must
    /// match the generations).
    Current(Vec<u8>, Generations),
    /// Nothing current; a store must match these generations. A value past its TTL under
    /// them, when there is one, may stand in for a failing block.
    Missing(Generations, Option<Stored>),
    /// Redis did not answer.
    Unavailable,
}

/// A value as stored: the generations it was read under, when, until when it is current,
/// and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    generations: Generations,
    fetched_at_ms: u64,
    fresh_until_ms: u64,
    body: Vec<u8>,
}

/// The record and resource generations a load started under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generations {
    record: i64,
    resource: i64,
}

impl RedisTier {
    /// Connects lazily to `settings.url` and starts the subscriber; `local` is the moka
    /// cache the subscriber evicts from and whose TTLs the second level uses (the caller
    /// attaches the tier to it afterwards).
    pub(super) fn start(
        settings: &RedisTierSettings,
        local: MemoryTier,
        metrics: Metrics,
    ) -> Result<Self, RedisTierError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RedisTierError::NoRuntime)?;
        let endpoints = Endpoints::new(
            settings.url.expose_secret().trim(),
            settings.cluster,
            settings.ca_pem.as_deref(),
        )?;
        let connection = endpoints.commands(COMMAND_TIMEOUT)?;
        let keys = Keys::new(&settings.key_prefix);
        let ttls = local.settings().clone();
        let replica: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string());
        let fence = Arc::new(Fence::default());
        let acks = Arc::new(AckBook::default());
        let (subscribed_tx, subscribed) = watch::channel(false);
        let listener = Listener {
            endpoints: endpoints.clone(),
            connection: connection.clone(),
            keys: keys.clone(),
            replica: replica.clone(),
            fence: fence.clone(),
            acks: acks.clone(),
            local,
            metrics: metrics.clone(),
        };
        let subscriber = runtime.spawn(listener.run(subscribed_tx));
        Ok(Self {
            inner: Arc::new(Inner {
                connection,
                endpoints,
                keys,
                ttls,
                invalidation_timeout: settings.invalidation_timeout,
                replica,
                sequence: AtomicU64::new(0),
                fence,
                acks,
                health: Health::default(),
                metrics,
                subscribed,
                store_script: Script::new(STORE_IF_CURRENT),
                subscriber,
            }),
        })
    }

    /// Whether the invalidation channel is subscribed now.
    pub fn is_subscribed(&self) -> bool {
        *self.inner.subscribed.borrow()
    }

    /// Waits until the invalidation channel is subscribed, at most `timeout`.
    pub async fn wait_until_subscribed(&self, timeout: Duration) -> Result<(), RedisTierError> {
        let mut subscribed = self.inner.subscribed.clone();
        tokio::time::timeout(timeout, subscribed.wait_for(|subscribed| *subscribed))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|_| ())
            .ok_or(RedisTierError::Unreachable(timeout))
    }

    /// Whether Redis answers a `PING` within the command timeout (readiness). On a cluster,
    /// every primary must answer.
    pub async fn ping(&self) -> bool {
        let mut connection = self.inner.connection.clone();
        let ping = redis::cmd("PING");
        let answered = tokio::time::timeout(COMMAND_TIMEOUT, ping.query_async::<redis::Value>(&mut connection)).await;
        matches!(answered, Ok(Ok(_)))
    }

    /// Loads one detail record through Redis: a current stored value answers; otherwise
    /// `fetch` asks the block and its answer is stored. With `use_stored` false (a
    /// `no-cache` read) a stored value is not used but the fresh answer is stored. A load
    /// that an invalidation overlapped is fetched again. Lookups are counted in `trace`
    /// when the operation is explained.
    pub async fn read_through<T, F, Fut>(
        &self,
        key: &CacheKey,
        use_stored: bool,
        trace: Option<&OperationTrace>,
        fetch: F,
    ) -> Result<Option<T>, BlockError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, BlockError>>,
    {
        let slot = self.inner.keys.slot(key);
        let mut attempt = 1;
        loop {
            let fence = self.inner.fence.read(key.resource, &key.id);
            let lookup = self.lookup(&slot).await;
            if let Some(trace) = trace {
                trace.cache_lookup(CacheTier::Redis, lookup.outcome());
            }
            let generations = match lookup {
                Lookup::Current(bytes, generations) if use_stored => {
                    match serde_json::from_slice::<Option<T>>(&bytes) {
                        Ok(value) if self.inner.fence.read(key.resource, &key.id) == fence => return Ok(value),
                        // Read before an eviction arrived here, or written by another version.
                        _ => Some(generations),
                    }
                }
                Lookup::Current(_, generations) | Lookup::Missing(generations, _) => Some(generations),
                Lookup::Unavailable => None,
            };
            let fetched = fetch().await?;
            let stored = match generations {
                Some(generations) => self.store(&slot, generations, &fetched).await,
                None => true,
            };
            let overlapped = !stored || self.inner.fence.read(key.resource, &key.id) != fence;
            if !overlapped || attempt == MAX_LOAD_ATTEMPTS {
                return Ok(fetched);
            }
            self.inner.metrics.shared_refetch();
            attempt += 1;
        }
    }

    /// A copy of `key` past its TTL but within the stale window, stored under the current
    /// generations (no write has evicted it since), to stand in for a block that failed
    /// with `cause`. `None` when there is none, or Redis does not answer.
    pub async fn stale_copy<T: DeserializeOwned>(&self, key: &CacheKey, cause: &BlockError) -> Option<(T, Staleness)> {
        let window = self.inner.ttls.stale_if_error;
        if window.is_zero() {
            return None;
        }
        let fence = self.inner.fence.read(key.resource, &key.id);
        let Lookup::Missing(_, Some(stored)) = self.lookup(&self.inner.keys.slot(key)).await else {
            return None;
        };
        let now = unix_ms();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        if now >= stored.fresh_until_ms.saturating_add(window_ms)
            || self.inner.fence.read(key.resource, &key.id) != fence
        {
            return None;
        }
        let value = serde_json::from_slice::<Option<T>>(&stored.body).ok()??;
        let staleness = Staleness {
            age: Duration::from_millis(now.saturating_sub(stored.fetched_at_ms)),
            expired_for: Duration::from_millis(now.saturating_sub(stored.fresh_until_ms)),
            cause: cause.clone(),
        };
        Some((value, staleness))
    }

    /// Told by the moka cache about a local invalidation: fences loads in flight here,
    /// then publishes the eviction to every replica in the background. The operation's
    /// [`settle_invalidations`] waits for that before its answer is sent.
    pub(super) fn invalidated(&self, resource: Resource, id: &str, lists: &[Resource]) {
        self.inner.fence.bump(resource, id, lists);
        let eviction = Eviction {
            origin: self.inner.replica.to_string(),
            sequence: self.inner.sequence.fetch_add(1, Ordering::Relaxed),
            resource,
            id: id.to_owned(),
            lists: lists.to_vec(),
        };
        let tier = self.clone();
        let publishing = tokio::spawn(async move { tier.publish(eviction).await });
        if PENDING
            .try_with(|pending| pending.borrow_mut().push(publishing))
            .is_err()
        {
            tracing::debug!("an invalidation outside an operation is published without waiting");
        }
    }

    /// Bumps the generations, then publishes the eviction, then waits (bounded) for every
    /// subscriber to confirm. The bumps come first and complete before the message leaves:
    /// a replica that evicts and reads Redis again must find the old value no longer
    /// current. (They are separate commands: on a cluster each key has its own slot.)
    async fn publish(&self, eviction: Eviction) {
        let inner = &self.inner;
        let Ok(message) = serde_json::to_string(&eviction) else {
            return;
        };
        let confirmed = inner.acks.open(eviction.sequence);
        let published = match self.bump_generations(&eviction).await {
            Ok(()) => {
                let mut connection = inner.connection.clone();
                inner
                    .endpoints
                    .publish(&inner.keys.invalidations, &message)
                    .query_async::<usize>(&mut connection)
                    .await
            }
            Err(error) => Err(error),
        };
        let receivers = match published {
            Ok(receivers) => receivers,
            Err(error) => {
                inner.acks.close(eviction.sequence);
                inner.health.failed();
                inner.metrics.invalidation_published(PublishOutcome::Failed);
                tracing::error!(%error, resource = ?eviction.resource, "could not publish an invalidation: other replicas may serve the old record until it expires");
                return;
            }
        };
        inner.acks.expect(eviction.sequence, receivers);
        let outcome = match tokio::time::timeout(inner.invalidation_timeout, confirmed).await {
            Ok(Ok(())) => PublishOutcome::Confirmed,
            _ => {
                tracing::warn!(
                    receivers,
                    timeout = ?inner.invalidation_timeout,
                    "not every replica confirmed an invalidation in time"
                );
                PublishOutcome::Unconfirmed
            }
        };
        inner.acks.close(eviction.sequence);
        inner.metrics.invalidation_published(outcome);
    }

    /// Increments the record's generation (kept a while past every value stored under it)
    /// and those of the evicted lists, concurrently.
    async fn bump_generations(&self, eviction: &Eviction) -> redis::RedisResult<()> {
        let inner = &self.inner;
        let mut bumps = Vec::new();
        if !eviction.id.is_empty() {
            let record = inner.keys.record_generation(eviction.resource, &eviction.id);
            let keep =
                inner.ttls.detail_ttl.max(inner.ttls.not_found_ttl) + inner.ttls.stale_if_error + GENERATION_MARGIN;
            let mut bump = redis::pipe();
            bump.atomic()
                .incr(&record, 1)
                .ignore()
                .pexpire(&record, i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
                .ignore();
            bumps.push(bump);
        }
        for list in &eviction.lists {
            let mut bump = redis::pipe();
            bump.incr(inner.keys.resource_generation(*list), 1).ignore();
            bumps.push(bump);
        }
        let sent = bumps.iter().map(|bump| {
            let mut connection = inner.connection.clone();
            async move { bump.query_async::<()>(&mut connection).await }
        });
        futures::future::try_join_all(sent).await.map(|_| ())
    }

    /// Reads the value with its record generation, and the resource generation (its own
    /// slot), concurrently.
    async fn lookup(&self, slot: &Slot) -> Lookup {
        let inner = &self.inner;
        if !inner.health.usable() {
            inner.metrics.shared_lookup(SharedLookup::Unavailable);
            return Lookup::Unavailable;
        }
        let (mut record_connection, mut resource_connection) = (inner.connection.clone(), inner.connection.clone());
        let read = futures::future::try_join(
            redis::pipe()
                .get(&slot.value)
                .get(&slot.record)
                .query_async::<(Option<Vec<u8>>, Option<i64>)>(&mut record_connection),
            resource_connection.get::<_, Option<i64>>(&slot.resource),
        )
        .await;
        let ((value, record), resource) = match read {
            Ok(read) => read,
            Err(error) => {
                inner.health.failed();
                inner.metrics.shared_lookup(SharedLookup::Unavailable);
                tracing::warn!(%error, "Redis lookup failed; reading from the block");
                return Lookup::Unavailable;
            }
        };
        let generations = Generations {
            record: record.unwrap_or(0),
            resource: resource.unwrap_or(0),
        };
        let stored = value
            .as_deref()
            .and_then(parse_stored)
            .filter(|stored| stored.generations == generations);
        match stored {
            Some(stored) if unix_ms() < stored.fresh_until_ms => {
                inner.metrics.shared_lookup(SharedLookup::Hit);
                Lookup::Current(stored.body, generations)
            }
            stale => {
                inner.metrics.shared_lookup(SharedLookup::Miss);
                Lookup::Missing(generations, stale)
            }
        }
    }

    /// Stores `value` if the record's generation did not move; false when it did. A value
    /// is kept for its TTL plus the stale window (a 404 for its TTL only).
    async fn store<T: Serialize>(&self, slot: &Slot, generations: Generations, value: &Option<T>) -> bool {
        let inner = &self.inner;
        let (ttl, window) = if value.is_some() {
            (inner.ttls.detail_ttl, inner.ttls.stale_if_error)
        } else {
            (inner.ttls.not_found_ttl, Duration::ZERO)
        };
        let Ok(body) = serde_json::to_vec(value) else {
            return true;
        };
        if ttl.is_zero() || !inner.health.usable() {
            return true;
        }
        let now = unix_ms();
        let stored = Stored {
            generations,
            fetched_at_ms: now,
            fresh_until_ms: now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            body,
        };
        let mut connection = inner.connection.clone();
        let result = inner
            .store_script
            .key(&slot.value)
            .key(&slot.record)
            .arg(generations.record)
            .arg(stored.encode())
            .arg(u64::try_from((ttl + window).as_millis()).unwrap_or(u64::MAX))
            .invoke_async::<i64>(&mut connection)
            .await;
        match result {
            Ok(written) => written == 1,
            Err(error) => {
                inner.health.failed();
                tracing::warn!(%error, "Redis store failed");
                true
            }
        }
    }
}

impl Lookup {
    /// The lookup as explain counts it.
    fn outcome(&self) -> LookupOutcome {
        match self {
            Self::Current(..) => LookupOutcome::Hit,
            Self::Missing(..) => LookupOutcome::Miss,
            Self::Unavailable => LookupOutcome::Unavailable,
        }
    }
}

impl Stored {
    /// `<record>:<resource>:<read at ms>:<current until ms>:<JSON>` (Unix milliseconds).
    fn encode(&self) -> Vec<u8> {
        let mut bytes = format!(
            "{}:{}:{}:{}:",
            self.generations.record, self.generations.resource, self.fetched_at_ms, self.fresh_until_ms
        )
        .into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A stored value read back; `None` for anything else (another version's format).
fn parse_stored(stored: &[u8]) -> Option<Stored> {
    let mut parts = stored.splitn(5, |byte| *byte == b':');
    let mut number = || -> Option<i64> { std::str::from_utf8(parts.next()?).ok()?.parse().ok() };
    let record = number()?;
    let resource = number()?;
    let fetched_at_ms = u64::try_from(number()?).ok()?;
    let fresh_until_ms = u64::try_from(number()?).ok()?;
    let body = parts.next()?.to_vec();
    Some(Stored {
        generations: Generations { record, resource },
        fetched_at_ms,
        fresh_until_ms,
        body,
    })
}

/// Now, in Unix milliseconds (stored values carry wall-clock times: replicas share them).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

tokio::task_local! {
    /// Invalidations published during the current operation.
    static PENDING: RefCell<Vec<JoinHandle<()>>>;
}

/// Runs one operation and then waits until every invalidation it made reached the other
/// replicas (each bounded by the invalidation timeout): the answer is sent only after.
pub async fn settle_invalidations<F: Future>(operation: F) -> F::Output {
    let (output, pending) = PENDING
        .scope(RefCell::new(Vec::new()), async {
            let output = operation.await;
            let pending = PENDING.with(|pending| pending.take());
            (output, pending)
        })
        .await;
    for publishing in pending {
        if let Err(error) = publishing.await {
            tracing::error!(%error, "an invalidation task failed");
        }
    }
    output
}

/// The names of the keys and channels.
#[derive(Clone)]
struct Keys {
    prefix: Arc<str>,
    invalidations: String,
    acks: String,
}

/// The three keys of one cached record.
struct Slot {
    value: String,
    record: String,
    resource: String,
}

impl Keys {
    /// The prefix must hold no `{` or `}` (the configuration checks): the hash tags below
    /// must be the first braces of each key.
    fn new(prefix: &str) -> Self {
        Self {
            prefix: Arc::from(prefix),
            invalidations: format!("{{{prefix}}}:invalidations"),
            acks: format!("{{{prefix}}}:acks"),
        }
    }

    fn slot(&self, key: &CacheKey) -> Slot {
        Slot {
            value: format!(
                "{}:v{}:val:{:x}:{{{:?}:{}}}",
                self.prefix,
                env!("CARGO_PKG_VERSION"),
                key.tenant,
                key.resource,
                id_hash(&key.id)
            ),
            record: self.record_generation(key.resource, &key.id),
            resource: self.resource_generation(key.resource),
        }
    }

    fn record_generation(&self, resource: Resource, id: &str) -> String {
        format!("{}:gen:{{{resource:?}:{}}}", self.prefix, id_hash(id))
    }

    fn resource_generation(&self, resource: Resource) -> String {
        format!("{}:gen:{{{resource:?}}}", self.prefix)
    }
}

/// A record id as it appears in keys: hashed, so no email or id of a person is readable.
fn id_hash(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// In-process counters bumped by every eviction, read before and after a load to tell
/// whether an eviction overlapped it.
struct Fence {
    records: [AtomicU64; FENCE_SLOTS],
    resources: [AtomicU64; RESOURCE_SLOTS],
}

impl Default for Fence {
    fn default() -> Self {
        Self {
            records: [const { AtomicU64::new(0) }; FENCE_SLOTS],
            resources: [const { AtomicU64::new(0) }; RESOURCE_SLOTS],
        }
    }
}

impl Fence {
    fn read(&self, resource: Resource, id: &str) -> (u64, u64) {
        (
            self.records[record_slot(resource, id)].load(Ordering::Acquire),
            self.resources[resource as usize % RESOURCE_SLOTS].load(Ordering::Acquire),
        )
    }

    fn bump(&self, resource: Resource, id: &str, lists: &[Resource]) {
        self.records[record_slot(resource, id)].fetch_add(1, Ordering::AcqRel);
        for list in lists {
            self.resources[*list as usize % RESOURCE_SLOTS].fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn record_slot(resource: Resource, id: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    (resource, id).hash(&mut hasher);
    (hasher.finish() % FENCE_SLOTS as u64) as usize
}

/// Confirmations awaited for this replica's invalidations, by sequence number.
#[derive(Default)]
struct AckBook {
    waiting: Mutex<HashMap<u64, Waiter>>,
}

struct Waiter {
    received: usize,
    expected: Option<usize>,
    done: Option<oneshot::Sender<()>>,
}

impl AckBook {
    /// Starts waiting before publishing, so that no fast confirmation is missed.
    fn open(&self, sequence: u64) -> oneshot::Receiver<()> {
        let (done, confirmed) = oneshot::channel();
        self.with(|waiting| {
            waiting.insert(
                sequence,
                Waiter {
                    received: 0,
                    expected: None,
                    done: Some(done),
                },
            );
        });
        confirmed
    }

    /// How many confirmations are due (Redis said how many subscribers got the message).
    fn expect(&self, sequence: u64, receivers: usize) {
        self.with(|waiting| {
            if let Some(waiter) = waiting.get_mut(&sequence) {
                waiter.expected = Some(receivers);
                waiter.settle();
            }
        });
    }

    fn confirm(&self, sequence: u64) {
        self.with(|waiting| {
            if let Some(waiter) = waiting.get_mut(&sequence) {
                waiter.received += 1;
                waiter.settle();
            }
        });
    }

    fn close(&self, sequence: u64) {
        self.with(|waiting| {
            waiting.remove(&sequence);
        });
    }

    fn with(&self, change: impl FnOnce(&mut HashMap<u64, Waiter>)) {
        // A poisoned lock only means another thread panicked mid-update of counters.
        let mut waiting = self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut waiting);
    }
}

impl Waiter {
    fn settle(&mut self) {
        if self.expected.is_some_and(|expected| self.received >= expected)
            && let Some(done) = self.done.take()
        {
            let _ = done.send(());
        }
    }
}

/// Whether Redis failed recently (then the second level is skipped for a moment).
struct Health {
    started: Instant,
    failed_at_ms: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            failed_at_ms: AtomicU64::new(0),
        }
    }
}

impl Health {
    fn now_ms(&self) -> u64 {
        // +1 so that 0 means "never failed".
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    fn failed(&self) {
        self.failed_at_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn usable(&self) -> bool {
        let failed_at = self.failed_at_ms.load(Ordering::Relaxed);
        failed_at == 0 || self.now_ms().saturating_sub(failed_at) >= BACK_OFF_AFTER_FAILURE.as_millis() as u64
    }
}

/// The subscriber: applies other replicas' evictions and confirms them; collects the
/// confirmations of this replica's own.
struct Listener {
    endpoints: Endpoints,
    connection: Commands,
    keys: Keys,
    replica: Arc<str>,
    fence: Arc<Fence>,
    acks: Arc<AckBook>,
    local: MemoryTier,
    metrics: Metrics,
}

impl Listener {
    /// Subscribes, and subscribes again whenever the connection drops (until aborted).
    async fn run(self, subscribed: watch::Sender<bool>) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.subscribe().await {
                Ok(mut messages) => {
                    // Invalidations may have been missed while not subscribed.
                    self.local.evict_all();
                    subscribed.send_replace(true);
                    delay = Duration::from_millis(100);
                    while let Some(delivery) = messages.next().await {
                        self.handle(delivery);
                    }
                    subscribed.send_replace(false);
                    self.local.evict_all();
                    tracing::warn!(
                        "lost the Redis invalidation channel: the local cache was emptied and is bypassed until it is back"
                    );
                }
                Err(error) => tracing::warn!(%error, "cannot subscribe to the Redis invalidation channel"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RESUBSCRIBE_DELAY);
        }
    }

    async fn subscribe(&self) -> redis::RedisResult<futures::stream::BoxStream<'static, Delivery>> {
        self.endpoints
            .subscribe([&self.keys.invalidations, &self.keys.acks])
            .await
    }

    fn handle(&self, (channel, payload): Delivery) {
        if channel == self.keys.acks {
            if let Some(sequence) = payload
                .strip_prefix(&*self.replica)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|sequence| sequence.parse().ok())
            {
                self.acks.confirm(sequence);
            }
        } else if channel == self.keys.invalidations {
            match serde_json::from_str::<Eviction>(&payload) {
                Ok(eviction) => self.apply(eviction),
                Err(error) => tracing::warn!(%error, "ignored a malformed invalidation message"),
            }
        }
    }

    /// Evicts (unless this replica sent it: it evicted before publishing), then confirms.
    fn apply(&self, eviction: Eviction) {
        if *eviction.origin != *self.replica {
            self.fence.bump(eviction.resource, &eviction.id, &eviction.lists);
            self.local
                .evict_records(&[eviction.resource], &eviction.id, &eviction.lists);
            self.metrics.invalidation_received();
        }
        let mut connection = self.connection.clone();
        let confirmation = self
            .endpoints
            .publish(&self.keys.acks, &format!("{}:{}", eviction.origin, eviction.sequence));
        tokio::spawn(async move {
            if let Err(error) = confirmation.query_async::<()>(&mut connection).await {
                tracing::warn!(%error, "could not confirm an invalidation");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_read_back_with_their_generations_and_times() {
        let stored = Stored {
            generations: Generations { record: 3, resource: 1 },
            fetched_at_ms: 1_000,
            fresh_until_ms: 31_000,
            body: br#"{"a":"b:c"}"#.to_vec(),
        };
        assert_eq!(parse_stored(&stored.encode()), Some(stored));
        assert_eq!(parse_stored(b"3:1:{\"a\":1}"), None, "another version's format");
        assert_eq!(parse_stored(b"garbage"), None);
    }

    #[test]
    fn keys_hide_ids_and_share_generations_across_tenants() {
        let keys = Keys::new("gw");
        let key = |tenant| CacheKey {
            tenant,
            resource: Resource::B2bUserByEmail,
            id: Arc::from("ada@example.com"),
        };
        let (one, two) = (keys.slot(&key(0)), keys.slot(&key(7)));
        assert!(!one.value.contains("ada") && !one.record.contains("ada"));
        assert_ne!(one.value, two.value);
        assert_eq!(one.record, two.record);
        assert_eq!(one.resource, "gw:gen:{B2bUserByEmail}");
        // What one command touches shares a hash tag (one cluster slot).
        assert_eq!(hash_tag(&one.value), hash_tag(&one.record));
        assert_eq!(hash_tag(&two.value), hash_tag(&one.record));
        assert_eq!(hash_tag(&keys.invalidations), hash_tag(&keys.acks));
    }

    /// The part of a key Redis Cluster hashes: the first `{...}` with something inside.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("a tag");
        let close = key[open..].find('}').expect("closed") + open;
        &key[open + 1..close]
    }

    #[test]
    fn the_fence_moves_for_the_record_and_for_its_resource() {
        let fence = Fence::default();
        let before = fence.read(Resource::CrmPerson, "p1");
        fence.bump(Resource::CrmPerson, "p2", &[Resource::CrmPersonsPage]);
        assert_eq!(fence.read(Resource::CrmPerson, "p1").1, before.1);
        fence.bump(Resource::CrmPerson, "p1", &[]);
        assert_ne!(fence.read(Resource::CrmPerson, "p1"), before);
        let before = fence.read(Resource::CrmPerson, "p3");
        fence.bump(Resource::CrmPerson, "", &[Resource::CrmPerson]);
        assert_ne!(fence.read(Resource::CrmPerson, "p3"), before);
    }

    #[test]
    fn a_waiter_completes_with_every_expected_confirmation() {
        let book = AckBook::default();
        let mut confirmed = book.open(1);
        book.confirm(1);
        assert!(confirmed.try_recv().is_err(), "expectation not known yet");
        book.expect(1, 2);
        assert!(confirmed.try_recv().is_err(), "one of two");
        book.confirm(1);
        assert!(confirmed.try_recv().is_ok());
    }
}
