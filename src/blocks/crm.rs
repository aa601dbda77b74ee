//! CRM block: persons, organizations, invitations, links to platform users and merges.
//! Contract: `crm-openapi.yaml`. Every path lives under `/api/crm/` of the configured URL
//! (the client's base already includes it) and keeps its trailing slash.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    BlockName,
    error::{BlockError, Result},
    http::BlockHttp,
    walk::ListWalk,
    wire::{DrfPage, Page, Patch, from_value, lenient_i64, lenient_timestamp},
};

/// Records a page when the gateway walks the organizations' name filter.
const NAME_WALK_PAGE_SIZE: u32 = 100;

/// A CRM person.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CrmPerson {
    /// Server-assigned UUID.
    pub id: String,
    /// The CRM platform the person belongs to (read-only: set from the credentials).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub platform: Option<i64>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Canonical email.
    #[serde(default)]
    pub primary_email: Option<String>,
    /// Additional emails (free-form JSON).
    #[serde(default)]
    pub emails: Option<Value>,
    /// Contact numbers (free-form JSON).
    #[serde(default)]
    pub contact_numbers: Option<Value>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Organization UUID.
    #[serde(default)]
    pub organization: Option<String>,
    /// Platform user id of the account manager.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub owner: Option<i64>,
    /// Platform user this person is bound to.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub platform_user: Option<i64>,
    /// `lead`, `qualified`, `opportunity`, `customer` or `churned`.
    #[serde(default)]
    pub lifecycle_stage: Option<String>,
    /// External system id; the identity id for persons registered through the gateway.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// False once linked to a platform user or merged into another person.
    #[serde(default)]
    pub active: Option<bool>,
    /// Free-form platform attributes.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A CRM organization.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CrmOrganization {
    /// Server-assigned UUID.
    pub id: String,
    /// The CRM platform the organization belongs to (read-only: set from the credentials).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub platform: Option<i64>,
    /// Display name, unique per platform.
    #[serde(default)]
    pub name: Option<String>,
    /// Free-form address.
    #[serde(default)]
    pub address: Option<Value>,
    /// Platform user id of the account manager.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub owner: Option<i64>,
    /// Free-form platform attributes.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Writable person fields; `Keep` fields are not sent (PATCH semantics), `Clear` sends an
/// explicit null (the fields the contract lets be null: organization, owner and the
/// free-form JSON ones).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PersonFields {
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Canonical email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_email: Option<String>,
    /// Additional emails.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub emails: Patch<Value>,
    /// Contact numbers.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub contact_numbers: Patch<Value>,
    /// Job title (`""` is the contract's "none").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// Organization UUID.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub organization: Patch<String>,
    /// Owner user id.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub owner: Patch<i64>,
    /// Lifecycle stage (wire value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
    /// External system id (`""` is the contract's "none").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    /// Free-form attributes.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub metadata: Patch<Value>,
}

/// Writable organization fields; `Keep` fields are not sent, `Clear` sends null.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrganizationFields {
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form address.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub address: Patch<Value>,
    /// Owner user id.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub owner: Patch<i64>,
    /// Free-form attributes.
    #[serde(skip_serializing_if = "Patch::is_keep")]
    pub metadata: Patch<Value>,
}

/// Filters of the persons list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PersonFilter {
    /// Lifecycle stage (wire value).
    pub lifecycle_stage: Option<String>,
    /// Owner user id.
    pub owner: Option<i64>,
    /// Organization UUID.
    pub organization: Option<String>,
    /// Created at or after (RFC 3339).
    pub created_at_gte: Option<String>,
    /// Created at or before (RFC 3339).
    pub created_at_lte: Option<String>,
    /// Has this metadata key.
    pub metadata_has_key: Option<String>,
}

/// Filters of the organizations list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OrganizationFilter {
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Owner user id.
    pub owner: Option<i64>,
}

/// Body of `POST /persons/{id}/invite/`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InviteRequest {
    /// Grant platform-admin privileges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    /// Grant staff privileges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_staff: Option<bool>,
    /// Enrollment payload forwarded to the invitation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment_config: Option<Value>,
    /// Where the invitee lands after accepting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
}

/// 201 answer of the invite.
#[derive(Debug, Clone, Deserialize)]
pub struct PersonInvitation {
    /// The person invited.
    #[serde(default)]
    pub person_id: Option<String>,
    /// Invitation id.
    pub invitation_id: i64,
    /// Email the invitation went to.
    #[serde(default)]
    pub invitation_email: Option<String>,
    /// Platform key.
    #[serde(default)]
    pub platform_key: Option<String>,
    /// Auto-accepted at first sign-in.
    #[serde(default)]
    pub auto_accept: Option<bool>,
    /// Whether the invitation is active.
    #[serde(default)]
    pub active: Option<bool>,
    /// Redirect after acceptance.
    #[serde(default)]
    pub redirect_to: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub created: Option<DateTime<Utc>>,
}

