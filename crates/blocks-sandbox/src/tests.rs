//! The sandbox over real HTTP: contracts, determinism and fault knobs.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{BlockServer, LargeData, LargeIndex, Sandbox, SandboxOptions, SandboxSize};

async fn sandbox() -> Sandbox {
    sandbox_with(42, 60).await
}

async fn sandbox_with(seed: u64, identities: usize) -> Sandbox {
    Sandbox::start(SandboxOptions {
        seed,
        identities,
        latency: Duration::ZERO,
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox binds its listeners")
}

/// A plain-HTTP client. reqwest is built with `rustls-no-provider`, and even a client
/// that never speaks TLS panics unless a process-wide crypto provider is installed.
fn client() -> reqwest::Client {
    // Err only means another test installed it first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// An answer: status, headers, raw body, and the body as JSON (`Null` when it is not).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
    json: Value,
}

/// Calls `server` with its valid credentials.
async fn call(sandbox: &Sandbox, server: &BlockServer, method: Method, path: &str, body: Option<Value>) -> Answer {
    let request = client().request(method, format!("{}{path}", server.base_url));
    let request = with_credentials(sandbox, server, request);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    answer(request).await
}

fn with_credentials(
    sandbox: &Sandbox,
    server: &BlockServer,
    request: reqwest::RequestBuilder,
) -> reqwest::RequestBuilder {
    let c = &sandbox.credentials;
    match server.name {
        "sales" => request.bearer_auth(&c.sales_token).header("AppId", &c.sales_app_id),
        "search" => request.bearer_auth(&c.search_token).header("AppId", &c.search_app_id),
        "assets" => request.bearer_auth(&c.assets_token).header("AppId", &c.assets_app_id),
        "b2b" => request.header("Authorization", format!("Token {}", c.b2b_token)),
        _ => request.header("Authorization", format!("Api-Token {}", c.crm_api_key)),
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a readable body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

#[tokio::test]
async fn the_same_seed_builds_the_same_data() {
    let first = sandbox_with(7, 40).await;
    let second = sandbox_with(7, 40).await;
    let other = sandbox_with(8, 40).await;
    assert_eq!(first.demo, second.demo);
    assert_ne!(first.demo.identities[0].unique_id, other.demo.identities[0].unique_id);

    let id = &first.demo.identities[0].unique_id;
    let a = call(&first, &first.sales, Method::GET, &format!("/users/{id}/"), None).await;
    let b = call(&second, &second.sales, Method::GET, &format!("/users/{id}/"), None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json, b.json);
    let person = first.demo.persons[0].id;
    let a = call(
        &first,
        &first.crm,
        Method::GET,
        &format!("/api/crm/persons/{person}/"),
        None,
    )
    .await;
    let b = call(
        &second,
        &second.crm,
        Method::GET,
        &format!("/api/crm/persons/{person}/"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json, b.json);
}

#[tokio::test]
async fn bad_credentials_are_refused_in_each_blocks_style_and_recorded() {
    let sandbox = sandbox().await;
    let client = client();

    let no_token = answer(client.get(format!("{}/users/", sandbox.sales.base_url))).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.json["errors"][0]["status"], "401");
    assert_eq!(no_token.json["errors"][0]["code"], "unauthorized");

    let wrong_app = client
        .get(format!("{}/users/", sandbox.sales.base_url))
        .bearer_auth(&sandbox.credentials.sales_token)
        .header("AppId", "someone-else");
    let wrong_app = answer(wrong_app).await;
    assert_eq!(wrong_app.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong_app.json["errors"][0]["status"], "403");

    let b2b = answer(
        client
            .get(format!("{}/api/v1/users/", sandbox.b2b.base_url))
            .header("Authorization", "Token nope"),
    )
    .await;
    assert_eq!(b2b.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b2b.json, json!({ "detail": "Invalid token." }));

    let crm = answer(client.get(format!("{}/api/crm/persons/", sandbox.crm.base_url))).await;
    assert_eq!(crm.status, StatusCode::UNAUTHORIZED);
    assert!(crm.json["detail"].is_string());

    assert_eq!(sandbox.sales.control.request_count(), 2);
    assert_eq!(sandbox.sales.control.count("GET", "/users"), 2);
    let recorded = &sandbox.sales.control.requests()[1];
    assert_eq!(recorded.header("appid"), Some("someone-else"));
    assert_eq!(sandbox.b2b.control.count("get", "/api/v1/"), 1);
}

#[tokio::test]
async fn sales_lists_are_paginated_with_partial_items() {
    let sandbox = sandbox().await;
    let in_sales = sandbox.demo.identities.iter().filter(|i| i.in_sales).count();
    let page = call(&sandbox, &sandbox.sales, Method::GET, "/users/?page=2&records=10", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.json["meta"]["totalRecords"], in_sales);
    assert_eq!(page.json["meta"]["totalPages"], in_sales.div_ceil(10));
    let items = page.json["data"].as_array().expect("a data array");
    assert_eq!(items.len(), 10);
    assert_eq!(items[0]["type"], "user");
    assert!(items[0]["attributes"].get("phone").is_none());

    let id = items[0]["id"].as_str().expect("an id");
    let detail = call(&sandbox, &sandbox.sales, Method::GET, &format!("/users/{id}"), None).await;
    assert!(detail.json["data"]["attributes"].get("orders_count").is_some());
}

#[tokio::test]
async fn drf_lists_link_their_pages_absolutely() {
    let sandbox = sandbox().await;
    let persons = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        "/api/crm/persons/?page_size=5",
        None,
    )
    .await;
    assert_eq!(persons.json["count"], sandbox.demo.persons.len());
    assert_eq!(
        persons.json["next"],
        format!("{}/api/crm/persons/?page=2&page_size=5", sandbox.crm.base_url)
    );
    assert_eq!(persons.json["previous"], Value::Null);
    assert_eq!(persons.json["results"].as_array().map(Vec::len), Some(5));

    let second = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        "/persons/?page=2&page_size=5",
        None,
    )
    .await;
    assert_eq!(
        second.json["previous"],
        format!("{}/persons/?page_size=5", sandbox.crm.base_url)
    );

    let too_far = call(&sandbox, &sandbox.crm, Method::GET, "/api/crm/persons/?page=999", None).await;
    assert_eq!(too_far.status, StatusCode::NOT_FOUND);
    assert_eq!(too_far.json, json!({ "detail": "Invalid page." }));

    let listed = sandbox.demo.b2b_users.iter().filter(|u| u.listed).count();
    let users = call(&sandbox, &sandbox.b2b, Method::GET, "/api/v1/users/?limit=2", None).await;
    assert_eq!(users.json["count"], listed);
    assert_eq!(
        users.json["next"],
        format!("{}/api/v1/users/?limit=2&page=2", sandbox.b2b.base_url)
    );
    let user = &users.json["results"][0];
    assert!(user["division"]["division_type"].is_string());
    assert!(user["remote_id"].is_number());
}

#[tokio::test]
async fn b2b_email_filter_ignores_case() {
    let sandbox = sandbox().await;
    let user = sandbox
        .demo
        .b2b_users
        .iter()
        .find(|u| u.listed && u.identity_id.is_some())
        .expect("a listed identity user");
    let lower = user.email.to_lowercase();
    let found = call(
        &sandbox,
        &sandbox.b2b,
        Method::GET,
        &format!("/api/v1/users/?email={lower}"),
        None,
    )
    .await;
    assert_eq!(found.json["count"], 1);
    assert_eq!(found.json["results"][0]["email"], user.email);
}

#[tokio::test]
async fn updates_answer_only_what_changed() {
    let sandbox = sandbox().await;
    let id = &sandbox.demo.identities[0].unique_id;
    let body = json!({ "user": { "display_name": "Jane S." } });
    let updated = call(
        &sandbox,
        &sandbox.sales,
        Method::PUT,
        &format!("/users/{id}/"),
        Some(body),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    let attributes = updated.json["data"]["attributes"].as_object().expect("attributes");
    let mut keys: Vec<&str> = attributes.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["display_name", "unique_id", "updated_at"]);

    let detail = call(&sandbox, &sandbox.sales, Method::GET, &format!("/users/{id}/"), None).await;
    assert_eq!(detail.json["data"]["attributes"]["display_name"], "Jane S.");
    assert!(detail.json["data"]["attributes"]["email"].is_string());
}

#[tokio::test]
async fn registering_twice_is_refused_the_way_each_block_does() {
    let sandbox = sandbox().await;
    let id = &sandbox.demo.identities[0].unique_id;
    let user = json!({ "user": { "email": "x@example.com" } });

    let sales = call(
        &sandbox,
        &sandbox.sales,
        Method::POST,
        &format!("/users/{id}/register/"),
        Some(user.clone()),
    )
    .await;
    assert_eq!(sales.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(sales.json["errors"][0]["detail"], "Unique has already been taken");

    let search = call(
        &sandbox,
        &sandbox.search,
        Method::POST,
        &format!("/identities/{id}/register"),
        Some(user),
    )
    .await;
    assert_eq!(search.status, StatusCode::CONFLICT);

    let blank = json!({ "user": { "email": " " } });
    let fresh = "7b0e7a9e-2f43-4c1e-9b84-3f8f4c7f0a11";
    let refused = call(
        &sandbox,
        &sandbox.sales,
        Method::POST,
        &format!("/users/{fresh}/register/"),
        Some(blank),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json["errors"][0]["detail"], "Email can't be blank");

    let created = json!({ "user": { "email": "new@example.com", "phone": "+1555" } });
    let created = call(
        &sandbox,
        &sandbox.sales,
        Method::POST,
        &format!("/users/{fresh}/register/"),
        Some(created),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json["data"]["attributes"]["unique_id"], fresh);
    let read = call(&sandbox, &sandbox.sales, Method::GET, &format!("/users/{fresh}"), None).await;
    assert_eq!(read.json["data"]["attributes"]["phone"], "+1555");
}

#[tokio::test]
async fn link_user_refuses_non_members_and_keeps_an_existing_binding() {
    let sandbox = sandbox().await;
    let demo = &sandbox.demo;
    let bound = demo
        .persons
        .iter()
        .find(|p| p.platform_user.is_some())
        .expect("a bound person");
    let other_member = demo
        .platform_member_user_ids
        .iter()
        .copied()
        .find(|id| Some(*id) != bound.platform_user)
        .expect("another member");

    let path = format!("/api/crm/persons/{}/link-user/", bound.id);
    let refused = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        &path,
        Some(json!({ "user_id": other_member })),
    )
    .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert_eq!(refused.json["platform_user"], json!(bound.platform_user));

    let outsider = json!({ "user_id": demo.non_member_user_id });
    let forbidden = call(&sandbox, &sandbox.crm, Method::POST, &path, Some(outsider)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.json["detail"],
        "User is not a member of this platform; invite them first."
    );
    let unknown = json!({ "user_id": demo.unknown_user_id });
    let unknown = call(&sandbox, &sandbox.crm, Method::POST, &path, Some(unknown)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let free = demo
        .persons
        .iter()
        .find(|p| p.platform_user.is_none())
        .expect("an unbound person");
    let path = format!("/persons/{}/link-user/", free.id);
    let linked = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        &path,
        Some(json!({ "user_id": other_member })),
    )
    .await;
    assert_eq!(linked.status, StatusCode::OK);
    assert_eq!(linked.json["platform_user"], other_member);
    assert_eq!(linked.json["active"], false);
}

#[tokio::test]
async fn invite_reports_the_existing_active_invitation() {
    let sandbox = sandbox().await;
    let invitation = &sandbox.demo.invitation;
    let path = format!("/api/crm/persons/{}/invite/", invitation.person_id);
    let conflict = call(&sandbox, &sandbox.crm, Method::POST, &path, Some(json!({}))).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.json["invitation_id"], invitation.id);
    assert_eq!(conflict.json["person_id"], invitation.person_id.to_string());
    assert_eq!(conflict.json["platform_key"], sandbox.demo.crm_platform_key);
    assert!(conflict.json["detail"].is_string());

    let fresh = sandbox
        .demo
        .persons
        .iter()
        .find(|p| !p.primary_email.is_empty() && p.platform_user.is_none() && !p.has_active_invitation)
        .expect("an invitable person");
    let path = format!("/api/crm/persons/{}/invite/", fresh.id);
    let created = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        &path,
        Some(json!({ "redirect_to": "https://app.example/" })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json["invitation_email"], fresh.primary_email);
    let again = call(&sandbox, &sandbox.crm, Method::POST, &path, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json["invitation_id"], created.json["invitation_id"]);

    let no_email = sandbox
        .demo
        .persons
        .iter()
        .find(|p| p.primary_email.is_empty())
        .expect("a person without email");
    let path = format!("/api/crm/persons/{}/invite/", no_email.id);
    let refused = call(&sandbox, &sandbox.crm, Method::POST, &path, None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn drf_blocks_are_strict_about_the_trailing_slash() {
    let sandbox = sandbox().await;
    let crm = call(&sandbox, &sandbox.crm, Method::GET, "/api/crm/persons", None).await;
    assert_eq!(crm.status, StatusCode::NOT_FOUND);
    let bare = call(&sandbox, &sandbox.crm, Method::GET, "/organizations/", None).await;
    assert_eq!(bare.status, StatusCode::OK);
    let b2b = call(&sandbox, &sandbox.b2b, Method::GET, "/api/v1/users", None).await;
    assert_eq!(b2b.status, StatusCode::NOT_FOUND);
    let id = sandbox.demo.b2b_users[0].id;
    let detail = call(
        &sandbox,
        &sandbox.b2b,
        Method::GET,
        &format!("/api/v1/users/{id}"),
        None,
    )
    .await;
    assert_eq!(detail.status, StatusCode::NOT_FOUND);

    for path in ["/users", "/users/"] {
        let sales = call(&sandbox, &sandbox.sales, Method::GET, path, None).await;
        assert_eq!(sales.status, StatusCode::OK, "{path}");
    }
    let bad_uuid = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        "/api/crm/persons/not-a-uuid/",
        None,
    )
    .await;
    assert_eq!(bad_uuid.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_json_is_refused_in_the_blocks_style() {
    let sandbox = sandbox().await;
    let client = client();
    let id = &sandbox.demo.identities[0].unique_id;
    let sales = client
        .put(format!("{}/users/{id}/", sandbox.sales.base_url))
        .header("Content-Type", "application/json")
        .body("{");
    let sales = answer(with_credentials(&sandbox, &sandbox.sales, sales)).await;
    assert_eq!(sales.status, StatusCode::BAD_REQUEST);
    assert_eq!(sales.json["errors"][0]["status"], "400");

    let crm = client
        .post(format!("{}/api/crm/persons/", sandbox.crm.base_url))
        .body("{");
    let crm = answer(with_credentials(&sandbox, &sandbox.crm, crm)).await;
    assert_eq!(crm.status, StatusCode::BAD_REQUEST);
    assert!(
        crm.json["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("JSON parse error"))
    );

    let missing = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        "/api/crm/persons/",
        Some(json!({ "owner": "x" })),
    )
    .await;
    assert_eq!(
        missing.json,
        json!({ "name": ["This field is required."], "owner": ["A valid integer is required."] })
    );
}

#[tokio::test]
async fn merge_retires_duplicates_and_reports_reparented_records() {
    let sandbox = sandbox().await;
    let group = &sandbox.demo.duplicate_groups[1];
    let (primary, duplicates) = group.split_first().expect("a non-empty group");
    let body = json!({ "primary_id": primary, "duplicate_ids": duplicates });
    let merged = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        "/api/crm/persons/merge/",
        Some(body),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK);
    assert_eq!(merged.json["merged_ids"], json!(duplicates));
    assert!(merged.json["reparented"]["deals"].is_u64());
    let retired = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        &format!("/api/crm/persons/{}/", duplicates[0]),
        None,
    )
    .await;
    assert_eq!(retired.json["active"], false);

    let itself = json!({ "primary_id": primary, "duplicate_ids": [primary] });
    let itself = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        "/api/crm/persons/merge/",
        Some(itself),
    )
    .await;
    assert_eq!(itself.status, StatusCode::BAD_REQUEST);
    let nobody = json!({ "primary_id": uuid::Uuid::nil(), "duplicate_ids": duplicates });
    let nobody = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        "/api/crm/persons/merge/",
        Some(nobody),
    )
    .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn b2b_create_follows_the_documented_rules() {
    let sandbox = sandbox().await;
    let existing = &sandbox.demo.b2b_users[0];
    let body = |email: &str, division: i64| json!({ "email": email, "first_name": "Ada", "last_name": "Byron", "password": "s3cret!", "division": division });
    let taken = call(
        &sandbox,
        &sandbox.b2b,
        Method::POST,
        "/api/v1/users/",
        Some(body(&existing.email.to_uppercase(), 1)),
    )
    .await;
    assert_eq!(taken.json, json!({ "detail": "User already exists." }));
    let inactive = sandbox.demo.inactive_division_id;
    let refused = call(
        &sandbox,
        &sandbox.b2b,
        Method::POST,
        "/api/v1/users/",
        Some(body("ada@example.com", inactive)),
    )
    .await;
    assert_eq!(
        refused.json,
        json!({ "division": ["Deactivated divisions cannot be assigned to users."] })
    );
    let created = call(
        &sandbox,
        &sandbox.b2b,
        Method::POST,
        "/api/v1/users/",
        Some(body("ada@example.com", 1)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json["division"], 1);
    assert_ne!(created.json["password"], "s3cret!");
    let missing = call(&sandbox, &sandbox.b2b, Method::POST, "/api/v1/users/", Some(json!({}))).await;
    assert_eq!(missing.json["email"], json!(["This field is required."]));
}

#[tokio::test]
async fn fault_knobs_answer_for_the_block_and_still_record() {
    let sandbox = sandbox().await;
    let control = &sandbox.sales.control;

    control.set_failure(1.0, 429);
    let limited = call(&sandbox, &sandbox.sales, Method::GET, "/users/", None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(limited.json["errors"][0]["status"], "429");

    control.reset_faults();
    control.set_failure(0.5, 503);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            call(&sandbox, &sandbox.sales, Method::GET, "/users/", None)
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 503, 200, 503]);

    control.reset_faults();
    control.set_garbage(true);
    let garbage = call(&sandbox, &sandbox.sales, Method::GET, "/users/", None).await;
    assert_eq!(garbage.status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&garbage.text).is_err());

    control.reset_faults();
    control.set_hang(true);
    let hung = client()
        .get(format!("{}/users/", sandbox.sales.base_url))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(hung.is_err());
    assert_eq!(control.request_count(), 7);
}

