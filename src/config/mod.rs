//! Configuration: defaults, then an optional TOML file (`--config`), then the environment
//! (which wins). Every variable is declared once, in [`variables`]; in the TOML file they
//! may be written in lower case (`sales_api_url = "..."`). A bad value stops start-up with
//! a message naming the variable; secrets are held as `SecretString` and never printed.
//!
//! The settings of the layers below (block clients, cache, limits, callers, link index) are
//! their own types, filled here; the settings of the binary's face (the HTTP server, the
//! shutdown) are declared here, since config sits below them.

mod variables;

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Serialized},
    value::{Dict, Value},
};
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use variables::{KEYS, Variable, reference_table, variables};

use crate::{
    admission::PersistedDocumentSettings,
    blocks::{BlockName, BlockSettings, http::BlockAuth},
    cache::{CacheSettings, RedisTierSettings},
    callers::{AuthMode, CallerConfigError, CallerSettings},
    gateway::GatewaySettings,
    link_index::{DEFAULT_SQLITE_FILE, LinkIndexLocation},
    trusted_documents::TrustedDocuments,
};
use variables::{LOADED_KEYS, RawSettings};

/// Where the gateway listens when `GATEWAY_LISTEN` is unset.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000));

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment holds a value of the wrong type.
    #[error("configuration: {0}")]
    Load(String),
    /// A value has the right type but is not usable.
    #[error("configuration: {key}: {problem}")]
    Invalid {
        /// The variable.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// The HTTP surface of the gateway: where it listens and what browsers may do.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address the HTTP server binds (`GATEWAY_LISTEN`).
    pub listen: SocketAddr,
    /// Refuse requests a browser could send cross-site without a CORS preflight
    /// (`GATEWAY_CSRF_PREVENTION`).
    pub csrf_prevention: bool,
    /// Origins allowed to call from a browser (`GATEWAY_CORS_ORIGINS`); none by default.
    pub cors_origins: Vec<HeaderValue>,
    /// The bearer token `/metrics` requires (`GATEWAY_METRICS_TOKEN`); open when `None`.
    pub metrics_token: Option<SecretString>,
    /// Also allow browser origins on a loopback host (`localhost`, `127.0.0.1`, `[::1]`,
    /// any port), so that a frontend dev server can call: the sandbox's default when
    /// `GATEWAY_CORS_ORIGINS` is unset; a configured list replaces it.
    pub cors_loopback: bool,
}

impl Default for ServerSettings {
    /// Loopback port 4000, CSRF prevention on, no cross-origin callers.
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            csrf_prevention: true,
            cors_origins: Vec::new(),
            metrics_token: None,
            cors_loopback: false,
        }
    }
}

/// How the replica drains on SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// After SIGTERM, how long readiness fails while connections are still accepted.
    pub drain_delay: Duration,
    /// How long operations in flight may take once the listener closed.
    pub grace: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            drain_delay: Duration::from_secs(5),
            grace: Duration::from_secs(20),
        }
    }
}

/// Which data set the embedded sandbox seeds (`SANDBOX_SIZE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SandboxSize {
    /// A few hundred records covering every case the schema has (`demo`).
    #[default]
    Demo,
    /// Production-sized: tens of thousands of records per block (`large`).
    Large,
}

impl SandboxSize {
    /// The variable's spelling of this size.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Demo => "demo",
            Self::Large => "large",
        }
    }
}

impl FromStr for SandboxSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "demo" => Ok(Self::Demo),
            "large" => Ok(Self::Large),
            _ => Err(format!("{text:?} is neither `demo` nor `large`")),
        }
    }
}

/// The gateway's validated settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// How the replica drains on SIGTERM.
    pub shutdown: ShutdownSettings,
    /// Serve the embedded sandbox blocks (when no block is configured, or forced with
    /// `GATEWAY_SANDBOX`). Only `main` can start one; it then points the blocks at it.
    pub sandbox: bool,
    /// The data set the sandbox seeds (`SANDBOX_SIZE`); `main` reads it when it starts one.
    pub sandbox_size: SandboxSize,
    /// Everything an operation needs: blocks, cache, limits, callers, link index, documents.
    pub gateway: GatewaySettings,
}

