//! The production-sized data set: exactly as many CRM persons and organizations, Sales
//! entities and users, and B2B users as [`LargeData`] asks for, each count met on its own,
//! built from the seed in a fraction of a second (release build).
//!
//! Its shapes are the ones a gateway must get right at scale: Sales entities of CRM
//! organizations from the first position of the entity list to the last, organizations
//! with persons, persons bound to Sales users, and B2B users whose emails look alike, so
//! that the B2B block's case-insensitive *contains* filter answers hundreds of users
//! before the one with the exact email. [`LargeIndex`] says where each of them is.
//!
//! Records are placed by arithmetic rather than drawn, so the index is known without
//! searching the data, and every count may be anything from 0 up.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use fastrand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::assets::AssetsData;
use super::b2b::{B2bData, B2bUser, REMOTE_ID_OFFSET};
use super::crm::{CrmData, Invitation, Organization, Person};
use super::demo::{
    CITIES, COMPANY_NAMES, DemoInvitation, FIRST_NAMES, INDUSTRIES, LAST_NAMES, MEMBER_IDS, PersonSeed,
    SEEDED_INVITATION_ID, STANDALONE_ENTITIES, STREETS, Seeded, attributes, divisions, entity, index_without_records,
    minutes_after, person, pick, shop_token, uuid,
};
use super::rails::Store;
use super::respond::rails_time;
use super::sales::SalesData;

/// How many records of each kind a large data set holds. Each count is met exactly and
/// independently of the others (any of them may be 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LargeData {
    /// CRM persons.
    pub crm_persons: usize,
    /// CRM organizations.
    pub crm_organizations: usize,
    /// Sales entities: those of CRM organizations and standalone ones together.
    pub sales_entities: usize,
    /// Sales users.
    pub sales_users: usize,
    /// B2B users.
    pub b2b_users: usize,
}

impl LargeData {
    /// The sizes of the production blocks: 40,000 CRM persons, 30,000 organizations,
    /// 23,000 Sales entities, 16,000 Sales users and 10,000 B2B users.
    pub const PRODUCTION: Self = Self {
        crm_persons: 40_000,
        crm_organizations: 30_000,
        sales_entities: 23_000,
        sales_users: 16_000,
        b2b_users: 10_000,
    };
}

/// Which data set the sandbox seeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SandboxSize {
    /// The demo data set, sized by [`SandboxOptions::identities`](crate::SandboxOptions):
    /// a few hundred records with every interesting case (see [`DemoIndex`](crate::DemoIndex)).
    #[default]
    Demo,
    /// A production-sized data set with these counts (see [`LargeIndex`]). The Search,
    /// Assets and Sales customer blocks stay empty in it.
    Large(LargeData),
}

/// A CRM person of a large data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargePerson {
    /// Person UUID.
    pub id: Uuid,
    /// Its position in the persons list (0-based, creation order): with pages of `n`, it
    /// is on page `position / n + 1`.
    pub position: usize,
    /// Primary email (lower case, unique).
    pub primary_email: String,
    /// The Sales user's `unique_id` it is bound to, or `""`.
    pub unique_id: String,
    /// Its organization, if any.
    pub organization: Option<Uuid>,
}

/// A B2B user whose email is a Sales user's, in another case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargeB2bIdentity {
    /// B2B user id.
    pub user_id: i64,
    /// Its email as the B2B block stores it (mixed case).
    pub stored_email: String,
    /// The Sales user's `unique_id`.
    pub identity_id: String,
    /// The Sales user's email (lower case).
    pub identity_email: String,
}

/// The B2B user whose email other users' emails contain: filtering the B2B list by its
/// email (case-insensitive *contains*) lists all of those first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookAlike {
    /// The email as a caller asks for it, in lower case (`ann@large.example`).
    pub email: String,
    /// The same email as the B2B block stores it (another case).
    pub stored_email: String,
    /// The B2B user with exactly this email (in any case).
    pub user_id: i64,
    /// How many other users' emails contain it (in any case): 300 with more than 300 B2B
    /// users, else every other user. Every one of them comes before it in list (id) order, so in
    /// the list filtered by [`LookAlike::email`] it is at this (0-based) position, the
    /// last one.
    pub contained_in: usize,
    /// Its position in the unfiltered B2B users list (0-based, id order).
    pub position: usize,
}

