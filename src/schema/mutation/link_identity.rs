//! Writes of the identity link index: `linkIdentity` and `unlinkIdentity`, and the index
//! writes `registerIdentity` and `mergePersons` make. A link is validated against the blocks
//! before it is written (the identity, the person or the B2B user must exist); conflicts
//! are user errors, never overwrites.

use async_graphql::{Context, ID, InputObject, Result, SimpleObject};
use futures::join;

use super::{outcome::UserError, validate::Checks};
use crate::{
    blocks::BlockError,
    error_code::ErrorCode,
    link_index::{AddOutcome, Link, LinkBlock, LinkIndex, LinkSource, MergeReport, NewLink, canonical_person_id},
    loaders::{AssetsUserKey, B2bUserKey, SalesUserKey, SearchIdentityKey},
    schema::{
        errors::{IntoGraphql, SchemaError, report},
        identity::{EarlierFailures, Identity},
        identity_links::{self, IdentityLink, link_index},
        load_one, loaders,
    },
};

/// An identity and one record to link it to (or unlink it from): a CRM person or a B2B user.
#[derive(InputObject)]
pub struct IdentityLinkInput {
    /// The identity (the shared 23blocks unique id). A 23blocks block, or the index, must
    /// know it.
    pub identity_id: ID,
    /// The CRM person (UUID). Give this or `b2bUserId`, not both.
    pub person_id: Option<ID>,
    /// The B2B user id. Give this or `personId`, not both.
    #[graphql(name = "b2bUserId")]
    pub b2b_user_id: Option<i64>,
}

/// What `linkIdentity` did.
#[derive(SimpleObject, Default)]
pub struct LinkIdentityPayload {
    /// The identity, with its links (null when the input was refused).
    pub identity: Option<Identity>,
    /// The link as the index holds it: new, or the one that existed (linking is idempotent).
    pub link: Option<IdentityLink>,
    /// `BAD_USER_INPUT`; `NOT_FOUND` (no block knows the identity, the person or the B2B
    /// user); `PERSON_MERGED` (link the survivor); `IDENTITY_ALREADY_LINKED` (the identity
    /// has another record of that block: unlink it first); `ALREADY_LINKED_TO_OTHER_IDENTITY`.
    pub user_errors: Vec<UserError>,
}

/// What `unlinkIdentity` did.
#[derive(SimpleObject, Default)]
pub struct UnlinkIdentityPayload {
    /// The identity, with its remaining links (null when the input was refused).
    pub identity: Option<Identity>,
    /// The link removed.
    pub removed: Option<IdentityLink>,
    /// `BAD_USER_INPUT`; `NOT_LINKED` (nothing to remove); `LINKED_TO_OTHER_IDENTITY` (the
    /// record belongs to another identity, whose link stays).
    pub user_errors: Vec<UserError>,
}

/// The record of a link, validated.
struct Target {
    block: LinkBlock,
    external_id: String,
    /// The input field naming it.
    field: &'static str,
}

impl Target {
    fn describe(&self) -> String {
        match self.block {
            LinkBlock::Crm => format!("CRM person {}", self.external_id),
            LinkBlock::B2b => format!("B2B user {}", self.external_id),
        }
    }

    fn error(&self, code: &str, message: impl Into<String>) -> UserError {
        UserError::new(&["input", self.field], code, message)
    }
}

fn validate(input: &IdentityLinkInput) -> Result<(String, Target), Vec<UserError>> {
    let mut checks = Checks::default();
    let identity_id = checks.identity_id(&["input", "identityId"], &input.identity_id);
    let target = match (&input.person_id, input.b2b_user_id) {
        (Some(person_id), None) => checks.uuid(&["input", "personId"], person_id).map(|id| Target {
            block: LinkBlock::Crm,
            external_id: id,
            field: "personId",
        }),
        (None, Some(user_id)) => {
            checks.positive(&["input", "b2bUserId"], user_id);
            Some(Target {
                block: LinkBlock::B2b,
                external_id: user_id.to_string(),
                field: "b2bUserId",
            })
        }
        _ => {
            checks.fail(UserError::bad_input(
                &["input"],
                "give exactly one of personId or b2bUserId",
            ));
            None
        }
    };
    match (identity_id, target) {
        (Some(identity_id), Some(target)) if checks.passed() => Ok((identity_id, target)),
        _ => Err(checks.into_errors()),
    }
}

