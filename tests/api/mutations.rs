//! Mutations over real HTTP: every documented upstream outcome, what the blocks received,
//! retries completing partial work, cache invalidation, and no secret in any answer or log.

use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, active_b2b_user, invitable_person, spawn_app},
    log_capture,
};

const REGISTER: &str = r#"
mutation ($input: RegisterIdentityInput!) {
  registerIdentity(input: $input) {
    identity { id email sales { email } search { email } assets { email } }
    outcomes { block status error { code message field } }
    userErrors { field code message }
  }
}"#;

fn outcome<'a>(payload: &'a Value, block: &str) -> &'a Value {
    payload["outcomes"]
        .as_array()
        .and_then(|outcomes| outcomes.iter().find(|o| o["block"] == block))
        .unwrap_or_else(|| panic!("no {block} outcome in {payload}"))
}

fn body_of(app: &TestApp, block: &str, method: &str, path_contains: &str) -> Value {
    let request = app
        .block(block)
        .control
        .requests()
        .into_iter()
        .find(|r| r.method == method && r.path.contains(path_contains))
        .unwrap_or_else(|| panic!("{block} saw no {method} {path_contains}"));
    serde_json::from_str(&request.body).expect("JSON body")
}

#[tokio::test]
async fn register_identity_creates_in_the_default_blocks() {
    let app = spawn_app().await;
    app.clear_requests();
    let input = json!({ "uniqueId": "reg-default-1", "email": "Ada.Lovelace@example.com", "firstName": "Ada", "lastName": "Lovelace", "displayName": "Ada L." });
    let body = app.query(REGISTER, json!({ "input": input })).await;
    let payload = &body["data"]["registerIdentity"];
    assert!(body.get("errors").is_none(), "{body}");
    for block in ["SALES", "SEARCH", "ASSETS"] {
        assert_eq!(outcome(payload, block)["status"], "CREATED", "{payload}");
    }
    assert_eq!(payload["outcomes"].as_array().map(Vec::len), Some(3));
    assert_eq!(payload["identity"]["id"], "reg-default-1");
    assert_eq!(payload["identity"]["sales"]["email"], "Ada.Lovelace@example.com");
    assert_eq!(payload["identity"]["search"]["email"], "Ada.Lovelace@example.com");
    assert_eq!(
        body_of(&app, "sales", "POST", "/users/reg-default-1/register"),
        json!({ "user": { "email": "Ada.Lovelace@example.com", "first_name": "Ada", "last_name": "Lovelace", "display_name": "Ada L." } })
    );
    assert_eq!(
        body_of(&app, "search", "POST", "/identities/reg-default-1/register"),
        json!({ "user": { "email": "Ada.Lovelace@example.com", "name": "Ada L." } })
    );
    assert_eq!(
        app.block("b2b").control.request_count() + app.block("crm").control.request_count(),
        0
    );
}

#[tokio::test]
async fn a_generated_id_is_a_uuid() {
    let app = spawn_app().await;
    let body = app
        .query(
            REGISTER,
            json!({ "input": { "email": "gen@example.com", "blocks": ["SEARCH"] } }),
        )
        .await;
    let id = body["data"]["registerIdentity"]["identity"]["id"].as_str().expect("id");
    assert_eq!(
        uuid::Uuid::parse_str(id).map(|u| u.get_version_num()).ok(),
        Some(4),
        "{body}"
    );
}

#[tokio::test]
async fn a_partial_registration_is_completed_by_a_retry() {
    let app = spawn_app().await;
    let input = json!({ "uniqueId": "reg-retry-1", "email": "retry@example.com", "displayName": "Retry" });
    app.block("search").control.set_failure(1.0, 503);
    let first = app.query(REGISTER, json!({ "input": input })).await;
    let payload = &first["data"]["registerIdentity"];
    assert_eq!(outcome(payload, "SALES")["status"], "CREATED");
    assert_eq!(outcome(payload, "ASSETS")["status"], "CREATED");
    assert_eq!(outcome(payload, "SEARCH")["status"], "FAILED");
    assert_eq!(outcome(payload, "SEARCH")["error"]["code"], "UPSTREAM_UNAVAILABLE");

    app.block("search").control.reset_faults();
    app.clear_requests();
    let retry = app.query(REGISTER, json!({ "input": input })).await;
    let payload = &retry["data"]["registerIdentity"];
    assert_eq!(outcome(payload, "SALES")["status"], "ALREADY_REGISTERED", "{payload}");
    assert_eq!(outcome(payload, "ASSETS")["status"], "ALREADY_REGISTERED");
    assert_eq!(outcome(payload, "SEARCH")["status"], "CREATED");
    // Sales refused with 422; the gateway confirmed with a read before saying so.
    assert_eq!(
        app.block("sales").control.count("POST", "/users/reg-retry-1/register"),
        1
    );
    assert!(app.block("sales").control.count("GET", "/users/reg-retry-1") >= 1);
    assert_eq!(payload["identity"]["search"]["email"], "retry@example.com");
}

