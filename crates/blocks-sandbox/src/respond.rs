//! HTTP pieces every emulated block shares: error bodies in the two upstream styles,
//! body/path/query extractors that never answer in axum's plain-text style, page links
//! and timestamp formats.

use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, SubsecRound, Timelike, Utc};
use serde_json::{Map, Value, json};

/// How a block words its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorStyle {
    /// The 23blocks Rails services (Sales, Search, Assets): `{"errors":[{status,code,title,detail}]}`.
    JsonApi,
    /// The Django REST framework services (B2B, CRM): `{"detail": "..."}` or field maps.
    Drf,
}

impl ErrorStyle {
    /// The style of the block serving this request; the control layer stores it in the
    /// extensions so extractors can answer in the block's own words.
    pub(crate) fn of(extensions: &Extensions) -> Self {
        extensions.get::<Self>().copied().unwrap_or(Self::Drf)
    }

    /// A generic error with a human message.
    pub(crate) fn error(self, status: StatusCode, detail: &str) -> Response {
        match self {
            Self::JsonApi => json_api_error(status, &reason(status), detail),
            Self::Drf => drf_detail(status, detail),
        }
    }

    /// A record that does not exist (also used for path ids that cannot exist).
    pub(crate) fn not_found(self) -> Response {
        match self {
            Self::JsonApi => json_api_error(
                StatusCode::NOT_FOUND,
                "Resource Not Found",
                "The requested resource could not be found.",
            ),
            Self::Drf => drf_detail(StatusCode::NOT_FOUND, "Not found."),
        }
    }

    /// A body that is not JSON: Rails answers 400 (`ParseError`), DRF 400 (`ParseError`).
    pub(crate) fn malformed_body(self, reason: &str) -> Response {
        match self {
            Self::JsonApi => json_api_error(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                &format!("The request body is not valid JSON: {reason}"),
            ),
            Self::Drf => drf_detail(StatusCode::BAD_REQUEST, &format!("JSON parse error - {reason}")),
        }
    }

    /// A path no route matches. Django in production answers its HTML 404 page, so the
    /// DRF blocks do too (a missing trailing slash lands here); Rails API apps answer JSON.
    pub(crate) fn route_not_found(self, method: &Method, path: &str) -> Response {
        match self {
            Self::JsonApi => json_api_error(
                StatusCode::NOT_FOUND,
                "Routing Error",
                &format!("No route matches [{method}] \"{path}\""),
            ),
            Self::Drf => {
                let mut response = (StatusCode::NOT_FOUND, DJANGO_404).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
        }
    }

    /// A known path asked with a method it does not serve.
    pub(crate) fn method_not_allowed(self, method: &Method, path: &str) -> Response {
        match self {
            // Rails routes by verb and path together, so this is a routing error there.
            Self::JsonApi => self.route_not_found(method, path),
            Self::Drf => drf_detail(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("Method \"{method}\" not allowed."),
            ),
        }
    }
}

/// Django's production 404 page.
const DJANGO_404: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n";

/// The status' canonical reason ("Unprocessable Entity"), used as a JSON:API title.
pub(crate) fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

/// The snake_case code 23blocks puts next to the status ("unprocessable_entity").
fn status_code_name(status: StatusCode) -> String {
    reason(status).to_lowercase().replace([' ', '-'], "_")
}

/// An error answer on its way out through a `Result`. Boxed because `Response` is large
/// and most `Result`s carrying it succeed.
#[derive(Debug)]
pub(crate) struct Reject(Box<Response>);

impl From<Response> for Reject {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A JSON answer with a status.
pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// One JSON:API error object.
pub(crate) fn json_api_error_object(status: StatusCode, title: &str, detail: &str) -> Value {
    json!({
        "status": status.as_str(),
        "code": status_code_name(status),
        "title": title,
        "detail": detail,
    })
}

/// A JSON:API error document holding several error objects (Rails reports every failed
/// validation at once).
pub(crate) fn json_api_errors(status: StatusCode, errors: Vec<Value>) -> Response {
    json_response(status, json!({ "errors": errors }))
}

/// A JSON:API error document with one error.
pub(crate) fn json_api_error(status: StatusCode, title: &str, detail: &str) -> Response {
    json_api_errors(status, vec![json_api_error_object(status, title, detail)])
}

/// A DRF `{"detail": ...}` answer.
pub(crate) fn drf_detail(status: StatusCode, detail: &str) -> Response {
    json_response(status, json!({ "detail": detail }))
}

/// Fallback handler for paths no route matches.
pub(crate) async fn route_fallback(req: Request) -> Response {
    ErrorStyle::of(req.extensions()).route_not_found(req.method(), req.uri().path())
}

/// Fallback handler for a known path asked with an unserved method.
pub(crate) async fn method_fallback(req: Request) -> Response {
    ErrorStyle::of(req.extensions()).method_not_allowed(req.method(), req.uri().path())
}

/// Adds `path` and `path/`: the Rails blocks accept both.
pub(crate) fn with_and_without_slash<S>(router: Router<S>, path: &str, method_router: MethodRouter<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .route(path, method_router.clone())
        .route(&format!("{path}/"), method_router)
}

/// A JSON request body. An empty body reads as `{}` (DRF treats it as empty data);
/// a body that is not JSON is refused in the block's error style, never axum's text.
pub(crate) struct JsonBody(pub(crate) Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let style = ErrorStyle::of(req.extensions());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| style.malformed_body(&rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Value::Object(Map::new())));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|err| style.malformed_body(&err.to_string()))
    }
}

/// The single `{id}` path segment of a route; a segment that cannot be decoded is a 404.
pub(crate) struct PathId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let style = ErrorStyle::of(&parts.extensions);
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|_| style.not_found())
    }
}

/// The request path and its decoded query pairs, in order. Parsing never fails, so
/// each block decides how to treat odd values (Rails coerces, DRF refuses).
#[derive(Debug, Default)]
pub(crate) struct Params {
    /// The request path, kept to build absolute page links.
    pub(crate) path: String,
    /// Decoded `key=value` pairs.
    pub(crate) pairs: Vec<(String, String)>,
}

impl Params {
    /// The last value given for `name` (Django's `QueryDict.get` semantics).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value for `name`, if present and not empty (empty filters are ignored).
    pub(crate) fn filter(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// The link to another page of this same request: the other parameters are kept,
    /// `forced` ones are set, and `page` is replaced (dropped for page 1), with keys sorted
    /// as DRF's `replace_query_param` does.
    pub(crate) fn page_link(&self, base_url: &str, page: u64, forced: &[(&str, String)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(key, _)| key != "page" && !forced.iter().any(|(name, _)| name == key))
            .cloned()
            .collect();
        pairs.extend(forced.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        if page > 1 {
            pairs.push(("page".to_owned(), page.to_string()));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        if query.is_empty() {
            format!("{base_url}{}", self.path)
        } else {
            format!("{base_url}{}?{query}", self.path)
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let pairs = parts
            .uri
            .query()
            .map(|query| url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Ok(Self {
            path: parts.uri.path().to_owned(),
            pairs,
        })
    }
}

/// Rails' JSON timestamp: whole seconds, `Z`.
pub(crate) fn rails_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// DRF's timestamp: Python `isoformat` with `Z`, microseconds only when non-zero.
pub(crate) fn django_time(time: DateTime<Utc>) -> String {
    let format = if time.nanosecond() == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Micros
    };
    time.to_rfc3339_opts(format, true)
}

/// The current time at database precision (microseconds).
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Locks a mutex, carrying on with the data if a previous holder panicked: the sandbox
/// prefers a possibly half-updated demo record to taking the whole block down.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
