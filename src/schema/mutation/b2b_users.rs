//! B2B user writes: `updateB2BUser`, `setB2BUserActive` and `assignB2BRemoteId`. Each one
//! writes, then reads the user fresh (the block's write answers are partial or empty), and
//! forgets every cached copy of the user (by id, by email, in the users list) before it
//! answers. The block's refusals (an inactive division, an unknown user) are `userErrors`.

use async_graphql::{Context, InputObject, MaybeUndefined, Result, SimpleObject};

use super::{outcome::UserError, validate::Checks};
use crate::{
    blocks::{
        BlockError,
        b2b::{self, UpdateB2bUser},
    },
    loaders::{Touched, forget},
    schema::{
        block_types::B2bUser,
        errors::{IntoGraphql, SchemaError, report},
        loaders,
    },
};

/// Changes to a B2B user: only the fields given are sent. As the B2B block documents, an
/// update of an inactive user activates it again when its division is active.
#[derive(InputObject)]
#[graphql(name = "UpdateB2BUserInput")]
pub struct UpdateB2bUserInput {
    /// First name; cannot be cleared.
    pub first_name: MaybeUndefined<String>,
    /// Last name; cannot be cleared.
    pub last_name: MaybeUndefined<String>,
    /// Phone number; `null` clears it (sent as an empty text: the block's phone number is
    /// text, not nullable).
    pub phone_number: MaybeUndefined<String>,
    /// Division id; the division must be active. Cannot be cleared.
    pub division: MaybeUndefined<i64>,
}

/// What `updateB2BUser` did.
#[derive(SimpleObject, Default)]
#[graphql(name = "UpdateB2BUserPayload")]
pub struct UpdateB2bUserPayload {
    /// The B2B user, read fresh after the update (null when it was refused).
    #[graphql(name = "b2bUser")]
    pub b2b_user: Option<B2bUser>,
    /// `BAD_USER_INPUT` (the input, or the block's validation: a deactivated division, an
    /// unknown division, an inactive user whose division is inactive), `NOT_FOUND`.
    pub user_errors: Vec<UserError>,
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

/// What `assignB2BRemoteId` did.
#[derive(SimpleObject, Default)]
#[graphql(name = "AssignB2BRemoteIdPayload")]
pub struct AssignB2bRemoteIdPayload {
    /// The B2B user, read fresh after the request. The B2B block looks the user up on the
    /// Commerce platform in a background task, so `remoteId` may still be null here; once it
    /// is set, the user appears in `b2bUsers`.
    #[graphql(name = "b2bUser")]
    pub b2b_user: Option<B2bUser>,
    /// `NOT_FOUND`, `BAD_USER_INPUT`.
    pub user_errors: Vec<UserError>,
}

/// What a B2B write left: the user read after it, or the block's refusal.
struct Written {
    b2b_user: Option<B2bUser>,
    user_errors: Vec<UserError>,
}

impl Written {
    fn refused(user_errors: Vec<UserError>) -> Self {
        Self {
            b2b_user: None,
            user_errors,
        }
    }
}

macro_rules! from_written {
    ($($payload:ty),*) => {$(
        impl From<Written> for $payload {
            fn from(written: Written) -> Self {
                Self {
                    b2b_user: written.b2b_user,
                    user_errors: written.user_errors,
                }
            }
        }
    )*};
}
from_written!(UpdateB2bUserPayload, SetB2bUserActivePayload, AssignB2bRemoteIdPayload);

/// Checks an update: a positive id, at least one field, names not blank, a positive
/// division; `null` only where the field can be cleared.
fn validate_update(id: i64, input: &UpdateB2bUserInput) -> Result<UpdateB2bUser, Vec<UserError>> {
    let mut checks = Checks::default();
    checks.positive(&["id"], id);
    let mut name = |field: &'static str, value: &MaybeUndefined<String>| {
        let name = checks.not_cleared(&["input", field], value, "the B2B block requires it")?;
        let name = name.trim().to_owned();
        if name.is_empty() {
            checks.fail(UserError::bad_input(&["input", field], "must not be blank"));
        }
        checks.bounded(&["input", field], Some(&name), 255);
        Some(name)
    };
    let first_name = name("firstName", &input.first_name);
    let last_name = name("lastName", &input.last_name);
    let division = checks.not_cleared(&["input", "division"], &input.division, "every B2B user has a division");
    if let Some(division) = division {
        checks.positive(&["input", "division"], division);
    }
    let phone_number = match &input.phone_number {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(String::new()),
        MaybeUndefined::Value(phone) => Some(phone.trim().to_owned()),
    };
    let update = UpdateB2bUser {
        first_name,
        last_name,
        phone_number,
        division,
    };
    let nothing = [&input.first_name, &input.last_name, &input.phone_number]
        .iter()
        .all(|value| value.is_undefined())
        && input.division.is_undefined();
    if nothing {
        checks.fail(UserError::bad_input(&["input"], "give at least one field to change"));
    }
    if checks.passed() {
        Ok(update)
    } else {
        Err(checks.into_errors())
    }
}