#[tokio::test]
async fn registering_a_known_identity_again_reports_already_registered() {
    let app = spawn_app().await;
    let existing = app
        .sandbox
        .demo
        .identities
        .iter()
        .find(|i| i.in_sales)
        .expect("a Sales identity")
        .clone();
    let body = app
        .query(
            REGISTER,
            json!({ "input": { "uniqueId": "reg-other-id", "email": "fresh@example.com", "blocks": ["SALES"] } }),
        )
        .await;
    assert_eq!(outcome(&body["data"]["registerIdentity"], "SALES")["status"], "CREATED");
    // The same id again is already registered; a different id is created.
    let again = app
        .query(
            REGISTER,
            json!({ "input": { "uniqueId": existing.unique_id, "email": existing.email, "blocks": ["SALES"] } }),
        )
        .await;
    assert_eq!(
        outcome(&again["data"]["registerIdentity"], "SALES")["status"],
        "ALREADY_REGISTERED"
    );
}

#[tokio::test]
async fn registering_everywhere_sends_the_crm_id_and_the_b2b_password_only_to_b2b() {
    let logs = log_capture::install();
    let app = spawn_app().await;
    let division = app
        .sandbox
        .demo
        .b2b_divisions
        .iter()
        .find(|d| d.is_active)
        .expect("active division")
        .id;
    let password = "Pw-never-echo-314159";
    let input = json!({
        "uniqueId": "reg-all-1", "email": "grace.hopper@example.com", "firstName": "Grace", "lastName": "Hopper",
        "phone": "+15550001", "companyName": "Navy", "blocks": ["SALES", "CUSTOMER", "SEARCH", "ASSETS", "CRM", "B2B"],
        "b2b": { "password": password, "division": division }
    });
    let body = app.query(REGISTER, json!({ "input": input })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let payload = &body["data"]["registerIdentity"];
    for block in ["SALES", "CUSTOMER", "SEARCH", "ASSETS", "CRM", "B2B"] {
        assert_eq!(outcome(payload, block)["status"], "CREATED", "{block}: {payload}");
    }
    let person = body_of(&app, "crm", "POST", "/persons/");
    assert_eq!(person["unique_id"], "reg-all-1");
    assert_eq!(person["name"], "Grace Hopper");
    assert_eq!(person["primary_email"], "grace.hopper@example.com");
    let b2b = body_of(&app, "b2b", "POST", "/api/v1/users/");
    assert_eq!(b2b["password"], password);
    assert_eq!(b2b["division"], division);

    // A retry finds everything in place, without creating duplicates.
    app.clear_requests();
    let retry = app.query(REGISTER, json!({ "input": input })).await;
    for block in ["SALES", "CUSTOMER", "SEARCH", "ASSETS", "CRM", "B2B"] {
        assert_eq!(
            outcome(&retry["data"]["registerIdentity"], block)["status"],
            "ALREADY_REGISTERED",
            "{block}: {retry}"
        );
    }
    assert!(!body.to_string().contains(password) && !retry.to_string().contains(password));
    assert!(!logs.contents().contains(password), "the password reached the log");
}

#[tokio::test]
async fn bad_registration_input_is_refused_before_any_block_is_called() {
    let app = spawn_app().await;
    app.clear_requests();
    let body = app
        .query(
            REGISTER,
            json!({ "input": { "email": "not-an-email", "uniqueId": " " } }),
        )
        .await;
    let errors = body["data"]["registerIdentity"]["userErrors"]
        .as_array()
        .expect("user errors")
        .clone();
    let fields: Vec<&Value> = errors.iter().map(|e| &e["field"]).collect();
    assert!(fields.contains(&&json!(["input", "email"])), "{body}");
    assert!(fields.contains(&&json!(["input", "uniqueId"])), "{body}");
    assert!(errors.iter().all(|e| e["code"] == "BAD_USER_INPUT"));
    let b2b = app
        .query(
            REGISTER,
            json!({ "input": { "email": "b@example.com", "blocks": ["B2B"] } }),
        )
        .await;
    let fields: Vec<Value> = b2b["data"]["registerIdentity"]["userErrors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert!(
        fields.contains(&json!(["input", "b2b"])) && fields.contains(&json!(["input", "firstName"])),
        "{b2b}"
    );
    assert_eq!(app.total_requests(), 0);
}

const REGISTER_ORGANIZATION: &str = r#"
mutation ($input: RegisterOrganizationInput!) {
  registerOrganization(input: $input) {
    organization { id name salesEntity { uniqueId name } }
    outcomes { block status error { code } }
    userErrors { field code message }
  }
}"#;

#[tokio::test]
async fn register_organization_creates_the_crm_organization_then_its_sales_entity() {
    let app = spawn_app().await;
    let body = app
        .query(
            REGISTER_ORGANIZATION,
            json!({ "input": { "name": "Analytical Engines Ltd", "entityType": "organization" } }),
        )
        .await;
    let payload = &body["data"]["registerOrganization"];
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(outcome(payload, "CRM")["status"], "CREATED");
    assert_eq!(outcome(payload, "SALES")["status"], "CREATED");
    let id = payload["organization"]["id"].as_str().expect("id").to_owned();
    assert_eq!(payload["organization"]["salesEntity"]["uniqueId"], id.as_str());
    assert_eq!(
        body_of(&app, "sales", "POST", &format!("/entities/{id}/register")),
        json!({ "entity": { "name": "Analytical Engines Ltd", "entity_type": "organization" } })
    );

    // The same name again is a conflict, and no entity is registered for it.
    app.clear_requests();
    let duplicate = app
        .query(
            REGISTER_ORGANIZATION,
            json!({ "input": { "name": "Analytical Engines Ltd" } }),
        )
        .await;
    let payload = &duplicate["data"]["registerOrganization"];
    assert_eq!(payload["userErrors"][0]["code"], "CONFLICT", "{duplicate}");
    assert_eq!(payload["userErrors"][0]["field"], json!(["input", "name"]));
    assert_eq!(outcome(payload, "SALES")["status"], "SKIPPED");
    assert_eq!(app.block("sales").control.request_count(), 0);
}

#[tokio::test]
async fn a_failed_sales_entity_is_completed_by_passing_the_organization_id() {
    let app = spawn_app().await;
    app.block("sales").control.set_failure(1.0, 500);
    let first = app
        .query(REGISTER_ORGANIZATION, json!({ "input": { "name": "Half Done Inc" } }))
        .await;
    let payload = &first["data"]["registerOrganization"];
    assert_eq!(outcome(payload, "CRM")["status"], "CREATED");
    assert_eq!(outcome(payload, "SALES")["status"], "FAILED");
    let id = payload["organization"]["id"].as_str().expect("id").to_owned();
    app.block("sales").control.reset_faults();
    let retry = app
        .query(
            REGISTER_ORGANIZATION,
            json!({ "input": { "name": "Half Done Inc", "organizationId": id } }),
        )
        .await;
    let payload = &retry["data"]["registerOrganization"];
    assert_eq!(outcome(payload, "CRM")["status"], "ALREADY_REGISTERED", "{retry}");
    assert_eq!(outcome(payload, "SALES")["status"], "CREATED");
    assert_eq!(payload["organization"]["salesEntity"]["uniqueId"], id.as_str());
}

const INVITE: &str = r#"
mutation ($input: InvitePersonInput!) {
  invitePerson(input: $input) {
    invitation { id email platformKey autoAccept active redirectTo createdAt }
    conflict { invitationId personId platformKey message }
    userErrors { field code message }
  }
}"#;

#[tokio::test]
async fn invite_person_reports_each_documented_outcome() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let invitable = invitable_person(demo);
    let body = app
        .query(INVITE, json!({ "input": { "personId": invitable.id.to_string(), "isAdmin": true, "enrollmentConfig": { "courses": [1] }, "redirectTo": "https://app.example.com/welcome" } }))
        .await;
    let invitation = &body["data"]["invitePerson"]["invitation"];
    assert_eq!(invitation["email"], invitable.primary_email.as_str(), "{body}");
    assert_eq!(invitation["platformKey"], demo.crm_platform_key.as_str());
    assert_eq!(
        body_of(&app, "crm", "POST", "/invite/"),
        json!({ "is_admin": true, "enrollment_config": { "courses": [1] }, "redirect_to": "https://app.example.com/welcome" })
    );

    let conflict = app
        .query(
            INVITE,
            json!({ "input": { "personId": demo.invitation.person_id.to_string() } }),
        )
        .await;
    assert_eq!(
        conflict["data"]["invitePerson"]["conflict"]["invitationId"], demo.invitation.id,
        "{conflict}"
    );
    assert_eq!(
        conflict["data"]["invitePerson"]["userErrors"][0]["code"],
        "INVITATION_EXISTS"
    );

    let cases = [
        (
            demo.persons
                .iter()
                .find(|p| p.primary_email.is_empty())
                .map(|p| p.id.to_string()),
            "NO_PRIMARY_EMAIL",
        ),
        (
            demo.persons
                .iter()
                .find(|p| p.platform_user.is_some() && !p.primary_email.is_empty())
                .map(|p| p.id.to_string()),
            "ALREADY_LINKED",
        ),
        (Some("00000000-0000-4000-8000-00000000dead".to_owned()), "NOT_FOUND"),
    ];
    for (person, code) in cases {
        let person = person.unwrap_or_else(|| panic!("sandbox has a person for {code}"));
        let body = app.query(INVITE, json!({ "input": { "personId": person } })).await;
        assert_eq!(body["data"]["invitePerson"]["userErrors"][0]["code"], code, "{body}");
        assert!(body["data"]["invitePerson"]["invitation"].is_null());
    }
}

