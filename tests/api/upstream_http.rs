//! The rules of the shared HTTP core, seen from the sandbox: only GETs are retried (and
//! only on 502, 503, 504 and connection errors), transport failures and hangs become
//! typed errors, the per-block concurrency bound holds, and ids stay one path segment.

use std::time::Duration;

use blocks_gateway::{
    blocks::{BlockError, BlockName, crm::PersonFields, sales::SalesUserFields},
    cache::CacheSettings,
    config::Settings,
    error_code::ErrorCode,
};
use url::Url;

use crate::{
    clients::{assert_route, sent_once, status_error, take_one},
    helpers::{TestApp, spawn_app, spawn_app_with},
};

/// Short backoff so retried tests stay fast.
const BACKOFF: Duration = Duration::from_millis(1);

/// A gateway whose GETs may be retried twice.
async fn app_with_retries(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(
        |settings| {
            settings.gateway.http.max_retries = 2;
            settings.gateway.http.retry_base_delay = BACKOFF;
            tweak(settings);
        },
        CacheSettings::default(),
    )
    .await
}

/// An id Sales knows.
fn sales_user_id(app: &TestApp) -> String {
    app.sandbox.demo.identities[0].unique_id.clone()
}

/// With `set_failure(0.5, status)` the block fails every second request, starting with
/// the second: one successful GET first makes the next request the failing one.
async fn arm_next_failure(app: &TestApp) {
    let sales = app.gateway.clients().sales().expect("sales configured");
    sales
        .get_user(&sales_user_id(app))
        .await
        .expect("the first request passes");
    app.block("sales").control.clear_requests();
}

#[tokio::test]
async fn a_get_failing_with_503_is_retried_and_succeeds() {
    let app = app_with_retries(|_| {}).await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let control = &app.block("sales").control;
    control.set_failure(0.5, 503);
    arm_next_failure(&app).await;

    let id = sales_user_id(&app);
    let user = sales.get_user(&id).await.expect("the retry succeeds");
    assert_eq!(user.and_then(|u| u.unique_id), Some(id.clone()));
    let requests = control.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_route(request, "GET", &format!("/users/{id}/"), None);
    }
}

#[tokio::test]
async fn a_get_failing_with_502_or_504_is_sent_at_most_one_plus_max_retries_times() {
    for status in [502, 504] {
        let app = app_with_retries(|_| {}).await;
        let sales = app.gateway.clients().sales().expect("sales configured");
        let control = &app.block("sales").control;
        control.set_failure(1.0, status);

        let (answered, _) = status_error(sales.get_user(&sales_user_id(&app)).await);
        assert_eq!(answered, status);
        assert_eq!(control.request_count(), 3, "1 attempt + 2 retries for {status}");
    }
}

#[tokio::test]
async fn writes_failing_with_503_are_never_retried() {
    let app = app_with_retries(|_| {}).await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let control = &app.block("sales").control;
    control.set_failure(0.5, 503);
    let fields = SalesUserFields {
        email: Some("once@example.com".to_owned()),
        ..SalesUserFields::default()
    };
    let id = sales_user_id(&app);

    arm_next_failure(&app).await;
    let (status, _) = status_error(sales.register_user("never-retried", &fields).await);
    assert_eq!(status, 503);
    sent_once(&app, "sales", "POST", "/users/never-retried/register/", None);

    arm_next_failure(&app).await;
    let (status, _) = status_error(sales.update_user(&id, &fields).await);
    assert_eq!(status, 503);
    sent_once(&app, "sales", "PUT", &format!("/users/{id}/"), None);

    // Writes whose answer body is ignored (DELETE) follow the same rule.
    let crm = app.gateway.clients().crm().expect("crm configured");
    let crm_control = &app.block("crm").control;
    crm_control.set_failure(1.0, 503);
    let person = app.sandbox.demo.persons[0].id.to_string();
    let (status, _) = status_error(crm.delete_person(&person).await);
    assert_eq!(status, 503);
    sent_once(&app, "crm", "DELETE", &format!("/api/crm/persons/{person}/"), None);
    let (status, _) = status_error(crm.patch_person(&person, &PersonFields::default()).await);
    assert_eq!(status, 503);
    take_one(&app, "crm");
}

#[tokio::test]
async fn a_get_failing_with_500_is_not_retried() {
    let app = app_with_retries(|_| {}).await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let control = &app.block("sales").control;
    control.set_failure(1.0, 500);

    let (status, _) = status_error(sales.get_user(&sales_user_id(&app)).await);
    assert_eq!(status, 500);
    assert_eq!(control.request_count(), 1);
}

