//! B2B commerce block: users in divisions. Contract: `b2b.md`. Listing is a GET (the
//! document's POST example is a slip: POST creates), any 2xx answers a create, and every
//! path keeps its trailing slash.

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use super::{
    BlockName,
    error::Result,
    http::BlockHttp,
    walk::ListWalk,
    wire::{DrfPage, Page, lenient_i64, lenient_timestamp},
};

/// A B2B user. `password` and `shop_token` are deliberately not modelled: the gateway
/// never reads, keeps or exposes them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct B2bUser {
    /// Integer id.
    pub id: i64,
    /// Email (matched to identities case-insensitively).
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// The division: an object in list and detail answers, a bare id in write answers.
    #[serde(default)]
    pub division: Option<B2bDivisionRef>,
    /// Whether the user is active.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// The user's id on the Commerce platform.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub remote_id: Option<i64>,
    /// When the user joined.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub date_joined: Option<DateTime<Utc>>,
    /// Last login.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub last_login: Option<DateTime<Utc>>,
}

impl B2bUser {
    /// Whether the user's email is `email` (given lower-cased), in any case.
    pub fn has_email(&self, email: &str) -> bool {
        self.email
            .as_deref()
            .is_some_and(|own| own.trim().to_lowercase() == email)
    }
}

/// Records a page when the gateway walks B2B's email filter.
const EMAIL_WALK_PAGE_SIZE: u32 = 100;

/// A division as B2B sends it: an object or just its id.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum B2bDivisionRef {
    /// `{"id", "name", "division_type"}`.
    Full(B2bDivision),
    /// A bare division id.
    Id(i64),
}

impl B2bDivisionRef {
    /// The division id, whatever the form.
    pub fn id(&self) -> i64 {
        match self {
            Self::Full(division) => division.id,
            Self::Id(id) => *id,
        }
    }
}

/// A B2B division.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct B2bDivision {
    /// Division id.
    pub id: i64,
    /// Division name.
    #[serde(default)]
    pub name: Option<String>,
    /// `main` or `sub`.
    #[serde(default)]
    pub division_type: Option<String>,
}

/// Body of `POST /api/v1/users/`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateB2bUser {
    /// First name (required).
    pub first_name: String,
    /// Last name (required).
    pub last_name: String,
    /// Email (required).
    pub email: String,
    /// Password (required); serialized only into this request body, never logged.
    #[serde(serialize_with = "expose_password")]
    pub password: SecretString,
    /// Phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Division id (required).
    pub division: i64,
}

fn expose_password<S: Serializer>(password: &SecretString, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(password.expose_secret())
}

/// Body of `PUT /api/v1/users/{id}/`: only the fields to change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateB2bUser {
    /// First name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Division id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub division: Option<i64>,
}

/// Filters of the user list (all documented ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct B2bUserFilter {
    /// Exact user id.
    pub id: Option<i64>,
    /// Activation status.
    pub is_active: Option<bool>,
    /// Case-insensitive substring of the email.
    pub email: Option<String>,
    /// Exact division id.
    pub division: Option<i64>,
    /// `main` or `sub`.
    pub division_type: Option<String>,
    /// Case-insensitive substring of the first name.
    pub first_name: Option<String>,
    /// Case-insensitive substring of the last name.
    pub last_name: Option<String>,
    /// Case-insensitive substring of the phone number.
    pub phone_number: Option<String>,
}

impl B2bUserFilter {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let mut push = |key: &'static str, value: Option<String>| {
            if let Some(value) = value {
                pairs.push((key, value));
            }
        };
        push("id", self.id.map(|v| v.to_string()));
        push("is_active", self.is_active.map(|v| v.to_string()));
        push("email", self.email.clone());
        push("division", self.division.map(|v| v.to_string()));
        push("division_type", self.division_type.clone());
        push("first_name", self.first_name.clone());
        push("last_name", self.last_name.clone());
        push("phone_number", self.phone_number.clone());
        pairs
    }
}

