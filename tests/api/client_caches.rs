//! What normalised client caches (Apollo's `InMemoryCache`, urql's Graphcache) need from
//! the answers: a stable `id` on every object type they cache, unique within its type; one
//! `DateTime` form; writes whose payloads name what changed (the merged persons as they are
//! now, the type of a deleted object).

use std::collections::HashMap;

use axum::{Router, extract::Path, routing::get};
use blocks_gateway::{blocks::BlockName, cache::CacheSettings};
use serde_json::{Value, json};

use crate::helpers::{TestApp, duplicate_group, spawn_app, spawn_app_with};

/// Fails when two different objects share an id: a normalised cache would merge them.
fn assert_ids_unique(type_name: &str, objects: &[&Value]) {
    let mut seen: HashMap<&str, &Value> = HashMap::new();
    for object in objects {
        let id = object["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{type_name} without id: {object}"));
        assert!(!id.is_empty(), "{type_name}: empty id");
        if let Some(earlier) = seen.insert(id, object) {
            assert_eq!(earlier, *object, "two {type_name} objects share the id {id}");
        }
    }
}

fn no_errors(body: &Value) {
    assert!(body.get("errors").is_none(), "{body}");
}

const IDENTITY_RECORDS: &str = r"query ($first: Int!) {
  identities(first: $first) {
    edges { node {
      id
      sales { id uniqueId }
      customer { id uniqueId }
      search { id uniqueId }
      assets {
        id uniqueId
        assets { id uniqueId name serialNumber status createdAt }
        entities { id uniqueId name entityType status accessLevel createdAt }
        ownership { id uniqueId assetUniqueId assetName ownershipType assignedAt createdAt }
      }
    } }
  }
}";

#[tokio::test]
async fn block_records_carry_their_block_key_as_id_unique_within_each_type() {
    let app = spawn_app().await;
    let body = app.query(IDENTITY_RECORDS, json!({ "first": 100 })).await;
    no_errors(&body);
    let identities = body["data"]["identities"]["edges"].as_array().expect("edges");
    assert!(identities.len() > 20, "a full page");
    for edge in identities {
        let node = &edge["node"];
        // The per-identity records are keyed by the identity's unique id, their block key.
        for block in ["sales", "customer", "search", "assets"] {
            if node[block].is_object() {
                assert_eq!(node[block]["id"], node["id"], "{block}: {node}");
            }
        }
    }
    // The Assets user's records are keyed by their own unique ids.
    for (list, type_name) in [
        ("assets", "Asset"),
        ("entities", "AssetsEntity"),
        ("ownership", "OwnershipRecord"),
    ] {
        let objects: Vec<&Value> = identities
            .iter()
            .filter_map(|edge| edge["node"]["assets"][list].as_array())
            .flatten()
            .collect();
        assert!(!objects.is_empty(), "the sandbox holds some {type_name}");
        for object in &objects {
            assert_eq!(object["id"], object["uniqueId"], "{type_name}: {object}");
        }
        assert_ids_unique(type_name, &objects);
    }

    // A Sales entity is keyed by its unique id: the organization's id.
    let organizations = app
        .query(
            "{ organizations(first: 50) { edges { node { id salesEntity { id uniqueId name } } } } }",
            json!({}),
        )
        .await;
    no_errors(&organizations);
    let mut entities = Vec::new();
    for edge in organizations["data"]["organizations"]["edges"]
        .as_array()
        .expect("edges")
    {
        let entity = &edge["node"]["salesEntity"];
        if entity.is_object() {
            assert_eq!(entity["id"], edge["node"]["id"]);
            assert_eq!(entity["id"], entity["uniqueId"]);
            entities.push(entity);
        }
    }
    assert!(!entities.is_empty());
    assert_ids_unique("SalesEntity", &entities);
}

