//! The block sub-objects of an identity (`SalesUser`, `SearchIdentity`, `AssetsUser`,
//! `B2BUser`, ...): each block's own fields in camelCase. Fields a block did not send are
//! null; nothing is invented. B2B `password` and `shop_token` are never exposed.
//!
//! Each type a client caches has an `id: ID!`, the block's own key for the record, unique
//! within the type (Apollo's and urql's normalised caches key objects by type and `id`):
//! the identity's shared unique id for the per-identity records (a Sales user, a Sales
//! customer, a Search identity, an Assets user: the key they were read by), the record's
//! `unique_id` for Sales entities and for the assets, entities and ownership records of an
//! Assets user. A list item the block sent without a `unique_id` has no key that would not
//! be invented: it is left out, and the list reports it as an error ([`keyed_items`],
//! [`report_unkeyed`]).

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::{
    errors::{IntoGraphql, SchemaError, report},
    load_one, loaders,
    pagination::connection_objects,
    timestamp::{Timestamp, optional},
};
use crate::{
    blocks::{BlockName, assets, b2b, sales, search},
    cache::Record,
    loaders::{AssetsUserAssetsKey, AssetsUserEntitiesKey, AssetsUserOwnershipKey, SalesUserKey},
};

/// A user in the Sales block.
pub struct SalesUser {
    id: String,
    record: Arc<Record<sales::SalesUser>>,
}

impl SalesUser {
    /// Wraps a record loaded by the identity's unique id `id`.
    pub fn new(id: String, record: Arc<Record<sales::SalesUser>>) -> Self {
        Self { id, record }
    }

    /// A field of the record; when the record came from a list page without that field,
    /// the detail answer is loaded (list items of Sales lack `phone` and `orders_count`).
    async fn field<T>(&self, ctx: &Context<'_>, pick: impl Fn(&sales::SalesUser) -> Option<T>) -> Result<Option<T>> {
        if let Some(value) = pick(&self.record.data) {
            return Ok(Some(value));
        }
        if self.record.complete {
            return Ok(None);
        }
        let Some(id) = self.record.data.unique_id.clone() else {
            return Ok(None);
        };
        let detail = load_one(loaders(ctx)?, SalesUserKey { id, complete: true })
            .await
            .gql()?;
        Ok(detail.and_then(|record| pick(&record.data)))
    }
}

/// A user in the Sales block.
#[Object]
impl SalesUser {
    /// The key for client caches: the identity's shared unique id, which Sales keys its
    /// users by.
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// The identity's shared unique id.
    async fn unique_id(&self) -> Option<&str> {
        self.record.data.unique_id.as_deref()
    }
    /// Email address.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.field(ctx, |u| u.email.clone()).await
    }
    /// First name.
    async fn first_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.field(ctx, |u| u.first_name.clone()).await
    }
    /// Last name.
    async fn last_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.field(ctx, |u| u.last_name.clone()).await
    }
    /// Display name.
    async fn display_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.field(ctx, |u| u.display_name.clone()).await
    }
    /// Phone number.
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.field(ctx, |u| u.phone.clone()).await
    }
    /// Account status (`active`, `inactive`).
    async fn status(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.field(ctx, |u| u.status.clone()).await
    }
    /// Number of orders.
    async fn orders_count(&self, ctx: &Context<'_>) -> Result<Option<i64>> {
        self.field(ctx, |u| u.orders_count).await
    }
    /// When the user was created.
    async fn created_at(&self, ctx: &Context<'_>) -> Result<Option<Timestamp>> {
        self.field(ctx, |u| optional(u.created_at)).await
    }
    /// When the user was last updated.
    async fn updated_at(&self, ctx: &Context<'_>) -> Result<Option<Timestamp>> {
        self.field(ctx, |u| optional(u.updated_at)).await
    }
}

/// A customer profile in the Sales block.
#[derive(SimpleObject)]
pub struct SalesCustomer {
    /// The key for client caches: the identity's shared unique id, which Sales keys its
    /// customers by.
    pub id: ID,
    /// The identity's shared unique id.
    pub unique_id: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Company name.
    pub company_name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Status (`active`, `inactive`).
    pub status: Option<String>,
    /// Number of orders.
    pub orders_count: Option<i64>,
    /// Total amount spent.
    pub total_spent: Option<f64>,
    /// When the customer was created.
    pub created_at: Option<Timestamp>,
}

impl SalesCustomer {
    /// The customer read by the identity's unique id `id`.
    pub fn new(id: String, c: &sales::SalesCustomer) -> Self {
        Self {
            id: ID(id),
            unique_id: c.unique_id.clone(),
            email: c.email.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            company_name: c.company_name.clone(),
            phone: c.phone.clone(),
            status: c.status.clone(),
            orders_count: c.orders_count,
            total_spent: c.total_spent,
            created_at: optional(c.created_at),
        }
    }
}

