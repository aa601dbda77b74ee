//! Two gateway replicas sharing Redis and the sandbox blocks: a write through one is never
//! read stale through the other. Needs `REDIS_URL` (`.ci/run` starts a redis-server); without
//! it these tests print SKIPPED, and fail when `CI` is set.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use blocks_gateway::{blocks::http::shared_client, cache::RedisTierSettings, config::Settings, gateway::Gateway};
use blocks_sandbox::Sandbox;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::helpers::{sandbox_settings, serve_on_loopback, start_sandbox};

/// The variable `name`, or `None` after a loud SKIPPED line. With `CI` set a missing
/// variable fails: CI must run the server it names (see `.ci/run`).
pub(crate) fn required_env(name: &str, test: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: {name} is unset but CI is set: CI must run that server (see .ci/run)")
        }
        _ => {
            eprintln!("SKIPPED: {test} ({name} unset)");
            None
        }
    }
}

/// `REDIS_URL`, or `None` after a loud SKIPPED line. With `CI` set a missing Redis fails.
fn redis_url(test: &str) -> Option<String> {
    required_env("REDIS_URL", test)
}

/// One gateway serving on a loopback port.
pub(crate) struct Replica {
    address: SocketAddr,
    pub(crate) gateway: Gateway,
    _stop: oneshot::Sender<()>,
}

/// Two replicas in front of one sandbox.
pub(crate) struct Replicas {
    pub(crate) sandbox: Sandbox,
    pub(crate) a: Replica,
    pub(crate) b: Replica,
    http: reqwest::Client,
}

/// The Redis tier at `url`, under a key prefix of this test alone.
pub(crate) fn shared_tier(url: &str) -> RedisTierSettings {
    let mut shared = RedisTierSettings::new(SecretString::from(url.to_owned()));
    shared.key_prefix = format!("test-{}", uuid::Uuid::new_v4());
    shared
}

/// Settings pointing at `sandbox`, with the Redis tier under a prefix of this test alone.
fn settings(sandbox: &Sandbox, redis_url: &str) -> Settings {
    let mut settings = sandbox_settings(sandbox);
    settings.gateway.redis = Some(shared_tier(redis_url));
    settings
}

async fn replica(settings: &Settings) -> Replica {
    let gateway = Gateway::new(&settings.gateway).expect("gateway builds");
    gateway
        .cache()
        .redis_tier()
        .expect("the Redis tier is on")
        .wait_until_subscribed(Duration::from_secs(10))
        .await
        .expect("subscribed to the invalidation channel");
    let (address, stop) = serve_on_loopback(gateway.clone(), &settings.server).await;
    Replica {
        address,
        gateway,
        _stop: stop,
    }
}

async fn spawn_replicas(redis_url: &str) -> Replicas {
    spawn_replicas_with(shared_tier(redis_url), |_| {}).await
}

/// Two replicas sharing the Redis tier `shared`, their settings changed by `tweak`.
pub(crate) async fn spawn_replicas_with(shared: RedisTierSettings, tweak: impl FnOnce(&mut Settings)) -> Replicas {
    let sandbox = start_sandbox().await;
    let mut settings = sandbox_settings(&sandbox);
    settings.gateway.redis = Some(shared);
    tweak(&mut settings);
    let a = replica(&settings).await;
    let b = replica(&settings).await;
    let http = shared_client(Duration::from_secs(5)).expect("client");
    Replicas { sandbox, a, b, http }
}

