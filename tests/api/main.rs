//! Integration tests over real HTTP: a real GraphQL request in, real REST requests out to
//! the sandbox blocks on loopback.

mod cache;
mod callers;
mod clients;
mod contract_fixtures;
mod hardening;
mod helpers;
mod http;
mod log_capture;
mod mutations;
mod partial_failures;
mod reads;
mod schema_file;
mod upstream_http;