/// What a large data set seeded, so tests and benchmarks can pick records at the far
/// end of every list. Positions are 0-based in list order, which is creation order and
/// stays stable while the sandbox serves (until records are added or deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargeIndex {
    /// The seed the data was built from.
    pub seed: u64,
    /// How many records of each kind were seeded.
    pub counts: LargeData,
    /// Organizations with a Sales entity whose `unique_id` is the organization's id: three
    /// in four, as long as at least one entity in ten is left standalone (so 20,700 of
    /// the 30,000 production organizations).
    pub organizations_with_entity: usize,
    /// Sales entities of no organization, spread between the organizations' entities.
    pub standalone_entities: usize,
    /// The organization whose Sales entity is the first of the entity list (so on its
    /// first page whatever the page size); `None` without organization entities.
    pub first_page_organization_id: Option<Uuid>,
    /// The organization whose Sales entity is the last of the entity list (so on its
    /// last page whatever the page size); `None` with fewer than two organization
    /// entities (unless the list holds one entity).
    pub last_page_organization_id: Option<Uuid>,
    /// The first organization, which one person in 25 belongs to (every organization
    /// has persons when there are at least 1.2 persons per organization).
    pub crowded_organization_id: Option<Uuid>,
    /// How many persons belong to the crowded organization.
    pub crowded_organization_persons: usize,
    /// Persons whose `unique_id` is a Sales user's (three in four Sales users have one,
    /// at most every other person), spread over the list up to its last person.
    pub identity_persons: usize,
    /// A few persons deep in the list: at its half, at three quarters and the last one
    /// (which is bound to a Sales user whenever any person is).
    pub deep_persons: Vec<LargePerson>,
    /// B2B users whose email is a Sales user's (in another case).
    pub b2b_identity_users: usize,
    /// The last of those, when there is one.
    pub deep_b2b_identity: Option<LargeB2bIdentity>,
    /// The look-alike email and its user; `None` without B2B users.
    pub look_alike: Option<LookAlike>,
}

/// How many B2B users have an email containing the look-alike target (fewer when there
/// are not that many users). More than 250: the target is past the second full page of
/// the filtered list at the largest page size (100).
const LOOK_ALIKES: usize = 300;

/// The look-alike target, as a caller asks for it and as it is stored.
const TARGET_EMAIL: &str = "ann@large.example";
const TARGET_STORED_EMAIL: &str = "Ann@Large.example";

/// Two-letter syllables whose pairs make the look-alike names (`jo` + `le` + `ann`):
/// all of one length, so every pair is a different name. 20 x 20 = 400 names.
const SYLLABLES: &[&str] = &[
    "jo", "le", "ma", "ro", "su", "de", "ka", "li", "br", "ja", "sh", "ly", "di", "ti", "re", "lu", "co", "ha", "vi",
    "na",
];

/// The timestamps of a large data set count back from the demo's epoch.
const MINUTES_PER_YEAR: i64 = 365 * 24 * 60;

/// Whether item `i` of `total` is one of `chosen` items spread evenly over them (exactly
/// `chosen` are, the last item always among them when `chosen > 0`), and its rank among
/// them (`i * chosen / total`).
fn spread(i: usize, chosen: usize, total: usize) -> Option<usize> {
    let rank = i * chosen / total;
    ((i + 1) * chosen / total > rank).then_some(rank)
}