const LINK: &str = r#"
mutation ($input: LinkPersonToUserInput!) {
  linkPersonToUser(input: $input) { person { id platformUserId active } userErrors { field code message } }
}"#;

#[tokio::test]
async fn link_person_to_user_is_idempotent_and_never_reports_a_refused_link_as_success() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let person = demo
        .persons
        .iter()
        .find(|p| p.platform_user.is_none())
        .expect("unbound person")
        .id
        .to_string();
    let [first_user, second_user] = [demo.platform_member_user_ids[0], demo.platform_member_user_ids[1]];
    // Warm the cache with the unbound person.
    app.query(
        "query ($id: ID!) { person(id: $id) { platformUserId } }",
        json!({ "id": person }),
    )
    .await;

    let linked = app
        .query(LINK, json!({ "input": { "personId": person, "userId": first_user } }))
        .await;
    assert_eq!(
        linked["data"]["linkPersonToUser"]["person"]["platformUserId"], first_user,
        "{linked}"
    );
    assert_eq!(linked["data"]["linkPersonToUser"]["userErrors"], json!([]));
    let again = app
        .query(LINK, json!({ "input": { "personId": person, "userId": first_user } }))
        .await;
    assert_eq!(again["data"]["linkPersonToUser"]["userErrors"], json!([]));

    let refused = app
        .query(LINK, json!({ "input": { "personId": person, "userId": second_user } }))
        .await;
    let payload = &refused["data"]["linkPersonToUser"];
    assert_eq!(
        payload["userErrors"][0]["code"], "ALREADY_LINKED_TO_OTHER_USER",
        "{refused}"
    );
    assert!(
        payload["userErrors"][0]["message"]
            .as_str()
            .expect("message")
            .contains(&first_user.to_string())
    );
    assert_eq!(payload["person"]["platformUserId"], first_user);

    let read = app
        .query(
            "query ($id: ID!) { person(id: $id) { platformUserId } }",
            json!({ "id": person }),
        )
        .await;
    assert_eq!(
        read["data"]["person"]["platformUserId"], first_user,
        "the cached unbound person was not forgotten"
    );

    let other = demo
        .persons
        .iter()
        .find(|p| p.platform_user.is_none() && p.id.to_string() != person)
        .expect("another")
        .id
        .to_string();
    let forbidden = app
        .query(
            LINK,
            json!({ "input": { "personId": other, "userId": demo.non_member_user_id } }),
        )
        .await;
    assert_eq!(
        forbidden["data"]["linkPersonToUser"]["userErrors"][0]["code"],
        "FORBIDDEN"
    );
    assert!(
        forbidden["data"]["linkPersonToUser"]["userErrors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("invite")
    );
}