/// An entity (organization) in the Sales block.
#[derive(SimpleObject)]
pub struct SalesEntity {
    /// The key for client caches: the entity's Sales `unique_id` (the CRM organization id
    /// for organizations registered through the gateway).
    pub id: ID,
    /// Unique id (the CRM organization id for organizations registered through the gateway).
    pub unique_id: Option<String>,
    /// Entity name.
    pub name: Option<String>,
    /// Type classification.
    pub entity_type: Option<String>,
    /// Entity email.
    pub email: Option<String>,
    /// Status (`active`, `inactive`).
    pub status: Option<String>,
    /// When the entity was created.
    pub created_at: Option<Timestamp>,
}

connection_objects!(
    SalesEntity,
    "SalesEntityConnection",
    "SalesEntityEdge",
    "A page of Sales entities with Relay cursors.",
    "A Sales entity with its cursor."
);

impl SalesEntity {
    /// The entity found by its unique id `id`.
    pub fn new(id: String, e: &sales::SalesEntity) -> Self {
        Self {
            id: ID(id),
            unique_id: e.unique_id.clone(),
            name: e.name.clone(),
            entity_type: e.entity_type.clone(),
            email: e.email.clone(),
            status: e.status.clone(),
            created_at: optional(e.created_at),
        }
    }
}

/// An identity in the Search block.
#[derive(SimpleObject)]
pub struct SearchIdentity {
    /// The key for client caches: the identity's shared unique id, which Search keys its
    /// identities by.
    pub id: ID,
    /// The identity's shared unique id.
    pub unique_id: Option<String>,
    /// The user's id at the auth provider.
    pub user_unique_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Role id (1 admin, 2 manager, 4 user).
    pub role_id: Option<i64>,
    /// Role name.
    pub role_name: Option<String>,
    /// Account status.
    pub status: Option<String>,
    /// Whether the user is enabled.
    pub enabled: Option<bool>,
    /// When the identity was created.
    pub created_at: Option<Timestamp>,
    /// When the identity was last updated.
    pub updated_at: Option<Timestamp>,
}

impl SearchIdentity {
    /// The Search identity read by the identity's unique id `id`.
    pub fn new(id: String, s: &search::SearchIdentity) -> Self {
        Self {
            id: ID(id),
            unique_id: s.unique_id.clone(),
            user_unique_id: s.user_unique_id.clone(),
            name: s.name.clone(),
            email: s.email.clone(),
            phone: s.phone.clone(),
            avatar_url: s.avatar_url.clone(),
            role_id: s.role_id,
            role_name: s.role_name.clone(),
            status: s.status.clone(),
            enabled: s.enabled,
            created_at: optional(s.created_at),
            updated_at: optional(s.updated_at),
        }
    }
}

/// A user in the Assets block, with their assets, entities and ownership records.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AssetsUser {
    /// The key for client caches: the identity's shared unique id, which Assets keys its
    /// users by.
    pub id: ID,
    /// The identity's shared unique id.
    pub unique_id: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Number of assigned assets.
    pub assets_count: Option<i64>,
    /// Number of entities.
    pub entities_count: Option<i64>,
    /// When the user was created.
    pub created_at: Option<Timestamp>,
    /// When the user was last updated.
    pub updated_at: Option<Timestamp>,
}

impl AssetsUser {
    /// Builds the object for the Assets user `id`.
    pub fn new(id: String, u: &assets::AssetsUser) -> Self {
        Self {
            unique_id: u.unique_id.clone(),
            email: u.email.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            avatar_url: u.avatar_url.clone(),
            assets_count: u.assets_count,
            entities_count: u.entities_count,
            created_at: optional(u.created_at),
            updated_at: optional(u.updated_at),
            id: ID(id),
        }
    }
}

connection_objects!(
    AssetsUser,
    "AssetsUserConnection",
    "AssetsUserEdge",
    "A page of Assets users with Relay cursors.",
    "An Assets user with its cursor."
);

/// The items of a block's list that carry their `unique_id`, each built with it as its
/// key. Items without one are left out (any key would be invented) and reported as one
/// error on the list field, beside the items that could be keyed.
fn keyed_items<W: KeyedItem, T>(ctx: &Context<'_>, block: BlockName, items: &[W], build: fn(ID, &W) -> T) -> Vec<T> {
    let mut unkeyed = 0;
    let keyed = items
        .iter()
        .filter_map(|item| match item.key() {
            Some(key) => Some(build(ID(key.to_owned()), item)),
            None => {
                unkeyed += 1;
                None
            }
        })
        .collect();
    report_unkeyed(ctx, block, unkeyed);
    keyed
}