#[tokio::test]
async fn an_identity_link_is_keyed_by_its_block_and_record() {
    let app = spawn_app().await;
    let identity = &app.sandbox.demo.identities[0];
    let person = identity.person_id.expect("the first identity has a person").to_string();
    let b2b = identity.b2b_user_id.expect("and a B2B user");
    let linked = app
        .query(
            "mutation ($identity: ID!, $person: ID!, $b2b: Int!) {
               a: linkIdentity(input: { identityId: $identity, personId: $person }) { link { id } userErrors { code } }
               b: linkIdentity(input: { identityId: $identity, b2bUserId: $b2b }) { link { id } userErrors { code } }
             }",
            json!({ "identity": identity.unique_id, "person": person, "b2b": b2b }),
        )
        .await;
    no_errors(&linked);
    assert_eq!(linked["data"]["a"]["link"]["id"], format!("CRM:{person}"), "{linked}");
    assert_eq!(linked["data"]["b"]["link"]["id"], format!("B2B:{b2b}"), "{linked}");
    let read = app
        .query(
            "query ($id: ID!) { identity(id: $id) { links { id block externalId } } }",
            json!({ "id": identity.unique_id }),
        )
        .await;
    no_errors(&read);
    for link in read["data"]["identity"]["links"].as_array().expect("links") {
        let expected = format!(
            "{}:{}",
            link["block"].as_str().unwrap_or(""),
            link["externalId"].as_str().unwrap_or("")
        );
        assert_eq!(link["id"], expected.as_str());
    }
}

/// An Assets block whose lists (its users, a user's assets) hold, among keyed items, one
/// item without any id (neither `unique_id` nor the resource id).
async fn assets_server_with_an_unkeyed_item() -> String {
    let user = |Path(id): Path<String>| async move {
        axum::Json(
            json!({ "data": { "id": id, "type": "user_identity", "attributes": { "unique_id": id, "username": "u" } } }),
        )
    };
    let assets = |Path(_id): Path<String>| async move {
        axum::Json(json!({ "data": [
            { "id": "asset-1", "type": "asset", "attributes": { "unique_id": "asset-1", "name": "Laptop" } },
            { "type": "asset", "attributes": { "name": "Mystery" } },
            { "id": "asset-3", "type": "asset", "attributes": { "name": "Phone" } },
        ] }))
    };
    let users = || async {
        axum::Json(json!({ "data": [
            { "id": "u-1", "type": "user_identity", "attributes": { "unique_id": "u-1", "username": "u" } },
            { "type": "user_identity", "attributes": { "username": "nobody" } },
            { "id": "u-3", "type": "user_identity", "attributes": { "username": "w" } },
        ] }))
    };
    let app = Router::new()
        .route("/users", get(users))
        .route("/users/{id}", get(user))
        .route("/users/{id}/assets", get(assets));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}")
}

