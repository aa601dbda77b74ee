//! The shared harness: a gateway on an ephemeral loopback port in front of the sandbox
//! blocks, with typed helpers for queries and for what the blocks saw.

use std::{collections::HashMap, net::SocketAddr};

use blocks_gateway::{
    blocks::{
        BlockName,
        assets::AssetsClient,
        http::{BlockAuth, BlockHttp, HttpPolicy, shared_client},
    },
    cache::CacheSettings,
    config::{ServerSettings, Settings},
    gateway::Gateway,
    link_index::{
        LinkIndexLocation,
        reindex::{NoProgress, ReindexOptions, reindex},
    },
    server::{self, Readiness},
};
use blocks_sandbox::{BlockServer, DemoB2bUser, DemoIndex, DemoPerson, RecordedRequest, Sandbox, SandboxOptions};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A running gateway and its sandbox.
pub struct TestApp {
    pub address: SocketAddr,
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    #[allow(dead_code)]
    pub gateway: Gateway,
    /// The HTTP surface it was served with.
    #[allow(dead_code)]
    pub server: ServerSettings,
    _shutdown: oneshot::Sender<()>,
}

/// Sandbox size for tests: small enough to seed quickly, large enough for paging.
pub const TEST_IDENTITIES: usize = 80;

/// A gateway in front of a fresh sandbox with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, CacheSettings::default()).await
}

/// A gateway whose settings `tweak` may change after they point at the sandbox.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings), cache: CacheSettings) -> TestApp {
    let sandbox = start_sandbox().await;
    spawn_app_on(sandbox, |settings| {
        tweak(settings);
        settings.gateway.cache = cache;
    })
    .await
}

/// A gateway in front of `sandbox`, its settings changed by `tweak`.
pub async fn spawn_app_on(sandbox: Sandbox, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = sandbox_settings(&sandbox);
    tweak(&mut settings);
    let gateway = Gateway::new(&settings.gateway).expect("gateway builds");
    let (address, shutdown) = serve_on_loopback(gateway.clone(), &settings.server).await;
    // Built with the gateway's constructor, which installs the TLS crypto provider.
    let http = shared_client(std::time::Duration::from_secs(5)).expect("client");
    TestApp {
        address,
        sandbox,
        http,
        gateway,
        server: settings.server,
        _shutdown: shutdown,
    }
}

/// Runs `command` (node, for a test written in JavaScript) to its end on a blocking thread:
/// the gateway it talks to keeps answering on the test's runtime meanwhile.
pub async fn run_to_end(mut command: std::process::Command) -> std::process::Output {
    let described = format!("{command:?}");
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the command's thread ends")
        .unwrap_or_else(|error| panic!("{described} cannot run (Node 20 is on the machine): {error}"))
}

/// A fresh sandbox of the test size.
pub async fn start_sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        identities: TEST_IDENTITIES,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

/// Gateway settings pointing at `sandbox` (the variables it names, nothing from this
/// process's environment), the link index in memory, without retries (tests count
/// requests).
pub fn sandbox_settings(sandbox: &Sandbox) -> Settings {
    let mut settings = Settings::from_variables(&sandbox.environment()).expect("sandbox settings");
    settings.gateway.link_index = LinkIndexLocation::Memory;
    settings.gateway.http.max_retries = 0;
    settings
}

/// Serves `gateway` on an ephemeral loopback port until the returned sender is dropped.
pub async fn serve_on_loopback(gateway: Gateway, settings: &ServerSettings) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (shutdown, stopped) = oneshot::channel::<()>();
    let router = server::router(gateway, settings, Readiness::default());
    tokio::spawn(async move {
        let _ = server::serve(listener, router, async {
            let _ = stopped.await;
        })
        .await;
    });
    (address, shutdown)
}