/// Reports, as one error on the field, the records of `block` left out of its list for
/// want of a key (nothing when none was).
pub(crate) fn report_unkeyed(ctx: &Context<'_>, block: BlockName, left_out: usize) {
    if left_out > 0 {
        report(ctx, SchemaError::UnkeyedItems { block, left_out });
    }
}

/// A block record whose key is its `unique_id`.
pub(crate) trait KeyedItem {
    /// The non-blank `unique_id`, if the block sent one.
    fn key(&self) -> Option<&str>;
}

macro_rules! keyed_by_unique_id {
    ($($wire:ty),*) => {$(
        impl KeyedItem for $wire {
            fn key(&self) -> Option<&str> {
                self.unique_id.as_deref().map(str::trim).filter(|id| !id.is_empty())
            }
        }
    )*};
}
keyed_by_unique_id!(
    assets::Asset,
    assets::AssetsEntity,
    assets::OwnershipRecord,
    assets::AssetsUser,
    sales::SalesEntity
);

#[ComplexObject]
impl AssetsUser {
    /// Assets assigned to the user. An asset the block sent without a `unique_id` is left
    /// out and reported as an error on this field.
    async fn assets(&self, ctx: &Context<'_>) -> Result<Vec<Asset>> {
        let list = load_one(loaders(ctx)?, AssetsUserAssetsKey(self.id.to_string()))
            .await
            .gql()?;
        Ok(list
            .map(|l| keyed_items(ctx, BlockName::Assets, &l.data, Asset::new))
            .unwrap_or_default())
    }
    /// Digital entities associated with the user. An entity the block sent without a
    /// `unique_id` is left out and reported as an error on this field.
    async fn entities(&self, ctx: &Context<'_>) -> Result<Vec<AssetsEntity>> {
        let list = load_one(loaders(ctx)?, AssetsUserEntitiesKey(self.id.to_string()))
            .await
            .gql()?;
        Ok(list
            .map(|l| keyed_items(ctx, BlockName::Assets, &l.data, AssetsEntity::new))
            .unwrap_or_default())
    }
    /// Ownership records of the user. A record the block sent without a `unique_id` is
    /// left out and reported as an error on this field.
    async fn ownership(&self, ctx: &Context<'_>) -> Result<Vec<OwnershipRecord>> {
        let list = load_one(loaders(ctx)?, AssetsUserOwnershipKey(self.id.to_string()))
            .await
            .gql()?;
        Ok(list
            .map(|l| keyed_items(ctx, BlockName::Assets, &l.data, OwnershipRecord::new))
            .unwrap_or_default())
    }
}

/// An asset in the Assets block.
#[derive(SimpleObject)]
pub struct Asset {
    /// The key for client caches: the asset's `unique_id` (one asset, whichever user lists
    /// it).
    pub id: ID,
    /// Unique id.
    pub unique_id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// When the asset was created.
    pub created_at: Option<Timestamp>,
}

impl Asset {
    fn new(id: ID, a: &assets::Asset) -> Self {
        Self {
            id,
            unique_id: a.unique_id.clone(),
            name: a.name.clone(),
            serial_number: a.serial_number.clone(),
            status: a.status.clone(),
            created_at: optional(a.created_at),
        }
    }
}

/// A digital entity in the Assets block.
#[derive(SimpleObject)]
pub struct AssetsEntity {
    /// The key for client caches: the entity's `unique_id`.
    pub id: ID,
    /// Unique id.
    pub unique_id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Type classification.
    pub entity_type: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Access level.
    pub access_level: Option<String>,
    /// When the entity was created.
    pub created_at: Option<Timestamp>,
}

impl AssetsEntity {
    fn new(id: ID, e: &assets::AssetsEntity) -> Self {
        Self {
            id,
            unique_id: e.unique_id.clone(),
            name: e.name.clone(),
            entity_type: e.entity_type.clone(),
            status: e.status.clone(),
            access_level: e.access_level.clone(),
            created_at: optional(e.created_at),
        }
    }
}

/// An ownership record in the Assets block.
#[derive(SimpleObject)]
pub struct OwnershipRecord {
    /// The key for client caches: the record's own `unique_id` (not the asset's).
    pub id: ID,
    /// Unique id.
    pub unique_id: Option<String>,
    /// The asset's unique id.
    pub asset_unique_id: Option<String>,
    /// The asset's name.
    pub asset_name: Option<String>,
    /// `assigned`, `lent` or `transferred`.
    pub ownership_type: Option<String>,
    /// When the asset was assigned.
    pub assigned_at: Option<Timestamp>,
    /// When the record was created.
    pub created_at: Option<Timestamp>,
}