/// 409 body of the invite: an active invitation already exists.
#[derive(Debug, Clone, Deserialize)]
pub struct PersonInviteConflict {
    /// The block's message.
    #[serde(default)]
    pub detail: Option<String>,
    /// Id of the pre-existing invitation.
    pub invitation_id: i64,
    /// The person.
    #[serde(default)]
    pub person_id: Option<String>,
    /// Platform key.
    #[serde(default)]
    pub platform_key: Option<String>,
}

/// What an invite did.
#[derive(Debug, Clone)]
pub enum InviteOutcome {
    /// A new invitation was sent.
    Invited(PersonInvitation),
    /// An active invitation already existed.
    Conflict(PersonInviteConflict),
}

/// 200 answer of the merge.
#[derive(Debug, Clone, Deserialize)]
pub struct PersonMergeResult {
    /// The surviving person.
    #[serde(default)]
    pub primary_id: Option<String>,
    /// Persons marked inactive.
    #[serde(default)]
    pub merged_ids: Vec<String>,
    /// Per-relation counts re-parented onto the primary.
    #[serde(default)]
    pub reparented: Option<Value>,
}

/// Typed client of the CRM block.
#[derive(Clone)]
pub struct CrmClient {
    http: BlockHttp,
}

impl CrmClient {
    /// Wraps the shared HTTP core bound to the CRM (base URL ending in `/api/crm`).
    pub fn new(http: BlockHttp) -> Self {
        Self { http }
    }

    /// The HTTP core.
    pub fn http(&self) -> &BlockHttp {
        &self.http
    }

    /// The organization named exactly `name`, walking the name filter's pages (it may
    /// match more than the name) until it turns up or the list ends.
    pub async fn find_organization_named(&self, name: &str) -> Result<Option<CrmOrganization>> {
        let filter = OrganizationFilter {
            name: Some(name.to_owned()),
            owner: None,
        };
        let walk = ListWalk {
            block: BlockName::Crm,
            list: "organizations list filtered by name",
            page_size: NAME_WALK_PAGE_SIZE,
        };
        let found = walk
            .find(
                |page| self.list_organizations(&filter, page, NAME_WALK_PAGE_SIZE),
                |organization| organization.name.as_deref() == Some(name),
            )
            .await?;
        Ok(found.map(|(_, organization)| organization))
    }

    /// `GET /organizations/` with filters.
    pub async fn list_organizations(
        &self,
        filter: &OrganizationFilter,
        page: u32,
        page_size: u32,
    ) -> Result<Page<CrmOrganization>> {
        let mut pairs = Vec::new();
        push(&mut pairs, "name", filter.name.clone());
        push(&mut pairs, "owner", filter.owner.map(|v| v.to_string()));
        let url = self.paged(&["organizations", ""], pairs, page, page_size)?;
        let page: DrfPage<CrmOrganization> = self.http.get_json("GET /api/crm/organizations/", url).await?;
        Ok(page.into())
    }

    /// `POST /organizations/`.
    pub async fn create_organization(&self, fields: &OrganizationFields) -> Result<CrmOrganization> {
        let url = self.http.url(&["organizations", ""])?;
        self.http
            .write_json(Method::POST, "POST /api/crm/organizations/", url, Some(fields))
            .await
    }

    /// `GET /organizations/{id}/`; `None` on 404.
    pub async fn get_organization(&self, id: &str) -> Result<Option<CrmOrganization>> {
        let url = self.http.url(&["organizations", id, ""])?;
        self.http.get_optional("GET /api/crm/organizations/{id}/", url).await
    }

    /// `PUT /organizations/{id}/` (all editable fields).
    pub async fn replace_organization(&self, id: &str, fields: &OrganizationFields) -> Result<CrmOrganization> {
        let url = self.http.url(&["organizations", id, ""])?;
        self.http
            .write_json(Method::PUT, "PUT /api/crm/organizations/{id}/", url, Some(fields))
            .await
    }

    /// `PATCH /organizations/{id}/` (only the supplied fields).
    pub async fn patch_organization(&self, id: &str, fields: &OrganizationFields) -> Result<CrmOrganization> {
        let url = self.http.url(&["organizations", id, ""])?;
        self.http
            .write_json(Method::PATCH, "PATCH /api/crm/organizations/{id}/", url, Some(fields))
            .await
    }

    /// `DELETE /organizations/{id}/`.
    pub async fn delete_organization(&self, id: &str) -> Result<()> {
        let url = self.http.url(&["organizations", id, ""])?;
        self.http
            .write_ignoring_body::<()>(Method::DELETE, "DELETE /api/crm/organizations/{id}/", url, None)
            .await
    }

