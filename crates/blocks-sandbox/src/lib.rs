//! The sandbox: the five upstream blocks (Sales, Search, Assets, B2B, CRM) emulated
//! in-process as real HTTP servers on loopback, faithful to their published contracts
//! and seeded with a deterministic data set: the demo set (a few hundred records with every
//! interesting case), or a production-sized one ([`SandboxSize::Large`]).
//!
//! It serves two purposes: `cargo run` with no configuration gets a working playground,
//! and tests get upstreams whose faults (latency, errors, hangs, garbage) they control
//! through each server's [`BlockControl`], and whose received requests they can inspect.
//!
//! The servers run on the current Tokio runtime until it shuts down; dropping the
//! [`Sandbox`] does not stop them.
//!
//! This crate is its own reading of the block contracts: it shares no code with the
//! gateway it emulates the blocks for, so a misreading on one side shows in the other's
//! tests. [`Sandbox::environment`] gives the settings a gateway needs to reach it.

#![warn(missing_docs)]

mod assets;
mod b2b;
mod control;
mod crm;
mod demo;
mod drf;
mod large;
mod rails;
mod respond;
mod sales;
mod search;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use control::{BlockControl, RecordedRequest};
pub use demo::{DemoB2bUser, DemoDivision, DemoIdentity, DemoIndex, DemoInvitation, DemoOrganization, DemoPerson};
pub use large::{LargeB2bIdentity, LargeData, LargeIndex, LargePerson, LookAlike, SandboxSize};

use control::Auth;
use respond::ErrorStyle;

/// The default of [`SandboxOptions::request_log_capacity`]: how many requests each block
/// retains in full. Far more than any test makes between two clears (a few hundred), and
/// at most some 10 MB per block for the bodiless requests of about 1 KB a gateway sends.
/// The bound is on the number of requests, not their size: requests with large bodies
/// (up to the 2 MiB the blocks read) take more.
pub const DEFAULT_REQUEST_LOG_CAPACITY: usize = 10_000;

/// How to build the sandbox.
///
/// Build it with `..SandboxOptions::default()` for the fields you do not set: fields may
/// be added.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Seed of the data: the same seed builds the same records and ids.
    pub seed: u64,
    /// How many identities the demo set seeds (the other records scale with it); a large
    /// data set has its own counts.
    pub identities: usize,
    /// Which data set to seed: the demo set (the default) or a large one.
    pub size: SandboxSize,
    /// Latency every block adds to each answer from the start.
    pub latency: Duration,
    /// How many of its most recent requests each block keeps in full (method, path,
    /// query, headers, body) for [`BlockControl::requests`] and [`BlockControl::count`];
    /// older ones are dropped first, so the sandbox's memory stays bounded however long
    /// it serves. [`BlockControl::request_count`] counts every request regardless, and
    /// [`BlockControl::dropped_requests`] says how many were let go. 0 retains none.
    /// Default: [`DEFAULT_REQUEST_LOG_CAPACITY`] (10,000).
    pub request_log_capacity: usize,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            identities: 300,
            size: SandboxSize::Demo,
            latency: Duration::ZERO,
            request_log_capacity: DEFAULT_REQUEST_LOG_CAPACITY,
        }
    }
}

/// The secrets the sandbox blocks accept. They are fixed, well-known strings: the
/// sandbox holds nothing worth protecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxCredentials {
    /// Sales bearer token.
    pub sales_token: String,
    /// Sales `AppId`.
    pub sales_app_id: String,
    /// Search bearer token.
    pub search_token: String,
    /// Search `AppId`.
    pub search_app_id: String,
    /// Assets bearer token.
    pub assets_token: String,
    /// Assets `AppId`.
    pub assets_app_id: String,
    /// B2B `Token` credential.
    pub b2b_token: String,
    /// CRM `Api-Token` key.
    pub crm_api_key: String,
}

impl Default for SandboxCredentials {
    fn default() -> Self {
        Self {
            sales_token: "sandbox-sales-token".to_owned(),
            sales_app_id: "sandbox-sales-app".to_owned(),
            search_token: "sandbox-search-token".to_owned(),
            search_app_id: "sandbox-search-app".to_owned(),
            assets_token: "sandbox-assets-token".to_owned(),
            assets_app_id: "sandbox-assets-app".to_owned(),
            b2b_token: "sandbox-b2b-token".to_owned(),
            crm_api_key: "sandbox-crm-key".to_owned(),
        }
    }
}

/// One running emulated block.
#[derive(Clone, Debug)]
pub struct BlockServer {
    /// `"sales"`, `"search"`, `"assets"`, `"b2b"` or `"crm"`.
    pub name: &'static str,
    /// `http://127.0.0.1:PORT`, without a trailing slash. For the CRM this is the root:
    /// its paths answer under `/api/crm/` and at the bare root alike.
    pub base_url: String,
    /// Fault knobs and the request log of this block.
    pub control: Arc<BlockControl>,
}

