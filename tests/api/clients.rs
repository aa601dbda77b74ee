//! Every block client call against the sandbox over real HTTP, through the clients the
//! gateway builds: the typed answer, and exactly what the block received (method, path
//! with its trailing-slash rule, query, JSON body, credentials).

use std::fmt::Debug;

use blocks_gateway::blocks::{
    BlockError, FieldIssue, UpstreamProblem,
    assets::AssetsUserFields,
    b2b::{B2bDivisionRef, B2bUser, B2bUserFilter, CreateB2bUser, UpdateB2bUser},
    crm::{InviteOutcome, InviteRequest, OrganizationFields, OrganizationFilter, PersonFields, PersonFilter},
    sales::{SalesCustomerFields, SalesEntityFields, SalesUserFields},
    search::SearchIdentityFields,
    wire::Patch,
};
use blocks_sandbox::{DemoB2bUser, DemoIdentity, DemoPerson, RecordedRequest};
use chrono::{DateTime, SecondsFormat, TimeDelta};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// The one request `block` saw since the last check, after checking the block's
/// credentials were sent. Clears the log so the next call is checked on its own.
pub fn take_one(app: &TestApp, block: &str) -> RecordedRequest {
    let control = &app.block(block).control;
    let requests = control.requests();
    control.clear_requests();
    assert_eq!(requests.len(), 1, "{block} saw {requests:#?}");
    let request = requests.into_iter().next().expect("one request");
    assert_credentials(app, block, &request);
    request
}

/// The one request `block` saw (see [`take_one`]), checked for method, path and query.
pub fn sent_once(app: &TestApp, block: &str, method: &str, path: &str, query: Option<&str>) -> RecordedRequest {
    let request = take_one(app, block);
    assert_route(&request, method, path, query);
    request
}

/// The documented auth headers of each block, and the JSON `Accept`.
fn assert_credentials(app: &TestApp, block: &str, request: &RecordedRequest) {
    let c = &app.sandbox.credentials;
    let (authorization, app_id) = match block {
        "sales" => (format!("Bearer {}", c.sales_token), Some(&c.sales_app_id)),
        "search" => (format!("Bearer {}", c.search_token), Some(&c.search_app_id)),
        "assets" => (format!("Bearer {}", c.assets_token), Some(&c.assets_app_id)),
        "b2b" => (format!("Token {}", c.b2b_token), None),
        "crm" => (format!("Api-Token {}", c.crm_api_key), None),
        other => panic!("unknown block {other}"),
    };
    assert_eq!(request.header("authorization"), Some(authorization.as_str()));
    assert_eq!(request.header("appid"), app_id.map(String::as_str));
    assert_eq!(request.header("accept"), Some("application/json"));
}

/// Method and exact (still percent-encoded) path.
pub fn assert_method_path(request: &RecordedRequest, method: &str, path: &str) {
    assert_eq!((request.method.as_str(), request.path.as_str()), (method, path));
}

/// Method, exact path and raw query string.
pub fn assert_route(request: &RecordedRequest, method: &str, path: &str, query: Option<&str>) {
    assert_method_path(request, method, path);
    assert_eq!(request.query.as_deref(), query, "query of {method} {path}");
}