impl TestApp {
    /// The GraphQL endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}/graphql", self.address)
    }

    /// GETs `path` (`/readyz`, `/metrics?...`) of the gateway, with `authorization` as the
    /// `Authorization` header when given.
    pub async fn get(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let request = self.http.get(format!("http://{}{path}", self.address));
        let request = match authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        };
        request.send().await.expect("gateway answers")
    }

    /// POSTs a query and returns the JSON body.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        self.post_json(json!({ "query": query, "variables": variables }))
            .await
            .1
    }

    /// POSTs a JSON body; returns the status and the JSON answer.
    pub async fn post_json(&self, body: Value) -> (u16, Value) {
        self.post_json_with(body, &[]).await
    }

    /// POSTs a JSON body with extra headers; returns the status and the JSON answer.
    pub async fn post_json_with(&self, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.http.post(self.endpoint()).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    /// Forgets every request the blocks saw so far.
    pub fn clear_requests(&self) {
        for server in self.sandbox.servers() {
            server.control.clear_requests();
        }
    }

    /// Requests each block saw, by block name.
    pub fn requests(&self) -> HashMap<&'static str, Vec<RecordedRequest>> {
        self.sandbox
            .servers()
            .into_iter()
            .map(|s| (s.name, s.control.requests()))
            .collect()
    }

    /// Total requests all blocks saw.
    pub fn total_requests(&self) -> usize {
        self.sandbox.servers().iter().map(|s| s.control.request_count()).sum()
    }

    /// Every block server.
    pub fn block(&self, name: &str) -> &BlockServer {
        self.sandbox
            .servers()
            .into_iter()
            .find(|s| s.name == name)
            .expect("known block")
    }

    /// The JSON bodies of the requests `block` saw with this method and exact path, in order
    /// (`Null` for a body that is not JSON).
    #[allow(dead_code)]
    pub fn bodies(&self, block: &str, method: &str, path: &str) -> Vec<Value> {
        self.matching(block, method, path)
            .map(|r| serde_json::from_str(&r.body).unwrap_or(Value::Null))
            .collect()
    }

    /// The query strings of the requests `block` saw with this method and exact path, in
    /// order (`""` for none).
    #[allow(dead_code)]
    pub fn query_strings(&self, block: &str, method: &str, path: &str) -> Vec<String> {
        self.matching(block, method, path)
            .map(|r| r.query.unwrap_or_default())
            .collect()
    }

    fn matching<'a>(&self, block: &str, method: &'a str, path: &'a str) -> impl Iterator<Item = RecordedRequest> + 'a {
        self.block(block)
            .control
            .requests()
            .into_iter()
            .filter(move |r| r.method == method && r.path == path)
    }

    /// Indexes the sandbox's identity links, as `serve` does at start.
    pub async fn index_links(&self) {
        self.gateway.links().ready().await.expect("link index ready");
        reindex(
            self.gateway.clients(),
            self.gateway.links(),
            ReindexOptions::default(),
            &NoProgress,
        )
        .await
        .expect("reindex");
    }

    /// Fails when any block saw the same method, path and query twice.
    pub fn assert_no_duplicate_requests(&self) {
        for (block, requests) in self.requests() {
            let mut seen = HashMap::new();
            for request in requests {
                let key = (request.method.clone(), request.path.clone(), request.query.clone());
                *seen.entry(key).or_insert(0) += 1;
            }
            let duplicates: Vec<_> = seen.into_iter().filter(|(_, n)| *n > 1).collect();
            assert!(duplicates.is_empty(), "{block} saw duplicate requests: {duplicates:?}");
        }
    }
}

/// An Assets client for a test's own Assets server at `base_url` (any credentials).
#[allow(dead_code)]
pub fn assets_client_at(base_url: &str) -> AssetsClient {
    let auth = BlockAuth::BearerWithAppId {
        token: SecretString::from("t"),
        app_id: SecretString::from("a"),
    };
    let client = shared_client(std::time::Duration::from_secs(2)).expect("client");
    let http = BlockHttp::new(
        BlockName::Assets,
        base_url.parse().expect("url"),
        client,
        auth,
        HttpPolicy::default(),
    );
    AssetsClient::new(http)
}

/// The npm project `dir` (relative to the repository root) when its `node_modules` holds
/// `installed`; else `None` after saying the test is skipped (a failure when `CI` is set:
/// `.ci/run` installs it).
pub fn node_project(dir: &str, installed: &str) -> Option<std::path::PathBuf> {
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    if project.join("node_modules").join(installed).exists() {
        return Some(project);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{dir}/node_modules is missing in CI: .ci/run must run `npm ci --prefix {dir}`"
    );
    eprintln!("SKIPPED: {dir}/node_modules is missing (run npm ci --prefix {dir})");
    None
}

/// The first error's `extensions`, or panics with the body.
pub fn first_error_extensions(body: &Value) -> &Value {
    body.pointer("/errors/0/extensions")
        .unwrap_or_else(|| panic!("expected an error: {body}"))
}

/// A seeded person an invitation can reach: with an email, unbound, not yet invited, not a
/// duplicate.
pub fn invitable_person(demo: &DemoIndex) -> &DemoPerson {
    demo.persons
        .iter()
        .find(|p| {
            !p.primary_email.is_empty()
                && p.platform_user.is_none()
                && !p.has_active_invitation
                && p.duplicate_group.is_none()
        })
        .expect("an invitable person")
}

/// The first seeded duplicate group: its primary and the duplicates to merge into it.
pub fn duplicate_group(demo: &DemoIndex) -> (String, Vec<String>) {
    let group = demo.duplicate_groups.first().expect("a duplicate group");
    let (primary, duplicates) = group.split_first().expect("two or more");
    (
        primary.to_string(),
        duplicates.iter().map(ToString::to_string).collect(),
    )
}

/// A seeded active B2B user in an active division (deactivating and reactivating work).
pub fn active_b2b_user(demo: &DemoIndex) -> &DemoB2bUser {
    demo.b2b_users
        .iter()
        .find(|u| u.is_active && u.division_id != demo.inactive_division_id)
        .expect("an active B2B user")
}
