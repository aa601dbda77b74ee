//! Who may call: gateway API keys (`service`), forwarded block credentials (`forward`) and
//! the cache partition per forwarded credential set; the `hash-key` command.

use blocks_gateway::{
    cache::CacheSettings,
    callers::{CallerSettings, hash_key},
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const KEY: &str = "caller-key-5f1c9a";
const SALES_AND_SEARCH: &str = "query ($id: ID!) { identity(id: $id) { sales { email } search { name } } }";

fn identity_id(app: &TestApp) -> String {
    app.sandbox
        .demo
        .identities
        .iter()
        .find(|identity| identity.in_sales && identity.in_search)
        .expect("an identity in Sales and Search")
        .unique_id
        .clone()
}

/// POSTs `query` with extra headers; the status, the `WWW-Authenticate` header and the body.
async fn post_with(
    app: &TestApp,
    headers: &[(&str, &str)],
    query: &str,
    variables: Value,
) -> (u16, Option<String>, Value) {
    let mut request = app
        .http
        .post(app.endpoint())
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (status, challenge, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn service_mode_turns_away_callers_without_a_valid_key_before_any_upstream_request() {
    let app = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::service(&[KEY]),
        CacheSettings::default(),
    )
    .await;
    let id = identity_id(&app);
    let variables = json!({ "id": id });

    let wrong = format!("Bearer {KEY}-not");
    for headers in [
        vec![],
        vec![("authorization", wrong.as_str())],
        vec![("authorization", KEY)],
    ] {
        let (status, challenge, body) = post_with(&app, &headers, SALES_AND_SEARCH, variables.clone()).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
        assert!(body.get("data").is_none(), "{body}");
        assert!(!body.to_string().contains(KEY), "the key is never echoed: {body}");
    }
    assert_eq!(app.total_requests(), 0, "a refused caller costs no upstream request");

    let bearer = format!("Bearer {KEY}");
    let (status, _, body) = post_with(&app, &[("authorization", &bearer)], SALES_AND_SEARCH, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
}

fn sales_headers(app: &TestApp) -> [(&'static str, String); 2] {
    let credentials = &app.sandbox.credentials;
    [
        ("x-sales-authorization", format!("Bearer {}", credentials.sales_token)),
        ("x-sales-appid", credentials.sales_app_id.clone()),
    ]
}

fn as_refs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(name, value)| (*name, value.as_str())).collect()
}

#[tokio::test]
async fn forward_mode_passes_each_callers_credentials_and_refuses_blocks_without_one() {
    let app = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::forward(),
        CacheSettings::default(),
    )
    .await;
    let id = identity_id(&app);
    let headers = sales_headers(&app);

    let (status, _, body) = post_with(&app, &as_refs(&headers), SALES_AND_SEARCH, json!({ "id": id })).await;

    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["identity"]["sales"]["email"].is_string(), "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(errors[0]["extensions"]["block"], "SEARCH");
    assert_eq!(
        app.block("search").control.request_count(),
        0,
        "no credential, no request"
    );
    let sales = app.block("sales").control.requests();
    assert!(!sales.is_empty());
    let credentials = &app.sandbox.credentials;
    for request in &sales {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {}", credentials.sales_token).as_str())
        );
        assert_eq!(request.header("appid"), Some(credentials.sales_app_id.as_str()));
    }
}

#[tokio::test]
async fn forwarded_credentials_partition_the_cache_so_one_caller_never_gets_anothers_data() {
    let app = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::forward(),
        CacheSettings::default(),
    )
    .await;
    let id = identity_id(&app);
    let query = "query ($id: ID!) { identity(id: $id) { sales { email } } }";
    let allowed = sales_headers(&app);
    let impostor = [
        ("x-sales-authorization", "Bearer stolen-guess".to_owned()),
        ("x-sales-appid", app.sandbox.credentials.sales_app_id.clone()),
    ];
    let sales = &app.block("sales").control;

    let (_, _, first) = post_with(&app, &as_refs(&allowed), query, json!({ "id": id })).await;
    assert!(first["data"]["identity"]["sales"]["email"].is_string(), "{first}");
    assert_eq!(sales.request_count(), 1);

    let (_, _, second) = post_with(&app, &as_refs(&impostor), query, json!({ "id": id })).await;
    assert_eq!(sales.request_count(), 2, "the second caller reached the block itself");
    assert!(second["data"]["identity"]["sales"].is_null(), "{second}");
    assert_eq!(second["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{second}");
    assert_eq!(second["errors"][0]["extensions"]["status"], 401, "{second}");

    let (_, _, again) = post_with(&app, &as_refs(&allowed), query, json!({ "id": id })).await;
    assert_eq!(again["data"], first["data"]);
    assert_eq!(sales.request_count(), 2, "the first caller's own entry still serves it");
}

#[tokio::test]
async fn hash_key_prints_the_digest_and_never_the_key() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_blocks-gateway"))
        .arg("hash-key")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("  {KEY} \n").as_bytes())
        .expect("write the key");
    let output = child.wait_with_output().expect("the binary ends");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim(), hash_key(KEY));
    assert!(!stdout.contains(KEY) && !String::from_utf8_lossy(&output.stderr).contains(KEY));
}
