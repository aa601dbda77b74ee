//! Every variable the gateway reads, declared once: its name, what it means and its default.
//! From this one list come the raw settings the loader fills (environment, or the TOML file
//! in either case), the keys the environment layer takes, and the configuration reference
//! (`blocks-gateway variables`, the README's table; a test keeps the README equal to it).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::{
    admission::DEFAULT_APQ_CAPACITY,
    blocks::{
        breaker::BreakerPolicy,
        http::{DEFAULT_CONNECT_TIMEOUT, HttpPolicy},
    },
    cache::{CacheSettings, RedisTierSettings},
    explain::ExplainAccess,
    limits::OperationLimits,
    link_index::DEFAULT_SQLITE_FILE,
    telemetry::DEFAULT_FILTER,
};

use super::{DEFAULT_LISTEN, SandboxSize, ShutdownSettings};

/// One variable of the configuration reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The environment variable (also a key of the TOML file, in either case).
    pub name: &'static str,
    /// What it sets.
    pub meaning: String,
    /// Its value when unset.
    pub default: String,
}

/// Declares the variables: those the settings loader reads (with their field of the raw
/// settings) and those read elsewhere (by the command line or the telemetry set-up).
macro_rules! variables {
    (
        loaded { $( $(#[doc = $doc:literal])+ $key:ident => $field:ident: $ty:ty, default: $default:expr; )* }
        elsewhere { $( $(#[doc = $edoc:literal])+ $ekey:ident, default: $edefault:expr; )* }
    ) => {
        /// The raw, flat settings exactly as the variables name them (lower-cased).
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        pub(super) struct RawSettings {
            $( $(#[doc = $doc])+ pub(super) $field: $ty, )*
        }

        /// The variables the settings loader takes from the environment.
        pub(super) const LOADED_KEYS: &[&str] = &[$(stringify!($key)),*];

        /// Every variable the gateway reads, in the order of the reference.
        pub const KEYS: &[&str] = &[$(stringify!($key),)* $(stringify!($ekey)),*];

        /// The configuration reference: every variable, what it means, its default.
        pub fn variables() -> Vec<Variable> {
            vec![
                $( Variable {
                    name: stringify!($key),
                    meaning: sentence(&[$($doc),+]),
                    default: String::from($default),
                }, )*
                $( Variable {
                    name: stringify!($ekey),
                    meaning: sentence(&[$($edoc),+]),
                    default: String::from($edefault),
                }, )*
            ]
        }

        #[cfg(test)]
        pub(super) const LOADED_FIELDS: &[(&str, &str)] = &[$((stringify!($key), stringify!($field))),*];
    };
}

/// Doc lines joined into one line.
fn sentence(lines: &[&str]) -> String {
    lines.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ")
}

/// A value shown as code.
fn code(value: impl std::fmt::Display) -> String {
    format!("`{value}`")
}

/// A duration in milliseconds, shown as code.
fn ms(duration: Duration) -> String {
    code(duration.as_millis())
}

variables! {
    loaded {
        /// address to serve on (`0.0.0.0:4000` in the container image)
        GATEWAY_LISTEN => gateway_listen: Option<String>, default: code(DEFAULT_LISTEN);
        /// force the sandbox on (`true`) or off (`false`); builds without the `sandbox`
        /// feature have none and refuse to start without a block
        GATEWAY_SANDBOX => gateway_sandbox: Option<bool>, default: "on when no block is configured";
        /// data set the sandbox seeds: `demo` (a few hundred records with every case the
        /// schema covers) or `large` (production-sized: 40,000 CRM persons, 30,000
        /// organizations, 23,000 Sales entities, 16,000 Sales users, 10,000 B2B users)
        SANDBOX_SIZE => sandbox_size: Option<String>, default: code(SandboxSize::default().as_str());
        /// who may call: `service` (gateway API keys), `forward` (callers' own block
        /// credentials), `open`
        GATEWAY_AUTH_MODE => gateway_auth_mode: Option<String>,
            default: "`service` when `GATEWAY_API_KEY_HASHES` is set; otherwise `open`, logged loudly at start; `service` without keys refuses to start";
        /// comma-separated SHA-256 hex digests of the keys callers send as
        /// `Authorization: Bearer <key>` (`blocks-gateway hash-key`)
        GATEWAY_API_KEY_HASHES => gateway_api_key_hashes: Option<String>, default: "none";
        /// Sales base URL; the block is on when it is set
        SALES_API_URL => sales_api_url: Option<String>, default: "off";
        /// Sales bearer token (secret)
        SALES_AUTH_TOKEN => sales_auth_token: Option<SecretString>, default: "none";
        /// Sales application key, sent as `AppId` (secret)
        SALES_API_KEY => sales_api_key: Option<SecretString>, default: "none";
        /// Search base URL; the block is on when it is set
        SEARCH_API_URL => search_api_url: Option<String>, default: "off";
        /// Search bearer token (secret)
        SEARCH_AUTH_TOKEN => search_auth_token: Option<SecretString>, default: "none";
        /// Search application key, sent as `AppId` (secret)
        SEARCH_API_KEY => search_api_key: Option<SecretString>, default: "none";
        /// Assets base URL; the block is on when it is set
        ASSETS_API_URL => assets_api_url: Option<String>, default: "off";
        /// Assets bearer token (secret)
        ASSETS_AUTH_TOKEN => assets_auth_token: Option<SecretString>, default: "none";
        /// Assets application key, sent as `AppId` (secret)
        ASSETS_API_KEY => assets_api_key: Option<SecretString>, default: "none";
        /// B2B base URL; the block is on when it is set
        B2B_API_URL => b2b_api_url: Option<String>, default: "off";
        /// B2B secret, sent as `Authorization: Token <secret>`
        B2B_TOKEN => b2b_token: Option<SecretString>, default: "none";
        /// CRM root URL (paths go under `/api/crm/`); the block is on when it is set
        CRM_API_URL => crm_api_url: Option<String>, default: "off";
        /// CRM key (secret)
        CRM_API_KEY => crm_api_key: Option<SecretString>, default: "none";
        /// the header the CRM key is sent in
        CRM_AUTH_HEADER => crm_auth_header: Option<String>, default: code("Authorization");
        /// the scheme word before the CRM key in that header
        CRM_AUTH_SCHEME => crm_auth_scheme: Option<String>, default: code("Api-Token");
        /// connect timeout per upstream, in milliseconds
        UPSTREAM_CONNECT_TIMEOUT_MS => upstream_connect_timeout_ms: Option<u64>, default: ms(DEFAULT_CONNECT_TIMEOUT);
        /// whole-request timeout per upstream, in milliseconds
        UPSTREAM_TIMEOUT_MS => upstream_timeout_ms: Option<u64>, default: ms(HttpPolicy::default().request_timeout);
        /// retries of failed GETs (connection errors, 502/503/504)
        UPSTREAM_RETRIES => upstream_retries: Option<usize>, default: code(HttpPolicy::default().max_retries);
        /// requests in flight per block (a walk over a long list holds at most
        /// `WALK_CONCURRENCY` of them)
        UPSTREAM_CONCURRENCY => upstream_concurrency: Option<usize>, default: code(HttpPolicy::default().max_concurrency);
        /// requests in flight to Sales
        SALES_CONCURRENCY => sales_concurrency: Option<usize>, default: "`UPSTREAM_CONCURRENCY`";
        /// requests in flight to Search
        SEARCH_CONCURRENCY => search_concurrency: Option<usize>, default: "`UPSTREAM_CONCURRENCY`";
        /// requests in flight to Assets
        ASSETS_CONCURRENCY => assets_concurrency: Option<usize>, default: "`UPSTREAM_CONCURRENCY`";
        /// requests in flight to B2B
        B2B_CONCURRENCY => b2b_concurrency: Option<usize>, default: "`UPSTREAM_CONCURRENCY`";
        /// requests in flight to the CRM
        CRM_CONCURRENCY => crm_concurrency: Option<usize>, default: "`UPSTREAM_CONCURRENCY`";
        /// consecutive failures (connection, timeout, 5xx) that open a block's circuit
        UPSTREAM_BREAKER_THRESHOLD => upstream_breaker_threshold: Option<u32>, default: code(BreakerPolicy::default().threshold);
        /// how long an open circuit refuses calls before one probe, in milliseconds
        UPSTREAM_BREAKER_COOL_DOWN_MS => upstream_breaker_cool_down_ms: Option<u64>, default: ms(BreakerPolicy::default().cool_down);
        /// retries may add at most this share of a block's requests, in percent
        UPSTREAM_RETRY_BUDGET_PERCENT => upstream_retry_budget_percent: Option<u32>,
            default: code(HttpPolicy::default().retry_budget_percent);
        /// deadline of one GraphQL operation, in milliseconds (pending fields answer
        /// `UPSTREAM_TIMEOUT`)
        GATEWAY_OPERATION_TIMEOUT_MS => gateway_operation_timeout_ms: Option<u64>,
            default: ms(OperationLimits::default().operation_timeout);
        /// upstream requests one operation may make, retries included (past it:
        /// `REQUEST_LIMIT_EXCEEDED`)
        GATEWAY_MAX_UPSTREAM_REQUESTS => gateway_max_upstream_requests: Option<usize>,
            default: code(OperationLimits::default().max_upstream_requests);
        /// deepest field nesting of an operation
        GATEWAY_MAX_DEPTH => gateway_max_depth: Option<usize>, default: code(OperationLimits::default().max_depth);
        /// aliased fields in one document
        GATEWAY_MAX_ALIASES => gateway_max_aliases: Option<usize>, default: code(OperationLimits::default().max_aliases);
        /// root fields of one operation
        GATEWAY_MAX_ROOT_FIELDS => gateway_max_root_fields: Option<usize>, default: code(OperationLimits::default().max_root_fields);
        /// directives on one field
        GATEWAY_MAX_DIRECTIVES => gateway_max_directives: Option<usize>, default: code(OperationLimits::default().max_directives);
        /// lexical tokens of one document
        GATEWAY_MAX_TOKENS => gateway_max_tokens: Option<usize>, default: code(OperationLimits::default().max_tokens);
        /// points per operation: one per field, a connection's `first` multiplying its
        /// selection
        GATEWAY_MAX_COMPLEXITY => gateway_max_complexity: Option<usize>, default: code(OperationLimits::default().max_complexity);
        /// request body size in bytes (past it: HTTP 413)
        GATEWAY_MAX_BODY_BYTES => gateway_max_body_bytes: Option<usize>, default: code(OperationLimits::default().max_body_bytes);
        /// operations in one batched (JSON array) request; `0` turns batching off
        GATEWAY_MAX_BATCH => gateway_max_batch: Option<usize>, default: code(OperationLimits::default().max_batch);
        /// introspection, field suggestions and GraphiQL (`/`); set `false` in production
        GATEWAY_INTROSPECTION => gateway_introspection: Option<bool>, default: code(true);
        /// serve as an Apollo Federation v2 subgraph: `Identity`, `Organization` and `Person`
        /// become entities, `_service` and `_entities` are added (see "Use it in a
        /// supergraph"); `schema.graphql` is unchanged, `subgraph.graphql` is the subgraph's
        GATEWAY_FEDERATION => gateway_federation: Option<bool>, default: code(false);
        /// refuse GETs a cross-site page could make a browser send: a GET needs a caller
        /// credential (`Authorization: Bearer`, a forwarded block header), an
        /// `apollo-require-preflight` or `x-apollo-operation-name` header, a non-simple
        /// `Content-Type`, or an allowed `Origin` (POST bodies must be `application/json`
        /// regardless)
        GATEWAY_CSRF_PREVENTION => gateway_csrf_prevention: Option<bool>, default: code(true);
        /// comma-separated origins browsers may call from (`https://app.example.com`); set
        /// (even empty) it replaces the sandbox's default
        GATEWAY_CORS_ORIGINS => gateway_cors_origins: Option<String>, default: "none; in the sandbox any origin on `localhost`, `127.0.0.1` or `[::1]`";
        /// token `/metrics` requires as `Authorization: Bearer <token>` (else 401) (secret)
        GATEWAY_METRICS_TOKEN => gateway_metrics_token: Option<SecretString>, default: "none: `/metrics` is open";
        /// who may ask for `extensions.explain` with `"extensions": {"explain": true}`: `off`,
        /// or `callers` (every caller let in: API key holders, everyone in `open` mode)
        GATEWAY_EXPLAIN => gateway_explain: Option<String>, default: code(ExplainAccess::default().as_str());
        /// upper bound of the response cache, in estimated bytes (0 keeps nothing)
        CACHE_MAX_BYTES => cache_max_bytes: Option<u64>, default: code(CacheSettings::default().max_bytes);
        /// how long a record read by id is reused, in milliseconds (0: not cached)
        CACHE_DETAIL_TTL_MS => cache_detail_ttl_ms: Option<u64>, default: ms(CacheSettings::default().detail_ttl);
        /// how long a list page (and the Sales entity index) is reused, in milliseconds
        CACHE_LIST_TTL_MS => cache_list_ttl_ms: Option<u64>, default: ms(CacheSettings::default().list_ttl);
        /// how long a 404 is remembered, in milliseconds
        CACHE_NOT_FOUND_TTL_MS => cache_not_found_ttl_ms: Option<u64>, default: ms(CacheSettings::default().not_found_ttl);
        /// how long past its TTL a cached record or list page may stand in, labelled in
        /// `extensions.stale`, for a block that fails (5xx, timeout, unreachable, circuit
        /// open), in milliseconds; queries only; `0` turns it off
        CACHE_STALE_IF_ERROR_MS => cache_stale_if_error_ms: Option<u64>, default: ms(CacheSettings::default().stale_if_error);
        /// SQLite file of the identity link index (created with its tables on first start)
        LINK_INDEX_PATH => link_index_path: Option<String>,
            default: format!("{} in the working directory", code(DEFAULT_SQLITE_FILE));
        /// PostgreSQL URL of the identity link index (`postgres://user@host:5432/db`);
        /// wins over `LINK_INDEX_PATH`; use it when several replicas run (secret)
        DATABASE_URL => database_url: Option<SecretString>, default: "off";
        /// manifest file of the only documents allowed (see "For frontend developers")
        GATEWAY_TRUSTED_DOCUMENTS => gateway_trusted_documents: Option<String>, default: "off";
        /// documents automatic persisted queries remember; `0` turns APQ off
        GATEWAY_APQ_CAPACITY => gateway_apq_capacity: Option<usize>, default: code(DEFAULT_APQ_CAPACITY);
        /// `redis://[:password@]host:port[/db]` of the Redis cache tier (second cache
        /// level, invalidations across replicas; see "Scaling out"), `rediss://` for TLS;
        /// with `REDIS_CLUSTER`, comma-separated seed nodes; empty: off (secret)
        REDIS_URL => redis_url: Option<SecretString>, default: "off";
        /// PEM file of the CA that signs the Redis server's certificate (`rediss://`); it
        /// replaces the system's roots
        REDIS_CA_FILE => redis_ca_file: Option<String>, default: "the system's roots";
        /// `true` when Redis is a Redis Cluster (7.0 or later: sharded pub/sub)
        REDIS_CLUSTER => redis_cluster: Option<bool>, default: code(false);
        /// prefix of every Redis key and channel, so deployments can share a Redis
        REDIS_KEY_PREFIX => redis_key_prefix: Option<String>, default: code(RedisTierSettings::DEFAULT_PREFIX);
        /// how long a write waits for the other replicas to confirm an eviction, in
        /// milliseconds
        REDIS_INVALIDATION_TIMEOUT_MS => redis_invalidation_timeout_ms: Option<u64>,
            default: ms(RedisTierSettings::DEFAULT_INVALIDATION_TIMEOUT);
        /// after SIGTERM, how long `/readyz` fails while the replica still serves, in
        /// milliseconds
        GATEWAY_SHUTDOWN_DELAY_MS => gateway_shutdown_delay_ms: Option<u64>, default: ms(ShutdownSettings::default().drain_delay);
        /// then, how long operations in flight may take before the process exits, in
        /// milliseconds
        GATEWAY_SHUTDOWN_TIMEOUT_MS => gateway_shutdown_timeout_ms: Option<u64>, default: ms(ShutdownSettings::default().grace);
    }
    elsewhere {
        /// TOML file with any of the variables above as keys, in either case (same as
        /// `--config`); the environment wins over it
        GATEWAY_CONFIG, default: "none";
        /// `text` (human-readable) or `json` (one object per line, with the span's fields)
        GATEWAY_LOG_FORMAT, default: "`text`; `json` in the image";
        /// log filter (`info`, `blocks_gateway=debug,info`, ...)
        RUST_LOG, default: code(DEFAULT_FILTER);
        /// OpenTelemetry collector base URL (`http://collector:4318`): spans are exported
        /// over OTLP/HTTP (protobuf) to `<url>/v1/traces`
        OTEL_EXPORTER_OTLP_ENDPOINT, default: "off";
        /// the full OTLP traces URL (instead of the base URL above)
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, default: "off";
        /// headers sent to the collector (`api-key=...`)
        OTEL_EXPORTER_OTLP_HEADERS, default: "none";
        /// the exporter's timeout
        OTEL_EXPORTER_OTLP_TIMEOUT, default: "the exporter's";
        /// the service name of the exported spans
        OTEL_SERVICE_NAME, default: code("blocks-gateway");
        /// resource attributes of the exported spans
        OTEL_RESOURCE_ATTRIBUTES, default: "none";
    }
}

/// The configuration reference as a Markdown table (the README's, and what
/// `blocks-gateway variables` prints).
pub fn reference_table() -> String {
    let mut table = String::from("| variable | meaning | default |\n|---|---|---|\n");
    for variable in variables() {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            variable.name, variable.meaning, variable.default
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_loaded_variable_is_its_field_in_upper_case() {
        for (key, field) in LOADED_FIELDS {
            assert_eq!(*key, field.to_uppercase(), "the field of {key}");
        }
    }

    #[test]
    fn every_variable_is_declared_once_with_a_meaning() {
        let mut names: Vec<&str> = KEYS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len(), "a variable is declared twice");
        for variable in variables() {
            assert!(
                !variable.meaning.is_empty() && !variable.default.is_empty(),
                "{variable:?}"
            );
        }
        let table = reference_table();
        assert_eq!(table.lines().count(), KEYS.len() + 2);
    }
}
