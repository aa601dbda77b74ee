//! The B2B commerce block (users with divisions), as `b2b.md` describes it: a Django
//! REST framework service, strict about trailing slashes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::drf::{
    Fields, Listed, PageRules, Text, contains_ignoring_case, field_errors, invalid_choice, number_filter, paginate,
    parse_bool,
};
use super::respond::{JsonBody, Params, PathId, Reject, django_time, drf_detail, json_response, lock, now};

/// `limit` (default 20, at most 100) and `page`; links always spell the limit out.
const PAGES: PageRules = PageRules {
    size_param: "limit",
    default_size: 20,
    max_size: 100,
    size_in_links: true,
};

/// Remote (Commerce) ids are this plus the B2B id, so they never look like B2B ids.
pub(crate) const REMOTE_ID_OFFSET: i64 = 100_000;

/// What the create answer shows instead of the password (the documented placeholder):
/// the sandbox never stores or echoes a password.
const PASSWORD_PLACEHOLDER: &str = "#hashedpassword#";

const NAME: Text = Text {
    required: true,
    allow_blank: false,
    max_length: 150,
};
const EMAIL: Text = Text {
    required: true,
    allow_blank: false,
    max_length: 254,
};
const PASSWORD: Text = Text {
    required: true,
    allow_blank: false,
    max_length: 128,
};
const PHONE: Text = Text {
    required: false,
    allow_blank: true,
    max_length: 128,
};

/// A B2B division.
#[derive(Clone, Debug)]
pub(crate) struct Division {
    /// Integer id.
    pub(crate) id: i64,
    /// Display name.
    pub(crate) name: String,
    /// `main` or `sub`.
    pub(crate) division_type: &'static str,
    /// Users cannot be assigned to (or activated in) an inactive division.
    pub(crate) is_active: bool,
}

/// A B2B user. The email keeps the case it was stored with.
#[derive(Clone, Debug)]
pub(crate) struct B2bUser {
    /// Integer id.
    pub(crate) id: i64,
    /// Email as stored (mixed case in the demo data).
    pub(crate) email: String,
    /// First name.
    pub(crate) first_name: String,
    /// Last name.
    pub(crate) last_name: String,
    /// Phone number, `""` when unknown.
    pub(crate) phone_number: String,
    /// Division id.
    pub(crate) division: i64,
    /// Whether the user may sign in.
    pub(crate) is_active: bool,
    /// The user's shop token (a fake secret).
    pub(crate) shop_token: String,
    /// The Commerce user id; users without one are left out of the list.
    pub(crate) remote_id: Option<i64>,
    /// When the user joined.
    pub(crate) date_joined: DateTime<Utc>,
    /// Last sign-in, if any.
    pub(crate) last_login: Option<DateTime<Utc>>,
}

/// The B2B block's records.
#[derive(Debug, Default)]
pub(crate) struct B2bData {
    /// Divisions by id order.
    pub(crate) divisions: Vec<Division>,
    /// Users in ascending id order (new users get the next id), which is list order.
    pub(crate) users: Vec<B2bUser>,
}

impl B2bData {
    fn division(&self, id: i64) -> Option<&Division> {
        self.divisions.iter().find(|d| d.id == id)
    }

    fn user_index(&self, id: &str) -> Result<usize, Reject> {
        id.parse::<i64>()
            .ok()
            .and_then(|id| self.users.binary_search_by_key(&id, |u| u.id).ok())
            .ok_or_else(|| not_found().into())
    }

    /// The user as list and detail answers show it, division expanded.
    fn user_json(&self, user: &B2bUser) -> Value {
        let division = self.division(user.division).map_or(
            Value::Null,
            |d| json!({ "id": d.id, "name": d.name, "division_type": d.division_type }),
        );
        json!({
            "id": user.id,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "phone_number": user.phone_number,
            "division": division,
            "is_active": user.is_active,
            "shop_token": user.shop_token,
            "remote_id": user.remote_id,
            "date_joined": django_time(user.date_joined),
            "last_login": user.last_login.map(django_time),
        })
    }

    /// Checks a division id a caller wants to assign.
    fn check_division(&self, fields: &mut Fields<'_>, id: i64) {
        match self.division(id) {
            None => fields.add("division", format!("Invalid pk \"{id}\" - object does not exist.")),
            Some(d) if !d.is_active => fields.add("division", "Deactivated divisions cannot be assigned to users."),
            Some(_) => {}
        }
    }
}

