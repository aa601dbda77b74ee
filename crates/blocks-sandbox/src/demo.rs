//! The deterministic demo data set: the same seed always builds the same identities,
//! organizations, persons and B2B users, with timestamps counted from a fixed date.
//! [`DemoIndex`] tells tests what was seeded so they can pick ids.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use fastrand::Rng;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::assets::{AssetsData, Holdings};
use super::b2b::{B2bData, B2bUser, Division, REMOTE_ID_OFFSET};
use super::crm::{
    CrmData, Invitation, LARGEST_USER_ID, LIFECYCLE_STAGES, Organization, PLATFORM_ID, PLATFORM_KEY, Person, Related,
};
use super::large::LargeIndex;
use super::rails::{Attributes, Store, resource};
use super::respond::rails_time;
use super::sales::SalesData;

/// One human across the 23blocks blocks (Sales, Search, Assets), plus where else they appear.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoIdentity {
    /// The `unique_id` shared by every 23blocks block that knows this identity.
    pub unique_id: String,
    /// Lower-case email, the same in every 23blocks block and in the CRM person.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone number, when the identity has one.
    pub phone: Option<String>,
    /// Known to Sales as a user.
    pub in_sales: bool,
    /// Known to Sales as a customer.
    pub in_customers: bool,
    /// Known to Search.
    pub in_search: bool,
    /// Known to Assets.
    pub in_assets: bool,
    /// How many assets the Assets user holds (0 when not in Assets).
    pub asset_count: usize,
    /// The B2B user whose email matches (in another case), if any.
    pub b2b_user_id: Option<i64>,
    /// The CRM person whose `unique_id` is this identity's id, if any.
    pub person_id: Option<Uuid>,
}

/// A CRM organization.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoOrganization {
    /// Organization UUID.
    pub id: Uuid,
    /// Its (unique) name.
    pub name: String,
    /// Whether Sales has an entity whose `unique_id` is this organization's id.
    pub has_sales_entity: bool,
}

/// A CRM person.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoPerson {
    /// Person UUID.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Primary email, `""` when the person has none (invite answers 400).
    pub primary_email: String,
    /// External id: an identity's `unique_id`, or `""`.
    pub unique_id: String,
    /// Organization, if the person belongs to one.
    pub organization: Option<Uuid>,
    /// Bound platform user (such persons are inactive; invite answers 422).
    pub platform_user: Option<i64>,
    /// Lifecycle stage.
    pub lifecycle_stage: String,
    /// Whether an active invitation exists for this person's email (invite answers 409).
    pub has_active_invitation: bool,
    /// Index into [`DemoIndex::duplicate_groups`] when this person is one of a duplicate group.
    pub duplicate_group: Option<usize>,
}

/// The active invitation seeded in the CRM.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoInvitation {
    /// Invitation id (what a 409 reports).
    pub id: i64,
    /// The person it was sent for.
    pub person_id: Uuid,
    /// The invited email.
    pub email: String,
}

/// A B2B division.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoDivision {
    /// Division id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `main` or `sub`.
    pub division_type: String,
    /// Inactive divisions refuse assignment and activation.
    pub is_active: bool,
}

/// A B2B user.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoB2bUser {
    /// B2B user id.
    pub id: i64,
    /// Email exactly as stored (mixed case, e.g. `Olivia.Martin.3@Example.com`).
    pub email: String,
    /// The identity whose email matches case-insensitively; `None` for B2B-only users.
    pub identity_id: Option<String>,
    /// Division id.
    pub division_id: i64,
    /// Whether the user is active.
    pub is_active: bool,
    /// Whether the list shows it (it has a remote id); detail GETs show every user.
    pub listed: bool,
}

