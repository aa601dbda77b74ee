//! Frontend clients against live gateways: `clients/test/frontend.mjs` runs Apollo Client 4
//! (normalised `InMemoryCache`, development mode: any cache warning fails), urql 6 with its
//! defaults (GETs without `Content-Type`) against a gateway with caller keys, and Apollo
//! sending only the hashes of GraphQL Code Generator's client preset manifest to a gateway
//! that trusts that manifest alone. Every example operation runs, every answer is checked
//! against the generated types. This test starts the gateways (each over its own sandbox,
//! indexed as `serve` indexes the sandbox at start), regenerates the client preset's
//! manifest from the current examples, and runs the script with node.

use std::{path::Path, process::Command, sync::Arc};

use blocks_gateway::{cache::CacheSettings, callers::CallerSettings, config::Settings, playground::EXAMPLE_OPERATIONS};
use blocks_sandbox::DemoIndex;
use serde_json::{Value, json};

use crate::helpers::{active_b2b_user, duplicate_group, invitable_person, spawn_app, spawn_app_with};

const CALLER_KEY: &str = "frontend-clients-key-7c2";

/// Where `npm ci --prefix clients` installs.
fn clients_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Runs a program in `clients/` on a blocking thread (the gateways answer on this test's
/// runtime meanwhile), failing with its output when it fails.
async fn run_in_clients(program: &str, args: Vec<String>) -> String {
    let program = program.to_owned();
    let label = format!("{program} {}", args.join(" "));
    let output =
        tokio::task::spawn_blocking(move || Command::new(program).args(args).current_dir(clients_dir()).output())
            .await
            .expect("the thread ends")
            .expect("node runs (Node 20 is on the machine)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{label} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The sample variables of an example, with `changes` merged over them.
fn variables(name: &str, changes: Value) -> Value {
    let example = EXAMPLE_OPERATIONS
        .iter()
        .find(|example| example.name == name)
        .unwrap_or_else(|| panic!("no example {name}"));
    let mut variables: Value = serde_json::from_str(example.variables).expect("JSON variables");
    merge(&mut variables, changes);
    variables
}

fn merge(base: &mut Value, changes: Value) {
    match (base, changes) {
        (Value::Object(base), Value::Object(changes)) => {
            for (key, value) in changes {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, changes) => *base = changes,
    }
}

/// Every example in the order a session would run them (queries first), with variables
/// naming sandbox records: written records are picked from the first `PersonList` page so
/// the script can watch the cache follow them.
fn operations(demo: &DemoIndex) -> Value {
    let first_page = &demo.persons[..20];
    let plain: Vec<_> = first_page
        .iter()
        .filter(|p| p.duplicate_group.is_none() && p.platform_user.is_none())
        .collect();
    let invited = invitable_person(demo);
    let others: Vec<_> = plain.iter().filter(|p| p.id != invited.id).collect();
    let (updated, deleted) = (others[0], others[1]);
    let page_organization = demo
        .organizations
        .iter()
        .find(|o| o.has_sales_entity)
        .expect("an organization with a Sales entity");
    let deleted_organization = first_page
        .iter()
        .filter_map(|p| p.organization)
        .find(|id| *id != page_organization.id)
        .expect("a person of the first page in another organization");
    let updated_organization = demo
        .organizations
        .iter()
        .find(|o| o.id != page_organization.id && o.id != deleted_organization)
        .expect("a third organization");
    let bound = demo
        .persons
        .iter()
        .find(|p| {
            p.platform_user.is_none()
                && p.duplicate_group.is_none()
                && ![invited.id, updated.id, deleted.id].contains(&p.id)
        })
        .expect("a person to bind");
    let unclaimed = demo
        .persons
        .iter()
        .find(|p| {
            p.unique_id.is_empty() && p.duplicate_group.is_none() && p.platform_user.is_none() && p.id != bound.id
        })
        .expect("a person no identity claims");
    let (primary, duplicates) = duplicate_group(demo);
    let profile = &demo.identities[0];
    let registered = "frontend-clients-ada";
    let ops = [
        ("PersonList", json!({ "first": 20, "after": null, "filter": null })),
        ("IdentityProfile", json!({ "id": profile.unique_id })),
        ("OrganizationPage", json!({ "id": page_organization.id.to_string() })),
        ("OrganizationPersons", json!({ "id": page_organization.id.to_string() })),
        ("IdentityByEmail", json!({ "email": profile.email.to_uppercase() })),
        ("RegisterIdentity", json!({ "input": { "uniqueId": registered } })),
        ("RegisterOrganization", json!({})),
        ("CreatePerson", json!({})),
        ("CreateOrganization", json!({})),
        ("UpdateIdentity", json!({ "input": { "id": profile.unique_id } })),
        ("UpdatePerson", json!({ "input": { "id": updated.id.to_string() } })),
        (
            "UpdateOrganization",
            json!({ "input": { "id": updated_organization.id.to_string() } }),
        ),
        (
            "InvitePerson",
            json!({ "input": { "personId": invited.id.to_string() } }),
        ),
        (
            "LinkPersonToUser",
            json!({ "input": { "personId": bound.id.to_string(), "userId": demo.platform_member_user_ids[0] } }),
        ),
        (
            "LinkIdentity",
            json!({ "input": { "identityId": registered, "personId": unclaimed.id.to_string() } }),
        ),
        (
            "UnlinkIdentity",
            json!({ "input": { "identityId": registered, "personId": unclaimed.id.to_string() } }),
        ),
        (
            "PreviewMergePersons",
            json!({ "primaryId": primary, "duplicateIds": duplicates }),
        ),
        (
            "MergePersons",
            json!({ "input": { "primaryId": primary, "duplicateIds": duplicates } }),
        ),
        ("SetB2BUserActive", json!({ "id": active_b2b_user(demo).id })),
        ("DeletePerson", json!({ "id": deleted.id.to_string() })),
        ("DeleteOrganization", json!({ "id": deleted_organization.to_string() })),
    ];
    Value::Array(
        ops.into_iter()
            .map(|(name, changes)| json!({ "name": name, "variables": variables(name, changes) }))
            .collect(),
    )
}

#[tokio::test]
async fn apollo_urql_and_the_client_presets_persisted_documents_work_with_the_gateway() {
    if !clients_dir().join("node_modules/@apollo/client").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "clients/node_modules is missing in CI: .ci/run must run `npm ci --prefix clients`"
        );
        eprintln!("SKIPPED: the frontend client test did not run (run npm ci --prefix clients)");
        return;
    }
    // The client preset's manifest of the examples as they are now.
    run_in_clients(
        "node",
        vec![
            "node_modules/.bin/graphql-codegen".into(),
            "--config".into(),
            "codegen.ts".into(),
            "--silent".into(),
        ],
    )
    .await;
    let manifest = clients_dir().join("generated/client/persisted-documents.json");
    let manifest = manifest.display().to_string();
    let trusted = Settings::from_variables(&[("GATEWAY_TRUSTED_DOCUMENTS", manifest.clone())])
        .expect("the client preset's manifest starts a gateway")
        .gateway
        .documents
        .trusted
        .expect("trusted documents on");
    assert_eq!(trusted.len(), EXAMPLE_OPERATIONS.len());

    let open = spawn_app().await;
    let keyed = spawn_app_with(
        |settings| settings.gateway.callers = CallerSettings::service(&[CALLER_KEY]),
        CacheSettings::default(),
    )
    .await;
    let persisted = spawn_app_with(
        |settings| settings.gateway.documents.trusted = Some(Arc::clone(&trusted)),
        CacheSettings::default(),
    )
    .await;
    for app in [&open, &keyed, &persisted] {
        assert_eq!(
            app.sandbox.demo, open.sandbox.demo,
            "one seed, one data set: the plan's ids hold everywhere"
        );
        app.index_links().await;
    }

    let plan = json!({
        "open": open.endpoint(),
        "keyed": { "endpoint": keyed.endpoint(), "key": CALLER_KEY },
        "trusted": { "endpoint": persisted.endpoint(), "manifest": manifest },
        "operations": operations(&open.sandbox.demo),
    });
    let plan_file = std::env::temp_dir().join(format!("frontend-plan-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&plan_file, plan.to_string()).expect("plan written");
    let summary = run_in_clients(
        "node",
        vec![
            "--conditions=development".into(),
            "test/frontend.mjs".into(),
            plan_file.display().to_string(),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&plan_file);
    let summary: Value = serde_json::from_str(summary.trim()).expect("the script prints its summary");
    eprintln!("frontend clients: {summary}");
    assert_eq!(summary["examples"], EXAMPLE_OPERATIONS.len());
    assert!(summary["urqlGets"].as_u64() > Some(0), "{summary}");
    assert!(
        summary["persistedRequests"].as_u64() >= Some(EXAMPLE_OPERATIONS.len() as u64),
        "{summary}"
    );
}