/// Builds a large data set from `seed`. Each block draws from its own generator.
pub(crate) fn seed(seed: u64, counts: LargeData) -> Seeded {
    let users = sales_users(&mut Rng::with_seed(seed ^ 0x1A46_0001), counts.sales_users);
    let organizations = organizations(&mut Rng::with_seed(seed ^ 0x1A46_0002), counts.crm_organizations);
    let entities = entities(
        &mut Rng::with_seed(seed ^ 0x1A46_0003),
        &organizations,
        counts.sales_entities,
    );
    let crm = crm(
        &mut Rng::with_seed(seed ^ 0x1A46_0004),
        &users,
        organizations,
        counts.crm_persons,
    );
    let b2b = b2b(&mut Rng::with_seed(seed ^ 0x1A46_0005), &users, counts.b2b_users);

    let divisions = b2b.data.divisions.clone();
    let large = LargeIndex {
        seed,
        counts,
        organizations_with_entity: entities.organization_entities,
        standalone_entities: counts.sales_entities - entities.organization_entities,
        first_page_organization_id: entities.first,
        last_page_organization_id: entities.last,
        crowded_organization_id: crm.data.organizations.first().map(|o| o.id),
        crowded_organization_persons: crm.crowded_persons,
        identity_persons: crm.identity_persons,
        deep_persons: crm.deep_persons,
        b2b_identity_users: b2b.identity_users,
        deep_b2b_identity: b2b.deep_identity,
        look_alike: b2b.look_alike,
    };
    Seeded {
        sales: SalesData {
            users: users.store,
            entities: entities.store,
            customers: Store::default(),
        },
        search: Store::default(),
        assets: AssetsData::default(),
        b2b: b2b.data,
        crm: crm.data,
        index: index_without_records(seed, &divisions, crm.invitation),
        large: Some(large),
    }
}

/// One Sales user, as the other blocks refer to it.
struct SalesUser {
    unique_id: String,
    first: &'static str,
    last: &'static str,
    /// `first.last.N@large.example`, lower case.
    email: String,
}

/// The Sales users and their store.
struct SalesUsers {
    users: Vec<SalesUser>,
    store: Store,
}

fn sales_users(rng: &mut Rng, count: usize) -> SalesUsers {
    let mut users = Vec::with_capacity(count);
    let mut store = Store::default();
    for i in 0..count {
        let first = *pick(rng, FIRST_NAMES);
        let last = *pick(rng, LAST_NAMES);
        let unique_id = uuid(rng).to_string();
        let email = format!(
            "{}.{}.{}@large.example",
            first.to_lowercase(),
            last.to_lowercase(),
            i + 1
        );
        let created_at = minutes_after(-2 * MINUTES_PER_YEAR + i as i64 * 29);
        let user = json!({
            "unique_id": unique_id,
            "email": email,
            "first_name": first,
            "last_name": last,
            "display_name": format!("{first} {last}"),
            "phone": (rng.f64() < 0.9).then(|| format!("+1555{:07}", rng.u32(..10_000_000))),
            "status": if rng.f64() < 0.95 { "active" } else { "inactive" },
            "orders_count": rng.u32(0..40),
            "created_at": rails_time(created_at),
            "updated_at": rails_time(created_at + TimeDelta::days(rng.i64(0..30))),
        });
        store.insert(unique_id.clone(), attributes(user));
        users.push(SalesUser {
            unique_id,
            first,
            last,
            email,
        });
    }
    SalesUsers { users, store }
}

/// The organizations, named `<company> <n>` (unique, as the CRM requires).
fn organizations(rng: &mut Rng, count: usize) -> Vec<Organization> {
    (0..count)
        .map(|j| {
            let created_at = minutes_after(-3 * MINUTES_PER_YEAR + j as i64 * 17);
            Organization {
                id: uuid(rng),
                name: format!(
                    "{} {}",
                    COMPANY_NAMES[j % COMPANY_NAMES.len()],
                    j / COMPANY_NAMES.len() + 1
                ),
                address: json!({
                    "street": format!("{} {} Street", rng.u32(1..300), pick(rng, STREETS)),
                    "city": pick(rng, CITIES),
                    "country": "US",
                }),
                owner: (j % 7 != 3).then(|| rng.i64(1..=5)),
                metadata: json!({
                    "industry": pick(rng, INDUSTRIES),
                    "employees": rng.u32(5..5000),
                }),
                created_at,
                updated_at: created_at + TimeDelta::days(rng.i64(0..10)),
            }
        })
        .collect()
}

/// The Sales entities and where the organizations' ones are.
struct Entities {
    store: Store,
    organization_entities: usize,
    first: Option<Uuid>,
    last: Option<Uuid>,
}

