//! The query root.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};

use super::{
    block_types::{AssetsUser, B2bUser, B2bUserFilter, KeyedItem, SalesEntity, report_unkeyed},
    crm::{
        Organization, OrganizationFilter, Person, PersonFilter, organization_filter, organizations_connection,
        parse_uuid, person_filter, persons_connection,
    },
    errors::{IntoGraphql, SchemaError},
    identity::Identity,
    identity_links, load_one, loaders,
    pagination::{Fetched, PagedConnection, Window, fetch_whole_list_window, fetch_window, paged},
};
use crate::{
    blocks::BlockName,
    cache::Record,
    loaders::{
        AssetsUsersKey, B2bUserKey, B2bUsersPageKey, OrganizationKey, PersonKey, SalesEntitiesPageKey,
        SalesUsersPageKey,
    },
};

/// Longest identity id accepted (the CRM's `unique_id` holds at most 128 characters).
const MAX_IDENTITY_ID_LEN: usize = 128;

/// Read access to identities, persons, organizations and each block's own lists.
pub struct QueryRoot;

/// Read access to identities, persons, organizations and each block's own lists.
#[Object(name = "Query")]
impl QueryRoot {
    /// An identity by its shared 23blocks unique id; null when none of the blocks the
    /// selection needs knows it.
    async fn identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The shared 23blocks unique id.")] id: ID,
    ) -> Result<Option<Identity>> {
        let id = identity_id(&id).gql()?;
        let identity = Identity::new(id);
        Ok(identity
            .known_to_selected_blocks(ctx, loaders(ctx)?)
            .await
            .then_some(identity))
    }

    /// The identity registered or linked with this email, case-insensitively, from the
    /// identity link index; else the identity the index links to the B2B user with this
    /// email. Null when the index knows neither: an email is never guessed into an
    /// identity. `CONFLICT` when several identities were registered with it.
    async fn identity_by_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The email, in any case.")] email: String,
    ) -> Result<Option<Identity>> {
        identity_links::identity_by_email(ctx, &email).await
    }

    /// The identity directory: the Sales users list, in the block's order.
    #[graphql(complexity = "crate::limits::connection_complexity(first, child_complexity)")]
    async fn identities(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many identities to return (0 to 100).")] first: i32,
        #[graphql(desc = "Return identities after this cursor.")] after: Option<String>,
    ) -> Result<PagedConnection<Identity>> {
        let window = Window::parse("identities", first, after.as_deref()).gql()?;
        let fetched = fetch_window(ctx, window, |page, records| SalesUsersPageKey { page, records }).await?;
        Ok(paged("identities", window, fetched, |record| {
            Identity::new(record.data.unique_id.clone().unwrap_or_default())
        }))
    }

    /// A CRM person by UUID; null when the CRM does not know it.
    async fn person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The CRM person UUID.")] id: ID,
    ) -> Result<Option<Person>> {
        let id = parse_uuid(&id, "id").gql()?;
        let record = load_one(loaders(ctx)?, PersonKey(id)).await.gql()?;
        Ok(record.map(Person::new))
    }

    /// CRM persons, optionally filtered.
    #[graphql(complexity = "crate::limits::connection_complexity(first, child_complexity)")]
    async fn persons(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many persons to return (0 to 100).")] first: i32,
        #[graphql(desc = "Return persons after this cursor.")] after: Option<String>,
        #[graphql(desc = "Filters; all given ones must match.")] filter: Option<PersonFilter>,
    ) -> Result<PagedConnection<Person>> {
        persons_connection(ctx, "persons", person_filter(filter)?, first, after).await
    }

    /// A CRM organization by UUID; null when the CRM does not know it.
    async fn organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The CRM organization UUID.")] id: ID,
    ) -> Result<Option<Organization>> {
        let id = parse_uuid(&id, "id").gql()?;
        let record = load_one(loaders(ctx)?, OrganizationKey(id)).await.gql()?;
        Ok(record.map(Organization::new))
    }

    /// CRM organizations, optionally filtered.
    #[graphql(complexity = "crate::limits::connection_complexity(first, child_complexity)")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many organizations to return (0 to 100).")] first: i32,
        #[graphql(desc = "Return organizations after this cursor.")] after: Option<String>,
        #[graphql(desc = "Filters; all given ones must match.")] filter: Option<OrganizationFilter>,
    ) -> Result<PagedConnection<Organization>> {
        organizations_connection(ctx, organization_filter(filter), first, after).await
    }

    /// A B2B user by id; null when the B2B block does not know it.
    #[graphql(name = "b2bUser")]
    async fn b2b_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The B2B user id.")] id: i32,
    ) -> Result<Option<B2bUser>> {
        if id <= 0 {
            return Err(SchemaError::bad_input(format!(
                "`id` must be a positive integer, got {id}"
            )))
            .gql();
        }
        let record = load_one(loaders(ctx)?, B2bUserKey(i64::from(id))).await.gql()?;
        Ok(record.map(|r| B2bUser::from(&r.data)))
    }

    /// B2B users, optionally filtered, in the block's order, with the block's `totalCount`.
    /// The B2B block lists only users that have a Commerce `remoteId` (see
    /// `assignB2BRemoteId`); `b2bUser(id)` reads any user.
    #[graphql(
        name = "b2bUsers",
        complexity = "crate::limits::connection_complexity(first, child_complexity)"
    )]
    async fn b2b_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many users to return (0 to 100).")] first: i32,
        #[graphql(desc = "Return users after this cursor.")] after: Option<String>,
        #[graphql(desc = "Filters; all given ones must match.")] filter: Option<B2bUserFilter>,
    ) -> Result<PagedConnection<B2bUser>> {
        let filter = filter.unwrap_or_default().to_wire().gql()?;
        let window = Window::parse("b2bUsers", first, after.as_deref()).gql()?;
        let fetched = fetch_window(ctx, window, |page, limit| B2bUsersPageKey {
            filter: filter.clone(),
            page,
            limit,
        })
        .await?;
        Ok(paged("b2bUsers", window, fetched, |record| B2bUser::from(&record.data)))
    }

    /// The Sales entities list, in the block's order. (An organization's own entity is
    /// `Organization.salesEntity`.)
    #[graphql(complexity = "crate::limits::connection_complexity(first, child_complexity)")]
    async fn sales_entities(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many entities to return (0 to 100).")] first: i32,
        #[graphql(desc = "Return entities after this cursor.")] after: Option<String>,
    ) -> Result<PagedConnection<SalesEntity>> {
        let window = Window::parse("salesEntities", first, after.as_deref()).gql()?;
        let fetched = fetch_window(ctx, window, |page, records| SalesEntitiesPageKey { page, records }).await?;
        Ok(keyed_page(
            ctx,
            "salesEntities",
            BlockName::Sales,
            window,
            fetched,
            SalesEntity::new,
        ))
    }

    /// The Assets users list, in the block's order. The Assets block documents no
    /// pagination: the gateway reads the whole list (every page, when a deployment pages it
    /// anyway), caches it briefly and pages it here; a list the block serves only in part is
    /// an error, never a shorter list.
    #[graphql(complexity = "crate::limits::connection_complexity(first, child_complexity)")]
    async fn assets_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many users to return (0 to 100).")] first: i32,
        #[graphql(desc = "Return users after this cursor.")] after: Option<String>,
    ) -> Result<PagedConnection<AssetsUser>> {
        let window = Window::parse("assetsUsers", first, after.as_deref()).gql()?;
        let fetched = fetch_whole_list_window(ctx, window, AssetsUsersKey).await?;
        Ok(keyed_page(
            ctx,
            "assetsUsers",
            BlockName::Assets,
            window,
            fetched,
            AssetsUser::new,
        ))
    }
}

/// A page of a block's list whose nodes are keyed by their record's `unique_id`: records
/// without one are left out and reported on the list field (see `block_types`).
fn keyed_page<W: KeyedItem, N>(
    ctx: &Context<'_>,
    name: &'static str,
    block: BlockName,
    window: Window,
    fetched: Fetched<Arc<Record<W>>>,
    build: fn(String, &W) -> N,
) -> PagedConnection<N> {
    let (page, left_out) = paged(name, window, fetched, |record| {
        let id = record.data.key()?.to_owned();
        Some(build(id, &record.data))
    })
    .without_missing();
    report_unkeyed(ctx, block, left_out);
    page
}

/// Validates an identity id: non-blank, bounded, no control characters.
pub fn identity_id(id: &str) -> Result<String, SchemaError> {
    let id = id.trim();
    if id.is_empty() || id.len() > MAX_IDENTITY_ID_LEN || id.chars().any(char::is_control) {
        return Err(SchemaError::bad_input(format!(
            "`id` must be 1 to {MAX_IDENTITY_ID_LEN} characters without control characters"
        )));
    }
    Ok(id.to_owned())
}
