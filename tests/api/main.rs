//! Integration tests over real HTTP: a real GraphQL request in, real REST requests out to
//! the sandbox blocks on loopback.

mod bad_input;
mod cache;
mod callers;
mod clients;
mod configuration_reference;
mod conformance;
mod contract_fixtures;
mod deploy_manifests;
mod explain;
mod federation;
mod hardening;
mod helpers;
mod http;
mod layering;
mod limits;
mod links;
mod log_capture;
mod managed_redis;
mod metrics_token;
mod mutations;
mod observability;
mod operations;
mod partial_failures;
mod persisted;
mod playground;
mod posture;
mod readiness;
mod reads;
mod replicas;
mod schema_file;
mod shutdown;
mod slash_forms;
mod stale_if_error;
mod supergraph;
mod upstream_http;
