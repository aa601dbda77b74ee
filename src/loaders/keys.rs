//! The key types of the loader: one per (block, resource), each saying how its record is
//! fetched. Adding a resource means adding a key here and a [`Resource`] variant.

use std::{collections::HashMap, sync::Arc};

use futures::future::try_join_all;

use super::{BlockLoader, RecordKey};
use crate::{
    blocks::{
        BlockError,
        assets::{Asset, AssetsEntity, AssetsUser, OwnershipRecord},
        b2b::{B2bUser, B2bUserFilter},
        crm::{CrmOrganization, CrmPerson, OrganizationFilter, PersonFilter},
        sales::{SalesCustomer, SalesEntity, SalesUser},
        search::SearchIdentity,
        wire::Page,
    },
    cache::{EntryKind, Record, Resource},
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

/// A Sales entity by unique id. Sales documents no entity detail endpoint, so entities are
/// found in the whole entity list, fetched once (all pages concurrently) and cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SalesEntityKey(pub String);

/// Page size used when walking the Sales entity list.
const ENTITY_PAGE_SIZE: u32 = 100;
/// Upper bound of pages walked, so a misbehaving block cannot make the walk endless.
const ENTITY_MAX_PAGES: u64 = 200;

impl RecordKey for SalesEntityKey {
    type Record = SalesEntity;
    const RESOURCE: Resource = Resource::SalesEntities;

    fn cache_id(&self) -> String {
        format!("id:{}", self.0)
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<SalesEntity>, BlockError> {
        let index = loader
            .cached(Resource::SalesEntities, "all", EntryKind::List, || async {
                Ok(Some(Arc::new(sales_entity_index(loader).await?)))
            })
            .await?;
        Ok(index.and_then(|index| index.get(&self.0).cloned()))
    }
}

async fn sales_entity_index(loader: &BlockLoader) -> Result<HashMap<String, SalesEntity>, BlockError> {
    let sales = loader.clients().sales()?;
    let first = sales.list_entities(1, ENTITY_PAGE_SIZE).await?;
    let pages = match first.total {
        Some(total) => total.div_ceil(u64::from(ENTITY_PAGE_SIZE)).min(ENTITY_MAX_PAGES),
        None if first.has_next == Some(true) => ENTITY_MAX_PAGES,
        None => 1,
    };
    let rest = try_join_all((2..=pages).map(|page| sales.list_entities(page as u32, ENTITY_PAGE_SIZE))).await?;
    let entities = std::iter::once(first).chain(rest).flat_map(|page| page.items);
    Ok(entities
        .filter_map(|entity| Some((entity.unique_id.clone()?, entity)))
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

/// Page size of the email lookup: the filter is a substring match, so a few others may come.
const B2B_EMAIL_PAGE_SIZE: u32 = 100;

impl RecordKey for B2bEmailKey {
    type Record = B2bUser;
    const RESOURCE: Resource = Resource::B2bUserByEmail;

    fn cache_id(&self) -> String {
        self.0.clone()
    }

    async fn fetch(&self, loader: &BlockLoader) -> Result<Option<B2bUser>, BlockError> {
        let filter = B2bUserFilter {
            email: Some(self.0.clone()),
            ..B2bUserFilter::default()
        };
        let page = loader
            .clients()
            .b2b()?
            .list_users(&filter, B2B_EMAIL_PAGE_SIZE, 1)
            .await?;
        let found = page.items.into_iter().find(|user| {
            user.email
                .as_deref()
                .is_some_and(|email| email.trim().to_lowercase() == self.0)
        });
        if let Some(user) = &found {
            loader
                .prime([(B2bUserKey(user.id), Record::complete(user.clone()))])
                .await;
        }
        Ok(found)
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
