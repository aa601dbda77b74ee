//! CRM types: `Person`, `Organization`, their filters and connections.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result};
use chrono::SecondsFormat;
use serde_json::Value;

use super::{
    block_types::SalesEntity,
    errors::{IntoGraphql, SchemaError},
    identity::Identity,
    identity_links, load_one, loaders,
    pagination::{PagedConnection, Window, connection_objects, fetch_window, paged},
    timestamp::{Timestamp, optional},
};
use crate::{
    blocks::{BlockName, crm},
    cache::Record,
    link_index::{LinkBlock, canonical_person_id},
    loaders::{OrganizationKey, OrganizationsPageKey, PersonsPageKey, SalesEntityKey},
};

/// Where a person is in the sales lifecycle.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStage {
    /// A lead.
    Lead,
    /// A qualified lead.
    Qualified,
    /// An open opportunity.
    Opportunity,
    /// A customer.
    Customer,
    /// A former customer.
    Churned,
}

impl LifecycleStage {
    /// The CRM's wire value.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Qualified => "qualified",
            Self::Opportunity => "opportunity",
            Self::Customer => "customer",
            Self::Churned => "churned",
        }
    }

    fn from_wire(value: &str) -> Option<Self> {
        [
            Self::Lead,
            Self::Qualified,
            Self::Opportunity,
            Self::Customer,
            Self::Churned,
        ]
        .into_iter()
        .find(|stage| stage.wire() == value)
    }
}

/// Filters of the persons list.
#[derive(InputObject, Debug, Clone, Default)]
pub struct PersonFilter {
    /// Only persons in this lifecycle stage.
    pub lifecycle_stage: Option<LifecycleStage>,
    /// Only persons owned by this platform user.
    pub owner_id: Option<i64>,
    /// Only persons of this organization (UUID).
    pub organization_id: Option<ID>,
    /// Only persons created at or after this time.
    pub created_after: Option<Timestamp>,
    /// Only persons created at or before this time.
    pub created_before: Option<Timestamp>,
    /// Only persons whose metadata has this key.
    pub metadata_has_key: Option<String>,
}

impl PersonFilter {
    fn to_wire(&self) -> Result<crm::PersonFilter, SchemaError> {
        let organization = match &self.organization_id {
            Some(id) => Some(parse_uuid(id, "filter.organizationId")?),
            None => None,
        };
        let time = |t: &Timestamp| t.0.to_rfc3339_opts(SecondsFormat::Secs, true);
        Ok(crm::PersonFilter {
            lifecycle_stage: self.lifecycle_stage.map(|s| s.wire().to_owned()),
            owner: self.owner_id,
            organization,
            created_at_gte: self.created_after.as_ref().map(time),
            created_at_lte: self.created_before.as_ref().map(time),
            metadata_has_key: self.metadata_has_key.clone(),
        })
    }
}

/// Filters of the organizations list.
#[derive(InputObject, Debug, Clone, Default)]
pub struct OrganizationFilter {
    /// Only organizations whose name contains this text (case-insensitive).
    pub name: Option<String>,
    /// Only organizations owned by this platform user.
    pub owner_id: Option<i64>,
}

/// Parses a CRM UUID argument into its canonical lower-case hyphenated form.
pub fn parse_uuid(id: &str, argument: &str) -> Result<String, SchemaError> {
    uuid::Uuid::parse_str(id.trim())
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| SchemaError::bad_input(format!("`{argument}` must be a UUID, got {id:?}")))
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T> {
    value
        .ok_or(SchemaError::MissingField {
            block: BlockName::Crm,
            field,
        })
        .gql()
}

fn json(value: &Option<Value>) -> Option<Json<Value>> {
    value.clone().map(Json)
}

/// A person in the CRM.
pub struct Person {
    record: Arc<Record<crm::CrmPerson>>,
    /// The identity the link index links this person to, when the page it came in read
    /// the index for all its persons at once (`Some(None)`: not linked); `None`: not read
    /// yet, `identity` asks the index itself.
    linked_identity: Option<Option<String>>,
}

