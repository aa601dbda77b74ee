//! The CRM block (organizations, persons, invite, link-user, merge), following
//! `crm-openapi.yaml`. Every path is served under `/api/crm/` and at the bare root, and
//! only with its trailing slash.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::drf::{
    Fields, Listed, PageRules, REQUIRED, Text, contains_ignoring_case, field_error, field_errors, invalid_choice,
    number_filter, paginate,
};
use super::respond::{JsonBody, Params, PathId, Reject, django_time, drf_detail, json_response, lock, now};

/// The platform every record belongs to (the API infers it from the credentials).
pub(crate) const PLATFORM_ID: i64 = 7;
/// The platform's key, as invitations report it.
pub(crate) const PLATFORM_KEY: &str = "sandbox-platform";
/// Platform user ids above this do not exist (link-user answers 404).
pub(crate) const LARGEST_USER_ID: i64 = 100_000;
/// `LifecycleStageEnum`.
pub(crate) const LIFECYCLE_STAGES: &[&str] = &["lead", "qualified", "opportunity", "customer", "churned"];

/// `page` and `page_size` (default 20, at most 100).
const PAGES: PageRules = PageRules {
    size_param: "page_size",
    default_size: 20,
    max_size: 100,
    size_in_links: false,
};

/// A CRM organization.
#[derive(Clone, Debug)]
pub(crate) struct Organization {
    /// Server-assigned UUID.
    pub(crate) id: Uuid,
    /// Unique per platform (case-sensitive).
    pub(crate) name: String,
    /// Free-form JSON address.
    pub(crate) address: Value,
    /// Platform user id of the account manager.
    pub(crate) owner: Option<i64>,
    /// Free-form JSON.
    pub(crate) metadata: Value,
    /// Creation time.
    pub(crate) created_at: DateTime<Utc>,
    /// Last change.
    pub(crate) updated_at: DateTime<Utc>,
}

/// Records attached to a person elsewhere in the CRM; merge re-parents them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Related {
    /// Deals.
    pub(crate) deals: u64,
    /// Activities.
    pub(crate) activities: u64,
    /// Tags.
    pub(crate) tags: u64,
}

/// A CRM person.
#[derive(Clone, Debug)]
pub(crate) struct Person {
    /// Server-assigned UUID.
    pub(crate) id: Uuid,
    /// Display name.
    pub(crate) name: String,
    /// Canonical email, `""` when none (the field is not nullable).
    pub(crate) primary_email: String,
    /// Free-form JSON.
    pub(crate) emails: Value,
    /// Free-form JSON.
    pub(crate) contact_numbers: Value,
    /// Job title, `""` when none.
    pub(crate) job_title: String,
    /// Organization id.
    pub(crate) organization: Option<Uuid>,
    /// Account manager's platform user id.
    pub(crate) owner: Option<i64>,
    /// The platform user this person is bound to.
    pub(crate) platform_user: Option<i64>,
    /// One of [`LIFECYCLE_STAGES`].
    pub(crate) lifecycle_stage: &'static str,
    /// External system id, `""` when none.
    pub(crate) unique_id: String,
    /// False once linked to a platform user or merged into another person.
    pub(crate) active: bool,
    /// Free-form JSON.
    pub(crate) metadata: Value,
    /// Creation time.
    pub(crate) created_at: DateTime<Utc>,
    /// Last change.
    pub(crate) updated_at: DateTime<Utc>,
    /// Records a merge would re-parent.
    pub(crate) related: Related,
}

/// A platform invitation.
#[derive(Clone, Debug)]
pub(crate) struct Invitation {
    /// Integer id.
    pub(crate) id: i64,
    /// The invited address.
    pub(crate) email: String,
    /// The person it was sent for.
    pub(crate) person_id: Uuid,
    /// Active invitations block new ones for the same email.
    pub(crate) active: bool,
    /// Where the invitee lands after accepting.
    pub(crate) redirect_to: Option<String>,
    /// When it was sent.
    pub(crate) created: DateTime<Utc>,
}

