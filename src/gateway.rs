//! The assembled gateway, and the operation pipeline: block clients built from settings,
//! the response cache, the link index, the schema; one operation runs through the
//! admission, then the schema with fresh loaders, then waits for its cache invalidations.
//! Its answer carries, in `extensions`, the stale copies that stood in for failed blocks
//! (`stale`) and, when the caller asked, what the operation did (`explain`). The replica's
//! readiness is assembled here too. Independent of HTTP serving, so tests and the benchmark
//! can build one directly.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_graphql::{EmptySubscription, ObjectType, SchemaBuilder, parser::types::OperationType};
use futures::future::join_all;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::{
    admission::{Admission, ParsedDocuments, PersistedDocumentSettings},
    blocks::{
        BlockClients, BlockName, BlockSettings,
        assets::AssetsClient,
        b2b::B2bClient,
        breaker::Health as BreakerHealth,
        crm::CrmClient,
        http::{BlockHttp, DEFAULT_CONNECT_TIMEOUT, HttpPolicy, shared_client},
        operation::OperationBudget,
        sales::SalesClient,
        search::SearchClient,
    },
    cache::{CacheSettings, RedisTierError, RedisTierSettings, ResponseCache, settle_invalidations},
    callers::{Caller, CallerSettings, Callers},
    explain::{ExplainAccess, OperationTrace},
    limits::{self, OperationLimits},
    link_index::{LinkError, LinkIndex, LinkIndexLocation, LinkLoader},
    loaders::{BlockLoader, Loaders, RequestScope, StaleAnswer, StaleAnswers},
    metrics::{CacheState, Metrics},
    schema::{
        self, SchemaExtension, ServedSchema,
        errors::{SchemaError, ensure_codes, explain_limit_refusals, null_failed_fields, request_error_response},
    },
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
    RedisTier(#[from] RedisTierError),
}

/// What the gateway is built from (the configuration fills it; tests may too).
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The configured blocks; a block missing here is off (`BLOCK_NOT_CONFIGURED`).
    pub blocks: Vec<BlockSettings>,
    /// Connect timeout for every upstream.
    pub connect_timeout: Duration,
    /// Timeouts, retries and concurrency per upstream request.
    pub http: HttpPolicy,
    /// Size bound and TTLs of the response cache.
    pub cache: CacheSettings,
    /// What one operation may cost (document, request and upstream limits).
    pub limits: OperationLimits,
    /// Who may call (`GATEWAY_AUTH_MODE`, `GATEWAY_API_KEY_HASHES`).
    pub callers: CallerSettings,
    /// Introspection, field suggestions and the playground (`GATEWAY_INTROSPECTION`).
    pub introspection: bool,
    /// Serve the federation subgraph (`_service`, `_entities`) instead of the client-facing
    /// schema (`GATEWAY_FEDERATION`).
    pub federation: bool,
    /// Where the identity link index lives: `DATABASE_URL` (PostgreSQL), else the SQLite
    /// file `LINK_INDEX_PATH`.
    pub link_index: LinkIndexLocation,
    /// Trusted documents (`GATEWAY_TRUSTED_DOCUMENTS`) and automatic persisted queries
    /// (`GATEWAY_APQ_CAPACITY`).
    pub documents: PersistedDocumentSettings,
    /// The Redis tier (`REDIS_URL`): second cache level and invalidations across replicas.
    pub redis: Option<RedisTierSettings>,
    /// Who may ask for `extensions.explain` (`GATEWAY_EXPLAIN`).
    pub explain: ExplainAccess,
}

impl Default for GatewaySettings {
    /// No block, open to every caller, introspection on, the link index in memory (a
    /// throw-away gateway leaves no file behind; the configuration picks the file).
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            http: HttpPolicy::default(),
            cache: CacheSettings::default(),
            limits: OperationLimits::default(),
            callers: CallerSettings::open(),
            introspection: true,
            federation: false,
            link_index: LinkIndexLocation::Memory,
            documents: PersistedDocumentSettings::default(),
            redis: None,
            explain: ExplainAccess::default(),
        }
    }
}

/// Everything a request needs, shared by all requests. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    schema: ServedSchema,
    /// The same schema without depth and complexity limits, for introspection-only operations.
    introspection_schema: ServedSchema,
    introspection: bool,
    clients: Arc<BlockClients>,
    cache: ResponseCache,
    limits: OperationLimits,
    callers: Callers,
    links: LinkIndex,
    /// The longest a block call may take once started (bounds the execution backstop).
    request_timeout: Duration,
    metrics: Metrics,
    documents: ParsedDocuments,
    admission: Admission,
    explain: ExplainAccess,
}

