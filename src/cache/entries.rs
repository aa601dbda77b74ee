//! What the cache holds: the resources, the key of an entry, a record as loaded, the kind
//! of entry that decides its TTL, and the settings (size bound, TTLs).

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use crate::blocks::{BlockError, BlockName};

/// What a cache entry holds, which decides its TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// One record read by id.
    Detail,
    /// One page of a list, or an index built from lists.
    List,
}

/// The resources the gateway caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resource {
    /// Sales user by unique id.
    SalesUser,
    /// Sales customer by unique id.
    SalesCustomer,
    /// Sales users list page.
    SalesUsersPage,
    /// Every Sales entity (the block has no entity detail endpoint).
    SalesEntities,
    /// Sales entities list page.
    SalesEntitiesPage,
    /// Search identity by unique id.
    SearchIdentity,
    /// Assets user by unique id.
    AssetsUser,
    /// An Assets user's assets.
    AssetsUserAssets,
    /// An Assets user's entities.
    AssetsUserEntities,
    /// An Assets user's ownership records.
    AssetsUserOwnership,
    /// The whole Assets users list (the block documents no pagination).
    AssetsUsersList,
    /// B2B user by id.
    B2bUser,
    /// B2B user matched by email.
    B2bUserByEmail,
    /// B2B users list page.
    B2bUsersPage,
    /// CRM person by id.
    CrmPerson,
    /// CRM persons list page.
    CrmPersonsPage,
    /// CRM organization by id.
    CrmOrganization,
    /// CRM organizations list page.
    CrmOrganizationsPage,
}

impl Resource {
    /// The block that owns the resource.
    pub fn block(self) -> BlockName {
        match self {
            Self::SalesUser
            | Self::SalesCustomer
            | Self::SalesUsersPage
            | Self::SalesEntities
            | Self::SalesEntitiesPage => BlockName::Sales,
            Self::SearchIdentity => BlockName::Search,
            Self::AssetsUser
            | Self::AssetsUserAssets
            | Self::AssetsUserEntities
            | Self::AssetsUserOwnership
            | Self::AssetsUsersList => BlockName::Assets,
            Self::B2bUser | Self::B2bUserByEmail | Self::B2bUsersPage => BlockName::B2b,
            Self::CrmPerson | Self::CrmPersonsPage | Self::CrmOrganization | Self::CrmOrganizationsPage => {
                BlockName::Crm
            }
        }
    }

    /// The label of the resource in metrics (`gateway_cache_hits_total{resource=...}`).
    pub fn label(self) -> &'static str {
        match self {
            Self::SalesUser => "sales_user",
            Self::SalesCustomer => "sales_customer",
            Self::SalesUsersPage => "sales_users_page",
            Self::SalesEntities => "sales_entities",
            Self::SalesEntitiesPage => "sales_entities_page",
            Self::SearchIdentity => "search_identity",
            Self::AssetsUser => "assets_user",
            Self::AssetsUserAssets => "assets_user_assets",
            Self::AssetsUserEntities => "assets_user_entities",
            Self::AssetsUserOwnership => "assets_user_ownership",
            Self::AssetsUsersList => "assets_users_list",
            Self::B2bUser => "b2b_user",
            Self::B2bUserByEmail => "b2b_user_by_email",
            Self::B2bUsersPage => "b2b_users_page",
            Self::CrmPerson => "crm_person",
            Self::CrmPersonsPage => "crm_persons_page",
            Self::CrmOrganization => "crm_organization",
            Self::CrmOrganizationsPage => "crm_organizations_page",
        }
    }
}

/// A cache key: whose credentials, which resource, which id (or page parameters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Fingerprint of the forwarded caller credential; 0 for the gateway's own credentials.
    pub tenant: u64,
    /// The resource.
    pub resource: Resource,
    /// Record id, or the canonical form of a list query.
    pub id: Arc<str>,
}

/// A record as loaded: `complete` is false for items that came from a list page whose
/// items may carry fewer fields than the detail answer (a deserialized record counts as
/// partial: only the loader knows where it came from).
#[derive(Debug, Serialize, Deserialize)]
pub struct Record<T> {
    /// The wire record.
    pub data: T,
    /// Whether the record came from a detail read.
    #[serde(skip)]
    pub complete: bool,
}

impl<T> Record<T> {
    /// A record from a detail read.
    pub fn complete(data: T) -> Arc<Self> {
        Arc::new(Self { data, complete: true })
    }

    /// A record from a list item.
    pub fn partial(data: T) -> Arc<Self> {
        Arc::new(Self { data, complete: false })
    }
}

/// TTLs and size bound of the cache.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Upper bound of the estimated bytes held.
    pub max_bytes: u64,
    /// TTL of detail records; zero disables caching them.
    pub detail_ttl: Duration,
    /// TTL of list pages and list-built indexes.
    pub list_ttl: Duration,
    /// TTL of remembered 404s.
    pub not_found_ttl: Duration,
    /// How long past its TTL a record (or list page) may still stand in for its block when
    /// the block fails (`CACHE_STALE_IF_ERROR_MS`); zero turns stale answers off.
    pub stale_if_error: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            detail_ttl: Duration::from_secs(30),
            list_ttl: Duration::from_secs(5),
            not_found_ttl: Duration::from_secs(5),
            stale_if_error: Duration::from_secs(60),
        }
    }
}

/// A cached copy past its TTL that stood in for its block, which had just failed.
#[derive(Debug, Clone)]
pub struct Staleness {
    /// How long ago the block answered with the copy.
    pub age: Duration,
    /// How long ago the copy's TTL ended (at most the stale window).
    pub expired_for: Duration,
    /// The block's failure the copy stands in for.
    pub cause: BlockError,
}

/// What the cache answered with: the value (`None`: a remembered or fresh 404), and, when
/// it is a stale copy served because the block failed, how stale.
#[derive(Debug)]
pub struct Answer<T> {
    /// The value.
    pub value: Option<Arc<T>>,
    /// Set when the value is a stale stand-in.
    pub stale: Option<Staleness>,
}

impl<T> Answer<T> {
    /// A current value.
    pub fn current(value: Option<Arc<T>>) -> Self {
        Self { value, stale: None }
    }
}