/// Three organizations in four have an entity (spread over the organizations, the last
/// one included), as long as at least one entity in ten is standalone: both kinds exist
/// in lists of ten entities or more. The organizations' entities keep their organizations' order and are
/// spread over the list from its first position to its last.
fn entities(rng: &mut Rng, organizations: &[Organization], count: usize) -> Entities {
    let backed = (organizations.len() * 3).div_ceil(4).min(count - count / 10);
    let mut owners = organizations
        .iter()
        .enumerate()
        .filter(|(j, _)| spread(*j, backed, organizations.len()).is_some())
        .map(|(_, org)| org);
    // The k-th organization entity sits at k * (count - 1) / (backed - 1): the first at
    // 0, the last at count - 1, at least one position apart since count >= backed.
    let position_of = |k: usize| if backed < 2 { 0 } else { k * (count - 1) / (backed - 1) };
    let mut store = Store::default();
    let (mut first, mut last) = (None, None);
    let mut placed = 0;
    for position in 0..count {
        if placed < backed
            && position == position_of(placed)
            && let Some(org) = owners.next()
        {
            let id = org.id.to_string();
            store.insert(id.clone(), entity(&id, &org.name, "organization", org.created_at));
            if position == 0 {
                first = Some(org.id);
            }
            if position + 1 == count {
                last = Some(org.id);
            }
            placed += 1;
            continue;
        }
        let id = uuid(rng).to_string();
        let kind = STANDALONE_ENTITIES[position % STANDALONE_ENTITIES.len()];
        let name = format!("{kind} {}", position + 1);
        let created_at = minutes_after(-3 * MINUTES_PER_YEAR + position as i64 * 23);
        store.insert(id.clone(), entity(&id, &name, "channel", created_at));
    }
    Entities {
        store,
        organization_entities: placed,
        first,
        last,
    }
}

/// The CRM records and what the index tells about them.
struct CrmSeed {
    data: CrmData,
    invitation: DemoInvitation,
    crowded_persons: usize,
    identity_persons: usize,
    deep_persons: Vec<LargePerson>,
}

/// Persons: one in 25 in the crowded (first) organization, one in ten in none, the
/// others in every organization in turn; some spread over the list bound to Sales users
/// (with the user's email), the others with an email of their own; every ninth bound to a
/// platform member. The first person with an email and no binding has the active
/// invitation.
fn crm(rng: &mut Rng, users: &SalesUsers, organizations: Vec<Organization>, count: usize) -> CrmSeed {
    let org_ids: Vec<Uuid> = organizations.iter().map(|o| o.id).collect();
    let identities = (users.users.len() / 4 * 3).min(count / 2);
    let mut persons = Vec::with_capacity(count);
    let mut turn = 0;
    for i in 0..count {
        let organization = if org_ids.is_empty() || i % 10 == 9 {
            None
        } else if i % 25 == 0 {
            Some(org_ids[0])
        } else {
            turn += 1;
            Some(org_ids[(turn - 1) % org_ids.len()])
        };
        let user = spread(i, identities, count).map(|rank| &users.users[rank * users.users.len() / identities]);
        let seed = match user {
            Some(user) => PersonSeed {
                name: format!("{} {}", user.first, user.last),
                email: user.email.clone(),
                unique_id: user.unique_id.clone(),
                organization,
                platform_user: None,
                created_at: person_created_at(i),
            },
            None => {
                let first = *pick(rng, FIRST_NAMES);
                let last = *pick(rng, LAST_NAMES);
                PersonSeed {
                    name: format!("{first} {last}"),
                    email: format!(
                        "{}.{}.p{}@crm.large.example",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        i + 1
                    ),
                    unique_id: String::new(),
                    organization,
                    platform_user: None,
                    created_at: person_created_at(i),
                }
            }
        };
        let seed = PersonSeed {
            platform_user: (i % 9 == 4).then_some(1 + (i as i64 * 7) % 50),
            ..seed
        };
        let mut person = person(rng, seed);
        // The demo's alternate email repeats with the name; here every email is unique.
        if person.emails.as_array().is_some_and(|emails| !emails.is_empty()) {
            let local = person.primary_email.split('@').next().unwrap_or_default();
            person.emails = json!([format!("{local}@personal.example")]);
        }
        persons.push(person);
    }

    let crowded_persons = org_ids.first().map_or(0, |&crowded| {
        persons.iter().filter(|p| p.organization == Some(crowded)).count()
    });
    let deep_persons = [count / 2, count * 3 / 4, count.saturating_sub(1)]
        .into_iter()
        .filter(|&position| position < count)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|position| large_person(&persons[position], position))
        .collect();
    let invited = persons
        .iter()
        .find(|p| p.unique_id.is_empty() && !p.primary_email.is_empty() && p.platform_user.is_none());
    let invitation = DemoInvitation {
        id: SEEDED_INVITATION_ID,
        person_id: invited.map_or(Uuid::nil(), |p| p.id),
        email: invited.map(|p| p.primary_email.clone()).unwrap_or_default(),
    };
    let invitations = invited
        .map(|p| Invitation {
            id: SEEDED_INVITATION_ID,
            email: p.primary_email.clone(),
            person_id: p.id,
            active: true,
            redirect_to: None,
            created: minutes_after(-MINUTES_PER_YEAR),
        })
        .into_iter()
        .collect();
    CrmSeed {
        data: CrmData::new(organizations, persons, invitations, MEMBER_IDS.collect()),
        invitation,
        crowded_persons,
        identity_persons: identities,
        deep_persons,
    }
}

