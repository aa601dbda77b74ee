//! The example operations of `examples/operations/` are what frontends copy: each is valid
//! against the schema, and each runs for real against the sandbox with the data and the
//! user errors a page would show.

use std::collections::BTreeSet;

use blocks_gateway::{
    cache::CacheSettings, callers::CallerSettings, playground::EXAMPLE_OPERATIONS, trusted_documents::validation_errors,
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, active_b2b_user, duplicate_group, invitable_person, spawn_app, spawn_app_with};

/// The document of the example operation `name`.
fn example(name: &str) -> &'static str {
    EXAMPLE_OPERATIONS
        .iter()
        .find(|example| example.name == name)
        .unwrap_or_else(|| panic!("no example operation {name}"))
        .document
}

/// Runs an example as a client would (document, operation name, variables) and returns
/// `data`, failing on any GraphQL error.
async fn run(app: &TestApp, name: &str, variables: Value) -> Value {
    let (status, body) = app
        .post_json(json!({ "query": example(name), "operationName": name, "variables": variables }))
        .await;
    assert_eq!(status, 200, "{name}: {body}");
    assert!(body.get("errors").is_none(), "{name}: {body}");
    body["data"].clone()
}

fn user_errors(payload: &Value) -> &Vec<Value> {
    payload["userErrors"].as_array().expect("userErrors is a list")
}