impl Settings {
    /// Loads defaults, then the TOML file (when given), then the environment. The file may
    /// name keys as the environment does (`SALES_API_URL`) or in lower case.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &[])
    }

    /// [`Settings::load`] with `overrides` on top of the environment (`main` puts the
    /// sandbox's URLs and credentials there).
    pub fn load_with(file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid {
                    key: "--config",
                    problem: format!("file {} does not exist", file.display()),
                });
            }
            figment = figment.merge(Serialized::defaults(file_settings(file)?));
        }
        figment = figment
            .merge(Env::raw().only(LOADED_KEYS))
            .merge(Serialized::defaults(pairs(overrides)));
        Self::extract(figment)
    }

    /// Settings from these variables alone, neither file nor environment (tests, and
    /// programs that embed the gateway).
    pub fn from_variables(variables: &[(&str, String)]) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Serialized::defaults(pairs(variables))))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawSettings = figment
            .extract()
            .map_err(|error| ConfigError::Load(error.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawSettings) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some(listen) = &raw.gateway_listen {
            settings.server.listen = listen.parse().map_err(|_| ConfigError::Invalid {
                key: "GATEWAY_LISTEN",
                problem: format!("{listen:?} is not an address like 127.0.0.1:4000"),
            })?;
        }
        let gateway = &mut settings.gateway;
        if let Some(ms) = raw.upstream_connect_timeout_ms {
            gateway.connect_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = raw.upstream_timeout_ms {
            gateway.http.request_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(retries) = raw.upstream_retries {
            gateway.http.max_retries = retries;
        }
        if let Some(concurrency) = raw.upstream_concurrency {
            gateway.http.max_concurrency = concurrency.max(1);
        }
        apply_cache_settings(&raw, &mut gateway.cache);
        apply_hardening_settings(&raw, gateway);
        gateway.link_index = link_index_location(&raw)?;
        gateway.documents = document_settings(&raw)?;
        apply_operations_settings(&raw, &mut settings)?;
        let auth_mode = auth_mode(&raw)?;
        settings.gateway.blocks = configured_blocks(&raw, auth_mode == Some(AuthMode::Forward))?;
        for block in &mut settings.gateway.blocks {
            block.max_concurrency = block_concurrency(&raw, block.block);
        }
        settings.sandbox = raw.gateway_sandbox.unwrap_or(settings.gateway.blocks.is_empty());
        if let Some(size) = raw.sandbox_size.as_deref() {
            // Checked even when no sandbox runs, so a typo shows before it matters.
            settings.sandbox_size = size.parse().map_err(|problem| ConfigError::Invalid {
                key: "SANDBOX_SIZE",
                problem,
            })?;
        }
        settings.gateway.callers = caller_settings(&raw, auth_mode, settings.sandbox)?;
        apply_surface_settings(&raw, &mut settings)?;
        Ok(settings)
    }
}

/// Variables given as pairs, as the loader's layers take them (names lower-cased, values
/// read as the environment's are: `true` a boolean, `12` a number).
fn pairs(variables: &[(&str, String)]) -> Dict {
    variables
        .iter()
        .map(|(name, value)| {
            let value = Value::from_str(value).unwrap_or_else(|never| match never {});
            (name.to_lowercase(), value)
        })
        .collect()
}

/// Cache overrides; a TTL of 0 turns caching of that kind off, a bound of 0 keeps nothing.
fn apply_cache_settings(raw: &RawSettings, cache: &mut CacheSettings) {
    if let Some(bytes) = raw.cache_max_bytes {
        cache.max_bytes = bytes;
    }
    let ttls = [
        (raw.cache_detail_ttl_ms, &mut cache.detail_ttl),
        (raw.cache_list_ttl_ms, &mut cache.list_ttl),
        (raw.cache_not_found_ttl_ms, &mut cache.not_found_ttl),
        (raw.cache_stale_if_error_ms, &mut cache.stale_if_error),
    ];
    for (ms, ttl) in ttls {
        if let Some(ms) = ms {
            *ttl = Duration::from_millis(ms);
        }
    }
}

/// Breaker, retry budget and operation limits; zero where zero makes no sense reads as 1.
fn apply_hardening_settings(raw: &RawSettings, settings: &mut GatewaySettings) {
    if let Some(threshold) = raw.upstream_breaker_threshold {
        settings.http.breaker.threshold = threshold;
    }
    if let Some(ms) = raw.upstream_breaker_cool_down_ms {
        settings.http.breaker.cool_down = Duration::from_millis(ms.max(1));
    }
    if let Some(percent) = raw.upstream_retry_budget_percent {
        settings.http.retry_budget_percent = percent;
    }
    let limits = &mut settings.limits;
    for (value, limit) in [
        (raw.gateway_max_depth, &mut limits.max_depth),
        (raw.gateway_max_aliases, &mut limits.max_aliases),
        (raw.gateway_max_root_fields, &mut limits.max_root_fields),
        (raw.gateway_max_directives, &mut limits.max_directives),
        (raw.gateway_max_tokens, &mut limits.max_tokens),
        (raw.gateway_max_complexity, &mut limits.max_complexity),
        (raw.gateway_max_body_bytes, &mut limits.max_body_bytes),
    ] {
        if let Some(value) = value {
            *limit = value.max(1);
        }
    }
    if let Some(max) = raw.gateway_max_batch {
        limits.max_batch = max;
    }
    if let Some(ms) = raw.gateway_operation_timeout_ms {
        limits.operation_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(max) = raw.gateway_max_upstream_requests {
        limits.max_upstream_requests = max.max(1);
    }
}

/// PostgreSQL when `DATABASE_URL` is set, else the SQLite file (default in the working directory).
fn link_index_location(raw: &RawSettings) -> Result<LinkIndexLocation, ConfigError> {
    if let Some(url) = &raw.database_url {
        let text = url.expose_secret().trim();
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid {
                key: "DATABASE_URL",
                problem: "must be a postgres:// or postgresql:// URL".to_owned(),
            });
        }
        return Ok(LinkIndexLocation::Postgres {
            url: SecretString::from(text.to_owned()),
            schema: None,
        });
    }
    match raw.link_index_path.as_deref().map(str::trim) {
        Some("") => Err(ConfigError::Invalid {
            key: "LINK_INDEX_PATH",
            problem: "is empty".to_owned(),
        }),
        Some(path) => Ok(LinkIndexLocation::Sqlite(PathBuf::from(path))),
        None => Ok(LinkIndexLocation::Sqlite(PathBuf::from(DEFAULT_SQLITE_FILE))),
    }
}