impl Replicas {
    pub(crate) async fn query(&self, replica: &Replica, query: &str, variables: Value) -> Value {
        let response = self
            .http
            .post(format!("http://{}/graphql", replica.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("replica answers");
        response.json().await.expect("JSON answer")
    }

    pub(crate) async fn person_name(&self, replica: &Replica, id: &str) -> String {
        let body = self
            .query(
                replica,
                "query Name($id: ID!) { person(id: $id) { name } }",
                json!({ "id": id }),
            )
            .await;
        body["data"]["person"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("a name: {body}"))
            .to_owned()
    }

    async fn rename(&self, replica: &Replica, id: &str, name: &str) {
        let body = self
            .query(
                replica,
                "mutation Rename($input: UpdatePersonInput!) { updatePerson(input: $input) { person { name } userErrors { code message } } }",
                json!({ "input": { "id": id, "name": name } }),
            )
            .await;
        assert_eq!(body["data"]["updatePerson"]["person"]["name"], name, "{body}");
    }

    pub(crate) fn crm_requests(&self) -> usize {
        self.sandbox.crm.control.request_count()
    }

    pub(crate) async fn metrics(&self, replica: &Replica) -> String {
        replica.gateway.render_metrics().await.expect("metrics render")
    }
}

/// The value of one sample line of the exposition (`name{labels} value`).
pub(crate) fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_write_through_one_replica_is_never_read_stale_through_the_other() {
    let Some(url) = redis_url("a_write_through_one_replica_is_never_read_stale_through_the_other") else {
        return;
    };
    let replicas = spawn_replicas(&url).await;
    writes_through_one_replica_reach_the_other(&replicas).await;
}

/// Ten rounds of: both replicas cache a person, one renames it, the other is asked at once
/// and must answer the new name; then the confirmations are counted.
pub(crate) async fn writes_through_one_replica_reach_the_other(replicas: &Replicas) {
    let id = replicas.sandbox.demo.persons[3].id.to_string();
    for round in 0..10 {
        // Both replicas hold the current name in their own cache...
        let before = replicas.person_name(&replicas.b, &id).await;
        assert_eq!(replicas.person_name(&replicas.a, &id).await, before);
        // ...then one of them writes, and the other is asked at once.
        let (writer, reader) = if round % 2 == 0 {
            (&replicas.a, &replicas.b)
        } else {
            (&replicas.b, &replicas.a)
        };
        let renamed = format!("Renamed {round}");
        replicas.rename(writer, &id, &renamed).await;
        assert_eq!(replicas.person_name(reader, &id).await, renamed, "round {round}");
        assert_eq!(replicas.person_name(writer, &id).await, renamed, "round {round}");
    }
    let a = replicas.metrics(&replicas.a).await;
    assert!(
        sample(
            &a,
            "gateway_shared_cache_invalidations_published_total{outcome=\"confirmed\"}"
        ) >= 5.0
    );
    assert_eq!(
        sample(
            &a,
            "gateway_shared_cache_invalidations_published_total{outcome=\"unconfirmed\"}"
        ),
        0.0
    );
    assert!(
        sample(
            &replicas.metrics(&replicas.b).await,
            "gateway_shared_cache_invalidations_received_total"
        ) >= 5.0
    );
}

#[tokio::test]
async fn reads_under_load_never_go_back_before_a_confirmed_write() {
    let Some(url) = redis_url("reads_under_load_never_go_back_before_a_confirmed_write") else {
        return;
    };
    let replicas = Arc::new(spawn_replicas(&url).await);
    let id = replicas.sandbox.demo.persons[5].id.to_string();
    const WRITES: usize = 30;
    const MAX_READS_PER_READER: usize = 5_000;
    replicas.rename(&replicas.a, &id, "Version 0").await;
    // The newest version whose write was answered: no read started later may return older.
    let committed = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (replicas, id, committed, done) = (replicas.clone(), id.clone(), committed.clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !done.load(Ordering::Acquire) && reads < MAX_READS_PER_READER {
                    let floor = committed.load(Ordering::Acquire);
                    let name = replicas.person_name(&replicas.b, &id).await;
                    let version: usize = name
                        .strip_prefix("Version ")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("unexpected name {name}"));
                    assert!(
                        version >= floor,
                        "read version {version} after version {floor} was confirmed"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for version in 1..=WRITES {
        replicas.rename(&replicas.a, &id, &format!("Version {version}")).await;
        committed.store(version, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done.store(true, Ordering::Release);
    let mut total_reads = 0;
    for reader in readers {
        total_reads += reader.await.expect("reader finished without a stale read");
    }
    assert!(
        total_reads > WRITES,
        "the readers overlapped the writes ({total_reads} reads)"
    );
    assert_eq!(
        replicas.person_name(&replicas.b, &id).await,
        format!("Version {WRITES}")
    );
}

#[tokio::test]
async fn a_record_one_replica_loaded_is_served_to_the_other_from_redis() {
    let Some(url) = redis_url("a_record_one_replica_loaded_is_served_to_the_other_from_redis") else {
        return;
    };
    let replicas = spawn_replicas(&url).await;
    let id = replicas.sandbox.demo.persons[7].id.to_string();
    let name = replicas.person_name(&replicas.a, &id).await;
    let before = replicas.crm_requests();
    assert_eq!(replicas.person_name(&replicas.b, &id).await, name);
    assert_eq!(replicas.crm_requests(), before, "B found A's answer in Redis");
    let b = replicas.metrics(&replicas.b).await;
    assert_eq!(sample(&b, "gateway_shared_cache_lookups_total{result=\"hit\"}"), 1.0);
}

#[tokio::test]
async fn without_the_invalidation_channel_reads_bypass_the_local_cache() {
    // Nothing listens on port 1: the tier never subscribes. No Redis is needed.
    let sandbox = start_sandbox().await;
    let settings = settings(&sandbox, "redis://127.0.0.1:1");
    let gateway = Gateway::new(&settings.gateway).expect("starts without Redis");
    let tier = gateway.cache().redis_tier().expect("tier configured");
    assert!(tier.wait_until_subscribed(Duration::from_millis(200)).await.is_err());
    let id = sandbox.demo.persons[2].id.to_string();
    let read = || async {
        let request = async_graphql::Request::new("query Name($id: ID!) { person(id: $id) { name } }")
            .variables(async_graphql::Variables::from_json(json!({ "id": id })));
        gateway.execute(request, Default::default()).await
    };
    let first = read().await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let before = sandbox.crm.control.request_count();
    let second = read().await;
    assert_eq!(first.data, second.data);
    assert_eq!(
        sandbox.crm.control.request_count(),
        before + 1,
        "a replica that may miss invalidations does not answer from its cache"
    );
}
