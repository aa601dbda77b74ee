//! Identity-level writes: `updateIdentity` (fans out to the 23blocks blocks that know the
//! identity) and `setB2BUserActive`.

use async_graphql::{Context, ID, InputObject, Result, SimpleObject};
use futures::future::join_all;

use super::{
    outcome::{BlockOutcome, OutcomeStatus, UserError},
    validate::Checks,
};
use crate::{
    blocks::{
        BlockClients, BlockError, assets::AssetsUserFields, sales::SalesUserFields, search::SearchIdentityFields,
    },
    loaders::{AssetsUserKey, SalesUserKey, SearchIdentityKey, Touched, forget},
    schema::{
        block_types::B2bUser,
        errors::IntoGraphql,
        identity::{Block, Identity},
        load_one, loaders,
    },
};

/// Changes to an identity; each block that knows it receives the fields it keeps.
#[derive(InputObject)]
pub struct UpdateIdentityInput {
    /// The shared unique id.
    pub id: ID,
    /// Email (Sales, Search, Assets).
    pub email: Option<String>,
    /// First name (Sales).
    pub first_name: Option<String>,
    /// Last name (Sales).
    pub last_name: Option<String>,
    /// Display name (Sales, Search `name`, Assets).
    pub display_name: Option<String>,
    /// Phone number (Sales, Search).
    pub phone: Option<String>,
    /// Username (Assets).
    pub username: Option<String>,
    /// Avatar URL (Search, Assets).
    pub avatar_url: Option<String>,
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
    if let Some(email) = &input.email {
        checks.email(&["input", "email"], email);
    }
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
    let results = join_all(updates.iter().map(|block| update_in(clients, &id, &input, *block))).await;
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
    let given = |value: &Option<String>| value.is_some();
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
    input: &UpdateIdentityInput,
    block: Block,
) -> Result<(), BlockError> {
    let email = input.email.as_ref().map(|e| e.trim().to_owned());
    match block {
        Block::Sales => {
            let fields = SalesUserFields {
                email,
                first_name: input.first_name.clone(),
                last_name: input.last_name.clone(),
                display_name: input.display_name.clone(),
                phone: input.phone.clone(),
            };
            clients.sales()?.update_user(id, &fields).await.map(|_| ())
        }
        Block::Search => {
            let fields = SearchIdentityFields {
                email,
                name: input.display_name.clone(),
                phone: input.phone.clone(),
                avatar_url: input.avatar_url.clone(),
            };
            clients.search()?.update_identity(id, &fields).await.map(|_| ())
        }
        Block::Assets => {
            let fields = AssetsUserFields {
                email,
                username: input.username.clone(),
                display_name: input.display_name.clone(),
                avatar_url: input.avatar_url.clone(),
            };
            clients.assets()?.update_user(id, &fields).await.map(|_| ())
        }
        _ => Ok(()),
    }
}

/// What `setB2BUserActive` did.
#[derive(SimpleObject, Default)]
#[graphql(name = "SetB2BUserActivePayload")]
pub struct SetB2bUserActivePayload {
    /// The B2B user, read fresh after the change.
    #[graphql(name = "b2bUser")]
    pub b2b_user: Option<B2bUser>,
    /// `NOT_FOUND`, `BAD_USER_INPUT` (an inactive division refuses activation).
    pub user_errors: Vec<UserError>,
}

/// Runs `setB2BUserActive`.
pub async fn set_b2b_user_active(ctx: &Context<'_>, id: i64, active: bool) -> Result<SetB2bUserActivePayload> {
    let mut checks = Checks::default();
    checks.positive(&["id"], id);
    if !checks.passed() {
        return Ok(SetB2bUserActivePayload {
            b2b_user: None,
            user_errors: checks.into_errors(),
        });
    }
    let loaders = loaders(ctx)?;
    let b2b = loaders.loader().clients().b2b().gql()?;
    let changed = if active {
        b2b.activate_user(id).await
    } else {
        b2b.deactivate_user(id).await
    };
    let fresh = match changed {
        Ok(()) => b2b.get_user(id).await,
        Err(error) => Err(error),
    };
    let email = fresh.as_ref().ok().and_then(|user| user.as_ref()?.email.clone());
    forget(loaders, &Touched::B2bUser { id: Some(id), email });
    match fresh {
        Ok(Some(user)) => Ok(SetB2bUserActivePayload {
            b2b_user: Some(B2bUser::from(&user)),
            user_errors: Vec::new(),
        }),
        Ok(None) => Ok(SetB2bUserActivePayload {
            b2b_user: None,
            user_errors: vec![UserError::new(&["id"], "NOT_FOUND", format!("no B2B user {id}"))],
        }),
        Err(error) if matches!(error.status(), Some(400 | 404)) => Ok(SetB2bUserActivePayload {
            b2b_user: None,
            user_errors: vec![UserError::from_block(&error, &["id"])],
        }),
        Err(error) => Err(error).gql(),
    }
}
