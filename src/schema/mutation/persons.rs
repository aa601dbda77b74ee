//! CRM person writes: invite, link to a platform user, create, update, delete (merges are
//! in `merge`). Every write forgets what it touched before answering.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, OutputType, Result, SimpleObject};
use serde_json::Value;

use super::{
    outcome::UserError,
    validate::{Checks, blank_when_null, patch},
};
use crate::{
    blocks::{
        BlockError,
        crm::{InviteOutcome, InviteRequest, PersonFields},
        wire::Patch,
    },
    cache::Record,
    loaders::{Touched, forget},
    schema::{
        crm::{LifecycleStage, Person},
        errors::{IntoGraphql, SchemaError},
        loaders,
        timestamp::{Timestamp, optional},
    },
};

/// An invitation to the platform.
#[derive(SimpleObject)]
pub struct Invitation {
    /// Invitation id.
    pub id: i64,
    /// Email the invitation was sent to.
    pub email: String,
    /// The platform's key.
    pub platform_key: String,
    /// Whether the invitation is accepted automatically at the invitee's first sign-in.
    pub auto_accept: bool,
    /// Whether the invitation is active.
    pub active: bool,
    /// Where the invitee lands after accepting.
    pub redirect_to: Option<String>,
    /// When the invitation was created.
    pub created_at: Option<Timestamp>,
}

/// An active invitation already exists for the person's email.
#[derive(SimpleObject)]
pub struct InvitationConflict {
    /// Id of the existing invitation.
    pub invitation_id: i64,
    /// The person.
    pub person_id: ID,
    /// The platform's key.
    pub platform_key: String,
    /// The CRM's explanation.
    pub message: String,
}

/// Whom to invite and with which privileges.
#[derive(InputObject)]
pub struct InvitePersonInput {
    /// The CRM person to invite (UUID); their primary email receives the invitation.
    pub person_id: ID,
    /// Grant platform-admin privileges on acceptance.
    pub is_admin: Option<bool>,
    /// Grant staff privileges on acceptance.
    pub is_staff: Option<bool>,
    /// Enrollment payload forwarded to the invitation (a JSON object).
    pub enrollment_config: Option<Json<Value>>,
    /// URL the invitee is sent to after accepting.
    pub redirect_to: Option<String>,
}

/// What `invitePerson` did.
#[derive(SimpleObject, Default)]
pub struct InvitePersonPayload {
    /// The new invitation.
    pub invitation: Option<Invitation>,
    /// The invitation that already existed, when one did.
    pub conflict: Option<InvitationConflict>,
    /// `NO_PRIMARY_EMAIL`, `NOT_FOUND`, `ALREADY_LINKED`, `INVITATION_EXISTS`, `BAD_USER_INPUT`.
    pub user_errors: Vec<UserError>,
}

fn missing(field: &'static str) -> SchemaError {
    SchemaError::MissingField {
        block: crate::blocks::BlockName::Crm,
        field,
    }
}

/// Runs `invitePerson`.
pub async fn invite_person(ctx: &Context<'_>, input: InvitePersonInput) -> Result<InvitePersonPayload> {
    let mut checks = Checks::default();
    let person_id = checks.uuid(&["input", "personId"], &input.person_id);
    if input
        .enrollment_config
        .as_ref()
        .is_some_and(|config| !config.0.is_object())
    {
        checks.fail(UserError::bad_input(
            &["input", "enrollmentConfig"],
            "must be a JSON object",
        ));
    }
    checks.bounded(&["input", "redirectTo"], input.redirect_to.as_deref(), 255);
    let Some(person_id) = person_id.filter(|_| checks.passed()) else {
        return Ok(InvitePersonPayload {
            user_errors: checks.into_errors(),
            ..InvitePersonPayload::default()
        });
    };
    let request = InviteRequest {
        is_admin: input.is_admin,
        is_staff: input.is_staff,
        enrollment_config: input.enrollment_config.map(|json| json.0),
        redirect_to: input.redirect_to,
    };
    let loaders = loaders(ctx)?;
    let outcome = loaders
        .loader()
        .clients()
        .crm()
        .gql()?
        .invite_person(&person_id, &request)
        .await;
    let field = ["input", "personId"];
    match outcome {
        Ok(InviteOutcome::Invited(invited)) => {
            let invitation = Invitation {
                id: invited.invitation_id,
                email: invited.invitation_email.ok_or(missing("invitation_email")).gql()?,
                platform_key: invited.platform_key.ok_or(missing("platform_key")).gql()?,
                auto_accept: invited.auto_accept.ok_or(missing("auto_accept")).gql()?,
                active: invited.active.ok_or(missing("active")).gql()?,
                redirect_to: invited.redirect_to,
                created_at: optional(invited.created),
            };
            Ok(InvitePersonPayload {
                invitation: Some(invitation),
                ..InvitePersonPayload::default()
            })
        }
        Ok(InviteOutcome::Conflict(existing)) => {
            let message = existing
                .detail
                .unwrap_or_else(|| "an active invitation already exists for this email".to_owned());
            let conflict = InvitationConflict {
                invitation_id: existing.invitation_id,
                person_id: ID(existing.person_id.unwrap_or_else(|| person_id.clone())),
                platform_key: existing.platform_key.unwrap_or_default(),
                message: message.clone(),
            };
            let error = UserError::new(
                &field,
                "INVITATION_EXISTS",
                format!("{message} (invitation {})", conflict.invitation_id),
            );
            Ok(InvitePersonPayload {
                conflict: Some(conflict),
                user_errors: vec![error],
                ..InvitePersonPayload::default()
            })
        }
        Err(error) => {
            let code = match error.status() {
                Some(400) => "NO_PRIMARY_EMAIL",
                Some(404) => "NOT_FOUND",
                Some(422) => "ALREADY_LINKED",
                _ => return Err(error).gql(),
            };
            let mut user_error = UserError::from_block(&error, &field);
            user_error.code = code.to_owned();
            user_error.field = Some(field.iter().map(|f| (*f).to_owned()).collect());
            Ok(InvitePersonPayload {
                user_errors: vec![user_error],
                ..InvitePersonPayload::default()
            })
        }
    }
}