/// A loopback URL nothing listens on.
fn closed_port_url() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    Url::parse(&format!("http://127.0.0.1:{port}/")).expect("valid URL")
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let url = closed_port_url();
    let app = app_with_retries(|settings| {
        for block in &mut settings.gateway.blocks {
            if block.block == BlockName::Sales {
                block.base_url = url.clone();
            }
        }
    })
    .await;
    let sales = app.gateway.clients().sales().expect("sales configured");

    let read = sales.get_user("anyone").await;
    assert!(
        matches!(
            read,
            Err(BlockError::Unreachable {
                block: BlockName::Sales,
                ..
            })
        ),
        "{read:?}"
    );
    let write = sales.register_user("anyone", &SalesUserFields::default()).await;
    assert!(
        matches!(
            write,
            Err(BlockError::Unreachable {
                block: BlockName::Sales,
                ..
            })
        ),
        "{write:?}"
    );
}

#[tokio::test]
async fn a_hanging_block_times_out_at_the_configured_limit() {
    let limit = Duration::from_millis(300);
    let app = app_with_retries(|settings| settings.gateway.http.request_timeout = limit).await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let control = &app.block("sales").control;
    control.set_hang(true);

    // The outer bound only guards the test against hanging itself.
    let result = tokio::time::timeout(Duration::from_secs(10), sales.get_user(&sales_user_id(&app)))
        .await
        .expect("the client gives up by itself");
    match result {
        Err(BlockError::Timeout {
            block: BlockName::Sales,
            timeout,
        }) => assert_eq!(timeout, limit),
        other => panic!("expected a timeout: {other:?}"),
    }
    assert_eq!(control.request_count(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn the_per_block_concurrency_bound_holds() {
    let app = spawn_app_with(
        |settings| settings.gateway.http.max_concurrency = 2,
        CacheSettings::default(),
    )
    .await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let control = &app.block("sales").control;
    control.set_latency(Duration::from_millis(50));
    let ids: Vec<&str> = app
        .sandbox
        .demo
        .identities
        .iter()
        .filter(|i| i.in_sales)
        .take(8)
        .map(|i| i.unique_id.as_str())
        .collect();

    let answers = futures::future::join_all(ids.iter().map(|id| sales.get_user(id))).await;
    for answer in answers {
        assert!(answer.expect("answer").is_some());
    }
    assert_eq!(control.request_count(), 8);
    // Never more than the bound, and the bound was used: the GETs ran side by side.
    assert_eq!(control.max_in_flight(), 2);
}

#[tokio::test]
async fn ids_are_percent_encoded_into_one_path_segment() {
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let cases = [
        ("a/b", "a%2Fb"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("a b", "a%20b"),
        ("100%", "100%25"),
        ("../users", "..%2Fusers"),
    ];
    for (id, encoded) in cases {
        assert!(sales.get_user(id).await.expect("a 404 is an answer").is_none());
        sent_once(&app, "sales", "GET", &format!("/users/{encoded}/"), None);
    }

    // The block decodes the segment back to the very id: a register keeps it exactly.
    let id = "team/a b?c#d%";
    let fields = SalesUserFields {
        email: Some("odd.id@example.com".to_owned()),
        ..SalesUserFields::default()
    };
    let user = sales.register_user(id, &fields).await.expect("201");
    sent_once(&app, "sales", "POST", "/users/team%2Fa%20b%3Fc%23d%25/register/", None);
    assert_eq!(user.unique_id.as_deref(), Some(id));
    let found = sales.get_user(id).await.expect("answer").expect("found");
    assert_eq!(found.unique_id.as_deref(), Some(id));
    take_one(&app, "sales");

    let crm = app.gateway.clients().crm().expect("crm configured");
    assert!(crm.get_person("x/../y").await.expect("a 404 is an answer").is_none());
    sent_once(&app, "crm", "GET", "/api/crm/persons/x%2F..%2Fy/", None);
}

#[tokio::test]
async fn dot_segment_ids_are_refused_without_a_request() {
    // Sent, `.` and `..` would be dropped by URL rules and reach another route
    // (`GET /users/` is the Sales list, `DELETE /api/crm/persons/` the collection).
    let app = spawn_app().await;
    let sales = app.gateway.clients().sales().expect("sales configured");
    let crm = app.gateway.clients().crm().expect("crm configured");
    let refused = |result: Result<(), BlockError>, block: BlockName| match result {
        Err(error @ BlockError::UnaddressableId { .. }) => {
            assert_eq!(error.block(), block);
            assert_eq!(error.code(), ErrorCode::BadUserInput);
        }
        other => panic!("expected a refusal: {other:?}"),
    };
    for id in [".", ".."] {
        refused(sales.get_user(id).await.map(drop), BlockName::Sales);
        let fields = SalesUserFields::default();
        refused(sales.update_user(id, &fields).await.map(drop), BlockName::Sales);
        refused(crm.delete_person(id).await, BlockName::Crm);
    }
    assert_eq!(app.total_requests(), 0, "{:#?}", app.requests());
}