const MERGE: &str = r#"
mutation ($input: MergePersonsInput!) {
  mergePersons(input: $input) { primary { id active } mergedIds reparented userErrors { field code message } }
}"#;

#[tokio::test]
async fn merge_input_is_validated_before_any_call() {
    let app = spawn_app().await;
    app.clear_requests();
    let primary = "11111111-1111-4111-8111-111111111111";
    let many: Vec<String> = (0..51).map(|n| format!("22222222-2222-4222-8222-{n:012}")).collect();
    let cases = [
        json!({ "primaryId": primary, "duplicateIds": [] }),
        json!({ "primaryId": primary, "duplicateIds": [primary] }),
        json!({ "primaryId": primary, "duplicateIds": ["33333333-3333-4333-8333-333333333333", "33333333-3333-4333-8333-333333333333"] }),
        json!({ "primaryId": "nope", "duplicateIds": ["33333333-3333-4333-8333-333333333333"] }),
        json!({ "primaryId": primary, "duplicateIds": ["not-a-uuid"] }),
        json!({ "primaryId": primary, "duplicateIds": many }),
    ];
    for input in cases {
        let body = app.query(MERGE, json!({ "input": input })).await;
        let errors = &body["data"]["mergePersons"]["userErrors"];
        assert_eq!(errors[0]["code"], "BAD_USER_INPUT", "{input} → {body}");
        assert!(body["data"]["mergePersons"]["primary"].is_null());
    }
    assert_eq!(app.total_requests(), 0);
}

