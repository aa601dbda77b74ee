//! The five upstream blocks: one module per block (wire models and a typed client), plus
//! the HTTP core and error type they share.

pub mod assets;
pub mod b2b;
pub mod breaker;
pub mod crm;
pub mod error;
pub mod http;
pub mod operation;
pub mod retry_budget;
pub mod sales;
pub mod search;
pub mod walk;
pub mod wire;

pub use error::{BlockError, FieldIssue, UpstreamProblem};

use url::Url;

use assets::AssetsClient;
use b2b::B2bClient;
use crm::CrmClient;
use sales::SalesClient;
use search::SearchClient;

/// The upstream systems the gateway talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockName {
    /// 23blocks Sales (users, entities, customers).
    Sales,
    /// 23blocks Search (identities).
    Search,
    /// 23blocks Assets (users, assets, entities, ownership).
    Assets,
    /// B2B commerce (users in divisions).
    B2b,
    /// CRM (persons, organizations).
    Crm,
}

impl BlockName {
    /// Every block, in the order identities are assembled.
    pub const ALL: [BlockName; 5] = [Self::Sales, Self::Search, Self::Assets, Self::B2b, Self::Crm];

    /// The name used in `extensions.block`, logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sales => "SALES",
            Self::Search => "SEARCH",
            Self::Assets => "ASSETS",
            Self::B2b => "B2B",
            Self::Crm => "CRM",
        }
    }
}

/// Where and how to reach one block.
#[derive(Clone)]
pub struct BlockSettings {
    /// The block.
    pub block: BlockName,
    /// Base URL every documented path is appended to (for the CRM, ending in `/api/crm`).
    pub base_url: Url,
    /// Credentials and their header style.
    pub auth: http::BlockAuth,
    /// Requests in flight to this block at once, when it differs from the policy's
    /// (`SALES_CONCURRENCY`, ...).
    pub max_concurrency: Option<usize>,
}

impl std::fmt::Debug for BlockSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSettings")
            .field("block", &self.block)
            .field("base_url", &self.base_url.as_str())
            .field("auth", &"[REDACTED]")
            .field("max_concurrency", &self.max_concurrency)
            .finish()
    }
}

/// The clients of the configured blocks; `None` where a block has no URL.
#[derive(Clone, Default)]
pub struct BlockClients {
    /// Sales.
    pub sales: Option<SalesClient>,
    /// Search.
    pub search: Option<SearchClient>,
    /// Assets.
    pub assets: Option<AssetsClient>,
    /// B2B.
    pub b2b: Option<B2bClient>,
    /// CRM.
    pub crm: Option<CrmClient>,
}

impl BlockClients {
    /// Sales, or `BLOCK_NOT_CONFIGURED`.
    pub fn sales(&self) -> Result<&SalesClient, BlockError> {
        self.sales.as_ref().ok_or(BlockError::NotConfigured {
            block: BlockName::Sales,
        })
    }

    /// Search, or `BLOCK_NOT_CONFIGURED`.
    pub fn search(&self) -> Result<&SearchClient, BlockError> {
        self.search.as_ref().ok_or(BlockError::NotConfigured {
            block: BlockName::Search,
        })
    }

    /// Assets, or `BLOCK_NOT_CONFIGURED`.
    pub fn assets(&self) -> Result<&AssetsClient, BlockError> {
        self.assets.as_ref().ok_or(BlockError::NotConfigured {
            block: BlockName::Assets,
        })
    }

    /// B2B, or `BLOCK_NOT_CONFIGURED`.
    pub fn b2b(&self) -> Result<&B2bClient, BlockError> {
        self.b2b
            .as_ref()
            .ok_or(BlockError::NotConfigured { block: BlockName::B2b })
    }

    /// CRM, or `BLOCK_NOT_CONFIGURED`.
    pub fn crm(&self) -> Result<&CrmClient, BlockError> {
        self.crm
            .as_ref()
            .ok_or(BlockError::NotConfigured { block: BlockName::Crm })
    }

    /// The same clients with each HTTP core replaced by `adapt(core)`: the per-operation
    /// copies (operation budget, forwarded credentials).
    pub fn map_http(&self, adapt: impl Fn(&http::BlockHttp) -> http::BlockHttp) -> Self {
        Self {
            sales: self.sales.as_ref().map(|c| SalesClient::new(adapt(c.http()))),
            search: self.search.as_ref().map(|c| SearchClient::new(adapt(c.http()))),
            assets: self.assets.as_ref().map(|c| AssetsClient::new(adapt(c.http()))),
            b2b: self.b2b.as_ref().map(|c| B2bClient::new(adapt(c.http()))),
            crm: self.crm.as_ref().map(|c| CrmClient::new(adapt(c.http()))),
        }
    }

    /// The HTTP cores of the configured blocks (readiness probes).
    pub fn configured(&self) -> Vec<&http::BlockHttp> {
        let mut cores = Vec::new();
        cores.extend(self.sales.as_ref().map(SalesClient::http));
        cores.extend(self.search.as_ref().map(SearchClient::http));
        cores.extend(self.assets.as_ref().map(AssetsClient::http));
        cores.extend(self.b2b.as_ref().map(B2bClient::http));
        cores.extend(self.crm.as_ref().map(CrmClient::http));
        cores
    }
}
