//! `/readyz` as a load balancer reads it: ready while the replica can serve (not draining,
//! its link index and its Redis answer), whatever the blocks do, with each block's state in
//! the body; `/readyz?strict=true` needs every block reachable with its circuit closed.

use blocks_gateway::{
    blocks::BlockName,
    cache::{CacheSettings, RedisTierSettings},
    link_index::LinkIndexLocation,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn readyz(app: &TestApp, query: &str) -> (u16, Value) {
    let response = app.get(&format!("/readyz{query}"), None).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn readiness_holds_while_blocks_fail_and_lists_their_states() {
    let app = spawn_app_with(
        |settings| {
            settings.gateway.http.breaker.threshold = 2;
            for block in &mut settings.gateway.blocks {
                if block.block == BlockName::B2b {
                    // Port 9 (discard) is closed on loopback: connection refused.
                    block.base_url = "http://127.0.0.1:9/".parse().expect("url");
                }
            }
        },
        CacheSettings::default(),
    )
    .await;
    let identity = app.sandbox.demo.identities[0].unique_id.clone();
    let b2b_user = app.sandbox.demo.b2b_users[0].id;
    app.block("sales").control.set_failure(1.0, 503);
    app.block("search").control.set_failure(1.0, 500);
    // Two failed Sales reads open its circuit; one failed Search read and one refused B2B
    // connection leave theirs closed but counting.
    for _ in 0..2 {
        app.query(
            "query ($id: ID!) { identity(id: $id) { sales { uniqueId } } }",
            json!({ "id": identity }),
        )
        .await;
    }
    let partial = app
        .query(
            "query ($id: ID!, $user: Int!) { identity(id: $id) { search { uniqueId } } b2bUser(id: $user) { id } }",
            json!({ "id": identity, "user": b2b_user }),
        )
        .await;
    assert_eq!(partial["errors"].as_array().map(Vec::len), Some(2), "{partial}");

    let before = app.total_requests();
    let (status, body) = readyz(&app, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "ready": true,
            "strict": false,
            "stores": { "linkIndex": "up" },
            "blocks": { "SALES": "breaker_open", "SEARCH": "degraded", "ASSETS": "up", "B2B": "degraded", "CRM": "up" },
        })
    );
    assert_eq!(app.total_requests(), before, "readiness sends the blocks nothing");

    let (status, body) = readyz(&app, "?strict=true").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["blocks"]["B2B"], "unreachable");
    assert_eq!(body["blocks"]["SALES"], "breaker_open");
    assert_eq!(body["blocks"]["SEARCH"], "degraded", "answers HTTP, if with errors");
    assert_eq!(body["blocks"]["CRM"], "up");
}

#[tokio::test]
async fn strict_readiness_passes_when_every_block_answers() {
    let app = spawn_app().await;
    let (status, body) = readyz(&app, "?strict=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["strict"], true);
    for block in ["SALES", "SEARCH", "ASSETS", "B2B", "CRM"] {
        assert_eq!(body["blocks"][block], "up", "{body}");
    }
    assert_eq!(app.block("crm").control.request_count(), 1, "one probe per block");
}

#[tokio::test]
async fn an_unreachable_link_index_takes_the_replica_out() {
    let app = spawn_app_with(
        |settings| {
            settings.gateway.link_index = LinkIndexLocation::Postgres {
                url: SecretString::from("postgres://gateway@127.0.0.1:9/links"),
                schema: None,
            };
        },
        CacheSettings::default(),
    )
    .await;
    let (status, body) = readyz(&app, "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["stores"]["linkIndex"], "unreachable");
    assert_eq!(body["blocks"]["CRM"], "up", "the blocks are still listed");
}

#[tokio::test]
async fn an_unreachable_redis_takes_the_replica_out() {
    // Nothing listens on port 1: no Redis is needed.
    let app = spawn_app_with(
        |settings| {
            settings.gateway.redis = Some(RedisTierSettings::new(SecretString::from("redis://127.0.0.1:1")));
        },
        CacheSettings::default(),
    )
    .await;
    let (status, body) = readyz(&app, "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["stores"]["redis"], "unreachable");
    assert_eq!(body["stores"]["linkIndex"], "up");
}
