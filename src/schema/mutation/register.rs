//! `registerIdentity` and `registerOrganization`: one record per chosen block, created
//! concurrently, each block's outcome reported. Nothing is rolled back (the blocks offer no
//! delete), so a retry with the same id completes only what failed: a block that already
//! holds the record answers `ALREADY_REGISTERED`, confirmed by a read where the block's
//! refusal is ambiguous (Rails-style 422).

use async_graphql::{Context, ID, InputObject, Json, Result, SimpleObject};
use futures::future::join_all;
use secrecy::SecretString;
use serde_json::Value;

use super::{
    link_identity::{link_registered, record_registered_email},
    outcome::{BlockOutcome, OutcomeStatus, UserError},
    validate::Checks,
};
use crate::{
    blocks::{
        BlockClients, BlockError,
        assets::AssetsUserFields,
        b2b::CreateB2bUser,
        crm::{OrganizationFields, PersonFields},
        sales::{ENTITY_PAGE_SIZE, SalesCustomerFields, SalesEntityFields, SalesUserFields},
        search::SearchIdentityFields,
        wire::Patch,
    },
    cache::Record,
    link_index::{LinkBlock, LinkError, LinkIndex, canonical_person_id},
    loaders::{Touched, forget},
    schema::{
        crm::Organization,
        identity::{Block, Identity, full_name},
        identity_links::link_index,
        loaders,
    },
};

/// A block's registration status and, when it created a record the identity link index
/// keeps (a CRM person, a B2B user), that record.
type Registered = (OutcomeStatus, Option<(LinkBlock, String)>);

/// A registration in a block the index does not link (the 23blocks blocks share the id).
fn unlinked(status: OutcomeStatus) -> Registered {
    (status, None)
}

/// The B2B extras needed to register an identity there.
#[derive(InputObject)]
#[graphql(name = "B2BRegistrationInput")]
pub struct B2bRegistrationInput {
    /// Password of the new B2B user; sent to B2B only, never logged, cached or echoed.
    #[graphql(secret)]
    pub password: String,
    /// Division id of the new B2B user.
    pub division: i64,
}

/// Who to register, and where.
#[derive(InputObject)]
pub struct RegisterIdentityInput {
    /// The shared unique id; a UUID v4 is generated when absent. Retrying with the same id
    /// completes only what failed.
    pub unique_id: Option<ID>,
    /// Email (required).
    pub email: String,
    /// First name (required for B2B).
    pub first_name: Option<String>,
    /// Last name (required for B2B).
    pub last_name: Option<String>,
    /// Display name (the CRM person's name; else first and last name).
    pub display_name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Username (Assets).
    pub username: Option<String>,
    /// Avatar URL; the blocks take it only in updates, so it is set with a Search and an
    /// Assets update right after those registrations.
    pub avatar_url: Option<String>,
    /// Company name (Sales customer).
    pub company_name: Option<String>,
    /// Blocks to register in; default SALES, SEARCH, ASSETS.
    pub blocks: Option<Vec<Block>>,
    /// B2B password and division, required when B2B is chosen.
    #[graphql(name = "b2b")]
    pub b2b: Option<B2bRegistrationInput>,
}

/// What `registerIdentity` did.
#[derive(SimpleObject)]
pub struct RegisterIdentityPayload {
    /// The identity (null when the input was refused).
    pub identity: Option<Identity>,
    /// One outcome per chosen block.
    pub outcomes: Vec<BlockOutcome>,
    /// Input problems found before any block was called.
    pub user_errors: Vec<UserError>,
}

/// A validated registration.
struct Registration {
    id: String,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    phone: Option<String>,
    username: Option<String>,
    avatar_url: Option<String>,
    company_name: Option<String>,
    blocks: Vec<Block>,
    b2b: Option<(SecretString, i64)>,
}

