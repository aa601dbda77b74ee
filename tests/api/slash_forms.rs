//! Assets documents its paths both with and without a trailing slash; a server that routes
//! only one form must still be reached (and only a route miss triggers the second form).

use std::sync::{Arc, Mutex};

use axum::{Router, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use serde_json::json;

use crate::helpers::assets_client_at;

/// A strict Assets server: routes `/users/{id}/` only (with the slash); unknown users are
/// the contract's JSON 404; unknown routes are axum's plain 404.
async fn strict_slash_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let user = move |Path(id): Path<String>| {
        let recorder = recorder.clone();
        async move {
            if let Ok(mut seen) = recorder.lock() {
                seen.push(format!("/users/{id}/"));
            }
            if id == "ghost" {
                let body = json!({ "errors": [{ "status": "404", "code": "not_found", "detail": "User not found" }] });
                return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
            }
            axum::Json(json!({ "data": { "id": id, "type": "user_identity", "attributes": { "unique_id": id, "email": "strict@example.com" } } }))
                .into_response()
        }
    };
    let counter = seen.clone();
    let app = Router::new()
        .route("/users/{id}/", get(user))
        .fallback(move |uri: axum::http::Uri| {
            let counter = counter.clone();
            async move {
                if let Ok(mut seen) = counter.lock() {
                    seen.push(format!("miss {}", uri.path()));
                }
                StatusCode::NOT_FOUND
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), seen)
}

#[tokio::test]
async fn assets_is_reached_in_the_form_its_server_routes_and_keeps_it() {
    let (base, seen) = strict_slash_server().await;
    let assets = assets_client_at(&base);

    let first = assets.get_user("u-1").await.expect("reached").expect("found");
    assert_eq!(first.email.as_deref(), Some("strict@example.com"));
    let second = assets.get_user("u-2").await.expect("reached").expect("found");
    assert_eq!(second.unique_id.as_deref(), Some("u-2"));
    // A missing user is the JSON 404: no second form is tried.
    assert!(assets.get_user("ghost").await.expect("answered").is_none());
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        seen,
        vec!["miss /users/u-1", "/users/u-1/", "/users/u-2/", "/users/ghost/"]
    );
}