fn person_created_at(i: usize) -> DateTime<Utc> {
    minutes_after(-2 * MINUTES_PER_YEAR + i as i64 * 13)
}

fn large_person(person: &Person, position: usize) -> LargePerson {
    LargePerson {
        id: person.id,
        position,
        primary_email: person.primary_email.clone(),
        unique_id: person.unique_id.clone(),
        organization: person.organization,
    }
}

/// The B2B records and what the index tells about them.
struct B2bSeed {
    data: B2bData,
    identity_users: usize,
    deep_identity: Option<LargeB2bIdentity>,
    look_alike: Option<LookAlike>,
}

/// What a B2B user is, before its record is built.
enum B2bRole<'a> {
    /// The look-alike target.
    Target,
    /// The k-th user whose email contains the target.
    LookAlike(usize),
    /// A user with a Sales user's email (in another case).
    Identity(&'a SalesUser),
    /// A user of the B2B block only, the r-th such.
    Own(usize),
}

/// B2B users, all listed (each has a remote id), ids in list order. The look-alikes are
/// spread over the first nine tenths of the list, the target right after them (at nine
/// tenths, or after the last look-alike in a short list); the other users alternate
/// between Sales users' emails (mixed case) and emails of their own (some mixed case).
fn b2b(rng: &mut Rng, users: &SalesUsers, count: usize) -> B2bSeed {
    let look_alikes = LOOK_ALIKES.min(count.saturating_sub(1));
    let target = (count > 0).then(|| look_alikes.max(count * 9 / 10));
    let regular = count - look_alikes - usize::from(target.is_some());
    let identities = (users.users.len() / 2).min(regular / 2);

    let mut data = B2bData {
        divisions: divisions(),
        users: Vec::with_capacity(count),
    };
    let mut deep_identity = None;
    let mut look_alike = None;
    let (mut next_look_alike, mut next_regular) = (0, 0);
    for position in 0..count {
        let role = if Some(position) == target {
            B2bRole::Target
        } else if next_look_alike < look_alikes && position == next_look_alike * target.unwrap_or(0) / look_alikes {
            next_look_alike += 1;
            B2bRole::LookAlike(next_look_alike - 1)
        } else {
            next_regular += 1;
            let r = next_regular - 1;
            match spread(r, identities, regular) {
                Some(rank) => B2bRole::Identity(&users.users[rank * users.users.len() / identities]),
                None => B2bRole::Own(r),
            }
        };
        let id = position as i64 + 1;
        let (email, first_name, last_name) = match role {
            B2bRole::Target => (
                TARGET_STORED_EMAIL.to_owned(),
                "Ann".to_owned(),
                (*pick(rng, LAST_NAMES)).to_owned(),
            ),
            B2bRole::LookAlike(k) => {
                let (a, b) = (
                    SYLLABLES[k % SYLLABLES.len()],
                    SYLLABLES[k / SYLLABLES.len() % SYLLABLES.len()],
                );
                // Every fifth has a dot between the syllables, every seventh is mixed case.
                let local = if k % 5 == 4 {
                    format!("{a}.{b}ann")
                } else {
                    format!("{a}{b}ann")
                };
                let email = if k % 7 == 3 {
                    format!("{}{}Ann@Large.Example", capitalize(a), capitalize(b))
                } else {
                    format!("{local}@large.example")
                };
                (
                    email,
                    capitalize(&format!("{a}{b}ann")),
                    (*pick(rng, LAST_NAMES)).to_owned(),
                )
            }
            B2bRole::Identity(user) => {
                let (local, _) = user.email.split_once('@').unwrap_or((&user.email, ""));
                let email = format!("{}@Large.Example", mixed_case(local));
                (email, user.first.to_owned(), user.last.to_owned())
            }
            B2bRole::Own(r) => {
                let first = *pick(rng, FIRST_NAMES);
                let last = *pick(rng, LAST_NAMES);
                let email = if r % 3 == 0 {
                    format!("{first}.{last}.B{}@Shop.Large.example", r + 1)
                } else {
                    format!(
                        "{}.{}.b{}@shop.large.example",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        r + 1
                    )
                };
                (email, first.to_owned(), last.to_owned())
            }
        };
        let division = match role {
            B2bRole::Target | B2bRole::LookAlike(_) => 1,
            _ => match rng.u32(0..10) {
                0..=4 => 1,
                5..=8 => 2,
                _ => 3,
            },
        };
        match role {
            B2bRole::Target => {
                look_alike = Some(LookAlike {
                    email: TARGET_EMAIL.to_owned(),
                    stored_email: email.clone(),
                    user_id: id,
                    contained_in: look_alikes,
                    position,
                });
            }
            B2bRole::Identity(user) => {
                deep_identity = Some(LargeB2bIdentity {
                    user_id: id,
                    stored_email: email.clone(),
                    identity_id: user.unique_id.clone(),
                    identity_email: user.email.clone(),
                });
            }
            B2bRole::LookAlike(_) | B2bRole::Own(_) => {}
        }
        let date_joined = minutes_after(-MINUTES_PER_YEAR + position as i64 * 41);
        data.users.push(B2bUser {
            id,
            email,
            first_name,
            last_name,
            phone_number: format!("0555{:07}", rng.u32(..10_000_000)),
            division,
            is_active: division != 3 && rng.f64() < 0.9,
            shop_token: shop_token(rng),
            remote_id: Some(REMOTE_ID_OFFSET + id),
            date_joined: date_joined + TimeDelta::microseconds(rng.i64(1..1_000_000)),
            last_login: rng.bool().then(|| date_joined + TimeDelta::days(rng.i64(1..60))),
        });
    }
    B2bSeed {
        data,
        identity_users: identities,
        deep_identity,
        look_alike,
    }
}