impl Registration {
    fn validate(input: RegisterIdentityInput) -> Result<Self, Vec<UserError>> {
        let mut checks = Checks::default();
        let id = match &input.unique_id {
            Some(id) => checks.identity_id(&["input", "uniqueId"], id),
            None => Some(uuid::Uuid::new_v4().to_string()),
        };
        let email = checks.email(&["input", "email"], &input.email);
        let mut blocks = input
            .blocks
            .clone()
            .unwrap_or_else(|| vec![Block::Sales, Block::Search, Block::Assets]);
        blocks.dedup();
        if blocks.is_empty() {
            checks.fail(UserError::bad_input(&["input", "blocks"], "choose at least one block"));
        }
        let name = crm_name(&input);
        if blocks.contains(&Block::Crm) && name.is_none() {
            checks.fail(UserError::bad_input(
                &["input", "displayName"],
                "the CRM needs a displayName or a first/last name",
            ));
        }
        let b2b = if blocks.contains(&Block::B2b) {
            check_b2b(&mut checks, &input)
        } else {
            None
        };
        for (field, value, max) in [
            ("firstName", &input.first_name, 255),
            ("lastName", &input.last_name, 255),
            ("displayName", &input.display_name, 255),
            ("phone", &input.phone, 64),
            ("username", &input.username, 255),
            ("companyName", &input.company_name, 255),
            ("avatarUrl", &input.avatar_url, 2048),
        ] {
            checks.bounded(&["input", field], value.as_deref(), max);
        }
        match (id, email, checks.passed()) {
            (Some(id), Some(email), true) => Ok(Self {
                id,
                email,
                first_name: input.first_name,
                last_name: input.last_name,
                display_name: input.display_name,
                phone: input.phone,
                username: input.username,
                avatar_url: input.avatar_url,
                company_name: input.company_name,
                blocks,
                b2b,
            }),
            _ => Err(checks.into_errors()),
        }
    }

    fn crm_name(&self) -> Option<String> {
        self.display_name
            .clone()
            .or_else(|| full_name(self.first_name.as_deref(), self.last_name.as_deref()))
    }
}

fn crm_name(input: &RegisterIdentityInput) -> Option<String> {
    input
        .display_name
        .clone()
        .or_else(|| full_name(input.first_name.as_deref(), input.last_name.as_deref()))
}

fn check_b2b(checks: &mut Checks, input: &RegisterIdentityInput) -> Option<(SecretString, i64)> {
    for (field, value) in [("firstName", &input.first_name), ("lastName", &input.last_name)] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            checks.fail(UserError::bad_input(
                &["input", field],
                "B2B registration needs a first and a last name",
            ));
        }
    }
    let Some(b2b) = &input.b2b else {
        checks.fail(UserError::bad_input(
            &["input", "b2b"],
            "B2B registration needs b2b { password division }",
        ));
        return None;
    };
    if b2b.password.is_empty() {
        checks.fail(UserError::bad_input(&["input", "b2b", "password"], "must not be empty"));
    }
    checks.positive(&["input", "b2b", "division"], b2b.division);
    Some((SecretString::from(b2b.password.clone()), b2b.division))
}

/// Runs `registerIdentity`.
pub async fn register_identity(ctx: &Context<'_>, input: RegisterIdentityInput) -> Result<RegisterIdentityPayload> {
    let registration = match Registration::validate(input) {
        Ok(registration) => registration,
        Err(user_errors) => {
            return Ok(RegisterIdentityPayload {
                identity: None,
                outcomes: Vec::new(),
                user_errors,
            });
        }
    };
    let loaders = loaders(ctx)?;
    let clients = loaders.loader().clients();
    let index = link_index(ctx)?;
    let outcomes = join_all(
        registration
            .blocks
            .iter()
            .map(|block| register_in(clients, index, &registration, *block)),
    )
    .await;
    if outcomes.iter().any(|outcome| outcome.status != OutcomeStatus::Failed) {
        record_registered_email(ctx, &registration.id, &registration.email).await;
    }
    forget(
        loaders,
        &Touched::Identity {
            id: registration.id.clone(),
        },
    );
    forget(
        loaders,
        &Touched::B2bUser {
            id: None,
            email: Some(registration.email.clone()),
        },
    );
    if registration.blocks.contains(&Block::Crm) {
        forget(loaders, &Touched::PersonsLists);
    }
    Ok(RegisterIdentityPayload {
        identity: Some(Identity::new(registration.id)),
        outcomes,
        user_errors: Vec::new(),
    })
}