/// What the sandbox seeded, so tests and demos can pick ids of every interesting kind.
/// With a large data set its record lists are empty (see [`LargeIndex`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DemoIndex {
    /// The seed the data was built from.
    pub seed: u64,
    /// Every identity, in creation order. The first one is known to every block (Sales,
    /// customers, Search, Assets with at least one asset, B2B, CRM); the second, when
    /// there are two or more, only to Sales.
    pub identities: Vec<DemoIdentity>,
    /// Every CRM organization, in creation order (most have a Sales entity).
    pub organizations: Vec<DemoOrganization>,
    /// Sales entities that belong to no CRM organization.
    pub standalone_sales_entity_ids: Vec<String>,
    /// Every CRM person, in creation order: identity persons (with `unique_id`), leads
    /// without `unique_id`, then the duplicate groups.
    pub persons: Vec<DemoPerson>,
    /// Groups of 2-3 persons sharing a name and email, without `unique_id`; merge fodder.
    pub duplicate_groups: Vec<Vec<Uuid>>,
    /// The active invitation (inviting its person again answers 409).
    pub invitation: DemoInvitation,
    /// B2B divisions.
    pub b2b_divisions: Vec<DemoDivision>,
    /// The inactive division (creating or activating a user in it fails).
    pub inactive_division_id: i64,
    /// Every B2B user, by id. Most match an identity; a few match none.
    pub b2b_users: Vec<DemoB2bUser>,
    /// The CRM `platform` every record carries.
    pub crm_platform_id: i64,
    /// The CRM platform key invitations report.
    pub crm_platform_key: String,
    /// Platform users who are members (link-user accepts them).
    pub platform_member_user_ids: Vec<i64>,
    /// A user who exists but is not a member (link-user answers 403).
    pub non_member_user_id: i64,
    /// A user id that does not exist (link-user answers 404).
    pub unknown_user_id: i64,
}

impl DemoIndex {
    /// The identity with this `unique_id`.
    pub fn identity(&self, unique_id: &str) -> Option<&DemoIdentity> {
        self.identities.iter().find(|i| i.unique_id == unique_id)
    }

    /// The person with this id.
    pub fn person(&self, id: Uuid) -> Option<&DemoPerson> {
        self.persons.iter().find(|p| p.id == id)
    }
}

/// Everything seeded: each block's records plus the index describing them.
#[derive(Debug)]
pub(crate) struct Seeded {
    pub(crate) sales: SalesData,
    pub(crate) search: Store,
    pub(crate) assets: AssetsData,
    pub(crate) b2b: B2bData,
    pub(crate) crm: CrmData,
    pub(crate) index: DemoIndex,
    /// What a large data set seeded (`None` for the demo set).
    pub(crate) large: Option<LargeIndex>,
}

/// The index of what every data set shares (the seed, the B2B divisions, the CRM
/// platform, its members and the seeded invitation), with no records listed.
pub(crate) fn index_without_records(seed: u64, divisions: &[Division], invitation: DemoInvitation) -> DemoIndex {
    DemoIndex {
        seed,
        identities: Vec::new(),
        organizations: Vec::new(),
        standalone_sales_entity_ids: Vec::new(),
        persons: Vec::new(),
        duplicate_groups: Vec::new(),
        invitation,
        b2b_divisions: divisions
            .iter()
            .map(|d| DemoDivision {
                id: d.id,
                name: d.name.clone(),
                division_type: d.division_type.to_owned(),
                is_active: d.is_active,
            })
            .collect(),
        inactive_division_id: divisions.iter().find(|d| !d.is_active).map_or(0, |d| d.id),
        b2b_users: Vec::new(),
        crm_platform_id: PLATFORM_ID,
        crm_platform_key: PLATFORM_KEY.to_owned(),
        platform_member_user_ids: MEMBER_IDS.collect(),
        non_member_user_id: NON_MEMBER_USER_ID,
        unknown_user_id: LARGEST_USER_ID + 1,
    }
}

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Mateo", "Isabella", "Lucas", "Mia", "Amelia",
    "Ethan", "Harper", "Aiden", "Evelyn", "Leo", "Chloe", "Samuel", "Nora", "Omar", "Priya", "Kenji", "Fatima",
    "Diego", "Ingrid", "Tariq", "Yuki", "Andrea", "Kwame",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Martin",
    "Garcia",
    "Johnson",
    "Nguyen",
    "Kowalski",
    "Okafor",
    "Rossi",
    "Schmidt",
    "Silva",
    "Tanaka",
    "Dubois",
    "Patel",
    "Andersson",
    "Murphy",
    "Haddad",
    "Novak",
    "Moreau",
    "Costa",
    "Jensen",
    "Reyes",
    "Fischer",
    "Ibrahim",
    "Larsen",
    "Mendes",
    "Walsh",
    "Yilmaz",
    "Brennan",
    "Castillo",
    "Lindqvist",
    "Mwangi",
];

