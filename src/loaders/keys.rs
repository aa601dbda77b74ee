//! The key types of the loader: one per (block, resource), each saying how its record is
//! fetched. Adding a resource means adding a key here and a [`Resource`] variant.

use std::{collections::HashMap, sync::Arc};

use super::{BlockLoader, RecordKey};
use crate::{
    blocks::{
        BlockError, BlockName,
        assets::{Asset, AssetsEntity, AssetsUser, OwnershipRecord},
        b2b::{B2bUser, B2bUserFilter},
        crm::{CrmOrganization, CrmPerson, OrganizationFilter, PersonFilter},
        sales::{ENTITY_PAGE_SIZE, SalesCustomer, SalesEntity, SalesUser},
        search::SearchIdentity,
        walk::ListWalk,
        wire::Page,
    },
    cache::{EntryKind, Record, Resource},
    link_index::LinkIndex,
};

/// A page of records as cached: items shared with the per-item cache entries.
pub type RecordPage<T> = Page<Arc<Record<T>>>;

/// A key of a list page whose items are records with keys of their own.
pub trait PageKey: RecordKey<Record = RecordPage<<Self::ItemKey as RecordKey>::Record>> {
    /// The key of one item.
    type ItemKey: RecordKey;

    /// The key `item` is found under.
    fn item_key(item: &<Self::ItemKey as RecordKey>::Record) -> Self::ItemKey;
}

/// The record type of a page key's items.
type ItemOf<P> = <<P as PageKey>::ItemKey as RecordKey>::Record;

/// A page as cached, its items wrapped by `make`. The items also go into the shared
/// cache under their own keys (list priming): here, where the page arrives from its block,
/// and not on every read of the cached page.
async fn primed_page<P: PageKey>(
    loader: &BlockLoader,
    page: Page<ItemOf<P>>,
    make: fn(ItemOf<P>) -> Arc<Record<ItemOf<P>>>,
) -> RecordPage<ItemOf<P>> {
    let page = Page {
        items: page.items.into_iter().map(make).collect::<Vec<_>>(),
        total: page.total,
        has_next: page.has_next,
    };
    let items: Vec<_> = page
        .items
        .iter()
        .map(|record| (P::item_key(&record.data), record.clone()))
        .collect();
    loader.prime(items).await;
    page
}

/// A key that is a record's id in one block: the record type, the cached resource and how
/// the block is asked for it (`clients` and the `id` text are in scope). The attached doc
/// comment documents the key.
macro_rules! id_key {
    ($(#[$doc:meta])* $name:ident => $record:ty, $resource:ident, |$clients:ident, $id:ident| $fetch:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(pub String);

        impl RecordKey for $name {
            type Record = $record;
            const RESOURCE: Resource = Resource::$resource;

            fn cache_id(&self) -> String {
                self.0.clone()
            }

            async fn fetch(&self, loader: &BlockLoader) -> Result<Option<$record>, BlockError> {
                let $clients = loader.clients();
                let $id = self.0.as_str();
                $fetch
            }
        }
    };
}

/// A Sales user by unique id. `complete` asks for the detail answer (list items lack
/// `phone` and `orders_count`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SalesUserKey {
    /// The unique id.
    pub id: String,
    /// Whether a partial list item is not good enough.
    pub complete: bool,
}

impl RecordKey for SalesUserKey {
    type Record = SalesUser;
    const RESOURCE: Resource = Resource::SalesUser;

    fn cache_id(&self) -> String {
        self.id.clone()
    }

    fn needs_complete(&self) -> bool {
        self.complete
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<SalesUser>, BlockError> {
        loader.clients().sales()?.get_user(&self.id).await
    }
}

/// A page of the Sales users list (the identity directory).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SalesUsersPageKey {
    /// 1-based page number.
    pub page: u32,
    /// Page size (`records`).
    pub records: u32,
}

impl RecordKey for SalesUsersPageKey {
    type Record = RecordPage<SalesUser>;
    const RESOURCE: Resource = Resource::SalesUsersPage;
    const KIND: EntryKind = EntryKind::List;

    fn cache_id(&self) -> String {
        format!("page={}&records={}", self.page, self.records)
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<Self::Record>, BlockError> {
        let page = loader.clients().sales()?.list_users(self.page, self.records).await?;
        Ok(Some(primed_page::<Self>(loader, page, Record::partial).await))
    }
}

impl PageKey for SalesUsersPageKey {
    type ItemKey = SalesUserKey;

