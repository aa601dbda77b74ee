//! CRM fields beyond the basics: the read-only `platform`, the whole `PersonFilter` on
//! `Organization.persons`, and update inputs that tell `null` (clear) from absent (leave).

use serde_json::{Value, json};

use crate::helpers::{TestApp, first_error_extensions, spawn_app};

const ORGANIZATION_PERSONS: &str = r#"
query ($id: ID!, $stage: LifecycleStage, $filter: PersonFilter) {
  organization(id: $id) {
    persons(first: 100, lifecycleStage: $stage, filter: $filter) {
      totalCount
      edges { node { id lifecycleStage organization { id } } }
    }
  }
}"#;

const UPDATE_PERSON: &str = r#"
mutation ($input: UpdatePersonInput!) {
  updatePerson(input: $input) {
    person { id name jobTitle emails contactNumbers metadata }
    userErrors { field code message }
  }
}"#;

/// Fails unless `null` for `field` in the `input` of `mutation` is a `BAD_USER_INPUT` user
/// error naming it, sent to no block.
async fn assert_null_refused(app: &TestApp, document: &str, mutation: &str, input: Value, field: &str) {
    app.clear_requests();
    let body = app.query(document, json!({ "input": input })).await;
    let error = &body["data"][mutation]["userErrors"][0];
    assert_eq!(error["code"], "BAD_USER_INPUT", "{input} → {body}");
    assert_eq!(error["field"], json!(["input", field]), "{body}");
    assert_eq!(
        app.total_requests(),
        0,
        "a field that cannot be cleared reached a block"
    );
}

fn persons_queries(app: &TestApp) -> Vec<String> {
    app.query_strings("crm", "GET", "/api/crm/persons/")
}

#[tokio::test]
async fn persons_and_organizations_show_the_crm_platform() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let person = demo
        .persons
        .iter()
        .find(|p| p.organization.is_some())
        .expect("a person in an organization");
    let body = app
        .query(
            "query ($id: ID!) { person(id: $id) { platform organization { platform } } }",
            json!({ "id": person.id.to_string() }),
        )
        .await;
    assert_eq!(body["data"]["person"]["platform"], demo.crm_platform_id, "{body}");
    assert_eq!(body["data"]["person"]["organization"]["platform"], demo.crm_platform_id);
}

#[tokio::test]
async fn organization_persons_take_the_whole_person_filter_within_the_organization() {
    let app = spawn_app().await;
    let demo = &app.sandbox.demo;
    let (organization, stage) = demo
        .organizations
        .iter()
        .find_map(|o| {
            let members: Vec<_> = demo.persons.iter().filter(|p| p.organization == Some(o.id)).collect();
            let stage = members.first()?.lifecycle_stage.clone();
            (members.len() >= 2 && members.iter().any(|p| p.lifecycle_stage != stage)).then_some((o.id, stage))
        })
        .expect("an organization whose persons are in different stages");
    let expected = demo
        .persons
        .iter()
        .filter(|p| p.organization == Some(organization) && p.lifecycle_stage == stage)
        .count();
    let id = organization.to_string();
    let graphql_stage = stage.to_uppercase();
    app.clear_requests();
    let body = app
        .query(
            ORGANIZATION_PERSONS,
            json!({ "id": id, "filter": { "lifecycleStage": graphql_stage, "createdAfter": "2000-01-01T00:00:00Z", "metadataHasKey": "source" } }),
        )
        .await;
    let page = &body["data"]["organization"]["persons"];
    assert!(body.get("errors").is_none(), "{body}");
    for node in page["edges"].as_array().expect("edges").iter().map(|e| &e["node"]) {
        assert_eq!(node["organization"]["id"], id.as_str());
        assert_eq!(node["lifecycleStage"], graphql_stage.as_str());
    }
    assert_eq!(
        persons_queries(&app),
        [format!(
            "lifecycle_stage={stage}&organization={id}&created_at__gte=2000-01-01T00%3A00%3A00Z&metadata__has_key=source&page=1&page_size=100"
        )]
    );

    // The older argument alone, the same stage through both, and the organization named
    // again (in another spelling) all mean the same list.
    for (stage_argument, filter) in [
        (json!(graphql_stage), Value::Null),
        (json!(graphql_stage), json!({ "lifecycleStage": graphql_stage })),
        (
            Value::Null,
            json!({ "lifecycleStage": graphql_stage, "organizationId": id.to_uppercase() }),
        ),
    ] {
        let body = app
            .query(
                ORGANIZATION_PERSONS,
                json!({ "id": id, "stage": stage_argument, "filter": filter }),
            )
            .await;
        assert_eq!(
            body["data"]["organization"]["persons"]["totalCount"], expected,
            "{filter} → {body}"
        );
    }

    app.clear_requests();
    let other = demo
        .organizations
        .iter()
        .find(|o| o.id != organization)
        .expect("another organization")
        .id
        .to_string();
    let other_stage = if stage == "lead" { "CUSTOMER" } else { "LEAD" };
    for (stage_argument, filter) in [
        (Value::Null, json!({ "organizationId": other })),
        (json!(graphql_stage), json!({ "lifecycleStage": other_stage })),
        (Value::Null, json!({ "organizationId": "not-a-uuid" })),
    ] {
        let body = app
            .query(
                ORGANIZATION_PERSONS,
                json!({ "id": id, "stage": stage_argument, "filter": filter }),
            )
            .await;
        assert_eq!(
            first_error_extensions(&body)["code"],
            "BAD_USER_INPUT",
            "{filter} → {body}"
        );
        assert_eq!(body["errors"][0]["path"], json!(["organization", "persons"]));
    }
    assert!(persons_queries(&app).is_empty(), "a refused filter reached the CRM");
}