#[tokio::test]
async fn an_item_the_block_sent_without_a_key_is_left_out_and_reported() {
    let base = assets_server_with_an_unkeyed_item().await;
    let app = spawn_app_with(
        |settings| {
            for block in &mut settings.gateway.blocks {
                if block.block == BlockName::Assets {
                    block.base_url = base.parse().expect("url");
                }
            }
        },
        CacheSettings::default(),
    )
    .await;
    let body = app
        .query(
            r#"{ identity(id: "u-1") { assets { id username assets { id name } } } }"#,
            json!({}),
        )
        .await;
    // The resource id stands in for a missing `unique_id`; the item with neither is left out.
    assert_eq!(
        body["data"]["identity"]["assets"],
        json!({ "id": "u-1", "username": "u", "assets": [{ "id": "asset-1", "name": "Laptop" }, { "id": "asset-3", "name": "Phone" }] }),
        "{body}"
    );
    let errors = body["errors"].as_array().expect("the left-out item is reported");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["path"], json!(["identity", "assets", "assets"]));
    assert_eq!(errors[0]["extensions"]["code"], "UPSTREAM_ERROR");
    assert_eq!(errors[0]["extensions"]["block"], "ASSETS");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("1 record(s) without `unique_id`"),
        "{body}"
    );

    // A page of a list: the unkeyed record is left out, the others keep their positions as
    // cursors, and paging goes on past it.
    let page = app
        .query(
            "{ assetsUsers(first: 2) { totalCount edges { cursor node { id username } } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    let connection = &page["data"]["assetsUsers"];
    let edges = connection["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{page}");
    assert_eq!(edges[0]["node"], json!({ "id": "u-1", "username": "u" }));
    assert_eq!(connection["pageInfo"]["hasNextPage"], true, "{page}");
    assert_eq!(page["errors"][0]["path"], json!(["assetsUsers"]), "{page}");
    assert_eq!(page["errors"][0]["extensions"]["code"], "UPSTREAM_ERROR");
    let after = connection["pageInfo"]["endCursor"]
        .as_str()
        .expect("a cursor past the left-out user");
    let next = app
        .query(
            "query ($after: String) { assetsUsers(first: 2, after: $after) { edges { node { id } } } }",
            json!({ "after": after }),
        )
        .await;
    assert_eq!(
        next["data"]["assetsUsers"]["edges"],
        json!([{ "node": { "id": "u-3" } }]),
        "{next}"
    );
    assert!(next.get("errors").is_none(), "{next}");
}

/// Every value of a `DateTime` field the answer holds, by field name.
fn date_times<'a>(value: &'a Value, found: &mut Vec<(&'a str, &'a str)>) {
    const FIELDS: [&str; 5] = ["createdAt", "updatedAt", "assignedAt", "dateJoined", "lastLogin"];
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                if let (true, Some(text)) = (FIELDS.contains(&name.as_str()), child.as_str()) {
                    found.push((name, text));
                }
                date_times(child, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| date_times(item, found)),
        _ => {}
    }
}

/// `2025-01-10T10:30:00.000Z`: UTC, `Z`, milliseconds.
fn is_utc_millis(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    bytes.len() == shape.len()
        && shape.bytes().zip(bytes).all(|(expected, actual)| {
            if expected == b'd' {
                actual.is_ascii_digit()
            } else {
                expected == *actual
            }
        })
}

#[tokio::test]
async fn every_date_time_is_utc_with_z_and_milliseconds() {
    let app = spawn_app().await;
    let identity = &app.sandbox.demo.identities[0];
    let body = app
        .query(
            "query ($id: ID!) {
               identity(id: $id) {
                 sales { createdAt updatedAt }
                 customer { createdAt }
                 search { createdAt updatedAt }
                 assets { createdAt updatedAt assets { createdAt } entities { createdAt } ownership { assignedAt createdAt } }
                 b2bUser { dateJoined lastLogin }
                 person { createdAt updatedAt organization { createdAt updatedAt salesEntity { createdAt } } }
               }
               persons(first: 30) { edges { node { createdAt updatedAt } } }
             }",
            json!({ "id": identity.unique_id }),
        )
        .await;
    no_errors(&body);
    let mut found = Vec::new();
    date_times(&body["data"], &mut found);
    // Each block writes its own form (Rails whole seconds, DRF microseconds, offsets).
    let fields: std::collections::BTreeSet<&str> = found.iter().map(|(name, _)| *name).collect();
    for field in ["createdAt", "updatedAt", "assignedAt", "dateJoined"] {
        assert!(fields.contains(field), "{field} was read: {fields:?}");
    }
    assert!(found.len() > 60, "{} values", found.len());
    for (name, text) in &found {
        assert!(is_utc_millis(text), "{name}: {text}");
    }

    // Arguments keep taking any RFC 3339 offset.
    let filtered = app
        .query(
            r#"{ persons(first: 1, filter: { createdAfter: "2000-01-01T02:00:00+02:00" }) { totalCount } }"#,
            json!({}),
        )
        .await;
    no_errors(&filtered);
    let refused = app
        .query(
            r#"{ persons(first: 1, filter: { createdAfter: "2000-01-01" }) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
}