    fn item_key(user: &SalesUser) -> SalesUserKey {
        SalesUserKey {
            id: user.unique_id.clone().unwrap_or_default(),
            complete: false,
        }
    }
}

id_key!(
    /// A Sales customer by unique id.
    SalesCustomerKey => SalesCustomer, SalesCustomer, |clients, id| clients.sales()?.get_customer(id).await
);

/// A Sales entity by unique id. Sales documents no entity detail endpoint, so an entity is
/// found in the entities list: on the page the lookup index saw it on (one request, the
/// entry repaired when the block disagrees), in the whole list when a complete walk of it
/// is cached, or else by walking the whole list (single flight: one walk for every
/// concurrent caller; it records every entity's page in the lookup index).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SalesEntityKey(pub String);

/// The cache id of the whole entities list, read to the end.
const ALL_ENTITIES: &str = "all";

/// Every Sales entity by unique id, as a complete walk of the list read them.
type EntityMap = HashMap<String, SalesEntity>;

impl RecordKey for SalesEntityKey {
    type Record = SalesEntity;
    const RESOURCE: Resource = Resource::SalesEntities;

    fn cache_id(&self) -> String {
        format!("id:{}", self.0)
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<SalesEntity>, BlockError> {
        if let Some(all) = loader.peek::<EntityMap>(Resource::SalesEntities, ALL_ENTITIES).await {
            return Ok(all.get(&self.0).cloned());
        }
        match Box::pin(entity_at_recorded_position(loader, &self.0)).await? {
            Recorded::Found(entity) => return Ok(Some(entity)),
            Recorded::Missing if Box::pin(entity_list_unchanged(loader)).await? => return Ok(None),
            Recorded::Missing | Recorded::Wrong => {}
        }
        let all = loader
            .cached(Resource::SalesEntities, ALL_ENTITIES, EntryKind::List, || async {
                Ok(Some(Arc::new(Box::pin(walk_sales_entities(loader)).await?)))
            })
            .await?;
        Ok(all.and_then(|all| all.get(&self.0).cloned()))
    }
}

/// What the lookup index's entry for an entity gave.
enum Recorded {
    /// The entity, on the page the entry names.
    Found(SalesEntity),
    /// No entry (or no index).
    Missing,
    /// The entry was wrong (the entity was not there): dropped.
    Wrong,
}

/// The entity, read from the page the lookup index recorded for it (or, for one the
/// gateway registered, from the first and last pages): at most two Sales requests, each
/// page shared with every other read of it. A wrong entry is dropped, and the walk that
/// follows records the entity's place again.
async fn entity_at_recorded_position(loader: &BlockLoader, id: &str) -> Result<Recorded, BlockError> {
    let Some(index) = loader.lookup_index() else {
        return Ok(Recorded::Missing);
    };
    let position = match index.entity_position(id).await {
        Ok(Some(position)) => position,
        Ok(None) => return Ok(Recorded::Missing),
        Err(error) => {
            tracing::warn!(%error, "lookup index unavailable; walking the Sales entities list");
            return Ok(Recorded::Wrong);
        }
    };
    let records = position.page_size;
    let page = match position.page {
        Some(page) => page,
        // Registered by the gateway: new entities are listed first or last.
        None => {
            let first = entities_page(loader, 1, records).await?;
            if let Some(entity) = entity_on(&first, id) {
                note_entity_position(index, id, 1, records).await;
                return Ok(Recorded::Found(entity));
            }
            let pages = first.total.map_or(1, |total| total.div_ceil(u64::from(records)));
            u32::try_from(pages).unwrap_or(u32::MAX).max(1)
        }
    };
    if position.page.is_some() || page > 1 {
        let found = entities_page(loader, page, records).await?;
        if let Some(entity) = entity_on(&found, id) {
            if position.page != Some(page) {
                note_entity_position(index, id, page, records).await;
            }
            return Ok(Recorded::Found(entity));
        }
    }
    if let Err(error) = index.forget_entity_position(id).await {
        tracing::warn!(%error, "could not drop a wrong Sales entity position from the lookup index");
    }
    Ok(Recorded::Wrong)
}

/// Whether the lookup index holds every entity of the list as Sales serves it now: a walk
/// read the whole list and recorded its total, and Sales still reports that total (one
/// request, the first page, shared with every other read of it). Then an entity without
/// a position is not in the list.
async fn entity_list_unchanged(loader: &BlockLoader) -> Result<bool, BlockError> {
    let Some(index) = loader.lookup_index() else {
        return Ok(false);
    };
    let recorded = match index.entity_list_total().await {
        Ok(Some(total)) => total,
        Ok(None) => return Ok(false),
        Err(error) => {
            tracing::warn!(%error, "lookup index unavailable; walking the Sales entities list");
            return Ok(false);
        }
    };
    let first = entities_page(loader, 1, ENTITY_PAGE_SIZE).await?;
    Ok(first.total == Some(recorded))
}

/// One page of the entities list through the cache (one request per distinct page).
async fn entities_page(loader: &BlockLoader, page: u32, records: u32) -> Result<RecordPage<SalesEntity>, BlockError> {
    let key = SalesEntitiesPageKey { page, records };
    // Boxed: a key's fetch that loads another key would nest both futures on the stack.
    let page = Box::pin(loader.load_key(&key)).await?;
    Ok(page.map(|page| page.data.clone()).unwrap_or_else(|| Page {
        items: Vec::new(),
        total: None,
        has_next: Some(false),
    }))
}

fn entity_on(page: &RecordPage<SalesEntity>, id: &str) -> Option<SalesEntity> {
    page.items
        .iter()
        .find(|record| record.data.unique_id.as_deref() == Some(id))
        .map(|record| record.data.clone())
}

async fn note_entity_position(index: &LinkIndex, id: &str, page: u32, records: u32) {
    if let Err(error) = index.record_entity_positions(&[(id.to_owned(), page)], records).await {
        tracing::warn!(%error, "could not record a Sales entity position in the lookup index");
    }
}

/// The whole entities list, read to the end (see [`ListWalk`]) through the page cache, so
/// a page another read already has costs nothing; every entity's page goes into the
/// lookup index.
async fn walk_sales_entities(loader: &BlockLoader) -> Result<EntityMap, BlockError> {
    // An unconfigured Sales fails here, with its own error, before any page is asked for.
    loader.clients().sales()?;
    let walk = ListWalk {
        block: BlockName::Sales,
        list: "entities list",
        page_size: ENTITY_PAGE_SIZE,
    };
    let entities = walk
        .read_all(|page| entities_page(loader, page, ENTITY_PAGE_SIZE))
        .await?;
    if let Some(index) = loader.lookup_index() {
        let positions: Vec<(String, u32)> = entities
            .iter()
            .filter_map(|(page, entity)| Some((entity.data.unique_id.clone()?, *page)))
            .collect();
        let recorded = async {
            index.record_entity_positions(&positions, ENTITY_PAGE_SIZE).await?;
            index.record_entity_list_total(entities.len() as u64).await
        };
        if let Err(error) = recorded.await {
            tracing::warn!(%error, "could not record Sales entity positions in the lookup index");
        }
    }
    Ok(entities
        .into_iter()
        .filter_map(|(_, entity)| Some((entity.data.unique_id.clone()?, entity.data.clone())))
        .collect())
}

/// A page of the Sales entities list (`salesEntities`; finding one entity by id is
/// [`SalesEntityKey`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SalesEntitiesPageKey {
    /// 1-based page number.
    pub page: u32,
    /// Page size (`records`).
    pub records: u32,
}

impl RecordKey for SalesEntitiesPageKey {
    type Record = RecordPage<SalesEntity>;
    const RESOURCE: Resource = Resource::SalesEntitiesPage;
    const KIND: EntryKind = EntryKind::List;

