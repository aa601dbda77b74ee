//! Reads of the identity link index: the `IdentityLink` type and the lookups behind
//! `Identity.person`, `Identity.links`, `Identity.b2bUser` (when linked explicitly),
//! `Person.identity`, `Person.mergedInto` and `Query.identityByEmail`. Lookups go through
//! the request's [`LinkLoaders`], which batch them; a page of persons asking for their
//! identities reads them all in one query when it arrives ([`identities_holding_persons`]).

use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, Object, Result};

use super::{
    block_types::B2bUser,
    crm::Person,
    errors::{IntoGraphql, SchemaError},
    identity::{Block, Identity},
    load_one, loaders,
    timestamp::Timestamp,
};
use crate::{
    link_index::{
        IdentityLinksKey, Link, LinkBlock, LinkHolderKey, LinkIndex, LinkLoaders, LinkSource, SurvivorKey,
        canonical_person_id,
    },
    loaders::{B2bEmailKey, PersonKey},
};

/// Longest email accepted by `identityByEmail` (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

/// How a link in the identity link index was made.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityLinkSource {
    /// Written by `registerIdentity` when it created the record for this identity.
    Registered,
    /// Written by the `linkIdentity` mutation (or restored from an export of such a link).
    Explicit,
    /// Moved onto the surviving person by `mergePersons`.
    Merged,
    /// Proven from the blocks by `blocks-gateway reindex` (a CRM person's `unique_id`, a
    /// B2B user's email).
    Reindex,
}

impl From<LinkSource> for IdentityLinkSource {
    fn from(source: LinkSource) -> Self {
        match source {
            LinkSource::Registered => Self::Registered,
            LinkSource::Explicit => Self::Explicit,
            LinkSource::Merged => Self::Merged,
            LinkSource::Reindex => Self::Reindex,
        }
    }
}

/// The schema's block for a link's block.
pub fn block_of(block: LinkBlock) -> Block {
    match block {
        LinkBlock::Crm => Block::Crm,
        LinkBlock::B2b => Block::B2b,
    }
}

/// One link of an identity to a record in another block, from the identity link index.
pub struct IdentityLink(pub Link);

/// One link of an identity to a record in another block (a CRM person or a B2B user),
/// kept in the gateway's identity link index.
#[Object]
impl IdentityLink {
    /// The key for client caches: the block and the record's id in it (`CRM:<person
    /// UUID>`, `B2B:<user id>`), the index's own key for a link (a record belongs to at
    /// most one identity).
    async fn id(&self) -> ID {
        ID(format!(
            "{}:{}",
            self.0.block.as_str().to_ascii_uppercase(),
            self.0.external_id
        ))
    }

    /// The block holding the record: `CRM` or `B2B`.
    async fn block(&self) -> Block {
        block_of(self.0.block)
    }

    /// The record's id in that block: a CRM person UUID or a B2B user id.
    async fn external_id(&self) -> ID {
        ID(self.0.external_id.clone())
    }

    /// How the link was made.
    async fn source(&self) -> IdentityLinkSource {
        self.0.source.into()
    }

    /// When the link was made.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
}

/// The request's index loaders.
pub fn link_loaders<'a>(ctx: &Context<'a>) -> Result<&'a LinkLoaders> {
    ctx.data::<LinkLoaders>().map_err(|_| SchemaError::Internal).gql()
}

/// The index itself (mutations write through it).
pub fn link_index<'a>(ctx: &Context<'a>) -> Result<&'a LinkIndex> {
    Ok(link_loaders(ctx)?.loader().index())
}

/// An identity's links, by block, oldest first.
pub async fn identity_links(ctx: &Context<'_>, identity_id: &str) -> Result<Vec<Link>> {
    let links = link_loaders(ctx)?
        .load_one(IdentityLinksKey(identity_id.to_owned()))
        .await
        .gql()?;
    Ok(links.unwrap_or_default())
}

/// The external id of an identity's first link into `block` (the oldest).
pub async fn linked_record(ctx: &Context<'_>, identity_id: &str, block: LinkBlock) -> Result<Option<String>> {
    let links = identity_links(ctx, identity_id).await?;
    Ok(links
        .into_iter()
        .find(|link| link.block == block)
        .map(|link| link.external_id))
}

