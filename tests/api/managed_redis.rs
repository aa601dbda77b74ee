//! The Redis tier on Redis as managed services run it: over TLS (`rediss://`, the server's
//! certificate verified against `REDIS_CA_FILE`) and as a Redis Cluster (`REDIS_CLUSTER`),
//! for the shared cache level and the invalidations between replicas. Needs
//! `REDIS_TLS_URL` with `REDIS_TLS_CA_FILE` (given to the gateway as `REDIS_CA_FILE`), and `REDIS_CLUSTER_URL` (`.ci/managed-redis` starts
//! both on loopback); without them these tests print SKIPPED, and fail when `CI` is set.

use std::time::Duration;

use blocks_gateway::{
    cache::{RedisTierError, RedisTierSettings},
    config::Settings,
    gateway::Gateway,
};

use crate::{
    helpers::{sandbox_settings, start_sandbox},
    replicas::{required_env, sample, spawn_replicas_with, writes_through_one_replica_reach_the_other},
};

/// The Redis tier as the configuration reads these variables, under a prefix of its own.
fn tier_from(variables: &[(&str, String)]) -> RedisTierSettings {
    let mut variables = variables.to_vec();
    variables.push(("REDIS_KEY_PREFIX", format!("test-{}", uuid::Uuid::new_v4())));
    let settings = Settings::from_variables(&variables).expect("valid Redis settings");
    settings.gateway.redis.expect("the Redis tier is on")
}

#[tokio::test]
async fn replicas_over_tls_share_the_cache_and_their_invalidations() {
    const TEST: &str = "replicas_over_tls_share_the_cache_and_their_invalidations";
    let (Some(url), Some(ca)) = (
        required_env("REDIS_TLS_URL", TEST),
        required_env("REDIS_TLS_CA_FILE", TEST),
    ) else {
        return;
    };
    assert!(url.starts_with("rediss://"), "{url}");
    let tier = tier_from(&[("REDIS_URL", url), ("REDIS_CA_FILE", ca)]);
    assert!(tier.ca_pem.is_some());
    let replicas = spawn_replicas_with(tier, |_| {}).await;
    // What one replica loaded, the other reads from Redis over TLS.
    let id = replicas.sandbox.demo.persons[9].id.to_string();
    let name = replicas.person_name(&replicas.a, &id).await;
    let before = replicas.crm_requests();
    assert_eq!(replicas.person_name(&replicas.b, &id).await, name);
    assert_eq!(replicas.crm_requests(), before, "B found A's answer in Redis");
    writes_through_one_replica_reach_the_other(&replicas).await;
}

#[tokio::test]
async fn a_tls_server_the_gateway_cannot_verify_is_refused() {
    const TEST: &str = "a_tls_server_the_gateway_cannot_verify_is_refused";
    let Some(url) = required_env("REDIS_TLS_URL", TEST) else {
        return;
    };
    // Without REDIS_CA_FILE the system's roots are used, and the throwaway CA that signed
    // the test server's certificate is not among them.
    let tier = tier_from(&[("REDIS_URL", url)]);
    let sandbox = start_sandbox().await;
    let mut settings = sandbox_settings(&sandbox);
    settings.gateway.redis = Some(tier);
    let gateway = Gateway::new(&settings.gateway).expect("starts (connections are lazy)");
    let redis = gateway.cache().redis_tier().expect("the tier is configured");
    assert!(matches!(
        redis.wait_until_subscribed(Duration::from_secs(2)).await,
        Err(RedisTierError::Unreachable(_))
    ));
    assert!(!redis.ping().await, "no command goes through an unverified connection");
    let readiness = gateway.readiness(false).await;
    assert!(!readiness.ready);
    assert_eq!(readiness.stores["redis"], "unreachable");
}

#[tokio::test]
async fn replicas_over_a_cluster_share_the_cache_and_their_invalidations() {
    const TEST: &str = "replicas_over_a_cluster_share_the_cache_and_their_invalidations";
    let Some(seeds) = required_env("REDIS_CLUSTER_URL", TEST) else {
        return;
    };
    let tier = tier_from(&[("REDIS_URL", seeds.clone()), ("REDIS_CLUSTER", "true".to_owned())]);
    assert!(tier.cluster);
    let prefix = tier.key_prefix.clone();
    let replicas = spawn_replicas_with(tier, |_| {}).await;
    // Ten records, ten hash slots: spread over the cluster's nodes.
    for person in &replicas.sandbox.demo.persons[10..20] {
        let id = person.id.to_string();
        let name = replicas.person_name(&replicas.a, &id).await;
        let before = replicas.crm_requests();
        assert_eq!(replicas.person_name(&replicas.b, &id).await, name);
        assert_eq!(replicas.crm_requests(), before, "B found A's answer in the cluster");
    }
    assert_eq!(
        sample(
            &replicas.metrics(&replicas.b).await,
            "gateway_shared_cache_lookups_total{result=\"hit\"}"
        ),
        10.0
    );
    let mut nodes_holding_records = 0;
    for seed in seeds.split(',') {
        let client = redis::Client::open(seed).expect("seed URL");
        let mut node = client.get_multiplexed_async_connection().await.expect("node answers");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:v*"))
            .query_async(&mut node)
            .await
            .expect("KEYS");
        nodes_holding_records += usize::from(!keys.is_empty());
    }
    assert!(nodes_holding_records >= 2, "the records are spread over the cluster");
    writes_through_one_replica_reach_the_other(&replicas).await;
    assert!(replicas.a.gateway.readiness(false).await.ready);
}