    fn cache_id(&self) -> String {
        format!("page={}&records={}", self.page, self.records)
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<Self::Record>, BlockError> {
        let page = loader.clients().sales()?.list_entities(self.page, self.records).await?;
        // List items lack the entity's email (the documented list example shows none).
        Ok(Some(primed_page::<Self>(loader, page, Record::partial).await))
    }
}

impl PageKey for SalesEntitiesPageKey {
    type ItemKey = SalesEntityKey;

    fn item_key(entity: &SalesEntity) -> SalesEntityKey {
        SalesEntityKey(entity.unique_id.clone().unwrap_or_default())
    }
}

id_key!(
    /// A Search identity by unique id.
    SearchIdentityKey => SearchIdentity, SearchIdentity, |clients, id| clients.search()?.get_identity(id).await
);

id_key!(
    /// An Assets user by unique id.
    AssetsUserKey => AssetsUser, AssetsUser, |clients, id| clients.assets()?.get_user(id).await
);

/// The whole Assets users list (`assetsUsers`): the block documents no pagination, so the
/// list is read once (to the end, see `AssetsClient::list_users`) and paged by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssetsUsersKey;

impl RecordKey for AssetsUsersKey {
    type Record = RecordPage<AssetsUser>;
    const RESOURCE: Resource = Resource::AssetsUsersList;
    const KIND: EntryKind = EntryKind::List;

