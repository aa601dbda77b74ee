//! `Identity`: one human across the blocks, keyed by the shared 23blocks `unique_id`.
//! Assembled lazily: each field loads only the blocks it needs, through the loaders.

use async_graphql::{Context, Enum, ID, Object, Result, futures_util::future::BoxFuture};
use futures::{FutureExt, future::join_all};

use super::{
    FieldLoaders,
    block_types::{AssetsUser, B2bUser, SalesCustomer, SalesUser, SearchIdentity},
    crm::Person,
    errors::{IntoGraphql, SchemaError, report},
    identity_links::{self, IdentityLink},
    load_one, loaders,
    pagination::connection_objects,
};
use crate::{
    blocks::BlockError,
    loaders::{AssetsUserKey, B2bEmailKey, SalesCustomerKey, SalesUserKey, SearchIdentityKey},
};

/// A block an identity can be registered in.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Block {
    /// Sales users.
    Sales,
    /// Sales customers.
    Customer,
    /// Search identities.
    Search,
    /// Assets users.
    Assets,
    /// B2B commerce users.
    #[graphql(name = "B2B")]
    B2b,
    /// CRM persons.
    Crm,
}

/// One human across blocks, identified by the shared 23blocks `unique_id`. Block fields
/// are null where that block does not know the identity.
pub struct Identity {
    id: String,
}

connection_objects!(
    Identity,
    "IdentityConnection",
    "IdentityEdge",
    "A page of identities with Relay cursors.",
    "An identity with its cursor."
);

/// Whether `first_known` reports a block that failed before the one that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EarlierFailures {
    /// Reported beside the value (the field that shows the value).
    Report,
    /// Not reported (an internal use; the shown field reports it).
    Quiet,
}

type Candidate<'a> = BoxFuture<'a, Result<Option<String>, SchemaError>>;

impl Identity {
    /// The identity with this unique id (not checked against any block).
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    fn sales_key(&self) -> SalesUserKey {
        SalesUserKey {
            id: self.id.clone(),
            complete: false,
        }
    }

