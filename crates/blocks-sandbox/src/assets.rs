//! The Assets block (users with their assets, entities and ownership records), as
//! `assets.md` describes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::rails::{self, Attributes, Kind, Store, Taken};
use super::respond::{JsonBody, PathId, json_response, lock, with_and_without_slash};

/// Assets users; list items carry every attribute, as in the documented example.
pub(crate) const USER: Kind = Kind {
    json_type: "user_identity",
    body_root: "user",
    label: "User",
    required: "email",
    registrable: &["email", "username", "display_name"],
    updatable: &["email", "username", "display_name", "avatar_url"],
    list_attributes: None,
    created_attributes: &[
        "unique_id",
        "email",
        "username",
        "display_name",
        "assets_count",
        "entities_count",
        "created_at",
    ],
    defaults: user_defaults,
    has_updated_at: true,
    taken: Taken::Unprocessable,
};

fn user_defaults(_id: &str, record: &mut Attributes) {
    record.insert("avatar_url".to_owned(), json!(null));
    record.insert("assets_count".to_owned(), json!(0));
    record.insert("entities_count".to_owned(), json!(0));
}

/// What one user holds, as ready JSON:API resource objects.
#[derive(Debug, Default)]
pub(crate) struct Holdings {
    /// `asset` resources.
    pub(crate) assets: Vec<Value>,
    /// `entity` resources.
    pub(crate) entities: Vec<Value>,
    /// `ownership_record` resources, one per asset.
    pub(crate) ownership: Vec<Value>,
}

/// The Assets block's records.
#[derive(Debug, Default)]
pub(crate) struct AssetsData {
    /// Users, keyed by the identity's `unique_id`.
    pub(crate) users: Store,
    /// Holdings by user id; users without an entry hold nothing.
    pub(crate) holdings: HashMap<String, Holdings>,
}

type Shared = State<Arc<Mutex<AssetsData>>>;

/// The Assets routes; every path also answers with a trailing slash.
pub(crate) fn router(data: AssetsData) -> Router {
    let routes = [
        ("/users", get(list_users)),
        ("/users/{id}", get(show_user).put(update_user)),
        ("/users/{id}/register", post(register_user)),
        ("/users/{id}/entities", get(user_entities)),
        ("/users/{id}/assets", get(user_assets)),
        ("/users/{id}/ownership", get(user_ownership)),
    ];
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, method_router)| {
            with_and_without_slash(router, path, method_router)
        })
        .with_state(Arc::new(Mutex::new(data)))
}

async fn list_users(State(data): Shared) -> Response {
    rails::list_all(&USER, &lock(&data).users)
}

async fn show_user(State(data): Shared, PathId(id): PathId) -> Response {
    rails::show(&USER, &lock(&data).users, &id)
}

async fn register_user(State(data): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Response {
    rails::register(&USER, &mut lock(&data).users, &id, &body)
}

async fn update_user(State(data): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Response {
    rails::update(&USER, &mut lock(&data).users, &id, &body)
}

async fn user_entities(State(data): Shared, PathId(id): PathId) -> Response {
    holdings(&lock(&data), &id, |h| &h.entities)
}

async fn user_assets(State(data): Shared, PathId(id): PathId) -> Response {
    holdings(&lock(&data), &id, |h| &h.assets)
}

async fn user_ownership(State(data): Shared, PathId(id): PathId) -> Response {
    holdings(&lock(&data), &id, |h| &h.ownership)
}

/// `{"data": [...]}` of one holding list, or the 404 of an unknown user.
fn holdings(data: &AssetsData, id: &str, which: fn(&Holdings) -> &Vec<Value>) -> Response {
    if !data.users.contains(id) {
        return rails::not_found(&USER);
    }
    let items = data.holdings.get(id).map(which).cloned().unwrap_or_default();
    json_response(StatusCode::OK, json!({ "data": items }))
}