impl Gateway {
    /// Builds the clients of the configured blocks, the cache and the schema (inside a
    /// Tokio runtime when a Redis tier is configured: its subscriber starts at once).
    pub fn new(settings: &GatewaySettings) -> Result<Self, StartupError> {
        let client = shared_client(settings.connect_timeout)?;
        let metrics = Metrics::new()?;
        let mut clients = BlockClients::default();
        for block in &settings.blocks {
            let mut policy = settings.http.clone();
            if let Some(concurrency) = block.max_concurrency {
                policy.max_concurrency = concurrency.max(1);
            }
            let http = BlockHttp::new(
                block.block,
                block.base_url.clone(),
                client.clone(),
                block.auth.clone(),
                policy,
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
        let introspection = settings.introspection;
        Ok(Self {
            // No extensions: the admission does their work before execution.
            schema: ServedSchema::build(
                settings.federation,
                &ServedLimits {
                    limits: &settings.limits,
                    introspection,
                    introspection_only: false,
                },
            ),
            introspection_schema: ServedSchema::build(
                settings.federation,
                &ServedLimits {
                    limits: &settings.limits,
                    introspection,
                    introspection_only: true,
                },
            ),
            admission: Admission::new(&settings.documents, settings.limits, introspection, documents.clone()),
            introspection,
            clients: Arc::new(clients),
            cache: ResponseCache::with_tiers(settings.cache.clone(), settings.redis.as_ref(), &metrics)?,
            limits: settings.limits,
            callers: Callers::new(settings.callers.clone()),
            // Opened lazily: the first use creates the tables (`serve` does so at start).
            links: LinkIndex::open(&settings.link_index)?,
            request_timeout: settings.http.request_timeout,
            metrics,
            documents,
            explain: settings.explain,
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

    /// Every metric in the Prometheus text exposition, with the cache's size and evictions
    /// read now.
    pub async fn render_metrics(&self) -> Result<String, prometheus::Error> {
        let (entries, bytes) = self.cache.usage().await;
        let cache = CacheState {
            entries,
            bytes,
            evictions: self.cache.evictions().counts(),
        };
        self.metrics.render(cache).await
    }

    /// The schema served.
    pub fn schema(&self) -> &ServedSchema {
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
        self.loaders_for(scope, &Caller::Service, None, OperationNotes::default())
    }

    /// Whether introspection (and so the playground) is on.
    pub fn introspection(&self) -> bool {
        self.introspection
    }

    /// Who may call, and with whose credentials.
    pub fn callers(&self) -> &Callers {
        &self.callers
    }

    /// Fresh loaders for one operation of `caller`: forwarded credentials replace the
    /// gateway's own, and the cache partition is theirs.
    /// `priming`: where list priming runs, for an operation that waits for it (else
    /// priming is done before a list is answered). `notes`: where the operation's stale
    /// answers and (explained) trace are kept.
    fn loaders_for(
        &self,
        mut scope: RequestScope,
        caller: &Caller,
        priming: Option<TaskTracker>,
        notes: OperationNotes,
    ) -> Loaders {
        // The operation's deadline starts now.
        let budget = Arc::new(OperationBudget::new(
            Some(self.limits.operation_timeout),
            Some(self.limits.max_upstream_requests),
        ));
        let forwarded = match caller {
            Caller::Service => None,
            Caller::Forwarded(credentials) => Some(credentials),
        };
        if let Some(credentials) = forwarded {
            scope.tenant = credentials.tenant();
        }
        let clients = self.clients.map_http(|http| {
            let http = http.for_operation(budget.clone());
            let http = match &notes.trace {
                Some(trace) => http.with_trace(trace.clone()),
                None => http,
            };
            match forwarded {
                Some(credentials) => http.with_auth(credentials.auth_for(http.block())),
                None => http,
            }
        });
        let mut loader = BlockLoader::new(Arc::new(clients), self.cache.clone(), scope)
            .with_budget(budget)
            .with_metrics(self.metrics.clone())
            .with_stale_answers(notes.stale)
            .with_lookup_index(self.links.clone());
        if let Some(trace) = notes.trace {
            loader = loader.with_trace(trace);
        }
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
        let explain = self.explain_for(&request);
        let (name, kind) = operation_of(&request, &self.documents);
        let observation = self.metrics.operation_started(name.as_deref(), kind);
        let notes = OperationNotes {
            stale: Arc::default(),
            trace: match &explain {
                Explain::Traced(trace) => Some(trace.clone()),
                Explain::NotAsked | Explain::Refused => None,
            },
        };
        let stale = notes.stale.clone();
        // A write never reads a stale copy, nor does a caller who asked for fresh answers.
        let scope = RequestScope {
            stale_if_error: kind == "query" && !scope.bypass_cache,
            ..scope
        };
        let mut response = self
            .execute_observed(request, scope, caller, notes)
            .instrument(observation.span())
            .await;
        observation.finish(&response);
        report_stale_answers(&mut response, stale.take());
        explain.report(&mut response);
        response
    }

    /// Whether the request asked for `extensions.explain` (`"extensions": {"explain":
    /// true}`), and may have it. Nothing is allocated for a request that did not ask.
    fn explain_for(&self, request: &async_graphql::Request) -> Explain {
        let asked = request
            .extensions
            .get("explain")
            .is_some_and(|flag| *flag == async_graphql::Value::Boolean(true));
        match (asked, self.explain) {
            (false, _) => Explain::NotAsked,
            (true, ExplainAccess::Off) => Explain::Refused,
            (true, ExplainAccess::Callers) => Explain::Traced(Arc::new(OperationTrace::new())),
        }
    }

    /// What `/readyz` reports: ready while this replica can serve (not draining is the
    /// server's part): its own stores answer, the link index and Redis when configured.
    /// Each block's state comes from its circuit breaker and never fails readiness, unless
    /// `strict`: then every block is also probed and must be reachable with its circuit
    /// closed.
    pub async fn readiness(&self, strict: bool) -> Readiness {
        let link_index = async { matches!(tokio::time::timeout(PROBE_TIMEOUT, self.links.ping()).await, Ok(Ok(()))) };
        let redis = async {
            match self.cache.redis_tier() {
                Some(tier) => Some(tier.ping().await),
                None => None,
            }
        };
        let blocks = join_all(self.clients.configured().into_iter().map(|http| async move {
            let health = http.health();
            let reachable = !strict || http.probe(PROBE_TIMEOUT).await;
            (http.block().label(), health, reachable)
        }));
        let (link_index, redis, blocks) = tokio::join!(link_index, redis, blocks);
        let mut stores = BTreeMap::from([("linkIndex", up_or_unreachable(link_index))]);
        if let Some(redis) = redis {
            stores.insert("redis", up_or_unreachable(redis));
        }
        let mut ready = link_index && redis.unwrap_or(true);
        let mut states = BTreeMap::new();
        for (block, health, reachable) in blocks {
            let state = match health {
                BreakerHealth::Open { .. } => health.label(),
                _ if !reachable => "unreachable",
                _ => health.label(),
            };
            if strict && (state == "unreachable" || state == "breaker_open") {
                ready = false;
            }
            states.insert(block, state);
        }
        Readiness {
            ready,
            strict,
            stores,
            blocks: states,
        }
    }

    async fn execute_observed(
        &self,
        request: async_graphql::Request,
        scope: RequestScope,
        caller: &Caller,
        notes: OperationNotes,
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
        let introspection_only = self.introspection && request.query.contains("__") && {
            let operation_name = request.operation_name.clone();
            request
                .parsed_query()
                .is_ok_and(|document| limits::is_introspection_only(document, operation_name.as_deref()))
        };
        let priming = TaskTracker::new();
        let request = request
            .data(self.loaders_for(scope, caller, Some(priming.clone()), notes))
            .data(LinkLoader::for_request(&self.links));
        let schema = if introspection_only {
            &self.introspection_schema
        } else {
            &self.schema
        };
        let execution = settle_invalidations(async {
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
        explain_limit_refusals(&mut response, &self.limits);
        ensure_codes(&mut response);
        null_failed_fields(&mut response);
        response
    }
}

/// How long a readiness check waits for the link index or a block's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` answers (as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// Whether the replica should receive traffic.
    pub ready: bool,
    /// Whether the blocks were probed and count (`/readyz?strict=true`).
    pub strict: bool,
    /// The replica's own stores: `linkIndex`, and `redis` when configured: `up` or
    /// `unreachable`.
    pub stores: BTreeMap<&'static str, &'static str>,
    /// Each configured block: `up`, `degraded`, `breaker_open` (from the outcome of recent
    /// calls), or `unreachable` (a strict check's probe got no answer).
    pub blocks: BTreeMap<&'static str, &'static str>,
}

fn up_or_unreachable(up: bool) -> &'static str {
    if up { "up" } else { "unreachable" }
}

/// Where one operation's loaders keep what the answer reports besides its data.
#[derive(Default)]
struct OperationNotes {
    stale: Arc<StaleAnswers>,
    trace: Option<Arc<OperationTrace>>,
}

/// Whether and how an operation is explained.
enum Explain {
    /// The caller did not ask.
    NotAsked,
    /// The caller asked, but `GATEWAY_EXPLAIN` is off.
    Refused,
    /// The caller asked and may have it.
    Traced(Arc<OperationTrace>),
}

impl Explain {
    /// Adds `extensions.explain` (or, refused, `extensions.explainRefused`) to `response`.
    fn report(&self, response: &mut async_graphql::Response) {
        match self {
            Self::NotAsked => {}
            Self::Refused => {
                response.extensions.insert(
                    "explainRefused".to_owned(),
                    async_graphql::Value::from("explain is turned off on this gateway (GATEWAY_EXPLAIN=off)"),
                );
            }
            Self::Traced(trace) => {
                if let Ok(explanation) = async_graphql::to_value(trace.explanation()) {
                    response.extensions.insert("explain".to_owned(), explanation);
                }
            }
        }
    }
}

/// Adds `extensions.stale` to `response`: each record a stale copy stood in for, with its
/// block, resource, the paths that show it, its age and the failure it stood in for. A copy
/// no field showed is left out.
fn report_stale_answers(response: &mut async_graphql::Response, answers: Vec<StaleAnswer>) {
    let shown: Vec<serde_json::Value> = answers
        .into_iter()
        .filter(|answer| !answer.paths.is_empty())
        .map(|answer| {
            serde_json::json!({
                "block": answer.block.label(),
                "resource": answer.resource.label(),
                "paths": answer.paths,
                "ageMs": answer.age.as_millis() as u64,
                "expiredForMs": answer.expired_for.as_millis() as u64,
                "cause": answer.cause.as_str(),
                "status": answer.status,
            })
        })
        .collect();
    if shown.is_empty() {
        return;
    }
    if let Ok(value) = async_graphql::Value::from_json(serde_json::Value::Array(shown)) {
        response.extensions.insert("stale".to_owned(), value);
    }
}

/// What the served schemas get: the document limits (all of them, or without depth and
/// complexity for the introspection twin) and the introspection switch.
struct ServedLimits<'a> {
    limits: &'a OperationLimits,
    introspection: bool,
    introspection_only: bool,
}

impl SchemaExtension for ServedLimits<'_> {
    fn extend<Q: ObjectType + 'static>(
        &self,
        builder: SchemaBuilder<Q, schema::mutation::MutationRoot, EmptySubscription>,
    ) -> SchemaBuilder<Q, schema::mutation::MutationRoot, EmptySubscription> {
        let builder = if self.introspection_only {
            self.limits.install_for_introspection(builder)
        } else {
            self.limits.install(builder)
        };
        schema::with_introspection(builder, self.introspection)
    }
}

/// The name and type of the operation a request runs, for metrics and the operation's span:
/// read from the parsed-document cache, so a warm request is not parsed again. An
/// unparsable document is an `unknown` operation (its execution fails and counts as an error).
fn operation_of(request: &async_graphql::Request, documents: &ParsedDocuments) -> (Option<String>, &'static str) {
    let chosen = request.operation_name.as_deref();
    let selected = documents.parse(&request.query).ok().and_then(|document| {
        let (name, operation) = limits::selected_operation(&document, chosen)?;
        let kind = match operation.node.ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        };
        Some((name.map(|name| name.to_string()), kind))
    });
    selected.unwrap_or_else(|| (chosen.map(str::to_owned), "unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, name: Option<&str>) -> async_graphql::Request {
        let request = async_graphql::Request::new(query);
        match name {
            Some(name) => request.operation_name(name),
            None => request,
        }
    }

    #[test]
    fn operation_name_and_type_come_from_the_selected_operation() {
        let documents = ParsedDocuments::new(8);
        let (name, kind) = operation_of(&request("query A { a } mutation B { b }", Some("B")), &documents);
        assert_eq!((name.as_deref(), kind), (Some("B"), "mutation"));
        let (name, kind) = operation_of(&request("{ a }", None), &documents);
        assert_eq!((name, kind), (None, "query"));
        let (_, kind) = operation_of(&request("query {", Some("Broken")), &documents);
        assert_eq!(kind, "unknown");
    }
}