impl Person {
    /// Wraps a loaded record.
    pub fn new(record: Arc<Record<crm::CrmPerson>>) -> Self {
        Self {
            record,
            linked_identity: None,
        }
    }

    /// Wraps a record whose identity link is already known: read together with a page's
    /// (see `linked_identity`), or the one a merge preview says it would have.
    pub fn with_linked_identity(record: Arc<Record<crm::CrmPerson>>, linked: Option<String>) -> Self {
        Self {
            record,
            linked_identity: Some(linked),
        }
    }

    fn data(&self) -> &crm::CrmPerson {
        &self.record.data
    }
}

connection_objects!(
    Person,
    "PersonConnection",
    "PersonEdge",
    "A page of persons with Relay cursors.",
    "A person with its cursor."
);

/// A person in the CRM.
#[Object]
impl Person {
    /// The CRM person UUID.
    async fn id(&self) -> ID {
        ID(self.data().id.clone())
    }
    /// The CRM platform the person belongs to (read-only: the CRM sets it from the
    /// gateway's credentials).
    async fn platform(&self) -> Option<i64> {
        self.data().platform
    }
    /// Display name.
    async fn name(&self) -> Result<&str> {
        required(self.data().name.as_deref(), "name")
    }
    /// Canonical email.
    async fn primary_email(&self) -> Option<&str> {
        self.data().primary_email.as_deref()
    }
    /// Additional email addresses, as the CRM keeps them.
    async fn emails(&self) -> Option<Json<Value>> {
        json(&self.data().emails)
    }
    /// Contact numbers, as the CRM keeps them.
    async fn contact_numbers(&self) -> Option<Json<Value>> {
        json(&self.data().contact_numbers)
    }
    /// Job title.
    async fn job_title(&self) -> Option<&str> {
        self.data().job_title.as_deref()
    }
    /// The person's organization.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        let Some(id) = self.data().organization.clone() else {
            return Ok(None);
        };
        let record = load_one(loaders(ctx)?, OrganizationKey(id)).await.gql()?;
        Ok(record.map(Organization::new))
    }
    /// Platform user id of the account manager.
    async fn owner_id(&self) -> Option<i64> {
        self.data().owner
    }
    /// The platform user this person is bound to.
    async fn platform_user_id(&self) -> Option<i64> {
        self.data().platform_user
    }
    /// Lifecycle stage.
    async fn lifecycle_stage(&self) -> Result<LifecycleStage> {
        let wire = required(self.data().lifecycle_stage.as_deref(), "lifecycle_stage")?;
        LifecycleStage::from_wire(wire)
            .ok_or(SchemaError::UnknownValue {
                block: BlockName::Crm,
                field: "lifecycle_stage",
            })
            .gql()
    }
    /// External system id; the identity id for persons registered through the gateway.
    async fn unique_id(&self) -> Option<&str> {
        self.data().unique_id.as_deref()
    }
    /// False once linked to a platform user or merged into another person.
    async fn active(&self) -> Result<bool> {
        required(self.data().active, "active")
    }
    /// Free-form platform attributes.
    async fn metadata(&self) -> Option<Json<Value>> {
        json(&self.data().metadata)
    }
    /// When the person was created.
    async fn created_at(&self) -> Result<Timestamp> {
        required(optional(self.data().created_at), "created_at")
    }
    /// When the person was last updated.
    async fn updated_at(&self) -> Result<Timestamp> {
        required(optional(self.data().updated_at), "updated_at")
    }
    /// The identity this person belongs to: the one the identity link index links it to,
    /// else the one named by the person's `unique_id`.
    async fn identity(&self, ctx: &Context<'_>) -> Result<Option<Identity>> {
        let linked = match &self.linked_identity {
            Some(linked) => linked.clone(),
            None => {
                identity_links::identity_holding(ctx, LinkBlock::Crm, &canonical_person_id(&self.data().id)).await?
            }
        };
        if let Some(linked) = linked {
            return Ok(Some(Identity::new(linked)));
        }
        let unique_id = self.data().unique_id.as_deref().map(str::trim).unwrap_or_default();
        Ok((!unique_id.is_empty()).then(|| Identity::new(unique_id)))
    }
    /// The person this one was merged into by `mergePersons` (from the identity link
    /// index); null for a person never merged through the gateway. A merged person stays
    /// readable (inactive), so a client holding its id can follow this to the survivor.
    async fn merged_into(&self, ctx: &Context<'_>) -> Result<Option<Person>> {
        match identity_links::survivor_of(ctx, &canonical_person_id(&self.data().id)).await? {
            Some(survivor) => identity_links::load_person(ctx, &survivor).await,
            None => Ok(None),
        }
    }
}

