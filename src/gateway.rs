//! The assembled gateway: block clients built from settings, the shared cache, the schema.
//! Independent of HTTP serving, so tests and the benchmark can build one directly.

use std::{sync::Arc, time::Duration};

use tokio_util::task::TaskTracker;
use tracing::Instrument;

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
    cache::{CacheSettings, ResponseCache, documents::ParsedDocuments},
    callers::{Caller, Callers},
    config::Settings,
    documents::Admission,
    limits::{self, OperationLimits},
    links::{LinkError, LinkIndex, LinkLoader},
    loaders::{BlockLoader, Loaders, RequestScope},
    metrics::Metrics,
    schema::{
        self, GatewaySchema,
        errors::{SchemaError, ensure_codes, request_error_response},
    },
    server::SurfaceSettings,
    shared_cache::{self, SharedCacheError},
    shutdown::Readiness,
};

/// Why the gateway could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The HTTP client could not be built (TLS setup).
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// The identity link index location is not usable.
    #[error(transparent)]
    LinkIndex(#[from] LinkError),
    /// The metrics registry could not be built.
    #[error("could not register the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The Redis tier could not start (`REDIS_URL`).
    #[error(transparent)]
    SharedCache(#[from] SharedCacheError),
}

/// Everything a request needs, shared by all requests. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    schema: GatewaySchema,
    /// The same schema without depth and complexity limits, for introspection-only operations.
    introspection_schema: GatewaySchema,
    surface: SurfaceSettings,
    clients: Arc<BlockClients>,
    cache: ResponseCache,
    limits: OperationLimits,
    callers: Callers,
    links: LinkIndex,
    /// The longest a block call may take once started (bounds the execution backstop).
    request_timeout: Duration,
    metrics: Metrics,
    readiness: Readiness,
    documents: ParsedDocuments,
    admission: Admission,
}

impl Gateway {
    /// Builds the clients of the configured blocks, the cache and the schema.
    pub fn new(settings: &Settings, cache: CacheSettings) -> Result<Self, StartupError> {
        let client = shared_client(settings.connect_timeout)?;
        let metrics = Metrics::new()?;
        let mut clients = BlockClients::default();
        for block in &settings.blocks {
            let http = BlockHttp::new(
                block.block,
                block.base_url.clone(),
                client.clone(),
                block.auth.clone(),
                settings.http.clone(),
            )
            .with_metrics(metrics.clone());
            match block.block {
                BlockName::Sales => clients.sales = Some(SalesClient::new(http)),
                BlockName::Search => clients.search = Some(SearchClient::new(http)),
                BlockName::Assets => clients.assets = Some(AssetsClient::new(http)),
                BlockName::B2b => clients.b2b = Some(B2bClient::new(http)),
                BlockName::Crm => clients.crm = Some(CrmClient::new(http)),
            }
        }
        let documents = ParsedDocuments::default();
        Ok(Self {
            // No extensions: the admission does their work before execution.
            schema: schema::build_with(|builder| settings.surface.install(settings.limits.install(builder))),
            introspection_schema: schema::build_with(|builder| {
                settings
                    .surface
                    .install(settings.limits.install_for_introspection(builder))
            }),
            admission: Admission::new(
                &settings.documents,
                settings.limits,
                settings.surface.introspection,
                documents.clone(),
            ),
            surface: settings.surface.clone(),
            clients: Arc::new(clients),
            cache: shared_cache::attach(ResponseCache::new(cache), settings.shared_cache.as_ref(), &metrics)?,
            limits: settings.limits,
            callers: Callers::new(settings.callers.clone()),
            // Opened lazily: the first use creates the tables (`serve` does so at start).
            links: LinkIndex::open(&settings.link_index)?,
            request_timeout: settings.http.request_timeout,
            metrics,
            readiness: Readiness::default(),
            documents,
        })
    }