/// The TOML file's top-level keys, lower-cased so `SALES_API_URL` and `sales_api_url` mean
/// the same. A syntax error names the file, not its content (which may hold secrets).
fn file_settings(file: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| ConfigError::Load(format!("cannot read {}: {error}", file.display())))?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        let line = error.span().map(|span| text[..span.start].lines().count().max(1));
        ConfigError::Load(format!(
            "{} is not valid TOML (near line {})",
            file.display(),
            line.unwrap_or(1)
        ))
    })?;
    Ok(table
        .into_iter()
        .map(|(key, value)| (key.to_lowercase(), value))
        .collect())
}

/// The trusted-documents manifest (read and checked now, so a bad one stops start-up) and
/// the APQ store size.
fn document_settings(raw: &RawSettings) -> Result<PersistedDocumentSettings, ConfigError> {
    let mut documents = PersistedDocumentSettings::default();
    if let Some(capacity) = raw.gateway_apq_capacity {
        documents.apq_capacity = capacity;
    }
    if let Some(path) = raw.gateway_trusted_documents.as_deref().map(str::trim) {
        let invalid = |problem: String| ConfigError::Invalid {
            key: "GATEWAY_TRUSTED_DOCUMENTS",
            problem,
        };
        if path.is_empty() {
            return Err(invalid("is empty".to_owned()));
        }
        let trusted = TrustedDocuments::load(Path::new(path)).map_err(|error| invalid(error.to_string()))?;
        documents.trusted = Some(Arc::new(trusted));
    }
    Ok(documents)
}