pub(crate) const COMPANY_NAMES: &[&str] = &[
    "Acme Logistics",
    "Blue Harbor Foods",
    "Cobalt Analytics",
    "Driftwood Studios",
    "Evergreen Health",
    "Foxglove Retail",
    "Granite Peak Capital",
    "Helios Energy",
    "Ironbark Construction",
    "Juniper Learning",
    "Kestrel Aviation",
    "Lumen Optics",
    "Maple & Vine Hospitality",
    "Northwind Traders",
    "Orchid Biotech",
    "Pinecrest Insurance",
    "Quartz Robotics",
    "Riverbend Farms",
    "Saffron Media",
    "Tidewater Shipping",
];

pub(crate) const STANDALONE_ENTITIES: &[&str] = &["Walk-in Counter", "Online Marketplace", "Partner Reseller Pool"];
pub(crate) const CITIES: &[&str] = &[
    "Lisbon", "Austin", "Toronto", "Berlin", "Nairobi", "Osaka", "Dublin", "Lyon",
];
pub(crate) const STREETS: &[&str] = &["Harbor", "Maple", "Station", "Market", "Mill", "Orchard"];
pub(crate) const INDUSTRIES: &[&str] = &["logistics", "food", "software", "media", "health", "finance", "energy"];
const JOB_TITLES: &[&str] = &["", "Buyer", "Operations Manager", "CTO", "Account Director", "Analyst"];
const ASSET_NAMES: &[&str] = &[
    "Laptop Dell XPS 15",
    "MacBook Pro 14",
    "iPhone 15",
    "Pixel 8",
    "Monitor LG 27UL850",
    "Herman Miller Aeron",
    "Yubikey 5C",
    "Dock TB4",
];
const DIGITAL_ENTITIES: &[(&str, &str)] = &[
    ("Software License", "digital_license"),
    ("Design Suite Seat", "digital_license"),
    ("Cloud Workspace", "subscription"),
    ("Code Signing Certificate", "certificate"),
];
const ACCESS_LEVELS: &[&str] = &["private", "shared", "public"];
const OWNERSHIP_TYPES: &[&str] = &["assigned", "lent", "transferred"];

/// How many organizations the CRM starts with.
const ORGANIZATION_COUNT: usize = 20;
/// How many CRM leads without `unique_id` exist besides the duplicate groups.
const LEAD_COUNT: usize = 12;
/// How many duplicate person groups exist.
const DUPLICATE_GROUPS: usize = 8;
/// The invitation seeded for the first lead.
pub(crate) const SEEDED_INVITATION_ID: i64 = 9001;
/// Members of the CRM platform.
pub(crate) const MEMBER_IDS: std::ops::RangeInclusive<i64> = 1..=50;
const NON_MEMBER_USER_ID: i64 = 5000;

/// 2025-01-06T09:00:00Z: every seeded timestamp counts from here.
fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_736_154_000, 0).unwrap_or_default()
}

pub(crate) fn minutes_after(minutes: i64) -> DateTime<Utc> {
    epoch() + TimeDelta::minutes(minutes)
}

/// A version 4 UUID drawn from the seeded generator.
pub(crate) fn uuid(rng: &mut Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}

pub(crate) fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// One generated human, before it is spread over the blocks.
struct Human {
    unique_id: String,
    first: &'static str,
    last: &'static str,
    email: String,
    phone: Option<String>,
    created_at: DateTime<Utc>,
    in_sales: bool,
    in_customers: bool,
    in_search: bool,
    in_assets: bool,
    in_b2b: bool,
    in_crm: bool,
}