/// The identities holding many CRM persons, in one index query: what a page of persons
/// asking for their identities reads before any of them is resolved, so that their
/// identities' block reads start at once instead of after a batching delay. Keyed by
/// canonical person id; a person missing from the map is not linked. `None` when the index
/// could not be read: each person then asks on its own and reports its own error.
pub async fn identities_holding_persons<'p>(
    ctx: &Context<'_>,
    person_ids: impl Iterator<Item = &'p str>,
) -> Option<HashMap<String, String>> {
    let ids: Vec<String> = person_ids.map(canonical_person_id).collect();
    let links = match link_index(ctx).ok()?.holders(LinkBlock::Crm, &ids).await {
        Ok(links) => links,
        Err(error) => {
            tracing::warn!(%error, "could not read the identity links of a page of persons");
            return None;
        }
    };
    Some(
        links
            .into_iter()
            .map(|link| (link.external_id, link.identity_id))
            .collect(),
    )
}

/// The identity holding a record, per the index.
pub async fn identity_holding(ctx: &Context<'_>, block: LinkBlock, external_id: &str) -> Result<Option<String>> {
    let key = LinkHolderKey {
        block,
        external_id: external_id.to_owned(),
    };
    let holder = link_loaders(ctx)?.load_one(key).await.gql()?;
    Ok(holder.map(|link| link.identity_id))
}

/// The person a CRM person was merged into, per the index.
pub async fn survivor_of(ctx: &Context<'_>, person_id: &str) -> Result<Option<String>> {
    link_loaders(ctx)?
        .load_one(SurvivorKey(person_id.to_owned()))
        .await
        .gql()
}

/// A CRM person through the request's loaders; null when the CRM does not know it.
pub async fn load_person(ctx: &Context<'_>, person_id: &str) -> Result<Option<Person>> {
    let record = load_one(loaders(ctx)?, PersonKey(person_id.to_owned())).await.gql()?;
    Ok(record.map(Person::new))
}

/// The CRM person linked to an identity; after a merge, the survivor.
pub async fn linked_person(ctx: &Context<'_>, identity_id: &str) -> Result<Option<Person>> {
    let Some(person_id) = linked_record(ctx, identity_id, LinkBlock::Crm).await? else {
        return Ok(None);
    };
    let person_id = survivor_of(ctx, &person_id).await?.unwrap_or(person_id);
    load_person(ctx, &person_id).await
}

/// The B2B user explicitly linked to an identity, when the B2B block still knows it.
pub async fn linked_b2b_user(ctx: &Context<'_>, identity_id: &str) -> Result<Option<B2bUser>> {
    let Some(user_id) = linked_record(ctx, identity_id, LinkBlock::B2b).await? else {
        return Ok(None);
    };
    let Ok(user_id) = user_id.parse::<i64>() else {
        return Ok(None);
    };
    let record = load_one(loaders(ctx)?, crate::loaders::B2bUserKey(user_id))
        .await
        .gql()?;
    Ok(record.map(|r| B2bUser::from(&r.data)))
}

/// The blocks an identity's links reach (CRM, B2B), in that order.
pub async fn linked_blocks(ctx: &Context<'_>, identity_id: &str) -> Result<Vec<Block>> {
    let links = identity_links(ctx, identity_id).await?;
    Ok([LinkBlock::B2b, LinkBlock::Crm]
        .into_iter()
        .filter(|block| links.iter().any(|link| link.block == *block))
        .map(block_of)
        .collect())
}

/// `Query.identityByEmail`: the identity recorded with this email in the index; else the
/// identity the index links to the B2B user with this email; else null. An email that
/// matches nothing in the index is never guessed into an identity, and an email recorded
/// for several identities is a `CONFLICT`.
pub async fn identity_by_email(ctx: &Context<'_>, email: &str) -> Result<Option<Identity>> {
    let email = email.trim();
    if email.is_empty() || email.len() > MAX_EMAIL_LEN || email.chars().any(char::is_control) {
        return Err(SchemaError::bad_input(format!(
            "`email` must be 1 to {MAX_EMAIL_LEN} characters without control characters"
        )))
        .gql();
    }
    let recorded = link_index(ctx)?.identities_by_email(email).await.gql()?;
    match recorded.as_slice() {
        [identity_id] => return Ok(Some(Identity::new(identity_id.clone()))),
        [] => {}
        several => {
            return Err(SchemaError::Ambiguous {
                message: format!("{} identities were registered with this email", several.len()),
            })
            .gql();
        }
    }
    let Some(user) = load_one(loaders(ctx)?, B2bEmailKey::new(email)).await.gql()? else {
        return Ok(None);
    };
    let holder = identity_holding(ctx, LinkBlock::B2b, &user.data.id.to_string()).await?;
    Ok(holder.map(Identity::new))
}