#[tokio::test]
async fn an_explicit_null_clears_a_person_field_and_an_absent_one_leaves_it() {
    let app = spawn_app().await;
    let person = app.sandbox.demo.persons[0].id.to_string();
    let path = format!("/api/crm/persons/{person}/");
    app.clear_requests();
    let body = app
        .query(
            UPDATE_PERSON,
            json!({ "input": { "id": person, "metadata": null, "emails": null, "contactNumbers": { "work": "+44 20 7946 0000" }, "jobTitle": null } }),
        )
        .await;
    let updated = &body["data"]["updatePerson"]["person"];
    assert_eq!(body["data"]["updatePerson"]["userErrors"], json!([]), "{body}");
    assert!(updated["metadata"].is_null() && updated["emails"].is_null(), "{body}");
    assert_eq!(updated["contactNumbers"], json!({ "work": "+44 20 7946 0000" }));
    assert_eq!(updated["jobTitle"], "");
    assert_eq!(
        app.bodies("crm", "PATCH", &path),
        [
            json!({ "metadata": null, "emails": null, "contact_numbers": { "work": "+44 20 7946 0000" }, "job_title": "" })
        ]
    );

    app.clear_requests();
    let body = app
        .query(
            UPDATE_PERSON,
            json!({ "input": { "id": person, "name": "Renamed Person" } }),
        )
        .await;
    let updated = &body["data"]["updatePerson"]["person"];
    assert_eq!(updated["name"], "Renamed Person", "{body}");
    assert!(updated["metadata"].is_null(), "an absent field was left alone: {body}");
    assert_eq!(updated["contactNumbers"], json!({ "work": "+44 20 7946 0000" }));
    assert_eq!(app.bodies("crm", "PATCH", &path), [json!({ "name": "Renamed Person" })]);

    for field in ["name", "lifecycleStage"] {
        let refused = json!({ "id": person, field: null });
        assert_null_refused(&app, UPDATE_PERSON, "updatePerson", refused, field).await;
    }
}

#[tokio::test]
async fn an_explicit_null_clears_an_organizations_json_fields() {
    let app = spawn_app().await;
    let organization = app.sandbox.demo.organizations[0].id.to_string();
    let update = "mutation ($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name address metadata } userErrors { field code } } }";
    app.clear_requests();
    let body = app
        .query(
            update,
            json!({ "input": { "id": organization, "address": null, "metadata": null } }),
        )
        .await;
    let updated = &body["data"]["updateOrganization"]["organization"];
    assert!(updated["address"].is_null() && updated["metadata"].is_null(), "{body}");
    assert_eq!(
        app.bodies("crm", "PATCH", &format!("/api/crm/organizations/{organization}/")),
        [json!({ "address": null, "metadata": null })]
    );
    let refused = json!({ "id": organization, "name": null });
    assert_null_refused(&app, update, "updateOrganization", refused, "name").await;
}

#[tokio::test]
async fn an_explicit_null_clears_an_identity_field_in_every_block_that_keeps_it() {
    let app = spawn_app().await;
    let identity = app.sandbox.demo.identities[0].unique_id.clone();
    let update = "mutation ($input: UpdateIdentityInput!) { updateIdentity(input: $input) { identity { phone sales { phone } } outcomes { block status } userErrors { field code } } }";
    app.clear_requests();
    let body = app
        .query(update, json!({ "input": { "id": identity, "phone": null } }))
        .await;
    let payload = &body["data"]["updateIdentity"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    assert!(payload["identity"]["sales"]["phone"].is_null(), "{body}");
    assert_eq!(
        app.bodies("sales", "PUT", &format!("/users/{identity}/")),
        [json!({ "user": { "phone": null } })]
    );
    assert_eq!(
        app.bodies("search", "PUT", &format!("/identities/{identity}")),
        [json!({ "user": { "phone": null } })]
    );
    assert!(
        app.bodies("assets", "PUT", &format!("/users/{identity}")).is_empty(),
        "Assets keeps no phone"
    );
    let refused = json!({ "id": identity, "email": null });
    assert_null_refused(&app, update, "updateIdentity", refused, "email").await;
}
