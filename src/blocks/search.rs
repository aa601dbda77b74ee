//! Search block (23blocks): identities. Contract: `search.md`. Its documented paths have
//! no trailing slash.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    error::Result,
    http::BlockHttp,
    wire::{JsonApiOne, Patch, impl_has_unique_id, lenient_i64, lenient_timestamp},
};

/// A Search user identity.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SearchIdentity {
    /// The identity's shared unique id.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// The user's id at the auth provider.
    #[serde(default)]
    pub user_unique_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Avatar image URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Role id (1 admin, 2 manager, 4 user).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub role_id: Option<i64>,
    /// Role name.
    #[serde(default)]
    pub role_name: Option<String>,
    /// Account status.
    #[serde(default)]
    pub status: Option<String>,
    /// Whether the user is enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl_has_unique_id!(SearchIdentity);

/// Body of register and update (inside `{"user": ...}`); `Patch::Clear` sends null.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchIdentityFields {
    /// Email (required to register).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub name: Patch<String>,
    /// Phone number.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub phone: Patch<String>,
    /// Avatar image URL (update only).
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub avatar_url: Patch<String>,
}

/// Typed client of the Search block.
#[derive(Clone)]
pub struct SearchClient {
    http: BlockHttp,
}

impl SearchClient {
    /// Wraps the shared HTTP core bound to Search.
    pub fn new(http: BlockHttp) -> Self {
        Self { http }
    }

    /// The HTTP core.
    pub fn http(&self) -> &BlockHttp {
        &self.http
    }

    /// `GET /identities/{id}`; `None` on 404.
    pub async fn get_identity(&self, unique_id: &str) -> Result<Option<SearchIdentity>> {
        let url = self.http.url(&["identities", unique_id])?;
        let one: Option<JsonApiOne<SearchIdentity>> = self.http.get_optional("GET /identities/{id}", url).await?;
        Ok(one.map(|doc| doc.data.into_attributes()))
    }

    /// `POST /identities/{id}/register`; 409 means already registered.
    pub async fn register_identity(&self, unique_id: &str, user: &SearchIdentityFields) -> Result<SearchIdentity> {
        let url = self.http.url(&["identities", unique_id, "register"])?;
        let body = json!({ "user": user });
        let one: JsonApiOne<SearchIdentity> = self
            .http
            .write_json(Method::POST, "POST /identities/{id}/register", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }

    /// `PUT /identities/{id}`; the answer may carry only the changed attributes.
    pub async fn update_identity(&self, unique_id: &str, user: &SearchIdentityFields) -> Result<SearchIdentity> {
        let url = self.http.url(&["identities", unique_id])?;
        let body = json!({ "user": user });
        let one: JsonApiOne<SearchIdentity> = self
            .http
            .write_json(Method::PUT, "PUT /identities/{id}", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }
}
