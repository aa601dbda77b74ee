//! Persisted documents over real HTTP: trusted documents (only allow-listed documents run,
//! by hash or in full, refused before any upstream call) and automatic persisted queries
//! (the Apollo protocol: unknown hash, register, then hash alone).

use std::{collections::BTreeMap, sync::Arc};

use blocks_gateway::{
    cache::CacheSettings,
    config::Settings,
    playground::EXAMPLE_OPERATIONS,
    trusted_documents::{TrustedDocuments, manifest_from_dir, sha256_hex},
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, first_error_extensions, spawn_app, spawn_app_with};

const PERSON_LIST_VARIABLES: &str = r#"{ "first": 3 }"#;

fn person_list() -> &'static str {
    EXAMPLE_OPERATIONS
        .iter()
        .find(|e| e.name == "PersonList")
        .expect("PersonList example")
        .document
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn examples_manifest() -> BTreeMap<String, String> {
    manifest_from_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/operations"
    )))
    .await
    .expect("the examples make a manifest")
}

/// A gateway that runs only the example operations.
async fn spawn_trusted_app() -> TestApp {
    let trusted = TrustedDocuments::from_manifest(examples_manifest().await).expect("valid manifest");
    spawn_app_with(
        |settings| settings.gateway.documents.trusted = Some(Arc::new(trusted)),
        CacheSettings::default(),
    )
    .await
}

fn variables() -> Value {
    serde_json::from_str(PERSON_LIST_VARIABLES).expect("JSON")
}

fn error_code(body: &Value) -> &str {
    first_error_extensions(body)["code"].as_str().expect("a code")
}

/// GETs the endpoint with a hash alone, as Apollo clients do for hashed queries.
async fn get_by_hash(app: &TestApp, hash: &str, variables: &Value) -> Value {
    let extensions = persisted(hash).to_string();
    let variables = variables.to_string();
    app.http
        .get(app.endpoint())
        // CSRF prevention: GETs carry a header a browser would have to preflight.
        .header("apollo-require-preflight", "true")
        .query(&[("extensions", extensions.as_str()), ("variables", variables.as_str())])
        .send()
        .await
        .expect("gateway answers")
        .json()
        .await
        .expect("JSON answer")
}

#[tokio::test]
async fn the_examples_manifest_maps_each_file_hash_to_its_text() {
    let manifest = examples_manifest().await;
    assert_eq!(manifest.len(), EXAMPLE_OPERATIONS.len());
    for example in EXAMPLE_OPERATIONS {
        assert_eq!(
            manifest.get(&sha256_hex(example.document)).map(String::as_str),
            Some(example.document)
        );
    }
}

