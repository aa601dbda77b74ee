//! Lists longer than any former cap: the gateway reads them to the end (or says what it
//! did not read), and once the lookup index knows a record, finds it in one request.

use blocks_gateway::config::Settings;
use blocks_sandbox::{LargeData, LargeIndex, Sandbox, SandboxOptions, SandboxSize};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_on};

/// Sales entities past the 200 pages of 100 the gateway once stopped at.
const ENTITIES: usize = 20_550;
/// Entities-list pages at 100 a page.
const ENTITY_PAGES: usize = ENTITIES.div_ceil(100);

/// A sandbox with `data` (every other block nearly empty) and a gateway in front of it.
async fn large_app(data: LargeData, tweak: impl FnOnce(&mut Settings)) -> (TestApp, LargeIndex) {
    let sandbox = Sandbox::start(SandboxOptions {
        size: SandboxSize::Large(data),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let large = sandbox.large.clone().expect("a large data set");
    let app = spawn_app_on(sandbox, tweak).await;
    (app, large)
}

fn few(entities: usize, b2b_users: usize) -> LargeData {
    LargeData {
        crm_persons: 40,
        crm_organizations: 30,
        sales_entities: entities,
        sales_users: 20,
        b2b_users,
    }
}

async fn entity_of(app: &TestApp, organization: &str, no_cache: bool) -> Value {
    let body = json!({
        "query": "query ($id: ID!) { organization(id: $id) { id salesEntity { uniqueId } } }",
        "variables": { "id": organization },
    });
    let headers: &[(&str, &str)] = if no_cache {
        &[("cache-control", "no-cache")]
    } else {
        &[]
    };
    let (status, answer) = app.post_json_with(body, headers).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn an_entity_on_page_206_is_found_and_then_costs_one_request() {
    let (app, large) = large_app(few(ENTITIES, 10), |_| {}).await;
    let id = large
        .last_page_organization_id
        .expect("an entity on the last page")
        .to_string();
    app.clear_requests();

    let answer = entity_of(&app, &id, false).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(
        answer["data"]["organization"]["salesEntity"]["uniqueId"],
        id.as_str(),
        "{answer}"
    );
    let pages = app.query_strings("sales", "GET", "/entities/");
    assert_eq!(pages.len(), ENTITY_PAGES, "every page once");
    let sales = &app.block("sales").control;
    assert!(
        sales.max_in_flight() <= 4,
        "a walk holds at most 4 requests: {}",
        sales.max_in_flight()
    );

    // The walk recorded every entity's page: past the cache, one request.
    let (positions, _) = app.gateway.links().lookup_sizes().await.expect("sizes");
    assert_eq!(positions, ENTITIES as u64);
    app.clear_requests();
    let answer = entity_of(&app, &id, true).await;
    assert_eq!(
        answer["data"]["organization"]["salesEntity"]["uniqueId"],
        id.as_str(),
        "{answer}"
    );
    assert_eq!(
        app.query_strings("sales", "GET", "/entities/"),
        [format!("page={ENTITY_PAGES}&records=100")]
    );
}

#[tokio::test]
async fn a_b2b_email_inside_300_others_is_found_and_then_costs_one_request() {
    let (app, large) = large_app(few(10, 400), |_| {}).await;
    let look_alike = large.look_alike.clone().expect("a look-alike email");
    assert!(look_alike.contained_in > 250, "{look_alike:?}");
    // An identity with exactly that email, registered in Sales.
    let register = json!({
        "query": "mutation ($input: RegisterIdentityInput!) { registerIdentity(input: $input) { outcomes { block status } } }",
        "variables": { "input": { "email": look_alike.email, "firstName": "Ann", "blocks": ["SALES"] } },
    });
    let (status, registered) = app.post_json(register).await;
    assert_eq!(status, 200, "{registered}");
    assert!(registered.get("errors").is_none(), "{registered}");
    let sales_users = app.block("sales").control.requests();
    let identity_id = sales_users
        .iter()
        .find_map(|r| {
            r.path
                .strip_prefix("/users/")?
                .strip_suffix("/register/")
                .map(str::to_owned)
        })
        .expect("the identity's registration");
    app.clear_requests();

    let body = json!({
        "query": "query ($id: ID!) { identity(id: $id) { b2bUser { id email } } }",
        "variables": { "id": identity_id },
    });
    let (_, answer) = app.post_json_with(body.clone(), &[("cache-control", "no-cache")]).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(
        answer["data"]["identity"]["b2bUser"]["id"], look_alike.user_id,
        "{answer}"
    );
    let filtered = app.query_strings("b2b", "GET", "/api/v1/users/");
    assert_eq!(
        filtered.len(),
        (look_alike.contained_in + 1).div_ceil(100),
        "{filtered:?}"
    );

    app.clear_requests();
    let (_, answer) = app.post_json_with(body, &[("cache-control", "no-cache")]).await;
    assert_eq!(
        answer["data"]["identity"]["b2bUser"]["id"], look_alike.user_id,
        "{answer}"
    );
    let paths: Vec<String> = app
        .block("b2b")
        .control
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, [format!("/api/v1/users/{}/", look_alike.user_id)]);
}

#[tokio::test]
async fn a_block_s_own_concurrency_bounds_its_requests() {
    let (app, large) = large_app(few(2_000, 10), |settings| {
        for block in &mut settings.gateway.blocks {
            if block.block == blocks_gateway::blocks::BlockName::Sales {
                block.max_concurrency = Some(2);
            }
        }
    })
    .await;
    app.block("sales")
        .control
        .set_latency(std::time::Duration::from_millis(5));
    let id = large.last_page_organization_id.expect("an entity").to_string();
    app.clear_requests();
    let answer = entity_of(&app, &id, false).await;
    assert_eq!(
        answer["data"]["organization"]["salesEntity"]["uniqueId"],
        id.as_str(),
        "{answer}"
    );
    assert_eq!(
        app.block("sales").control.max_in_flight(),
        2,
        "SALES_CONCURRENCY bounds the walk"
    );
}

#[tokio::test]
async fn per_block_concurrency_is_read_from_its_variable() {
    let settings = Settings::from_variables(&[
        ("SALES_API_URL", "http://127.0.0.1:9".to_owned()),
        ("SALES_AUTH_TOKEN", "t".to_owned()),
        ("SALES_API_KEY", "k".to_owned()),
        ("CRM_API_URL", "http://127.0.0.1:9".to_owned()),
        ("CRM_API_KEY", "k".to_owned()),
        ("SALES_CONCURRENCY", "3".to_owned()),
        ("CRM_CONCURRENCY", "0".to_owned()),
    ])
    .expect("settings");
    let of = |name: blocks_gateway::blocks::BlockName| {
        settings
            .gateway
            .blocks
            .iter()
            .find(|block| block.block == name)
            .and_then(|block| block.max_concurrency)
    };
    assert_eq!(of(blocks_gateway::blocks::BlockName::Sales), Some(3));
    assert_eq!(of(blocks_gateway::blocks::BlockName::Crm), Some(1), "0 reads as 1");
}

/// Entities of the lists below: ten pages, so a walk and an indexed read differ.
const TEN_PAGES: usize = 1_000;

#[tokio::test]
async fn a_reindexed_entity_costs_one_sales_request() {
    let (app, large) = large_app(few(TEN_PAGES, 10), |_| {}).await;
    app.index_links().await;
    let id = large
        .last_page_organization_id
        .expect("an entity on the last page")
        .to_string();
    app.clear_requests();
    let answer = entity_of(&app, &id, true).await;
    assert_eq!(
        answer["data"]["organization"]["salesEntity"]["uniqueId"],
        id.as_str(),
        "{answer}"
    );
    assert_eq!(
        app.query_strings("sales", "GET", "/entities/"),
        ["page=10&records=100"],
        "one page: the one the index names"
    );
}

#[tokio::test]
async fn no_entity_costs_one_sales_request_while_the_list_total_is_unchanged() {
    let (app, _) = large_app(few(TEN_PAGES, 10), |_| {}).await;
    app.index_links().await;
    let id = organization_without_entity(&app).await;
    app.clear_requests();
    let answer = entity_of(&app, &id, true).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert!(answer["data"]["organization"]["salesEntity"].is_null(), "{answer}");
    assert_eq!(
        app.query_strings("sales", "GET", "/entities/"),
        ["page=1&records=100"],
        "the total still matches: no walk"
    );

    // Another entity registered: the total moved, so the absence is checked by a walk,
    // which records the new total.
    let index = app.gateway.links();
    let before = index.entity_list_total().await.expect("read").expect("a complete list");
    let register =
        "mutation { registerSalesEntity(input: { uniqueId: \"standalone-entity-1\", name: \"Channel\" }) { status } }";
    let registered = app.query(register, json!({})).await;
    assert!(registered.get("errors").is_none(), "{registered}");
    app.clear_requests();
    let answer = entity_of(&app, &id, true).await;
    assert!(answer["data"]["organization"]["salesEntity"].is_null(), "{answer}");
    assert_eq!(
        app.query_strings("sales", "GET", "/entities/").len(),
        11,
        "walked: 1,001 entities"
    );
    assert_eq!(index.entity_list_total().await.expect("read"), Some(before + 1));
}

/// A CRM organization created straight in the CRM block, so Sales has no entity for it.
async fn organization_without_entity(app: &TestApp) -> String {
    let crm = &app.sandbox.crm;
    let created: Value = app
        .http
        .post(format!("{}/api/crm/organizations/", crm.base_url))
        .header(
            "Authorization",
            format!("Api-Token {}", app.sandbox.credentials.crm_api_key),
        )
        .json(&json!({ "name": "Entityless Ltd" }))
        .send()
        .await
        .expect("created")
        .json()
        .await
        .expect("json");
    created["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned()
}