    /// Parsed operation documents, shared with the schema: ask it instead of parsing again.
    pub fn parsed_documents(&self) -> &ParsedDocuments {
        &self.documents
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the gateway is draining for shutdown (`/readyz` fails then).
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
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

    /// The identity link index.
    pub fn links(&self) -> &LinkIndex {
        &self.links
    }

    /// The operation limits in force.
    pub fn limits(&self) -> &OperationLimits {
        &self.limits
    }

    /// Fresh loaders for one GraphQL operation: per-operation copies of the block clients
    /// that count every call against the operation's deadline and request cap.
    pub fn loaders(&self, scope: RequestScope) -> Loaders {
        self.loaders_for(scope, &Caller::Service, None)
    }

    /// Introspection, CSRF prevention and CORS for the HTTP surface.
    pub fn surface(&self) -> &SurfaceSettings {
        &self.surface
    }

    /// Who may call, and with whose credentials.
    pub fn callers(&self) -> &Callers {
        &self.callers
    }

    /// Fresh loaders for one operation of `caller`: forwarded credentials replace the
    /// gateway's own, and the cache partition is theirs.
    /// `priming`: where list priming runs, for an operation that waits for it (else
    /// priming is done before a list is answered).
    fn loaders_for(&self, mut scope: RequestScope, caller: &Caller, priming: Option<TaskTracker>) -> Loaders {
        let budget = Arc::new(self.limits.operation_budget());
        let forwarded = match caller {
            Caller::Service => None,
            Caller::Forwarded(credentials) => Some(credentials),
        };
        if let Some(credentials) = forwarded {
            scope.tenant = credentials.tenant();
        }
        let clients = self.clients.map_http(|http| {
            let http = http.for_operation(budget.clone());
            match forwarded {
                Some(credentials) => http.with_auth(credentials.auth_for(http.block())),
                None => http,
            }
        });
        let loader = BlockLoader::new(Arc::new(clients), self.cache.clone(), scope)
            .with_budget(budget)
            .with_metrics(self.metrics.clone());
        match priming {
            Some(priming) => loader.with_priming(priming),
            None => loader,
        }
        .into_data_loader()
    }

    /// Runs one GraphQL request with its own loaders. Fields still waiting for a block when
    /// the operation's deadline passes fail on their own; should execution still run long
    /// after it (a write in flight), the caller gets a timeout instead of waiting on. The
    /// answer leaves only after the operation's invalidations reached the other replicas.
    pub async fn execute(&self, request: async_graphql::Request, scope: RequestScope) -> async_graphql::Response {
        self.execute_as(request, scope, &Caller::Service).await
    }

    /// Runs one GraphQL request for `caller` (see [`Gateway::execute`]).
    pub async fn execute_as(
        &self,
        request: async_graphql::Request,
        scope: RequestScope,
        caller: &Caller,
    ) -> async_graphql::Response {
        let observation = self.metrics.operation_started(&request, self.parsed_documents());
        let response = self
            .execute_observed(request, scope, caller)
            .instrument(observation.span())
            .await;
        observation.finish(&response);
        response
    }

    async fn execute_observed(
        &self,
        request: async_graphql::Request,
        scope: RequestScope,
        caller: &Caller,
    ) -> async_graphql::Response {
        let backstop = self.limits.operation_timeout + self.request_timeout + Duration::from_secs(1);
        let mut request = match self.admission.admit(request) {
            Ok(request) => request,
            Err(error) => {
                let mut response = async_graphql::Response::from_errors(vec![error]);
                ensure_codes(&mut response);
                return response;
            }
        };
        // Every introspection field starts with `__`: other documents need no walk.
        let introspection_only = self.surface.introspection && request.query.contains("__") && {
            let operation_name = request.operation_name.clone();
            request
                .parsed_query()
                .is_ok_and(|document| limits::is_introspection_only(document, operation_name.as_deref()))
        };
        let priming = TaskTracker::new();
        let request = request
            .data(self.loaders_for(scope, caller, Some(priming.clone())))
            .data(LinkLoader::for_request(&self.links));
        let schema = if introspection_only {
            &self.introspection_schema
        } else {
            &self.schema
        };
        let execution = shared_cache::settle_invalidations(async {
            let response = schema.execute(request).await;
            priming.close();
            priming.wait().await;
            response
        });
        let mut response = match tokio::time::timeout(backstop, execution).await {
            Ok(response) => response,
            Err(_) => {
                tracing::error!(?backstop, "an operation outlived its deadline and was abandoned");
                request_error_response(&SchemaError::OperationAbandoned)
            }
        };
        self.limits.explain_refusals(&mut response);
        ensure_codes(&mut response);
        response
    }
}
