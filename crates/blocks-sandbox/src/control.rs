//! The one middleware every emulated block runs behind: it records each request, counts
//! concurrency, applies the fault knobs tests turn, and checks the block's credentials.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::respond::{ErrorStyle, Reject, drf_detail, json_api_error, lock, method_fallback, route_fallback};

/// Largest request body the sandbox reads; anything bigger is refused with 413.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// How long a "hung" request waits: far beyond any sane client timeout.
const HANG_FOR: Duration = Duration::from_secs(60 * 60);

/// What a request with the garbage knob on receives: a 200 whose body is not JSON,
/// labelled as JSON so the client's parser (not its content-type check) has to cope.
const GARBAGE_BODY: &str = "<html><body><h1>502 Bad Gateway</h1>upstream sent an invalid response";

/// One request as the block received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lower case.
    pub headers: Vec<(String, String)>,
    /// Body as text (lossy UTF-8).
    pub body: String,
    /// When the request arrived (before the block's latency).
    pub received_at: std::time::Instant,
}

impl RecordedRequest {
    /// The first value of header `name`, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn from_parts(parts: &Parts, body: &[u8]) -> Self {
        Self {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
            received_at: std::time::Instant::now(),
        }
    }
}

/// The credentials a block accepts and how it refuses the others.
#[derive(Debug)]
pub(crate) enum Auth {
    /// 23blocks: `Authorization: Bearer <token>` (else 401) plus `AppId: <app_id>` (else 403).
    BearerAndAppId {
        /// The accepted bearer token.
        token: String,
        /// The accepted `AppId` header value.
        app_id: String,
    },
    /// DRF token authentication: `Authorization: <scheme> <token>`, else 401.
    Scheme {
        /// The keyword before the token (`Token`, `Api-Token`).
        scheme: &'static str,
        /// The accepted token.
        token: String,
        /// The `detail` when no credentials were sent.
        missing: &'static str,
        /// The `detail` when the credentials are wrong.
        invalid: &'static str,
    },
}

impl Auth {
    /// `Ok` when the headers carry this block's credentials, else the block's refusal.
    fn check(&self, headers: &HeaderMap) -> Result<(), Reject> {
        let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        match self {
            Self::BearerAndAppId { token, app_id } => {
                if credential(authorization, "Bearer") != Some(token.as_str()) {
                    return Err(json_api_error(
                        StatusCode::UNAUTHORIZED,
                        "Unauthorized",
                        "Missing or invalid bearer token.",
                    )
                    .into());
                }
                let sent_app_id = headers.get("appid").and_then(|v| v.to_str().ok());
                if sent_app_id != Some(app_id.as_str()) {
                    return Err(json_api_error(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        "Missing or invalid AppId for this token.",
                    )
                    .into());
                }
                Ok(())
            }
            Self::Scheme {
                scheme,
                token,
                missing,
                invalid,
            } => match credential(authorization, scheme) {
                Some(sent) if sent == token => Ok(()),
                sent => {
                    let detail = if sent.is_none() && authorization.is_none() {
                        missing
                    } else {
                        invalid
                    };
                    let mut response = drf_detail(StatusCode::UNAUTHORIZED, detail);
                    // DRF names the scheme it expects on every 401.
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
                    Err(response.into())
                }
            },
        }
    }
}

/// The credential after `scheme` in an `Authorization` value (scheme matched
/// case-insensitively, as HTTP says).
fn credential<'a>(authorization: Option<&'a str>, scheme: &str) -> Option<&'a str> {
    let (sent_scheme, rest) = authorization?.trim().split_once(' ')?;
    sent_scheme.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The fault knobs, read once per request.
#[derive(Debug, Default)]
struct Knobs {
    latency: Duration,
    failure_rate: f64,
    failure_status: u16,
    /// Accumulated fractional failures: answering exactly `failure_rate` of the requests
    /// deterministically (0.5 fails every second request) keeps tests reproducible.
    failure_debt: f64,
    hang: bool,
    garbage: bool,
}

/// What the layer decided to do with one request before running the handler.
struct Plan {
    latency: Duration,
    hang: bool,
    fail_with: Option<u16>,
    garbage: bool,
}

