//! blocks-gateway: one GraphQL endpoint over the Sales, Search, Assets, B2B and CRM blocks.
//!
//! See `ARCHITECTURE.md` for where things live and how a request flows.
#![warn(missing_docs, unreachable_pub)]

pub mod blocks;
pub mod cache;
pub mod callers;
pub mod config;
pub mod documents;
pub mod error;
pub mod gateway;
pub mod limits;
pub mod links;
pub mod loaders;
pub mod metrics;
pub mod sandbox;
pub mod schema;
pub mod server;
pub mod shared_cache;
pub mod shutdown;
pub mod telemetry;
