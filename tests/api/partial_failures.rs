//! A failing block costs only its own fields; credentials refused upstream are named.

use std::time::Duration;

use blocks_gateway::{blocks::http::BlockAuth, cache::CacheSettings};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{first_error_extensions, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_failing_block_nulls_only_its_own_fields() {
    let app = spawn_app().await;
    let id = app.sandbox.demo.identities[0].unique_id.clone();
    app.block("search").control.set_failure(1.0, 500);

    let body = app
        .query(
            "query ($id: ID!) { identity(id: $id) { id sales { email } search { name } } }",
            json!({ "id": id }),
        )
        .await;

    assert_eq!(body["data"]["identity"]["id"], id.as_str());
    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
    assert!(body["data"]["identity"]["search"].is_null(), "{body}");
    // The failed field is there, as null (not left out: clients read a missing key as a
    // field they did not select).
    assert!(
        body["data"]["identity"]
            .as_object()
            .is_some_and(|identity| identity.contains_key("search")),
        "{body}"
    );
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["path"], json!(["identity", "search"]));
    assert_eq!(errors[0]["extensions"]["code"], "UPSTREAM_ERROR");
    assert_eq!(errors[0]["extensions"]["block"], "SEARCH");
    assert_eq!(errors[0]["extensions"]["status"], 500);
}

