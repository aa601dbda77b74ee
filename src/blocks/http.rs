//! The HTTP core every block client shares: one pooled reqwest client, the block's auth
//! headers, timeouts, a per-block concurrency bound, a circuit breaker per block, GET-only
//! retries with jittered backoff within a retry budget, the operation's deadline and request
//! cap, and error-body parsing. Block clients only build URLs and bodies.

use std::{sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::{
    Method, RequestBuilder, StatusCode,
    header::{HeaderName, HeaderValue, RETRY_AFTER},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::sync::Semaphore;
use url::Url;

use super::{
    BlockName,
    breaker::{BreakerPolicy, CircuitBreaker, Health, Outcome, Refusal},
    error::{BlockError, FieldIssue, Result, UpstreamProblem},
    operation::OperationBudget,
    retry_budget::RetryBudget,
};
use crate::{
    explain::OperationTrace,
    metrics::{Metrics, UpstreamObservation},
};

/// How a block expects to be authenticated.
#[derive(Clone)]
pub enum BlockAuth {
    /// The 23blocks style: `Authorization: Bearer <token>` plus `AppId: <app id>`.
    BearerWithAppId {
        /// The bearer token.
        token: SecretString,
        /// The application key sent as `AppId`.
        app_id: SecretString,
    },
    /// One header carrying `<scheme> <secret>` (B2B `Token`, CRM `Api-Token`).
    SchemeHeader {
        /// The header name, `Authorization` unless configured otherwise.
        header: HeaderName,
        /// The scheme word before the secret (`Token`, `Api-Token`); empty for none.
        scheme: String,
        /// The secret.
        secret: SecretString,
    },
    /// Header values sent exactly as given (credentials a caller forwarded).
    Verbatim(Vec<(HeaderName, SecretString)>),
    /// No credential: calls fail with `UNAUTHENTICATED` without a request (a caller in
    /// forward mode who sent none for this block).
    Missing,
}

impl BlockAuth {
    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::BearerWithAppId { token, app_id } => request
                .header(
                    reqwest::header::AUTHORIZATION,
                    sensitive(&format!("Bearer {}", token.expose_secret())),
                )
                .header("AppId", sensitive(app_id.expose_secret())),
            Self::SchemeHeader { header, scheme, secret } => {
                let value = if scheme.is_empty() {
                    secret.expose_secret().to_owned()
                } else {
                    format!("{scheme} {}", secret.expose_secret())
                };
                request.header(header.clone(), sensitive(&value))
            }
            Self::Verbatim(headers) => headers.iter().fold(request, |request, (name, value)| {
                request.header(name.clone(), sensitive(value.expose_secret()))
            }),
            Self::Missing => request,
        }
    }
}

/// A header value marked sensitive so that no debug output of hyper or reqwest shows it.
/// Configuration validates secrets as header-safe, so the fallback is never expected.
fn sensitive(value: &str) -> HeaderValue {
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

/// Timeouts, retries and concurrency for one block.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Limit for one whole request (connect, send, read the body).
    pub request_timeout: Duration,
    /// How many times a failed GET is sent again (connection errors, 502, 503, 504).
    pub max_retries: usize,
    /// First backoff delay; doubled per attempt, with jitter.
    pub retry_base_delay: Duration,
    /// Requests to this block in flight at once, across all operations.
    pub max_concurrency: usize,
    /// When the block's circuit breaker opens and for how long.
    pub breaker: BreakerPolicy,
    /// Retries may add at most this percentage of the requests sent (plus a small reserve).
    pub retry_budget_percent: u32,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_retries: 2,
            retry_base_delay: Duration::from_millis(50),
            max_concurrency: 64,
            breaker: BreakerPolicy::default(),
            retry_budget_percent: 20,
        }
    }
}