/// The JSON body of a write, which must be labelled as JSON.
fn json_body(request: &RecordedRequest) -> Value {
    assert_eq!(request.header("content-type"), Some("application/json"));
    serde_json::from_str(&request.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", request.body))
}

fn assert_no_body(request: &RecordedRequest) {
    assert_eq!(request.body, "");
    assert_eq!(request.header("content-type"), None);
}

/// The decoded query pairs, in the order sent.
fn query_pairs(request: &RecordedRequest) -> Vec<(String, String)> {
    let query = request.query.as_deref().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The status and body problem of a call that must fail with an HTTP status.
pub fn status_error<T: Debug>(result: Result<T, BlockError>) -> (u16, UpstreamProblem) {
    match result {
        Err(BlockError::Status { status, problem, .. }) => (status, problem),
        other => panic!("expected an upstream status error, got {other:?}"),
    }
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn set(text: &str) -> Patch<String> {
    Patch::Set(text.to_owned())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The identity every block knows (the demo data guarantees it).
fn everywhere(app: &TestApp) -> &DemoIdentity {
    &app.sandbox.demo.identities[0]
}

/// The identity only Sales knows.
fn only_in_sales(app: &TestApp) -> &DemoIdentity {
    &app.sandbox.demo.identities[1]
}

// ------------------------------------------------------------------------- Sales

#[tokio::test]
async fn sales_lists_users_by_page_and_records() {
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");

    let page = sales.list_users(2, 5).await.expect("page 2");
    sent_once(&app, "sales", "GET", "/users/", Some("page=2&records=5"));

    let in_sales: Vec<&DemoIdentity> = app.sandbox.demo.identities.iter().filter(|i| i.in_sales).collect();
    let expected: Vec<Option<String>> = in_sales[5..10].iter().map(|i| some(&i.unique_id)).collect();
    let got: Vec<Option<String>> = page.items.iter().map(|u| u.unique_id.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(page.total, Some(in_sales.len() as u64));
    assert_eq!(page.has_next, Some(in_sales.len() > 10));
    assert_eq!(page.items[0].email, some(&in_sales[5].email));
}

#[tokio::test]
async fn sales_gets_a_user_or_none() {
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let identity = everywhere(&app);

    let user = sales
        .get_user(&identity.unique_id)
        .await
        .expect("answer")
        .expect("found");
    sent_once(&app, "sales", "GET", &format!("/users/{}/", identity.unique_id), None);
    assert_eq!(user.unique_id, some(&identity.unique_id));
    assert_eq!(user.email, some(&identity.email));
    assert_eq!(user.first_name, some(&identity.first_name));
    assert_eq!(user.phone, identity.phone);
    assert!(user.orders_count.is_some() && user.created_at.is_some());

    let unknown = new_id();
    assert!(sales.get_user(&unknown).await.expect("a 404 is an answer").is_none());
    sent_once(&app, "sales", "GET", &format!("/users/{unknown}/"), None);
}

#[tokio::test]
async fn sales_registers_a_user_once() {
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let id = new_id();
    let fields = SalesUserFields {
        email: some("jane.smith@example.com"),
        first_name: set("Jane"),
        display_name: set("Jane Smith"),
        ..SalesUserFields::default()
    };

    let user = sales.register_user(&id, &fields).await.expect("201");
    let sent = sent_once(&app, "sales", "POST", &format!("/users/{id}/register/"), None);
    assert_eq!(
        json_body(&sent),
        json!({"user": {"email": "jane.smith@example.com", "first_name": "Jane", "display_name": "Jane Smith"}})
    );
    assert_eq!(user.unique_id, some(&id));
    assert_eq!(user.email, some("jane.smith@example.com"));
    assert_eq!(user.display_name, some("Jane Smith"));
    assert_eq!(user.status, some("active"));
    assert!(user.created_at.is_some());

    let (status, problem) = status_error(sales.register_user(&id, &fields).await);
    take_one(&app, "sales");
    assert_eq!(status, 422);
    assert_eq!(problem.detail, some("Unique has already been taken"));
    assert!(
        problem.fields.contains(&FieldIssue {
            field: some("unique_id"),
            message: "Unique has already been taken".to_owned(),
        }),
        "{:?}",
        problem.fields
    );
}

#[tokio::test]
async fn sales_updates_a_user_and_gets_a_partial_answer() {
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let identity = everywhere(&app);
    let fields = SalesUserFields {
        display_name: set("Jane S."),
        phone: set("+1987654321"),
        ..SalesUserFields::default()
    };

    let user = sales.update_user(&identity.unique_id, &fields).await.expect("200");
    let sent = sent_once(&app, "sales", "PUT", &format!("/users/{}/", identity.unique_id), None);
    assert_eq!(
        json_body(&sent),
        json!({"user": {"display_name": "Jane S.", "phone": "+1987654321"}})
    );
    assert_eq!(user.unique_id, some(&identity.unique_id));
    assert_eq!(user.display_name, some("Jane S."));
    assert_eq!(user.phone, some("+1987654321"));
    assert!(user.updated_at.is_some());
    // The block answered only what changed: nothing else is filled in.
    assert_eq!(user.email, None);
    assert_eq!(user.first_name, None);
}

#[tokio::test]
async fn sales_lists_and_registers_entities() {
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let demo = &app.sandbox.demo;

    let page = sales.list_entities(1, 100).await.expect("entities");
    sent_once(&app, "sales", "GET", "/entities/", Some("page=1&records=100"));
    let organizations = demo.organizations.iter().filter(|o| o.has_sales_entity);
    let expected = organizations.clone().count() + demo.standalone_sales_entity_ids.len();
    assert_eq!(page.total, Some(expected as u64));
    assert_eq!(page.items.len(), expected);
    assert_eq!(page.has_next, Some(false));
    for organization in organizations {
        let id = organization.id.to_string();
        let entity = page.items.iter().find(|e| e.unique_id.as_deref() == Some(id.as_str()));
        let entity = entity.unwrap_or_else(|| panic!("no entity for {}", organization.name));
        assert_eq!(entity.name, some(&organization.name));
        assert_eq!(entity.entity_type, some("organization"));
    }

    let id = new_id();
    let fields = SalesEntityFields {
        name: "Zephyr Freight".to_owned(),
        entity_type: some("organization"),
        email: some("billing@zephyr.example"),
    };
    let entity = sales.register_entity(&id, &fields).await.expect("201");
    let sent = sent_once(&app, "sales", "POST", &format!("/entities/{id}/register/"), None);
    assert_eq!(
        json_body(&sent),
        json!({"entity": {"name": "Zephyr Freight", "entity_type": "organization", "email": "billing@zephyr.example"}})
    );
    assert_eq!(entity.unique_id, some(&id));
    assert_eq!(entity.name, some("Zephyr Freight"));
    assert_eq!(entity.email, some("billing@zephyr.example"));
    assert_eq!(entity.status, some("active"));
}

#[tokio::test]
async fn sales_gets_and_registers_customers() {
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let identity = everywhere(&app);

    let customer = sales
        .get_customer(&identity.unique_id)
        .await
        .expect("answer")
        .expect("found");
    sent_once(
        &app,
        "sales",
        "GET",
        &format!("/customers/{}/", identity.unique_id),
        None,
    );
    assert_eq!(customer.email, some(&identity.email));
    assert!(customer.total_spent.is_some() && customer.orders_count.is_some());

    let not_a_customer = only_in_sales(&app);
    assert!(
        sales
            .get_customer(&not_a_customer.unique_id)
            .await
            .expect("answer")
            .is_none()
    );
    take_one(&app, "sales");

    let id = new_id();
    let fields = SalesCustomerFields {
        email: "alice@johnson.example".to_owned(),
        last_name: some("Johnson"),
        company_name: some("Johnson LLC"),
        ..SalesCustomerFields::default()
    };
    let registered = sales.register_customer(&id, &fields).await.expect("201");
    let sent = sent_once(&app, "sales", "POST", &format!("/customers/{id}/register/"), None);
    assert_eq!(
        json_body(&sent),
        json!({"customer": {"email": "alice@johnson.example", "last_name": "Johnson", "company_name": "Johnson LLC"}})
    );
    assert_eq!(registered.unique_id, some(&id));
    assert_eq!(registered.company_name, some("Johnson LLC"));
    assert_eq!(registered.status, some("active"));
    // The register answer carries no total: none is invented.
    assert_eq!(registered.total_spent, None);
}

// ------------------------------------------------------------------------ Search

#[tokio::test]
async fn search_gets_registers_and_updates_identities_without_trailing_slashes() {
    let app = spawn_app().await;
    let search = app.gateway.clients().search().expect("search configured");
    let identity = everywhere(&app);

    let found = search
        .get_identity(&identity.unique_id)
        .await
        .expect("answer")
        .expect("found");
    sent_once(
        &app,
        "search",
        "GET",
        &format!("/identities/{}", identity.unique_id),
        None,
    );
    assert_eq!(found.email, some(&identity.email));
    assert_eq!(found.user_unique_id, some(&identity.unique_id));
    assert!(found.role_id.is_some());

    let unknown = only_in_sales(&app);
    assert!(search.get_identity(&unknown.unique_id).await.expect("answer").is_none());
    take_one(&app, "search");

    let id = new_id();
    let fields = SearchIdentityFields {
        email: some("new.user@example.com"),
        name: set("New User"),
        ..SearchIdentityFields::default()
    };
    let registered = search.register_identity(&id, &fields).await.expect("201");
    let sent = sent_once(&app, "search", "POST", &format!("/identities/{id}/register"), None);
    assert_eq!(
        json_body(&sent),
        json!({"user": {"email": "new.user@example.com", "name": "New User"}})
    );
    assert_eq!(registered.unique_id, some(&id));
    assert_eq!(registered.role_id, Some(4));
    assert_eq!(registered.enabled, Some(true));

    let (status, _) = status_error(search.register_identity(&id, &fields).await);
    take_one(&app, "search");
    assert_eq!(status, 409);

    let update = SearchIdentityFields {
        name: set("John Updated"),
        avatar_url: set("https://example.com/new-avatar.jpg"),
        ..SearchIdentityFields::default()
    };
    let updated = search.update_identity(&id, &update).await.expect("200");
    let sent = sent_once(&app, "search", "PUT", &format!("/identities/{id}"), None);
    assert_eq!(
        json_body(&sent),
        json!({"user": {"name": "John Updated", "avatar_url": "https://example.com/new-avatar.jpg"}})
    );
    assert_eq!(updated.name, some("John Updated"));
    assert_eq!(updated.avatar_url, some("https://example.com/new-avatar.jpg"));
    assert_eq!(updated.email, None);
}

// ------------------------------------------------------------------------ Assets

#[tokio::test]
async fn assets_lists_and_gets_users() {
    let app = spawn_app().await;
    let assets = app.gateway.clients().assets().expect("assets configured");
    let demo = &app.sandbox.demo;

    let users = assets.list_users().await.expect("list");
    sent_once(&app, "assets", "GET", "/users", None);
    let expected: Vec<Option<String>> = demo
        .identities
        .iter()
        .filter(|i| i.in_assets)
        .map(|i| some(&i.unique_id))
        .collect();
    let got: Vec<Option<String>> = users.iter().map(|u| u.unique_id.clone()).collect();
    assert_eq!(got, expected);

    let identity = everywhere(&app);
    let user = assets
        .get_user(&identity.unique_id)
        .await
        .expect("answer")
        .expect("found");
    sent_once(&app, "assets", "GET", &format!("/users/{}", identity.unique_id), None);
    assert_eq!(user.email, some(&identity.email));
    assert_eq!(user.assets_count, Some(identity.asset_count as i64));

    assert!(
        assets
            .get_user(&only_in_sales(&app).unique_id)
            .await
            .expect("answer")
            .is_none()
    );
    take_one(&app, "assets");
}

#[tokio::test]
async fn assets_reads_a_users_entities_assets_and_ownership() {
    let app = spawn_app().await;
    let assets = app.gateway.clients().assets().expect("assets configured");
    let identity = everywhere(&app);
    let id = &identity.unique_id;

    let entities = assets.user_entities(id).await.expect("answer").expect("known user");
    sent_once(&app, "assets", "GET", &format!("/users/{id}/entities"), None);
    assert!(!entities.is_empty());
    assert!(entities.iter().all(|e| e.name.is_some() && e.access_level.is_some()));

    let held = assets.user_assets(id).await.expect("answer").expect("known user");
    sent_once(&app, "assets", "GET", &format!("/users/{id}/assets"), None);
    assert_eq!(held.len(), identity.asset_count);
    assert!(held.iter().all(|a| a.serial_number.is_some()));

    let ownership = assets.user_ownership(id).await.expect("answer").expect("known user");
    sent_once(&app, "assets", "GET", &format!("/users/{id}/ownership"), None);
    let mut owned: Vec<_> = ownership.iter().map(|o| o.asset_unique_id.clone()).collect();
    let mut asset_ids: Vec<_> = held.iter().map(|a| a.unique_id.clone()).collect();
    owned.sort();
    asset_ids.sort();
    assert_eq!(owned, asset_ids, "one ownership record per asset");

    let stranger = &only_in_sales(&app).unique_id;
    assert!(assets.user_assets(stranger).await.expect("answer").is_none());
    sent_once(&app, "assets", "GET", &format!("/users/{stranger}/assets"), None);
}

#[tokio::test]
async fn assets_registers_and_updates_users() {
    let app = spawn_app().await;
    let assets = app.gateway.clients().assets().expect("assets configured");
    let id = new_id();
    let fields = AssetsUserFields {
        email: some("new.user@example.com"),
        username: set("newuser"),
        display_name: set("New User"),
        ..AssetsUserFields::default()
    };

    let user = assets.register_user(&id, &fields).await.expect("201");
    let sent = sent_once(&app, "assets", "POST", &format!("/users/{id}/register"), None);
    assert_eq!(
        json_body(&sent),
        json!({"user": {"email": "new.user@example.com", "username": "newuser", "display_name": "New User"}})
    );
    assert_eq!(user.unique_id, some(&id));
    assert_eq!(user.username, some("newuser"));
    assert_eq!(user.assets_count, Some(0));

    let update = AssetsUserFields {
        display_name: set("John D."),
        ..AssetsUserFields::default()
    };
    let updated = assets.update_user(&id, &update).await.expect("200");
    let sent = sent_once(&app, "assets", "PUT", &format!("/users/{id}"), None);
    assert_eq!(json_body(&sent), json!({"user": {"display_name": "John D."}}));
    assert_eq!(updated.display_name, some("John D."));
    assert_eq!(updated.username, None);
}

// --------------------------------------------------------------------------- B2B

/// A listed, active B2B user in an active division whose identity has a phone number.
fn listed_b2b_user(app: &TestApp) -> (&DemoB2bUser, &DemoIdentity) {
    let demo = &app.sandbox.demo;
    demo.b2b_users
        .iter()
        .filter(|u| u.listed && u.is_active)
        .find_map(|user| {
            let identity = demo.identity(user.identity_id.as_deref()?)?;
            identity.phone.is_some().then_some((user, identity))
        })
        .expect("the demo data has such a user")
}

#[tokio::test]
async fn b2b_lists_users_with_every_filter() {
    let app = spawn_app().await;
    let b2b = app.gateway.clients().b2b().expect("b2b configured");
    let (user, identity) = listed_b2b_user(&app);
    let division = app
        .sandbox
        .demo
        .b2b_divisions
        .iter()
        .find(|d| d.id == user.division_id)
        .expect("the user's division");
    let phone = identity.phone.clone().expect("a phone");
    let filter = B2bUserFilter {
        id: Some(user.id),
        is_active: Some(true),
        // The filters are case-insensitive substrings: send them in another case.
        email: Some(user.email.to_lowercase()),
        division: Some(division.id),
        division_type: Some(division.division_type.clone()),
        first_name: Some(identity.first_name.to_uppercase()),
        last_name: Some(identity.last_name.to_lowercase()),
        phone_number: Some(phone.clone()),
    };

    let page = b2b.list_users(&filter, 10, 1).await.expect("list");
    let sent = take_one(&app, "b2b");
    assert_method_path(&sent, "GET", "/api/v1/users/");
    let id = user.id.to_string();
    let division_id = division.id.to_string();
    let first_name = identity.first_name.to_uppercase();
    let last_name = identity.last_name.to_lowercase();
    let email = user.email.to_lowercase();
    assert_eq!(
        query_pairs(&sent),
        pairs(&[
            ("id", &id),
            ("is_active", "true"),
            ("email", &email),
            ("division", &division_id),
            ("division_type", &division.division_type),
            ("first_name", &first_name),
            ("last_name", &last_name),
            ("phone_number", &phone),
            ("limit", "10"),
            ("page", "1"),
        ])
    );
    // `+` and `@` are encoded, not sent raw (a raw `+` would read as a space).
    let raw = sent.query.as_deref().unwrap_or_default();
    assert!(raw.contains("phone_number=%2B") && raw.contains("%40"), "{raw}");

    let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
    assert_eq!(ids, [user.id]);
    assert_eq!(page.total, Some(1));
    assert_eq!(page.has_next, Some(false));
    let listed = &page.items[0];
    assert_eq!(listed.email, some(&user.email));
    assert_eq!(listed.division.as_ref().map(B2bDivisionRef::id), Some(division.id));
}

#[tokio::test]
async fn b2b_lists_users_by_limit_and_page() {
    let app = spawn_app().await;
    let b2b = app.gateway.clients().b2b().expect("b2b configured");

    let page = b2b.list_users(&B2bUserFilter::default(), 5, 2).await.expect("page 2");
    sent_once(&app, "b2b", "GET", "/api/v1/users/", Some("limit=5&page=2"));
    let listed: Vec<i64> = app
        .sandbox
        .demo
        .b2b_users
        .iter()
        .filter(|u| u.listed)
        .map(|u| u.id)
        .collect();
    let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
    assert_eq!(ids, listed[5..10]);
    assert_eq!(page.total, Some(listed.len() as u64));
    assert_eq!(page.has_next, Some(listed.len() > 10));
}

#[tokio::test]
async fn b2b_gets_a_user_or_none() {
    let app = spawn_app().await;
    let b2b = app.gateway.clients().b2b().expect("b2b configured");
    let (demo_user, _) = listed_b2b_user(&app);

    let user = b2b.get_user(demo_user.id).await.expect("answer").expect("found");
    sent_once(&app, "b2b", "GET", &format!("/api/v1/users/{}/", demo_user.id), None);
    assert_eq!(user.id, demo_user.id);
    assert_eq!(user.email, some(&demo_user.email));
    assert_eq!(user.is_active, Some(demo_user.is_active));
    let Some(B2bDivisionRef::Full(division)) = &user.division else {
        panic!("the detail expands the division: {:?}", user.division)
    };
    assert_eq!(division.id, demo_user.division_id);
    assert!(division.name.is_some());

    assert!(b2b.get_user(999_999).await.expect("a 404 is an answer").is_none());
    sent_once(&app, "b2b", "GET", "/api/v1/users/999999/", None);
}

#[tokio::test]
async fn b2b_creates_a_user_without_keeping_the_password() {
    let app = spawn_app().await;
    let b2b = app.gateway.clients().b2b().expect("b2b configured");
    let password = "Correct-Horse-Battery-7";
    let request = CreateB2bUser {
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        email: "ada.lovelace@analytical.example".to_owned(),
        password: SecretString::from(password.to_owned()),
        phone_number: None,
        division: 1,
    };

    // The sandbox answers 201 where the document shows 200: any 2xx is a success.
    let user = b2b.create_user(&request).await.expect("created");
    let sent = sent_once(&app, "b2b", "POST", "/api/v1/users/", None);
    assert_eq!(
        json_body(&sent),
        json!({
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada.lovelace@analytical.example",
            "password": password,
            "division": 1,
        })
    );
    let next_id = app.sandbox.demo.b2b_users.iter().map(|u| u.id).max().unwrap_or(0) + 1;
    assert_eq!(user.id, next_id);
    assert_eq!(user.email, some("ada.lovelace@analytical.example"));
    assert!(
        matches!(user.division, Some(B2bDivisionRef::Id(1))),
        "{:?}",
        user.division
    );

    let shown = [
        format!("{request:?}"),
        format!("{user:?}"),
        serde_json::to_string(&user).expect("serializable"),
    ];
    for text in shown {
        assert!(!text.contains(password), "the password leaks: {text}");
        assert!(
            !text.contains("hashedpassword"),
            "the answer's password is kept: {text}"
        );
    }
}

#[tokio::test]
async fn b2b_updates_a_user_with_only_the_supplied_fields() {
    let app = spawn_app().await;
    let b2b = app.gateway.clients().b2b().expect("b2b configured");
    let (demo_user, identity) = listed_b2b_user(&app);
    let update = UpdateB2bUser {
        first_name: some("Renamed"),
        division: Some(2),
        ..UpdateB2bUser::default()
    };

    let user = b2b.update_user(demo_user.id, &update).await.expect("200");
    let sent = sent_once(&app, "b2b", "PUT", &format!("/api/v1/users/{}/", demo_user.id), None);
    assert_eq!(json_body(&sent), json!({"first_name": "Renamed", "division": 2}));
    assert_eq!(user.id, demo_user.id);
    assert_eq!(user.first_name, some("Renamed"));
    assert_eq!(user.last_name, some(&identity.last_name));
    assert!(
        matches!(user.division, Some(B2bDivisionRef::Id(2))),
        "{:?}",
        user.division
    );
}

/// The B2B user as the block holds it now (the read is not part of what is checked).
async fn b2b_detail(app: &TestApp, id: i64) -> B2bUser {
    let b2b = app.gateway.clients().b2b().expect("b2b configured");
    let user = b2b.get_user(id).await.expect("answer").expect("found");
    take_one(app, "b2b");
    user
}

#[tokio::test]
async fn b2b_deactivates_activates_and_updates_remote_ids() {
    let app = spawn_app().await;
    let b2b = app.gateway.clients().b2b().expect("b2b configured");
    let demo = &app.sandbox.demo;
    let (user, _) = listed_b2b_user(&app);

    b2b.deactivate_user(user.id).await.expect("deactivated");
    let sent = sent_once(
        &app,
        "b2b",
        "POST",
        &format!("/api/v1/users/{}/deactivate/", user.id),
        None,
    );
    assert_no_body(&sent);
    assert_eq!(b2b_detail(&app, user.id).await.is_active, Some(false));

    b2b.activate_user(user.id).await.expect("activated");
    let sent = sent_once(
        &app,
        "b2b",
        "POST",
        &format!("/api/v1/users/{}/activate/", user.id),
        None,
    );
    assert_no_body(&sent);
    assert_eq!(b2b_detail(&app, user.id).await.is_active, Some(true));

    let stuck = demo
        .b2b_users
        .iter()
        .find(|u| u.division_id == demo.inactive_division_id)
        .expect("a user in the inactive division");
    let (status, problem) = status_error(b2b.activate_user(stuck.id).await);
    take_one(&app, "b2b");
    assert_eq!(status, 400);
    assert_eq!(problem.detail, some("Division is not active."));

    let unlisted = demo
        .b2b_users
        .iter()
        .find(|u| !u.listed)
        .expect("a user without remote id");
    assert_eq!(b2b_detail(&app, unlisted.id).await.remote_id, None);
    b2b.update_remote_id(unlisted.id).await.expect("updated");
    let sent = sent_once(
        &app,
        "b2b",
        "POST",
        &format!("/api/v1/users/{}/update_remote_id/", unlisted.id),
        None,
    );
    assert_no_body(&sent);
    assert!(b2b_detail(&app, unlisted.id).await.remote_id.is_some());
}

// --------------------------------------------------------------------------- CRM

#[tokio::test]
async fn crm_lists_organizations_by_name_and_owner() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");

    let by_name = OrganizationFilter {
        name: some("acme"),
        owner: None,
    };
    let page = crm.list_organizations(&by_name, 1, 20).await.expect("list");
    sent_once(
        &app,
        "crm",
        "GET",
        "/api/crm/organizations/",
        Some("name=acme&page=1&page_size=20"),
    );
    let names: Vec<Option<String>> = page.items.iter().map(|o| o.name.clone()).collect();
    assert_eq!(names, [some("Acme Logistics")]);
    assert_eq!(page.total, Some(1));
    assert_eq!(page.has_next, Some(false));

    let all = crm
        .list_organizations(&OrganizationFilter::default(), 1, 100)
        .await
        .expect("list");
    take_one(&app, "crm");
    assert_eq!(all.items.len(), app.sandbox.demo.organizations.len());
    let owner = all.items.iter().find_map(|o| o.owner).expect("an owned organization");
    let by_owner = OrganizationFilter {
        name: None,
        owner: Some(owner),
    };
    let page = crm.list_organizations(&by_owner, 1, 100).await.expect("list");
    sent_once(
        &app,
        "crm",
        "GET",
        "/api/crm/organizations/",
        Some(&format!("owner={owner}&page=1&page_size=100")),
    );
    let expected: Vec<&str> = all
        .items
        .iter()
        .filter(|o| o.owner == Some(owner))
        .map(|o| o.id.as_str())
        .collect();
    let got: Vec<&str> = page.items.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn crm_creates_reads_replaces_patches_and_deletes_an_organization() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");
    let fields = OrganizationFields {
        name: some("Zephyr Freight"),
        address: Patch::Set(json!({"city": "Lisbon"})),
        owner: Patch::Set(2),
        metadata: Patch::Set(json!({"industry": "logistics"})),
    };

    let created = crm.create_organization(&fields).await.expect("201");
    let sent = sent_once(&app, "crm", "POST", "/api/crm/organizations/", None);
    assert_eq!(
        json_body(&sent),
        json!({"name": "Zephyr Freight", "address": {"city": "Lisbon"}, "owner": 2, "metadata": {"industry": "logistics"}})
    );
    assert_eq!(created.name, some("Zephyr Freight"));
    assert_eq!(created.owner, Some(2));
    assert!(uuid::Uuid::parse_str(&created.id).is_ok(), "{}", created.id);
    let path = format!("/api/crm/organizations/{}/", created.id);

    let duplicate = OrganizationFields {
        name: some("Acme Logistics"),
        ..OrganizationFields::default()
    };
    let (status, problem) = status_error(crm.create_organization(&duplicate).await);
    take_one(&app, "crm");
    assert_eq!(status, 400);
    assert_eq!(
        problem.fields,
        [FieldIssue {
            field: some("name"),
            message: "organization with this name already exists.".to_owned(),
        }]
    );

    let read = crm.get_organization(&created.id).await.expect("answer").expect("found");
    sent_once(&app, "crm", "GET", &path, None);
    assert_eq!(read.address, Some(json!({"city": "Lisbon"})));

    let replacement = OrganizationFields {
        name: some("Zephyr Logistics"),
        address: Patch::Set(json!({"city": "Porto"})),
        owner: Patch::Clear,
        metadata: Patch::Set(json!({})),
    };
    let replaced = crm.replace_organization(&created.id, &replacement).await.expect("200");
    let sent = sent_once(&app, "crm", "PUT", &path, None);
    assert_eq!(
        json_body(&sent),
        json!({"name": "Zephyr Logistics", "address": {"city": "Porto"}, "owner": null, "metadata": {}})
    );
    assert_eq!(replaced.name, some("Zephyr Logistics"));
    assert_eq!(replaced.owner, None);

    let patch = OrganizationFields {
        metadata: Patch::Set(json!({"tier": "gold"})),
        ..OrganizationFields::default()
    };
    let patched = crm.patch_organization(&created.id, &patch).await.expect("200");
    let sent = sent_once(&app, "crm", "PATCH", &path, None);
    assert_eq!(json_body(&sent), json!({"metadata": {"tier": "gold"}}));
    assert_eq!(patched.metadata, Some(json!({"tier": "gold"})));
    assert_eq!(patched.name, some("Zephyr Logistics"));

    crm.delete_organization(&created.id).await.expect("204");
    let sent = sent_once(&app, "crm", "DELETE", &path, None);
    assert_no_body(&sent);
    assert!(crm.get_organization(&created.id).await.expect("answer").is_none());
    take_one(&app, "crm");
}

/// Every person, page by page (bounded).
async fn all_persons(app: &TestApp) -> Vec<blocks_gateway::blocks::crm::CrmPerson> {
    let crm = app.gateway.clients().crm().expect("crm configured");
    let mut persons = Vec::new();
    for page_number in 1..=20 {
        let page = crm
            .list_persons(&PersonFilter::default(), page_number, 100)
            .await
            .expect("page");
        persons.extend(page.items);
        if page.has_next != Some(true) {
            app.block("crm").control.clear_requests();
            return persons;
        }
    }
    panic!("more than 20 pages of persons");
}

#[tokio::test]
async fn crm_lists_persons_with_every_filter() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");
    let everyone = all_persons(&app).await;
    let target = everyone
        .iter()
        .find(|p| {
            p.owner.is_some()
                && p.organization.is_some()
                && p.metadata
                    .as_ref()
                    .is_some_and(|m| m.as_object().is_some_and(|m| !m.is_empty()))
        })
        .expect("a person with owner, organization and metadata");
    let created = target.created_at.expect("created_at");
    // An offset (not `Z`) checks that `+` is encoded in the query.
    let stamp = |t: DateTime<chrono::Utc>| t.fixed_offset().to_rfc3339_opts(SecondsFormat::Secs, false);
    let key = target
        .metadata
        .as_ref()
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned())
        .expect("a metadata key");
    let filter = PersonFilter {
        lifecycle_stage: target.lifecycle_stage.clone(),
        owner: target.owner,
        organization: target.organization.clone(),
        created_at_gte: Some(stamp(created - TimeDelta::seconds(1))),
        created_at_lte: Some(stamp(created + TimeDelta::seconds(1))),
        metadata_has_key: Some(key.clone()),
    };

    let page = crm.list_persons(&filter, 1, 50).await.expect("list");
    let sent = take_one(&app, "crm");
    assert_method_path(&sent, "GET", "/api/crm/persons/");
    let owner = target.owner.map(|o| o.to_string()).unwrap_or_default();
    let (gte, lte) = (
        filter.created_at_gte.clone().unwrap_or_default(),
        filter.created_at_lte.clone().unwrap_or_default(),
    );
    assert_eq!(
        query_pairs(&sent),
        pairs(&[
            ("lifecycle_stage", target.lifecycle_stage.as_deref().unwrap_or_default()),
            ("owner", &owner),
            ("organization", target.organization.as_deref().unwrap_or_default()),
            ("created_at__gte", &gte),
            ("created_at__lte", &lte),
            ("metadata__has_key", &key),
            ("page", "1"),
            ("page_size", "50"),
        ])
    );
    assert!(gte.ends_with("+00:00"));
    let raw = sent.query.as_deref().unwrap_or_default();
    assert!(raw.contains("%2B00%3A00"), "{raw}");

    let expected: Vec<&str> = everyone
        .iter()
        .filter(|p| {
            p.lifecycle_stage == target.lifecycle_stage
                && p.owner == target.owner
                && p.organization == target.organization
                && p.created_at
                    .is_some_and(|t| (t - created).abs() <= TimeDelta::seconds(1))
                && p.metadata.as_ref().is_some_and(|m| m.get(&key).is_some())
        })
        .map(|p| p.id.as_str())
        .collect();
    let got: Vec<&str> = page.items.iter().map(|p| p.id.as_str()).collect();
    assert!(got.contains(&target.id.as_str()));
    assert_eq!(got, expected);
}

#[tokio::test]
async fn crm_creates_reads_replaces_patches_and_deletes_a_person() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");
    let organization = app.sandbox.demo.organizations[0].id.to_string();
    let unique_id = new_id();
    let fields = PersonFields {
        name: some("Grace Hopper"),
        primary_email: some("grace.hopper@navy.example"),
        organization: Patch::Set(organization.clone()),
        lifecycle_stage: some("qualified"),
        unique_id: Some(unique_id.clone()),
        ..PersonFields::default()
    };

    let created = crm.create_person(&fields).await.expect("201");
    let sent = sent_once(&app, "crm", "POST", "/api/crm/persons/", None);
    assert_eq!(
        json_body(&sent),
        json!({
            "name": "Grace Hopper",
            "primary_email": "grace.hopper@navy.example",
            "organization": organization,
            "lifecycle_stage": "qualified",
            "unique_id": unique_id,
        })
    );
    assert_eq!(created.name, some("Grace Hopper"));
    assert_eq!(created.organization, some(&organization));
    assert_eq!(created.active, Some(true));
    let path = format!("/api/crm/persons/{}/", created.id);

    let read = crm.get_person(&created.id).await.expect("answer").expect("found");
    sent_once(&app, "crm", "GET", &path, None);
    assert_eq!(read.unique_id, some(&unique_id));

    let replacement = PersonFields {
        name: some("Grace B. Hopper"),
        primary_email: some("grace@navy.example"),
        job_title: some("Rear Admiral"),
        owner: Patch::Set(3),
        lifecycle_stage: some("customer"),
        ..PersonFields::default()
    };
    let replaced = crm.replace_person(&created.id, &replacement).await.expect("200");
    let sent = sent_once(&app, "crm", "PUT", &path, None);
    assert_eq!(
        json_body(&sent),
        json!({
            "name": "Grace B. Hopper",
            "primary_email": "grace@navy.example",
            "job_title": "Rear Admiral",
            "owner": 3,
            "lifecycle_stage": "customer",
        })
    );
    assert_eq!(replaced.job_title, some("Rear Admiral"));
    assert_eq!(replaced.owner, Some(3));

    let patch = PersonFields {
        job_title: some("CTO"),
        ..PersonFields::default()
    };
    let patched = crm.patch_person(&created.id, &patch).await.expect("200");
    let sent = sent_once(&app, "crm", "PATCH", &path, None);
    assert_eq!(json_body(&sent), json!({"job_title": "CTO"}));
    assert_eq!(patched.job_title, some("CTO"));
    assert_eq!(patched.name, some("Grace B. Hopper"));
    assert_eq!(patched.organization, some(&organization));

    let clear = PersonFields {
        organization: Patch::Clear,
        ..PersonFields::default()
    };
    let cleared = crm.patch_person(&created.id, &clear).await.expect("200");
    assert_eq!(json_body(&take_one(&app, "crm")), json!({"organization": null}));
    assert_eq!(cleared.organization, None);
    assert_eq!(cleared.job_title, some("CTO"));

    crm.delete_person(&created.id).await.expect("204");
    let sent = sent_once(&app, "crm", "DELETE", &path, None);
    assert_no_body(&sent);
    assert!(crm.get_person(&created.id).await.expect("answer").is_none());
    take_one(&app, "crm");
}

/// A seeded person matching `wanted`.
fn person(app: &TestApp, wanted: impl Fn(&DemoPerson) -> bool) -> &DemoPerson {
    app.sandbox
        .demo
        .persons
        .iter()
        .find(|p| wanted(p))
        .expect("the demo data has such a person")
}

fn invitable(p: &DemoPerson) -> bool {
    !p.primary_email.is_empty() && p.platform_user.is_none() && !p.has_active_invitation
}

#[tokio::test]
async fn crm_invites_a_person_and_reports_the_existing_invitation() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");
    let target = person(&app, invitable);
    let id = target.id.to_string();
    let request = InviteRequest {
        is_admin: Some(false),
        redirect_to: some("https://app.example/welcome"),
        ..InviteRequest::default()
    };

    let outcome = crm.invite_person(&id, &request).await.expect("201");
    let sent = sent_once(&app, "crm", "POST", &format!("/api/crm/persons/{id}/invite/"), None);
    assert_eq!(
        json_body(&sent),
        json!({"is_admin": false, "redirect_to": "https://app.example/welcome"})
    );
    let InviteOutcome::Invited(invitation) = outcome else {
        panic!("expected an invitation: {outcome:?}")
    };
    assert_eq!(invitation.person_id, some(&id));
    assert_eq!(invitation.invitation_email, some(&target.primary_email));
    assert_eq!(invitation.redirect_to, some("https://app.example/welcome"));
    assert_eq!(invitation.active, Some(true));
    assert_eq!(invitation.platform_key, some(&app.sandbox.demo.crm_platform_key));

    // Inviting again answers 409 carrying the invitation just made.
    let again = crm
        .invite_person(&id, &InviteRequest::default())
        .await
        .expect("409 is an outcome");
    assert_eq!(json_body(&take_one(&app, "crm")), json!({}));
    let InviteOutcome::Conflict(conflict) = again else {
        panic!("expected a conflict: {again:?}")
    };
    assert_eq!(conflict.invitation_id, invitation.invitation_id);
    assert_eq!(conflict.person_id, some(&id));

    // The seeded invitation is reported by its own id.
    let seeded = &app.sandbox.demo.invitation;
    let outcome = crm
        .invite_person(&seeded.person_id.to_string(), &InviteRequest::default())
        .await
        .expect("409 is an outcome");
    take_one(&app, "crm");
    let InviteOutcome::Conflict(conflict) = outcome else {
        panic!("expected a conflict: {outcome:?}")
    };
    assert_eq!(conflict.invitation_id, seeded.id);
    assert!(conflict.detail.is_some());
}