    /// A Sales field, from the detail answer when the cached record is a list item.
    fn sales_candidate<'a>(
        &'a self,
        ctx: &'a Context<'_>,
        pick: fn(&crate::blocks::sales::SalesUser) -> Option<String>,
    ) -> Candidate<'a> {
        async move {
            let loaders = loaders(ctx).map_err(|_| SchemaError::Internal)?;
            let Some(record) = load_one(loaders, self.sales_key()).await? else {
                return Ok(None);
            };
            if let Some(value) = pick(&record.data) {
                return Ok(Some(value));
            }
            if record.complete {
                return Ok(None);
            }
            let detail = load_one(
                loaders,
                SalesUserKey {
                    id: self.id.clone(),
                    complete: true,
                },
            )
            .await?;
            Ok(detail.and_then(|record| pick(&record.data)))
        }
        .boxed()
    }

    fn search_candidate<'a>(
        &'a self,
        ctx: &'a Context<'_>,
        pick: fn(&crate::blocks::search::SearchIdentity) -> Option<String>,
    ) -> Candidate<'a> {
        async move {
            let loaders = loaders(ctx).map_err(|_| SchemaError::Internal)?;
            let record = load_one(loaders, SearchIdentityKey(self.id.clone())).await?;
            Ok(record.and_then(|record| pick(&record.data)))
        }
        .boxed()
    }

    fn assets_candidate<'a>(
        &'a self,
        ctx: &'a Context<'_>,
        pick: fn(&crate::blocks::assets::AssetsUser) -> Option<String>,
    ) -> Candidate<'a> {
        async move {
            let loaders = loaders(ctx).map_err(|_| SchemaError::Internal)?;
            let record = load_one(loaders, AssetsUserKey(self.id.clone())).await?;
            Ok(record.and_then(|record| pick(&record.data)))
        }
        .boxed()
    }

    /// The first value known, in the order given (Sales, Search, Assets). Candidates load
    /// concurrently. A block that failed before the one that answered is reported as an
    /// error beside the value when `earlier` says so (the field that shows the value does;
    /// internal uses do not, so one failure is one error); when none answered, the first
    /// failure is the error.
    async fn first_known(
        ctx: &Context<'_>,
        candidates: Vec<Candidate<'_>>,
        earlier: EarlierFailures,
    ) -> Result<Option<String>> {
        let mut failure = None;
        for outcome in join_all(candidates).await {
            match outcome {
                Ok(Some(value)) => {
                    if let (Some(error), EarlierFailures::Report) = (failure, earlier) {
                        report(ctx, error);
                    }
                    return Ok(Some(value));
                }
                Ok(None) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        match failure {
            Some(error) => Err::<Option<String>, SchemaError>(error).gql(),
            None => Ok(None),
        }
    }

    /// The first email known, in order Sales, Search, Assets.
    pub(crate) async fn email_value(&self, ctx: &Context<'_>, earlier: EarlierFailures) -> Result<Option<String>> {
        Self::first_known(
            ctx,
            vec![
                self.sales_candidate(ctx, |u| u.email.clone()),
                self.search_candidate(ctx, |s| s.email.clone()),
                self.assets_candidate(ctx, |a| a.email.clone()),
            ],
            earlier,
        )
        .await
    }

    /// Whether any of the 23blocks user blocks the selection needs knows this id. Loads go
    /// through the request's loaders, so the fields resolved afterwards cost nothing more.
    /// A failing block counts as "may know it" so its error surfaces on the field.
    pub(crate) async fn known_to_selected_blocks(&self, ctx: &Context<'_>, loaders: FieldLoaders<'_>) -> bool {
        let selection = ctx.look_ahead();
        let asks = |name: &str| selection.field(name).exists();
        let shared = ["email", "displayName", "phone", "avatarUrl", "b2bUser", "registeredIn"]
            .iter()
            .any(|name| asks(name));
        let block_specific = ["sales", "customer", "search", "assets"].iter().any(|name| asks(name));
        let everything = shared || !block_specific;
        let mut checks: Vec<BoxFuture<'_, Result<bool, BlockError>>> = Vec::new();
        if everything || asks("sales") {
            checks.push(async { load_one(loaders, self.sales_key()).await.map(|r| r.is_some()) }.boxed());
        }
        if everything || asks("search") {
            checks.push(
                async {
                    load_one(loaders, SearchIdentityKey(self.id.clone()))
                        .await
                        .map(|r| r.is_some())
                }
                .boxed(),
            );
        }
        if everything || asks("assets") {
            checks.push(
                async {
                    load_one(loaders, AssetsUserKey(self.id.clone()))
                        .await
                        .map(|r| r.is_some())
                }
                .boxed(),
            );
        }
        if asks("customer") {
            checks.push(
                async {
                    load_one(loaders, SalesCustomerKey(self.id.clone()))
                        .await
                        .map(|r| r.is_some())
                }
                .boxed(),
            );
        }
        if join_all(checks).await.into_iter().any(|known| known.unwrap_or(true)) {
            return true;
        }
        // An identity the index links (to a CRM person, a B2B user) is known too.
        identity_links::identity_links(ctx, &self.id)
            .await
            .map_or(true, |links| !links.is_empty())
    }
}

/// `first last` from the parts that are known and not blank; `None` when neither is.
pub(crate) fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// One human across blocks, identified by the shared 23blocks `unique_id`. Block fields
/// are null where that block does not know the identity.
#[Object]
impl Identity {
    /// The shared 23blocks unique id.
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }

    /// The first email known, in order Sales, Search, Assets.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.email_value(ctx, EarlierFailures::Report).await
    }

    /// The first display name known, in order Sales, Search (`name`), Assets. When none
    /// of them holds one, derived from the Sales user's first and last name (`Ada
    /// Lovelace`; either alone when only one is known); null when those are unknown too.
    async fn display_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Self::first_known(
            ctx,
            vec![
                self.sales_candidate(ctx, |u| u.display_name.clone()),
                self.search_candidate(ctx, |s| s.name.clone()),
                self.assets_candidate(ctx, |a| a.display_name.clone()),
                self.sales_candidate(ctx, |u| full_name(u.first_name.as_deref(), u.last_name.as_deref())),
            ],
            EarlierFailures::Report,
        )
        .await
    }

    /// The first phone number known, in order Sales, Search.
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Self::first_known(
            ctx,
            vec![
                self.sales_candidate(ctx, |u| u.phone.clone()),
                self.search_candidate(ctx, |s| s.phone.clone()),
            ],
            EarlierFailures::Report,
        )
        .await
    }

    /// The first avatar URL known, in order Search, Assets (Sales keeps none).
    async fn avatar_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Self::first_known(
            ctx,
            vec![
                self.search_candidate(ctx, |s| s.avatar_url.clone()),
                self.assets_candidate(ctx, |a| a.avatar_url.clone()),
            ],
            EarlierFailures::Report,
        )
        .await
    }

    /// The identity as a Sales user.
    async fn sales(&self, ctx: &Context<'_>) -> Result<Option<SalesUser>> {
        let record = load_one(loaders(ctx)?, self.sales_key()).await.gql()?;
        Ok(record.map(|record| SalesUser::new(self.id.clone(), record)))
    }

    /// The identity as a Sales customer.
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<SalesCustomer>> {
        let record = load_one(loaders(ctx)?, SalesCustomerKey(self.id.clone())).await.gql()?;
        Ok(record.map(|r| SalesCustomer::new(self.id.clone(), &r.data)))
    }

    /// The identity in the Search block.
    async fn search(&self, ctx: &Context<'_>) -> Result<Option<SearchIdentity>> {
        let record = load_one(loaders(ctx)?, SearchIdentityKey(self.id.clone()))
            .await
            .gql()?;
        Ok(record.map(|r| SearchIdentity::new(self.id.clone(), &r.data)))
    }

    /// The identity as an Assets user, with assets, entities and ownership.
    async fn assets(&self, ctx: &Context<'_>) -> Result<Option<AssetsUser>> {
        let record = load_one(loaders(ctx)?, AssetsUserKey(self.id.clone())).await.gql()?;
        Ok(record.map(|r| AssetsUser::new(self.id.clone(), &r.data)))
    }

    /// The B2B user linked to this identity in the identity link index; else the B2B user
    /// whose email matches this identity's email, case-insensitively.
    #[graphql(name = "b2bUser")]
    async fn b2b_user(&self, ctx: &Context<'_>) -> Result<Option<B2bUser>> {
        if let Some(linked) = identity_links::linked_b2b_user(ctx, &self.id).await? {
            return Ok(Some(linked));
        }
        let Some(email) = self.email_value(ctx, EarlierFailures::Quiet).await? else {
            return Ok(None);
        };
        let record = load_one(loaders(ctx)?, B2bEmailKey::new(&email)).await.gql()?;
        Ok(record.map(|r| B2bUser::from(&r.data)))
    }

    /// The blocks that know this identity (Sales, Customer, Search, Assets, B2B by email or
    /// by link, and CRM when the identity link index links a person). A block that fails
    /// is left out and reported as an error beside the list.
    async fn registered_in(&self, ctx: &Context<'_>) -> Result<Vec<Block>> {
        let loaders = loaders(ctx)?;
        let (sales, customer, search, assets) = futures::join!(
            load_one(loaders, self.sales_key()),
            load_one(loaders, SalesCustomerKey(self.id.clone())),
            load_one(loaders, SearchIdentityKey(self.id.clone())),
            load_one(loaders, AssetsUserKey(self.id.clone())),
        );
        // The email for the B2B match comes from the answers already loaded.
        let email = [
            sales.as_ref().ok().and_then(|r| r.as_ref()?.data.email.clone()),
            search.as_ref().ok().and_then(|r| r.as_ref()?.data.email.clone()),
            assets.as_ref().ok().and_then(|r| r.as_ref()?.data.email.clone()),
        ]
        .into_iter()
        .flatten()
        .next();
        let b2b = match email {
            Some(email) => Some(load_one(loaders, B2bEmailKey::new(&email)).await),
            None => None,
        };
        let mut blocks = Vec::new();
        let candidates = [
            (Block::Sales, sales.map(|r| r.is_some())),
            (Block::Customer, customer.map(|r| r.is_some())),
            (Block::Search, search.map(|r| r.is_some())),
            (Block::Assets, assets.map(|r| r.is_some())),
        ]
        .into_iter()
        .chain(b2b.map(|found| (Block::B2b, found.map(|r| r.is_some()))));
        for (block, known) in candidates {
            match known {
                Ok(true) => blocks.push(block),
                Ok(false) => {}
                Err(error) => report(ctx, SchemaError::Block(error)),
            }
        }
        match identity_links::linked_blocks(ctx, &self.id).await {
            Ok(linked) => {
                let missing: Vec<Block> = linked.into_iter().filter(|block| !blocks.contains(block)).collect();
                blocks.extend(missing);
            }
            Err(error) => ctx.add_error(ctx.set_error_path(error.into_server_error(ctx.item.pos))),
        }
        Ok(blocks)
    }

    /// The CRM person linked to this identity in the identity link index (written by
    /// `registerIdentity`, `linkIdentity`, `mergePersons` and `blocks-gateway reindex`);
    /// after a merge, always the surviving person. Null when no person is linked.
    async fn person(&self, ctx: &Context<'_>) -> Result<Option<Person>> {
        identity_links::linked_person(ctx, &self.id).await
    }

    /// This identity's links in the identity link index (CRM persons, B2B users), by
    /// block, oldest first.
    async fn links(&self, ctx: &Context<'_>) -> Result<Vec<IdentityLink>> {
        let links = identity_links::identity_links(ctx, &self.id).await?;
        Ok(links.into_iter().map(IdentityLink).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::full_name;

    #[test]
    fn a_full_name_joins_the_known_parts() {
        assert_eq!(
            full_name(Some("Ada"), Some("Lovelace")).as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(full_name(Some(" Ada "), None).as_deref(), Some("Ada"));
        assert_eq!(full_name(Some(""), Some("Lovelace")).as_deref(), Some("Lovelace"));
        assert_eq!(full_name(Some("  "), None), None);
        assert_eq!(full_name(None, None), None);
    }
}