/// Connect timeout of the shared client when none is configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds the one pooled reqwest client all blocks share.
pub fn shared_client(connect_timeout: Duration) -> std::result::Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a bundled crypto provider (aws-lc is slow to build);
    // install ring once. An Err means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .user_agent(concat!("blocks-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The shared HTTP machinery bound to one block: base URL, auth, policy and bound, the
/// block's breaker and retry budget, and (in a per-operation copy) the operation's budget.
#[derive(Clone)]
pub struct BlockHttp {
    block: BlockName,
    base: Url,
    client: reqwest::Client,
    auth: Arc<BlockAuth>,
    policy: Arc<HttpPolicy>,
    permits: Arc<Semaphore>,
    breaker: Arc<CircuitBreaker>,
    retry_budget: Arc<RetryBudget>,
    operation: Option<Arc<OperationBudget>>,
    /// Where requests are counted and timed (`/metrics`); none in bare test cores.
    metrics: Option<Metrics>,
    /// Where an explained operation's requests are recorded (its per-operation copy only).
    trace: Option<Arc<OperationTrace>>,
    /// For a block whose contract is ambiguous about trailing slashes: which form its
    /// server routes (learned from the first route miss).
    slash: Option<Arc<SlashForm>>,
}

/// Which trailing-slash form of its paths a block's server routes. `assets.md` heads its
/// endpoints `/users/:unique_id/` but sends `/users/user-uuid-123` in every example, so a
/// server may route either; the client sends the examples' form and, on a route miss (404
/// or 405 without a JSON body, unlike the block's JSON "not found"), tries the other once
/// and keeps whichever the server routes.
#[derive(Debug, Default)]
struct SlashForm {
    toggled: std::sync::atomic::AtomicBool,
}

impl SlashForm {
    fn is_toggled(&self) -> bool {
        self.toggled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Remembers the form that was routed (a plain store: concurrent discoverers agree).
    fn learn(&self, toggled: bool) {
        if self.toggled.swap(toggled, std::sync::atomic::Ordering::Relaxed) != toggled {
            tracing::info!(
                toggled,
                "Assets routes the other trailing-slash form; sending that form from now on"
            );
        }
    }
}

/// The same URL with its path's trailing slash added or removed.
fn toggle_trailing_slash(mut url: Url) -> Url {
    let path = url.path().to_owned();
    match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => url.set_path(trimmed),
        Some(_) => {}
        None => url.set_path(&format!("{path}/")),
    }
    url
}

/// A 404/405 whose body is not JSON: the server has no such route (a missing record is a
/// JSON error in every block's contract).
fn is_route_miss(result: &Result<Body>) -> bool {
    matches!(result, Err(BlockError::Status { status: 404 | 405, problem, .. }) if problem.body.is_none())
}

/// How long one attempt may take, and whether the operation's deadline set that.
struct AttemptLimit {
    duration: Duration,
    by_deadline: bool,
}

impl BlockHttp {
    /// Binds the shared client to one block. `base` is the URL every path is appended to.
    pub fn new(block: BlockName, base: Url, client: reqwest::Client, auth: BlockAuth, policy: HttpPolicy) -> Self {
        let permits = Arc::new(Semaphore::new(policy.max_concurrency.max(1)));
        Self {
            block,
            base,
            client,
            auth: Arc::new(auth),
            breaker: Arc::new(CircuitBreaker::new(policy.breaker)),
            retry_budget: Arc::new(RetryBudget::new(policy.retry_budget_percent)),
            policy: Arc::new(policy),
            permits,
            operation: None,
            metrics: None,
            trace: None,
            slash: (block == BlockName::Assets).then(|| Arc::new(SlashForm::default())),
        }
    }

