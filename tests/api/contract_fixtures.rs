//! The example bodies of the upstream contracts (copied into `tests/fixtures/blocks`) decode
//! through the same envelopes and wire models the block clients use, with the values the
//! documents show; and every CRM route the client names exists in the OpenAPI document.

use blocks_gateway::blocks::{
    FieldIssue,
    assets::{Asset, AssetsEntity, AssetsUser, OwnershipRecord},
    b2b::{B2bDivisionRef, B2bUser},
    crm::{CrmOrganization, CrmPerson, PersonInvitation, PersonInviteConflict, PersonMergeResult},
    http::parse_problem,
    sales::{SalesCustomer, SalesEntity, SalesUser},
    search::SearchIdentity,
    wire::{DrfPage, HasUniqueId, JsonApiMany, JsonApiOne, Page, from_value},
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The text of one fixture, embedded at build time (tests never read the shared folder).
macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/blocks/", $path))
    };
}

fn parse<T: DeserializeOwned>(body: &str) -> T {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("fixture does not decode: {error}\n{body}"))
}

/// A JSON:API single-resource document, as the 23blocks clients decode it.
fn one<A: DeserializeOwned + HasUniqueId>(body: &str) -> A {
    parse::<JsonApiOne<A>>(body).data.into_attributes()
}

/// A JSON:API list read as page number `page`.
fn page_of<A: DeserializeOwned + HasUniqueId>(body: &str, page: u32) -> Page<A> {
    parse::<JsonApiMany<A>>(body).into_page(page)
}

/// A JSON:API list without pagination (Assets).
fn items<A: DeserializeOwned + HasUniqueId>(body: &str) -> Vec<A> {
    parse::<JsonApiMany<A>>(body).into_items()
}

