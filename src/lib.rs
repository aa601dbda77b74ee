//! blocks-gateway: one GraphQL endpoint over the Sales, Search, Assets, B2B and CRM blocks.
//!
//! See `ARCHITECTURE.md` for where things live and how a request flows. The modules are
//! layered; each imports only from its own layer or below (`tests/api/layering.rs`):
//!
//! 1. the binary's face: `server`, `shutdown`, `playground` (and `main.rs`)
//! 2. `config`
//! 3. the operation pipeline: `gateway`, `admission`, `trusted_documents`
//! 4. `schema`
//! 5. `loaders`
//! 6. `cache`, `link_index`, `callers`
//! 7. `blocks`
//! 8. leaves: `metrics`, `explain`, `telemetry`, `limits`, `error_code`
#![warn(missing_docs, unreachable_pub)]

pub mod playground;
pub mod server;
pub mod shutdown;

pub mod config;

pub mod admission;
pub mod gateway;
pub mod trusted_documents;

pub mod schema;

pub mod loaders;

pub mod cache;
pub mod callers;
pub mod link_index;

pub mod blocks;

pub mod error_code;
pub mod explain;
pub mod limits;
pub mod metrics;
pub mod telemetry;