/// The Redis tier (an empty `REDIS_URL` is unset) and the shutdown timings.
fn apply_operations_settings(raw: &RawSettings, settings: &mut Settings) -> Result<(), ConfigError> {
    let url = raw
        .redis_url
        .as_ref()
        .map(|url| url.expose_secret().trim())
        .filter(|url| !url.is_empty());
    if let Some(url) = url {
        let cluster = raw.redis_cluster.unwrap_or(false);
        let seeds: Vec<&str> = url.split(',').map(str::trim).collect();
        if seeds
            .iter()
            .any(|seed| !(seed.starts_with("redis://") || seed.starts_with("rediss://")))
        {
            return Err(ConfigError::Invalid {
                key: "REDIS_URL",
                problem: "must be a redis:// or rediss:// URL (with REDIS_CLUSTER, a comma-separated list of them)"
                    .to_owned(),
            });
        }
        if seeds.len() > 1 && !cluster {
            return Err(ConfigError::Invalid {
                key: "REDIS_URL",
                problem: "lists several servers: set REDIS_CLUSTER=true for a Redis Cluster".to_owned(),
            });
        }
        let mut shared = RedisTierSettings::new(SecretString::from(url.to_owned()));
        shared.cluster = cluster;
        shared.ca_pem = redis_ca(raw)?;
        if shared.ca_pem.is_some() && !seeds.iter().all(|seed| seed.starts_with("rediss://")) {
            return Err(ConfigError::Invalid {
                key: "REDIS_CA_FILE",
                problem: "is set but REDIS_URL is not rediss:// (TLS)".to_owned(),
            });
        }
        if let Some(prefix) = raw.redis_key_prefix.as_deref().map(str::trim) {
            if prefix.is_empty() || prefix.contains(['{', '}']) {
                return Err(ConfigError::Invalid {
                    key: "REDIS_KEY_PREFIX",
                    problem: "must be non-empty, without `{` or `}` (they would change the cluster hash tags)"
                        .to_owned(),
                });
            }
            shared.key_prefix = prefix.to_owned();
        }
        if let Some(ms) = raw.redis_invalidation_timeout_ms {
            shared.invalidation_timeout = Duration::from_millis(ms.max(1));
        }
        settings.gateway.redis = Some(shared);
    }
    if let Some(ms) = raw.gateway_shutdown_delay_ms {
        settings.shutdown.drain_delay = Duration::from_millis(ms);
    }
    if let Some(ms) = raw.gateway_shutdown_timeout_ms {
        settings.shutdown.grace = Duration::from_millis(ms);
    }
    Ok(())
}

/// The PEM of `REDIS_CA_FILE`, read now so that a missing or unusable file stops start-up.
fn redis_ca(raw: &RawSettings) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = raw.redis_ca_file.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let invalid = |problem: String| ConfigError::Invalid {
        key: "REDIS_CA_FILE",
        problem,
    };
    let pem = std::fs::read(path).map_err(|error| invalid(format!("cannot read {path}: {error}")))?;
    if !pem.windows(27).any(|window| window == b"-----BEGIN CERTIFICATE-----") {
        return Err(invalid(format!("{path} holds no PEM certificate")));
    }
    Ok(Some(pem))
}

/// Introspection (on unless set off: `GATEWAY_INTROSPECTION=false` for production), CSRF
/// prevention (on unless set off) and the CORS allow-list (exact origins such as
/// `https://app.example.com`; unset in the sandbox, any loopback origin).
fn apply_surface_settings(raw: &RawSettings, settings: &mut Settings) -> Result<(), ConfigError> {
    let invalid = |origin: &str| ConfigError::Invalid {
        key: "GATEWAY_CORS_ORIGINS",
        problem: format!("{origin:?} is not an origin like https://app.example.com"),
    };
    let mut cors_origins = Vec::new();
    for origin in raw
        .gateway_cors_origins
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
    {
        if origin.is_empty() {
            continue;
        }
        let url = Url::parse(origin).map_err(|_| invalid(origin))?;
        let is_origin = matches!(url.scheme(), "http" | "https") && url.path() == "/" && url.query().is_none();
        let value =
            reqwest::header::HeaderValue::from_str(origin.trim_end_matches('/')).map_err(|_| invalid(origin))?;
        if !is_origin || !url.username().is_empty() {
            return Err(invalid(origin));
        }
        cors_origins.push(value);
    }
    // On unless turned off: the playground and codegen need it.
    settings.gateway.introspection = raw.gateway_introspection.unwrap_or(true);
    settings.gateway.federation = raw.gateway_federation.unwrap_or(false);
    settings.server.csrf_prevention = raw.gateway_csrf_prevention.unwrap_or(true);
    settings.server.cors_loopback = settings.sandbox && raw.gateway_cors_origins.is_none();
    settings.server.cors_origins = cors_origins;
    settings.server.metrics_token = metrics_token(raw)?;
    if let Some(access) = raw.gateway_explain.as_deref() {
        settings.gateway.explain = access.parse().map_err(|problem| ConfigError::Invalid {
            key: "GATEWAY_EXPLAIN",
            problem,
        })?;
    }
    Ok(())
}

/// `GATEWAY_METRICS_TOKEN`: unset or empty leaves `/metrics` open; a value must fit in a
/// header (it is compared with what scrapers send), and is never echoed.
fn metrics_token(raw: &RawSettings) -> Result<Option<SecretString>, ConfigError> {
    let Some(token) = &raw.gateway_metrics_token else {
        return Ok(None);
    };
    let text = token.expose_secret().trim();
    if text.is_empty() {
        return Ok(None);
    }
    if HeaderValue::from_str(text).is_err() || text.contains(char::is_whitespace) {
        return Err(ConfigError::Invalid {
            key: "GATEWAY_METRICS_TOKEN",
            problem: "contains characters not allowed in a bearer token".to_owned(),
        });
    }
    Ok(Some(SecretString::from(text.to_owned())))
}