impl Human {
    fn full_name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

/// Builds the whole demo data set from `seed`. Each block draws from its own generator
/// (derived from the seed), so adding a field to one block does not reshuffle the others.
pub(crate) fn seed(seed: u64, identities: usize) -> Seeded {
    let humans = humans(&mut Rng::with_seed(seed), identities);
    let organizations = organizations(&mut Rng::with_seed(seed ^ 0x0C0F_FEE0));
    let (sales, standalone_sales_entity_ids) = sales(&mut Rng::with_seed(seed ^ 0x5A1E5), &humans, &organizations);
    let search = search(&mut Rng::with_seed(seed ^ 0x5EA4C4), &humans);
    let (assets, asset_counts) = assets(&mut Rng::with_seed(seed ^ 0xA55E7), &humans);
    let (b2b, b2b_users) = b2b(&mut Rng::with_seed(seed ^ 0xB2B), &humans);
    let crm = crm(&mut Rng::with_seed(seed ^ 0xC4A), &humans, organizations);

    let identities = humans
        .iter()
        .zip(asset_counts)
        .map(|(human, asset_count)| DemoIdentity {
            unique_id: human.unique_id.clone(),
            email: human.email.clone(),
            first_name: human.first.to_owned(),
            last_name: human.last.to_owned(),
            phone: human.phone.clone(),
            in_sales: human.in_sales,
            in_customers: human.in_customers,
            in_search: human.in_search,
            in_assets: human.in_assets,
            asset_count,
            b2b_user_id: b2b_users
                .iter()
                .find(|u| u.identity_id.as_deref() == Some(human.unique_id.as_str()))
                .map(|u| u.id),
            person_id: crm
                .data
                .persons
                .iter()
                .find(|p| p.unique_id == human.unique_id)
                .map(|p| p.id),
        })
        .collect();

    let index = DemoIndex {
        identities,
        organizations: crm.demo_organizations,
        standalone_sales_entity_ids,
        persons: crm.demo_persons,
        duplicate_groups: crm.duplicate_groups,
        b2b_users,
        ..index_without_records(seed, &b2b.divisions, crm.invitation)
    };
    Seeded {
        sales,
        search,
        assets,
        b2b,
        crm: crm.data,
        index,
        large: None,
    }
}

/// The identities. The first is everywhere, the second only in Sales; the rest draw
/// their blocks at the documented rates, and every identity is in at least one
/// 23blocks block.
fn humans(rng: &mut Rng, count: usize) -> Vec<Human> {
    (0..count)
        .map(|i| {
            let first = *pick(rng, FIRST_NAMES);
            let last = *pick(rng, LAST_NAMES);
            let number = i + 1;
            let mut human = Human {
                unique_id: uuid(rng).to_string(),
                first,
                last,
                email: format!("{}.{}.{number}@example.com", first.to_lowercase(), last.to_lowercase()),
                phone: (rng.f64() < 0.9).then(|| format!("+1555{:07}", rng.u32(..10_000_000))),
                created_at: minutes_after(i as i64 * 97 + rng.i64(0..60)),
                in_sales: rng.f64() < 0.8,
                in_customers: rng.f64() < 0.4,
                in_search: rng.f64() < 0.7,
                in_assets: rng.f64() < 0.6,
                in_b2b: rng.f64() < 0.25,
                in_crm: rng.f64() < 0.6,
            };
            match i {
                0 => human.everywhere(),
                1 => human.only_in_sales(),
                _ if !(human.in_sales || human.in_customers || human.in_search || human.in_assets) => {
                    human.in_sales = true;
                }
                _ => {}
            }
            human
        })
        .collect()
}

impl Human {
    fn everywhere(&mut self) {
        self.in_sales = true;
        self.in_customers = true;
        self.in_search = true;
        self.in_assets = true;
        self.in_b2b = true;
        self.in_crm = true;
    }