#[tokio::test]
async fn display_name_falls_back_to_the_sales_first_and_last_name() {
    let app = spawn_app().await;
    let registered = app
        .query(
            r#"mutation { registerIdentity(input: { email: "grace@example.com", firstName: "Grace", lastName: "Hopper", blocks: [SALES] }) {
                 identity { id displayName sales { displayName firstName lastName } }
                 userErrors { code }
               } }"#,
            json!({}),
        )
        .await;
    no_errors(&registered);
    let identity = &registered["data"]["registerIdentity"]["identity"];
    assert_eq!(
        identity["sales"]["displayName"],
        Value::Null,
        "Sales holds no display name"
    );
    assert_eq!(identity["displayName"], "Grace Hopper", "{registered}");
}

/// The payload a client cache updates itself from after a merge.
async fn merge(app: &TestApp, primary: &str, duplicates: &[String], dry_run: bool) -> Value {
    let body = app
        .query(
            "mutation ($input: MergePersonsInput!) { mergePersons(input: $input) {
               primary { id active }
               mergedIds
               merged { id active mergedInto { id } }
               userErrors { code }
             } }",
            json!({ "input": { "primaryId": primary, "duplicateIds": duplicates, "dryRun": dry_run } }),
        )
        .await;
    no_errors(&body);
    body["data"]["mergePersons"].clone()
}

#[tokio::test]
async fn a_merge_answers_the_duplicates_as_they_are_now() {
    let app = spawn_app().await;
    let (primary, duplicates) = duplicate_group(&app.sandbox.demo);
    // Read first, as a page would: the answer must not come from what was read before.
    let before = app
        .query(
            "query ($id: ID!) { person(id: $id) { active } }",
            json!({ "id": duplicates[0] }),
        )
        .await;
    assert_eq!(before["data"]["person"]["active"], true);

    // A preview merges nothing, so it names no merged person.
    let preview = merge(&app, &primary, &duplicates, true).await;
    assert_eq!(preview["merged"], json!([]), "{preview}");

    let payload = merge(&app, &primary, &duplicates, false).await;
    let merged = payload["merged"].as_array().expect("merged");
    assert_eq!(merged.len(), duplicates.len(), "{payload}");
    for (person, id) in merged.iter().zip(&duplicates) {
        assert_eq!(person["id"], id.as_str());
        assert_eq!(person["active"], false, "{payload}");
        assert_eq!(person["mergedInto"]["id"], primary.as_str(), "{payload}");
    }
    assert_eq!(payload["primary"]["active"], true);
}

#[tokio::test]
async fn a_delete_names_the_type_of_what_it_deleted() {
    let app = spawn_app().await;
    let person = app.sandbox.demo.persons[0].id.to_string();
    let organization = app.sandbox.demo.organizations[0].id.to_string();
    let body = app
        .query(
            "mutation ($person: ID!, $organization: ID!) {
               p: deletePerson(id: $person) { deletedId deletedType userErrors { code } }
               o: deleteOrganization(id: $organization) { deletedId deletedType userErrors { code } }
             }",
            json!({ "person": person, "organization": organization }),
        )
        .await;
    no_errors(&body);
    assert_eq!(
        body["data"]["p"],
        json!({ "deletedId": person, "deletedType": "Person", "userErrors": [] })
    );
    assert_eq!(
        body["data"]["o"],
        json!({ "deletedId": organization, "deletedType": "Organization", "userErrors": [] })
    );
    // Nothing deleted, nothing named.
    let again = app
        .query(
            "mutation ($person: ID!) { deletePerson(id: $person) { deletedId deletedType userErrors { code } } }",
            json!({ "person": person }),
        )
        .await;
    assert_eq!(
        again["data"]["deletePerson"],
        json!({ "deletedId": null, "deletedType": null, "userErrors": [{ "code": "NOT_FOUND" }] })
    );
}