/// The CRM block's records. Organizations and persons are only added and removed
/// through its methods, which keep the positions by id up to date.
#[derive(Debug, Default)]
pub(crate) struct CrmData {
    /// Organizations in creation order.
    pub(crate) organizations: Vec<Organization>,
    /// Persons in creation order.
    pub(crate) persons: Vec<Person>,
    /// Invitations sent so far.
    pub(crate) invitations: Vec<Invitation>,
    /// Platform user ids that are members of the platform (link-user accepts only these).
    pub(crate) members: BTreeSet<i64>,
    /// Where each organization is in its list, by id: a lookup does not scan the list.
    organization_positions: HashMap<Uuid, usize>,
    /// Where each person is in its list, by id.
    person_positions: HashMap<Uuid, usize>,
}

impl CrmData {
    /// The CRM with these records.
    pub(crate) fn new(
        organizations: Vec<Organization>,
        persons: Vec<Person>,
        invitations: Vec<Invitation>,
        members: BTreeSet<i64>,
    ) -> Self {
        let mut data = Self {
            organizations,
            persons,
            invitations,
            members,
            ..Self::default()
        };
        data.index_organizations();
        data.index_persons();
        data
    }

    fn index_organizations(&mut self) {
        self.organization_positions = self
            .organizations
            .iter()
            .enumerate()
            .map(|(at, o)| (o.id, at))
            .collect();
    }

    fn index_persons(&mut self) {
        self.person_positions = self.persons.iter().enumerate().map(|(at, p)| (p.id, at)).collect();
    }

    fn add_organization(&mut self, org: Organization) {
        self.organization_positions.insert(org.id, self.organizations.len());
        self.organizations.push(org);
    }

    fn add_person(&mut self, person: Person) {
        self.person_positions.insert(person.id, self.persons.len());
        self.persons.push(person);
    }

    /// Removes the organization at `index`; the ones after it move up (deletes are rare,
    /// so the positions are simply rebuilt).
    fn remove_organization(&mut self, index: usize) -> Organization {
        let org = self.organizations.remove(index);
        self.index_organizations();
        org
    }

    fn remove_person(&mut self, index: usize) -> Person {
        let person = self.persons.remove(index);
        self.index_persons();
        person
    }

    fn organization_index(&self, id: &str) -> Result<usize, Reject> {
        Uuid::parse_str(id)
            .ok()
            .and_then(|id| self.organization_positions.get(&id).copied())
            .ok_or_else(|| not_found().into())
    }

    fn person_index(&self, id: &str) -> Result<usize, Reject> {
        Uuid::parse_str(id)
            .ok()
            .and_then(|id| self.person_positions.get(&id).copied())
            .ok_or_else(|| not_found().into())
    }

    fn has_organization(&self, id: Uuid) -> bool {
        self.organization_positions.contains_key(&id)
    }

    fn has_person(&self, id: Uuid) -> bool {
        self.person_positions.contains_key(&id)
    }
}

/// The `Organization` schema.
fn organization_json(org: &Organization) -> Value {
    json!({
        "id": org.id,
        "platform": PLATFORM_ID,
        "name": org.name,
        "address": org.address,
        "owner": org.owner,
        "metadata": org.metadata,
        "created_at": django_time(org.created_at),
        "updated_at": django_time(org.updated_at),
    })
}

/// The `Person` schema.
fn person_json(person: &Person) -> Value {
    json!({
        "id": person.id,
        "platform": PLATFORM_ID,
        "name": person.name,
        "primary_email": person.primary_email,
        "emails": person.emails,
        "contact_numbers": person.contact_numbers,
        "job_title": person.job_title,
        "organization": person.organization,
        "owner": person.owner,
        "platform_user": person.platform_user,
        "lifecycle_stage": person.lifecycle_stage,
        "unique_id": person.unique_id,
        "active": person.active,
        "metadata": person.metadata,
        "created_at": django_time(person.created_at),
        "updated_at": django_time(person.updated_at),
    })
}