/// The five emulated blocks, their credentials and what was seeded into them.
#[derive(Debug)]
pub struct Sandbox {
    /// Sales (users, entities, customers).
    pub sales: BlockServer,
    /// Search (identities).
    pub search: BlockServer,
    /// Assets (users with assets, entities, ownership).
    pub assets: BlockServer,
    /// B2B commerce (users with divisions).
    pub b2b: BlockServer,
    /// CRM (persons, organizations).
    pub crm: BlockServer,
    /// The credentials each block accepts.
    pub credentials: SandboxCredentials,
    /// What was seeded, so tests can pick ids. With a large data set it lists no records,
    /// only what every data set shares (divisions, the CRM platform, its members, the
    /// seeded invitation): [`Sandbox::large`] describes the records.
    pub demo: DemoIndex,
    /// What a large data set seeded; `None` with the demo set.
    pub large: Option<LargeIndex>,
}

impl Sandbox {
    /// Seeds the data, binds five listeners on `127.0.0.1:0` and serves each block on its
    /// own task. Fails only when a listener cannot be bound. Seeding runs on the calling
    /// task: a large data set takes a fraction of a second in a release build.
    pub async fn start(options: SandboxOptions) -> std::io::Result<Sandbox> {
        let credentials = SandboxCredentials::default();
        let seeded = match options.size {
            SandboxSize::Demo => demo::seed(options.seed, options.identities),
            SandboxSize::Large(counts) => large::seed(options.seed, counts),
        };
        let bearer = |token: &str, app_id: &str| Auth::BearerAndAppId {
            token: token.to_owned(),
            app_id: app_id.to_owned(),
        };

        let sales_auth = bearer(&credentials.sales_token, &credentials.sales_app_id);
        let sales_data = seeded.sales;
        let sales = launch("sales", ErrorStyle::JsonApi, sales_auth, &options, |_| {
            sales::router(sales_data)
        })
        .await?;

        let search_auth = bearer(&credentials.search_token, &credentials.search_app_id);
        let search_data = seeded.search;
        let search = launch("search", ErrorStyle::JsonApi, search_auth, &options, |_| {
            search::router(search_data)
        })
        .await?;

        let assets_auth = bearer(&credentials.assets_token, &credentials.assets_app_id);
        let assets_data = seeded.assets;
        let assets = launch("assets", ErrorStyle::JsonApi, assets_auth, &options, |_| {
            assets::router(assets_data)
        })
        .await?;

        let b2b_auth = Auth::Scheme {
            scheme: "Token",
            token: credentials.b2b_token.clone(),
            missing: "Invalid token.",
            invalid: "Invalid token.",
        };
        let b2b_data = seeded.b2b;
        let b2b = launch("b2b", ErrorStyle::Drf, b2b_auth, &options, |base_url| {
            b2b::router(b2b_data, base_url)
        })
        .await?;

        let crm_auth = Auth::Scheme {
            scheme: "Api-Token",
            token: credentials.crm_api_key.clone(),
            missing: "Authentication credentials were not provided.",
            invalid: "Invalid API key.",
        };
        let crm_data = seeded.crm;
        let crm = launch("crm", ErrorStyle::Drf, crm_auth, &options, |base_url| {
            crm::router(crm_data, base_url)
        })
        .await?;

        Ok(Sandbox {
            sales,
            search,
            assets,
            b2b,
            crm,
            credentials,
            demo: seeded.index,
            large: seeded.large,
        })
    }

    /// The five servers, in the order Sales, Search, Assets, B2B, CRM.
    pub fn servers(&self) -> [&BlockServer; 5] {
        [&self.sales, &self.search, &self.assets, &self.b2b, &self.crm]
    }

    /// How a client reaches these blocks, as the environment variables of the gateway's
    /// configuration (`SALES_API_URL`, `SALES_AUTH_TOKEN`, `SALES_API_KEY`, ...): URLs and
    /// credentials. The CRM's URL is its root (its paths answer under `/api/crm/`).
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let credentials = &self.credentials;
        vec![
            ("SALES_API_URL", self.sales.base_url.clone()),
            ("SALES_AUTH_TOKEN", credentials.sales_token.clone()),
            ("SALES_API_KEY", credentials.sales_app_id.clone()),
            ("SEARCH_API_URL", self.search.base_url.clone()),
            ("SEARCH_AUTH_TOKEN", credentials.search_token.clone()),
            ("SEARCH_API_KEY", credentials.search_app_id.clone()),
            ("ASSETS_API_URL", self.assets.base_url.clone()),
            ("ASSETS_AUTH_TOKEN", credentials.assets_token.clone()),
            ("ASSETS_API_KEY", credentials.assets_app_id.clone()),
            ("B2B_API_URL", self.b2b.base_url.clone()),
            ("B2B_TOKEN", credentials.b2b_token.clone()),
            ("CRM_API_URL", self.crm.base_url.clone()),
            ("CRM_API_KEY", credentials.crm_api_key.clone()),
        ]
    }
}

/// Binds a loopback listener, builds the block's router for its base URL (DRF blocks
/// print absolute page links), wraps it in the control layer and serves it.
async fn launch(
    name: &'static str,
    style: ErrorStyle,
    auth: Auth,
    options: &SandboxOptions,
    build: impl FnOnce(&str) -> Router,
) -> std::io::Result<BlockServer> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let control = Arc::new(BlockControl::new(style, auth, options.request_log_capacity));
    control.set_latency(options.latency);
    let app = control::wrap(build(&base_url), Arc::clone(&control));
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(block = name, error = %err, "sandbox block stopped serving");
        }
    });
    tracing::debug!(block = name, %base_url, "sandbox block listening");
    Ok(BlockServer {
        name,
        base_url,
        control,
    })
}