    /// The same core recording every request in `metrics`.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self {
            metrics: Some(metrics),
            ..self
        }
    }

    /// The same core recording every request in `trace` (an explained operation's copy).
    pub fn with_trace(&self, trace: Arc<OperationTrace>) -> Self {
        Self {
            trace: Some(trace),
            ..self.clone()
        }
    }

    /// The block's health as its circuit breaker sees it (no request is sent).
    pub fn health(&self) -> Health {
        self.breaker.health()
    }

    /// The block this core talks to.
    pub fn block(&self) -> BlockName {
        self.block
    }

    /// The base URL (for readiness probes).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The same block reached with other credentials (forwarded caller credentials);
    /// pool, policy, concurrency bound, breaker and retry budget stay shared.
    pub fn with_auth(&self, auth: BlockAuth) -> Self {
        Self {
            auth: Arc::new(auth),
            ..self.clone()
        }
    }

    /// The copy one operation uses: its calls count against `budget` (deadline, request cap).
    pub fn for_operation(&self, budget: Arc<OperationBudget>) -> Self {
        Self {
            operation: Some(budget),
            ..self.clone()
        }
    }

    /// Builds a URL from path segments, each percent-encoded; a trailing `""` segment gives
    /// the trailing slash some blocks require. A `.` or `..` segment is refused: the URL
    /// parser drops it (and reads `%2E%2E` as `..` too), so the request would reach
    /// another route (`GET /users/` is the list, `DELETE /persons/` the collection).
    pub fn url(&self, segments: &[&str]) -> Result<Url> {
        if segments.iter().any(|segment| matches!(*segment, "." | "..")) {
            return Err(BlockError::UnaddressableId { block: self.block });
        }
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    /// Whether the block answers HTTP at all within `timeout` (any status counts).
    pub async fn probe(&self, timeout: Duration) -> bool {
        let request = self.client.get(self.base.clone()).timeout(timeout);
        self.auth.apply(request).send().await.is_ok()
    }

    /// GET a JSON document. Retried on connection errors, 502, 503 and 504, with jittered
    /// backoff, while the retry budget and the operation's deadline allow.
    pub async fn get_json<T: DeserializeOwned>(&self, route: &'static str, url: Url) -> Result<T> {
        self.retry_budget.record_request();
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.policy.retry_base_delay)
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(self.policy.max_retries)
            .with_jitter()
            .build();
        loop {
            let error = match self.send(Method::GET, route, url.clone(), None).await {
                Ok(body) => return self.decode(&body),
                Err(error) => error,
            };
            let Some(delay) = delays.next().filter(|delay| self.may_retry(&error, *delay)) else {
                return Err(error);
            };
            tracing::debug!(block = %self.block, route, %error, ?delay, "retrying GET");
            tokio::time::sleep(delay).await;
        }
    }

    /// A retry is sent only for a retryable failure, when the operation still has time for
    /// the backoff, and when the block's retry budget has a token (taken last).
    fn may_retry(&self, error: &BlockError, delay: Duration) -> bool {
        let time_left = self
            .operation
            .as_ref()
            .and_then(|operation| operation.remaining())
            .is_none_or(|left| left > delay);
        error.is_retryable() && time_left && self.retry_budget.try_retry()
    }

    /// GET that maps 404 to `None`.
    pub async fn get_optional<T: DeserializeOwned>(&self, route: &'static str, url: Url) -> Result<Option<T>> {
        match self.get_json(route, url).await {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Sends a write with a JSON body and decodes the JSON answer. Never retried: a retried
    /// register or merge could duplicate records.
    pub async fn write_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        route: &'static str,
        url: Url,
        body: Option<&B>,
    ) -> Result<T> {
        let body = body.map(|body| self.encode(route, body)).transpose()?;
        let answer = self.send(method, route, url, body).await?;
        self.decode(&answer)
    }

    /// Sends a write whose answer body is ignored (DELETE 204, B2B `{}` answers).
    pub async fn write_ignoring_body<B: Serialize + ?Sized>(
        &self,
        method: Method,
        route: &'static str,
        url: Url,
        body: Option<&B>,
    ) -> Result<()> {
        let body = body.map(|body| self.encode(route, body)).transpose()?;
        self.send(method, route, url, body).await.map(|_| ())
    }

    fn encode<B: Serialize + ?Sized>(&self, route: &'static str, body: &B) -> Result<Vec<u8>> {
        serde_json::to_vec(body).map_err(|error| {
            tracing::error!(block = %self.block, route, %error, "could not encode a request body");
            BlockError::Internal { block: self.block }
        })
    }

    /// One attempt, refused without a request when the caller has no credential for the
    /// block, the operation's deadline passed, the breaker is open or the block asked for a
    /// pause, or the operation's request cap is reached. The attempt (waiting for a permit
    /// included) is bounded by the request timeout and, for reads, the operation's deadline.
    async fn send(&self, method: Method, route: &'static str, url: Url, body: Option<Vec<u8>>) -> Result<Body> {
        if matches!(*self.auth, BlockAuth::Missing) {
            return Err(BlockError::CredentialMissing { block: self.block });
        }
        let limit = self.attempt_limit(method == Method::GET)?;
        let pass = self.breaker.admit().map_err(|refusal| self.refused(refusal))?;
        if let Some(operation) = &self.operation {
            operation
                .take_request()
                .map_err(|limit| BlockError::RequestLimitExceeded {
                    block: self.block,
                    limit,
                })?;
        }
        let result =
            match tokio::time::timeout(limit.duration, self.exchange_in_routed_form(method, route, url, body)).await {
                Ok(result) => result,
                Err(_) if limit.by_deadline => return Err(self.deadline_exceeded()),
                Err(_) => Err(BlockError::Timeout {
                    block: self.block,
                    timeout: limit.duration,
                }),
            };
        if let Some(outcome) = breaker_outcome(&result)
            && pass.settle(outcome)
        {
            tracing::warn!(block = %self.block, "circuit opened: calls refused for the cool-down");
        }
        result
    }

    fn attempt_limit(&self, is_read: bool) -> Result<AttemptLimit> {
        let own = AttemptLimit {
            duration: self.policy.request_timeout,
            by_deadline: false,
        };
        match self.operation.as_ref().and_then(|operation| operation.remaining()) {
            Some(left) if left.is_zero() => Err(self.deadline_exceeded()),
            // A write already sent is not cut short by the deadline: its outcome matters.
            Some(left) if is_read && left < own.duration => Ok(AttemptLimit {
                duration: left,
                by_deadline: true,
            }),
            _ => Ok(own),
        }
    }

    fn deadline_exceeded(&self) -> BlockError {
        BlockError::DeadlineExceeded {
            block: self.block,
            limit: self
                .operation
                .as_ref()
                .map(|operation| operation.time_limit())
                .unwrap_or_default(),
        }
    }

    fn refused(&self, refusal: Refusal) -> BlockError {
        match refusal {
            Refusal::Open { retry_in } => BlockError::CircuitOpen {
                block: self.block,
                retry_in,
            },
            Refusal::Paused { retry_after } => BlockError::Throttled {
                block: self.block,
                retry_after,
            },
        }
    }

    /// Sends in the path form the block routes; for a block with an ambiguous contract, a
    /// route miss is tried once more in the other form (which, if routed, is kept).
    async fn exchange_in_routed_form(
        &self,
        method: Method,
        route: &'static str,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Body> {
        let Some(slash) = &self.slash else {
            return self.exchange(method, route, url, body).await;
        };
        let toggled = slash.is_toggled();
        let url = if toggled { toggle_trailing_slash(url) } else { url };
        let other = (toggle_trailing_slash(url.clone()), body.clone());
        let first = self.exchange(method.clone(), route, url, body).await;
        if !is_route_miss(&first) {
            return first;
        }
        if let Some(operation) = &self.operation
            && operation.take_request().is_err()
        {
            return first;
        }
        let second = self.exchange(method, route, other.0, other.1).await;
        if !is_route_miss(&second) {
            slash.learn(!toggled);
        }
        second
    }

    /// Waits for a permit, sends, reads the body and maps the status.
    #[tracing::instrument(name = "upstream.request", skip_all, fields(block = %self.block, %method, route, status = tracing::field::Empty, otel.kind = "client"))]
    async fn exchange(&self, method: Method, route: &'static str, url: Url, body: Option<Vec<u8>>) -> Result<Body> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BlockError::Internal { block: self.block })?;
        let started = std::time::Instant::now();
        let observation =
            UpstreamObservation::start(self.metrics.as_ref(), self.block.label(), method_label(&method), route);
        let explained = self
            .trace
            .as_deref()
            .map(|trace| trace.upstream_started(self.block.label(), method_label(&method), route));
        let mut request = self
            .client
            .request(method.clone(), url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let result = self.auth.apply(request).send().await;
        let response = result.map_err(|error| self.transport_error(&error))?;
        let status = response.status();
        let retry_after = retry_after_seconds(response.headers().get(RETRY_AFTER));
        let bytes = response.bytes().await.map_err(|error| self.transport_error(&error))?;
        tracing::Span::current().record("status", status.as_u16());
        observation.answered(status.as_str());
        if let Some(explained) = explained {
            explained.answered(status.as_u16());
        }
        tracing::debug!(
            block = %self.block,
            %method,
            route,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "upstream request"
        );
        if status.is_success() {
            return Ok(Body(bytes));
        }
        Err(self.status_error(status, &bytes, retry_after))
    }

    fn decode<T: DeserializeOwned>(&self, body: &Body) -> Result<T> {
        // An empty 2xx body reads as JSON null, so `()`/Option targets accept it.
        let bytes: &[u8] = if body.0.is_empty() { b"null" } else { &body.0 };
        serde_json::from_slice(bytes).map_err(|error| {
            tracing::warn!(block = %self.block, %error, "undecodable upstream answer");
            BlockError::Decode {
                block: self.block,
                reason: error.to_string(),
            }
        })
    }

    fn transport_error(&self, error: &reqwest::Error) -> BlockError {
        if error.is_timeout() {
            BlockError::Timeout {
                block: self.block,
                timeout: self.policy.request_timeout,
            }
        } else {
            // Without the URL: it can carry ids of people.
            let reason = error.without_url_ref();
            BlockError::Unreachable {
                block: self.block,
                reason,
            }
        }
    }

    fn status_error(&self, status: StatusCode, body: &[u8], retry_after: Option<u64>) -> BlockError {
        BlockError::Status {
            block: self.block,
            status: status.as_u16(),
            problem: parse_problem(body),
            retry_after,
        }
    }
}

/// The method as a metric label (the blocks are only sent these).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        use std::error::Error as _;
        let mut text = if self.is_connect() {
            "connection failed".to_owned()
        } else if self.is_body() || self.is_decode() {
            "could not read the answer body".to_owned()
        } else {
            "request failed".to_owned()
        };
        if let Some(source) = self.source().and_then(|s| s.source()) {
            text.push_str(": ");
            text.push_str(&source.to_string());
        }
        text
    }
}

