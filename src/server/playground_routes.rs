//! The playground's routes (mounted only while introspection is on): the page at `/`, under
//! its Content-Security-Policy, and its embedded assets at `/playground/<version>/<file>`,
//! gzip-compressed and cacheable for good (the version changes with every build).

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::AppState;
use crate::playground::{PAGE_CONTENT_SECURITY_POLICY, assets, graphiql_page};

/// `Cache-Control` of a versioned asset: its URL never names other bytes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The page and its assets.
pub(super) fn playground_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/playground/{version}/{file}", get(asset))
}

/// GraphiQL with the example operations as tabs (see `playground`); revalidated on every
/// visit, so a new build's asset version is picked up.
async fn page(State(state): State<AppState>) -> Response {
    let html = graphiql_page("/graphql", state.gateway.callers().requires_key());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}

/// One asset of this build: the embedded gzip as it is, or decompressed for a client that
/// does not accept gzip. Another build's version is a 404 (the page it came from is stale).
async fn asset(Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(asset) = assets::find(&version, &file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let headers_of = |encoding: Option<&'static str>| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        // A worker script runs under its own response's policy.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CONTENT_SECURITY_POLICY),
        );
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        headers
    };
    if accepts_gzip(&headers) {
        return (headers_of(Some("gzip")), asset.gzip).into_response();
    }
    // Inflating megabytes takes milliseconds: off the request threads.
    let decompressed = tokio::task::spawn_blocking(|| asset.decompressed())
        .await
        .map_err(std::io::Error::other)
        .and_then(|decompressed| decompressed);
    match decompressed {
        Ok(file) => (headers_of(None), file).into_response(),
        Err(error) => {
            tracing::error!(%error, asset = asset.name, "an embedded playground asset does not decompress");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Whether `Accept-Encoding` allows gzip (by name or `*`, with a non-zero weight).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let weight = parts
                .find_map(|parameter| parameter.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok());
            (name.eq_ignore_ascii_case("gzip") || name == "*") && weight.is_some_and(|q| q > 0.0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).expect("header"));
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_accepted_by_name_or_wildcard_unless_weighted_zero() {
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