    fn cache_id(&self) -> String {
        "all".to_owned()
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<Self::Record>, BlockError> {
        let users = loader.clients().assets()?.list_users().await?;
        let page = Page {
            total: Some(users.len() as u64),
            has_next: Some(false),
            items: users,
        };
        Ok(Some(primed_page::<Self>(loader, page, Record::partial).await))
    }
}

impl PageKey for AssetsUsersKey {
    type ItemKey = AssetsUserKey;

    fn item_key(user: &AssetsUser) -> AssetsUserKey {
        AssetsUserKey(user.unique_id.clone().unwrap_or_default())
    }
}

id_key!(
    /// An Assets user's assets.
    AssetsUserAssetsKey => Vec<Asset>, AssetsUserAssets, |clients, id| clients.assets()?.user_assets(id).await
);

id_key!(
    /// An Assets user's entities.
    AssetsUserEntitiesKey => Vec<AssetsEntity>, AssetsUserEntities, |clients, id| clients.assets()?.user_entities(id).await
);

id_key!(
    /// An Assets user's ownership records.
    AssetsUserOwnershipKey => Vec<OwnershipRecord>, AssetsUserOwnership, |clients, id| clients.assets()?.user_ownership(id).await
);

/// A B2B user by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct B2bUserKey(pub i64);

impl RecordKey for B2bUserKey {
    type Record = B2bUser;
    const RESOURCE: Resource = Resource::B2bUser;

    fn cache_id(&self) -> String {
        self.0.to_string()
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<B2bUser>, BlockError> {
        loader.clients().b2b()?.get_user(self.0).await
    }
}

/// A page of the B2B users list (`b2bUsers`), with its filters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct B2bUsersPageKey {
    /// Filters.
    pub filter: B2bUserFilter,
    /// 1-based page number.
    pub page: u32,
    /// Page size (`limit`).
    pub limit: u32,
}

impl RecordKey for B2bUsersPageKey {
    type Record = RecordPage<B2bUser>;
    const RESOURCE: Resource = Resource::B2bUsersPage;
    const KIND: EntryKind = EntryKind::List;

    fn cache_id(&self) -> String {
        format!("{:?}|{}|{}", self.filter, self.page, self.limit)
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<Self::Record>, BlockError> {
        let page = loader
            .clients()
            .b2b()?
            .list_users(&self.filter, self.limit, self.page)
            .await?;
        // List items carry the detail answer's fields.
        Ok(Some(primed_page::<Self>(loader, page, Record::complete).await))
    }
}

impl PageKey for B2bUsersPageKey {
    type ItemKey = B2bUserKey;

    fn item_key(user: &B2bUser) -> B2bUserKey {
        B2bUserKey(user.id)
    }
}

/// A B2B user matched by email, case-insensitively (the key holds the lower-cased email).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct B2bEmailKey(String);

impl B2bEmailKey {
    /// The key for an email, in any case.
    pub fn new(email: &str) -> Self {
        Self(email.trim().to_lowercase())
    }
}

impl RecordKey for B2bEmailKey {
    type Record = B2bUser;
    const RESOURCE: Resource = Resource::B2bUserByEmail;

    fn cache_id(&self) -> String {
        self.0.clone()
    }

