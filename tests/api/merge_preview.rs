//! `mergePersons(input: { dryRun: true })`: a preview that writes nothing to any block or to
//! the identity link index, and says what the merge would do: the same merged ids, link
//! changes and user errors as the merge itself then gives.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const MERGE: &str = r#"
mutation ($input: MergePersonsInput!) {
  mergePersons(input: $input) {
    dryRun
    primary { id active identity { id } }
    mergedIds
    reparented
    linkChanges { identityId personId outcome }
    userErrors { field code message }
  }
}"#;

/// Links an identity of the demo data to a CRM person through `linkIdentity`.
async fn link(app: &TestApp, identity: &str, person: &str) {
    let body = app
        .query(
            "mutation ($input: IdentityLinkInput!) { linkIdentity(input: $input) { userErrors { code message } } }",
            json!({ "input": { "identityId": identity, "personId": person } }),
        )
        .await;
    assert_eq!(body["data"]["linkIdentity"]["userErrors"], json!([]), "{body}");
}

/// The `n`th demo identity (after the first) that a 23blocks block knows, so it can be linked.
fn known_identity(app: &TestApp, n: usize) -> String {
    app.sandbox
        .demo
        .identities
        .iter()
        .skip(1)
        .filter(|i| i.in_sales || i.in_search || i.in_assets)
        .nth(n)
        .expect("enough identities")
        .unique_id
        .clone()
}

/// A duplicate group's primary and duplicates.
fn group(app: &TestApp, index: usize) -> (String, Vec<String>) {
    let group = &app.sandbox.demo.duplicate_groups[index];
    let ids: Vec<String> = group.iter().map(ToString::to_string).collect();
    (ids[0].clone(), ids[1..].to_vec())
}

async fn merge(app: &TestApp, primary: &str, duplicates: &[String], dry_run: bool) -> Value {
    let body = app
        .query(
            MERGE,
            json!({ "input": { "primaryId": primary, "duplicateIds": duplicates, "dryRun": dry_run } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["mergePersons"].clone()
}

/// Fails unless every request any block saw since the last clear was a read.
fn assert_only_reads(app: &TestApp) {
    for (block, requests) in app.requests() {
        for request in requests {
            assert_eq!(request.method, "GET", "{block} saw {} {}", request.method, request.path);
        }
    }
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_says_what_the_merge_then_does() {
    let app = spawn_app().await;
    let (primary, duplicates) = group(&app, 0);
    let identity = known_identity(&app, 0);
    link(&app, &identity, &duplicates[0]).await;
    let index_before = app.gateway.links().contents().await.expect("index");
    app.clear_requests();

    let preview = merge(&app, &primary, &duplicates, true).await;
    assert_eq!(preview["dryRun"], true);
    assert_eq!(preview["userErrors"], json!([]), "{preview}");
    assert_eq!(preview["mergedIds"], json!(duplicates));
    assert!(preview["reparented"].is_null(), "the CRM counts only while merging");
    assert_eq!(preview["primary"]["id"], primary.as_str());
    assert_eq!(preview["primary"]["active"], true);
    assert_eq!(
        preview["primary"]["identity"]["id"],
        identity.as_str(),
        "the primary as it would look: with the identity that moves onto it"
    );
    assert_eq!(
        preview["linkChanges"],
        json!([{ "identityId": identity, "personId": duplicates[0], "outcome": "MOVED" }])
    );
    assert_only_reads(&app);
    for id in std::iter::once(&primary).chain(&duplicates) {
        assert_eq!(
            app.block("crm")
                .control
                .count("GET", &format!("/api/crm/persons/{id}/")),
            1,
            "each person is read once, fresh"
        );
    }
    assert_eq!(app.gateway.links().contents().await.expect("index"), index_before);
    // Nothing changed in the CRM either: the duplicates are still active.
    for id in &duplicates {
        let read = app
            .query("query ($id: ID!) { person(id: $id) { active } }", json!({ "id": id }))
            .await;
        assert_eq!(read["data"]["person"]["active"], true, "{read}");
    }

    let merged = merge(&app, &primary, &duplicates, false).await;
    assert_eq!(merged["dryRun"], false);
    assert_eq!(merged["userErrors"], preview["userErrors"]);
    assert_eq!(merged["mergedIds"], preview["mergedIds"]);
    assert_eq!(merged["linkChanges"], preview["linkChanges"], "{merged}");
    assert_eq!(merged["primary"]["identity"], preview["primary"]["identity"]);
    assert!(merged["reparented"].is_object());
}

#[tokio::test]
async fn a_dry_run_reports_what_would_stop_the_merge_with_the_merges_own_codes() {
    let app = spawn_app().await;
    let (primary, duplicates) = group(&app, 0);
    let unknown = "00000000-0000-4000-8000-00000000beef".to_owned();
    app.clear_requests();

    let preview = merge(&app, &unknown, &duplicates, true).await;
    assert_eq!(preview["userErrors"][0]["code"], "NOT_FOUND", "{preview}");
    assert_eq!(preview["userErrors"][0]["field"], json!(["input", "primaryId"]));
    assert_eq!(preview["mergedIds"], json!([]));
    assert!(preview["primary"].is_null());

    let with_unknown = vec![duplicates[0].clone(), unknown.clone()];
    let preview = merge(&app, &primary, &with_unknown, true).await;
    assert_eq!(preview["userErrors"][0]["code"], "BAD_USER_INPUT", "{preview}");
    assert_eq!(preview["userErrors"][0]["field"], json!(["input", "duplicateIds", "1"]));
    assert_eq!(preview["mergedIds"], json!([]), "a refused merge merges nothing");
    assert_eq!(preview["primary"]["id"], primary.as_str());
    assert_only_reads(&app);

    // The merge itself answers with the same codes.
    let merged = merge(&app, &unknown, &duplicates, false).await;
    assert_eq!(merged["userErrors"][0]["code"], "NOT_FOUND", "{merged}");
    let merged = merge(&app, &primary, &with_unknown, false).await;
    assert_eq!(merged["userErrors"][0]["code"], "BAD_USER_INPUT", "{merged}");

    // Input the gateway refuses is refused in a dry run too, before any call.
    app.clear_requests();
    let preview = merge(&app, &primary, std::slice::from_ref(&primary), true).await;
    assert_eq!(preview["userErrors"][0]["code"], "BAD_USER_INPUT");
    assert_eq!(preview["dryRun"], true);
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn a_dry_run_shows_links_that_could_not_move() {
    let app = spawn_app().await;
    let (primary, duplicates) = group(&app, 1);
    let holder = known_identity(&app, 1);
    let other = known_identity(&app, 2);
    link(&app, &holder, &primary).await;
    link(&app, &other, &duplicates[0]).await;
    app.clear_requests();

    let preview = merge(&app, &primary, &duplicates, true).await;
    assert_eq!(
        preview["userErrors"][0]["code"], "ALREADY_LINKED_TO_OTHER_IDENTITY",
        "{preview}"
    );
    assert_eq!(
        preview["linkChanges"],
        json!([{ "identityId": other, "personId": duplicates[0], "outcome": "KEPT" }])
    );
    assert_eq!(preview["primary"]["identity"]["id"], holder.as_str());
    assert_eq!(
        preview["mergedIds"],
        json!(duplicates),
        "the merge itself would go ahead"
    );
    assert_only_reads(&app);

    let merged = merge(&app, &primary, &duplicates, false).await;
    assert_eq!(merged["userErrors"], preview["userErrors"]);
    assert_eq!(merged["linkChanges"], preview["linkChanges"]);
}
