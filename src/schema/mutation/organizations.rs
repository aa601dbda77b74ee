//! CRM organization writes: create, update (PATCH), delete.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Result, SimpleObject};
use serde_json::Value;

use super::{
    outcome::UserError,
    persons::{DeletePayload, delete_payload},
    register::refuses_field,
    validate::{Checks, patch},
};
use crate::{
    blocks::{BlockError, crm::OrganizationFields, wire::Patch},
    cache::Record,
    loaders::{Touched, forget},
    schema::{crm::Organization, errors::IntoGraphql, loaders},
};

/// Fields of a new organization.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Name, unique per platform.
    pub name: String,
    /// Free-form address.
    pub address: Option<Json<Value>>,
    /// Platform user id of the account manager.
    pub owner_id: Option<i64>,
    /// Free-form attributes.
    pub metadata: Option<Json<Value>>,
}

/// Changes to an organization: only the fields given are sent. `null` clears a field where
/// the CRM can hold none (each field says); an absent field is left as it is.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// The organization (UUID).
    pub id: ID,
    /// Name, unique per platform; cannot be cleared.
    pub name: MaybeUndefined<String>,
    /// Free-form address (JSON); `null` sends null.
    pub address: MaybeUndefined<Json<Value>>,
    /// Account manager; `null` clears it.
    pub owner_id: MaybeUndefined<i64>,
    /// Free-form attributes (JSON); `null` sends null.
    pub metadata: MaybeUndefined<Json<Value>>,
}

/// The organization a write produced, or why there is none.
#[derive(SimpleObject, Default)]
pub struct OrganizationPayload {
    /// The organization as the CRM answered.
    pub organization: Option<Organization>,
    /// Validation errors and conflicts (a duplicate name is `CONFLICT`).
    pub user_errors: Vec<UserError>,
}

fn check_name(checks: &mut Checks, name: Option<&str>) {
    if let Some(name) = name {
        if name.trim().is_empty() {
            checks.fail(UserError::bad_input(&["input", "name"], "must not be blank"));
        }
        checks.bounded(&["input", "name"], Some(name), 255);
    }
}

/// Runs `createOrganization`.
pub async fn create_organization(ctx: &Context<'_>, input: CreateOrganizationInput) -> Result<OrganizationPayload> {
    let mut checks = Checks::default();
    check_name(&mut checks, Some(&input.name));
    if !checks.passed() {
        return Ok(OrganizationPayload {
            organization: None,
            user_errors: checks.into_errors(),
        });
    }
    let fields = OrganizationFields {
        name: Some(input.name.trim().to_owned()),
        address: Patch::set_or_keep(input.address.map(|j| j.0)),
        owner: Patch::set_or_keep(input.owner_id),
        metadata: Patch::set_or_keep(input.metadata.map(|j| j.0)),
    };
    let loaders = loaders(ctx)?;
    let created = loaders
        .loader()
        .clients()
        .crm()
        .gql()?
        .create_organization(&fields)
        .await;
    if let Ok(organization) = &created {
        forget(
            loaders,
            &Touched::Organization {
                id: organization.id.clone(),
            },
        );
    }
    organization_payload(created)
}

/// Runs `updateOrganization` (PATCH).
pub async fn update_organization(ctx: &Context<'_>, input: UpdateOrganizationInput) -> Result<OrganizationPayload> {
    let mut checks = Checks::default();
    let id = checks.uuid(&["input", "id"], &input.id);
    let name = checks.not_cleared(&["input", "name"], &input.name, "every organization has a name");
    check_name(&mut checks, name.as_deref());
    let Some(id) = id.filter(|_| checks.passed()) else {
        return Ok(OrganizationPayload {
            organization: None,
            user_errors: checks.into_errors(),
        });
    };
    let fields = OrganizationFields {
        name: name.map(|n| n.trim().to_owned()),
        address: patch(input.address).map(|j| j.0),
        owner: patch(input.owner_id),
        metadata: patch(input.metadata).map(|j| j.0),
    };
    let loaders = loaders(ctx)?;
    let updated = loaders
        .loader()
        .clients()
        .crm()
        .gql()?
        .patch_organization(&id, &fields)
        .await;
    forget(loaders, &Touched::Organization { id });
    organization_payload(updated)
}

/// Runs `deleteOrganization` (the CRM keeps its persons, clearing their organization).
pub async fn delete_organization(ctx: &Context<'_>, id: ID) -> Result<DeletePayload> {
    let mut checks = Checks::default();
    let Some(id) = checks.uuid(&["id"], &id) else {
        return Ok(DeletePayload {
            user_errors: checks.into_errors(),
            ..DeletePayload::default()
        });
    };
    let loaders = loaders(ctx)?;
    let deleted = loaders.loader().clients().crm().gql()?.delete_organization(&id).await;
    forget(loaders, &Touched::Organization { id: id.clone() });
    // Persons of the organization changed too (their organization is cleared).
    forget(loaders, &Touched::AllPersons);
    forget(loaders, &Touched::SalesEntity);
    delete_payload::<Organization>(deleted, id)
}

fn organization_payload(
    result: Result<crate::blocks::crm::CrmOrganization, BlockError>,
) -> Result<OrganizationPayload> {
    match result {
        Ok(organization) => Ok(OrganizationPayload {
            organization: Some(Organization::new(Record::complete(organization))),
            user_errors: Vec::new(),
        }),
        Err(error) if matches!(error.status(), Some(400 | 404)) => {
            let mut user_error = UserError::from_block(&error, &["input"]);
            // Blank and overlong names are refused before the call, so a refusal naming
            // `name` is the per-platform uniqueness rule.
            if refuses_field(&error, "name") {
                user_error.code = crate::error_code::ErrorCode::Conflict.as_str().to_owned();
            }
            Ok(OrganizationPayload {
                organization: None,
                user_errors: vec![user_error],
            })
        }
        Err(error) => Err(error).gql(),
    }
}