/// An organization in the CRM.
pub struct Organization {
    record: Arc<Record<crm::CrmOrganization>>,
}

impl Organization {
    /// Wraps a loaded record.
    pub fn new(record: Arc<Record<crm::CrmOrganization>>) -> Self {
        Self { record }
    }

    fn data(&self) -> &crm::CrmOrganization {
        &self.record.data
    }
}

connection_objects!(
    Organization,
    "OrganizationConnection",
    "OrganizationEdge",
    "A page of organizations with Relay cursors.",
    "An organization with its cursor."
);

/// An organization in the CRM.
#[Object]
impl Organization {
    /// The CRM organization UUID.
    async fn id(&self) -> ID {
        ID(self.data().id.clone())
    }
    /// The CRM platform the organization belongs to (read-only: the CRM sets it from the
    /// gateway's credentials).
    async fn platform(&self) -> Option<i64> {
        self.data().platform
    }
    /// Display name, unique per platform.
    async fn name(&self) -> Result<&str> {
        required(self.data().name.as_deref(), "name")
    }
    /// Free-form address.
    async fn address(&self) -> Option<Json<Value>> {
        json(&self.data().address)
    }
    /// Platform user id of the account manager.
    async fn owner_id(&self) -> Option<i64> {
        self.data().owner
    }
    /// Free-form platform attributes.
    async fn metadata(&self) -> Option<Json<Value>> {
        json(&self.data().metadata)
    }
    /// When the organization was created.
    async fn created_at(&self) -> Result<Timestamp> {
        required(optional(self.data().created_at), "created_at")
    }
    /// When the organization was last updated.
    async fn updated_at(&self) -> Result<Timestamp> {
        required(optional(self.data().updated_at), "updated_at")
    }
    /// The organization's persons, optionally filtered further.
    #[graphql(complexity = "crate::limits::connection_complexity(first, child_complexity)")]
    async fn persons(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many persons to return (0 to 100).")] first: i32,
        #[graphql(desc = "Return persons after this cursor.")] after: Option<String>,
        #[graphql(desc = "Only persons in this lifecycle stage (the same as `filter.lifecycleStage`; \
                          giving both with different stages is `BAD_USER_INPUT`).")]
        lifecycle_stage: Option<LifecycleStage>,
        #[graphql(desc = "Filters; all given ones must match. The organization is this one: \
                          `organizationId`, when given, must name it (another organization is \
                          `BAD_USER_INPUT`).")]
        filter: Option<PersonFilter>,
    ) -> Result<PagedConnection<Person>> {
        let filter = organization_person_filter(&self.data().id, lifecycle_stage, filter)?;
        persons_connection(ctx, "organization-persons", filter, first, after).await
    }
    /// The Sales entity registered for this organization (its `unique_id` is this id).
    async fn sales_entity(&self, ctx: &Context<'_>) -> Result<Option<SalesEntity>> {
        let record = load_one(loaders(ctx)?, SalesEntityKey(self.data().id.clone()))
            .await
            .gql()?;
        Ok(record.map(|r| SalesEntity::new(self.data().id.clone(), &r.data)))
    }
}