#[tokio::test]
async fn merge_returns_the_fresh_primary_and_forgets_the_duplicates() {
    let app = spawn_app().await;
    let group = app.sandbox.demo.duplicate_groups[0].clone();
    let (primary, duplicates) = (
        group[0].to_string(),
        group[1..].iter().map(|id| id.to_string()).collect::<Vec<_>>(),
    );
    // Warm the cache with every person of the group.
    for id in &group {
        app.query(
            "query ($id: ID!) { person(id: $id) { active } }",
            json!({ "id": id.to_string() }),
        )
        .await;
    }
    app.clear_requests();
    let body = app
        .query(
            MERGE,
            json!({ "input": { "primaryId": primary, "duplicateIds": duplicates } }),
        )
        .await;
    let payload = &body["data"]["mergePersons"];
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(payload["primary"]["id"], primary.as_str());
    let merged: Vec<String> = payload["mergedIds"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(merged, duplicates);
    assert!(payload["reparented"].is_object());
    assert_eq!(
        body_of(&app, "crm", "POST", "/persons/merge/"),
        json!({ "primary_id": primary, "duplicate_ids": duplicates })
    );
    assert!(
        app.block("crm")
            .control
            .count("GET", &format!("/api/crm/persons/{primary}/"))
            == 1,
        "the primary was not read fresh"
    );
    for id in &duplicates {
        let read = app
            .query("query ($id: ID!) { person(id: $id) { active } }", json!({ "id": id }))
            .await;
        assert_eq!(read["data"]["person"]["active"], false, "{read}");
    }
    let unknown = app.query(MERGE, json!({ "input": { "primaryId": "00000000-0000-4000-8000-00000000beef", "duplicateIds": [duplicates[0]] } })).await;
    assert_eq!(
        unknown["data"]["mergePersons"]["userErrors"][0]["code"], "NOT_FOUND",
        "{unknown}"
    );
}

#[tokio::test]
async fn update_person_sends_only_the_fields_given_and_is_visible_at_once() {
    let app = spawn_app().await;
    let person = app
        .sandbox
        .demo
        .persons
        .iter()
        .find(|p| p.organization.is_some())
        .expect("person with organization")
        .id
        .to_string();
    app.query(
        "query ($id: ID!) { person(id: $id) { jobTitle organization { id } } }",
        json!({ "id": person }),
    )
    .await;
    app.clear_requests();
    let body = app
        .query(
            "mutation ($input: UpdatePersonInput!) { updatePerson(input: $input) { person { jobTitle organization { id } } userErrors { code } } }",
            json!({ "input": { "id": person, "jobTitle": "Chief Engineer", "organizationId": null } }),
        )
        .await;
    assert_eq!(
        body["data"]["updatePerson"]["person"]["jobTitle"], "Chief Engineer",
        "{body}"
    );
    assert!(body["data"]["updatePerson"]["person"]["organization"].is_null());
    assert_eq!(
        body_of(&app, "crm", "PATCH", &person),
        json!({ "job_title": "Chief Engineer", "organization": null })
    );
    let read = app
        .query(
            "query ($id: ID!) { person(id: $id) { jobTitle } }",
            json!({ "id": person }),
        )
        .await;
    assert_eq!(read["data"]["person"]["jobTitle"], "Chief Engineer");
}

#[tokio::test]
async fn persons_and_organizations_are_created_and_deleted() {
    let app = spawn_app().await;
    let created = app
        .query(
            r#"mutation { createOrganization(input: { name: "Difference Engines", ownerId: 3 }) { organization { id name ownerId } userErrors { code } } }"#,
            json!({}),
        )
        .await;
    let organization = created["data"]["createOrganization"]["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let person = app
        .query(
            "mutation ($org: ID!) { createPerson(input: { name: \"Charles\", primaryEmail: \"charles@example.com\", organizationId: $org, lifecycleStage: QUALIFIED }) { person { id name lifecycleStage organization { name } } userErrors { code } } }",
            json!({ "org": organization }),
        )
        .await;
    let payload = &person["data"]["createPerson"]["person"];
    assert_eq!(payload["organization"]["name"], "Difference Engines", "{person}");
    assert_eq!(payload["lifecycleStage"], "QUALIFIED");
    let person_id = payload["id"].as_str().expect("id").to_owned();

    let listed = app
        .query(
            "query ($id: ID!) { organization(id: $id) { persons { totalCount } } }",
            json!({ "id": organization }),
        )
        .await;
    assert_eq!(listed["data"]["organization"]["persons"]["totalCount"], 1);

    let renamed = app
        .query("mutation ($id: ID!) { updateOrganization(input: { id: $id, name: \"Difference Engines II\", ownerId: null }) { organization { name ownerId } } }", json!({ "id": organization }))
        .await;
    assert_eq!(
        renamed["data"]["updateOrganization"]["organization"],
        json!({ "name": "Difference Engines II", "ownerId": null })
    );

    let deleted = app
        .query(
            "mutation ($id: ID!) { deleteOrganization(id: $id) { deletedId userErrors { code } } }",
            json!({ "id": organization }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteOrganization"]["deletedId"],
        organization.as_str()
    );
    let orphan = app
        .query(
            "query ($id: ID!) { person(id: $id) { organization { id } } }",
            json!({ "id": person_id }),
        )
        .await;
    assert!(orphan["data"]["person"]["organization"].is_null(), "{orphan}");

    let gone = app
        .query(
            "mutation ($id: ID!) { deletePerson(id: $id) { deletedId } }",
            json!({ "id": person_id }),
        )
        .await;
    assert_eq!(gone["data"]["deletePerson"]["deletedId"], person_id.as_str());
    let again = app
        .query(
            "mutation ($id: ID!) { deletePerson(id: $id) { deletedId userErrors { code } } }",
            json!({ "id": person_id }),
        )
        .await;
    assert_eq!(again["data"]["deletePerson"]["userErrors"][0]["code"], "NOT_FOUND");
    let read = app
        .query(
            "query ($id: ID!) { person(id: $id) { id } }",
            json!({ "id": person_id }),
        )
        .await;
    assert!(read["data"]["person"].is_null());
}

#[tokio::test]
async fn a_duplicate_organization_name_is_a_conflict() {
    let app = spawn_app().await;
    let name = app.sandbox.demo.organizations[0].name.clone();
    let body = app
        .query("mutation ($name: String!) { createOrganization(input: { name: $name }) { organization { id } userErrors { field code } } }", json!({ "name": name }))
        .await;
    assert_eq!(
        body["data"]["createOrganization"]["userErrors"][0],
        json!({ "field": ["input", "name"], "code": "CONFLICT" })
    );
}

#[tokio::test]
async fn update_identity_reaches_every_block_that_knows_it() {
    let app = spawn_app().await;
    let demo = app
        .sandbox
        .demo
        .identities
        .iter()
        .find(|i| i.in_sales && i.in_search && i.in_assets)
        .expect("everywhere")
        .clone();
    app.query(
        "query ($id: ID!) { identity(id: $id) { displayName } }",
        json!({ "id": demo.unique_id }),
    )
    .await;
    let body = app
        .query(
            "mutation ($id: ID!) { updateIdentity(input: { id: $id, displayName: \"New Name\" }) { identity { displayName search { name } } outcomes { block status } userErrors { code } } }",
            json!({ "id": demo.unique_id }),
        )
        .await;
    let payload = &body["data"]["updateIdentity"];
    for block in ["SALES", "SEARCH", "ASSETS"] {
        assert_eq!(outcome(payload, block)["status"], "UPDATED", "{body}");
    }
    assert_eq!(payload["identity"]["displayName"], "New Name");
    assert_eq!(payload["identity"]["search"]["name"], "New Name");
    assert_eq!(
        body_of(&app, "search", "PUT", &demo.unique_id),
        json!({ "user": { "name": "New Name" } })
    );
}

#[tokio::test]
async fn set_b2b_user_active_changes_the_user_and_reports_refusals() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let active = active_b2b_user(demo);
    let body = app.query("mutation ($id: Int!) { setB2BUserActive(id: $id, active: false) { b2bUser { isActive } userErrors { code } } }", json!({ "id": active.id })).await;
    assert_eq!(body["data"]["setB2BUserActive"]["b2bUser"]["isActive"], false, "{body}");
    let read = app
        .query(
            "query ($id: Int!) { b2bUser(id: $id) { isActive } }",
            json!({ "id": active.id }),
        )
        .await;
    assert_eq!(read["data"]["b2bUser"]["isActive"], false);
    if let Some(stuck) = demo
        .b2b_users
        .iter()
        .find(|u| u.division_id == demo.inactive_division_id)
    {
        let refused = app
            .query(
                "mutation ($id: Int!) { setB2BUserActive(id: $id, active: true) { userErrors { code } } }",
                json!({ "id": stuck.id }),
            )
            .await;
        assert_eq!(
            refused["data"]["setB2BUserActive"]["userErrors"][0]["code"], "BAD_USER_INPUT",
            "{refused}"
        );
    }
}

#[tokio::test]
async fn a_block_that_is_down_during_a_mutation_is_reported_in_the_payload() {
    let app = spawn_app().await;
    app.block("assets").control.set_hang(false);
    app.block("assets").control.set_failure(1.0, 502);
    let body = app
        .query(
            REGISTER,
            json!({ "input": { "uniqueId": "reg-down-1", "email": "down@example.com" } }),
        )
        .await;
    let payload = &body["data"]["registerIdentity"];
    assert_eq!(outcome(payload, "ASSETS")["status"], "FAILED");
    assert_eq!(outcome(payload, "ASSETS")["error"]["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(outcome(payload, "SALES")["status"], "CREATED");
}

#[tokio::test]
async fn a_block_timing_out_during_a_mutation_is_reported_in_the_payload() {
    let app = crate::helpers::spawn_app_with(
        |settings| settings.gateway.http.request_timeout = std::time::Duration::from_millis(300),
        blocks_gateway::cache::CacheSettings::default(),
    )
    .await;
    app.block("search").control.set_hang(true);
    let body = app.query(REGISTER, json!({ "input": { "uniqueId": "reg-slow-1", "email": "slow@example.com", "blocks": ["SALES", "SEARCH"] } })).await;
    let payload = &body["data"]["registerIdentity"];
    assert_eq!(outcome(payload, "SEARCH")["status"], "FAILED", "{body}");
    assert_eq!(outcome(payload, "SEARCH")["error"]["code"], "UPSTREAM_TIMEOUT");
    assert_eq!(outcome(payload, "SALES")["status"], "CREATED");
    // The write was sent once, never retried.
    assert_eq!(
        app.block("search")
            .control
            .count("POST", "/identities/reg-slow-1/register"),
        1
    );
}