impl OwnershipRecord {
    fn new(id: ID, o: &assets::OwnershipRecord) -> Self {
        Self {
            id,
            unique_id: o.unique_id.clone(),
            asset_unique_id: o.asset_unique_id.clone(),
            asset_name: o.asset_name.clone(),
            ownership_type: o.ownership_type.clone(),
            assigned_at: optional(o.assigned_at),
            created_at: optional(o.created_at),
        }
    }
}

/// A user of the B2B commerce block. Its password and shop token are never exposed.
#[derive(SimpleObject)]
#[graphql(name = "B2BUser")]
pub struct B2bUser {
    /// The B2B user id.
    pub id: i64,
    /// Email address.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
    /// The user's division (only `id` is known when the block sent a bare id).
    pub division: Option<B2bDivision>,
    /// Whether the user is active.
    pub is_active: Option<bool>,
    /// The user's id on the Commerce platform.
    pub remote_id: Option<i64>,
    /// When the user joined.
    pub date_joined: Option<Timestamp>,
    /// Last login.
    pub last_login: Option<Timestamp>,
}

connection_objects!(
    B2bUser,
    "B2BUserConnection",
    "B2BUserEdge",
    "A page of B2B users with Relay cursors.",
    "A B2B user with its cursor."
);

/// Kind of a B2B division.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "B2BDivisionType")]
pub enum B2bDivisionType {
    /// A main division.
    Main,
    /// A sub-division.
    Sub,
}

impl B2bDivisionType {
    /// The block's wire value.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Sub => "sub",
        }
    }
}

/// Filters of the B2B users list; all given ones must match. Text filters match when the
/// user's value contains the text, in any case.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "B2BUserFilter")]
pub struct B2bUserFilter {
    /// Only the user with this id.
    pub id: Option<i64>,
    /// Only users whose email contains this text (any case).
    pub email: Option<String>,
    /// Only users whose first name contains this text (any case).
    pub first_name: Option<String>,
    /// Only users whose last name contains this text (any case).
    pub last_name: Option<String>,
    /// Only users whose phone number contains this text (any case).
    pub phone_number: Option<String>,
    /// Only users of this division (its id).
    pub division: Option<i64>,
    /// Only active (true) or inactive (false) users.
    pub is_active: Option<bool>,
    /// Only users of divisions of this kind.
    pub division_type: Option<B2bDivisionType>,
}

/// Longest text a B2B text filter takes (the longest email, RFC 5321).
const MAX_B2B_FILTER_TEXT: usize = 254;

impl B2bUserFilter {
    /// The filter in wire form; a bad value is `BAD_USER_INPUT` naming it, before any call.
    pub fn to_wire(&self) -> Result<b2b::B2bUserFilter, SchemaError> {
        let positive = |value: Option<i64>, name: &str| match value {
            Some(value) if value <= 0 => Err(SchemaError::bad_input(format!(
                "`filter.{name}` must be a positive integer, got {value}"
            ))),
            value => Ok(value),
        };
        let text = |value: &Option<String>, name: &str| match value.as_deref().map(str::trim) {
            None => Ok(None),
            Some(text)
                if text.is_empty()
                    || text.chars().count() > MAX_B2B_FILTER_TEXT
                    || text.chars().any(char::is_control) =>
            {
                Err(SchemaError::bad_input(format!(
                    "`filter.{name}` must be 1 to {MAX_B2B_FILTER_TEXT} characters without control characters"
                )))
            }
            Some(text) => Ok(Some(text.to_owned())),
        };
        Ok(b2b::B2bUserFilter {
            id: positive(self.id, "id")?,
            is_active: self.is_active,
            email: text(&self.email, "email")?,
            division: positive(self.division, "division")?,
            division_type: self.division_type.map(|kind| kind.wire().to_owned()),
            first_name: text(&self.first_name, "firstName")?,
            last_name: text(&self.last_name, "lastName")?,
            phone_number: text(&self.phone_number, "phoneNumber")?,
        })
    }
}

/// A B2B division.
#[derive(SimpleObject)]
#[graphql(name = "B2BDivision")]
pub struct B2bDivision {
    /// Division id.
    pub id: i64,
    /// Division name.
    pub name: Option<String>,
    /// `main` or `sub`.
    pub division_type: Option<String>,
}

impl From<&b2b::B2bUser> for B2bUser {
    fn from(u: &b2b::B2bUser) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            phone_number: u.phone_number.clone(),
            division: u.division.as_ref().map(|division| match division {
                b2b::B2bDivisionRef::Full(d) => B2bDivision {
                    id: d.id,
                    name: d.name.clone(),
                    division_type: d.division_type.clone(),
                },
                b2b::B2bDivisionRef::Id(id) => B2bDivision {
                    id: *id,
                    name: None,
                    division_type: None,
                },
            }),
            is_active: u.is_active,
            remote_id: u.remote_id,
            date_joined: optional(u.date_joined),
            last_login: optional(u.last_login),
        }
    }
}
