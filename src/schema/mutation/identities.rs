//! Identity-level writes: `updateIdentity` fans out to the 23blocks blocks that know the
//! identity.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result, SimpleObject};
use futures::future::join_all;

use super::{
    outcome::{BlockOutcome, OutcomeStatus, UserError},
    validate::{Checks, patch},
};
use crate::{
    blocks::{
        BlockClients, BlockError, assets::AssetsUserFields, sales::SalesUserFields, search::SearchIdentityFields,
    },
    loaders::{AssetsUserKey, SalesUserKey, SearchIdentityKey, Touched, forget},
    schema::{
        identity::{Block, Identity},
        load_one, loaders,
    },
};

/// Changes to an identity; each block that knows it receives the fields it keeps. An absent
/// field is left as it is; `null` clears it (sent as null) in every block that keeps it,
/// except `email`, which cannot be cleared.
#[derive(InputObject)]
pub struct UpdateIdentityInput {
    /// The shared unique id.
    pub id: ID,
    /// Email (Sales, Search, Assets); cannot be cleared.
    pub email: MaybeUndefined<String>,
    /// First name (Sales).
    pub first_name: MaybeUndefined<String>,
    /// Last name (Sales).
    pub last_name: MaybeUndefined<String>,
    /// Display name (Sales, Search `name`, Assets).
    pub display_name: MaybeUndefined<String>,
    /// Phone number (Sales, Search).
    pub phone: MaybeUndefined<String>,
    /// Username (Assets).
    pub username: MaybeUndefined<String>,
    /// Avatar URL (Search, Assets).
    pub avatar_url: MaybeUndefined<String>,
}

/// What `updateIdentity` did.
#[derive(SimpleObject, Default)]
pub struct UpdateIdentityPayload {
    /// The identity after the update.
    pub identity: Option<Identity>,
    /// One outcome per block that knows the identity and keeps a changed field.
    pub outcomes: Vec<BlockOutcome>,
    /// Input problems, and `NOT_FOUND` when no block knows the identity.
    pub user_errors: Vec<UserError>,
}

/// Runs `updateIdentity`.
pub async fn update_identity(ctx: &Context<'_>, input: UpdateIdentityInput) -> Result<UpdateIdentityPayload> {
    let mut checks = Checks::default();
    let id = checks.identity_id(&["input", "id"], &input.id);
    let email = checks.not_cleared(&["input", "email"], &input.email, "every block that keeps it needs one");
    let email = email.and_then(|email| checks.email(&["input", "email"], &email));
    let Some(id) = id.filter(|_| checks.passed()) else {
        return Ok(UpdateIdentityPayload {
            user_errors: checks.into_errors(),
            ..UpdateIdentityPayload::default()
        });
    };
    let loaders = loaders(ctx)?;
    // Which blocks know the identity (through the loaders: a query before this mutation in
    // the same request may have loaded them already).
    let (sales, search, assets) = futures::join!(
        load_one(
            loaders,
            SalesUserKey {
                id: id.clone(),
                complete: false
            }
        ),
        load_one(loaders, SearchIdentityKey(id.clone())),
        load_one(loaders, AssetsUserKey(id.clone())),
    );
    let clients = loaders.loader().clients();
    let mut updates = Vec::new();
    let mut outcomes = Vec::new();
    for (block, known) in [
        (Block::Sales, sales.map(|r| r.is_some())),
        (Block::Search, search.map(|r| r.is_some())),
        (Block::Assets, assets.map(|r| r.is_some())),
    ] {
        match known {
            Ok(true) if has_fields_for(block, &input) => updates.push(block),
            Ok(_) => {}
            Err(error) => outcomes.push(BlockOutcome::failed(block, &error)),
        }
    }
    if updates.is_empty() && outcomes.is_empty() {
        let error = UserError::new(
            &["input", "id"],
            "NOT_FOUND",
            "no block that keeps these fields knows this identity",
        );
        return Ok(UpdateIdentityPayload {
            user_errors: vec![error],
            ..UpdateIdentityPayload::default()
        });
    }
    let results = join_all(
        updates
            .iter()
            .map(|block| update_in(clients, &id, email.clone(), &input, *block)),
    )
    .await;
    for (block, result) in updates.into_iter().zip(results) {
        outcomes.push(match result {
            Ok(()) => BlockOutcome::ok(block, OutcomeStatus::Updated),
            Err(error) => BlockOutcome::failed(block, &error),
        });
    }
    forget(loaders, &Touched::Identity { id: id.clone() });
    Ok(UpdateIdentityPayload {
        identity: Some(Identity::new(id)),
        outcomes,
        user_errors: Vec::new(),
    })
}

fn has_fields_for(block: Block, input: &UpdateIdentityInput) -> bool {
    let given = |value: &MaybeUndefined<String>| !value.is_undefined();
    match block {
        Block::Sales => [
            &input.email,
            &input.first_name,
            &input.last_name,
            &input.display_name,
            &input.phone,
        ]
        .into_iter()
        .any(given),
        Block::Search => [&input.email, &input.display_name, &input.phone, &input.avatar_url]
            .into_iter()
            .any(given),
        Block::Assets => [&input.email, &input.username, &input.display_name, &input.avatar_url]
            .into_iter()
            .any(given),
        _ => false,
    }
}

async fn update_in(
    clients: &BlockClients,
    id: &str,
    email: Option<String>,
    input: &UpdateIdentityInput,
    block: Block,
) -> Result<(), BlockError> {
    let given = |value: &MaybeUndefined<String>| patch(value.clone());
    match block {
        Block::Sales => {
            let fields = SalesUserFields {
                email,
                first_name: given(&input.first_name),
                last_name: given(&input.last_name),
                display_name: given(&input.display_name),
                phone: given(&input.phone),
            };
            clients.sales()?.update_user(id, &fields).await.map(|_| ())
        }
        Block::Search => {
            let fields = SearchIdentityFields {
                email,
                name: given(&input.display_name),
                phone: given(&input.phone),
                avatar_url: given(&input.avatar_url),
            };
            clients.search()?.update_identity(id, &fields).await.map(|_| ())
        }
        Block::Assets => {
            let fields = AssetsUserFields {
                email,
                username: given(&input.username),
                display_name: given(&input.display_name),
                avatar_url: given(&input.avatar_url),
            };
            clients.assets()?.update_user(id, &fields).await.map(|_| ())
        }
        _ => Ok(()),
    }
}