/// Runs `updateB2BUser`: `PUT /api/v1/users/{id}/` with the fields given.
pub async fn update_b2b_user(ctx: &Context<'_>, id: i64, input: UpdateB2bUserInput) -> Result<UpdateB2bUserPayload> {
    let update = match validate_update(id, &input) {
        Ok(update) => update,
        Err(user_errors) => return Ok(Written::refused(user_errors).into()),
    };
    let loaders = loaders(ctx)?;
    let b2b = loaders.loader().clients().b2b().gql()?;
    let written = b2b.update_user(id, &update).await.map(Some);
    Ok(after_write(ctx, id, written, &["input"]).await?.into())
}

/// Runs `setB2BUserActive`.
pub async fn set_b2b_user_active(ctx: &Context<'_>, id: i64, active: bool) -> Result<SetB2bUserActivePayload> {
    if let Some(refused) = refuse_id(id) {
        return Ok(refused.into());
    }
    let loaders = loaders(ctx)?;
    let b2b = loaders.loader().clients().b2b().gql()?;
    let written = if active {
        b2b.activate_user(id).await
    } else {
        b2b.deactivate_user(id).await
    };
    Ok(after_write(ctx, id, written.map(|()| None), &["id"]).await?.into())
}

/// Runs `assignB2BRemoteId`: `POST /api/v1/users/{id}/update_remote_id/`.
pub async fn assign_b2b_remote_id(ctx: &Context<'_>, id: i64) -> Result<AssignB2bRemoteIdPayload> {
    if let Some(refused) = refuse_id(id) {
        return Ok(refused.into());
    }
    let loaders = loaders(ctx)?;
    let b2b = loaders.loader().clients().b2b().gql()?;
    let written = b2b.update_remote_id(id).await;
    Ok(after_write(ctx, id, written.map(|()| None), &["id"]).await?.into())
}

fn refuse_id(id: i64) -> Option<Written> {
    let mut checks = Checks::default();
    checks.positive(&["id"], id);
    (!checks.passed()).then(|| Written::refused(checks.into_errors()))
}

/// Finishes a B2B write whose answer was `written` (the user as the write answered, when it
/// answers with one): reads the user fresh and forgets every cached copy. A refusal (400,
/// 404, 422) becomes a user error pointing at `field` unless the block named a field. When
/// the write went through but the read after it fails, the user is what the write answered
/// (fields it did not send are null) and the read's error is reported beside the payload:
/// the write is never reported as failed.
async fn after_write(
    ctx: &Context<'_>,
    id: i64,
    written: Result<Option<b2b::B2bUser>, BlockError>,
    field: &[&str],
) -> Result<Written> {
    let loaders = loaders(ctx)?;
    let b2b = loaders.loader().clients().b2b().gql()?;
    let answered = match written {
        Ok(answered) => answered,
        Err(error) => {
            // A write that timed out may still have happened.
            forget(
                loaders,
                &Touched::B2bUser {
                    id: Some(id),
                    email: None,
                },
            );
            return match error.status() {
                Some(400 | 404 | 422) => Ok(Written::refused(vec![UserError::from_block(&error, field)])),
                _ => Err(error).gql(),
            };
        }
    };
    let fresh = b2b.get_user(id).await;
    let email = fresh.as_ref().ok().and_then(|user| user.as_ref()?.email.clone());
    forget(loaders, &Touched::B2bUser { id: Some(id), email });
    match fresh {
        Ok(Some(user)) => Ok(Written {
            b2b_user: Some(B2bUser::from(&user)),
            user_errors: Vec::new(),
        }),
        Ok(None) => Ok(Written::refused(vec![UserError::new(
            &["id"],
            "NOT_FOUND",
            format!("no B2B user {id}"),
        )])),
        Err(error) => {
            report(ctx, SchemaError::Block(error));
            Ok(Written {
                b2b_user: answered.as_ref().map(B2bUser::from),
                user_errors: Vec::new(),
            })
        }
    }
}