#[tokio::test]
async fn concurrent_requests_are_served_concurrently() {
    let sandbox = sandbox().await;
    let control = &sandbox.sales.control;
    control.set_latency(Duration::from_millis(60));
    let list = || call(&sandbox, &sandbox.sales, Method::GET, "/users/", None);
    let (a, b, c, d) = tokio::join!(list(), list(), list(), list());
    let answers = [a, b, c, d];
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    assert_eq!(control.request_count(), 4);
    assert!(control.max_in_flight() >= 2, "requests were served concurrently");
}

#[tokio::test]
async fn latency_runs_from_arrival_to_answer_for_answers_and_refusals_alike() {
    let sandbox = sandbox().await;
    let control = &sandbox.sales.control;
    let latency = Duration::from_millis(40);
    control.set_latency(latency);

    let started = std::time::Instant::now();
    let found = call(&sandbox, &sandbox.sales, Method::GET, "/users/", None).await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(started.elapsed() >= latency, "answered after {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let refused = client()
        .get(format!("{}/users/", sandbox.sales.base_url))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() >= latency, "refused after {:?}", started.elapsed());
    assert_eq!(control.request_count(), 2);
}

/// Sends `GET /identities/{id}/?seq={seq}` to Search for each `seq`, one after the other
/// so they arrive in order, and checks each is answered.
async fn get_identities(sandbox: &Sandbox, client: &reqwest::Client, id: &str, seqs: std::ops::Range<usize>) {
    let server = &sandbox.search;
    for seq in seqs {
        let request = client.get(format!("{}/identities/{id}/?seq={seq}", server.base_url));
        let response = with_credentials(sandbox, server, request)
            .send()
            .await
            .expect("the sandbox answers");
        assert_eq!(response.status(), StatusCode::OK, "request {seq}");
    }
}

