//! The Search block (user identities), as `search.md` describes it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::rails::{self, Attributes, Kind, Store, Taken};
use super::respond::{JsonBody, PathId, lock, with_and_without_slash};

/// Search identities. Unlike the other 23blocks services, a second `register` of the
/// same id answers 409.
pub(crate) const IDENTITY: Kind = Kind {
    json_type: "user_identity",
    body_root: "user",
    label: "Identity",
    required: "email",
    registrable: &["email", "name", "phone"],
    updatable: &["name", "email", "phone", "avatar_url"],
    list_attributes: None,
    created_attributes: &[
        "unique_id",
        "user_unique_id",
        "email",
        "name",
        "role_id",
        "role_name",
        "status",
        "enabled",
        "created_at",
    ],
    defaults: identity_defaults,
    has_updated_at: true,
    taken: Taken::Conflict,
};

fn identity_defaults(id: &str, record: &mut Attributes) {
    record.insert("user_unique_id".to_owned(), json!(id));
    record.insert("avatar_url".to_owned(), json!(null));
    record.insert("role_id".to_owned(), json!(4));
    record.insert("role_name".to_owned(), json!("user"));
    record.insert("status".to_owned(), json!("active"));
    record.insert("enabled".to_owned(), json!(true));
}

type Shared = State<Arc<Mutex<Store>>>;

/// The Search routes; every path also answers with a trailing slash.
pub(crate) fn router(identities: Store) -> Router {
    let router = with_and_without_slash(
        Router::new(),
        "/identities/{id}",
        get(show_identity).put(update_identity),
    );
    with_and_without_slash(router, "/identities/{id}/register", post(register_identity))
        .with_state(Arc::new(Mutex::new(identities)))
}

async fn show_identity(State(store): Shared, PathId(id): PathId) -> Response {
    rails::show(&IDENTITY, &lock(&store), &id)
}

async fn register_identity(State(store): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Response {
    rails::register(&IDENTITY, &mut lock(&store), &id, &body)
}

async fn update_identity(State(store): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Response {
    rails::update(&IDENTITY, &mut lock(&store), &id, &body)
}