/// A person and a platform user to bind.
#[derive(InputObject)]
pub struct LinkPersonToUserInput {
    /// The CRM person (UUID).
    pub person_id: ID,
    /// The platform user, who must already be a member of the platform.
    pub user_id: i64,
}

/// What `linkPersonToUser` did.
#[derive(SimpleObject, Default)]
pub struct LinkPersonToUserPayload {
    /// The person as the CRM holds it after the call.
    pub person: Option<Person>,
    /// `ALREADY_LINKED_TO_OTHER_USER`, `FORBIDDEN` (not a member: invite them), `NOT_FOUND`,
    /// `BAD_USER_INPUT`.
    pub user_errors: Vec<UserError>,
}

/// Runs `linkPersonToUser`. The CRM answers 200 with the unchanged person when it refuses
/// to re-link a person bound to another user; that is reported, never taken as success.
pub async fn link_person_to_user(ctx: &Context<'_>, input: LinkPersonToUserInput) -> Result<LinkPersonToUserPayload> {
    let mut checks = Checks::default();
    let person_id = checks.uuid(&["input", "personId"], &input.person_id);
    checks.positive(&["input", "userId"], input.user_id);
    let Some(person_id) = person_id.filter(|_| checks.passed()) else {
        return Ok(LinkPersonToUserPayload {
            person: None,
            user_errors: checks.into_errors(),
        });
    };
    let loaders = loaders(ctx)?;
    let linked = loaders
        .loader()
        .clients()
        .crm()
        .gql()?
        .link_user(&person_id, input.user_id)
        .await;
    forget(loaders, &Touched::Person { id: person_id.clone() });
    let person = match linked {
        Ok(person) => person,
        Err(error) => return link_refusal(error, input.user_id),
    };
    let mut user_errors = Vec::new();
    match person.platform_user {
        Some(bound) if bound == input.user_id => {}
        Some(other) => user_errors.push(UserError::new(
            &["input", "personId"],
            "ALREADY_LINKED_TO_OTHER_USER",
            format!(
                "the person is already linked to platform user {other}; the link to {} was refused",
                input.user_id
            ),
        )),
        None => user_errors.push(UserError::new(
            &["input", "personId"],
            "LINK_NOT_APPLIED",
            "the CRM answered without binding the person to the user",
        )),
    }
    Ok(LinkPersonToUserPayload {
        person: Some(Person::new(Record::complete(person))),
        user_errors,
    })
}

fn link_refusal(error: BlockError, user_id: i64) -> Result<LinkPersonToUserPayload> {
    let user_error = match error.status() {
        Some(403) => UserError::new(
            &["input", "userId"],
            "FORBIDDEN",
            format!("platform user {user_id} is not a member of this platform; invite them first (invitePerson)"),
        ),
        Some(404) => UserError::new(&["input"], "NOT_FOUND", error.to_string()),
        Some(400) => UserError::from_block(&error, &["input"]),
        _ => return Err(error).gql(),
    };
    Ok(LinkPersonToUserPayload {
        person: None,
        user_errors: vec![user_error],
    })
}