    /// The user the lookup index names for the email, read by id (one request) and
    /// checked; otherwise B2B's email filter, which matches substrings, read page after
    /// page until the exact email (any case) turns up or the list ends. Every email the
    /// walk saw goes into the lookup index.
    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<B2bUser>, BlockError> {
        if let Some(user) = Box::pin(b2b_user_by_recorded_email(loader, &self.0)).await? {
            return Ok(Some(user));
        }
        let mut seen: Vec<(String, i64)> = Vec::new();
        let found = loader
            .clients()
            .b2b()?
            .find_user_by_email(&self.0, |user| {
                if let Some(email) = &user.email {
                    seen.push((email.clone(), user.id));
                }
            })
            .await?;
        if let Some(index) = loader.lookup_index()
            && let Err(error) = index.record_b2b_emails(&seen).await
        {
            tracing::warn!(%error, "could not record B2B emails in the lookup index");
        }
        if let Some(user) = &found {
            loader
                .prime([(B2bUserKey(user.id), Record::complete(user.clone()))])
                .await;
        }
        Ok(found)
    }
}

/// The B2B user the lookup index records for `email`, when the block still has that user
/// with that email; a wrong entry is dropped (the walk that follows records the right one).
async fn b2b_user_by_recorded_email(loader: &BlockLoader, email: &str) -> Result<Option<B2bUser>, BlockError> {
    let Some(index) = loader.lookup_index() else {
        return Ok(None);
    };
    let id = match index.b2b_user_by_email(email).await {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(None),
        Err(error) => {
            tracing::warn!(%error, "lookup index unavailable; walking B2B's email filter");
            return Ok(None);
        }
    };
    // Boxed: a key's fetch that loads another key would nest both futures on the stack.
    match Box::pin(loader.load_key(&B2bUserKey(id))).await? {
        Some(user) if user.data.has_email(email) => Ok(Some(user.data.clone())),
        _ => {
            if let Err(error) = index.forget_b2b_email(email).await {
                tracing::warn!(%error, "could not drop a wrong B2B email from the lookup index");
            }
            Ok(None)
        }
    }
}

id_key!(
    /// A CRM person by UUID.
    PersonKey => CrmPerson, CrmPerson, |clients, id| clients.crm()?.get_person(id).await
);

/// A page of the CRM persons list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonsPageKey {
    /// Filters.
    pub filter: PersonFilter,
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub page_size: u32,
}

impl RecordKey for PersonsPageKey {
    type Record = RecordPage<CrmPerson>;
    const RESOURCE: Resource = Resource::CrmPersonsPage;
    const KIND: EntryKind = EntryKind::List;

    fn cache_id(&self) -> String {
        format!("{:?}|{}|{}", self.filter, self.page, self.page_size)
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<Self::Record>, BlockError> {
        let page = loader
            .clients()
            .crm()?
            .list_persons(&self.filter, self.page, self.page_size)
            .await?;
        // The CRM's list items use the same schema as its detail answer.
        Ok(Some(primed_page::<Self>(loader, page, Record::complete).await))
    }
}

impl PageKey for PersonsPageKey {
    type ItemKey = PersonKey;

    fn item_key(person: &CrmPerson) -> PersonKey {
        PersonKey(person.id.clone())
    }
}

id_key!(
    /// A CRM organization by UUID.
    OrganizationKey => CrmOrganization, CrmOrganization, |clients, id| clients.crm()?.get_organization(id).await
);

/// A page of the CRM organizations list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganizationsPageKey {
    /// Filters.
    pub filter: OrganizationFilter,
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub page_size: u32,
}

impl RecordKey for OrganizationsPageKey {
    type Record = RecordPage<CrmOrganization>;
    const RESOURCE: Resource = Resource::CrmOrganizationsPage;
    const KIND: EntryKind = EntryKind::List;

    fn cache_id(&self) -> String {
        format!("{:?}|{}|{}", self.filter, self.page, self.page_size)
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<Self::Record>, BlockError> {
        let page = loader
            .clients()
            .crm()?
            .list_organizations(&self.filter, self.page, self.page_size)
            .await?;
        Ok(Some(primed_page::<Self>(loader, page, Record::complete).await))
    }
}

impl PageKey for OrganizationsPageKey {
    type ItemKey = OrganizationKey;

    fn item_key(organization: &CrmOrganization) -> OrganizationKey {
        OrganizationKey(organization.id.clone())
    }
}
