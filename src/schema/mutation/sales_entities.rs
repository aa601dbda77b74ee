//! `registerSalesEntity`: a Sales entity under a `uniqueId` the caller picks, idempotent on
//! retry like the other registrations. Sales (Rails) refuses a known id with 422 "has
//! already been taken", which also covers other validation failures, so the gateway confirms
//! with a read before it reports `ALREADY_REGISTERED`.

use async_graphql::{Context, ID, InputObject, Result, SimpleObject};

use super::{
    outcome::{OutcomeStatus, UserError},
    register::note_lookup,
    validate::Checks,
};
use crate::{
    blocks::sales::{ENTITY_PAGE_SIZE, SalesEntityFields},
    loaders::{SalesEntityKey, Touched, forget},
    schema::{
        block_types::SalesEntity,
        errors::{IntoGraphql, SchemaError, report},
        load_one, loaders,
    },
};

/// A Sales entity to register.
#[derive(InputObject)]
pub struct RegisterSalesEntityInput {
    /// The entity's Sales `unique_id` (for an organization registered through the gateway,
    /// the CRM organization id). Registering the same id again is idempotent.
    pub unique_id: ID,
    /// Entity name.
    pub name: String,
    /// Type classification (for example `organization`).
    pub entity_type: Option<String>,
    /// Entity email.
    pub email: Option<String>,
}

/// What `registerSalesEntity` did.
#[derive(SimpleObject, Default)]
pub struct RegisterSalesEntityPayload {
    /// The entity as Sales holds it: the one created, or the one already registered under
    /// this id (as Sales keeps it: Sales offers no entity update, so a retry changes
    /// nothing). Null when nothing was registered.
    pub sales_entity: Option<SalesEntity>,
    /// `CREATED`, or `ALREADY_REGISTERED` when Sales already held the id (confirmed by a
    /// read); null when refused.
    pub status: Option<OutcomeStatus>,
    /// `BAD_USER_INPUT` (the input, checked before any call, or Sales' own validation).
    pub user_errors: Vec<UserError>,
}

/// Checks the input: an addressable id, a name, a plausible email.
fn validate(input: &RegisterSalesEntityInput) -> Result<(String, SalesEntityFields), Vec<UserError>> {
    let mut checks = Checks::default();
    let field = ["input", "uniqueId"];
    let id = checks.identity_id(&field, &input.unique_id);
    if matches!(id.as_deref(), Some("." | "..")) {
        checks.fail(UserError::bad_input(&field, "`.` and `..` cannot be ids"));
    }
    let name = input.name.trim();
    if name.is_empty() {
        checks.fail(UserError::bad_input(&["input", "name"], "must not be blank"));
    }
    checks.bounded(&["input", "name"], Some(name), 255);
    checks.bounded(&["input", "entityType"], input.entity_type.as_deref(), 255);
    let email = input
        .email
        .as_deref()
        .and_then(|email| checks.email(&["input", "email"], email));
    match id {
        Some(id) if checks.passed() => Ok((
            id,
            SalesEntityFields {
                name: name.to_owned(),
                entity_type: input.entity_type.clone(),
                email,
            },
        )),
        _ => Err(checks.into_errors()),
    }
}

/// Runs `registerSalesEntity`.
pub async fn register_sales_entity(
    ctx: &Context<'_>,
    input: RegisterSalesEntityInput,
) -> Result<RegisterSalesEntityPayload> {
    let (id, fields) = match validate(&input) {
        Ok(valid) => valid,
        Err(user_errors) => {
            return Ok(RegisterSalesEntityPayload {
                user_errors,
                ..RegisterSalesEntityPayload::default()
            });
        }
    };
    let loaders = loaders(ctx)?;
    let created = loaders
        .loader()
        .clients()
        .sales()
        .gql()?
        .register_entity(&id, &fields)
        .await;
    // The entity lookup and the entities list changed (or may have: a refusal is read below).
    forget(loaders, &Touched::SalesEntity);
    let error = match created {
        Ok(entity) => {
            if let Some(index) = loaders.loader().lookup_index() {
                note_lookup(index.record_registered_entity(&id, ENTITY_PAGE_SIZE).await);
            }
            return Ok(RegisterSalesEntityPayload {
                sales_entity: Some(SalesEntity::new(id, &entity)),
                status: Some(OutcomeStatus::Created),
                user_errors: Vec::new(),
            });
        }
        Err(error) if matches!(error.status(), Some(400 | 409 | 422)) => error,
        Err(error) => return Err(error).gql(),
    };
    let refused = || RegisterSalesEntityPayload {
        user_errors: vec![UserError::from_block(&error, &["input"])],
        ..RegisterSalesEntityPayload::default()
    };
    if error.status() == Some(400) {
        return Ok(refused());
    }
    match load_one(loaders, SalesEntityKey(id.clone())).await {
        Ok(Some(existing)) => Ok(RegisterSalesEntityPayload {
            sales_entity: Some(SalesEntity::new(id, &existing.data)),
            status: Some(OutcomeStatus::AlreadyRegistered),
            user_errors: Vec::new(),
        }),
        Ok(None) => Ok(refused()),
        Err(read_error) => {
            // The refusal stands; say that it could not be told apart from "already there".
            report(ctx, SchemaError::Block(read_error));
            Ok(refused())
        }
    }
}
