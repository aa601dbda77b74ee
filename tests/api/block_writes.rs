//! The B2B user writes (`updateB2BUser`, `assignB2BRemoteId`) and `registerSalesEntity`:
//! what the blocks received, what the caller saw, the block's refusals as user errors, and
//! caches that never serve the record as it was before the write.

use serde_json::json;

use crate::helpers::{active_b2b_user, spawn_app};

const UPDATE_B2B_USER: &str = r#"
mutation ($id: Int!, $input: UpdateB2BUserInput!) {
  updateB2BUser(id: $id, input: $input) {
    b2bUser { id email firstName lastName phoneNumber isActive division { id name } }
    userErrors { field code message }
  }
}"#;

const ASSIGN_REMOTE_ID: &str = r#"
mutation ($id: Int!) {
  assignB2BRemoteId(id: $id) {
    b2bUser { id email remoteId }
    userErrors { field code message }
  }
}"#;

const REGISTER_SALES_ENTITY: &str = r#"
mutation ($input: RegisterSalesEntityInput!) {
  registerSalesEntity(input: $input) {
    salesEntity { id uniqueId name entityType email status }
    status
    userErrors { field code message }
  }
}"#;

#[tokio::test]
async fn update_b2b_user_puts_the_fields_given_and_answers_the_fresh_user() {
    let app = spawn_app().await;
    let user = active_b2b_user(&app.sandbox.demo);
    let read = "query ($id: Int!) { b2bUser(id: $id) { firstName phoneNumber division { id } } }";
    // Cached before the write: the answer after it must not be this one.
    let before = app.query(read, json!({ "id": user.id })).await;
    assert!(before["data"]["b2bUser"].is_object(), "{before}");
    let other_division = app
        .sandbox
        .demo
        .b2b_divisions
        .iter()
        .find(|d| d.is_active && d.id != user.division_id)
        .expect("another active division")
        .id;
    app.clear_requests();
    let body = app
        .query(
            UPDATE_B2B_USER,
            json!({ "id": user.id, "input": { "firstName": " Ada ", "phoneNumber": null, "division": other_division } }),
        )
        .await;
    let payload = &body["data"]["updateB2BUser"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    assert_eq!(payload["b2bUser"]["firstName"], "Ada");
    assert_eq!(payload["b2bUser"]["phoneNumber"], "");
    assert_eq!(payload["b2bUser"]["division"]["id"], other_division);
    assert!(
        payload["b2bUser"]["division"]["name"].is_string(),
        "read fresh: {payload}"
    );
    let path = format!("/api/v1/users/{}/", user.id);
    assert_eq!(
        app.bodies("b2b", "PUT", &path),
        [json!({ "first_name": "Ada", "phone_number": "", "division": other_division })]
    );
    let after = app.query(read, json!({ "id": user.id })).await;
    assert_eq!(after["data"]["b2bUser"]["firstName"], "Ada", "{after}");
    assert_eq!(after["data"]["b2bUser"]["division"]["id"], other_division);
}

#[tokio::test]
async fn the_b2b_blocks_refusals_are_user_errors() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let user = active_b2b_user(demo);
    let body = app
        .query(
            UPDATE_B2B_USER,
            json!({ "id": user.id, "input": { "division": demo.inactive_division_id } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let error = &body["data"]["updateB2BUser"]["userErrors"][0];
    assert_eq!(error["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(error["field"], json!(["input", "division"]));
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("Deactivated divisions")),
        "{error}"
    );
    assert!(body["data"]["updateB2BUser"]["b2bUser"].is_null());

    let body = app
        .query(
            UPDATE_B2B_USER,
            json!({ "id": 999_999, "input": { "lastName": "Nobody" } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateB2BUser"]["userErrors"][0]["code"], "NOT_FOUND",
        "{body}"
    );
    let body = app.query(ASSIGN_REMOTE_ID, json!({ "id": 999_999 })).await;
    assert_eq!(
        body["data"]["assignB2BRemoteId"]["userErrors"][0]["code"], "NOT_FOUND",
        "{body}"
    );
}

#[tokio::test]
async fn bad_b2b_updates_are_refused_before_any_call() {
    let app = spawn_app().await;
    app.clear_requests();
    for (id, input, field) in [
        (0, json!({ "firstName": "Ada" }), json!(["id"])),
        (1, json!({}), json!(["input"])),
        (1, json!({ "firstName": null }), json!(["input", "firstName"])),
        (1, json!({ "lastName": "  " }), json!(["input", "lastName"])),
        (1, json!({ "division": null }), json!(["input", "division"])),
        (1, json!({ "division": 0 }), json!(["input", "division"])),
    ] {
        let body = app.query(UPDATE_B2B_USER, json!({ "id": id, "input": input })).await;
        let error = &body["data"]["updateB2BUser"]["userErrors"][0];
        assert_eq!(error["code"], "BAD_USER_INPUT", "{input} → {body}");
        assert_eq!(error["field"], field, "{input} → {body}");
    }
    let body = app.query(ASSIGN_REMOTE_ID, json!({ "id": -3 })).await;
    assert_eq!(
        body["data"]["assignB2BRemoteId"]["userErrors"][0]["code"],
        "BAD_USER_INPUT"
    );
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn a_user_given_a_remote_id_appears_in_the_users_list() {
    let app = spawn_app().await;
    let unlisted = app
        .sandbox
        .demo
        .b2b_users
        .iter()
        .find(|u| !u.listed)
        .expect("a user without a remote id")
        .clone();
    let list =
        "query ($id: Int!) { b2bUsers(first: 10, filter: { id: $id }) { totalCount edges { node { id remoteId } } } }";
    let before = app.query(list, json!({ "id": unlisted.id })).await;
    assert_eq!(before["data"]["b2bUsers"]["totalCount"], 0, "{before}");
    app.clear_requests();
    let body = app.query(ASSIGN_REMOTE_ID, json!({ "id": unlisted.id })).await;
    let payload = &body["data"]["assignB2BRemoteId"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    assert!(payload["b2bUser"]["remoteId"].is_i64(), "{body}");
    let path = format!("/api/v1/users/{}/update_remote_id/", unlisted.id);
    assert_eq!(app.block("b2b").control.count("POST", &path), 1);
    // The list cached a moment ago is forgotten: the user is listed now.
    let after = app.query(list, json!({ "id": unlisted.id })).await;
    let page = &after["data"]["b2bUsers"];
    assert_eq!(page["totalCount"], 1, "{after}");
    assert_eq!(page["edges"][0]["node"]["id"], unlisted.id);
    assert_eq!(page["edges"][0]["node"]["remoteId"], payload["b2bUser"]["remoteId"]);
}

#[tokio::test]
async fn register_sales_entity_creates_and_a_retry_is_already_registered() {
    let app = spawn_app().await;
    let list = "{ salesEntities(first: 100) { totalCount } }";
    let before = app.query(list, json!({})).await["data"]["salesEntities"]["totalCount"].clone();
    let input = json!({ "uniqueId": "entity-zephyr-1", "name": " Zephyr Freight ", "entityType": "organization", "email": "billing@zephyr.example.com" });
    app.clear_requests();
    let body = app.query(REGISTER_SALES_ENTITY, json!({ "input": input })).await;
    let payload = &body["data"]["registerSalesEntity"];
    assert_eq!(payload["status"], "CREATED", "{body}");
    assert_eq!(payload["salesEntity"]["id"], "entity-zephyr-1");
    assert_eq!(payload["salesEntity"]["email"], "billing@zephyr.example.com");
    assert_eq!(
        app.bodies("sales", "POST", "/entities/entity-zephyr-1/register/"),
        [
            json!({ "entity": { "name": "Zephyr Freight", "entity_type": "organization", "email": "billing@zephyr.example.com" } })
        ]
    );
    // The cached list is forgotten: the new entity counts at once.
    let after = app.query(list, json!({})).await;
    assert_eq!(
        after["data"]["salesEntities"]["totalCount"].as_u64(),
        before.as_u64().map(|n| n + 1),
        "{after}"
    );

    let retry = app.query(REGISTER_SALES_ENTITY, json!({ "input": input })).await;
    let payload = &retry["data"]["registerSalesEntity"];
    assert_eq!(payload["status"], "ALREADY_REGISTERED", "{retry}");
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(payload["salesEntity"]["name"], "Zephyr Freight");
    assert_eq!(
        app.block("sales")
            .control
            .count("POST", "/entities/entity-zephyr-1/register/"),
        2,
        "the retry asked Sales, which refused with 422, then the gateway read the entity"
    );
}

#[tokio::test]
async fn bad_sales_entities_are_refused_before_any_call() {
    let app = spawn_app().await;
    app.clear_requests();
    for (input, field) in [
        (json!({ "uniqueId": "", "name": "A" }), "uniqueId"),
        (json!({ "uniqueId": "..", "name": "A" }), "uniqueId"),
        (json!({ "uniqueId": "e-1", "name": "  " }), "name"),
        (
            json!({ "uniqueId": "e-1", "name": "A", "email": "not an email" }),
            "email",
        ),
    ] {
        let body = app.query(REGISTER_SALES_ENTITY, json!({ "input": input })).await;
        let payload = &body["data"]["registerSalesEntity"];
        assert_eq!(payload["userErrors"][0]["code"], "BAD_USER_INPUT", "{input} → {body}");
        assert_eq!(payload["userErrors"][0]["field"], json!(["input", field]));
        assert!(payload["status"].is_null() && payload["salesEntity"].is_null());
    }
    assert_eq!(app.total_requests(), 0);
}