struct B2bState {
    base_url: String,
    data: Mutex<B2bData>,
}

type Shared = State<Arc<B2bState>>;

/// The B2B routes. Only the documented spellings exist: without the trailing slash a
/// path falls through to the 404 page.
pub(crate) fn router(data: B2bData, base_url: &str) -> Router {
    let state = Arc::new(B2bState {
        base_url: base_url.to_owned(),
        data: Mutex::new(data),
    });
    Router::new()
        .route("/api/v1/users/", get(list_users).post(create_user))
        .route("/api/v1/users/{id}/", get(show_user).put(update_user))
        .route("/api/v1/users/{id}/activate/", post(activate_user))
        .route("/api/v1/users/{id}/deactivate/", post(deactivate_user))
        .route("/api/v1/users/{id}/update_remote_id/", post(update_remote_id))
        .with_state(state)
}

fn not_found() -> Response {
    drf_detail(StatusCode::NOT_FOUND, "Not found.")
}

fn division_not_active() -> Response {
    drf_detail(StatusCode::BAD_REQUEST, "Division is not active.")
}

/// The list's django-filter parameters.
#[derive(Debug, Default)]
struct UserFilter {
    id: Option<f64>,
    is_active: Option<bool>,
    email: Option<String>,
    division: Option<i64>,
    division_type: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    phone_number: Option<String>,
}

impl UserFilter {
    fn parse(params: &Params, data: &B2bData) -> Result<Self, Reject> {
        let mut errors = Map::new();
        let contains = |name: &str| params.filter(name).map(str::to_lowercase);
        let mut filter = Self {
            id: number_filter(params, "id", &mut errors),
            email: contains("email"),
            first_name: contains("first_name"),
            last_name: contains("last_name"),
            phone_number: contains("phone_number"),
            ..Self::default()
        };
        if let Some(text) = params.filter("is_active") {
            filter.is_active = parse_bool(text);
            if filter.is_active.is_none() {
                errors.insert("is_active".to_owned(), invalid_choice(text));
            }
        }
        if let Some(text) = params.filter("division") {
            filter.division = text.trim().parse().ok().filter(|&id| data.division(id).is_some());
            if filter.division.is_none() {
                errors.insert(
                    "division".to_owned(),
                    json!(["Select a valid choice. That choice is not one of the available choices."]),
                );
            }
        }
        if let Some(text) = params.filter("division_type") {
            if matches!(text, "main" | "sub") {
                filter.division_type = Some(text.to_owned());
            } else {
                errors.insert("division_type".to_owned(), invalid_choice(text));
            }
        }
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(field_errors(errors).into())
        }
    }

    fn accepts(&self, user: &B2bUser, data: &B2bData) -> bool {
        let contains =
            |field: &str, wanted: &Option<String>| wanted.as_deref().is_none_or(|w| contains_ignoring_case(field, w));
        let division_type = data.division(user.division).map(|d| d.division_type);
        self.id.is_none_or(|id| user.id as f64 == id)
            && self.is_active.is_none_or(|a| user.is_active == a)
            && self.division.is_none_or(|d| user.division == d)
            && self.division_type.as_deref().is_none_or(|t| division_type == Some(t))
            && contains(&user.email, &self.email)
            && contains(&user.first_name, &self.first_name)
            && contains(&user.last_name, &self.last_name)
            && contains(&user.phone_number, &self.phone_number)
    }
}

/// `GET /api/v1/users/`: users with a remote id, filtered and paginated.
async fn list_users(State(state): Shared, params: Params) -> Response {
    let data = lock(&state.data);
    let filter = match UserFilter::parse(&params, &data) {
        Ok(filter) => filter,
        Err(reject) => return reject.into_response(),
    };
    let keep = |u: &B2bUser| u.remote_id.is_some() && filter.accepts(u, &data);
    paginate(
        Listed::filtered(&data.users, &keep),
        |u| data.user_json(u),
        &params,
        &state.base_url,
        PAGES,
    )
}