fn not_found() -> Response {
    drf_detail(StatusCode::NOT_FOUND, "Not found.")
}

struct CrmState {
    base_url: String,
    data: Mutex<CrmData>,
}

type Shared = State<Arc<CrmState>>;

/// The CRM routes, each under `/api/crm` and at the root.
pub(crate) fn router(data: CrmData, base_url: &str) -> Router {
    let state = Arc::new(CrmState {
        base_url: base_url.to_owned(),
        data: Mutex::new(data),
    });
    let routes: [(&str, MethodRouter<Arc<CrmState>>); 7] = [
        ("/organizations/", get(list_organizations).post(create_organization)),
        (
            "/organizations/{id}/",
            get(show_organization)
                .put(replace_organization)
                .patch(patch_organization)
                .delete(delete_organization),
        ),
        ("/persons/", get(list_persons).post(create_person)),
        // A static segment wins over `{id}`, so `merge` is never read as a person id.
        ("/persons/merge/", post(merge_persons)),
        (
            "/persons/{id}/",
            get(show_person)
                .put(replace_person)
                .patch(patch_person)
                .delete(delete_person),
        ),
        ("/persons/{id}/invite/", post(invite_person)),
        ("/persons/{id}/link-user/", post(link_user)),
    ];
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, method_router)| {
            router
                .route(&format!("/api/crm{path}"), method_router.clone())
                .route(path, method_router)
        })
        .with_state(state)
}

/// Create, full replace (PUT) or partial update (PATCH): only the first two need `name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Create,
    Replace,
    Patch,
}

impl Write {
    fn requires_name(self) -> bool {
        self != Self::Patch
    }
}

const NAME: Text = Text {
    required: true,
    allow_blank: false,
    max_length: 255,
};

// ---------------------------------------------------------------- organizations

/// The writable organization fields a request supplied.
#[derive(Debug, Default)]
struct OrganizationInput {
    name: Option<String>,
    address: Option<Value>,
    owner: Option<Option<i64>>,
    metadata: Option<Value>,
}

impl OrganizationInput {
    fn read(body: &Value, data: &CrmData, write: Write, this: Option<Uuid>) -> Result<Self, Reject> {
        let mut fields = Fields::new(body)?;
        let rule = Text {
            required: write.requires_name(),
            ..NAME
        };
        let name = fields.text("name", rule);
        let taken = name
            .as_ref()
            .is_some_and(|name| data.organizations.iter().any(|o| &o.name == name && Some(o.id) != this));
        if taken {
            fields.add("name", "organization with this name already exists.");
        }
        let input = Self {
            name,
            address: fields.any("address"),
            owner: fields.integer("owner", false, true),
            metadata: fields.any("metadata"),
        };
        fields.finish()?;
        Ok(input)
    }

    fn apply(self, org: &mut Organization) {
        if let Some(name) = self.name {
            org.name = name;
        }
        if let Some(address) = self.address {
            org.address = address;
        }
        if let Some(owner) = self.owner {
            org.owner = owner;
        }
        if let Some(metadata) = self.metadata {
            org.metadata = metadata;
        }
        org.updated_at = now();
    }
}

async fn list_organizations(State(state): Shared, params: Params) -> Response {
    let data = lock(&state.data);
    let mut errors = Map::new();
    let owner = number_filter(&params, "owner", &mut errors);
    if !errors.is_empty() {
        return field_errors(errors);
    }
    let name = params.filter("name").map(str::to_lowercase);
    let keep = |o: &Organization| {
        name.as_deref().is_none_or(|n| contains_ignoring_case(&o.name, n))
            && owner.is_none_or(|w| o.owner.is_some_and(|x| x as f64 == w))
    };
    let listed = if name.is_none() && owner.is_none() {
        Listed::all(&data.organizations)
    } else {
        Listed::filtered(&data.organizations, &keep)
    };
    paginate(listed, organization_json, &params, &state.base_url, PAGES)
}