#[tokio::test]
async fn crm_invite_refusals_are_errors_with_their_status() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");
    let no_email = person(&app, |p| p.primary_email.is_empty() && p.platform_user.is_none());
    let linked = person(&app, |p| p.platform_user.is_some() && !p.primary_email.is_empty());
    let cases = [
        (no_email.id.to_string(), 400),
        (new_id(), 404),
        (linked.id.to_string(), 422),
    ];
    for (id, expected) in cases {
        let (status, problem) = status_error(crm.invite_person(&id, &InviteRequest::default()).await);
        sent_once(&app, "crm", "POST", &format!("/api/crm/persons/{id}/invite/"), None);
        assert_eq!(status, expected, "{problem:?}");
        assert!(problem.detail.is_some(), "{problem:?}");
    }
}

#[tokio::test]
async fn crm_links_a_person_to_a_user_once() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");
    let target = person(&app, invitable);
    let id = target.id.to_string();
    let path = format!("/api/crm/persons/{id}/link-user/");
    let [first_user, other_user] = [3, 4];

    let linked = crm.link_user(&id, first_user).await.expect("200");
    let sent = sent_once(&app, "crm", "POST", &path, None);
    assert_eq!(json_body(&sent), json!({"user_id": first_user}));
    assert_eq!(linked.platform_user, Some(first_user));
    assert_eq!(linked.active, Some(false));

    let same = crm.link_user(&id, first_user).await.expect("no-op");
    take_one(&app, "crm");
    assert_eq!(same.platform_user, Some(first_user));

    // A different user is refused with 200 and the unchanged person.
    let refused = crm.link_user(&id, other_user).await.expect("200");
    assert_eq!(json_body(&take_one(&app, "crm")), json!({"user_id": other_user}));
    assert_eq!(refused.platform_user, Some(first_user));
}