/// Fields of a new person.
#[derive(InputObject)]
pub struct CreatePersonInput {
    /// Display name.
    pub name: String,
    /// Canonical email.
    pub primary_email: Option<String>,
    /// Additional emails (free-form JSON).
    pub emails: Option<Json<Value>>,
    /// Contact numbers (free-form JSON).
    pub contact_numbers: Option<Json<Value>>,
    /// Job title.
    pub job_title: Option<String>,
    /// Organization (UUID).
    pub organization_id: Option<ID>,
    /// Platform user id of the account manager.
    pub owner_id: Option<i64>,
    /// Lifecycle stage (the CRM defaults to LEAD).
    pub lifecycle_stage: Option<LifecycleStage>,
    /// External system id (unique within the platform when non-blank).
    pub unique_id: Option<String>,
    /// Free-form attributes.
    pub metadata: Option<Json<Value>>,
}

/// Changes to a person: only the fields given are sent. `null` clears a field where the CRM
/// can hold none (each field says); an absent field is left as it is.
#[derive(InputObject)]
pub struct UpdatePersonInput {
    /// The person (UUID).
    pub id: ID,
    /// Display name; cannot be cleared.
    pub name: MaybeUndefined<String>,
    /// Canonical email; `null` clears it (the CRM keeps a blank email).
    pub primary_email: MaybeUndefined<String>,
    /// Additional emails (free-form JSON); `null` sends null.
    pub emails: MaybeUndefined<Json<Value>>,
    /// Contact numbers (free-form JSON); `null` sends null.
    pub contact_numbers: MaybeUndefined<Json<Value>>,
    /// Job title; `null` clears it (the CRM keeps a blank title).
    pub job_title: MaybeUndefined<String>,
    /// Organization (UUID); `null` clears it.
    pub organization_id: MaybeUndefined<ID>,
    /// Account manager; `null` clears it.
    pub owner_id: MaybeUndefined<i64>,
    /// Lifecycle stage; cannot be cleared.
    pub lifecycle_stage: MaybeUndefined<LifecycleStage>,
    /// External system id; `null` clears it (the CRM keeps a blank id).
    pub unique_id: MaybeUndefined<String>,
    /// Free-form attributes (JSON); `null` sends null.
    pub metadata: MaybeUndefined<Json<Value>>,
}

/// The person a write produced, or why there is none.
#[derive(SimpleObject, Default)]
pub struct PersonPayload {
    /// The person as the CRM answered.
    pub person: Option<Person>,
    /// Validation errors from the gateway or the CRM, naming the input field.
    pub user_errors: Vec<UserError>,
}

/// What a delete did.
#[derive(SimpleObject, Default)]
pub struct DeletePayload {
    /// The id deleted, when the delete happened.
    pub deleted_id: Option<ID>,
    /// The GraphQL type of the deleted object (`Person`, `Organization`), when the delete
    /// happened: with `deletedId` it names the object in a client cache, as
    /// `cache.identify({ __typename: deletedType, id: deletedId })` in Apollo Client or
    /// `cache.invalidate({ __typename: deletedType, id: deletedId })` in urql's Graphcache.
    pub deleted_type: Option<String>,
    /// `NOT_FOUND`, `BAD_USER_INPUT`.
    pub user_errors: Vec<UserError>,
}

fn check_person_fields(
    checks: &mut Checks,
    name: Option<&str>,
    email: Option<&str>,
    organization: Option<&str>,
) -> Option<Option<String>> {
    if let Some(name) = name {
        if name.trim().is_empty() {
            checks.fail(UserError::bad_input(&["input", "name"], "must not be blank"));
        }
        checks.bounded(&["input", "name"], Some(name), 255);
    }
    if let Some(email) = email {
        checks.email(&["input", "primaryEmail"], email);
    }
    organization.map(|id| checks.uuid(&["input", "organizationId"], id))
}

/// Runs `createPerson`.
pub async fn create_person(ctx: &Context<'_>, input: CreatePersonInput) -> Result<PersonPayload> {
    let mut checks = Checks::default();
    let organization = check_person_fields(
        &mut checks,
        Some(&input.name),
        input.primary_email.as_deref(),
        input.organization_id.as_ref().map(|id| id.as_str()),
    );
    checks.bounded(&["input", "uniqueId"], input.unique_id.as_deref(), 128);
    if !checks.passed() {
        return Ok(PersonPayload {
            person: None,
            user_errors: checks.into_errors(),
        });
    }
    let fields = PersonFields {
        name: Some(input.name.trim().to_owned()),
        primary_email: input.primary_email.map(|e| e.trim().to_owned()),
        emails: Patch::set_or_keep(input.emails.map(|j| j.0)),
        contact_numbers: Patch::set_or_keep(input.contact_numbers.map(|j| j.0)),
        job_title: input.job_title,
        organization: Patch::set_or_keep(organization.flatten()),
        owner: Patch::set_or_keep(input.owner_id),
        lifecycle_stage: input.lifecycle_stage.map(|s| s.wire().to_owned()),
        unique_id: input.unique_id,
        metadata: Patch::set_or_keep(input.metadata.map(|j| j.0)),
    };
    let loaders = loaders(ctx)?;
    let created = loaders.loader().clients().crm().gql()?.create_person(&fields).await;
    forget(loaders, &Touched::PersonsLists);
    person_payload(created)
}

