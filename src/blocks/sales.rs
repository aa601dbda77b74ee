//! Sales block (23blocks): users, entities and customers. Contract: `sales.md`.
//! Paths keep the documented trailing slash.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    BlockName,
    error::Result,
    http::BlockHttp,
    walk::ListWalk,
    wire::{JsonApiMany, JsonApiOne, Page, Patch, impl_has_unique_id, lenient_f64, lenient_i64, lenient_timestamp},
};

/// Records a page when the gateway walks the entities list (Sales reads no entity by id),
/// and the page size the lookup index counts entity positions in.
pub const ENTITY_PAGE_SIZE: u32 = 100;

/// A Sales user.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SalesUser {
    /// The identity's shared unique id.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Phone number (detail answers only).
    #[serde(default)]
    pub phone: Option<String>,
    /// `active` or `inactive`.
    #[serde(default)]
    pub status: Option<String>,
    /// Number of orders (detail answers only).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub orders_count: Option<i64>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A Sales entity (an organization known to Sales).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SalesEntity {
    /// Unique id (a CRM organization id for organizations registered through the gateway).
    #[serde(default)]
    pub unique_id: Option<String>,
    /// Entity name.
    #[serde(default)]
    pub name: Option<String>,
    /// Type classification.
    #[serde(default)]
    pub entity_type: Option<String>,
    /// Entity email.
    #[serde(default)]
    pub email: Option<String>,
    /// `active` or `inactive`.
    #[serde(default)]
    pub status: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
}

/// A Sales customer profile.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SalesCustomer {
    /// The identity's shared unique id.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Company name.
    #[serde(default)]
    pub company_name: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// `active` or `inactive`.
    #[serde(default)]
    pub status: Option<String>,
    /// Number of orders.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub orders_count: Option<i64>,
    /// Total amount spent (a decimal; sent as number or string).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub total_spent: Option<f64>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
}

impl_has_unique_id!(SalesUser, SalesEntity, SalesCustomer);

/// Body of `POST /users/{id}/register/` and `PUT /users/{id}/` (inside `{"user": ...}`);
/// `Patch::Clear` sends null (Rails clears an optional column).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SalesUserFields {
    /// Email (required to register).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// First name.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub first_name: Patch<String>,
    /// Last name.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub last_name: Patch<String>,
    /// Display name.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub display_name: Patch<String>,
    /// Phone number.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub phone: Patch<String>,
}

/// Body of `POST /entities/{id}/register/` (inside `{"entity": ...}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SalesEntityFields {
    /// Entity name (required).
    pub name: String,
    /// Type classification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// Entity email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Body of `POST /customers/{id}/register/` (inside `{"customer": ...}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SalesCustomerFields {
    /// Email (required).
    pub email: String,
    /// First name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Company name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// Phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Typed client of the Sales block.
#[derive(Clone)]
pub struct SalesClient {
    http: BlockHttp,
}

impl SalesClient {
    /// Wraps the shared HTTP core bound to Sales.
    pub fn new(http: BlockHttp) -> Self {
        Self { http }
    }

    /// The HTTP core (readiness probes, forwarded credentials).
    pub fn http(&self) -> &BlockHttp {
        &self.http
    }

    /// `GET /users/?page=&records=`.
    pub async fn list_users(&self, page: u32, records: u32) -> Result<Page<SalesUser>> {
        let url = self.paged(&["users", ""], page, records)?;
        let list: JsonApiMany<SalesUser> = self.http.get_json("GET /users/", url).await?;
        Ok(list.into_page(page))
    }

    /// `GET /users/{id}/`; `None` on 404.
    pub async fn get_user(&self, unique_id: &str) -> Result<Option<SalesUser>> {
        let url = self.http.url(&["users", unique_id, ""])?;
        let one: Option<JsonApiOne<SalesUser>> = self.http.get_optional("GET /users/{id}/", url).await?;
        Ok(one.map(|doc| doc.data.into_attributes()))
    }

    /// `POST /users/{id}/register/`.
    pub async fn register_user(&self, unique_id: &str, user: &SalesUserFields) -> Result<SalesUser> {
        let url = self.http.url(&["users", unique_id, "register", ""])?;
        let body = json!({ "user": user });
        let one: JsonApiOne<SalesUser> = self
            .http
            .write_json(Method::POST, "POST /users/{id}/register/", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }

    /// `PUT /users/{id}/`; the answer may carry only the changed attributes.
    pub async fn update_user(&self, unique_id: &str, user: &SalesUserFields) -> Result<SalesUser> {
        let url = self.http.url(&["users", unique_id, ""])?;
        let body = json!({ "user": user });
        let one: JsonApiOne<SalesUser> = self
            .http
            .write_json(Method::PUT, "PUT /users/{id}/", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }

    /// `GET /entities/?page=&records=`.
    pub async fn list_entities(&self, page: u32, records: u32) -> Result<Page<SalesEntity>> {
        let url = self.paged(&["entities", ""], page, records)?;
        let list: JsonApiMany<SalesEntity> = self.http.get_json("GET /entities/", url).await?;
        Ok(list.into_page(page))
    }

    /// `POST /entities/{id}/register/`.
    pub async fn register_entity(&self, unique_id: &str, entity: &SalesEntityFields) -> Result<SalesEntity> {
        let url = self.http.url(&["entities", unique_id, "register", ""])?;
        let body = json!({ "entity": entity });
        let one: JsonApiOne<SalesEntity> = self
            .http
            .write_json(Method::POST, "POST /entities/{id}/register/", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }

    /// `GET /customers/{id}/`; `None` on 404.
    pub async fn get_customer(&self, unique_id: &str) -> Result<Option<SalesCustomer>> {
        let url = self.http.url(&["customers", unique_id, ""])?;
        let one: Option<JsonApiOne<SalesCustomer>> = self.http.get_optional("GET /customers/{id}/", url).await?;
        Ok(one.map(|doc| doc.data.into_attributes()))
    }

    /// `POST /customers/{id}/register/`.
    pub async fn register_customer(&self, unique_id: &str, customer: &SalesCustomerFields) -> Result<SalesCustomer> {
        let url = self.http.url(&["customers", unique_id, "register", ""])?;
        let body = json!({ "customer": customer });
        let one: JsonApiOne<SalesCustomer> = self
            .http
            .write_json(Method::POST, "POST /customers/{id}/register/", url, Some(&body))
            .await?;
        Ok(one.data.into_attributes())
    }

    /// Finds an entity by walking the entities list to the page it is on (or to the end).
    pub async fn find_entity(&self, unique_id: &str) -> Result<Option<(u32, SalesEntity)>> {
        let walk = ListWalk {
            block: BlockName::Sales,
            list: "entities list",
            page_size: ENTITY_PAGE_SIZE,
        };
        walk.find(
            |page| self.list_entities(page, ENTITY_PAGE_SIZE),
            |entity| entity.unique_id.as_deref() == Some(unique_id),
        )
        .await
    }

    fn paged(&self, segments: &[&str], page: u32, records: u32) -> Result<url::Url> {
        let mut url = self.http.url(segments)?;
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("records", &records.to_string());
        Ok(url)
    }
}