/// The `seq` query of each retained request, in the order the log holds them.
fn retained_seqs(server: &BlockServer) -> Vec<usize> {
    server
        .control
        .requests()
        .iter()
        .map(|r| {
            let query = r.query.as_deref().expect("every request carries its seq");
            let seq = query.strip_prefix("seq=").expect("a seq query");
            seq.parse().expect("a numeric seq")
        })
        .collect()
}

#[tokio::test]
async fn the_request_log_keeps_the_most_recent_requests_and_counts_them_all() {
    const CAPACITY: usize = 100;
    const SENT: usize = 3_000;
    assert_eq!(
        SandboxOptions::default().request_log_capacity,
        super::DEFAULT_REQUEST_LOG_CAPACITY
    );
    let sandbox = Sandbox::start(SandboxOptions {
        identities: 20,
        request_log_capacity: CAPACITY,
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox binds its listeners");
    let identity = sandbox
        .demo
        .identities
        .iter()
        .find(|i| i.in_search)
        .expect("an identity known to Search");
    let id = identity.unique_id.clone();
    let control = &sandbox.search.control;
    let client = client();

    // Within the capacity, the log holds every request and drops none.
    get_identities(&sandbox, &client, &id, 0..CAPACITY).await;
    assert_eq!(control.request_count(), CAPACITY);
    assert_eq!(control.dropped_requests(), 0);
    assert_eq!(retained_seqs(&sandbox.search), (0..CAPACITY).collect::<Vec<_>>());

    // Past it, the log stays at its bound while the count stays exact.
    let mut sent = CAPACITY;
    while sent < SENT {
        let next = (sent + 500).min(SENT);
        get_identities(&sandbox, &client, &id, sent..next).await;
        sent = next;
        assert_eq!(control.request_count(), sent);
        assert_eq!(control.requests().len(), CAPACITY, "after {sent} requests");
        assert_eq!(control.dropped_requests(), sent - CAPACITY);
    }
    // What it kept are the most recent requests, oldest first.
    assert_eq!(
        retained_seqs(&sandbox.search),
        (SENT - CAPACITY..SENT).collect::<Vec<_>>()
    );
    assert_eq!(control.count("GET", "/identities/"), CAPACITY);
    // The other blocks saw nothing.
    assert_eq!(sandbox.sales.control.request_count(), 0);

    // A cleared log starts over: empty, counting from 0, nothing dropped.
    control.clear_requests();
    assert_eq!(control.request_count(), 0);
    assert_eq!(control.dropped_requests(), 0);
    assert!(control.requests().is_empty());
    get_identities(&sandbox, &client, &id, 0..5).await;
    assert_eq!(control.request_count(), 5);
    assert_eq!(control.dropped_requests(), 0);
    assert_eq!(retained_seqs(&sandbox.search), (0..5).collect::<Vec<_>>());
    // ... and drops again only once it is over its bound once more.
    get_identities(&sandbox, &client, &id, 5..CAPACITY + 10).await;
    assert_eq!(control.request_count(), CAPACITY + 10);
    assert_eq!(control.dropped_requests(), 10);
    assert_eq!(retained_seqs(&sandbox.search), (10..CAPACITY + 10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_request_log_of_capacity_zero_only_counts() {
    let sandbox = Sandbox::start(SandboxOptions {
        identities: 20,
        request_log_capacity: 0,
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox binds its listeners");
    let id = sandbox.demo.identities[0].unique_id.clone();
    get_identities(&sandbox, &client(), &id, 0..3).await;
    let control = &sandbox.search.control;
    assert_eq!(control.request_count(), 3);
    assert_eq!(control.dropped_requests(), 3);
    assert!(control.requests().is_empty());
    assert_eq!(control.count("GET", "/identities/"), 0);
}

async fn b2b_list(sandbox: &Sandbox, query: &str) -> Answer {
    call(
        sandbox,
        &sandbox.b2b,
        Method::GET,
        &format!("/api/v1/users/?{query}"),
        None,
    )
    .await
}

#[tokio::test]
async fn b2b_list_filters_follow_the_documented_types() {
    let sandbox = sandbox().await;
    let list = |query: &'static str| b2b_list(&sandbox, query);
    let demo = &sandbox.demo;
    let listed =
        |keep: &dyn Fn(&crate::DemoB2bUser) -> bool| demo.b2b_users.iter().filter(|u| u.listed && keep(u)).count();
    let sub: Vec<i64> = demo
        .b2b_divisions
        .iter()
        .filter(|d| d.division_type == "sub")
        .map(|d| d.id)
        .collect();

    let found = list("is_active=false&limit=100").await;
    assert_eq!(found.json["count"], listed(&|u| !u.is_active));
    let found = list("division_type=sub&limit=100").await;
    assert_eq!(found.json["count"], listed(&|u| sub.contains(&u.division_id)));
    let found = list("division=1&first_name=PURCH&last_name=desk&phone_number=0555").await;
    assert_eq!(
        found.json["count"],
        listed(&|u| u.division_id == 1 && u.identity_id.is_none())
    );
    let found = list("id=2").await;
    assert_eq!(found.json["results"][0]["id"], 2);
    // An unlisted user stays out of the list even when named by id.
    let unlisted = demo
        .b2b_users
        .iter()
        .find(|u| !u.listed)
        .expect("a user without a remote id");
    assert_eq!(
        b2b_list(&sandbox, &format!("id={}", unlisted.id)).await.json["count"],
        0
    );

    for (query, field) in [
        ("is_active=maybe", "is_active"),
        ("division_type=both", "division_type"),
        ("division=999", "division"),
        ("id=abc", "id"),
    ] {
        let refused = list(query).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(refused.json[field].is_array(), "{query}: {}", refused.text);
    }
}

#[tokio::test]
async fn b2b_update_validates_the_division_and_reactivates_the_user() {
    let sandbox = sandbox().await;
    let demo = &sandbox.demo;
    let user = demo
        .b2b_users
        .iter()
        .find(|u| u.is_active && u.division_id != demo.inactive_division_id)
        .expect("an active user");
    let path = format!("/api/v1/users/{}/", user.id);
    let put = |body: Value| call(&sandbox, &sandbox.b2b, Method::PUT, &path, Some(body));
    let refused = put(json!({ "division": demo.inactive_division_id })).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json,
        json!({ "division": ["Deactivated divisions cannot be assigned to users."] })
    );
    let deactivated = call(
        &sandbox,
        &sandbox.b2b,
        Method::POST,
        &format!("{path}deactivate/"),
        None,
    )
    .await;
    assert_eq!(deactivated.status, StatusCode::OK);
    let updated = put(json!({ "phone_number": "" })).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.json["phone_number"], "");
    assert!(
        updated.json["division"].is_i64(),
        "the write answer names the division by id"
    );
    let shown = call(&sandbox, &sandbox.b2b, Method::GET, &path, None).await;
    assert_eq!(shown.json["is_active"], true, "an update activates an inactive user");
    let stuck = demo
        .b2b_users
        .iter()
        .find(|u| u.division_id == demo.inactive_division_id && !u.is_active)
        .expect("an inactive user in the inactive division");
    let refused = call(
        &sandbox,
        &sandbox.b2b,
        Method::PUT,
        &format!("/api/v1/users/{}/", stuck.id),
        Some(json!({ "first_name": "Still" })),
    )
    .await;
    assert_eq!(refused.json, json!({ "detail": "Division is not active." }));
    let null = put(json!({ "first_name": null })).await;
    assert_eq!(null.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn update_remote_id_brings_a_user_into_the_list() {
    let sandbox = sandbox().await;
    let user = sandbox
        .demo
        .b2b_users
        .iter()
        .find(|u| !u.listed)
        .expect("an unlisted user");
    let path = format!("/api/v1/users/{}/update_remote_id/", user.id);
    let answered = call(&sandbox, &sandbox.b2b, Method::POST, &path, None).await;
    assert_eq!((answered.status, answered.json.clone()), (StatusCode::OK, json!({})));
    let found = call(
        &sandbox,
        &sandbox.b2b,
        Method::GET,
        &format!("/api/v1/users/?id={}", user.id),
        None,
    )
    .await;
    assert_eq!(found.json["count"], 1);
    assert!(found.json["results"][0]["remote_id"].is_i64());
}

#[tokio::test]
async fn crm_free_form_fields_take_null_and_required_text_does_not() {
    let sandbox = sandbox().await;
    let person = sandbox.demo.persons[0].id;
    let path = format!("/api/crm/persons/{person}/");
    let patched = call(
        &sandbox,
        &sandbox.crm,
        Method::PATCH,
        &path,
        Some(json!({ "metadata": null, "emails": null, "job_title": "" })),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert!(patched.json["metadata"].is_null() && patched.json["emails"].is_null());
    assert_eq!(patched.json["platform"], sandbox.demo.crm_platform_id);
    let refused = call(
        &sandbox,
        &sandbox.crm,
        Method::PATCH,
        &path,
        Some(json!({ "name": null })),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json["name"], json!(["This field may not be null."]));
}

#[tokio::test]
async fn assets_lists_every_user_without_pagination() {
    let sandbox = sandbox().await;
    let listed = call(&sandbox, &sandbox.assets, Method::GET, "/users", None).await;
    let in_assets = sandbox.demo.identities.iter().filter(|i| i.in_assets).count();
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(in_assets));
    assert!(
        listed.json.get("meta").is_none(),
        "the contract documents no pagination"
    );
}

async fn large_sandbox(counts: LargeData) -> Sandbox {
    Sandbox::start(SandboxOptions {
        size: SandboxSize::Large(counts),
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox binds its listeners")
}

fn large_index(sandbox: &Sandbox) -> &LargeIndex {
    sandbox.large.as_ref().expect("a large sandbox describes its records")
}

#[tokio::test]
async fn a_large_sandbox_pages_entities_to_the_organization_on_the_last_page() {
    let sandbox = large_sandbox(LargeData {
        crm_persons: 20,
        crm_organizations: 6,
        sales_entities: 20_500,
        sales_users: 5,
        b2b_users: 5,
    })
    .await;
    let large = large_index(&sandbox);
    assert!(sandbox.demo.identities.is_empty() && sandbox.demo.persons.is_empty());
    let first = call(
        &sandbox,
        &sandbox.sales,
        Method::GET,
        "/entities/?page=1&records=100",
        None,
    )
    .await;
    assert_eq!(first.json["meta"], json!({ "totalPages": 205, "totalRecords": 20_500 }));
    let first_org = large
        .first_page_organization_id
        .expect("an organization on the first page");
    assert_eq!(first.json["data"][0]["id"], first_org.to_string());
    assert_eq!(first.json["data"][0]["attributes"]["entity_type"], "organization");

    let last = call(
        &sandbox,
        &sandbox.sales,
        Method::GET,
        "/entities/?page=205&records=100",
        None,
    )
    .await;
    let items = last.json["data"].as_array().expect("a data array");
    assert_eq!(items.len(), 100);
    let last_org = large
        .last_page_organization_id
        .expect("an organization on the last page");
    assert_eq!(items[99]["id"], last_org.to_string());
    let organization = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        &format!("/api/crm/organizations/{last_org}/"),
        None,
    )
    .await;
    assert_eq!(organization.status, StatusCode::OK);
    assert_eq!(organization.json["name"], items[99]["attributes"]["name"]);
}

#[tokio::test]
async fn a_large_b2b_email_filter_lists_the_look_alikes_before_the_exact_user() {
    let sandbox = large_sandbox(LargeData {
        crm_persons: 10,
        crm_organizations: 3,
        sales_entities: 10,
        sales_users: 400,
        b2b_users: LargeData::PRODUCTION.b2b_users,
    })
    .await;
    let target = large_index(&sandbox).look_alike.clone().expect("a look-alike target");
    assert!(target.contained_in > 250);

    let base = &sandbox.b2b.base_url;
    let mut query = format!("email={}&limit=100", target.email);
    let mut seen = Vec::new();
    for page in 1.. {
        let answer = b2b_list(&sandbox, &query).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json["count"], target.contained_in + 1);
        let ids: Vec<i64> = answer.json["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter_map(|u| u["id"].as_i64())
            .collect();
        if page == 1 {
            assert_eq!(ids.len(), 100);
            assert_eq!(answer.json["previous"], Value::Null);
            assert!(
                !ids.contains(&target.user_id),
                "the exact user is not on the first page"
            );
        }
        seen.extend(ids);
        match answer.json["next"].as_str() {
            Some(next) => {
                assert_eq!(
                    next,
                    format!(
                        "{base}/api/v1/users/?email=ann%40large.example&limit=100&page={}",
                        page + 1
                    )
                );
                query = next.split_once('?').map(|(_, q)| q.to_owned()).expect("a query");
            }
            None => {
                assert_eq!(page, (target.contained_in + 1).div_ceil(100));
                assert!(answer.json["previous"].is_string());
                break;
            }
        }
    }
    assert_eq!(seen.len(), target.contained_in + 1);
    assert_eq!(seen.last(), Some(&target.user_id));

    // The default page size pages the same list in twenties; an exact user is found in any case.
    let default = b2b_list(&sandbox, &format!("email={}", target.stored_email.to_uppercase())).await;
    assert_eq!(default.json["count"], target.contained_in + 1);
    assert_eq!(default.json["results"].as_array().map(Vec::len), Some(20));
    let detail = call(
        &sandbox,
        &sandbox.b2b,
        Method::GET,
        &format!("/api/v1/users/{}/", target.user_id),
        None,
    )
    .await;
    assert_eq!(detail.json["email"], target.stored_email);
    let beyond = b2b_list(&sandbox, &format!("email={}&limit=100&page=5", target.email)).await;
    assert_eq!(beyond.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_large_crm_serves_deep_pages_and_persons() {
    let sandbox = large_sandbox(LargeData {
        crm_persons: LargeData::PRODUCTION.crm_persons,
        crm_organizations: 200,
        sales_entities: 10,
        sales_users: 300,
        b2b_users: 5,
    })
    .await;
    let large = large_index(&sandbox);
    let deepest = large.deep_persons.last().expect("deep persons");
    assert_eq!(deepest.position, 39_999);

    let page = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        "/api/crm/persons/?page=400&page_size=100",
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.json["count"], 40_000);
    assert_eq!(page.json["next"], Value::Null);
    assert_eq!(
        page.json["previous"],
        format!("{}/api/crm/persons/?page=399&page_size=100", sandbox.crm.base_url)
    );
    assert_eq!(page.json["results"][99]["id"], deepest.id.to_string());
    assert_eq!(page.json["results"][99]["unique_id"], deepest.unique_id);
    let beyond = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        "/api/crm/persons/?page=401&page_size=100",
        None,
    )
    .await;
    assert_eq!(beyond.status, StatusCode::NOT_FOUND);

    for deep in &large.deep_persons {
        let person = call(
            &sandbox,
            &sandbox.crm,
            Method::GET,
            &format!("/api/crm/persons/{}/", deep.id),
            None,
        )
        .await;
        assert_eq!(person.status, StatusCode::OK);
        assert_eq!(person.json["primary_email"], deep.primary_email);
        let page = deep.position / 100 + 1;
        let listed = call(
            &sandbox,
            &sandbox.crm,
            Method::GET,
            &format!("/api/crm/persons/?page={page}&page_size=100"),
            None,
        )
        .await;
        assert_eq!(listed.json["results"][deep.position % 100]["id"], deep.id.to_string());
    }

    let crowded = large.crowded_organization_id.expect("a crowded organization");
    let members = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        &format!("/api/crm/persons/?organization={crowded}&page_size=100&page=last"),
        None,
    )
    .await;
    assert_eq!(members.json["count"], large.crowded_organization_persons);
    assert!(large.crowded_organization_persons > 100);
    assert_eq!(members.json["next"], Value::Null);

    // Lookups by id follow creates and deletes.
    let created = call(
        &sandbox,
        &sandbox.crm,
        Method::POST,
        "/api/crm/persons/",
        Some(json!({ "name": "Late Arrival", "organization": crowded })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json["id"].as_str().expect("an id").to_owned();
    let path = format!("/api/crm/persons/{}/", large.deep_persons[0].id);
    assert_eq!(
        call(&sandbox, &sandbox.crm, Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&sandbox, &sandbox.crm, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let moved = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        &format!("/api/crm/persons/{}/", deepest.id),
        None,
    )
    .await;
    assert_eq!(moved.json["id"], deepest.id.to_string());
    let late = call(
        &sandbox,
        &sandbox.crm,
        Method::GET,
        &format!("/api/crm/persons/{id}/"),
        None,
    )
    .await;
    assert_eq!(late.json["name"], "Late Arrival");
}