/// Typed client of the B2B block.
#[derive(Clone)]
pub struct B2bClient {
    http: BlockHttp,
}

impl B2bClient {
    /// Wraps the shared HTTP core bound to B2B.
    pub fn new(http: BlockHttp) -> Self {
        Self { http }
    }

    /// The HTTP core.
    pub fn http(&self) -> &BlockHttp {
        &self.http
    }

    /// `GET /api/v1/users/` with filters, `limit` and `page`.
    pub async fn list_users(&self, filter: &B2bUserFilter, limit: u32, page: u32) -> Result<Page<B2bUser>> {
        let mut url = self.http.url(&["api", "v1", "users", ""])?;
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in filter.pairs() {
                query.append_pair(key, &value);
            }
            query
                .append_pair("limit", &limit.to_string())
                .append_pair("page", &page.to_string());
        }
        let page: DrfPage<B2bUser> = self.http.get_json("GET /api/v1/users/", url).await?;
        Ok(page.into())
    }

    /// The first user whose email is `email` (any case), walking B2B's email filter (a
    /// substring match) page after page until it turns up or the list ends. `seen` is
    /// handed every user the walk read on the way (look-alikes included).
    pub async fn find_user_by_email(&self, email: &str, mut seen: impl FnMut(&B2bUser)) -> Result<Option<B2bUser>> {
        let email = email.trim().to_lowercase();
        let filter = B2bUserFilter {
            email: Some(email.clone()),
            ..B2bUserFilter::default()
        };
        let walk = ListWalk {
            block: BlockName::B2b,
            list: "users list filtered by email",
            page_size: EMAIL_WALK_PAGE_SIZE,
        };
        let found = walk
            .find(
                |page| self.list_users(&filter, EMAIL_WALK_PAGE_SIZE, page),
                |user| {
                    seen(user);
                    user.has_email(&email)
                },
            )
            .await?;
        Ok(found.map(|(_, user)| user))
    }

    /// `GET /api/v1/users/{id}/`; `None` on 404.
    pub async fn get_user(&self, id: i64) -> Result<Option<B2bUser>> {
        let url = self.http.url(&["api", "v1", "users", &id.to_string(), ""])?;
        self.http.get_optional("GET /api/v1/users/{id}/", url).await
    }

    /// `POST /api/v1/users/` (any 2xx is success; the answer's password field is ignored).
    pub async fn create_user(&self, user: &CreateB2bUser) -> Result<B2bUser> {
        let url = self.http.url(&["api", "v1", "users", ""])?;
        self.http
            .write_json(Method::POST, "POST /api/v1/users/", url, Some(user))
            .await
    }

    /// `PUT /api/v1/users/{id}/`.
    pub async fn update_user(&self, id: i64, user: &UpdateB2bUser) -> Result<B2bUser> {
        let url = self.http.url(&["api", "v1", "users", &id.to_string(), ""])?;
        self.http
            .write_json(Method::PUT, "PUT /api/v1/users/{id}/", url, Some(user))
            .await
    }

    /// `POST /api/v1/users/{id}/activate/`.
    pub async fn activate_user(&self, id: i64) -> Result<()> {
        self.user_action(id, "activate", "POST /api/v1/users/{id}/activate/")
            .await
    }

    /// `POST /api/v1/users/{id}/deactivate/`.
    pub async fn deactivate_user(&self, id: i64) -> Result<()> {
        self.user_action(id, "deactivate", "POST /api/v1/users/{id}/deactivate/")
            .await
    }

    /// `POST /api/v1/users/{id}/update_remote_id/`.
    pub async fn update_remote_id(&self, id: i64) -> Result<()> {
        self.user_action(id, "update_remote_id", "POST /api/v1/users/{id}/update_remote_id/")
            .await
    }

    async fn user_action(&self, id: i64, action: &str, route: &'static str) -> Result<()> {
        let url = self.http.url(&["api", "v1", "users", &id.to_string(), action, ""])?;
        self.http
            .write_ignoring_body::<()>(Method::POST, route, url, None)
            .await
    }
}