async fn register_in(clients: &BlockClients, index: &LinkIndex, r: &Registration, block: Block) -> BlockOutcome {
    let result = match block {
        Block::Sales => register_sales_user(clients, r).await.map(unlinked),
        Block::Customer => register_sales_customer(clients, r).await.map(unlinked),
        Block::Search => register_search_identity(clients, r).await.map(unlinked),
        Block::Assets => register_assets_user(clients, r).await.map(unlinked),
        Block::Crm => register_crm_person(clients, r).await,
        Block::B2b => register_b2b_user(clients, r).await,
    };
    let (status, created) = match result {
        Ok(registered) => registered,
        Err(error) => return BlockOutcome::failed(block, &error),
    };
    let mut outcome = BlockOutcome::ok(block, status);
    if let Some((linked_block, external_id)) = created {
        if linked_block == LinkBlock::B2b
            && let Ok(user_id) = external_id.parse::<i64>()
        {
            note_lookup(index.record_b2b_emails(&[(r.email.clone(), user_id)]).await);
        }
        outcome.error = link_registered(index, &r.id, &r.email, linked_block, &external_id).await;
    }
    if let Some(error) = set_avatar(clients, r, block).await.err() {
        // The record exists; only the avatar is missing: say so beside the outcome.
        outcome.error = Some(UserError::from_block(&error, &["input", "avatarUrl"]));
    }
    outcome
}

/// The blocks accept `avatar_url` only in updates; set it right after registering.
async fn set_avatar(clients: &BlockClients, r: &Registration, block: Block) -> Result<(), BlockError> {
    let Some(avatar_url) = r.avatar_url.clone() else {
        return Ok(());
    };
    match block {
        Block::Search => {
            let fields = SearchIdentityFields {
                avatar_url: Patch::Set(avatar_url),
                ..SearchIdentityFields::default()
            };
            clients.search()?.update_identity(&r.id, &fields).await.map(|_| ())
        }
        Block::Assets => {
            let fields = AssetsUserFields {
                avatar_url: Patch::Set(avatar_url),
                ..AssetsUserFields::default()
            };
            clients.assets()?.update_user(&r.id, &fields).await.map(|_| ())
        }
        _ => Ok(()),
    }
}

/// Maps a create result; when the block refused with one of the `ambiguous` statuses, which may mean
/// "already there", `exists` confirms with a read before saying so.
async fn created_or_confirmed<T, F>(
    created: Result<T, BlockError>,
    ambiguous: &[u16],
    exists: F,
) -> Result<OutcomeStatus, BlockError>
where
    F: std::future::Future<Output = Result<bool, BlockError>>,
{
    match created {
        Ok(_) => Ok(OutcomeStatus::Created),
        Err(error) if error.status().is_some_and(|status| ambiguous.contains(&status)) => match exists.await {
            Ok(true) => Ok(OutcomeStatus::AlreadyRegistered),
            _ => Err(error),
        },
        Err(error) => Err(error),
    }
}

async fn register_sales_user(clients: &BlockClients, r: &Registration) -> Result<OutcomeStatus, BlockError> {
    let sales = clients.sales()?;
    let fields = SalesUserFields {
        email: Some(r.email.clone()),
        first_name: Patch::set_or_keep(r.first_name.clone()),
        last_name: Patch::set_or_keep(r.last_name.clone()),
        display_name: Patch::set_or_keep(r.display_name.clone()),
        phone: Patch::set_or_keep(r.phone.clone()),
    };
    let created = sales.register_user(&r.id, &fields).await;
    created_or_confirmed(created, &[409, 422], async {
        Ok(sales.get_user(&r.id).await?.is_some())
    })
    .await
}