fn refused(user_error: UserError) -> Result<LinkIdentityPayload> {
    Ok(LinkIdentityPayload {
        user_errors: vec![user_error],
        ..LinkIdentityPayload::default()
    })
}

/// Runs `linkIdentity`.
pub async fn link_identity(ctx: &Context<'_>, input: IdentityLinkInput) -> Result<LinkIdentityPayload> {
    let (identity_id, target) = match validate(&input) {
        Ok(valid) => valid,
        Err(user_errors) => {
            return Ok(LinkIdentityPayload {
                user_errors,
                ..LinkIdentityPayload::default()
            });
        }
    };
    if let Some(problem) = check_record(ctx, &target).await? {
        return refused(problem);
    }
    if !identity_known(ctx, &identity_id).await? {
        return refused(UserError::new(
            &["input", "identityId"],
            ErrorCode::NotFound.as_str(),
            format!("no block knows identity {identity_id}"),
        ));
    }
    let existing = identity_links::identity_links(ctx, &identity_id).await?;
    if let Some(other) = existing
        .iter()
        .find(|link| link.block == target.block && link.external_id != target.external_id)
    {
        let message = format!(
            "identity {identity_id} is already linked to {}; unlink it first",
            Target {
                external_id: other.external_id.clone(),
                ..target
            }
            .describe()
        );
        return refused(target.error("IDENTITY_ALREADY_LINKED", message));
    }
    let email = Identity::new(identity_id.clone())
        .email_value(ctx, EarlierFailures::Quiet)
        .await
        .ok()
        .flatten();
    let link = NewLink {
        identity_id: &identity_id,
        block: target.block,
        external_id: &target.external_id,
        source: LinkSource::Explicit,
        email: email.as_deref(),
    };
    match link_index(ctx)?.add(link).await.gql()? {
        AddOutcome::Added(link) | AddOutcome::Kept(link) => Ok(LinkIdentityPayload {
            identity: Some(Identity::new(identity_id)),
            link: Some(IdentityLink(link)),
            user_errors: Vec::new(),
        }),
        AddOutcome::Conflict { held_by } => refused(target.error(
            "ALREADY_LINKED_TO_OTHER_IDENTITY",
            format!("{} is linked to identity {}", target.describe(), held_by.identity_id),
        )),
    }
}

/// Whether the record exists and may be linked; the user error when not.
async fn check_record(ctx: &Context<'_>, target: &Target) -> Result<Option<UserError>> {
    let not_found = || {
        target.error(
            ErrorCode::NotFound.as_str(),
            format!("{} does not exist", target.describe()),
        )
    };
    match target.block {
        LinkBlock::Crm => {
            if identity_links::load_person(ctx, &target.external_id).await?.is_none() {
                return Ok(Some(not_found()));
            }
            let survivor = identity_links::survivor_of(ctx, &target.external_id).await?;
            Ok(survivor.map(|survivor| {
                target.error(
                    "PERSON_MERGED",
                    format!("{} was merged into {survivor}: link that person", target.describe()),
                )
            }))
        }
        LinkBlock::B2b => {
            let user_id = target
                .external_id
                .parse::<i64>()
                .map_err(|_| SchemaError::Internal)
                .gql()?;
            let user = load_one(loaders(ctx)?, B2bUserKey(user_id)).await.gql()?;
            Ok(user.is_none().then(not_found))
        }
    }
}