#[tokio::test]
async fn an_email_from_a_later_block_is_returned_with_the_earlier_failure_reported() {
    let app = spawn_app().await;
    let demo = app.sandbox.demo.identities[0].clone();
    app.block("sales").control.set_failure(1.0, 503);

    let body = app
        .query(
            "query ($id: ID!) { identity(id: $id) { email } }",
            json!({ "id": demo.unique_id }),
        )
        .await;

    assert_eq!(body["data"]["identity"]["email"], demo.email.as_str(), "{body}");
    assert_eq!(first_error_extensions(&body)["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(first_error_extensions(&body)["block"], "SALES");

    // Fields that need the email internally (the B2B match) report nothing again.
    let both = app
        .query(
            "query ($id: ID!) { identity(id: $id) { email b2bUser { id } } }",
            json!({ "id": demo.unique_id }),
        )
        .await;
    assert!(both["data"]["identity"]["b2bUser"]["id"].is_i64(), "{both}");
    assert_eq!(
        both["errors"].as_array().map(Vec::len),
        Some(1),
        "one failure, one error: {both}"
    );
}

#[tokio::test]
async fn a_failing_crm_fails_the_persons_connection_but_not_other_root_fields() {
    let app = spawn_app().await;
    let b2b = app.sandbox.demo.b2b_users[0].id;
    app.block("crm").control.set_failure(1.0, 502);
    let body = app
        .query(
            "query ($b: Int!) { persons(first: 5) { edges { node { id } } } b2bUser(id: $b) { id } }",
            json!({ "b": b2b }),
        )
        .await;
    assert_eq!(body["data"]["b2bUser"]["id"], b2b, "{body}");
    assert_eq!(first_error_extensions(&body)["block"], "CRM");
    assert_eq!(first_error_extensions(&body)["code"], "UPSTREAM_UNAVAILABLE");
}

#[tokio::test]
async fn a_hanging_block_times_out_while_the_others_answer() {
    let app = spawn_app_with(
        |settings| settings.gateway.http.request_timeout = Duration::from_millis(300),
        CacheSettings::default(),
    )
    .await;
    let id = app.sandbox.demo.identities[0].unique_id.clone();
    app.block("assets").control.set_hang(true);
    let body = app
        .query(
            "query ($id: ID!) { identity(id: $id) { sales { email } assets { username } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
    assert_eq!(first_error_extensions(&body)["code"], "UPSTREAM_TIMEOUT");
    assert_eq!(first_error_extensions(&body)["block"], "ASSETS");
}

#[tokio::test]
async fn garbage_from_a_block_is_an_upstream_error_without_its_body() {
    let app = spawn_app().await;
    let id = app.sandbox.demo.identities[0].unique_id.clone();
    app.block("search").control.set_garbage(true);
    let body = app
        .query(
            "query ($id: ID!) { identity(id: $id) { search { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(first_error_extensions(&body)["code"], "UPSTREAM_ERROR");
    assert_eq!(first_error_extensions(&body)["block"], "SEARCH");
}

fn set_auth(
    settings: &mut blocks_gateway::config::Settings,
    block: blocks_gateway::blocks::BlockName,
    auth: BlockAuth,
) {
    for configured in &mut settings.gateway.blocks {
        if configured.block == block {
            configured.auth = auth.clone();
        }
    }
}

#[tokio::test]
async fn a_refused_credential_is_unauthenticated_and_names_the_block() {
    let app = spawn_app_with(
        |settings| {
            let auth = BlockAuth::BearerWithAppId {
                token: SecretString::from("wrong-token"),
                app_id: SecretString::from("wrong-app"),
            };
            set_auth(settings, blocks_gateway::blocks::BlockName::Sales, auth);
        },
        CacheSettings::default(),
    )
    .await;
    let id = app.sandbox.demo.identities[0].unique_id.clone();
    let body = app
        .query(
            "query ($id: ID!) { identity(id: $id) { sales { email } search { name } } }",
            json!({ "id": id }),
        )
        .await;
    let extensions = first_error_extensions(&body);
    assert_eq!(extensions["code"], "UNAUTHENTICATED");
    assert_eq!(extensions["block"], "SALES");
    assert_eq!(extensions["status"], 401);
    assert!(body["data"]["identity"]["search"]["name"].is_string(), "{body}");
    assert!(!body.to_string().contains("wrong-token"));
}

#[tokio::test]
async fn a_wrong_app_id_is_forbidden() {
    let app = spawn_app_with(
        |settings| {
            for configured in &mut settings.gateway.blocks {
                if let (blocks_gateway::blocks::BlockName::Search, BlockAuth::BearerWithAppId { token, .. }) =
                    (configured.block, &configured.auth)
                {
                    configured.auth = BlockAuth::BearerWithAppId {
                        token: token.clone(),
                        app_id: SecretString::from("wrong-app"),
                    };
                }
            }
        },
        CacheSettings::default(),
    )
    .await;
    let id = app.sandbox.demo.identities[0].unique_id.clone();
    let body = app
        .query(
            "query ($id: ID!) { identity(id: $id) { search { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(first_error_extensions(&body)["code"], "FORBIDDEN");
    assert_eq!(first_error_extensions(&body)["block"], "SEARCH");
    assert_eq!(first_error_extensions(&body)["status"], 403);
}

#[tokio::test]
async fn a_block_without_url_answers_block_not_configured() {
    let app = spawn_app_with(
        |settings| {
            settings
                .gateway
                .blocks
                .retain(|b| b.block != blocks_gateway::blocks::BlockName::Crm)
        },
        CacheSettings::default(),
    )
    .await;
    let body = app
        .query(r#"{ persons(first: 1) { edges { node { id } } } }"#, json!({}))
        .await;
    assert_eq!(first_error_extensions(&body)["code"], "BLOCK_NOT_CONFIGURED");
    assert_eq!(first_error_extensions(&body)["block"], "CRM");
    assert_eq!(body["data"], Value::Null);
}

/// A failed field is `null` beside its error wherever it is: at the root, in a list item,
/// and when it is non-null (the rest of its parent is kept).
#[tokio::test]
async fn every_failed_field_is_null_in_the_data() {
    let app = spawn_app().await;
    let body = app
        .query(
            "{ bad: person(id: \"not-a-uuid\") { id } __typename persons(first: 2) { edges { node { name organization { name } } } } }",
            json!({}),
        )
        .await;
    assert!(
        body["data"].as_object().is_some_and(|data| data.contains_key("bad")),
        "{body}"
    );
    assert!(body["data"]["bad"].is_null(), "{body}");
    assert_eq!(body["data"]["__typename"], "Query");
    app.block("sales").control.set_failure(1.0, 500);
    let body = app
        .query(
            "{ persons(first: 5) { edges { node { name organization { name salesEntity { name } } } } } }",
            json!({}),
        )
        .await;
    let organizations: Vec<&Value> = body["data"]["persons"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("persons: {body}"))
        .iter()
        .map(|edge| &edge["node"]["organization"])
        .filter(|organization| !organization.is_null())
        .collect();
    assert!(!organizations.is_empty(), "persons with an organization: {body}");
    for organization in organizations {
        assert!(organization["name"].is_string(), "{body}");
        assert!(
            organization
                .as_object()
                .is_some_and(|fields| fields.contains_key("salesEntity")),
            "{body}"
        );
        assert!(organization["salesEntity"].is_null(), "{body}");
    }
}
