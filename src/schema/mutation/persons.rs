//! CRM person writes: invite, link to a platform user, merge duplicates, create, update,
//! delete. Every write forgets what it touched before answering.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Result, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{link_identity::move_merged_links, outcome::UserError, validate::Checks};
use crate::{
    blocks::{
        BlockError,
        crm::{InviteOutcome, InviteRequest, PersonFields},
    },
    cache::Record,
    loaders::{PersonKey, Touched, forget},
    schema::{
        crm::{LifecycleStage, Person},
        errors::{IntoGraphql, SchemaError},
        loaders,
    },
};

/// Most duplicates one merge may carry.
pub const MAX_MERGE_DUPLICATES: usize = 50;

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
    pub created_at: Option<DateTime<Utc>>,
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
                created_at: invited.created,
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

/// Duplicates to fold into a primary person.
#[derive(InputObject)]
pub struct MergePersonsInput {
    /// The surviving person (UUID).
    pub primary_id: ID,
    /// Persons to merge into the primary (1 to 50 UUIDs, without the primary, no repeats).
    pub duplicate_ids: Vec<ID>,
}

/// What `mergePersons` did.
#[derive(SimpleObject, Default)]
pub struct MergePersonsPayload {
    /// The primary person, read fresh after the merge.
    pub primary: Option<Person>,
    /// Persons the CRM marked inactive.
    pub merged_ids: Vec<ID>,
    /// Per-relation counts (deals, activities, tags) re-parented onto the primary.
    pub reparented: Option<Json<Value>>,
    /// `BAD_USER_INPUT`, `NOT_FOUND`; after a merge, `ALREADY_LINKED_TO_OTHER_IDENTITY` for
    /// an identity link that could not move to the primary (another identity holds it).
    pub user_errors: Vec<UserError>,
}

/// Validates a merge: well-formed ids, at least one and at most 50 duplicates, no repeats,
/// the primary not among them.
fn validate_merge(input: &MergePersonsInput) -> Result<(String, Vec<String>), Vec<UserError>> {
    let mut checks = Checks::default();
    let primary = checks.uuid(&["input", "primaryId"], &input.primary_id);
    if input.duplicate_ids.is_empty() {
        checks.fail(UserError::bad_input(
            &["input", "duplicateIds"],
            "name at least one duplicate",
        ));
    }
    if input.duplicate_ids.len() > MAX_MERGE_DUPLICATES {
        checks.fail(UserError::bad_input(
            &["input", "duplicateIds"],
            format!("at most {MAX_MERGE_DUPLICATES} duplicates per merge"),
        ));
    }
    let mut duplicates: Vec<String> = Vec::new();
    for (index, id) in input.duplicate_ids.iter().enumerate().take(MAX_MERGE_DUPLICATES + 1) {
        let position = index.to_string();
        let field = ["input", "duplicateIds", position.as_str()];
        let Some(id) = checks.uuid(&field, id) else { continue };
        if primary.as_ref() == Some(&id) {
            checks.fail(UserError::bad_input(&field, "the primary cannot be merged into itself"));
        } else if duplicates.contains(&id) {
            checks.fail(UserError::bad_input(&field, format!("{id} is listed twice")));
        } else {
            duplicates.push(id);
        }
    }
    match primary {
        Some(primary) if checks.passed() => Ok((primary, duplicates)),
        _ => Err(checks.into_errors()),
    }
}