async fn register_sales_customer(clients: &BlockClients, r: &Registration) -> Result<OutcomeStatus, BlockError> {
    let sales = clients.sales()?;
    let fields = SalesCustomerFields {
        email: r.email.clone(),
        first_name: r.first_name.clone(),
        last_name: r.last_name.clone(),
        company_name: r.company_name.clone(),
        phone: r.phone.clone(),
    };
    let created = sales.register_customer(&r.id, &fields).await;
    created_or_confirmed(created, &[409, 422], async {
        Ok(sales.get_customer(&r.id).await?.is_some())
    })
    .await
}

async fn register_search_identity(clients: &BlockClients, r: &Registration) -> Result<OutcomeStatus, BlockError> {
    let search = clients.search()?;
    let fields = SearchIdentityFields {
        email: Some(r.email.clone()),
        name: Patch::set_or_keep(r.display_name.clone().or_else(|| r.crm_name())),
        phone: Patch::set_or_keep(r.phone.clone()),
        avatar_url: Patch::Keep,
    };
    // Search answers 409 for an identity it already holds: no read needed.
    match search.register_identity(&r.id, &fields).await {
        Ok(_) => Ok(OutcomeStatus::Created),
        Err(error) if error.status() == Some(409) => Ok(OutcomeStatus::AlreadyRegistered),
        Err(error) => Err(error),
    }
}

async fn register_assets_user(clients: &BlockClients, r: &Registration) -> Result<OutcomeStatus, BlockError> {
    let assets = clients.assets()?;
    let fields = AssetsUserFields {
        email: Some(r.email.clone()),
        username: Patch::set_or_keep(r.username.clone()),
        display_name: Patch::set_or_keep(r.display_name.clone()),
        avatar_url: Patch::Keep,
    };
    let created = assets.register_user(&r.id, &fields).await;
    created_or_confirmed(created, &[409, 422], async {
        Ok(assets.get_user(&r.id).await?.is_some())
    })
    .await
}

async fn register_crm_person(clients: &BlockClients, r: &Registration) -> Result<Registered, BlockError> {
    let crm = clients.crm()?;
    let fields = PersonFields {
        name: r.crm_name(),
        primary_email: Some(r.email.clone()),
        contact_numbers: Patch::set_or_keep(r.phone.clone().map(|phone| Value::Array(vec![Value::String(phone)]))),
        unique_id: Some(r.id.clone()),
        ..PersonFields::default()
    };
    match crm.create_person(&fields).await {
        Ok(person) => Ok((
            OutcomeStatus::Created,
            Some((LinkBlock::Crm, canonical_person_id(&person.id))),
        )),
        // The CRM keeps non-blank unique_ids unique: a refusal naming `unique_id` means a
        // person for this identity exists already (the CRM cannot be searched by it).
        Err(error) if refuses_field(&error, "unique_id") => Ok(unlinked(OutcomeStatus::AlreadyRegistered)),
        Err(error) => Err(error),
    }
}

async fn register_b2b_user(clients: &BlockClients, r: &Registration) -> Result<Registered, BlockError> {
    let b2b = clients.b2b()?;
    let Some((password, division)) = &r.b2b else {
        return Err(BlockError::Internal {
            block: crate::blocks::BlockName::B2b,
        });
    };
    let user = CreateB2bUser {
        first_name: r.first_name.clone().unwrap_or_default(),
        last_name: r.last_name.clone().unwrap_or_default(),
        email: r.email.clone(),
        password: password.clone(),
        phone_number: r.phone.clone(),
        division: *division,
    };
    let created = b2b.create_user(&user).await;
    let linked = created.as_ref().ok().map(|user| (LinkBlock::B2b, user.id.to_string()));
    let status = created_or_confirmed(created, &[400, 409], async {
        Ok(b2b.find_user_by_email(&r.email, |_| {}).await?.is_some())
    })
    .await?;
    Ok((status, linked))
}

