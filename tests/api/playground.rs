//! The playground over real HTTP: the page under its Content-Security-Policy, its assets
//! from the binary (gzip, cacheable for good), and a real browser (headless Chromium, run
//! by `clients/playground/browser-test.mjs`) that opens it with every request outside
//! loopback blocked, runs the first example and reads data in the result pane, and sees the
//! caller key's placeholder in the headers pane of a gateway whose callers need one.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use blocks_gateway::{
    cache::CacheSettings,
    callers::CallerSettings,
    playground::{PAGE_CONTENT_SECURITY_POLICY, asset_path, assets},
};
use reqwest::header;

use crate::helpers::{TestApp, run_to_end, spawn_app, spawn_app_with};

/// GETs `path` below the gateway's root, with `Accept-Encoding` when given.
async fn get(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(format!("http://{}/{path}", app.address));
    if let Some(encoding) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, encoding);
    }
    request.send().await.expect("the gateway answers")
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> Option<&str> {
    response.headers().get(name).and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn the_page_is_revalidated_and_allows_only_its_own_origin() {
    let app = spawn_app().await;
    let page = get(&app, "", None).await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        header_of(&page, header::CONTENT_SECURITY_POLICY),
        Some(PAGE_CONTENT_SECURITY_POLICY)
    );
    assert_eq!(header_of(&page, header::CACHE_CONTROL), Some("no-cache"));
    assert_eq!(header_of(&page, header::CONTENT_TYPE), Some("text/html; charset=utf-8"));
    let html = page.text().await.expect("HTML");
    let script = asset_path(assets::version(), "playground.js");
    assert!(
        html.contains(&format!(r#"<script type="module" src="{script}">"#)),
        "{html}"
    );
    for other_origin in [r#"src="http"#, r#"href="http"#, r#"="//"#] {
        assert!(!html.contains(other_origin), "nothing from another origin: {html}");
    }
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
    ] {
        assert!(PAGE_CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
    }
    assert!(!PAGE_CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
}

#[tokio::test]
async fn every_asset_is_served_gzip_and_cacheable_for_good() {
    let app = spawn_app().await;
    for asset in assets::ASSETS {
        let path = asset_path(assets::version(), asset.name);
        let response = get(&app, &path, Some("gzip, deflate, br")).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header_of(&response, header::CONTENT_ENCODING), Some("gzip"), "{path}");
        assert_eq!(header_of(&response, header::CONTENT_TYPE), Some(asset.content_type));
        assert_eq!(
            header_of(&response, header::CACHE_CONTROL),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(header_of(&response, header::VARY), Some("accept-encoding"));
        assert_eq!(response.bytes().await.expect("body").as_ref(), asset.gzip, "{path}");
    }
}

#[tokio::test]
async fn a_client_without_gzip_gets_the_file_itself() {
    let app = spawn_app().await;
    let path = asset_path(assets::version(), "playground.css");
    let response = get(&app, &path, Some("br;q=1, gzip;q=0")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_of(&response, header::CONTENT_ENCODING), None);
    let css = response.text().await.expect("CSS");
    assert!(css.contains(".graphiql-container"), "GraphiQL's stylesheet");
}

#[tokio::test]
async fn another_build_or_an_unknown_file_is_not_found() {
    let app = spawn_app().await;
    for path in [
        asset_path("0123456789abcdef", "playground.js"),
        asset_path(assets::version(), "missing.js"),
        asset_path(assets::version(), "..%2FCargo.toml"),
    ] {
        assert_eq!(get(&app, &path, Some("gzip")).await.status(), 404, "{path}");
    }
}

/// Why the browser test cannot run here, when it cannot.
fn browser_missing(clients: &Path, chromium: &Path) -> Option<String> {
    if !clients.join("node_modules/playwright-core").is_dir() {
        return Some("clients/node_modules is missing (run `npm ci --prefix clients`)".to_owned());
    }
    if !chromium.is_file() {
        return Some(format!(
            "no Chromium at {} (`apt-get install chromium`, or set CHROMIUM)",
            chromium.display()
        ));
    }
    None
}

/// Where the browser test leaves its screenshot: `PLAYGROUND_SCREENSHOT` (the README's
/// `docs/playground.png` is taken this way), else the test's scratch directory.
fn screenshot_path() -> PathBuf {
    match std::env::var_os("PLAYGROUND_SCREENSHOT") {
        Some(path) => Path::new(env!("CARGO_MANIFEST_DIR")).join(path),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("playground.png"),
    }
}

#[tokio::test]
async fn the_playground_runs_the_first_example_in_a_browser_without_leaving_the_origin() {
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients");
    let chromium = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if let Some(reason) = browser_missing(&clients, &chromium) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the playground browser test cannot run in CI: {reason}"
        );
        eprintln!("SKIPPED: the playground browser test did not run: {reason}");
        return;
    }
    let app = spawn_app().await;
    let keyed = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::service(&["playground-secret-key"]),
        CacheSettings::default(),
    )
    .await;
    let url = format!("http://{}/", app.address);
    let keyed_url = format!("http://{}/", keyed.address);
    let screenshot = screenshot_path();
    let mut browser_test = Command::new("node");
    browser_test
        .arg("playground/browser-test.mjs")
        .args([&url, &screenshot.display().to_string(), &keyed_url])
        .env("CHROMIUM", chromium)
        .current_dir(clients);
    let output = run_to_end(browser_test).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n(screenshot: {})",
        String::from_utf8_lossy(&output.stderr),
        screenshot.display()
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("the script prints its report");
    assert_eq!(report["blocked"], serde_json::json!([]), "{report:#}");
    assert!(report["personListTotalCount"].as_u64() > Some(0), "{report:#}");
    let headers_pane = report["keyedHeadersPane"]
        .as_str()
        .expect("the keyed page's headers pane");
    assert!(headers_pane.contains("Bearer <your API key>"), "{headers_pane}");
    assert!(!headers_pane.contains("playground-secret-key"));
    // The browser fetched the page, its assets and GraphQL, all from the gateway.
    let requests: Vec<&str> = report["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|request| request.as_str())
        .collect();
    for expected in ["GET /", "POST /graphql"] {
        assert!(requests.contains(&expected), "{requests:?}");
    }
    for asset in ["playground.js", "playground.css", "graphql.worker.js"] {
        let path = format!("GET /{}", asset_path(assets::version(), asset));
        assert!(requests.contains(&path.as_str()), "{path} in {requests:?}");
    }
    assert!(std::fs::metadata(&screenshot).is_ok_and(|file| file.len() > 10_000));
}
