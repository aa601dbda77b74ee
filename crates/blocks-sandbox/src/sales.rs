//! The Sales block (users, entities, customers), as `sales.md` describes it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::rails::{self, Attributes, Kind, Store, Taken};
use super::respond::{JsonBody, Params, PathId, lock, with_and_without_slash};

/// The Sales block's records.
#[derive(Debug, Default)]
pub(crate) struct SalesData {
    /// Users, keyed by the identity's `unique_id`.
    pub(crate) users: Store,
    /// Entities; organization-backed ones use the CRM organization id as `unique_id`.
    pub(crate) entities: Store,
    /// Customers, keyed by the identity's `unique_id`.
    pub(crate) customers: Store,
}

/// Sales users. List items leave out `phone` and `orders_count`, as the documented
/// example does, so the gateway has to cope with partial list items.
pub(crate) const USER: Kind = Kind {
    json_type: "user",
    body_root: "user",
    label: "User",
    required: "email",
    registrable: &["email", "first_name", "last_name", "display_name", "phone"],
    updatable: &["email", "first_name", "last_name", "display_name", "phone"],
    list_attributes: Some(&[
        "unique_id",
        "email",
        "first_name",
        "last_name",
        "display_name",
        "status",
        "created_at",
        "updated_at",
    ]),
    created_attributes: &[
        "unique_id",
        "email",
        "first_name",
        "last_name",
        "display_name",
        "status",
        "created_at",
    ],
    defaults: user_defaults,
    has_updated_at: true,
    taken: Taken::Unprocessable,
};

fn user_defaults(_id: &str, record: &mut Attributes) {
    record.insert("status".to_owned(), json!("active"));
    record.insert("orders_count".to_owned(), json!(0));
}

/// Sales entities (organizations and other parties).
pub(crate) const ENTITY: Kind = Kind {
    json_type: "entity",
    body_root: "entity",
    label: "Entity",
    required: "name",
    registrable: &["name", "entity_type", "email"],
    updatable: &[],
    list_attributes: Some(&["unique_id", "name", "entity_type", "status", "created_at"]),
    created_attributes: &["unique_id", "name", "entity_type", "email", "status", "created_at"],
    defaults: status_active,
    has_updated_at: false,
    taken: Taken::Unprocessable,
};

/// Sales customers; `total_spent` is a JSON number.
pub(crate) const CUSTOMER: Kind = Kind {
    json_type: "customer",
    body_root: "customer",
    label: "Customer",
    required: "email",
    registrable: &["email", "first_name", "last_name", "company_name", "phone"],
    updatable: &[],
    list_attributes: None,
    created_attributes: &[
        "unique_id",
        "email",
        "first_name",
        "last_name",
        "company_name",
        "status",
        "created_at",
    ],
    defaults: customer_defaults,
    has_updated_at: false,
    taken: Taken::Unprocessable,
};

fn status_active(_id: &str, record: &mut Attributes) {
    record.insert("status".to_owned(), json!("active"));
}

fn customer_defaults(id: &str, record: &mut Attributes) {
    status_active(id, record);
    record.insert("orders_count".to_owned(), json!(0));
    record.insert("total_spent".to_owned(), json!(0.0));
}

type Shared = State<Arc<Mutex<SalesData>>>;

/// The Sales routes; every path also answers with a trailing slash.
pub(crate) fn router(data: SalesData) -> Router {
    let routes = [
        ("/users", get(list_users)),
        ("/users/{id}", get(show_user).put(update_user)),
        ("/users/{id}/register", post(register_user)),
        ("/entities", get(list_entities)),
        ("/entities/{id}/register", post(register_entity)),
        ("/customers/{id}", get(show_customer)),
        ("/customers/{id}/register", post(register_customer)),
    ];
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, method_router)| {
            with_and_without_slash(router, path, method_router)
        })
        .with_state(Arc::new(Mutex::new(data)))
}

async fn list_users(State(data): Shared, params: Params) -> Response {
    rails::list_page(&USER, &lock(&data).users, &params)
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

async fn list_entities(State(data): Shared, params: Params) -> Response {
    rails::list_page(&ENTITY, &lock(&data).entities, &params)
}

async fn register_entity(State(data): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Response {
    rails::register(&ENTITY, &mut lock(&data).entities, &id, &body)
}

async fn show_customer(State(data): Shared, PathId(id): PathId) -> Response {
    rails::show(&CUSTOMER, &lock(&data).customers, &id)
}

async fn register_customer(State(data): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Response {
    rails::register(&CUSTOMER, &mut lock(&data).customers, &id, &body)
}