/// `POST /api/v1/users/`: creates a user (201) after DRF validation.
async fn create_user(State(state): Shared, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let mut fields = Fields::new(&body)?;
    let first_name = fields.text("first_name", NAME);
    let last_name = fields.text("last_name", NAME);
    let email = fields.email("email", EMAIL);
    // Read (and so validated) but never kept: the sandbox holds no passwords.
    let password = fields.text("password", PASSWORD);
    let phone_number = fields.text("phone_number", PHONE).unwrap_or_default();
    let division = fields.integer("division", true, false).flatten();
    if let Some(division) = division {
        data.check_division(&mut fields, division);
    }
    fields.finish()?;
    let (Some(first_name), Some(last_name), Some(email), Some(_), Some(division)) =
        (first_name, last_name, email, password, division)
    else {
        return Err(drf_detail(StatusCode::BAD_REQUEST, "Invalid data.").into());
    };
    if data.users.iter().any(|u| u.email.eq_ignore_ascii_case(&email)) {
        return Err(drf_detail(StatusCode::BAD_REQUEST, "User already exists.").into());
    }

    let id = data.users.last().map_or(0, |u| u.id) + 1;
    let answer = json!({
        "id": id,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "phone_number": phone_number,
        "division": division,
        "password": PASSWORD_PLACEHOLDER,
    });
    data.users.push(B2bUser {
        id,
        email,
        first_name,
        last_name,
        phone_number,
        division,
        is_active: true,
        shop_token: format!("shp_{}", uuid::Uuid::new_v4().simple()),
        // The Commerce registration succeeds in the sandbox, so the id is known at once.
        remote_id: Some(REMOTE_ID_OFFSET + id),
        date_joined: now(),
        last_login: None,
    });
    Ok(json_response(StatusCode::CREATED, answer))
}

/// `GET /api/v1/users/{id}/`: any user, listed or not.
async fn show_user(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let data = lock(&state.data);
    let index = data.user_index(&id)?;
    Ok(json_response(StatusCode::OK, data.user_json(&data.users[index])))
}

/// `PUT /api/v1/users/{id}/`: updates the supplied fields. As documented, updating an
/// inactive user re-activates it when its division is active, and fails when it is not.
async fn update_user(State(state): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.user_index(&id)?;
    let mut fields = Fields::new(&body)?;
    let first_name = fields.text(
        "first_name",
        Text {
            required: false,
            ..NAME
        },
    );
    let last_name = fields.text(
        "last_name",
        Text {
            required: false,
            ..NAME
        },
    );
    let phone_number = fields.text("phone_number", PHONE);
    let division = fields.integer("division", false, false).flatten();
    if let Some(division) = division {
        data.check_division(&mut fields, division);
    }
    fields.finish()?;

    let target_division = division.unwrap_or(data.users[index].division);
    let division_active = data.division(target_division).is_some_and(|d| d.is_active);
    let user = &mut data.users[index];
    if !user.is_active {
        if !division_active {
            return Err(division_not_active().into());
        }
        user.is_active = true;
    }
    if let Some(first_name) = first_name {
        user.first_name = first_name;
    }
    if let Some(last_name) = last_name {
        user.last_name = last_name;
    }
    if let Some(phone_number) = phone_number {
        user.phone_number = phone_number;
    }
    user.division = target_division;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": user.id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "phone_number": user.phone_number,
            "division": user.division,
        }),
    ))
}

/// `POST /api/v1/users/{id}/activate/`: 400 when the user's division is inactive.
async fn activate_user(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.user_index(&id)?;
    let division = data.users[index].division;
    if !data.division(division).is_some_and(|d| d.is_active) {
        return Err(division_not_active().into());
    }
    data.users[index].is_active = true;
    Ok(empty_ok())
}

/// `POST /api/v1/users/{id}/deactivate/`.
async fn deactivate_user(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.user_index(&id)?;
    data.users[index].is_active = false;
    Ok(empty_ok())
}

/// `POST /api/v1/users/{id}/update_remote_id/`: fills in a missing remote id (what the
/// real service's background task does by asking Commerce).
async fn update_remote_id(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.user_index(&id)?;
    let user = &mut data.users[index];
    user.remote_id.get_or_insert(REMOTE_ID_OFFSET + user.id);
    Ok(empty_ok())
}

fn empty_ok() -> Response {
    json_response(StatusCode::OK, json!({}))
}
