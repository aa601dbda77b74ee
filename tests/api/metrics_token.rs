//! `GATEWAY_METRICS_TOKEN`: `/metrics` answers only `Authorization: Bearer <token>`.

use blocks_gateway::{cache::CacheSettings, config::Settings};
use secrecy::SecretString;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const TOKEN: &str = "scrape-me-9f2c";

async fn scrape(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    app.get("/metrics", authorization).await
}

#[tokio::test]
async fn with_a_token_metrics_need_it_as_a_bearer_token() {
    let app = spawn_app_with(
        |settings| settings.server.metrics_token = Some(SecretString::from(TOKEN)),
        CacheSettings::default(),
    )
    .await;
    for refused in [
        None,
        Some("Bearer wrong"),
        Some("Bearer scrape-me"),
        Some(TOKEN),
        Some("Basic c2NyYXBl"),
    ] {
        let response = scrape(&app, refused).await;
        assert_eq!(response.status(), 401, "{refused:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = response.text().await.expect("text");
        assert!(!body.contains("gateway_") && !body.contains(TOKEN), "{body}");
    }
    let response = scrape(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .expect("text")
            .contains("gateway_operations_in_flight")
    );
    // The rest of the gateway does not ask for it.
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn without_a_token_metrics_stay_open() {
    let app = spawn_app().await;
    assert_eq!(scrape(&app, None).await.status(), 200);
}

#[test]
fn the_token_is_read_from_its_variable_and_never_shown() {
    let settings = Settings::from_variables(&[("GATEWAY_METRICS_TOKEN", TOKEN.to_owned())]).expect("valid");
    assert!(settings.server.metrics_token.is_some());
    assert!(!format!("{settings:?}").contains(TOKEN));
    let empty = Settings::from_variables(&[("GATEWAY_METRICS_TOKEN", String::new())]).expect("valid");
    assert!(empty.server.metrics_token.is_none(), "empty is unset");
    let error = Settings::from_variables(&[("GATEWAY_METRICS_TOKEN", "two words".to_owned())])
        .expect_err("not a bearer token")
        .to_string();
    assert!(
        error.contains("GATEWAY_METRICS_TOKEN") && !error.contains("two words"),
        "{error}"
    );
}