#[tokio::test]
async fn trusted_documents_run_by_full_text_and_by_hash_alone() {
    let app = spawn_trusted_app().await;
    let full = app.query(person_list(), variables()).await;
    assert!(full.get("errors").is_none(), "{full}");
    assert_eq!(full["data"]["persons"]["edges"].as_array().map(Vec::len), Some(3));

    let hash = sha256_hex(person_list());
    let (status, by_hash) = app
        .post_json(json!({ "variables": variables(), "extensions": persisted(&hash) }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(by_hash, full, "the hash alone runs the same document");
    assert_eq!(get_by_hash(&app, &hash, &variables()).await, full, "over GET too");
}

#[tokio::test]
async fn trusted_documents_refuse_other_documents_before_any_upstream_call() {
    let app = spawn_trusted_app().await;
    app.clear_requests();

    let ad_hoc = app.query("{ persons(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(error_code(&ad_hoc), "FORBIDDEN", "{ad_hoc}");
    assert!(ad_hoc["data"].is_null());

    // A listed document changed by one character is another document.
    let edited = app
        .query(&person_list().replace("jobTitle", "jobTitle name"), variables())
        .await;
    assert_eq!(error_code(&edited), "FORBIDDEN", "{edited}");

    let unknown_hash = app
        .post_json(json!({ "extensions": persisted(&"ab".repeat(32)) }))
        .await
        .1;
    assert_eq!(error_code(&unknown_hash), "PERSISTED_QUERY_NOT_FOUND", "{unknown_hash}");

    // Registering through APQ is off: hash and text of an unlisted document stay refused.
    let ad_hoc_text = "{ persons(first: 1) { totalCount } }";
    let register = json!({ "query": ad_hoc_text, "extensions": persisted(&sha256_hex(ad_hoc_text)) });
    assert_eq!(error_code(&app.post_json(register).await.1), "FORBIDDEN");
    let by_hash = app
        .post_json(json!({ "extensions": persisted(&sha256_hex(ad_hoc_text)) }))
        .await
        .1;
    assert_eq!(error_code(&by_hash), "PERSISTED_QUERY_NOT_FOUND");

    let mismatched =
        json!({ "query": person_list(), "variables": variables(), "extensions": persisted(&"cd".repeat(32)) });
    assert_eq!(error_code(&app.post_json(mismatched).await.1), "BAD_USER_INPUT");

    assert_eq!(app.total_requests(), 0, "nothing reached a block");
}

#[tokio::test]
async fn a_mutation_found_by_its_hash_is_refused_over_get() {
    let app = spawn_trusted_app().await;
    app.clear_requests();
    let delete = EXAMPLE_OPERATIONS
        .iter()
        .find(|e| e.name == "DeletePerson")
        .expect("example")
        .document;
    let person = app.sandbox.demo.persons[0].id.to_string();
    let body = get_by_hash(&app, &sha256_hex(delete), &json!({ "id": person })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap_or("").contains("POST"),
        "{body}"
    );
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn apq_registers_a_document_then_runs_it_by_hash() {
    let app = spawn_app().await;
    app.clear_requests();
    let hash = sha256_hex(person_list());

    // 1. The hash alone: unknown, in the words and code Apollo clients look for.
    let (_, unknown) = app
        .post_json(json!({ "variables": variables(), "extensions": persisted(&hash) }))
        .await;
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound", "{unknown}");
    assert_eq!(error_code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(app.total_requests(), 0);

    // 2. Hash and text: runs and registers.
    let (_, registered) = app
        .post_json(json!({ "query": person_list(), "variables": variables(), "extensions": persisted(&hash) }))
        .await;
    assert!(registered.get("errors").is_none(), "{registered}");
    assert_eq!(registered["data"]["persons"]["edges"].as_array().map(Vec::len), Some(3));

    // 3. The hash alone now runs it, over POST and GET.
    let (_, by_hash) = app
        .post_json(json!({ "variables": variables(), "extensions": persisted(&hash) }))
        .await;
    assert_eq!(by_hash, registered);
    assert_eq!(get_by_hash(&app, &hash, &variables()).await, registered);
}

#[tokio::test]
async fn apq_refuses_a_hash_that_does_not_match_the_text() {
    let app = spawn_app().await;
    app.clear_requests();
    let body = app
        .post_json(
            json!({ "query": person_list(), "variables": variables(), "extensions": persisted(&"ef".repeat(32)) }),
        )
        .await
        .1;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn apq_keeps_get_for_queries_only() {
    let app = spawn_app().await;
    let create = EXAMPLE_OPERATIONS
        .iter()
        .find(|e| e.name == "CreatePerson")
        .expect("example")
        .document;
    let hash = sha256_hex(create);
    let input = json!({ "input": { "name": "Registered By Post" } });
    let (_, created) = app
        .post_json(json!({ "query": create, "variables": input, "extensions": persisted(&hash) }))
        .await;
    assert!(created["data"]["createPerson"]["person"]["id"].is_string(), "{created}");
    app.clear_requests();
    let body = get_by_hash(&app, &hash, &input).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        app.block("crm").control.count("POST", "/"),
        0,
        "no person created over GET"
    );
}

#[tokio::test]
async fn without_apq_a_hash_alone_is_not_supported() {
    let app = spawn_app_with(
        |settings| settings.gateway.documents.apq_capacity = 0,
        CacheSettings::default(),
    )
    .await;
    let body = app
        .post_json(json!({ "extensions": persisted(&sha256_hex(person_list())) }))
        .await
        .1;
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotSupported", "{body}");
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_SUPPORTED");
    // Full documents still run.
    assert!(app.query(person_list(), variables()).await.get("errors").is_none());
}

#[tokio::test]
async fn the_manifest_is_read_from_the_configured_file_and_checked_at_start_up() {
    let dir = std::env::temp_dir().join(format!("trusted-documents-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write_config = |manifest: &str| {
        let manifest_path = dir.join("manifest.json");
        std::fs::write(&manifest_path, manifest).expect("manifest written");
        let config = dir.join("gateway.toml");
        let line = format!(
            "gateway_trusted_documents = {:?}\n",
            manifest_path.display().to_string()
        );
        std::fs::write(&config, line).expect("config written");
        config
    };

    let manifest = serde_json::to_string(&examples_manifest().await).expect("JSON");
    let settings = Settings::load(Some(&write_config(&manifest))).expect("a valid manifest loads");
    let trusted = settings.gateway.documents.trusted.expect("trusted documents on");
    assert_eq!(trusted.len(), EXAMPLE_OPERATIONS.len());

    let tampered = json!({ sha256_hex("{ a }"): "{ persons { totalCount } }" }).to_string();
    let error = Settings::load(Some(&write_config(&tampered))).expect_err("a wrong hash stops start-up");
    assert!(error.to_string().contains("GATEWAY_TRUSTED_DOCUMENTS"), "{error}");
    let error = Settings::load(Some(&write_config("[]"))).expect_err("not a manifest");
    assert!(error.to_string().contains("GATEWAY_TRUSTED_DOCUMENTS"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The examples keyed as GraphQL Code Generator's client preset keys its
/// `persisted-documents.json`: `sha256:<hex>`.
async fn client_preset_manifest() -> BTreeMap<String, String> {
    examples_manifest()
        .await
        .into_iter()
        .map(|(hash, document)| (format!("sha256:{hash}"), document))
        .collect()
}

#[tokio::test]
async fn a_manifest_keyed_like_the_client_preset_starts_the_gateway_and_serves_its_hashes() {
    let dir = std::env::temp_dir().join(format!("client-preset-manifest-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let manifest_path = dir.join("persisted-documents.json");
    let manifest = serde_json::to_string_pretty(&client_preset_manifest().await).expect("JSON");
    std::fs::write(&manifest_path, manifest).expect("manifest written");
    let path = manifest_path.display().to_string();
    let settings = Settings::from_variables(&[("GATEWAY_TRUSTED_DOCUMENTS", path)]).expect("the manifest loads");
    let trusted = settings.gateway.documents.trusted.expect("trusted documents on");
    assert_eq!(trusted.len(), EXAMPLE_OPERATIONS.len());
    let _ = std::fs::remove_dir_all(&dir);

    let app = spawn_app_with(
        |settings| settings.gateway.documents.trusted = Some(trusted),
        CacheSettings::default(),
    )
    .await;
    let hex = sha256_hex(person_list());
    let full = app.query(person_list(), variables()).await;
    assert!(full.get("errors").is_none(), "{full}");
    for hash in [
        format!("sha256:{hex}"),
        hex.clone(),
        format!("sha256:{}", hex.to_uppercase()),
    ] {
        let (status, by_hash) = app
            .post_json(json!({ "variables": variables(), "extensions": persisted(&hash) }))
            .await;
        assert_eq!((status, &by_hash), (200, &full), "{hash}");
        assert_eq!(get_by_hash(&app, &hash, &variables()).await, full, "{hash} over GET");
    }
    // A document sent in full with its prefixed hash runs; with another hash it does not.
    let (_, with_hash) = app
        .post_json(
            json!({ "query": person_list(), "variables": variables(), "extensions": persisted(&format!("sha256:{hex}")) }),
        )
        .await;
    assert_eq!(with_hash, full);
    let (_, mismatched) = app
        .post_json(json!({ "query": person_list(), "variables": variables(), "extensions": persisted(&format!("sha256:{}", "ab".repeat(32))) }))
        .await;
    assert_eq!(error_code(&mismatched), "BAD_USER_INPUT", "{mismatched}");
}

#[tokio::test]
async fn apq_takes_hashes_with_the_sha256_prefix() {
    let app = spawn_app().await;
    let prefixed = format!("sha256:{}", sha256_hex(person_list()));
    let (_, registered) = app
        .post_json(json!({ "query": person_list(), "variables": variables(), "extensions": persisted(&prefixed) }))
        .await;
    assert!(registered.get("errors").is_none(), "{registered}");
    let (_, by_hash) = app
        .post_json(json!({ "variables": variables(), "extensions": persisted(&prefixed) }))
        .await;
    assert_eq!(by_hash, registered);
    let (_, bare) = app
        .post_json(json!({ "variables": variables(), "extensions": persisted(&sha256_hex(person_list())) }))
        .await;
    assert_eq!(bare, registered, "one document, whichever form registered it");
}