/// Whether the block refused the write (400) naming `field`.
pub(super) fn refuses_field(error: &BlockError, field: &str) -> bool {
    error.status() == Some(400)
        && error
            .problem()
            .is_some_and(|problem| problem.fields.iter().any(|issue| issue.field.as_deref() == Some(field)))
}

/// An organization to register in the CRM and, with the same id, as a Sales entity.
#[derive(InputObject)]
pub struct RegisterOrganizationInput {
    /// Name, unique per platform in the CRM.
    pub name: String,
    /// Free-form address.
    pub address: Option<Json<Value>>,
    /// Platform user id of the account manager.
    pub owner_id: Option<i64>,
    /// Free-form attributes.
    pub metadata: Option<Json<Value>>,
    /// Sales entity type classification.
    pub entity_type: Option<String>,
    /// Sales entity email.
    pub email: Option<String>,
    /// An organization already created in the CRM (from an earlier, partly failed
    /// registration): skips the CRM step and completes the Sales entity.
    pub organization_id: Option<ID>,
}

/// What `registerOrganization` did.
#[derive(SimpleObject)]
pub struct RegisterOrganizationPayload {
    /// The CRM organization (null when it could not be created or found).
    pub organization: Option<Organization>,
    /// CRM first, then Sales.
    pub outcomes: Vec<BlockOutcome>,
    /// Input problems and conflicts (a duplicate name is `CONFLICT`).
    pub user_errors: Vec<UserError>,
}

/// Runs `registerOrganization`.
pub async fn register_organization(
    ctx: &Context<'_>,
    input: RegisterOrganizationInput,
) -> Result<RegisterOrganizationPayload> {
    let mut checks = Checks::default();
    if input.name.trim().is_empty() {
        checks.fail(UserError::bad_input(&["input", "name"], "must not be blank"));
    }
    checks.bounded(&["input", "name"], Some(&input.name), 255);
    let email = input
        .email
        .as_deref()
        .and_then(|email| checks.email(&["input", "email"], email));
    let existing_id = input
        .organization_id
        .as_deref()
        .and_then(|id| checks.uuid(&["input", "organizationId"], id));
    if !checks.passed() {
        return Ok(RegisterOrganizationPayload {
            organization: None,
            outcomes: Vec::new(),
            user_errors: checks.into_errors(),
        });
    }
    let loaders = loaders(ctx)?;
    let clients = loaders.loader().clients();
    let mut payload = RegisterOrganizationPayload {
        organization: None,
        outcomes: Vec::new(),
        user_errors: Vec::new(),
    };
    let organization = match existing_id {
        Some(id) => confirm_organization(clients, &id, &mut payload).await,
        None => create_organization(clients, &input, &mut payload).await,
    };
    let Some(organization) = organization else {
        payload
            .outcomes
            .push(BlockOutcome::ok(Block::Sales, super::outcome::OutcomeStatus::Skipped));
        return Ok(payload);
    };
    let entity = SalesEntityFields {
        name: organization.name.clone().unwrap_or_else(|| input.name.clone()),
        entity_type: input.entity_type,
        email,
    };
    payload
        .outcomes
        .push(register_sales_entity(clients, link_index(ctx)?, &organization.id, &entity).await);
    forget(
        loaders,
        &Touched::Organization {
            id: organization.id.clone(),
        },
    );
    forget(loaders, &Touched::SalesEntity);
    payload.organization = Some(Organization::new(Record::complete(organization)));
    Ok(payload)
}