/// `GATEWAY_AUTH_MODE`, when set.
fn auth_mode(raw: &RawSettings) -> Result<Option<AuthMode>, ConfigError> {
    raw.gateway_auth_mode
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|error: CallerConfigError| ConfigError::Invalid {
            key: "GATEWAY_AUTH_MODE",
            problem: error.to_string(),
        })
}

/// Mode, API key digests, and the CRM header forwarded CRM credentials go in.
fn caller_settings(raw: &RawSettings, mode: Option<AuthMode>, sandbox: bool) -> Result<CallerSettings, ConfigError> {
    let mut callers = CallerSettings::parse(mode, raw.gateway_api_key_hashes.as_deref(), sandbox).map_err(|error| {
        ConfigError::Invalid {
            key: "GATEWAY_API_KEY_HASHES",
            problem: error.to_string(),
        }
    })?;
    callers.crm_header = crm_auth_header(raw)?;
    Ok(callers)
}

/// The gateway's own credential for a block. In forward mode callers bring theirs, so the
/// gateway's are optional and never used for callers' requests.
fn own_credentials(
    forward: bool,
    build: impl FnOnce() -> Result<BlockAuth, ConfigError>,
) -> Result<BlockAuth, ConfigError> {
    if forward {
        return Ok(BlockAuth::Missing);
    }
    build()
}

/// `CRM_AUTH_HEADER`, `Authorization` by default.
fn crm_auth_header(raw: &RawSettings) -> Result<HeaderName, ConfigError> {
    let header_name = raw.crm_auth_header.as_deref().unwrap_or("Authorization");
    HeaderName::from_bytes(header_name.as_bytes()).map_err(|_| ConfigError::Invalid {
        key: "CRM_AUTH_HEADER",
        problem: format!("{header_name:?} is not a valid header name"),
    })
}

fn configured_blocks(raw: &RawSettings, forward: bool) -> Result<Vec<BlockSettings>, ConfigError> {
    let mut blocks = Vec::new();
    let twenty_three = [
        (
            BlockName::Sales,
            &raw.sales_api_url,
            &raw.sales_auth_token,
            &raw.sales_api_key,
            ["SALES_API_URL", "SALES_AUTH_TOKEN", "SALES_API_KEY"],
        ),
        (
            BlockName::Search,
            &raw.search_api_url,
            &raw.search_auth_token,
            &raw.search_api_key,
            ["SEARCH_API_URL", "SEARCH_AUTH_TOKEN", "SEARCH_API_KEY"],
        ),
        (
            BlockName::Assets,
            &raw.assets_api_url,
            &raw.assets_auth_token,
            &raw.assets_api_key,
            ["ASSETS_API_URL", "ASSETS_AUTH_TOKEN", "ASSETS_API_KEY"],
        ),
    ];
    for (block, url, token, key, [url_key, token_key, api_key]) in twenty_three {
        let Some(url) = url else { continue };
        let auth = own_credentials(forward, || {
            Ok(BlockAuth::BearerWithAppId {
                token: required_secret(token, token_key)?,
                app_id: required_secret(key, api_key)?,
            })
        })?;
        blocks.push(BlockSettings {
            block,
            base_url: parse_url(url, url_key)?,
            auth,
            max_concurrency: None,
        });
    }
    if let Some(url) = &raw.b2b_api_url {
        let auth = own_credentials(forward, || {
            Ok(BlockAuth::SchemeHeader {
                header: reqwest::header::AUTHORIZATION,
                scheme: "Token".to_owned(),
                secret: required_secret(&raw.b2b_token, "B2B_TOKEN")?,
            })
        })?;
        blocks.push(BlockSettings {
            block: BlockName::B2b,
            base_url: parse_url(url, "B2B_API_URL")?,
            auth,
            max_concurrency: None,
        });
    }
    if let Some(url) = &raw.crm_api_url {
        let header = crm_auth_header(raw)?;
        let auth = own_credentials(forward, || {
            Ok(BlockAuth::SchemeHeader {
                header,
                scheme: raw.crm_auth_scheme.clone().unwrap_or_else(|| "Api-Token".to_owned()),
                secret: required_secret(&raw.crm_api_key, "CRM_API_KEY")?,
            })
        })?;
        let mut base_url = parse_url(url, "CRM_API_URL")?;
        if let Ok(mut path) = base_url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "crm"]);
        }
        blocks.push(BlockSettings {
            block: BlockName::Crm,
            base_url,
            auth,
            max_concurrency: None,
        });
    }
    Ok(blocks)
}