/// A DRF page, as the B2B and CRM clients decode it.
fn drf_page<T: DeserializeOwned>(body: &str) -> Page<T> {
    parse::<DrfPage<T>>(body).into()
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(
        DateTime::parse_from_rfc3339(text)
            .expect("valid expected timestamp")
            .with_timezone(&Utc),
    )
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

// ------------------------------------------------------------------------- Sales

#[test]
fn sales_user_list_reports_its_totals_and_partial_items() {
    let body = fixture!("sales/list_users.json");
    let first: Page<SalesUser> = page_of(body, 1);
    assert_eq!(first.total, Some(72));
    assert_eq!(first.has_next, Some(true), "page 1 of 5");
    let last: Page<SalesUser> = page_of(body, 5);
    assert_eq!(last.has_next, Some(false), "page 5 of 5");

    let [user] = first.items.as_slice() else {
        panic!("one user expected: {:?}", first.items)
    };
    assert_eq!(user.unique_id, some("user-uuid-123"));
    assert_eq!(user.email, some("user@example.com"));
    assert_eq!(user.first_name, some("John"));
    assert_eq!(user.last_name, some("Doe"));
    assert_eq!(user.display_name, some("John Doe"));
    assert_eq!(user.status, some("active"));
    assert_eq!(user.created_at, at("2025-01-10T10:30:00Z"));
    assert_eq!(user.updated_at, at("2025-01-10T10:30:00Z"));
    // List items carry no phone or order count: absent, not invented.
    assert_eq!(user.phone, None);
    assert_eq!(user.orders_count, None);
}

#[test]
fn sales_user_detail_register_and_update_answers_decode() {
    let detail: SalesUser = one(fixture!("sales/get_user.json"));
    assert_eq!(detail.unique_id, some("user-uuid-123"));
    assert_eq!(detail.phone, some("+1234567890"));
    assert_eq!(detail.orders_count, Some(12));
    assert_eq!(detail.updated_at, None);

    let registered: SalesUser = one(fixture!("sales/register_user.json"));
    assert_eq!(registered.email, some("newuser@example.com"));
    assert_eq!(registered.display_name, some("Jane Smith"));
    assert_eq!(registered.created_at, at("2025-01-12T10:30:00Z"));

    // An update answers only what changed.
    let updated: SalesUser = one(fixture!("sales/update_user.json"));
    assert_eq!(updated.unique_id, some("user-uuid-123"));
    assert_eq!(updated.display_name, some("Jane S."));
    assert_eq!(updated.phone, some("+1987654321"));
    assert_eq!(updated.updated_at, at("2025-01-12T14:00:00Z"));
    assert_eq!(updated.email, None);
    assert_eq!(updated.status, None);
}

#[test]
fn sales_entities_decode() {
    let list: Page<SalesEntity> = page_of(fixture!("sales/list_entities.json"), 1);
    assert_eq!(list.total, Some(25));
    assert_eq!(list.has_next, Some(true));
    let [entity] = list.items.as_slice() else {
        panic!("one entity expected: {:?}", list.items)
    };
    assert_eq!(entity.unique_id, some("entity-uuid-456"));
    assert_eq!(entity.name, some("Acme Corp"));
    assert_eq!(entity.entity_type, some("organization"));
    assert_eq!(entity.email, None);

    let registered: SalesEntity = one(fixture!("sales/register_entity.json"));
    assert_eq!(registered.email, some("billing@acme.com"));
    assert_eq!(registered.status, some("active"));
    assert_eq!(registered.created_at, at("2025-01-12T10:30:00Z"));
}

#[test]
fn sales_customers_decode_with_their_decimal_total() {
    let customer: SalesCustomer = one(fixture!("sales/get_customer.json"));
    assert_eq!(customer.unique_id, some("customer-uuid-789"));
    assert_eq!(customer.company_name, some("Johnson LLC"));
    assert_eq!(customer.phone, some("+1555000111"));
    assert_eq!(customer.orders_count, Some(8));
    assert_eq!(customer.total_spent, Some(2450.0));

    let registered: SalesCustomer = one(fixture!("sales/register_customer.json"));
    assert_eq!(registered.email, some("customer@example.com"));
    assert_eq!(registered.company_name, some("Johnson LLC"));
    assert_eq!(registered.total_spent, None);
    assert_eq!(registered.orders_count, None);
}

/// The JSON:API error format the three 23blocks documents share.
fn assert_jsonapi_not_found(body: &str, detail: &str) {
    let problem = parse_problem(body.as_bytes());
    assert_eq!(problem.code, some("not_found"));
    assert_eq!(problem.detail, some(detail));
    assert_eq!(
        problem.fields,
        vec![FieldIssue {
            field: None,
            message: detail.to_owned()
        }]
    );
}

#[test]
fn the_23blocks_error_bodies_give_code_and_detail() {
    assert_jsonapi_not_found(
        fixture!("sales/error_not_found.json"),
        "The requested user could not be found.",
    );
    assert_jsonapi_not_found(
        fixture!("search/error_not_found.json"),
        "The requested identity could not be found.",
    );
    assert_jsonapi_not_found(
        fixture!("assets/error_not_found.json"),
        "The requested user could not be found.",
    );
}

// ------------------------------------------------------------------------ Search

#[test]
fn search_identities_decode() {
    let identity: SearchIdentity = one(fixture!("search/get_identity.json"));
    assert_eq!(identity.unique_id, some("user-uuid-123"));
    assert_eq!(identity.user_unique_id, some("user-uuid-123"));
    assert_eq!(identity.name, some("John Doe"));
    assert_eq!(identity.phone, some("+1234567890"));
    assert_eq!(identity.avatar_url, some("https://example.com/avatar.jpg"));
    assert_eq!(identity.role_id, Some(4));
    assert_eq!(identity.role_name, some("user"));
    assert_eq!(identity.enabled, Some(true));
    assert_eq!(identity.updated_at, at("2025-01-10T10:30:00Z"));

    let registered: SearchIdentity = one(fixture!("search/register_identity.json"));
    assert_eq!(registered.email, some("newuser@example.com"));
    assert_eq!(registered.name, some("New User"));
    assert_eq!(registered.phone, None);
    assert_eq!(registered.created_at, at("2025-01-12T10:30:00Z"));

    let updated: SearchIdentity = one(fixture!("search/update_identity.json"));
    assert_eq!(updated.name, some("John Updated"));
    assert_eq!(updated.avatar_url, some("https://example.com/new-avatar.jpg"));
    assert_eq!(updated.email, None);
    assert_eq!(updated.enabled, None);
}

// ------------------------------------------------------------------------ Assets

#[test]
fn assets_users_decode() {
    let list: Vec<AssetsUser> = items(fixture!("assets/list_users.json"));
    let [listed] = list.as_slice() else {
        panic!("one user expected: {list:?}")
    };
    assert_eq!(listed.username, some("johndoe"));
    assert_eq!(listed.assets_count, Some(12));
    assert_eq!(listed.entities_count, Some(5));

    let user: AssetsUser = one(fixture!("assets/get_user.json"));
    assert_eq!(user.unique_id, some("user-uuid-123"));
    assert_eq!(user.display_name, some("John Doe"));
    assert_eq!(user.avatar_url, some("https://example.com/avatar.jpg"));
    assert_eq!(user.updated_at, at("2025-01-10T10:30:00Z"));

    let registered: AssetsUser = one(fixture!("assets/register_user.json"));
    assert_eq!(registered.username, some("newuser"));
    assert_eq!(registered.assets_count, Some(0));
    assert_eq!(registered.entities_count, Some(0));

    let updated: AssetsUser = one(fixture!("assets/update_user.json"));
    assert_eq!(updated.display_name, some("John D."));
    assert_eq!(updated.avatar_url, some("https://example.com/new-avatar.jpg"));
    assert_eq!(updated.email, None);
    assert_eq!(updated.assets_count, None);
}

#[test]
fn assets_holdings_decode() {
    let entities: Vec<AssetsEntity> = items(fixture!("assets/user_entities.json"));
    let [entity] = entities.as_slice() else {
        panic!("one entity expected: {entities:?}")
    };
    assert_eq!(entity.unique_id, some("entity-uuid-456"));
    assert_eq!(entity.name, some("Software License"));
    assert_eq!(entity.entity_type, some("digital_license"));
    assert_eq!(entity.access_level, some("private"));

    let assets: Vec<Asset> = items(fixture!("assets/user_assets.json"));
    let [asset] = assets.as_slice() else {
        panic!("one asset expected: {assets:?}")
    };
    assert_eq!(asset.unique_id, some("asset-uuid-789"));
    assert_eq!(asset.name, some("Laptop Dell XPS 15"));
    assert_eq!(asset.serial_number, some("SN-2025-001"));

    let ownership: Vec<OwnershipRecord> = items(fixture!("assets/user_ownership.json"));
    let [record] = ownership.as_slice() else {
        panic!("one record expected: {ownership:?}")
    };
    assert_eq!(record.unique_id, some("ownership-uuid"));
    assert_eq!(record.asset_unique_id, some("asset-uuid-789"));
    assert_eq!(record.asset_name, some("Laptop Dell XPS 15"));
    assert_eq!(record.ownership_type, some("assigned"));
    assert_eq!(record.assigned_at, at("2025-01-10T10:30:00Z"));
}

// --------------------------------------------------------------------------- B2B

/// Neither the decoded user nor its debug or serialized forms carry a secret field.
fn assert_no_secrets(user: &B2bUser, secrets: &[&str]) {
    let debug = format!("{user:?}");
    let serialized = serde_json::to_value(user).expect("serializable");
    for key in ["password", "shop_token"] {
        assert!(serialized.get(key).is_none(), "{key} is modelled: {serialized}");
        assert!(!debug.contains(key), "{key} in {debug}");
    }
    for secret in secrets {
        assert!(!debug.contains(secret), "{secret} in {debug}");
        assert!(!serialized.to_string().contains(secret), "{secret} in {serialized}");
    }
}

#[test]
fn b2b_create_and_update_answers_carry_a_bare_division_id_and_no_password() {
    let created: B2bUser = parse(fixture!("b2b/create_user.json"));
    assert_eq!(created.id, 1);
    assert_eq!(created.email, some("firstname.lastname@akinon.com"));
    assert_eq!(created.phone_number, some("05XXXXXXXXX"));
    assert!(
        matches!(created.division, Some(B2bDivisionRef::Id(1))),
        "{:?}",
        created.division
    );
    assert_eq!(created.is_active, None);
    assert_no_secrets(&created, &["#hashedpassword#"]);

    let updated: B2bUser = parse(fixture!("b2b/update_user.json"));
    assert_eq!(updated.id, 1);
    assert_eq!(updated.first_name, some("firstname"));
    assert_eq!(updated.phone_number, some("5554443322"));
    assert!(matches!(updated.division, Some(B2bDivisionRef::Id(1))));
    assert_eq!(updated.email, None);
}

/// The user of the list and detail examples, division expanded.
fn assert_documented_b2b_user(user: &B2bUser, email: &str) {
    assert_eq!(user.id, 1);
    assert_eq!(user.email, some(email));
    assert_eq!(user.last_name, some("lastname"));
    let Some(B2bDivisionRef::Full(division)) = &user.division else {
        panic!("expanded division expected: {:?}", user.division)
    };
    assert_eq!(division.id, 1);
    assert_eq!(division.name, some("Akinon Main Division"));
    assert_eq!(division.division_type, some("main"));
    assert_eq!(user.is_active, Some(true));
    assert_eq!(user.remote_id, Some(1));
    assert_eq!(user.date_joined, at("2023-12-14T11:17:22.670111Z"));
    assert_eq!(user.last_login, None);
    assert_no_secrets(user, &["########"]);
}

#[test]
fn b2b_list_and_detail_decode_with_the_division_object() {
    let list: Page<B2bUser> = drf_page(fixture!("b2b/user_list.json"));
    assert_eq!(list.total, Some(1));
    // The example's `next` link is set (its count of 1 notwithstanding): a next page is
    // reported because the block says there is one.
    assert_eq!(list.has_next, Some(true));
    let [user] = list.items.as_slice() else {
        panic!("one user expected: {:?}", list.items)
    };
    assert_documented_b2b_user(user, "firstname.lastname@test.com");

    let detail: B2bUser = parse(fixture!("b2b/user_detail.json"));
    assert_documented_b2b_user(&detail, "firstname.lastname@akinon.com");
}

#[test]
fn b2b_action_answers_are_empty_objects_and_errors_name_the_field() {
    // activate, deactivate and update_remote_id answer `{}`; the client reads nothing from them.
    for body in [
        fixture!("b2b/activate.json"),
        fixture!("b2b/deactivate.json"),
        fixture!("b2b/update_remote_id.json"),
    ] {
        assert_eq!(parse::<Value>(body), json!({}));
    }
    let problem = parse_problem(fixture!("b2b/error_division_inactive.json").as_bytes());
    assert_eq!(problem.detail, None);
    assert_eq!(
        problem.fields,
        vec![FieldIssue {
            field: some("division"),
            message: "Deactivated divisions cannot be assigned to users.".to_owned(),
        }]
    );
}

// --------------------------------------------------------------------------- CRM

const PERSON_ID: &str = "8d1f4b6a-2c3e-4f5a-9b7c-1e2d3f4a5b6c";
const ORGANIZATION_ID: &str = "3f0c2a9e-5b7d-4c1e-9a8f-2d6b1e4c7a90";

#[test]
fn crm_person_decodes_every_schema_field() {
    let person: CrmPerson = parse(fixture!("crm/person.json"));
    assert_eq!(person.id, PERSON_ID);
    assert_eq!(person.name, some("Olivia Martin"));
    assert_eq!(person.primary_email, some("olivia.martin@example.com"));
    assert_eq!(person.emails, Some(json!(["olivia@personal.example"])));
    assert_eq!(
        person.contact_numbers,
        Some(json!([{"type": "mobile", "number": "+15550001111"}]))
    );
    assert_eq!(person.job_title, some("Buyer"));
    assert_eq!(person.organization, some(ORGANIZATION_ID));
    assert_eq!(person.owner, Some(3));
    assert_eq!(person.platform_user, None);
    assert_eq!(person.lifecycle_stage, some("customer"));
    assert_eq!(person.unique_id, some("user-uuid-123"));
    assert_eq!(person.active, Some(true));
    assert_eq!(person.metadata, Some(json!({"source": "web", "tier": "gold"})));
    assert_eq!(person.created_at, at("2025-01-07T09:00:00Z"));
    assert_eq!(person.updated_at, at("2025-01-09T10:30:00.5Z"));
}

#[test]
fn crm_organization_decodes_every_schema_field() {
    let organization: CrmOrganization = parse(fixture!("crm/organization.json"));
    assert_eq!(organization.id, ORGANIZATION_ID);
    assert_eq!(organization.name, some("Acme Logistics"));
    assert_eq!(
        organization.address,
        Some(json!({"street": "12 Harbor Street", "city": "Lisbon", "country": "PT"}))
    );
    assert_eq!(organization.owner, Some(3));
    assert_eq!(
        organization.metadata,
        Some(json!({"industry": "logistics", "employees": 420}))
    );
    assert_eq!(organization.created_at, at("2025-01-06T09:00:00Z"));
    assert_eq!(organization.updated_at, at("2025-01-08T17:45:12.123456Z"));
}

#[test]
fn crm_pages_decode_with_count_and_next() {
    let organizations: Page<CrmOrganization> = drf_page(fixture!("crm/organization_list.json"));
    assert_eq!(organizations.total, Some(123));
    assert_eq!(organizations.has_next, Some(true));
    let names: Vec<_> = organizations.items.iter().map(|o| o.name.as_deref()).collect();
    assert_eq!(names, [Some("Acme Logistics"), Some("Blue Harbor Foods")]);
    // Nullable fields sent as null stay absent.
    assert_eq!(organizations.items[1].owner, None);
    assert_eq!(organizations.items[1].address, None);

    let persons: Page<CrmPerson> = drf_page(fixture!("crm/person_list.json"));
    assert_eq!(persons.total, Some(2));
    assert_eq!(persons.has_next, Some(false));
    let bound = &persons.items[1];
    assert_eq!(bound.id, "c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f");
    assert_eq!(bound.organization, None);
    assert_eq!(bound.platform_user, Some(42));
    assert_eq!(bound.active, Some(false));
    assert_eq!(bound.lifecycle_stage, some("lead"));
}

#[test]
fn crm_invite_answers_decode_the_invitation_and_the_conflict() {
    let invitation: PersonInvitation = parse(fixture!("crm/invite_created.json"));
    assert_eq!(invitation.person_id, some(PERSON_ID));
    assert_eq!(invitation.invitation_id, 9002);
    assert_eq!(invitation.invitation_email, some("olivia.martin@example.com"));
    assert_eq!(invitation.platform_key, some("acme-platform"));
    assert_eq!(invitation.auto_accept, Some(false));
    assert_eq!(invitation.active, Some(true));
    assert_eq!(invitation.redirect_to, None);
    assert_eq!(invitation.created, at("2025-03-01T12:00:00.25Z"));

    // A 409 reaches the client as an error body: it is read the way the client reads it.
    let problem = parse_problem(fixture!("crm/invite_conflict.json").as_bytes());
    assert_eq!(
        problem.detail,
        some("An active invitation already exists for this email.")
    );
    let body = problem.body.expect("the body is kept");
    let conflict: PersonInviteConflict = from_value(&body).expect("conflict body decodes");
    assert_eq!(conflict.invitation_id, 9001);
    assert_eq!(conflict.person_id, some(PERSON_ID));
    assert_eq!(conflict.platform_key, some("acme-platform"));
}

#[test]
fn crm_merge_answer_decodes() {
    let merge: PersonMergeResult = parse(fixture!("crm/merge.json"));
    assert_eq!(merge.primary_id, some(PERSON_ID));
    assert_eq!(
        merge.merged_ids,
        [
            "0e1d2c3b-4a59-4687-8796-a5b4c3d2e1f0",
            "1f2e3d4c-5b6a-4798-89a7-b6c5d4e3f201"
        ]
    );
    assert_eq!(merge.reparented, Some(json!({"deals": 2, "activities": 5, "tags": 1})));
}

#[test]
fn crm_error_bodies_give_field_issues_and_detail() {
    let validation = parse_problem(fixture!("crm/validation_error.json").as_bytes());
    assert_eq!(
        validation.fields,
        vec![FieldIssue {
            field: some("name"),
            message: "organization with this name already exists.".to_owned(),
        }]
    );
    let not_found = parse_problem(fixture!("crm/not_found.json").as_bytes());
    assert_eq!(not_found.detail, some("Not found."));
    assert!(not_found.fields.is_empty());
}

/// The `"METHOD /api/crm/..."` route labels the CRM client passes to the HTTP core.
fn crm_client_routes() -> Vec<(String, String)> {
    let source = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/blocks/crm.rs"));
    let mut routes = Vec::new();
    for (start, _) in source.match_indices(" /api/crm/") {
        let Some(quote) = source[..start].rfind('"') else {
            continue;
        };
        let method = &source[quote + 1..start];
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
            continue;
        }
        let rest = &source[start + 1..];
        let Some(end) = rest.find('"') else { continue };
        routes.push((method.to_owned(), rest[..end].to_owned()));
    }
    routes.sort();
    routes.dedup();
    routes
}

/// The lower-case methods the OpenAPI document lists under `path`.
fn documented_methods(spec: &str, path: &str) -> Vec<String> {
    let key = format!("  {path}:");
    let mut lines = spec.lines().skip_while(|line| *line != key);
    if lines.next().is_none() {
        return Vec::new();
    }
    lines
        .take_while(|line| !line.starts_with("  /") && line.starts_with("  "))
        .filter_map(|line| {
            let method = line.strip_prefix("    ")?.strip_suffix(':')?;
            ["get", "post", "put", "patch", "delete"]
                .contains(&method)
                .then(|| method.to_owned())
        })
        .collect()
}

#[test]
fn every_crm_route_the_client_uses_is_in_the_openapi_document() {
    let spec = fixture!("crm/crm-openapi.yaml");
    let routes = crm_client_routes();
    // Organizations and persons: list, create, get, replace, patch, delete; invite,
    // link-user, merge. Fewer means the scan above stopped finding them.
    assert_eq!(routes.len(), 15, "{routes:#?}");
    for (method, path) in &routes {
        let methods = documented_methods(spec, path);
        assert!(
            methods.contains(&method.to_lowercase()),
            "{method} {path} is not in the OpenAPI document (it lists {methods:?})"
        );
    }
}