/// A page of persons, priming the person loader with every item; when the selection asks
/// for their identities, the page reads the link index for all of them at once.
pub async fn persons_connection(
    ctx: &Context<'_>,
    name: &'static str,
    filter: crm::PersonFilter,
    first: i32,
    after: Option<String>,
) -> Result<PagedConnection<Person>> {
    let window = Window::parse(name, first, after.as_deref()).gql()?;
    let fetched = fetch_window(ctx, window, |page, page_size| PersonsPageKey {
        filter: filter.clone(),
        page,
        page_size,
    })
    .await?;
    let ids = fetched.items.iter().map(|record| record.data.id.as_str());
    let holders = if asks_for_identities(ctx) {
        identity_links::identities_holding_persons(ctx, ids).await
    } else {
        None
    };
    let Some(mut holders) = holders else {
        return Ok(paged(name, window, fetched, Person::new));
    };
    Ok(paged(name, window, fetched, |record| {
        let linked = holders.remove(&canonical_person_id(&record.data.id));
        Person::with_linked_identity(record, linked)
    }))
}

/// Whether the selection asks for the identity of the connection's persons.
fn asks_for_identities(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("edges").field("node").field("identity").exists()
}

/// A page of organizations, priming the organization loader with every item.
pub async fn organizations_connection(
    ctx: &Context<'_>,
    filter: crm::OrganizationFilter,
    first: i32,
    after: Option<String>,
) -> Result<PagedConnection<Organization>> {
    let window = Window::parse("organizations", first, after.as_deref()).gql()?;
    let fetched = fetch_window(ctx, window, |page, page_size| OrganizationsPageKey {
        filter: filter.clone(),
        page,
        page_size,
    })
    .await?;
    Ok(paged("organizations", window, fetched, Organization::new))
}

/// Person filter arguments in wire form.
pub fn person_filter(filter: Option<PersonFilter>) -> Result<crm::PersonFilter> {
    filter.unwrap_or_default().to_wire().gql()
}

/// The persons filter of `Organization.persons`: `filter` with the organization implied
/// (a filter naming another organization is refused, not overridden) and the older
/// `lifecycleStage` argument folded in.
fn organization_person_filter(
    organization_id: &str,
    lifecycle_stage: Option<LifecycleStage>,
    filter: Option<PersonFilter>,
) -> Result<crm::PersonFilter> {
    let filter = filter.unwrap_or_default();
    let stage = match (lifecycle_stage, filter.lifecycle_stage) {
        (Some(argument), Some(filtered)) if argument != filtered => {
            return Err(SchemaError::bad_input(format!(
                "`lifecycleStage` ({}) and `filter.lifecycleStage` ({}) differ; give one",
                argument.wire().to_uppercase(),
                filtered.wire().to_uppercase()
            )))
            .gql();
        }
        (argument, filtered) => argument.or(filtered),
    };
    let mut wire = PersonFilter {
        lifecycle_stage: stage,
        ..filter
    }
    .to_wire()
    .gql()?;
    let own = parse_uuid(organization_id, "id").unwrap_or_else(|_| organization_id.to_owned());
    if let Some(named) = wire.organization.as_deref().filter(|named| *named != own) {
        return Err(SchemaError::bad_input(format!(
            "`filter.organizationId` ({named}) is not this organization ({own}); use `Query.persons` to list another organization's persons"
        )))
        .gql();
    }
    wire.organization = Some(organization_id.to_owned());
    Ok(wire)
}

/// Organization filter arguments in wire form.
pub fn organization_filter(filter: Option<OrganizationFilter>) -> crm::OrganizationFilter {
    let filter = filter.unwrap_or_default();
    crm::OrganizationFilter {
        name: filter.name,
        owner: filter.owner_id,
    }
}