/// A block's own bound of requests in flight (`SALES_CONCURRENCY`, ...), at least 1.
fn block_concurrency(raw: &RawSettings, block: BlockName) -> Option<usize> {
    let concurrency = match block {
        BlockName::Sales => raw.sales_concurrency,
        BlockName::Search => raw.search_concurrency,
        BlockName::Assets => raw.assets_concurrency,
        BlockName::B2b => raw.b2b_concurrency,
        BlockName::Crm => raw.crm_concurrency,
    };
    concurrency.map(|concurrency| concurrency.max(1))
}

fn parse_url(text: &str, key: &'static str) -> Result<Url, ConfigError> {
    let url = Url::parse(text.trim()).map_err(|error| ConfigError::Invalid {
        key,
        problem: format!("not a URL ({error})"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ConfigError::Invalid {
            key,
            problem: "must be an http:// or https:// URL".to_owned(),
        });
    }
    Ok(url)
}

/// A secret that must be present and fit in an HTTP header. Never echoed in the error.
fn required_secret(secret: &Option<SecretString>, key: &'static str) -> Result<SecretString, ConfigError> {
    let Some(secret) = secret else {
        return Err(ConfigError::Invalid {
            key,
            problem: "is required when the block's URL is set".to_owned(),
        });
    };
    let text = secret.expose_secret();
    if text.trim().is_empty() {
        return Err(ConfigError::Invalid {
            key,
            problem: "is empty".to_owned(),
        });
    }
    if reqwest::header::HeaderValue::from_str(text).is_err() {
        return Err(ConfigError::Invalid {
            key,
            problem: "contains characters not allowed in an HTTP header".to_owned(),
        });
    }
    Ok(secret.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_with_sales() -> RawSettings {
        RawSettings {
            sales_api_url: Some("http://127.0.0.1:9/".to_owned()),
            sales_auth_token: Some(SecretString::from("tok-secret-1")),
            sales_api_key: Some(SecretString::from("app-secret-2")),
            gateway_api_key_hashes: Some(crate::callers::hash_key("caller-key")),
            ..RawSettings::default()
        }
    }

    #[test]
    fn callers_default_to_service_keys_outside_the_sandbox() {
        let settings = Settings::from_raw(raw_with_sales()).expect("valid");
        assert_eq!(settings.gateway.callers.mode, AuthMode::Service);
        // Nothing said about callers: the gateway serves, open (and says so at start).
        let mut raw = raw_with_sales();
        raw.gateway_api_key_hashes = None;
        assert_eq!(
            Settings::from_raw(raw).expect("serves").gateway.callers.mode,
            AuthMode::Open
        );
        // Service mode asked for without keys is refused, naming the variable.
        let mut raw = raw_with_sales();
        raw.gateway_api_key_hashes = None;
        raw.gateway_auth_mode = Some("service".to_owned());
        let error = Settings::from_raw(raw).expect_err("no keys").to_string();
        assert!(error.contains("GATEWAY_API_KEY_HASHES"), "{error}");
        let mut raw = raw_with_sales();
        raw.gateway_auth_mode = Some("sometimes".to_owned());
        let error = Settings::from_raw(raw).expect_err("bad mode").to_string();
        assert!(error.contains("GATEWAY_AUTH_MODE"), "{error}");
    }

    #[test]
    fn forward_mode_needs_no_block_secrets_of_the_gateway() {
        let raw = RawSettings {
            crm_api_url: Some("http://crm.test:8000/".to_owned()),
            crm_auth_header: Some("X-Api-Key".to_owned()),
            gateway_auth_mode: Some("forward".to_owned()),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw).expect("valid");
        assert_eq!(settings.gateway.callers.mode, AuthMode::Forward);
        assert_eq!(settings.gateway.callers.crm_header.as_str(), "x-api-key");
        assert!(matches!(settings.gateway.blocks[0].auth, BlockAuth::Missing));
    }

    #[test]
    fn the_toml_file_takes_the_environment_names_in_either_case() {
        let dir = std::env::temp_dir().join(format!("blocks-gateway-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("gateway.toml");
        std::fs::write(
            &file,
            "SALES_API_URL = \"http://127.0.0.1:9/\"\nSALES_AUTH_TOKEN = \"tok\"\nsales_api_key = \"app\"\ngateway_listen = \"127.0.0.1:4999\"\nGATEWAY_AUTH_MODE = \"open\"\n",
        )
        .expect("write");
        let settings = Settings::load(Some(&file)).expect("valid file");
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:4999");
        assert_eq!(settings.gateway.blocks.len(), 1);
        std::fs::write(
            &file,
            "SALES_API_URL = \"unterminated\nSALES_AUTH_TOKEN = \"very-secret\"",
        )
        .expect("write");
        let error = Settings::load(Some(&file)).expect_err("bad TOML").to_string();
        assert!(
            error.contains("not valid TOML") && !error.contains("very-secret"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn variables_given_as_pairs_read_as_the_environment_would() {
        let settings = Settings::from_variables(&[
            ("GATEWAY_MAX_DEPTH", "7".to_owned()),
            ("GATEWAY_INTROSPECTION", "false".to_owned()),
            ("GATEWAY_FEDERATION", "true".to_owned()),
            ("CRM_API_URL", "http://crm.test:8000/".to_owned()),
            ("CRM_API_KEY", "crm-secret".to_owned()),
        ])
        .expect("valid");
        assert_eq!(settings.gateway.limits.max_depth, 7);
        assert!(!settings.gateway.introspection);
        assert!(settings.gateway.federation);
        assert_eq!(settings.gateway.blocks.len(), 1);
        assert!(!settings.sandbox);
        let error = Settings::from_variables(&[("GATEWAY_MAX_DEPTH", "deep".to_owned())])
            .expect_err("not a number")
            .to_string();
        assert!(error.contains("gateway_max_depth"), "{error}");
    }

    #[test]
    fn nothing_configured_means_sandbox() {
        let settings = Settings::from_raw(RawSettings::default()).expect("defaults are valid");
        assert!(settings.sandbox);
        assert!(settings.gateway.blocks.is_empty());
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:4000");
    }

    #[test]
    fn the_sandbox_allows_loopback_origins_until_an_allow_list_is_set() {
        let sandbox = Settings::from_raw(RawSettings::default()).expect("valid");
        assert!(sandbox.server.cors_loopback);
        for listed in ["https://app.example.com", ""] {
            let raw = RawSettings {
                gateway_cors_origins: Some(listed.to_owned()),
                ..RawSettings::default()
            };
            let configured = Settings::from_raw(raw).expect("valid");
            assert!(!configured.server.cors_loopback, "{listed:?}");
        }
        let real_blocks = Settings::from_raw(raw_with_sales()).expect("valid");
        assert!(!real_blocks.server.cors_loopback);
    }

    #[test]
    fn the_sandbox_size_is_demo_or_large() {
        let default = Settings::from_raw(RawSettings::default()).expect("valid");
        assert_eq!(default.sandbox_size, SandboxSize::Demo);
        for (text, size) in [
            ("large", SandboxSize::Large),
            (" Large ", SandboxSize::Large),
            ("demo", SandboxSize::Demo),
        ] {
            let settings = Settings::from_variables(&[("SANDBOX_SIZE", text.to_owned())]).expect("valid");
            assert_eq!(settings.sandbox_size, size, "{text:?}");
        }
        let error = Settings::from_variables(&[("SANDBOX_SIZE", "huge".to_owned())])
            .expect_err("not a size")
            .to_string();
        assert_eq!(
            error,
            r#"configuration: SANDBOX_SIZE: "huge" is neither `demo` nor `large`"#
        );
    }

    #[test]
    fn a_configured_block_turns_the_sandbox_off() {
        let settings = Settings::from_raw(raw_with_sales()).expect("valid");
        assert!(!settings.sandbox);
        assert_eq!(settings.gateway.blocks.len(), 1);
    }

    #[test]
    fn missing_token_names_the_variable_without_printing_secrets() {
        let mut raw = raw_with_sales();
        raw.sales_auth_token = None;
        let error = Settings::from_raw(raw).expect_err("token missing").to_string();
        assert!(error.contains("SALES_AUTH_TOKEN"), "{error}");
        assert!(!error.contains("app-secret-2"), "{error}");
    }

    #[test]
    fn bad_url_and_listen_are_named() {
        let mut raw = raw_with_sales();
        raw.sales_api_url = Some("not a url".to_owned());
        assert!(
            Settings::from_raw(raw)
                .expect_err("bad url")
                .to_string()
                .contains("SALES_API_URL")
        );
        let raw = RawSettings {
            gateway_listen: Some("nope".to_owned()),
            ..RawSettings::default()
        };
        assert!(
            Settings::from_raw(raw)
                .expect_err("bad listen")
                .to_string()
                .contains("GATEWAY_LISTEN")
        );
    }

    #[test]
    fn cache_bound_and_ttls_come_from_the_settings() {
        let raw = RawSettings {
            cache_max_bytes: Some(1_000_000),
            cache_detail_ttl_ms: Some(250),
            cache_list_ttl_ms: Some(0),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw).expect("valid");
        assert_eq!(settings.gateway.cache.max_bytes, 1_000_000);
        assert_eq!(settings.gateway.cache.detail_ttl, Duration::from_millis(250));
        assert_eq!(settings.gateway.cache.list_ttl, Duration::ZERO);
        assert_eq!(
            settings.gateway.cache.not_found_ttl,
            CacheSettings::default().not_found_ttl
        );
    }

    #[test]
    fn crm_base_gets_the_api_prefix() {
        let raw = RawSettings {
            crm_api_url: Some("http://crm.test:8000/".to_owned()),
            crm_api_key: Some(SecretString::from("crm-secret-xyz")),
            gateway_auth_mode: Some("open".to_owned()),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw).expect("valid");
        assert_eq!(
            settings.gateway.blocks[0].base_url.as_str(),
            "http://crm.test:8000/api/crm"
        );
        assert!(!format!("{settings:?}").contains("crm-secret-xyz"));
    }
    #[test]
    fn redis_settings_name_what_is_wrong_without_the_password() {
        let load = |variables: &[(&str, &str)]| {
            let variables: Vec<(&str, String)> = variables.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            Settings::from_variables(&variables)
        };
        let cluster = load(&[
            ("REDIS_URL", "rediss://:pw-secret@a:6379, rediss://:pw-secret@b:6379"),
            ("REDIS_CLUSTER", "true"),
        ])
        .expect("a cluster's seeds");
        let redis = cluster.gateway.redis.expect("on");
        assert!(redis.cluster && redis.ca_pem.is_none());
        for (variables, key) in [
            (
                &[("REDIS_URL", "redis://:pw-secret@a:6379,redis://:pw-secret@b:6379")][..],
                "REDIS_URL",
            ),
            (&[("REDIS_URL", "http://:pw-secret@a:6379")][..], "REDIS_URL"),
            (
                &[
                    ("REDIS_URL", "redis://:pw-secret@a:6379"),
                    ("REDIS_KEY_PREFIX", "gw{1}"),
                ][..],
                "REDIS_KEY_PREFIX",
            ),
            (
                &[
                    ("REDIS_URL", "rediss://:pw-secret@a:6379"),
                    ("REDIS_CA_FILE", "/nonexistent/ca.pem"),
                ][..],
                "REDIS_CA_FILE",
            ),
            (
                &[
                    ("REDIS_URL", "rediss://:pw-secret@a:6379"),
                    ("REDIS_CA_FILE", "Cargo.toml"),
                ][..],
                "REDIS_CA_FILE",
            ),
        ] {
            let error = load(variables).expect_err("refused").to_string();
            assert!(error.contains(key) && !error.contains("pw-secret"), "{error}");
        }
    }

    #[test]
    fn link_index_is_a_sqlite_file_unless_database_url_is_set() {
        let settings = Settings::from_raw(RawSettings::default()).expect("valid");
        assert!(
            matches!(&settings.gateway.link_index, LinkIndexLocation::Sqlite(path) if path == Path::new(DEFAULT_SQLITE_FILE))
        );
        let raw = RawSettings {
            link_index_path: Some("/var/lib/gateway/links.sqlite".to_owned()),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw).expect("valid");
        assert!(
            matches!(&settings.gateway.link_index, LinkIndexLocation::Sqlite(path) if path.ends_with("links.sqlite"))
        );
        let raw = RawSettings {
            database_url: Some(SecretString::from("postgres://gw:db-secret-9@db:5432/links")),
            link_index_path: Some("ignored.sqlite".to_owned()),
            ..RawSettings::default()
        };
        let settings = Settings::from_raw(raw).expect("valid");
        assert!(matches!(
            settings.gateway.link_index,
            LinkIndexLocation::Postgres { .. }
        ));
        assert!(!format!("{settings:?}").contains("db-secret-9"));
        let raw = RawSettings {
            database_url: Some(SecretString::from("mysql://gw:db-secret-9@db/links")),
            ..RawSettings::default()
        };
        let error = Settings::from_raw(raw).expect_err("not PostgreSQL").to_string();
        assert!(
            error.contains("DATABASE_URL") && !error.contains("db-secret-9"),
            "{error}"
        );
    }
}
