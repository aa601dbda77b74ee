//! Forgetting what a write touched, before the write's answer is sent: the shared cache
//! (every tenant, and every cached page of the affected lists) and this request's
//! DataLoader memo.

use super::{
    AssetsUserAssetsKey, AssetsUserEntitiesKey, AssetsUserKey, AssetsUserOwnershipKey, AssetsUsersKey, B2bEmailKey,
    B2bUserKey, B2bUsersPageKey, Loaders, OrganizationKey, OrganizationsPageKey, PersonKey, PersonsPageKey,
    SalesCustomerKey, SalesEntitiesPageKey, SalesEntityKey, SalesUserKey, SalesUsersPageKey, SearchIdentityKey,
};
use crate::cache::Resource;

/// A record a write changed.
#[derive(Debug, Clone)]
pub enum Touched {
    /// An identity in the 23blocks blocks (Sales user and customer, Search, Assets).
    Identity {
        /// The shared unique id.
        id: String,
    },
    /// A B2B user, the email lookups that may have matched it, and the users list.
    B2bUser {
        /// The B2B id, when known.
        id: Option<i64>,
        /// The user's email, when known.
        email: Option<String>,
    },
    /// A CRM person.
    Person {
        /// The person UUID.
        id: String,
    },
    /// Every cached persons list (a person was created whose id is not known).
    PersonsLists,
    /// Every cached person and persons list (an organization was deleted: the CRM cleared
    /// the organization of each of its persons).
    AllPersons,
    /// A CRM organization (and the persons lists, whose items name it).
    Organization {
        /// The organization UUID.
        id: String,
    },
    /// A Sales entity (the whole entity index is rebuilt on the next read), and the
    /// entities list.
    SalesEntity,
}

/// Forgets every cached answer `touched` may have changed (`loaders`: the request's
/// loaders, by reference or through a handle that derefs to them).
pub fn forget(loaders: impl std::ops::Deref<Target = Loaders>, touched: &Touched) {
    let cache = loaders.loader().cache();
    match touched {
        Touched::Identity { id } => {
            cache.invalidate_records(
                &[
                    Resource::SalesUser,
                    Resource::SalesCustomer,
                    Resource::SearchIdentity,
                    Resource::AssetsUser,
                    Resource::AssetsUserAssets,
                    Resource::AssetsUserEntities,
                    Resource::AssetsUserOwnership,
                ],
                id,
                &[Resource::SalesUsersPage, Resource::AssetsUsersList],
            );
            loaders.clear::<SalesUserKey>();
            loaders.clear::<SalesUsersPageKey>();
            loaders.clear::<SalesCustomerKey>();
            loaders.clear::<SearchIdentityKey>();
            loaders.clear::<AssetsUserKey>();
            loaders.clear::<AssetsUsersKey>();
            loaders.clear::<AssetsUserAssetsKey>();
            loaders.clear::<AssetsUserEntitiesKey>();
            loaders.clear::<AssetsUserOwnershipKey>();
        }
        Touched::B2bUser { id, email } => {
            let id = id.map(|id| id.to_string()).unwrap_or_default();
            cache.invalidate_record(Resource::B2bUser, &id, &[Resource::B2bUsersPage]);
            if let Some(email) = email {
                cache.invalidate_record(Resource::B2bUserByEmail, &email.trim().to_lowercase(), &[]);
            }
            loaders.clear::<B2bUserKey>();
            loaders.clear::<B2bUsersPageKey>();
            loaders.clear::<B2bEmailKey>();
        }
        Touched::Person { id } => {
            cache.invalidate_record(Resource::CrmPerson, id, &[Resource::CrmPersonsPage]);
            loaders.clear::<PersonKey>();
            loaders.clear::<PersonsPageKey>();
        }
        Touched::PersonsLists => {
            cache.invalidate_record(Resource::CrmPersonsPage, "", &[Resource::CrmPersonsPage]);
            loaders.clear::<PersonsPageKey>();
        }
        Touched::AllPersons => {
            cache.invalidate_record(
                Resource::CrmPerson,
                "",
                &[Resource::CrmPerson, Resource::CrmPersonsPage],
            );
            loaders.clear::<PersonKey>();
            loaders.clear::<PersonsPageKey>();
        }
        Touched::Organization { id } => {
            cache.invalidate_record(
                Resource::CrmOrganization,
                id,
                &[Resource::CrmOrganizationsPage, Resource::CrmPersonsPage],
            );
            loaders.clear::<OrganizationKey>();
            loaders.clear::<OrganizationsPageKey>();
            loaders.clear::<PersonsPageKey>();
        }
        Touched::SalesEntity => {
            cache.invalidate_record(
                Resource::SalesEntities,
                "all",
                &[Resource::SalesEntities, Resource::SalesEntitiesPage],
            );
            loaders.clear::<SalesEntityKey>();
            loaders.clear::<SalesEntitiesPageKey>();
        }
    }
}