/// Whether a 23blocks user block (Sales, Search, Assets) or the index knows the identity.
/// A block that is not configured counts as not knowing it; one that fails, when no other
/// knows it, fails the mutation (the gateway cannot tell).
async fn identity_known(ctx: &Context<'_>, identity_id: &str) -> Result<bool> {
    let loaders = loaders(ctx)?;
    let sales_key = SalesUserKey {
        id: identity_id.to_owned(),
        complete: false,
    };
    let (sales, search, assets) = join!(
        load_one(loaders, sales_key),
        load_one(loaders, SearchIdentityKey(identity_id.to_owned())),
        load_one(loaders, AssetsUserKey(identity_id.to_owned())),
    );
    let mut failure = None;
    for found in [
        sales.map(|r| r.is_some()),
        search.map(|r| r.is_some()),
        assets.map(|r| r.is_some()),
    ] {
        match found {
            Ok(true) => return Ok(true),
            Ok(false) | Err(BlockError::NotConfigured { .. }) => {}
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    let index = link_index(ctx)?;
    if !identity_links::identity_links(ctx, identity_id).await?.is_empty()
        || index.email_of(identity_id).await.gql()?.is_some()
    {
        return Ok(true);
    }
    match failure {
        Some(error) => Err(error).gql(),
        None => Ok(false),
    }
}

/// Runs `unlinkIdentity`.
pub async fn unlink_identity(ctx: &Context<'_>, input: IdentityLinkInput) -> Result<UnlinkIdentityPayload> {
    let (identity_id, target) = match validate(&input) {
        Ok(valid) => valid,
        Err(user_errors) => {
            return Ok(UnlinkIdentityPayload {
                user_errors,
                ..UnlinkIdentityPayload::default()
            });
        }
    };
    let index = link_index(ctx)?;
    if let Some(removed) = index
        .remove(&identity_id, target.block, &target.external_id)
        .await
        .gql()?
    {
        return Ok(UnlinkIdentityPayload {
            identity: Some(Identity::new(identity_id)),
            removed: Some(IdentityLink(removed)),
            user_errors: Vec::new(),
        });
    }
    let user_error = match index.holder(target.block, &target.external_id).await.gql()? {
        Some(holder) => target.error(
            "LINKED_TO_OTHER_IDENTITY",
            format!(
                "{} is linked to identity {}, not {identity_id}",
                target.describe(),
                holder.identity_id
            ),
        ),
        None => target.error(
            "NOT_LINKED",
            format!("identity {identity_id} is not linked to {}", target.describe()),
        ),
    };
    Ok(UnlinkIdentityPayload {
        user_errors: vec![user_error],
        ..UnlinkIdentityPayload::default()
    })
}

/// Writes the link a registration created (the record carries the identity id, so it is
/// proven). What went wrong is returned to be shown beside that block's outcome.
pub async fn link_registered(
    index: &LinkIndex,
    identity_id: &str,
    email: &str,
    block: LinkBlock,
    external_id: &str,
) -> Option<UserError> {
    let link = NewLink {
        identity_id,
        block,
        external_id,
        source: LinkSource::Registered,
        email: Some(email),
    };
    match index.add(link).await {
        Ok(AddOutcome::Added(_) | AddOutcome::Kept(_)) => None,
        Ok(AddOutcome::Conflict { held_by }) => Some(UserError::new(
            &["input"],
            "ALREADY_LINKED_TO_OTHER_IDENTITY",
            format!(
                "the new record {external_id} is linked to identity {} in the index",
                held_by.identity_id
            ),
        )),
        Err(error) => {
            tracing::error!(%error, %identity_id, "identity link index write failed after a registration");
            Some(UserError::new(
                &["input"],
                ErrorCode::InternalServerError.as_str(),
                "created, but the identity link index could not record the link; `blocks-gateway reindex` restores it",
            ))
        }
    }
}

/// Records the email an identity was registered with (for `identityByEmail`). A failure is
/// reported as an error beside the payload: the registration itself succeeded.
pub async fn record_registered_email(ctx: &Context<'_>, identity_id: &str, email: &str) {
    let recorded = match link_index(ctx) {
        Ok(index) => index.set_email(identity_id, email).await,
        Err(_) => return,
    };
    if let Err(error) = recorded {
        report(ctx, SchemaError::LinkIndex(error.into()));
    }
}

/// Moves the links of persons the CRM merged onto the primary, in one transaction, and says
/// what moved. An index failure is reported beside the payload (the CRM merge itself
/// succeeded) and reads as nothing moved.
pub async fn move_merged_links(ctx: &Context<'_>, primary_id: &str, merged_ids: &[String]) -> MergeReport {
    let merged_ids: Vec<String> = merged_ids.iter().map(|id| canonical_person_id(id)).collect();
    let moved = match link_index(ctx) {
        Ok(index) => index.merge(&canonical_person_id(primary_id), &merged_ids).await,
        Err(_) => return MergeReport::default(),
    };
    moved.unwrap_or_else(|error| {
        report(ctx, SchemaError::LinkIndex(error.into()));
        MergeReport::default()
    })
}

/// The user error of a link a merge leaves on a merged person (another identity holds the
/// primary).
pub fn stuck_link((stuck, holder): &(Link, Link)) -> UserError {
    UserError::new(
        &["input", "primaryId"],
        "ALREADY_LINKED_TO_OTHER_IDENTITY",
        format!(
            "identity {} stays linked to merged person {}: identity {} holds the primary",
            stuck.identity_id, stuck.external_id, holder.identity_id
        ),
    )
}