fn statuses(payload: &Value) -> BTreeSet<(String, String)> {
    payload["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| {
            (
                o["block"].as_str().unwrap_or("").to_owned(),
                o["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_embedded_examples_are_exactly_the_files_of_examples_operations() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/operations");
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("examples/operations exists") {
        let file = entry.expect("entry").file_name().to_string_lossy().into_owned();
        let stem = file
            .strip_suffix(".variables.json")
            .or_else(|| file.strip_suffix(".graphql"));
        on_disk.insert(stem.unwrap_or_else(|| panic!("unexpected file {file}")).to_owned());
    }
    let embedded: BTreeSet<String> = EXAMPLE_OPERATIONS.iter().map(|e| e.name.to_owned()).collect();
    assert_eq!(on_disk, embedded, "list new files in playground::EXAMPLE_OPERATIONS");
}

#[tokio::test]
async fn every_example_is_one_named_operation_valid_against_the_schema() {
    for example in EXAMPLE_OPERATIONS {
        let errors = validation_errors(example.document, None).await;
        assert!(errors.is_empty(), "{}: {errors:?}", example.name);
        let document = async_graphql::parser::parse_query(example.document).expect("parses");
        let names: Vec<String> = document
            .operations
            .iter()
            .map(|(n, _)| n.map(|n| n.to_string()).unwrap_or_default())
            .collect();
        assert_eq!(names, [example.name], "one operation, named like its file");
        let variables: Value = serde_json::from_str(example.variables).expect("sample variables are JSON");
        assert!(variables.is_object(), "{}", example.name);
    }
    // The check itself can fail: a renamed field is reported.
    let renamed = example("PersonList").replace("jobTitle", "jobRole");
    assert!(!validation_errors(&renamed, None).await.is_empty());
}

#[tokio::test]
async fn person_list_pages_through_persons_with_their_organizations() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    app.clear_requests();
    let first = run(&app, "PersonList", json!({ "first": 5 })).await;
    let persons = &first["persons"];
    let edges = persons["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 5);
    assert_eq!(persons["totalCount"], demo.persons.len());
    assert_eq!(persons["pageInfo"]["hasNextPage"], true);
    for edge in edges {
        let node = &edge["node"];
        let id = uuid::Uuid::parse_str(node["id"].as_str().expect("id")).expect("a UUID");
        let seeded = demo.person(id).expect("a seeded person");
        assert_eq!(node["name"], seeded.name.as_str());
        assert_eq!(
            node["organization"]["id"],
            json!(seeded.organization.map(|o| o.to_string()))
        );
    }
    app.assert_no_duplicate_requests();

    let after = persons["pageInfo"]["endCursor"].clone();
    let second = run(&app, "PersonList", json!({ "first": 5, "after": after })).await;
    let ids = |page: &Value| -> BTreeSet<String> {
        page["persons"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["id"].to_string())
            .collect()
    };
    assert!(ids(&first).is_disjoint(&ids(&second)), "pages overlap");

    let customers = run(
        &app,
        "PersonList",
        json!({ "first": 20, "filter": { "lifecycleStage": "CUSTOMER" } }),
    )
    .await;
    let stages: BTreeSet<&str> = customers["persons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["lifecycleStage"].as_str())
        .collect();
    assert_eq!(stages, BTreeSet::from(["CUSTOMER"]));
}

#[tokio::test]
async fn identity_profile_assembles_one_human_from_every_block() {
    let app = spawn_app().await;
    let seeded = &app.sandbox.demo.identities[0];
    // The identity link index knows the CRM person once indexed, as `serve` does at start.
    app.index_links().await;
    app.clear_requests();
    let data = run(&app, "IdentityProfile", json!({ "id": seeded.unique_id })).await;
    let identity = &data["identity"];
    assert_eq!(identity["id"], seeded.unique_id.as_str());
    assert_eq!(identity["email"], seeded.email.as_str());
    assert_eq!(identity["sales"]["firstName"], seeded.first_name.as_str());
    assert!(
        identity["customer"].is_object() && identity["search"].is_object(),
        "{identity}"
    );
    assert_eq!(
        identity["assets"]["assets"].as_array().map(Vec::len),
        Some(seeded.asset_count)
    );
    assert_eq!(identity["b2bUser"]["id"], json!(seeded.b2b_user_id));
    let person = seeded.person_id.expect("the first identity has a CRM person");
    assert_eq!(identity["person"]["id"], person.to_string(), "{identity}");
    let registered: BTreeSet<&str> = identity["registeredIn"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        registered.is_superset(&BTreeSet::from(["SALES", "CUSTOMER", "SEARCH", "ASSETS", "B2B", "CRM"])),
        "{registered:?}"
    );
    app.assert_no_duplicate_requests();
}

#[tokio::test]
async fn organization_page_shows_the_organization_its_entity_and_its_persons() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let (organization, members) = demo
        .organizations
        .iter()
        .filter(|o| o.has_sales_entity)
        .map(|o| (o, demo.persons.iter().filter(|p| p.organization == Some(o.id)).count()))
        .find(|(_, members)| (1..=20).contains(members))
        .expect("an organization with an entity and persons");
    let data = run(
        &app,
        "OrganizationPage",
        json!({ "id": organization.id.to_string(), "personsFirst": 20 }),
    )
    .await;
    let page = &data["organization"];
    assert_eq!(page["name"], organization.name.as_str());
    assert_eq!(page["salesEntity"]["uniqueId"], organization.id.to_string());
    assert_eq!(page["persons"]["edges"].as_array().map(Vec::len), Some(members));
    assert_eq!(page["persons"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn register_examples_create_in_every_block_asked() {
    let app = spawn_app().await;
    let data = run(
        &app,
        "RegisterIdentity",
        json!({ "input": { "email": "ada.lovelace@example.com", "firstName": "Ada", "lastName": "Lovelace", "blocks": ["SALES", "SEARCH", "ASSETS", "CRM"] } }),
    )
    .await;
    let payload = &data["registerIdentity"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    let created = |blocks: &[&str]| {
        blocks
            .iter()
            .map(|b| (b.to_string(), "CREATED".to_owned()))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(statuses(payload), created(&["SALES", "SEARCH", "ASSETS", "CRM"]));
    assert_eq!(payload["identity"]["email"], "ada.lovelace@example.com");

    let data = run(
        &app,
        "RegisterOrganization",
        json!({ "input": { "name": "Analytical Engines Ltd", "entityType": "organization" } }),
    )
    .await;
    let payload = &data["registerOrganization"];
    assert_eq!(statuses(payload), created(&["CRM", "SALES"]), "{payload}");
    assert_eq!(
        payload["organization"]["salesEntity"]["uniqueId"],
        payload["organization"]["id"]
    );
    let entity = format!(
        "/entities/{}/register",
        payload["organization"]["id"].as_str().expect("id")
    );
    assert_eq!(app.block("sales").control.count("POST", &entity), 1);
}

#[tokio::test]
async fn invite_and_link_examples_report_success_and_user_errors() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let invitable = invitable_person(demo);
    let data = run(
        &app,
        "InvitePerson",
        json!({ "input": { "personId": invitable.id.to_string(), "redirectTo": "https://app.example.com/welcome" } }),
    )
    .await;
    assert_eq!(
        data["invitePerson"]["invitation"]["email"],
        invitable.primary_email.as_str()
    );
    assert!(user_errors(&data["invitePerson"]).is_empty());

    let data = run(
        &app,
        "InvitePerson",
        json!({ "input": { "personId": demo.invitation.person_id.to_string() } }),
    )
    .await;
    assert_eq!(data["invitePerson"]["conflict"]["invitationId"], demo.invitation.id);
    assert_eq!(user_errors(&data["invitePerson"])[0]["code"], "INVITATION_EXISTS");

    let unbound = demo
        .persons
        .iter()
        .find(|p| p.platform_user.is_none())
        .expect("an unbound person");
    let user = demo.platform_member_user_ids[0];
    let data = run(
        &app,
        "LinkPersonToUser",
        json!({ "input": { "personId": unbound.id.to_string(), "userId": user } }),
    )
    .await;
    assert_eq!(data["linkPersonToUser"]["person"]["platformUserId"], user);
    let data = run(
        &app,
        "LinkPersonToUser",
        json!({ "input": { "personId": unbound.id.to_string(), "userId": demo.platform_member_user_ids[1] } }),
    )
    .await;
    assert_eq!(
        user_errors(&data["linkPersonToUser"])[0]["code"],
        "ALREADY_LINKED_TO_OTHER_USER"
    );
}

#[tokio::test]
async fn merge_persons_example_folds_a_duplicate_group() {
    let app = spawn_app().await;
    let (primary, duplicates) = duplicate_group(&app.sandbox.demo);
    let data = run(
        &app,
        "MergePersons",
        json!({ "input": { "primaryId": primary, "duplicateIds": duplicates } }),
    )
    .await;
    let payload = &data["mergePersons"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert_eq!(payload["primary"]["id"], primary);
    assert_eq!(payload["mergedIds"], json!(duplicates));
}

#[tokio::test]
async fn update_identity_example_updates_every_block_that_knows_it() {
    let app = spawn_app().await;
    let seeded = &app.sandbox.demo.identities[0];
    let data = run(
        &app,
        "UpdateIdentity",
        json!({ "input": { "id": seeded.unique_id, "displayName": "Ada L." } }),
    )
    .await;
    let payload = &data["updateIdentity"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert!(
        payload["outcomes"]
            .as_array()
            .expect("outcomes")
            .iter()
            .all(|o| o["status"] == "UPDATED"),
        "{payload}"
    );
    assert_eq!(payload["identity"]["displayName"], "Ada L.");
}

#[tokio::test]
async fn person_examples_create_update_and_delete() {
    let app = spawn_app().await;
    let data = run(&app, "CreatePerson", json!({ "input": { "name": "Charles Babbage", "primaryEmail": "charles@example.com", "lifecycleStage": "LEAD" } })).await;
    let person = &data["createPerson"]["person"];
    assert_eq!(person["name"], "Charles Babbage", "{data}");
    let id = person["id"].as_str().expect("id").to_owned();

    let data = run(
        &app,
        "UpdatePerson",
        json!({ "input": { "id": id, "jobTitle": "Head of Engineering", "lifecycleStage": "QUALIFIED" } }),
    )
    .await;
    assert_eq!(data["updatePerson"]["person"]["jobTitle"], "Head of Engineering");
    assert_eq!(data["updatePerson"]["person"]["lifecycleStage"], "QUALIFIED");

    let data = run(&app, "DeletePerson", json!({ "id": id })).await;
    assert_eq!(data["deletePerson"]["deletedId"], id.as_str());
    let data = run(&app, "DeletePerson", json!({ "id": id })).await;
    assert_eq!(user_errors(&data["deletePerson"])[0]["code"], "NOT_FOUND");
    assert!(data["deletePerson"]["deletedId"].is_null());
}

#[tokio::test]
async fn organization_examples_create_update_and_delete() {
    let app = spawn_app().await;
    let data = run(
        &app,
        "CreateOrganization",
        json!({ "input": { "name": "Difference Engines GmbH", "address": { "city": "Berlin" } } }),
    )
    .await;
    let organization = &data["createOrganization"]["organization"];
    assert_eq!(organization["address"], json!({ "city": "Berlin" }), "{data}");
    let id = organization["id"].as_str().expect("id").to_owned();

    let duplicate = run(
        &app,
        "CreateOrganization",
        json!({ "input": { "name": "Difference Engines GmbH" } }),
    )
    .await;
    assert_eq!(user_errors(&duplicate["createOrganization"])[0]["code"], "CONFLICT");

    let data = run(
        &app,
        "UpdateOrganization",
        json!({ "input": { "id": id, "address": { "city": "London" } } }),
    )
    .await;
    assert_eq!(
        data["updateOrganization"]["organization"]["address"],
        json!({ "city": "London" })
    );

    let data = run(&app, "DeleteOrganization", json!({ "id": id })).await;
    assert_eq!(data["deleteOrganization"]["deletedId"], id.as_str());
    assert_eq!(
        app.block("crm")
            .control
            .count("DELETE", &format!("/api/crm/organizations/{id}/")),
        1
    );
}

#[tokio::test]
async fn set_b2b_user_active_example_deactivates_a_user() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let user = active_b2b_user(demo);
    let data = run(&app, "SetB2BUserActive", json!({ "id": user.id, "active": false })).await;
    let payload = &data["setB2BUserActive"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert_eq!(payload["b2bUser"]["id"], user.id);
    assert_eq!(payload["b2bUser"]["isActive"], false);
}

/// The GraphiQL page at `/`.
async fn graphiql(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("http://{}/", app.address))
        .send()
        .await
        .expect("the page answers");
    assert_eq!(response.status(), 200);
    response.text().await.expect("HTML")
}

#[tokio::test]
async fn graphiql_opens_with_every_example_as_a_tab() {
    let app = spawn_app().await;
    let page = graphiql(&app).await;
    assert!(page.contains(r#"<script id="graphiql-config" type="application/json">"#));
    for example in EXAMPLE_OPERATIONS {
        let document = serde_json::to_string(example.document)
            .expect("JSON string")
            .replace('<', "\\u003c");
        assert!(page.contains(&document), "{} is not a tab", example.name);
    }
    assert!(!page.contains("Bearer"), "open sandbox: no key to fill in");
}

#[tokio::test]
async fn graphiql_prefills_the_caller_header_when_callers_need_a_key() {
    let app = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::service(&["playground-secret-key"]),
        CacheSettings::default(),
    )
    .await;
    let page = graphiql(&app).await;
    assert!(
        page.contains("Bearer \\u003cyour API key>"),
        "no Authorization placeholder"
    );
    assert!(!page.contains("playground-secret-key"));
}

#[tokio::test]
async fn link_index_examples_link_find_and_unlink_an_identity() {
    let app = spawn_app().await;
    // A fresh identity, registered (the index records its email) in Sales.
    let registered = app
        .query(
            "mutation { registerIdentity(input: { uniqueId: \"example-link-1\", email: \"Link.Example@example.com\", blocks: [SALES] }) { outcomes { status } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        registered["data"]["registerIdentity"]["outcomes"][0]["status"], "CREATED",
        "{registered}"
    );
    let person = app
        .sandbox
        .demo
        .persons
        .iter()
        .find(|p| p.unique_id.is_empty() && p.duplicate_group.is_none() && p.platform_user.is_none())
        .expect("a person no identity claims")
        .id
        .to_string();

    let data = run(
        &app,
        "LinkIdentity",
        json!({ "input": { "identityId": "example-link-1", "personId": person } }),
    )
    .await;
    let payload = &data["linkIdentity"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert_eq!(payload["link"]["block"], "CRM");
    assert_eq!(payload["link"]["externalId"], person.as_str());
    assert_eq!(payload["identity"]["person"]["id"], person.as_str());

    let data = run(&app, "IdentityByEmail", json!({ "email": "LINK.EXAMPLE@EXAMPLE.COM" })).await;
    let found = &data["identityByEmail"];
    assert_eq!(found["id"], "example-link-1", "{data}");
    assert_eq!(found["person"]["id"], person.as_str());

    let data = run(
        &app,
        "UnlinkIdentity",
        json!({ "input": { "identityId": "example-link-1", "personId": person } }),
    )
    .await;
    let payload = &data["unlinkIdentity"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert_eq!(payload["removed"]["externalId"], person.as_str());
    assert_eq!(payload["identity"]["links"], json!([]));
}

/// The sample variables of the example `name`, as a developer first runs it.
fn sample_variables(name: &str) -> Value {
    let example = EXAMPLE_OPERATIONS
        .iter()
        .find(|example| example.name == name)
        .unwrap_or_else(|| panic!("no example operation {name}"));
    serde_json::from_str(example.variables).expect("sample variables are JSON")
}

#[tokio::test]
async fn block_list_examples_run_with_their_sample_variables() {
    let app = spawn_app().await;
    let data = run(&app, "B2BUsers", sample_variables("B2BUsers")).await;
    let users = data["b2bUsers"]["edges"].as_array().expect("edges");
    assert!(!users.is_empty(), "{data}");
    for node in users.iter().map(|e| &e["node"]) {
        assert_eq!(node["division"]["divisionType"], "main");
        assert_eq!(node["isActive"], true);
    }
    let data = run(&app, "SalesEntities", sample_variables("SalesEntities")).await;
    let demo = &app.sandbox.demo;
    let entities =
        demo.organizations.iter().filter(|o| o.has_sales_entity).count() + demo.standalone_sales_entity_ids.len();
    assert_eq!(data["salesEntities"]["totalCount"], entities, "{data}");
    assert_eq!(
        data["salesEntities"]["edges"].as_array().map(Vec::len),
        Some(entities.min(20))
    );
    let data = run(&app, "AssetsUsers", sample_variables("AssetsUsers")).await;
    let in_assets = app.sandbox.demo.identities.iter().filter(|i| i.in_assets).count();
    assert_eq!(data["assetsUsers"]["totalCount"], in_assets, "{data}");
}

#[tokio::test]
async fn organization_persons_example_filters_within_the_organization() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let organization = demo
        .organizations
        .iter()
        .find(|o| {
            demo.persons
                .iter()
                .any(|p| p.organization == Some(o.id) && p.lifecycle_stage == "lead")
        })
        .expect("an organization with a lead");
    let data = run(
        &app,
        "OrganizationPersons",
        json!({ "id": organization.id.to_string(), "filter": { "lifecycleStage": "LEAD" } }),
    )
    .await;
    let page = &data["organization"];
    assert_eq!(page["platform"], demo.crm_platform_id);
    let leads = demo
        .persons
        .iter()
        .filter(|p| p.organization == Some(organization.id) && p.lifecycle_stage == "lead")
        .count();
    assert_eq!(page["persons"]["totalCount"], leads, "{data}");
}

#[tokio::test]
async fn b2b_write_examples_update_a_user_and_assign_a_remote_id() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let user = active_b2b_user(demo);
    let data = run(
        &app,
        "UpdateB2BUser",
        json!({ "id": user.id, "input": { "phoneNumber": "5554443322" } }),
    )
    .await;
    let payload = &data["updateB2BUser"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert_eq!(payload["b2bUser"]["phoneNumber"], "5554443322");

    let unlisted = demo
        .b2b_users
        .iter()
        .find(|u| !u.listed)
        .expect("a user without a remote id");
    let data = run(&app, "AssignB2BRemoteId", json!({ "id": unlisted.id })).await;
    let payload = &data["assignB2BRemoteId"];
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert!(payload["b2bUser"]["remoteId"].is_i64(), "{payload}");
}

#[tokio::test]
async fn register_sales_entity_example_is_idempotent() {
    let app = spawn_app().await;
    let variables = sample_variables("RegisterSalesEntity");
    let data = run(&app, "RegisterSalesEntity", variables.clone()).await;
    assert_eq!(data["registerSalesEntity"]["status"], "CREATED", "{data}");
    let data = run(&app, "RegisterSalesEntity", variables).await;
    assert_eq!(data["registerSalesEntity"]["status"], "ALREADY_REGISTERED", "{data}");
    assert_eq!(
        data["registerSalesEntity"]["salesEntity"]["id"],
        "entity-zephyr-freight"
    );
}

#[tokio::test]
async fn preview_merge_example_answers_without_merging() {
    let app = spawn_app().await;
    let group = app.sandbox.demo.duplicate_groups[0].clone();
    let (primary, duplicates) = group.split_first().expect("two or more");
    let duplicates: Vec<String> = duplicates.iter().map(ToString::to_string).collect();
    let data = run(
        &app,
        "PreviewMergePersons",
        json!({ "primaryId": primary.to_string(), "duplicateIds": duplicates }),
    )
    .await;
    let payload = &data["mergePersons"];
    assert_eq!(payload["dryRun"], true);
    assert!(user_errors(payload).is_empty(), "{payload}");
    assert_eq!(payload["mergedIds"], json!(duplicates));
    assert_eq!(app.block("crm").control.count("POST", "/api/crm/persons/merge/"), 0);
}