    fn only_in_sales(&mut self) {
        self.in_sales = true;
        self.in_customers = false;
        self.in_search = false;
        self.in_assets = false;
        self.in_b2b = false;
        self.in_crm = false;
    }
}

fn organizations(rng: &mut Rng) -> Vec<Organization> {
    COMPANY_NAMES
        .iter()
        .take(ORGANIZATION_COUNT)
        .enumerate()
        .map(|(k, name)| {
            let created_at = minutes_after(-(30 * 24 * 60) + k as i64 * 24 * 60);
            Organization {
                id: uuid(rng),
                name: (*name).to_owned(),
                address: json!({
                    "street": format!("{} {} Street", rng.u32(1..300), pick(rng, STREETS)),
                    "city": pick(rng, CITIES),
                    "country": "US",
                }),
                owner: (k % 7 != 3).then(|| rng.i64(1..=5)),
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

/// Organizations with a Sales entity: four in five.
fn has_sales_entity(position: usize) -> bool {
    position % 5 != 4
}

fn slug(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

pub(crate) fn attributes(value: Value) -> Attributes {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn sales(rng: &mut Rng, humans: &[Human], organizations: &[Organization]) -> (SalesData, Vec<String>) {
    let mut data = SalesData::default();
    for human in humans {
        let created_at = human.created_at;
        if human.in_sales {
            let user = json!({
                "unique_id": human.unique_id,
                "email": human.email,
                "first_name": human.first,
                "last_name": human.last,
                "display_name": human.full_name(),
                "phone": human.phone,
                "status": if rng.f64() < 0.95 { "active" } else { "inactive" },
                "orders_count": rng.u32(0..40),
                "created_at": rails_time(created_at),
                "updated_at": rails_time(created_at + TimeDelta::days(rng.i64(0..30))),
            });
            data.users.insert(human.unique_id.clone(), attributes(user));
        }
        if human.in_customers {
            let customer = json!({
                "unique_id": human.unique_id,
                "email": human.email,
                "first_name": human.first,
                "last_name": human.last,
                "company_name": rng.bool().then(|| *pick(rng, COMPANY_NAMES)),
                "phone": human.phone,
                "status": "active",
                "orders_count": rng.u32(0..25),
                "total_spent": f64::from(rng.u32(0..500_000)) / 100.0,
                "created_at": rails_time(created_at + TimeDelta::hours(2)),
            });
            data.customers.insert(human.unique_id.clone(), attributes(customer));
        }
    }
    for (position, org) in organizations.iter().enumerate() {
        if has_sales_entity(position) {
            let entity = entity(&org.id.to_string(), &org.name, "organization", org.created_at);
            data.entities.insert(org.id.to_string(), entity);
        }
    }
    let mut standalone = Vec::new();
    for (k, name) in STANDALONE_ENTITIES.iter().enumerate() {
        let id = uuid(rng).to_string();
        data.entities
            .insert(id.clone(), entity(&id, name, "channel", minutes_after(k as i64 * 60)));
        standalone.push(id);
    }
    (data, standalone)
}

pub(crate) fn entity(id: &str, name: &str, entity_type: &str, created_at: DateTime<Utc>) -> Attributes {
    attributes(json!({
        "unique_id": id,
        "name": name,
        "entity_type": entity_type,
        "email": format!("billing@{}.example.com", slug(name)),
        "status": "active",
        "created_at": rails_time(created_at + TimeDelta::hours(1)),
    }))
}

fn search(rng: &mut Rng, humans: &[Human]) -> Store {
    let mut store = Store::default();
    for human in humans.iter().filter(|h| h.in_search) {
        let (role_id, role_name) = match rng.u32(0..20) {
            0 => (1, "admin"),
            1..=2 => (2, "manager"),
            _ => (4, "user"),
        };
        let created_at = human.created_at + TimeDelta::minutes(5);
        let identity = json!({
            "unique_id": human.unique_id,
            "user_unique_id": human.unique_id,
            "name": human.full_name(),
            "email": human.email,
            "phone": human.phone,
            "avatar_url": (rng.f64() < 0.7).then(|| format!("https://avatars.example.com/{}.jpg", human.unique_id)),
            "role_id": role_id,
            "role_name": role_name,
            "status": "active",
            "enabled": true,
            "created_at": rails_time(created_at),
            "updated_at": rails_time(created_at + TimeDelta::days(rng.i64(0..15))),
        });
        store.insert(human.unique_id.clone(), attributes(identity));
    }
    store
}

/// The Assets users and their holdings; also how many assets each identity holds.
fn assets(rng: &mut Rng, humans: &[Human]) -> (AssetsData, Vec<usize>) {
    let mut data = AssetsData::default();
    let mut counts = Vec::with_capacity(humans.len());
    let mut serial = 0;
    for (i, human) in humans.iter().enumerate() {
        if !human.in_assets {
            counts.push(0);
            continue;
        }
        let created_at = human.created_at + TimeDelta::minutes(10);
        // The first identity always holds something, so tests have a full example.
        let asset_count = if i == 0 { 2 } else { rng.usize(0..=3) };
        let entity_count = if i == 0 { 1 } else { rng.usize(0..=3) };
        let mut holdings = Holdings::default();
        for a in 0..asset_count {
            serial += 1;
            let assigned_at = rails_time(created_at + TimeDelta::days(a as i64 + 1));
            let asset_id = uuid(rng).to_string();
            let name = *pick(rng, ASSET_NAMES);
            holdings.assets.push(resource(
                "asset",
                &asset_id,
                attributes(json!({
                    "unique_id": asset_id,
                    "name": name,
                    "serial_number": format!("SN-2025-{serial:04}"),
                    "status": if rng.f64() < 0.9 { "active" } else { "retired" },
                    "created_at": rails_time(created_at),
                })),
            ));
            let ownership_id = uuid(rng).to_string();
            holdings.ownership.push(resource(
                "ownership_record",
                &ownership_id,
                attributes(json!({
                    "unique_id": ownership_id,
                    "asset_unique_id": asset_id,
                    "asset_name": name,
                    "ownership_type": pick(rng, OWNERSHIP_TYPES),
                    "assigned_at": assigned_at,
                    "created_at": assigned_at,
                })),
            ));
        }
        for _ in 0..entity_count {
            let entity_id = uuid(rng).to_string();
            let (name, entity_type) = *pick(rng, DIGITAL_ENTITIES);
            holdings.entities.push(resource(
                "entity",
                &entity_id,
                attributes(json!({
                    "unique_id": entity_id,
                    "name": name,
                    "entity_type": entity_type,
                    "status": "active",
                    "access_level": pick(rng, ACCESS_LEVELS),
                    "created_at": rails_time(created_at),
                })),
            ));
        }
        let username = format!("{}.{}{}", human.first.to_lowercase(), human.last.to_lowercase(), i + 1);
        let user = json!({
            "unique_id": human.unique_id,
            "email": human.email,
            "username": username,
            "display_name": human.full_name(),
            "avatar_url": rng.bool().then(|| format!("https://avatars.example.com/{}.jpg", human.unique_id)),
            "assets_count": asset_count,
            "entities_count": entity_count,
            "created_at": rails_time(created_at),
            "updated_at": rails_time(created_at + TimeDelta::days(rng.i64(0..15))),
        });
        data.users.insert(human.unique_id.clone(), attributes(user));
        data.holdings.insert(human.unique_id.clone(), holdings);
        counts.push(asset_count);
    }
    (data, counts)
}

/// The B2B users: identities' users with mixed-case emails, then a few that match no
/// identity (the first of them in the inactive division, the second without remote id).
fn b2b(rng: &mut Rng, humans: &[Human]) -> (B2bData, Vec<DemoB2bUser>) {
    let divisions = divisions();
    let mut users = Vec::new();
    let mut demo = Vec::new();
    for human in humans.iter().filter(|h| h.in_b2b) {
        let id = users.len() as i64 + 1;
        let division = match rng.u32(0..10) {
            0..=4 => 1,
            5..=8 => 2,
            _ => 3,
        };
        let user = B2bUser {
            id,
            email: format!(
                "{}.{}.{}@Example.com",
                human.first,
                human.last,
                email_number(&human.email)
            ),
            first_name: human.first.to_owned(),
            last_name: human.last.to_owned(),
            phone_number: human.phone.clone().unwrap_or_default(),
            division,
            is_active: division != 3 && rng.f64() < 0.9,
            shop_token: shop_token(rng),
            // Every tenth user has not reached Commerce yet, so the list leaves it out.
            remote_id: (id % 10 != 7).then_some(REMOTE_ID_OFFSET + id),
            date_joined: human.created_at + TimeDelta::days(2) + TimeDelta::microseconds(rng.i64(1..1_000_000)),
            last_login: rng.bool().then(|| human.created_at + TimeDelta::days(rng.i64(3..60))),
        };
        demo.push(demo_b2b_user(&user, Some(human.unique_id.clone())));
        users.push(user);
    }
    for k in 0..4_i64 {
        let id = users.len() as i64 + 1;
        let user = B2bUser {
            id,
            email: format!("Purchasing.Desk.{}@Partner-Shop.example", k + 1),
            first_name: "Purchasing".to_owned(),
            last_name: format!("Desk {}", k + 1),
            phone_number: format!("0555{:07}", rng.u32(..10_000_000)),
            division: if k == 0 { 3 } else { 1 + k % 2 },
            is_active: k != 0,
            shop_token: shop_token(rng),
            remote_id: (k != 1).then_some(REMOTE_ID_OFFSET + id),
            date_joined: minutes_after(k * 24 * 60) + TimeDelta::microseconds(rng.i64(1..1_000_000)),
            last_login: None,
        };
        demo.push(demo_b2b_user(&user, None));
        users.push(user);
    }
    (B2bData { divisions, users }, demo)
}

/// The `N` of `first.last.N@example.com`.
fn email_number(email: &str) -> &str {
    email
        .split('@')
        .next()
        .and_then(|local| local.rsplit('.').next())
        .unwrap_or_default()
}

/// The B2B divisions every data set has: a main one, an active sub-division and an
/// inactive one.
pub(crate) fn divisions() -> Vec<Division> {
    vec![
        division(1, "Sandbox Main Division", "main", true),
        division(2, "Sandbox Retail Division", "sub", true),
        division(3, "Sandbox Legacy Division", "sub", false),
    ]
}

fn division(id: i64, name: &str, division_type: &'static str, is_active: bool) -> Division {
    Division {
        id,
        name: name.to_owned(),
        division_type,
        is_active,
    }
}

pub(crate) fn shop_token(rng: &mut Rng) -> String {
    format!("shp_{:024x}", rng.u128(..) >> 32)
}

fn demo_b2b_user(user: &B2bUser, identity_id: Option<String>) -> DemoB2bUser {
    DemoB2bUser {
        id: user.id,
        email: user.email.clone(),
        identity_id,
        division_id: user.division,
        is_active: user.is_active,
        listed: user.remote_id.is_some(),
    }
}

/// The CRM records and their description for the index.
struct CrmSeed {
    data: CrmData,
    demo_organizations: Vec<DemoOrganization>,
    demo_persons: Vec<DemoPerson>,
    duplicate_groups: Vec<Vec<Uuid>>,
    invitation: DemoInvitation,
}

/// Free fields of a person about to be seeded.
pub(crate) struct PersonSeed {
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) unique_id: String,
    pub(crate) organization: Option<Uuid>,
    pub(crate) platform_user: Option<i64>,
    pub(crate) created_at: DateTime<Utc>,
}

fn crm(rng: &mut Rng, humans: &[Human], organizations: Vec<Organization>) -> CrmSeed {
    let org_ids: Vec<Uuid> = organizations.iter().map(|o| o.id).collect();
    let mut persons = Vec::new();
    let mut groups = Vec::new();

    for (j, human) in humans.iter().filter(|h| h.in_crm).enumerate() {
        let seed = PersonSeed {
            name: human.full_name(),
            // Every eleventh identity person has no primary email.
            email: if j % 11 == 2 {
                String::new()
            } else {
                human.email.clone()
            },
            unique_id: human.unique_id.clone(),
            // The first identity's person belongs to the first organization (which has a
            // Sales entity), so one record shows every join.
            organization: if j == 0 {
                Some(org_ids[0])
            } else {
                (rng.f64() < 0.8).then(|| *pick(rng, &org_ids))
            },
            // Every ninth is already bound to a platform member.
            platform_user: (j % 9 == 4).then_some(1 + (j as i64 * 7) % 50),
            created_at: human.created_at + TimeDelta::days(1),
        };
        let mut person = person(rng, seed);
        person.contact_numbers = match &human.phone {
            Some(phone) => json!([{ "type": "mobile", "number": phone }]),
            None => json!([]),
        };
        persons.push((person, None));
    }

    for k in 0..LEAD_COUNT {
        let first = FIRST_NAMES[(k * 7 + 3) % FIRST_NAMES.len()];
        let last = LAST_NAMES[(k * 5 + 1) % LAST_NAMES.len()];
        let seed = PersonSeed {
            name: format!("{first} {last}"),
            // The second lead has no email, the third is bound to a member.
            email: if k == 1 {
                String::new()
            } else {
                format!(
                    "{}.{}.lead{k}@prospect.example",
                    first.to_lowercase(),
                    last.to_lowercase()
                )
            },
            unique_id: String::new(),
            organization: (k % 3 != 0).then(|| org_ids[k % org_ids.len()]),
            platform_user: (k == 2).then_some(7),
            created_at: minutes_after((30 * 24 + k as i64 * 5) * 60),
        };
        persons.push((person(rng, seed), None));
    }

    for g in 0..DUPLICATE_GROUPS {
        let first = FIRST_NAMES[(g * 3 + 11) % FIRST_NAMES.len()];
        let last = LAST_NAMES[(g * 7 + 13) % LAST_NAMES.len()];
        let organization = (g % 2 == 0).then(|| org_ids[(g * 3) % org_ids.len()]);
        let mut group = Vec::new();
        for copy in 0..(2 + g % 2) {
            let seed = PersonSeed {
                name: format!("{first} {last}"),
                email: format!(
                    "{}.{}.dup{g}@duplicates.example",
                    first.to_lowercase(),
                    last.to_lowercase()
                ),
                unique_id: String::new(),
                organization,
                platform_user: None,
                created_at: minutes_after((35 * 24 + g as i64 * 24 + copy as i64 * 3) * 60),
            };
            let person = person(rng, seed);
            group.push(person.id);
            persons.push((person, Some(groups.len())));
        }
        groups.push(group);
    }

    let invited = persons
        .iter()
        .map(|(p, _)| p)
        .find(|p| p.unique_id.is_empty() && !p.primary_email.is_empty() && p.platform_user.is_none());
    let invitation = invited.map_or(
        DemoInvitation {
            id: SEEDED_INVITATION_ID,
            person_id: Uuid::nil(),
            email: String::new(),
        },
        |p| DemoInvitation {
            id: SEEDED_INVITATION_ID,
            person_id: p.id,
            email: p.primary_email.clone(),
        },
    );

    let demo_persons = persons
        .iter()
        .map(|(p, group)| DemoPerson {
            id: p.id,
            name: p.name.clone(),
            primary_email: p.primary_email.clone(),
            unique_id: p.unique_id.clone(),
            organization: p.organization,
            platform_user: p.platform_user,
            lifecycle_stage: p.lifecycle_stage.to_owned(),
            has_active_invitation: !p.primary_email.is_empty()
                && p.primary_email.eq_ignore_ascii_case(&invitation.email),
            duplicate_group: *group,
        })
        .collect();
    let demo_organizations = organizations
        .iter()
        .enumerate()
        .map(|(position, o)| DemoOrganization {
            id: o.id,
            name: o.name.clone(),
            has_sales_entity: has_sales_entity(position),
        })
        .collect();
    let invitations = vec![Invitation {
        id: invitation.id,
        email: invitation.email.clone(),
        person_id: invitation.person_id,
        active: true,
        redirect_to: None,
        created: minutes_after(31 * 24 * 60),
    }];

    CrmSeed {
        data: CrmData::new(
            organizations,
            persons.into_iter().map(|(p, _)| p).collect(),
            invitations,
            MEMBER_IDS.collect::<BTreeSet<_>>(),
        ),
        demo_organizations,
        demo_persons,
        duplicate_groups: groups,
        invitation,
    }
}

/// A person with the given fields and seeded values for the rest.
pub(crate) fn person(rng: &mut Rng, seed: PersonSeed) -> Person {
    let mut metadata = Map::new();
    // Leads come from imports; others carry a random subset of keys.
    if seed.unique_id.is_empty() || rng.bool() {
        let source = if seed.unique_id.is_empty() {
            "import"
        } else {
            *pick(rng, &["web", "referral", "event"])
        };
        metadata.insert("source".to_owned(), json!(source));
    }
    if rng.bool() {
        metadata.insert("tier".to_owned(), json!(pick(rng, &["bronze", "silver", "gold"])));
    }
    if rng.bool() {
        metadata.insert("newsletter".to_owned(), json!(rng.bool()));
    }
    if rng.f64() < 0.3 {
        metadata.insert("region".to_owned(), json!(pick(rng, &["emea", "amer", "apac"])));
    }
    let alternate = format!("{}@personal.example", seed.name.to_lowercase().replace(' ', "."));
    Person {
        id: uuid(rng),
        name: seed.name,
        primary_email: seed.email,
        emails: if rng.bool() { json!([alternate]) } else { json!([]) },
        contact_numbers: json!([]),
        job_title: (*pick(rng, JOB_TITLES)).to_owned(),
        organization: seed.organization,
        owner: (rng.f64() < 0.9).then(|| rng.i64(1..=5)),
        active: seed.platform_user.is_none(),
        platform_user: seed.platform_user,
        lifecycle_stage: LIFECYCLE_STAGES[rng.usize(..LIFECYCLE_STAGES.len())],
        unique_id: seed.unique_id,
        metadata: Value::Object(metadata),
        created_at: seed.created_at,
        updated_at: seed.created_at + TimeDelta::days(rng.i64(0..20)),
        related: Related {
            deals: rng.u64(0..4),
            activities: rng.u64(0..7),
            tags: rng.u64(0..3),
        },
    }
}