impl Knobs {
    fn plan(&mut self) -> Plan {
        let mut fail_with = None;
        if self.failure_rate > 0.0 {
            self.failure_debt += self.failure_rate;
            if self.failure_debt >= 1.0 {
                self.failure_debt -= 1.0;
                fail_with = Some(self.failure_status);
            }
        }
        Plan {
            latency: self.latency,
            hang: self.hang,
            fail_with,
            garbage: self.garbage,
        }
    }
}

/// The requests a block received since the last clear: the most recent ones in full, at
/// most `capacity` of them, and an exact count of all of them. Both live under one lock,
/// so `received - retained.len()` is always the exact number let go.
#[derive(Debug)]
struct RequestLog {
    /// The most recent requests, oldest first; never longer than `capacity`.
    retained: VecDeque<RecordedRequest>,
    /// How many requests `retained` may hold (0: none, only counted).
    capacity: usize,
    /// Every request received since the last clear, retained or not.
    received: usize,
}

impl RequestLog {
    fn new(capacity: usize) -> Self {
        Self {
            // Grown on demand: a generous capacity costs nothing until it is used.
            retained: VecDeque::new(),
            capacity,
            received: 0,
        }
    }

    fn push(&mut self, request: RecordedRequest) {
        self.received = self.received.saturating_add(1);
        if self.capacity == 0 {
            return;
        }
        while self.retained.len() >= self.capacity {
            self.retained.pop_front();
        }
        self.retained.push_back(request);
    }

    fn dropped(&self) -> usize {
        self.received.saturating_sub(self.retained.len())
    }

    fn clear(&mut self) {
        self.retained.clear();
        self.received = 0;
    }
}

/// Test and demo controls of one emulated block, shared with its middleware: fault
/// injection knobs and the log of the requests received.
///
/// The log is bounded: it keeps the most recent requests in full, up to the capacity the
/// sandbox was started with ([`SandboxOptions::request_log_capacity`]), dropping the oldest
/// first, so a long-running sandbox does not grow without end. [`request_count`] stays
/// exact past that bound; [`requests`] and [`count`] see only the retained window, and
/// [`dropped_requests`] says how many fell out of it.
///
/// [`SandboxOptions::request_log_capacity`]: crate::SandboxOptions::request_log_capacity
/// [`request_count`]: BlockControl::request_count
/// [`requests`]: BlockControl::requests
/// [`count`]: BlockControl::count
/// [`dropped_requests`]: BlockControl::dropped_requests
#[derive(Debug)]
pub struct BlockControl {
    style: ErrorStyle,
    auth: Auth,
    knobs: Mutex<Knobs>,
    log: Mutex<RequestLog>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl BlockControl {
    /// A healthy block that retains at most `log_capacity` requests in full.
    pub(crate) fn new(style: ErrorStyle, auth: Auth, log_capacity: usize) -> Self {
        Self {
            style,
            auth,
            knobs: Mutex::new(Knobs::default()),
            log: Mutex::new(RequestLog::new(log_capacity)),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
        }
    }

    /// Time from each request's arrival to its answer: the block does its work within it
    /// and answers no sooner (a slower handler answers when it is done).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.knobs).latency = latency;
    }

    /// Answers a fraction `rate` (0.0..=1.0) of requests with `status` and an error body
    /// in the block's style; 429 also carries `Retry-After: 1`.
    pub fn set_failure(&self, rate: f64, status: u16) {
        let mut knobs = lock(&self.knobs);
        knobs.failure_rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        knobs.failure_status = status;
        knobs.failure_debt = 0.0;
    }

    /// When on, requests are never answered (they wait an hour).
    pub fn set_hang(&self, hang: bool) {
        lock(&self.knobs).hang = hang;
    }

    /// When on, requests get a 200 whose body is not JSON.
    pub fn set_garbage(&self, on: bool) {
        lock(&self.knobs).garbage = on;
    }

    /// Back to a healthy block: no latency, failures, hang or garbage.
    pub fn reset_faults(&self) {
        *lock(&self.knobs) = Knobs::default();
    }