async fn create_organization(
    clients: &BlockClients,
    input: &RegisterOrganizationInput,
    payload: &mut RegisterOrganizationPayload,
) -> Option<crate::blocks::crm::CrmOrganization> {
    let fields = OrganizationFields {
        name: Some(input.name.trim().to_owned()),
        address: Patch::set_or_keep(input.address.as_ref().map(|json| json.0.clone())),
        owner: Patch::set_or_keep(input.owner_id),
        metadata: Patch::set_or_keep(input.metadata.as_ref().map(|json| json.0.clone())),
    };
    let created = match clients.crm() {
        Ok(crm) => crm.create_organization(&fields).await,
        Err(error) => Err(error),
    };
    match created {
        Ok(organization) => {
            payload
                .outcomes
                .push(BlockOutcome::ok(Block::Crm, OutcomeStatus::Created));
            Some(organization)
        }
        Err(error) if refuses_field(&error, "name") => {
            let existing = find_organization_by_name(clients, input.name.trim()).await;
            let mut conflict = UserError::from_block(&error, &["input", "name"]);
            conflict.code = crate::error_code::ErrorCode::Conflict.as_str().to_owned();
            if let Some(id) = existing {
                conflict.message = format!(
                    "an organization named {:?} already exists ({id}); to complete its registration pass organizationId",
                    input.name.trim()
                );
            }
            payload.outcomes.push(BlockOutcome {
                block: Block::Crm,
                status: OutcomeStatus::Failed,
                error: Some(conflict.clone()),
            });
            payload.user_errors.push(conflict);
            None
        }
        Err(error) => {
            payload.outcomes.push(BlockOutcome::failed(Block::Crm, &error));
            None
        }
    }
}

/// The id of the organization already named `name`, to point the caller at it; a failed
/// look is only logged (the conflict is reported either way).
async fn find_organization_by_name(clients: &BlockClients, name: &str) -> Option<String> {
    match clients.crm().ok()?.find_organization_named(name).await {
        Ok(found) => found.map(|organization| organization.id),
        Err(error) => {
            tracing::warn!(%error, "could not find the organization a name conflict names");
            None
        }
    }
}

async fn confirm_organization(
    clients: &BlockClients,
    id: &str,
    payload: &mut RegisterOrganizationPayload,
) -> Option<crate::blocks::crm::CrmOrganization> {
    let found = match clients.crm() {
        Ok(crm) => crm.get_organization(id).await,
        Err(error) => Err(error),
    };
    match found {
        Ok(Some(organization)) => {
            payload
                .outcomes
                .push(BlockOutcome::ok(Block::Crm, OutcomeStatus::AlreadyRegistered));
            Some(organization)
        }
        Ok(None) => {
            let error = UserError::new(
                &["input", "organizationId"],
                "NOT_FOUND",
                format!("no CRM organization {id}"),
            );
            payload.outcomes.push(BlockOutcome {
                block: Block::Crm,
                status: OutcomeStatus::Failed,
                error: Some(error.clone()),
            });
            payload.user_errors.push(error);
            None
        }
        Err(error) => {
            payload.outcomes.push(BlockOutcome::failed(Block::Crm, &error));
            None
        }
    }
}

async fn register_sales_entity(
    clients: &BlockClients,
    index: &LinkIndex,
    id: &str,
    entity: &SalesEntityFields,
) -> BlockOutcome {
    let result = async {
        let sales = clients.sales()?;
        let created = sales.register_entity(id, entity).await;
        if created.is_ok() {
            note_lookup(index.record_registered_entity(id, ENTITY_PAGE_SIZE).await);
        }
        created_or_confirmed(created, &[409, 422], async { entity_exists(clients, index, id).await }).await
    }
    .await;
    match result {
        Ok(status) => BlockOutcome::ok(Block::Sales, status),
        Err(error) => BlockOutcome::failed(Block::Sales, &error),
    }
}

/// Whether Sales lists an entity with this unique id (it documents no entity detail read):
/// the whole list is walked when need be, and the entity's page noted in the lookup index.
async fn entity_exists(clients: &BlockClients, index: &LinkIndex, id: &str) -> Result<bool, BlockError> {
    let found = clients.sales()?.find_entity(id).await?;
    if let Some((page, _)) = &found {
        note_lookup(
            index
                .record_entity_positions(&[(id.to_owned(), *page)], ENTITY_PAGE_SIZE)
                .await,
        );
    }
    Ok(found.is_some())
}

/// A lookup index write that failed costs a later walk, never the mutation: logged.
pub(super) fn note_lookup(written: Result<(), LinkError>) {
    if let Err(error) = written {
        tracing::warn!(%error, "could not update the lookup index after a write");
    }
}