/// Runs `mergePersons`.
pub async fn merge_persons(ctx: &Context<'_>, input: MergePersonsInput) -> Result<MergePersonsPayload> {
    let (primary_id, duplicates) = match validate_merge(&input) {
        Ok(valid) => valid,
        Err(user_errors) => {
            return Ok(MergePersonsPayload {
                user_errors,
                ..MergePersonsPayload::default()
            });
        }
    };
    let loaders = loaders(ctx)?;
    let crm = loaders.loader().clients().crm().gql()?;
    let merged = crm.merge_persons(&primary_id, &duplicates).await;
    for id in std::iter::once(&primary_id).chain(&duplicates) {
        forget(loaders, &Touched::Person { id: id.clone() });
    }
    let merged = match merged {
        Ok(merged) => merged,
        Err(error) => {
            let code = match error.status() {
                Some(400) => "BAD_USER_INPUT",
                Some(404) => "NOT_FOUND",
                _ => return Err(error).gql(),
            };
            let mut user_error = UserError::from_block(&error, &["input"]);
            user_error.code = code.to_owned();
            return Ok(MergePersonsPayload {
                user_errors: vec![user_error],
                ..MergePersonsPayload::default()
            });
        }
    };
    let link_errors = move_merged_links(ctx, &primary_id, &merged.merged_ids).await;
    // Fresh, not cached: the merge changed the primary's related records.
    let primary = crm.get_person(&primary_id).await.gql()?;
    if let Some(primary) = &primary {
        loaders
            .loader()
            .prime([(PersonKey(primary.id.clone()), Record::complete(primary.clone()))])
            .await;
    }
    Ok(MergePersonsPayload {
        primary: primary.map(|person| Person::new(Record::complete(person))),
        merged_ids: merged.merged_ids.into_iter().map(ID).collect(),
        reparented: merged.reparented.map(Json),
        user_errors: link_errors,
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

/// Changes to a person: only the fields given are sent; `null` clears
/// `organizationId` and `ownerId`.
#[derive(InputObject)]
pub struct UpdatePersonInput {
    /// The person (UUID).
    pub id: ID,
    /// Display name.
    pub name: Option<String>,
    /// Canonical email.
    pub primary_email: Option<String>,
    /// Additional emails.
    pub emails: Option<Json<Value>>,
    /// Contact numbers.
    pub contact_numbers: Option<Json<Value>>,
    /// Job title.
    pub job_title: Option<String>,
    /// Organization (UUID), or null to clear it.
    pub organization_id: MaybeUndefined<ID>,
    /// Account manager, or null to clear it.
    pub owner_id: MaybeUndefined<i64>,
    /// Lifecycle stage.
    pub lifecycle_stage: Option<LifecycleStage>,
    /// External system id.
    pub unique_id: Option<String>,
    /// Free-form attributes.
    pub metadata: Option<Json<Value>>,
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
        emails: input.emails.map(|j| j.0),
        contact_numbers: input.contact_numbers.map(|j| j.0),
        job_title: input.job_title,
        organization,
        owner: input.owner_id.map(Some),
        lifecycle_stage: input.lifecycle_stage.map(|s| s.wire().to_owned()),
        unique_id: input.unique_id,
        metadata: input.metadata.map(|j| j.0),
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
    check_person_fields(&mut checks, input.name.as_deref(), input.primary_email.as_deref(), None);
    let organization = match &input.organization_id {
        MaybeUndefined::Value(org) => Some(checks.uuid(&["input", "organizationId"], org)),
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Undefined => None,
    };
    checks.bounded(&["input", "uniqueId"], input.unique_id.as_deref(), 128);
    let Some(id) = id.filter(|_| checks.passed()) else {
        return Ok(PersonPayload {
            person: None,
            user_errors: checks.into_errors(),
        });
    };
    let fields = PersonFields {
        name: input.name.map(|n| n.trim().to_owned()),
        primary_email: input.primary_email.map(|e| e.trim().to_owned()),
        emails: input.emails.map(|j| j.0),
        contact_numbers: input.contact_numbers.map(|j| j.0),
        job_title: input.job_title,
        organization,
        owner: match input.owner_id {
            MaybeUndefined::Value(owner) => Some(Some(owner)),
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Undefined => None,
        },
        lifecycle_stage: input.lifecycle_stage.map(|s| s.wire().to_owned()),
        unique_id: input.unique_id,
        metadata: input.metadata.map(|j| j.0),
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
            deleted_id: None,
            user_errors: checks.into_errors(),
        });
    };
    let loaders = loaders(ctx)?;
    let deleted = loaders.loader().clients().crm().gql()?.delete_person(&id).await;
    forget(loaders, &Touched::Person { id: id.clone() });
    delete_payload(deleted, id)
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

/// The payload of a delete: 404 becomes a `NOT_FOUND` user error.
pub(super) fn delete_payload(result: Result<(), BlockError>, id: String) -> Result<DeletePayload> {
    match result {
        Ok(()) => Ok(DeletePayload {
            deleted_id: Some(ID(id)),
            user_errors: Vec::new(),
        }),
        Err(error) if error.status() == Some(404) => Ok(DeletePayload {
            deleted_id: None,
            user_errors: vec![UserError::from_block(&error, &["id"])],
        }),
        Err(error) => Err(error).gql(),
    }
}
