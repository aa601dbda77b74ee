//! Batched index reads for one GraphQL request: a list of 100 persons asking for their
//! identity costs one query, not 100. Nothing is memoized across the request, so a
//! mutation's payload always reads what the mutation wrote.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader, NoCache};

use super::{Link, LinkBlock, LinkError, LinkIndex};

/// The per-request loader handle over the index.
pub type LinkLoaders = DataLoader<LinkLoader, NoCache>;

/// Batches index reads; holds the index for writes too.
pub struct LinkLoader {
    index: LinkIndex,
}

impl LinkLoader {
    /// A request's loader over `index`.
    pub fn for_request(index: &LinkIndex) -> LinkLoaders {
        DataLoader::new(Self { index: index.clone() }, tokio::spawn)
    }

    /// The index (mutations write through it).
    pub fn index(&self) -> &LinkIndex {
        &self.index
    }
}

/// The link holding a record: `(block, external id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkHolderKey {
    /// The block.
    pub block: LinkBlock,
    /// The record's id in it.
    pub external_id: String,
}

/// An identity's links (an identity without links has no value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityLinksKey(pub String);

/// The survivor a CRM person was merged into (a person never merged has no value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SurvivorKey(pub String);

impl Loader<LinkHolderKey> for LinkLoader {
    type Value = Link;
    type Error = Arc<LinkError>;

    async fn load(&self, keys: &[LinkHolderKey]) -> Result<HashMap<LinkHolderKey, Link>, Self::Error> {
        let mut found = HashMap::new();
        for block in [LinkBlock::Crm, LinkBlock::B2b] {
            let ids: Vec<String> = keys
                .iter()
                .filter(|key| key.block == block)
                .map(|key| key.external_id.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
            for link in self.index.holders(block, &ids).await? {
                let key = LinkHolderKey {
                    block,
                    external_id: link.external_id.clone(),
                };
                found.insert(key, link);
            }
        }
        Ok(found)
    }
}

impl Loader<IdentityLinksKey> for LinkLoader {
    type Value = Vec<Link>;
    type Error = Arc<LinkError>;

    async fn load(&self, keys: &[IdentityLinksKey]) -> Result<HashMap<IdentityLinksKey, Vec<Link>>, Self::Error> {
        let ids: Vec<String> = keys.iter().map(|key| key.0.clone()).collect();
        let mut found: HashMap<IdentityLinksKey, Vec<Link>> = HashMap::new();
        for link in self.index.links_of_many(&ids).await? {
            found
                .entry(IdentityLinksKey(link.identity_id.clone()))
                .or_default()
                .push(link);
        }
        Ok(found)
    }
}

impl Loader<SurvivorKey> for LinkLoader {
    type Value = String;
    type Error = Arc<LinkError>;

    async fn load(&self, keys: &[SurvivorKey]) -> Result<HashMap<SurvivorKey, String>, Self::Error> {
        let ids: Vec<String> = keys.iter().map(|key| key.0.clone()).collect();
        Ok(self
            .index
            .survivors_of(&ids)
            .await?
            .into_iter()
            .map(|merge| (SurvivorKey(merge.person_id), merge.survivor_id))
            .collect())
    }
}
