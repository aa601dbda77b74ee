//! The identity link index through the API: links written by registerIdentity, linkIdentity
//! and mergePersons, read by Identity.person/links, Person.identity/mergedInto and
//! identityByEmail; reindex against the sandbox; export/import. Every scenario runs on
//! SQLite and, when `DATABASE_URL` is set, on PostgreSQL.

use std::collections::BTreeSet;

use blocks_gateway::{
    cache::CacheSettings,
    link_index::{
        LinkBlock, LinkIndex, LinkSource,
        reindex::{NoProgress, ReindexConflict, ReindexOptions, reindex},
        testing::TestIndex,
    },
};
use blocks_sandbox::DemoPerson;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with};

/// A gateway over the sandbox whose index lives in `db`.
async fn app_on(db: &TestIndex) -> TestApp {
    let location = db.location.clone();
    spawn_app_with(
        move |settings| settings.gateway.link_index = location,
        CacheSettings::default(),
    )
    .await
}

blocks_gateway::on_both_link_index_backends!(
    registration_links_the_crm_person_and_the_b2b_user,
    link_identity_checks_the_blocks_and_reports_conflicts_as_user_errors,
    unlink_identity_removes_only_the_identitys_own_link,
    merge_moves_links_to_the_survivor_and_old_ids_lead_there,
    identity_by_email_uses_the_index_then_the_linked_b2b_user,
    reindex_proves_the_sandbox_links_and_reports_conflicts,
    a_deleted_index_is_rebuilt_by_reindex_and_import,
    an_interrupted_reindex_resumes_after_the_last_page,
    a_page_of_persons_shows_each_persons_identity_from_the_index,
);

const LINK: &str = r#"mutation ($input: IdentityLinkInput!) {
  linkIdentity(input: $input) {
    identity { id }
    link { block externalId source createdAt }
    userErrors { field code message }
  }
}"#;

const UNLINK: &str = r#"mutation ($input: IdentityLinkInput!) {
  unlinkIdentity(input: $input) {
    identity { id links { externalId } }
    removed { block externalId source }
    userErrors { field code message }
  }
}"#;

const IDENTITY_LINKS: &str = r#"query ($id: ID!) {
  identity(id: $id) {
    person { id uniqueId }
    links { block externalId source createdAt }
    registeredIn
    b2bUser { id email }
  }
}"#;

async fn link(app: &TestApp, input: Value) -> Value {
    let body = app.query(LINK, json!({ "input": input })).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["linkIdentity"].clone()
}