/// A successful answer's raw body.
struct Body(bytes::Bytes);

/// What an attempt says about the block's health; `None` when it says nothing (the
/// gateway failed, or refused before sending).
fn breaker_outcome(result: &Result<Body>) -> Option<Outcome> {
    match result {
        Ok(_) => Some(Outcome::Answered),
        Err(BlockError::Unreachable { .. } | BlockError::Timeout { .. }) => Some(Outcome::Unavailable),
        Err(BlockError::Status {
            status: 429,
            retry_after,
            ..
        }) => Some(Outcome::RateLimited {
            retry_after: retry_after.map(Duration::from_secs),
        }),
        Err(BlockError::Status { status, .. }) if *status >= 500 => Some(Outcome::Unavailable),
        Err(BlockError::Status { .. }) => Some(Outcome::Answered),
        Err(_) => None,
    }
}

fn retry_after_seconds(value: Option<&HeaderValue>) -> Option<u64> {
    value?.to_str().ok()?.trim().parse().ok()
}

/// Reads what a block said about a failure, whatever its style: JSON:API `errors`
/// (array, or Rails' `{field: [messages]}` object), DRF `detail`, DRF field errors and
/// `non_field_errors`. A body that is not JSON gives an empty problem.
pub fn parse_problem(body: &[u8]) -> UpstreamProblem {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return UpstreamProblem::default();
    };
    let mut problem = UpstreamProblem::default();
    if let Value::Object(map) = &value {
        match map.get("errors") {
            Some(Value::Array(errors)) => read_jsonapi_errors(errors, &mut problem),
            Some(Value::Object(fields)) => read_field_errors(fields, &mut problem),
            _ => {}
        }
        if let Some(detail) = map.get("detail").and_then(Value::as_str) {
            problem.detail.get_or_insert_with(|| detail.to_owned());
        }
        if map.get("errors").is_none() {
            read_field_errors(map, &mut problem);
        }
    }
    problem.body = Some(Arc::new(value));
    problem
}