async fn create_organization(State(state): Shared, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let input = OrganizationInput::read(&body, &data, Write::Create, None)?;
    let stamp = now();
    let mut org = Organization {
        id: Uuid::new_v4(),
        name: String::new(),
        address: json!({}),
        owner: None,
        metadata: json!({}),
        created_at: stamp,
        updated_at: stamp,
    };
    input.apply(&mut org);
    let answer = organization_json(&org);
    data.add_organization(org);
    Ok(json_response(StatusCode::CREATED, answer))
}

async fn show_organization(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let data = lock(&state.data);
    let index = data.organization_index(&id)?;
    Ok(json_response(
        StatusCode::OK,
        organization_json(&data.organizations[index]),
    ))
}

async fn replace_organization(
    State(state): Shared,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Result<Response, Reject> {
    write_organization(&state, &id, &body, Write::Replace)
}

async fn patch_organization(
    State(state): Shared,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Result<Response, Reject> {
    write_organization(&state, &id, &body, Write::Patch)
}

fn write_organization(state: &CrmState, id: &str, body: &Value, write: Write) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.organization_index(id)?;
    let this = data.organizations[index].id;
    let input = OrganizationInput::read(body, &data, write, Some(this))?;
    let org = &mut data.organizations[index];
    input.apply(org);
    Ok(json_response(StatusCode::OK, organization_json(org)))
}

/// Deletes the organization; its persons stay, with `organization` cleared.
async fn delete_organization(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.organization_index(&id)?;
    let org = data.remove_organization(index);
    for person in data.persons.iter_mut().filter(|p| p.organization == Some(org.id)) {
        person.organization = None;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------- persons

/// The writable person fields a request supplied.
#[derive(Debug, Default)]
struct PersonInput {
    name: Option<String>,
    primary_email: Option<String>,
    emails: Option<Value>,
    contact_numbers: Option<Value>,
    job_title: Option<String>,
    organization: Option<Option<Uuid>>,
    owner: Option<Option<i64>>,
    lifecycle_stage: Option<&'static str>,
    unique_id: Option<String>,
    metadata: Option<Value>,
}

impl PersonInput {
    fn read(body: &Value, data: &CrmData, write: Write, this: Option<Uuid>) -> Result<Self, Reject> {
        let mut fields = Fields::new(body)?;
        let optional_text = |max_length| Text {
            required: false,
            allow_blank: true,
            max_length,
        };
        let name_rule = Text {
            required: write.requires_name(),
            ..NAME
        };
        let input = Self {
            name: fields.text("name", name_rule),
            primary_email: fields.email("primary_email", optional_text(254)),
            emails: fields.any("emails"),
            contact_numbers: fields.any("contact_numbers"),
            job_title: fields.text("job_title", optional_text(255)),
            organization: fields.related_uuid("organization"),
            owner: fields.integer("owner", false, true),
            lifecycle_stage: fields.choice("lifecycle_stage", false, LIFECYCLE_STAGES),
            unique_id: fields.text("unique_id", optional_text(128)),
            metadata: fields.any("metadata"),
        };
        if let Some(Some(org)) = input.organization
            && !data.has_organization(org)
        {
            fields.add("organization", format!("Invalid pk \"{org}\" - object does not exist."));
        }
        let unique_id_taken = input
            .unique_id
            .as_deref()
            .filter(|u| !u.is_empty())
            .is_some_and(|u| data.persons.iter().any(|p| p.unique_id == u && Some(p.id) != this));
        if unique_id_taken {
            fields.add("unique_id", "person with this unique id already exists.");
        }
        fields.finish()?;
        Ok(input)
    }

    fn apply(self, person: &mut Person) {
        if let Some(name) = self.name {
            person.name = name;
        }
        if let Some(primary_email) = self.primary_email {
            person.primary_email = primary_email;
        }
        if let Some(emails) = self.emails {
            person.emails = emails;
        }
        if let Some(contact_numbers) = self.contact_numbers {
            person.contact_numbers = contact_numbers;
        }
        if let Some(job_title) = self.job_title {
            person.job_title = job_title;
        }
        if let Some(organization) = self.organization {
            person.organization = organization;
        }
        if let Some(owner) = self.owner {
            person.owner = owner;
        }
        if let Some(stage) = self.lifecycle_stage {
            person.lifecycle_stage = stage;
        }
        if let Some(unique_id) = self.unique_id {
            person.unique_id = unique_id;
        }
        if let Some(metadata) = self.metadata {
            person.metadata = metadata;
        }
        person.updated_at = now();
    }
}

/// The persons list's django-filter parameters.
#[derive(Debug, Default)]
struct PersonFilter {
    lifecycle_stage: Option<String>,
    owner: Option<f64>,
    organization: Option<Uuid>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    metadata_key: Option<String>,
}

impl PersonFilter {
    fn parse(params: &Params, data: &CrmData) -> Result<Self, Reject> {
        let mut errors = Map::new();
        let mut filter = Self {
            owner: number_filter(params, "owner", &mut errors),
            metadata_key: params.filter("metadata__has_key").map(str::to_owned),
            ..Self::default()
        };
        if let Some(stage) = params.filter("lifecycle_stage") {
            if LIFECYCLE_STAGES.contains(&stage) {
                filter.lifecycle_stage = Some(stage.to_owned());
            } else {
                errors.insert("lifecycle_stage".to_owned(), invalid_choice(stage));
            }
        }
        if let Some(text) = params.filter("organization") {
            filter.organization = Uuid::parse_str(text.trim())
                .ok()
                .filter(|id| data.has_organization(*id));
            if filter.organization.is_none() {
                errors.insert(
                    "organization".to_owned(),
                    json!(["Select a valid choice. That choice is not one of the available choices."]),
                );
            }
        }
        for (name, slot) in [
            ("created_at__gte", &mut filter.created_from),
            ("created_at__lte", &mut filter.created_to),
        ] {
            if let Some(text) = params.filter(name) {
                *slot = parse_datetime(text);
                if slot.is_none() {
                    errors.insert(name.to_owned(), json!(["Enter a valid date/time."]));
                }
            }
        }
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(field_errors(errors).into())
        }
    }

    /// Whether no filter was given (every person is listed).
    fn is_empty(&self) -> bool {
        self.lifecycle_stage.is_none()
            && self.owner.is_none()
            && self.organization.is_none()
            && self.created_from.is_none()
            && self.created_to.is_none()
            && self.metadata_key.is_none()
    }

    fn accepts(&self, person: &Person) -> bool {
        self.lifecycle_stage
            .as_deref()
            .is_none_or(|s| person.lifecycle_stage == s)
            && self.owner.is_none_or(|w| person.owner.is_some_and(|o| o as f64 == w))
            && self.organization.is_none_or(|org| person.organization == Some(org))
            && self.created_from.is_none_or(|t| person.created_at >= t)
            && self.created_to.is_none_or(|t| person.created_at <= t)
            && self
                .metadata_key
                .as_deref()
                .is_none_or(|key| person.metadata.as_object().is_some_and(|m| m.contains_key(key)))
    }
}

/// An ISO 8601 date-time as django-filter reads it: with an offset, naive (taken as UTC),
/// or a bare date (midnight). A `+` offset arrives as a space when the client did not
/// percent-encode it, so that is read back too.
fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let repaired = text.replacen(' ', "+", usize::from(text.len() > 19));
    DateTime::parse_from_rfc3339(&repaired)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

async fn list_persons(State(state): Shared, params: Params) -> Response {
    let data = lock(&state.data);
    let filter = match PersonFilter::parse(&params, &data) {
        Ok(filter) => filter,
        Err(reject) => return reject.into_response(),
    };
    let keep = |p: &Person| filter.accepts(p);
    let listed = if filter.is_empty() {
        Listed::all(&data.persons)
    } else {
        Listed::filtered(&data.persons, &keep)
    };
    paginate(listed, person_json, &params, &state.base_url, PAGES)
}

async fn create_person(State(state): Shared, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let input = PersonInput::read(&body, &data, Write::Create, None)?;
    let stamp = now();
    let mut person = Person {
        id: Uuid::new_v4(),
        name: String::new(),
        primary_email: String::new(),
        emails: json!([]),
        contact_numbers: json!([]),
        job_title: String::new(),
        organization: None,
        owner: None,
        platform_user: None,
        lifecycle_stage: LIFECYCLE_STAGES[0],
        unique_id: String::new(),
        active: true,
        metadata: json!({}),
        created_at: stamp,
        updated_at: stamp,
        related: Related::default(),
    };
    input.apply(&mut person);
    let answer = person_json(&person);
    data.add_person(person);
    Ok(json_response(StatusCode::CREATED, answer))
}

async fn show_person(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let data = lock(&state.data);
    let index = data.person_index(&id)?;
    Ok(json_response(StatusCode::OK, person_json(&data.persons[index])))
}

async fn replace_person(
    State(state): Shared,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Result<Response, Reject> {
    write_person(&state, &id, &body, Write::Replace)
}

async fn patch_person(State(state): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    write_person(&state, &id, &body, Write::Patch)
}

fn write_person(state: &CrmState, id: &str, body: &Value, write: Write) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.person_index(id)?;
    let this = data.persons[index].id;
    let input = PersonInput::read(body, &data, write, Some(this))?;
    let person = &mut data.persons[index];
    input.apply(person);
    Ok(json_response(StatusCode::OK, person_json(person)))
}

async fn delete_person(State(state): Shared, PathId(id): PathId) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.person_index(&id)?;
    data.remove_person(index);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----------------------------------------------------------- invite, link, merge

/// `POST /persons/{id}/invite/`: 404, 400 (no email), 422 (already linked), 409 (an
/// active invitation exists for the email) or 201 with the new invitation.
async fn invite_person(State(state): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.person_index(&id)?;
    let mut fields = Fields::new(&body)?;
    // The privileges only matter once the invitee accepts, which the sandbox never sees;
    // they are still validated like the real serializer does.
    let _is_admin = fields.boolean("is_admin");
    let _is_staff = fields.boolean("is_staff");
    let _enrollment = fields.dict("enrollment_config");
    let redirect_rule = Text {
        required: false,
        allow_blank: true,
        max_length: 255,
    };
    let redirect_to = fields.text("redirect_to", redirect_rule).filter(|r| !r.is_empty());
    fields.finish()?;

    let person = &data.persons[index];
    if person.primary_email.is_empty() {
        return Err(drf_detail(StatusCode::BAD_REQUEST, "Person has no primary_email; cannot invite.").into());
    }
    if person.platform_user.is_some() {
        return Err(drf_detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Person is already linked to a platform user.",
        )
        .into());
    }
    let email = person.primary_email.clone();
    let person_id = person.id;
    if let Some(existing) = data
        .invitations
        .iter()
        .find(|i| i.active && i.email.eq_ignore_ascii_case(&email))
    {
        return Err(json_response(
            StatusCode::CONFLICT,
            json!({
                "detail": "An active invitation already exists for this email.",
                "invitation_id": existing.id,
                "person_id": person_id,
                "platform_key": PLATFORM_KEY,
            }),
        )
        .into());
    }

    let invitation = Invitation {
        id: data.invitations.iter().map(|i| i.id).max().unwrap_or(0) + 1,
        email,
        person_id,
        active: true,
        redirect_to,
        created: now(),
    };
    let answer = json!({
        "person_id": invitation.person_id,
        "invitation_id": invitation.id,
        "invitation_email": invitation.email,
        "platform_key": PLATFORM_KEY,
        "auto_accept": false,
        "active": invitation.active,
        "redirect_to": invitation.redirect_to,
        "created": django_time(invitation.created),
    });
    data.invitations.push(invitation);
    Ok(json_response(StatusCode::CREATED, answer))
}

/// `POST /persons/{id}/link-user/`: binds an unbound person to a platform member.
/// Re-linking to the same user is a no-op; a person bound to someone else comes back
/// unchanged with 200, exactly as the contract says (the caller must compare).
async fn link_user(State(state): Shared, PathId(id): PathId, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let index = data.person_index(&id)?;
    let mut fields = Fields::new(&body)?;
    let user_id = fields.integer("user_id", true, false).flatten();
    fields.finish()?;
    let Some(user_id) = user_id else {
        return Err(field_error("user_id", REQUIRED).into());
    };
    if !(1..=LARGEST_USER_ID).contains(&user_id) {
        return Err(drf_detail(StatusCode::NOT_FOUND, "User not found.").into());
    }
    if !data.members.contains(&user_id) {
        return Err(drf_detail(
            StatusCode::FORBIDDEN,
            "User is not a member of this platform; invite them first.",
        )
        .into());
    }
    let person = &mut data.persons[index];
    if person.platform_user.is_none() {
        person.platform_user = Some(user_id);
        person.active = false;
        person.updated_at = now();
    }
    Ok(json_response(StatusCode::OK, person_json(person)))
}

/// `POST /persons/merge/`: marks the duplicates inactive and moves their related records
/// onto the primary, reporting how many moved (zero for a duplicate merged before).
async fn merge_persons(State(state): Shared, JsonBody(body): JsonBody) -> Result<Response, Reject> {
    let mut data = lock(&state.data);
    let mut fields = Fields::new(&body)?;
    let primary = fields.uuid("primary_id", true);
    let duplicates = fields.uuid_list("duplicate_ids", true);
    let primary_repeated = match (primary, &duplicates) {
        (Some(primary), Some(duplicates)) => duplicates.contains(&primary),
        _ => false,
    };
    if primary_repeated {
        fields.add("duplicate_ids", "primary_id may not appear in duplicate_ids.");
    }
    fields.finish()?;
    let (Some(primary), Some(mut duplicates)) = (primary, duplicates) else {
        return Err(field_error("duplicate_ids", REQUIRED).into());
    };
    let primary_index = data.person_index(&primary.to_string())?;
    let mut seen = BTreeSet::new();
    duplicates.retain(|id| seen.insert(*id));
    let unknown: Vec<String> = duplicates
        .iter()
        .filter(|id| !data.has_person(**id))
        .map(Uuid::to_string)
        .collect();
    if !unknown.is_empty() {
        let message = format!("These persons do not belong to this platform: {}.", unknown.join(", "));
        return Err(field_error("duplicate_ids", &message).into());
    }

    let stamp = now();
    let mut moved = Related::default();
    let positions: Vec<usize> = duplicates
        .iter()
        .filter_map(|id| data.person_positions.get(id).copied())
        .collect();
    for position in positions {
        let person = &mut data.persons[position];
        moved.deals += person.related.deals;
        moved.activities += person.related.activities;
        moved.tags += person.related.tags;
        person.related = Related::default();
        person.active = false;
        person.updated_at = stamp;
    }
    let primary_person = &mut data.persons[primary_index];
    primary_person.related.deals += moved.deals;
    primary_person.related.activities += moved.activities;
    primary_person.related.tags += moved.tags;
    primary_person.updated_at = stamp;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "primary_id": primary,
            "merged_ids": duplicates,
            "reparented": {
                "deals": moved.deals,
                "activities": moved.activities,
                "tags": moved.tags,
            },
        }),
    ))
}