/// Runs `updatePerson` (PATCH: only supplied fields).
pub async fn update_person(ctx: &Context<'_>, input: UpdatePersonInput) -> Result<PersonPayload> {
    let mut checks = Checks::default();
    let id = checks.uuid(&["input", "id"], &input.id);
    let name = checks.not_cleared(&["input", "name"], &input.name, "every person has a name");
    let email = input.primary_email.value().map(String::as_str);
    check_person_fields(&mut checks, name.as_deref(), email, None);
    let organization = match &input.organization_id {
        MaybeUndefined::Value(org) => checks
            .uuid(&["input", "organizationId"], org)
            .map_or(Patch::Keep, Patch::Set),
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Undefined => Patch::Keep,
    };
    let stage = checks.not_cleared(
        &["input", "lifecycleStage"],
        &input.lifecycle_stage,
        "every person has a lifecycle stage",
    );
    checks.bounded(&["input", "uniqueId"], input.unique_id.value().map(String::as_str), 128);
    let Some(id) = id.filter(|_| checks.passed()) else {
        return Ok(PersonPayload {
            person: None,
            user_errors: checks.into_errors(),
        });
    };
    let fields = PersonFields {
        name: name.map(|n| n.trim().to_owned()),
        primary_email: blank_when_null(input.primary_email).map(|e| e.trim().to_owned()),
        emails: patch(input.emails).map(|j| j.0),
        contact_numbers: patch(input.contact_numbers).map(|j| j.0),
        job_title: blank_when_null(input.job_title),
        organization,
        owner: patch(input.owner_id),
        lifecycle_stage: stage.map(|s| s.wire().to_owned()),
        unique_id: blank_when_null(input.unique_id),
        metadata: patch(input.metadata).map(|j| j.0),
    };
    let loaders = loaders(ctx)?;
    let updated = loaders.loader().clients().crm().gql()?.patch_person(&id, &fields).await;
    forget(loaders, &Touched::Person { id });
    person_payload(updated)
}

/// Runs `deletePerson`.
pub async fn delete_person(ctx: &Context<'_>, id: ID) -> Result<DeletePayload> {
    let mut checks = Checks::default();
    let Some(id) = checks.uuid(&["id"], &id) else {
        return Ok(DeletePayload {
            user_errors: checks.into_errors(),
            ..DeletePayload::default()
        });
    };
    let loaders = loaders(ctx)?;
    let deleted = loaders.loader().clients().crm().gql()?.delete_person(&id).await;
    forget(loaders, &Touched::Person { id: id.clone() });
    delete_payload::<Person>(deleted, id)
}

/// The payload of a person write: the CRM's 400/404 become user errors.
pub(super) fn person_payload(result: Result<crate::blocks::crm::CrmPerson, BlockError>) -> Result<PersonPayload> {
    match result {
        Ok(person) => Ok(PersonPayload {
            person: Some(Person::new(Record::complete(person))),
            user_errors: Vec::new(),
        }),
        Err(error) if matches!(error.status(), Some(400 | 404)) => Ok(PersonPayload {
            person: None,
            user_errors: vec![UserError::from_block(&error, &["input"])],
        }),
        Err(error) => Err(error).gql(),
    }
}

/// The payload of a delete of an object of GraphQL type `T` (named as `__typename`
/// names it): 404 becomes a `NOT_FOUND` user error.
pub(super) fn delete_payload<T: OutputType>(result: Result<(), BlockError>, id: String) -> Result<DeletePayload> {
    match result {
        Ok(()) => Ok(DeletePayload {
            deleted_id: Some(ID(id)),
            deleted_type: Some(T::type_name().into_owned()),
            user_errors: Vec::new(),
        }),
        Err(error) if error.status() == Some(404) => Ok(DeletePayload {
            user_errors: vec![UserError::from_block(&error, &["id"])],
            ..DeletePayload::default()
        }),
        Err(error) => Err(error).gql(),
    }
}