#[tokio::test]
async fn crm_merges_duplicates_into_a_primary() {
    let app = spawn_app().await;
    let crm = app.gateway.clients().crm().expect("crm configured");
    let group = app
        .sandbox
        .demo
        .duplicate_groups
        .iter()
        .find(|g| g.len() >= 3)
        .expect("a group of three");
    let primary = group[0].to_string();
    let duplicates: Vec<String> = group[1..].iter().map(ToString::to_string).collect();

    let merged = crm.merge_persons(&primary, &duplicates).await.expect("200");
    let sent = sent_once(&app, "crm", "POST", "/api/crm/persons/merge/", None);
    assert_eq!(
        json_body(&sent),
        json!({"primary_id": primary, "duplicate_ids": duplicates})
    );
    assert_eq!(merged.primary_id, some(&primary));
    assert_eq!(merged.merged_ids, duplicates);
    let reparented = merged.reparented.expect("reparented counts");
    for relation in ["deals", "activities", "tags"] {
        assert!(reparented[relation].is_u64(), "{reparented}");
    }

    for duplicate in &duplicates {
        let person = crm.get_person(duplicate).await.expect("answer").expect("kept");
        take_one(&app, "crm");
        assert_eq!(person.active, Some(false));
    }
    let survivor = crm.get_person(&primary).await.expect("answer").expect("kept");
    assert_eq!(survivor.active, Some(true));
}