/// `jo` -> `Jo`.
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `olivia.martin.3` -> `Olivia.Martin.3`: each dotted part capitalized.
fn mixed_case(local: &str) -> String {
    local.split('.').map(capitalize).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Few of everything but Sales entities, as a gateway test of entity paging uses.
    const ENTITY_HEAVY: LargeData = LargeData {
        crm_persons: 30,
        crm_organizations: 5,
        sales_entities: 20_500,
        sales_users: 10,
        b2b_users: 12,
    };

    fn large(seeded: &Seeded) -> &LargeIndex {
        seeded.large.as_ref().expect("a large data set has a large index")
    }

    #[test]
    fn spread_picks_exactly_the_chosen_count_and_the_last_item() {
        for (chosen, total) in [(0, 5), (1, 5), (3, 7), (7, 7), (2, 20_500), (12_000, 40_000)] {
            let picked: Vec<usize> = (0..total).filter_map(|i| spread(i, chosen, total)).collect();
            assert_eq!(picked.len(), chosen, "{chosen} of {total}");
            assert_eq!(picked, (0..chosen).collect::<Vec<_>>(), "ranks in order");
            if chosen > 0 {
                assert!(spread(total - 1, chosen, total).is_some(), "{chosen} of {total}");
            }
        }
    }

    #[test]
    fn every_count_is_met_on_its_own() {
        for counts in [
            LargeData::PRODUCTION,
            ENTITY_HEAVY,
            LargeData {
                crm_persons: 0,
                crm_organizations: 0,
                sales_entities: 0,
                sales_users: 0,
                b2b_users: 0,
            },
            LargeData {
                crm_persons: 7,
                crm_organizations: 40,
                sales_entities: 3,
                sales_users: 0,
                b2b_users: 1,
            },
        ] {
            let seeded = seed(3, counts);
            assert_eq!(seeded.crm.persons.len(), counts.crm_persons, "{counts:?}");
            assert_eq!(seeded.crm.organizations.len(), counts.crm_organizations, "{counts:?}");
            assert_eq!(seeded.sales.entities.rows().len(), counts.sales_entities, "{counts:?}");
            assert_eq!(seeded.sales.users.rows().len(), counts.sales_users, "{counts:?}");
            assert_eq!(seeded.b2b.users.len(), counts.b2b_users, "{counts:?}");
            let index = large(&seeded);
            assert_eq!(index.counts, counts);
            assert_eq!(
                index.organizations_with_entity + index.standalone_entities,
                counts.sales_entities
            );
        }
    }

    #[test]
    fn production_has_every_shape_in_the_documented_proportions() {
        let seeded = seed(42, LargeData::PRODUCTION);
        let index = large(&seeded);
        // Most organizations have an entity; standalone entities exist too.
        assert!(index.organizations_with_entity * 2 > LargeData::PRODUCTION.crm_organizations);
        assert!(index.standalone_entities > 0);
        let entity_ids: HashSet<&str> = seeded
            .sales
            .entities
            .rows()
            .iter()
            .filter_map(|e| e.get("unique_id")?.as_str())
            .collect();
        let with_entity = seeded
            .crm
            .organizations
            .iter()
            .filter(|o| entity_ids.contains(o.id.to_string().as_str()))
            .count();
        assert_eq!(with_entity, index.organizations_with_entity);

        // Every organization has persons; persons with identities are Sales users.
        let mut persons_of: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
        for person in &seeded.crm.persons {
            if let Some(org) = person.organization {
                *persons_of.entry(org).or_default() += 1;
            }
        }
        assert_eq!(persons_of.len(), LargeData::PRODUCTION.crm_organizations);
        let crowded = index.crowded_organization_id.expect("a crowded organization");
        assert_eq!(persons_of[&crowded], index.crowded_organization_persons);
        assert!(index.crowded_organization_persons > 1000);
        let bound: Vec<&Person> = seeded.crm.persons.iter().filter(|p| !p.unique_id.is_empty()).collect();
        assert_eq!(bound.len(), index.identity_persons);
        assert!(index.identity_persons > 10_000);
        for person in &bound {
            let user = seeded
                .sales
                .users
                .get(&person.unique_id)
                .expect("the bound Sales user exists");
            assert_eq!(
                user.get("email").and_then(|e| e.as_str()),
                Some(person.primary_email.as_str())
            );
        }

        // Emails are unique: persons' primary emails, B2B emails in any case.
        let primary: HashSet<&str> = seeded.crm.persons.iter().map(|p| p.primary_email.as_str()).collect();
        assert_eq!(primary.len(), seeded.crm.persons.len());
        let b2b: HashSet<String> = seeded.b2b.users.iter().map(|u| u.email.to_lowercase()).collect();
        assert_eq!(b2b.len(), seeded.b2b.users.len());
        assert!(seeded.b2b.users.iter().any(|u| u.email != u.email.to_lowercase()));
        assert!(index.b2b_identity_users > 1000);
        let deep = index.deep_b2b_identity.as_ref().expect("a B2B user of an identity");
        assert_ne!(deep.stored_email, deep.identity_email);
        assert_eq!(deep.stored_email.to_lowercase(), deep.identity_email);
        assert!(seeded.sales.users.contains(&deep.identity_id));

        // Deep persons are where the index says, the last one bound to a Sales user.
        let positions: Vec<usize> = index.deep_persons.iter().map(|p| p.position).collect();
        assert_eq!(positions, vec![20_000, 30_000, 39_999]);
        for deep in &index.deep_persons {
            assert_eq!(seeded.crm.persons[deep.position].id, deep.id);
        }
        assert!(index.deep_persons.last().is_some_and(|p| !p.unique_id.is_empty()));
    }

    #[test]
    fn the_look_alike_target_comes_after_hundreds_of_users_containing_it() {
        for counts in [LargeData::PRODUCTION, ENTITY_HEAVY] {
            let seeded = seed(42, counts);
            let target = large(&seeded).look_alike.clone().expect("a look-alike target");
            // What the B2B block's filter answers, in list order.
            let filtered: Vec<&B2bUser> = seeded
                .b2b
                .users
                .iter()
                .filter(|u| u.email.to_lowercase().contains(&target.email))
                .collect();
            assert_eq!(filtered.len(), target.contained_in + 1);
            assert_eq!(filtered.last().map(|u| u.id), Some(target.user_id));
            let exact: Vec<&&B2bUser> = filtered
                .iter()
                .filter(|u| u.email.eq_ignore_ascii_case(&target.email))
                .collect();
            assert_eq!(exact.len(), 1);
            assert_eq!(exact[0].email, target.stored_email);
            assert_ne!(target.stored_email, target.email, "stored in another case");
            assert_eq!(seeded.b2b.users[target.position].id, target.user_id);
            if counts == LargeData::PRODUCTION {
                assert!(target.contained_in > 250);
                // Beyond the first filtered page at the largest page size, and far down the list.
                assert!(target.contained_in >= 100);
                assert!(target.position > 5_000);
            } else {
                assert_eq!(target.contained_in, counts.b2b_users - 1);
            }
        }
    }

    #[test]
    fn organization_entities_open_and_close_the_entity_list() {
        for counts in [LargeData::PRODUCTION, ENTITY_HEAVY] {
            let seeded = seed(42, counts);
            let index = large(&seeded);
            let rows = seeded.sales.entities.rows();
            let id_at = |position: usize| {
                rows[position]
                    .get("unique_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let first = index.first_page_organization_id.expect("a first-page organization");
            let last = index.last_page_organization_id.expect("a last-page organization");
            assert_eq!(id_at(0), Some(first.to_string()));
            assert_eq!(id_at(rows.len() - 1), Some(last.to_string()));
            assert_ne!(first, last);
            assert!(seeded.crm.organizations.iter().any(|o| o.id == last));
            if counts == ENTITY_HEAVY {
                // Few organizations, most with an entity, among 20,500 entities.
                assert_eq!(index.organizations_with_entity, 4);
                assert_eq!(rows.len().div_ceil(100), 205);
            }
        }
    }

    #[test]
    fn seeding_is_deterministic() {
        let index = |seeded: &Seeded| (large(seeded).clone(), seeded.index.clone());
        let a = seed(9, ENTITY_HEAVY);
        let b = seed(9, ENTITY_HEAVY);
        let c = seed(10, ENTITY_HEAVY);
        assert_eq!(index(&a), index(&b));
        assert_ne!(
            large(&a).first_page_organization_id,
            large(&c).first_page_organization_id
        );
        assert_eq!(a.sales.entities.rows(), b.sales.entities.rows());
        assert_eq!(a.sales.users.rows(), b.sales.users.rows());
        let people = |s: &Seeded| {
            s.crm
                .persons
                .iter()
                .map(|p| (p.id, p.primary_email.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(people(&a), people(&b));
        let b2b = |s: &Seeded| s.b2b.users.iter().map(|u| (u.id, u.email.clone())).collect::<Vec<_>>();
        assert_eq!(b2b(&a), b2b(&b));
    }
}
