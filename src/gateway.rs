//! The assembled gateway: block clients built from settings, the shared cache, the schema.
//! Independent of HTTP serving, so tests and the benchmark can build one directly.

use std::sync::Arc;

use crate::{
    blocks::{
        BlockClients, BlockName,
        assets::AssetsClient,
        b2b::B2bClient,
        crm::CrmClient,
        http::{BlockHttp, shared_client},
        sales::SalesClient,
        search::SearchClient,
    },
    cache::{CacheSettings, ResponseCache},
    config::Settings,
    loaders::{BlockLoader, Loaders, RequestScope},
    schema::{self, GatewaySchema},
};

/// Why the gateway could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The HTTP client could not be built (TLS setup).
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Everything a request needs, shared by all requests. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    schema: GatewaySchema,
    clients: Arc<BlockClients>,
    cache: ResponseCache,
}

impl Gateway {
    /// Builds the clients of the configured blocks, the cache and the schema.
    pub fn new(settings: &Settings, cache: CacheSettings) -> Result<Self, StartupError> {
        let client = shared_client(settings.connect_timeout)?;
        let mut clients = BlockClients::default();
        for block in &settings.blocks {
            let http = BlockHttp::new(
                block.block,
                block.base_url.clone(),
                client.clone(),
                block.auth.clone(),
                settings.http.clone(),
            );
            match block.block {
                BlockName::Sales => clients.sales = Some(SalesClient::new(http)),
                BlockName::Search => clients.search = Some(SearchClient::new(http)),
                BlockName::Assets => clients.assets = Some(AssetsClient::new(http)),
                BlockName::B2b => clients.b2b = Some(B2bClient::new(http)),
                BlockName::Crm => clients.crm = Some(CrmClient::new(http)),
            }
        }
        Ok(Self {
            schema: schema::build(),
            clients: Arc::new(clients),
            cache: ResponseCache::new(cache),
        })
    }

    /// The schema.
    pub fn schema(&self) -> &GatewaySchema {
        &self.schema
    }

    /// The block clients.
    pub fn clients(&self) -> &BlockClients {
        &self.clients
    }

    /// The shared cache.
    pub fn cache(&self) -> &ResponseCache {
        &self.cache
    }

    /// Fresh loaders for one GraphQL request.
    pub fn loaders(&self, scope: RequestScope) -> Loaders {
        BlockLoader::new(self.clients.clone(), self.cache.clone(), scope).into_data_loader()
    }

    /// Runs one GraphQL request with its own loaders.
    pub async fn execute(&self, request: async_graphql::Request, scope: RequestScope) -> async_graphql::Response {
        self.schema.execute(request.data(self.loaders(scope))).await
    }
}