    /// The retained requests received since the last clear, in arrival order (including
    /// refused ones).
    ///
    /// Only the most recent ones are retained (see [`SandboxOptions::request_log_capacity`]):
    /// this is every request only while [`dropped_requests`](Self::dropped_requests) is 0.
    ///
    /// [`SandboxOptions::request_log_capacity`]: crate::SandboxOptions::request_log_capacity
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).retained.iter().cloned().collect()
    }

    /// How many requests were received since the last clear: exact, also beyond the
    /// requests the log retains.
    pub fn request_count(&self) -> usize {
        lock(&self.log).received
    }

    /// How many requests received since the last clear the log let go to stay within its
    /// capacity (oldest first): `request_count()` minus the number [`requests`](Self::requests)
    /// returns. While it is 0, [`requests`](Self::requests) and [`count`](Self::count) see
    /// every request.
    pub fn dropped_requests(&self) -> usize {
        lock(&self.log).dropped()
    }

    /// How many retained requests had `method` (case-insensitive) and a path starting with
    /// `path_prefix`.
    ///
    /// It counts only the retained window: exact only while
    /// [`dropped_requests`](Self::dropped_requests) is 0.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        lock(&self.log)
            .retained
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .count()
    }

    /// Forgets the recorded requests, restarts [`request_count`](Self::request_count) and
    /// [`dropped_requests`](Self::dropped_requests) from 0, and restarts the concurrency
    /// peak from now.
    pub fn clear_requests(&self) {
        lock(&self.log).clear();
        self.peak_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// The largest number of requests that were being handled at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    fn record(&self, request: RecordedRequest) {
        lock(&self.log).push(request);
    }

    /// The error a failure knob answers with, in the block's style.
    fn injected_failure(&self, status: u16) -> Response {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = self.style.error(status, "Injected failure (sandbox fault knob).");
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Counts a request as in flight for as long as it lives (also when the client gives up
/// and the handler future is dropped).
struct InFlight<'a>(&'a BlockControl);

impl<'a> InFlight<'a> {
    fn enter(control: &'a BlockControl) -> Self {
        let now = control.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        control.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(control)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Gives `router` the block's fallbacks (so unknown paths answer in its style) and puts
/// it behind the control layer.
pub(crate) fn wrap(router: Router, control: Arc<BlockControl>) -> Router {
    router
        .fallback(route_fallback)
        .method_not_allowed_fallback(method_fallback)
        .layer(middleware::from_fn_with_state(control, control_layer))
}

/// Record, count, inject faults, authenticate, hand over to the block, then hold the
/// answer until the block's latency has passed since the request arrived.
async fn control_layer(State(control): State<Arc<BlockControl>>, request: Request, next: Next) -> Response {
    let arrived = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            control.record(RecordedRequest::from_parts(&parts, b""));
            return control
                .style
                .error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.");
        }
    };
    control.record(RecordedRequest::from_parts(&parts, &body));
    let _in_flight = InFlight::enter(&control);

    let plan = lock(&control.knobs).plan();
    let response = answer(&control, &plan, parts, body, next).await;
    // The latency is the arrival-to-answer time, as a remote server's would be: the
    // block's own work happens inside it instead of after it. async-io's timer keeps it
    // to within microseconds; Tokio's rounds every deadline up to its next millisecond
    // tick, which would add about a millisecond to every answer.
    if !plan.latency.is_zero() {
        async_io::Timer::at(arrived + plan.latency).await;
    }
    response
}

/// What the block answers, faults first.
async fn answer(control: &BlockControl, plan: &Plan, mut parts: Parts, body: Bytes, next: Next) -> Response {
    if plan.hang {
        tokio::time::sleep(HANG_FOR).await;
    }
    if let Some(status) = plan.fail_with {
        return control.injected_failure(status);
    }
    if plan.garbage {
        return garbage();
    }
    if let Err(refusal) = control.auth.check(&parts.headers) {
        return refusal.into_response();
    }
    parts.extensions.insert(control.style);
    next.run(Request::from_parts(parts, Body::from(body))).await
}

fn garbage() -> Response {
    let mut response = (StatusCode::OK, GARBAGE_BODY).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