fn read_jsonapi_errors(errors: &[Value], problem: &mut UpstreamProblem) {
    for error in errors {
        let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
        if problem.code.is_none() {
            problem.code = text("code");
        }
        let message = text("detail").or_else(|| text("title"));
        let field = error
            .pointer("/source/pointer")
            .and_then(Value::as_str)
            .and_then(|pointer| pointer.rsplit('/').next())
            .map(str::to_owned);
        if let Some(message) = message {
            if problem.detail.is_none() {
                problem.detail = Some(message.clone());
            }
            problem.fields.push(FieldIssue { field, message });
        }
    }
}

/// DRF and Rails field errors: `{"email": ["This field is required."]}`.
fn read_field_errors(fields: &serde_json::Map<String, Value>, problem: &mut UpstreamProblem) {
    for (key, value) in fields {
        if key == "detail" {
            continue;
        }
        let field = (key != "non_field_errors").then(|| key.clone());
        let messages: Vec<&str> = match value {
            Value::String(message) => vec![message.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for message in messages {
            problem.fields.push(FieldIssue {
                field: field.clone(),
                message: message.to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jsonapi_error_detail_and_code() {
        let problem = parse_problem(
            br#"{"errors":[{"status":"404","code":"not_found","title":"User Not Found","detail":"The requested user could not be found."}]}"#,
        );
        assert_eq!(problem.code.as_deref(), Some("not_found"));
        assert_eq!(
            problem.detail.as_deref(),
            Some("The requested user could not be found.")
        );
    }

    #[test]
    fn reads_drf_field_errors() {
        let problem = parse_problem(br#"{"email":["This field is required."],"non_field_errors":["Nope."]}"#);
        assert_eq!(problem.fields.len(), 2);
        assert!(
            problem
                .fields
                .iter()
                .any(|issue| issue.field.as_deref() == Some("email"))
        );
        assert!(problem.fields.iter().any(|issue| issue.field.is_none()));
    }

    #[test]
    fn reads_drf_detail_and_keeps_body() {
        let problem = parse_problem(br#"{"detail":"exists","invitation_id":7}"#);
        assert_eq!(problem.detail.as_deref(), Some("exists"));
        assert_eq!(
            problem.body.as_deref().and_then(|b| b.get("invitation_id")),
            Some(&Value::from(7))
        );
    }

    #[test]
    fn non_json_body_gives_empty_problem() {
        let problem = parse_problem(b"<html>502 Bad Gateway</html>");
        assert!(problem.detail.is_none() && problem.fields.is_empty() && problem.body.is_none());
    }
}