    /// `GET /persons/` with filters.
    pub async fn list_persons(&self, filter: &PersonFilter, page: u32, page_size: u32) -> Result<Page<CrmPerson>> {
        let mut pairs = Vec::new();
        push(&mut pairs, "lifecycle_stage", filter.lifecycle_stage.clone());
        push(&mut pairs, "owner", filter.owner.map(|v| v.to_string()));
        push(&mut pairs, "organization", filter.organization.clone());
        push(&mut pairs, "created_at__gte", filter.created_at_gte.clone());
        push(&mut pairs, "created_at__lte", filter.created_at_lte.clone());
        push(&mut pairs, "metadata__has_key", filter.metadata_has_key.clone());
        let url = self.paged(&["persons", ""], pairs, page, page_size)?;
        let page: DrfPage<CrmPerson> = self.http.get_json("GET /api/crm/persons/", url).await?;
        Ok(page.into())
    }

    /// `POST /persons/`.
    pub async fn create_person(&self, fields: &PersonFields) -> Result<CrmPerson> {
        let url = self.http.url(&["persons", ""])?;
        self.http
            .write_json(Method::POST, "POST /api/crm/persons/", url, Some(fields))
            .await
    }

    /// `GET /persons/{id}/`; `None` on 404.
    pub async fn get_person(&self, id: &str) -> Result<Option<CrmPerson>> {
        let url = self.http.url(&["persons", id, ""])?;
        self.http.get_optional("GET /api/crm/persons/{id}/", url).await
    }

    /// `PUT /persons/{id}/` (all editable fields).
    pub async fn replace_person(&self, id: &str, fields: &PersonFields) -> Result<CrmPerson> {
        let url = self.http.url(&["persons", id, ""])?;
        self.http
            .write_json(Method::PUT, "PUT /api/crm/persons/{id}/", url, Some(fields))
            .await
    }

    /// `PATCH /persons/{id}/` (only the supplied fields).
    pub async fn patch_person(&self, id: &str, fields: &PersonFields) -> Result<CrmPerson> {
        let url = self.http.url(&["persons", id, ""])?;
        self.http
            .write_json(Method::PATCH, "PATCH /api/crm/persons/{id}/", url, Some(fields))
            .await
    }

    /// `DELETE /persons/{id}/`.
    pub async fn delete_person(&self, id: &str) -> Result<()> {
        let url = self.http.url(&["persons", id, ""])?;
        self.http
            .write_ignoring_body::<()>(Method::DELETE, "DELETE /api/crm/persons/{id}/", url, None)
            .await
    }

    /// `POST /persons/{id}/invite/`: 201 invites, 409 reports the existing invitation;
    /// 400, 404 and 422 are errors the caller maps to user errors.
    pub async fn invite_person(&self, id: &str, request: &InviteRequest) -> Result<InviteOutcome> {
        let url = self.http.url(&["persons", id, "invite", ""])?;
        match self
            .http
            .write_json(Method::POST, "POST /api/crm/persons/{id}/invite/", url, Some(request))
            .await
        {
            Ok(invitation) => Ok(InviteOutcome::Invited(invitation)),
            Err(error) => match conflict_body(&error) {
                Some(conflict) => Ok(InviteOutcome::Conflict(conflict)),
                None => Err(error),
            },
        }
    }

    /// `POST /persons/{id}/link-user/`. Answers the person as the CRM holds it afterwards:
    /// a person bound to a different user comes back unchanged (the caller must compare).
    pub async fn link_user(&self, id: &str, user_id: i64) -> Result<CrmPerson> {
        let url = self.http.url(&["persons", id, "link-user", ""])?;
        let body = serde_json::json!({ "user_id": user_id });
        self.http
            .write_json(Method::POST, "POST /api/crm/persons/{id}/link-user/", url, Some(&body))
            .await
    }

    /// `POST /persons/merge/`.
    pub async fn merge_persons(&self, primary_id: &str, duplicate_ids: &[String]) -> Result<PersonMergeResult> {
        let url = self.http.url(&["persons", "merge", ""])?;
        let body = serde_json::json!({ "primary_id": primary_id, "duplicate_ids": duplicate_ids });
        self.http
            .write_json(Method::POST, "POST /api/crm/persons/merge/", url, Some(&body))
            .await
    }

    fn paged(
        &self,
        segments: &[&str],
        pairs: Vec<(&'static str, String)>,
        page: u32,
        page_size: u32,
    ) -> Result<url::Url> {
        let mut url = self.http.url(segments)?;
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in pairs {
                query.append_pair(key, &value);
            }
            query
                .append_pair("page", &page.to_string())
                .append_pair("page_size", &page_size.to_string());
        }
        Ok(url)
    }
}

fn push(pairs: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<String>) {
    if let Some(value) = value {
        pairs.push((key, value));
    }
}

fn conflict_body(error: &BlockError) -> Option<PersonInviteConflict> {
    if error.status() != Some(409) {
        return None;
    }
    from_value(error.problem()?.body.as_deref()?)
}