fn user_error_codes(payload: &Value) -> Vec<String> {
    payload["userErrors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// CRM persons without `unique_id` that are not in a duplicate group: free to link.
fn free_persons(app: &TestApp) -> impl Iterator<Item = &DemoPerson> {
    app.sandbox
        .demo
        .persons
        .iter()
        .filter(|p| p.unique_id.is_empty() && p.duplicate_group.is_none())
}

/// The `skip`-th person free to link.
fn free_person(app: &TestApp, skip: usize) -> String {
    free_persons(app)
        .nth(skip)
        .expect("a lead without unique_id")
        .id
        .to_string()
}

/// An identity known to Sales (the directory), by position.
fn identity(app: &TestApp, skip: usize) -> String {
    app.sandbox
        .demo
        .identities
        .iter()
        .filter(|i| i.in_sales && i.person_id.is_none() && i.b2b_user_id.is_none())
        .nth(skip)
        .expect("a Sales identity without person or B2B user")
        .unique_id
        .clone()
}

fn links_of(body: &Value) -> Vec<(String, String, String)> {
    body["data"]["identity"]["links"]
        .as_array()
        .unwrap_or_else(|| panic!("links: {body}"))
        .iter()
        .map(|l| {
            (
                l["block"].as_str().unwrap_or_default().to_owned(),
                l["externalId"].as_str().unwrap_or_default().to_owned(),
                l["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Registers an identity in Sales, the CRM and B2B; every block must answer `CREATED`.
async fn register_everywhere(app: &TestApp, unique_id: &str, email: &str) {
    let division = app
        .sandbox
        .demo
        .b2b_divisions
        .iter()
        .find(|d| d.is_active)
        .expect("active division")
        .id;
    let input = json!({
        "uniqueId": unique_id, "email": email, "firstName": "Marie", "lastName": "Curie",
        "blocks": ["SALES", "CRM", "B2B"], "b2b": { "password": "Pw-links-1", "division": division }
    });
    let body = app
        .query(
            "mutation ($input: RegisterIdentityInput!) { registerIdentity(input: $input) { outcomes { block status error { code } } } }",
            json!({ "input": input }),
        )
        .await;
    let outcomes = body["data"]["registerIdentity"]["outcomes"]
        .as_array()
        .unwrap_or_else(|| panic!("outcomes: {body}"))
        .clone();
    assert!(
        outcomes
            .iter()
            .all(|o| o["status"] == "CREATED" && o["error"].is_null()),
        "{body}"
    );
}

async fn registration_links_the_crm_person_and_the_b2b_user(db: &TestIndex) {
    let app = app_on(db).await;
    register_everywhere(&app, "links-reg-1", "Marie.Curie@Example.com").await;
    let created_person: Value = serde_json::from_str(
        &app.block("crm")
            .control
            .requests()
            .iter()
            .find(|r| r.method == "POST")
            .expect("CRM create")
            .body,
    )
    .expect("JSON");
    assert_eq!(created_person["unique_id"], "links-reg-1");

    let body = app.query(IDENTITY_LINKS, json!({ "id": "links-reg-1" })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let identity = &body["data"]["identity"];
    let person_id = identity["person"]["id"]
        .as_str()
        .expect("the registered person")
        .to_owned();
    assert_eq!(identity["person"]["uniqueId"], "links-reg-1");
    let b2b_id = identity["b2bUser"]["id"].as_i64().expect("the registered B2B user");
    assert_eq!(
        links_of(&body),
        vec![
            ("B2B".to_owned(), b2b_id.to_string(), "REGISTERED".to_owned()),
            ("CRM".to_owned(), person_id.clone(), "REGISTERED".to_owned()),
        ]
    );
    assert!(
        identity["links"][0]["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') || t.contains('+'))
    );
    let registered_in = identity["registeredIn"].as_array().expect("registeredIn");
    assert!(
        registered_in.contains(&json!("CRM")) && registered_in.contains(&json!("B2B")),
        "{body}"
    );

    // The person leads back to the identity, and the email (any case) finds it.
    let body = app
        .query("query ($id: ID!) { person(id: $id) { identity { id } } identityByEmail(email: \"MARIE.curie@example.COM\") { id } }", json!({ "id": person_id }))
        .await;
    assert_eq!(body["data"]["person"]["identity"]["id"], "links-reg-1", "{body}");
    assert_eq!(body["data"]["identityByEmail"]["id"], "links-reg-1", "{body}");
}

async fn link_identity_checks_the_blocks_and_reports_conflicts_as_user_errors(db: &TestIndex) {
    let app = app_on(db).await;
    let (first, second) = (identity(&app, 0), identity(&app, 1));
    let person = free_person(&app, 0);

    let payload = link(&app, json!({ "identityId": first, "personId": person })).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    assert_eq!(payload["link"]["block"], "CRM");
    assert_eq!(payload["link"]["externalId"], person.as_str());
    assert_eq!(payload["link"]["source"], "EXPLICIT");
    assert!(
        app.block("crm")
            .control
            .count("GET", &format!("/api/crm/persons/{person}/"))
            >= 1,
        "the person was checked"
    );

    let again = link(&app, json!({ "identityId": first, "personId": person.to_uppercase() })).await;
    assert_eq!(again["userErrors"], json!([]), "linking twice is idempotent: {again}");
    assert_eq!(again["link"], payload["link"], "the stored link, unchanged");

    let body = app
        .query(
            "query ($id: ID!, $person: ID!) { identity(id: $id) { person { id } } person(id: $person) { identity { id } } }",
            json!({ "id": first, "person": person }),
        )
        .await;
    assert_eq!(body["data"]["identity"]["person"]["id"], person.as_str(), "{body}");
    assert_eq!(body["data"]["person"]["identity"]["id"], first.as_str(), "{body}");

    let taken = link(&app, json!({ "identityId": second, "personId": person })).await;
    assert_eq!(
        user_error_codes(&taken),
        vec!["ALREADY_LINKED_TO_OTHER_IDENTITY"],
        "{taken}"
    );
    assert_eq!(taken["userErrors"][0]["field"], json!(["input", "personId"]));
    assert!(
        taken["userErrors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&first)),
        "{taken}"
    );

    let other_person = free_person(&app, 1);
    let busy = link(&app, json!({ "identityId": first, "personId": other_person })).await;
    assert_eq!(user_error_codes(&busy), vec!["IDENTITY_ALREADY_LINKED"], "{busy}");

    let unknown_person = link(
        &app,
        json!({ "identityId": second, "personId": Uuid::new_v4().to_string() }),
    )
    .await;
    assert_eq!(user_error_codes(&unknown_person), vec!["NOT_FOUND"], "{unknown_person}");
    let unknown_user = link(&app, json!({ "identityId": second, "b2bUserId": 999_999 })).await;
    assert_eq!(user_error_codes(&unknown_user), vec!["NOT_FOUND"], "{unknown_user}");
    let unknown_identity = link(
        &app,
        json!({ "identityId": "nobody-knows-me", "personId": other_person }),
    )
    .await;
    assert_eq!(
        user_error_codes(&unknown_identity),
        vec!["NOT_FOUND"],
        "{unknown_identity}"
    );
    assert_eq!(
        unknown_identity["userErrors"][0]["field"],
        json!(["input", "identityId"])
    );

    app.clear_requests();
    let both = link(
        &app,
        json!({ "identityId": second, "personId": other_person, "b2bUserId": 3 }),
    )
    .await;
    assert_eq!(user_error_codes(&both), vec!["BAD_USER_INPUT"], "{both}");
    let neither = link(&app, json!({ "identityId": second })).await;
    assert_eq!(user_error_codes(&neither), vec!["BAD_USER_INPUT"], "{neither}");
    assert_eq!(app.total_requests(), 0, "refused input calls no block");

    let index = app.gateway.links();
    assert_eq!(
        index.links_of(&second).await.expect("links"),
        vec![],
        "nothing written for refusals"
    );
    assert!(index.links_of("nobody-knows-me").await.expect("links").is_empty());
}

async fn unlink_b2b(app: &TestApp, identity: &str, user: i64) -> Value {
    let input = json!({ "input": { "identityId": identity, "b2bUserId": user } });
    let body = app.query(UNLINK, input).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["unlinkIdentity"].clone()
}

async fn unlink_identity_removes_only_the_identitys_own_link(db: &TestIndex) {
    let app = app_on(db).await;
    let (first, second) = (identity(&app, 0), identity(&app, 1));
    let user = app
        .sandbox
        .demo
        .b2b_users
        .iter()
        .find(|u| u.identity_id.is_none())
        .expect("a B2B-only user")
        .id;
    link(&app, json!({ "identityId": first, "b2bUserId": user })).await;

    let not_theirs = unlink_b2b(&app, &second, user).await;
    assert_eq!(
        user_error_codes(&not_theirs),
        vec!["LINKED_TO_OTHER_IDENTITY"],
        "{not_theirs}"
    );
    let removed = unlink_b2b(&app, &first, user).await;
    assert_eq!(removed["userErrors"], json!([]), "{removed}");
    assert_eq!(removed["removed"]["externalId"], user.to_string());
    assert_eq!(removed["identity"]["links"], json!([]));
    let again = unlink_b2b(&app, &first, user).await;
    assert_eq!(user_error_codes(&again), vec!["NOT_LINKED"], "{again}");
    assert_eq!(
        app.gateway
            .links()
            .holder(LinkBlock::B2b, &user.to_string())
            .await
            .expect("holder"),
        None
    );
}

async fn merge_moves_links_to_the_survivor_and_old_ids_lead_there(db: &TestIndex) {
    let app = app_on(db).await;
    let group = app
        .sandbox
        .demo
        .duplicate_groups
        .iter()
        .find(|group| group.len() >= 2)
        .expect("a duplicate group")
        .clone();
    let (primary, duplicate) = (group[0].to_string(), group[1].to_string());
    let owner = identity(&app, 2);
    let linked = link(&app, json!({ "identityId": owner, "personId": duplicate })).await;
    assert_eq!(linked["userErrors"], json!([]), "{linked}");

    let body = app
        .query(
            "mutation ($input: MergePersonsInput!) { mergePersons(input: $input) { primary { id } mergedIds userErrors { code } } }",
            json!({ "input": { "primaryId": primary, "duplicateIds": [duplicate] } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["mergePersons"]["userErrors"], json!([]), "{body}");

    let body = app.query(IDENTITY_LINKS, json!({ "id": owner })).await;
    assert_eq!(
        body["data"]["identity"]["person"]["id"],
        primary.as_str(),
        "the survivor: {body}"
    );
    assert_eq!(
        links_of(&body),
        vec![("CRM".to_owned(), primary.clone(), "MERGED".to_owned())]
    );

    let body = app
        .query(
            "query ($old: ID!, $primary: ID!) {
               old: person(id: $old) { id active mergedInto { id } }
               primary: person(id: $primary) { mergedInto { id } identity { id } }
             }",
            json!({ "old": duplicate, "primary": primary }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["old"]["id"],
        duplicate.as_str(),
        "the merged record still answers"
    );
    assert_eq!(body["data"]["old"]["active"], false);
    assert_eq!(body["data"]["old"]["mergedInto"]["id"], primary.as_str());
    assert_eq!(body["data"]["primary"]["mergedInto"], Value::Null);
    assert_eq!(body["data"]["primary"]["identity"]["id"], owner.as_str());

    // Linking the merged person now points at its survivor instead.
    let stale = link(&app, json!({ "identityId": identity(&app, 3), "personId": duplicate })).await;
    assert_eq!(user_error_codes(&stale), vec!["PERSON_MERGED"], "{stale}");
}

async fn identity_by_email_uses_the_index_then_the_linked_b2b_user(db: &TestIndex) {
    let app = app_on(db).await;
    let owner = identity(&app, 0);
    let b2b_only = app
        .sandbox
        .demo
        .b2b_users
        .iter()
        .find(|u| u.identity_id.is_none() && u.listed)
        .expect("a listed B2B-only user")
        .clone();
    let query = "query ($email: String!) { identityByEmail(email: $email) { id } }";

    // Nothing in the index: the B2B user exists, but no link proves whose it is.
    let body = app.query(query, json!({ "email": b2b_only.email })).await;
    assert_eq!(body["data"]["identityByEmail"], Value::Null, "{body}");
    assert!(body.get("errors").is_none(), "{body}");

    link(&app, json!({ "identityId": owner, "b2bUserId": b2b_only.id })).await;
    let body = app
        .query(query, json!({ "email": b2b_only.email.to_uppercase() }))
        .await;
    assert_eq!(
        body["data"]["identityByEmail"]["id"],
        owner.as_str(),
        "through the B2B link: {body}"
    );
    let body = app.query(IDENTITY_LINKS, json!({ "id": owner })).await;
    assert_eq!(
        body["data"]["identity"]["b2bUser"]["id"], b2b_only.id,
        "the linked user, not the email match"
    );

    // The identity's own email was recorded when it was linked.
    let own_email = app.sandbox.demo.identity(&owner).expect("demo identity").email.clone();
    let body = app
        .query(query, json!({ "email": format!("  {}  ", own_email.to_uppercase()) }))
        .await;
    assert_eq!(body["data"]["identityByEmail"]["id"], owner.as_str(), "{body}");

    let body = app.query(query, json!({ "email": "nobody@nowhere.example" })).await;
    assert_eq!(body["data"]["identityByEmail"], Value::Null, "{body}");

    let index = app.gateway.links();
    index.set_email("other-identity", &own_email).await.expect("email");
    let body = app.query(query, json!({ "email": own_email })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "{body}");

    let body = app.query(query, json!({ "email": " " })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
}

/// What the sandbox's blocks prove: persons with a `unique_id`; listed B2B users whose
/// email matches an identity whose email reindex can learn (Sales and Assets list theirs;
/// Search is read for identities a CRM person names).
fn provable_links(app: &TestApp) -> BTreeSet<(String, LinkBlock, String)> {
    let demo = &app.sandbox.demo;
    let persons = demo
        .persons
        .iter()
        .filter(|p| !p.unique_id.is_empty())
        .map(|p| (p.unique_id.clone(), LinkBlock::Crm, p.id.to_string()));
    let email_known = |id: &str| {
        demo.identity(id)
            .is_some_and(|i| i.in_sales || i.in_assets || (i.in_search && i.person_id.is_some()))
    };
    let users = demo
        .b2b_users
        .iter()
        .filter(|u| u.listed)
        .filter_map(|u| Some((u.identity_id.clone()?, LinkBlock::B2b, u.id.to_string())))
        .filter(|(identity, _, _)| email_known(identity));
    persons.chain(users).collect()
}

async fn indexed_links(index: &LinkIndex) -> BTreeSet<(String, LinkBlock, String)> {
    let contents = index.contents().await.expect("contents");
    contents
        .links
        .into_iter()
        .map(|l| (l.identity_id, l.block, l.external_id))
        .collect()
}

fn small_pages() -> ReindexOptions {
    ReindexOptions {
        page_size: 25,
        concurrency: 3,
        restart: false,
    }
}

async fn reindex_proves_the_sandbox_links_and_reports_conflicts(db: &TestIndex) {
    let app = app_on(db).await;
    let index = app.gateway.links();
    let expected = provable_links(&app);
    assert!(expected.iter().any(|l| l.1 == LinkBlock::Crm) && expected.iter().any(|l| l.1 == LinkBlock::B2b));
    // An explicit link claims a person whose unique_id names another identity.
    let claimed = app
        .sandbox
        .demo
        .persons
        .iter()
        .find(|p| !p.unique_id.is_empty())
        .expect("a person with unique_id")
        .clone();
    let intruder = identity(&app, 0);
    let linked = link(
        &app,
        json!({ "identityId": intruder, "personId": claimed.id.to_string() }),
    )
    .await;
    assert_eq!(linked["userErrors"], json!([]), "{linked}");

    let report = reindex(app.gateway.clients(), index, small_pages(), &NoProgress)
        .await
        .expect("reindex");

    assert_eq!(report.added.len(), expected.len() - 1, "{:?}", report.conflicts);
    assert!(report.added.iter().all(|l| l.source == LinkSource::Reindex));
    assert_eq!(report.kept, 0);
    assert_eq!(
        report.conflicts,
        vec![ReindexConflict::Held {
            claimed_by: claimed.unique_id.clone(),
            block: LinkBlock::Crm,
            external_id: claimed.id.to_string(),
            held_by: index
                .holder(LinkBlock::Crm, &claimed.id.to_string())
                .await
                .expect("holder")
                .expect("still held"),
        }]
    );
    let mut want = expected.clone();
    want.remove(&(claimed.unique_id.clone(), LinkBlock::Crm, claimed.id.to_string()));
    want.insert((intruder.clone(), LinkBlock::Crm, claimed.id.to_string()));
    assert_eq!(
        indexed_links(index).await,
        want,
        "the explicit link was not overwritten"
    );
    assert!(report.emails_recorded > 0);

    // Idempotent: a second run keeps everything and adds nothing.
    let again = reindex(app.gateway.clients(), index, small_pages(), &NoProgress)
        .await
        .expect("reindex");
    assert_eq!(
        (again.added.len(), again.kept, again.conflicts.len()),
        (0, expected.len() - 1, 1)
    );

    // The reindexed links answer through the API.
    let proven = app
        .sandbox
        .demo
        .identities
        .iter()
        .find(|i| i.person_id.is_some() && i.b2b_user_id.is_some() && i.unique_id != claimed.unique_id)
        .expect("identity with both");
    let body = app.query(IDENTITY_LINKS, json!({ "id": proven.unique_id })).await;
    assert_eq!(
        body["data"]["identity"]["person"]["uniqueId"],
        proven.unique_id.as_str(),
        "{body}"
    );
    let body = app
        .query(
            "query ($email: String!) { identityByEmail(email: $email) { id } }",
            json!({ "email": proven.email.to_uppercase() }),
        )
        .await;
    assert_eq!(
        body["data"]["identityByEmail"]["id"],
        proven.unique_id.as_str(),
        "{body}"
    );
}

async fn export_of(index: &LinkIndex) -> Vec<u8> {
    let mut out = Vec::new();
    index.export(&mut out).await.expect("export");
    out
}

async fn a_deleted_index_is_rebuilt_by_reindex_and_import(db: &TestIndex) {
    let app = app_on(db).await;
    let index = app.gateway.links();
    register_everywhere(&app, "links-rebuild-1", "rebuild@example.com").await;
    let explicit_person = free_person(&app, 2);
    link(
        &app,
        json!({ "identityId": identity(&app, 4), "personId": explicit_person }),
    )
    .await;
    reindex(app.gateway.clients(), index, small_pages(), &NoProgress)
        .await
        .expect("reindex");
    let before = indexed_links(index).await;
    let backup = export_of(index).await;

    index.clear().await.expect("the index is deleted");
    assert!(indexed_links(index).await.is_empty());
    reindex(app.gateway.clients(), index, small_pages(), &NoProgress)
        .await
        .expect("reindex");
    let rebuilt = indexed_links(index).await;
    let registered: Vec<_> = before.iter().filter(|l| l.0 == "links-rebuild-1").collect();
    assert_eq!(
        registered.len(),
        2,
        "the registration's CRM person and B2B user: {registered:?}"
    );
    let explicit = (identity(&app, 4), LinkBlock::Crm, explicit_person.clone());
    let mut provable = before.clone();
    provable.remove(&explicit);
    assert_eq!(
        rebuilt, provable,
        "everything the blocks prove is back; the explicit link is not provable"
    );

    // The backup restores the rest, byte for byte.
    index.import(backup.as_slice(), true).await.expect("import");
    assert_eq!(export_of(index).await, backup);
    assert!(indexed_links(index).await.contains(&explicit));
}

async fn an_interrupted_reindex_resumes_after_the_last_page(db: &TestIndex) {
    let app = app_on(db).await;
    let index = app.gateway.links();
    let tiny_pages = ReindexOptions {
        page_size: 10,
        ..small_pages()
    };
    app.block("b2b").control.set_failure(1.0, 503);
    let failed = reindex(app.gateway.clients(), index, tiny_pages, &NoProgress).await;
    assert!(failed.is_err(), "B2B is down");
    let crm_pages = app.block("crm").control.count("GET", "/api/crm/persons/");
    assert!(crm_pages > 3, "several pages of 10 persons: {crm_pages}");

    app.block("b2b").control.reset_faults();
    app.clear_requests();
    let report = reindex(app.gateway.clients(), index, tiny_pages, &NoProgress)
        .await
        .expect("reindex");
    assert!(
        app.block("crm").control.count("GET", "/api/crm/persons/") <= 1,
        "the CRM pages were not walked again (one probe past the end at most)"
    );
    assert!(
        report.added.iter().all(|l| l.block == LinkBlock::B2b),
        "{:?}",
        report.added.first()
    );
    assert_eq!(indexed_links(index).await, provable_links(&app));

    // A completed run leaves no resume point: the next one walks everything again.
    app.clear_requests();
    reindex(app.gateway.clients(), index, tiny_pages, &NoProgress)
        .await
        .expect("reindex");
    assert_eq!(app.block("crm").control.count("GET", "/api/crm/persons/"), crm_pages);
}

/// The persons of a page get their identities from one index read made when the page
/// arrives: a linked person shows the identity it is linked to, the others the identity
/// their `unique_id` names (none when blank), in both person connections.
async fn a_page_of_persons_shows_each_persons_identity_from_the_index(db: &TestIndex) {
    let app = app_on(db).await;
    let (person_id, organization) = free_persons(&app)
        .find_map(|p| Some((p.id.to_string(), p.organization?.to_string())))
        .expect("a free person in an organization");
    let identity_id = identity(&app, 0);
    let payload = link(&app, json!({ "identityId": identity_id, "personId": person_id })).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");

    let body = app
        .query(
            "query ($org: ID!) {
               persons(first: 100, filter: { organizationId: $org }) { edges { node { id uniqueId identity { id } } } }
               organization(id: $org) { persons(first: 100) { edges { node { id uniqueId identity { id } } } } }
             }",
            json!({ "org": organization }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    for edges in [
        &body["data"]["persons"]["edges"],
        &body["data"]["organization"]["persons"]["edges"],
    ] {
        let nodes: Vec<&Value> = edges.as_array().expect("edges").iter().map(|e| &e["node"]).collect();
        assert!(nodes.len() > 1, "the organization has several persons: {body}");
        for node in nodes {
            let expected = if node["id"] == person_id.as_str() {
                json!({ "id": identity_id })
            } else {
                match node["uniqueId"].as_str().map(str::trim) {
                    Some(unique_id) if !unique_id.is_empty() => json!({ "id": unique_id }),
                    _ => Value::Null,
                }
            };
            assert_eq!(node["identity"], expected, "{node}");
        }
    }
}

/// When the index cannot be read, a page of persons still answers: each person's identity
/// fails on its own, with a code, and the rest of every person is there.
#[tokio::test]
async fn an_unreadable_index_fails_each_persons_identity_not_the_page() {
    let app = crate::helpers::spawn_app().await;
    app.gateway.links().close().await;

    let body = app
        .query(
            "{ persons(first: 5) { edges { node { name identity { id } } } } }",
            json!({}),
        )
        .await;
    let edges = body["data"]["persons"]["edges"].as_array().expect("the page answers");
    assert_eq!(edges.len(), 5, "{body}");
    for edge in edges {
        assert!(edge["node"]["name"].is_string(), "{body}");
        assert_eq!(edge["node"]["identity"], Value::Null, "{body}");
    }
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 5, "one error per person: {body}");
    for error in errors {
        assert_eq!(error["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{body}");
        assert_eq!(error["path"][4], "identity", "{body}");
    }
}
