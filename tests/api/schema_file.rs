//! `schema.graphql` is the published contract: it must equal `blocks-gateway schema`, describe
//! everything it names, and explain every deprecation. `subgraph.graphql` must equal
//! `blocks-gateway schema --federation`, and the federation subgraph adds to the client-facing
//! schema only what federation needs.

use blocks_gateway::schema;
use serde_json::Value;

#[test]
fn schema_file_matches_the_served_schema() {
    let published = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists at the repository root");
    let served = schema::sdl();
    assert!(
        published == served,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn subgraph_file_matches_the_subgraph_sdl() {
    let published = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/subgraph.graphql"))
        .expect("subgraph.graphql exists at the repository root");
    assert!(
        published == schema::subgraph_sdl(),
        "subgraph.graphql is out of date: run `cargo run -- schema --federation > subgraph.graphql`"
    );
}

/// The subgraph schema is the client-facing one plus `_service`, `_entities` and their types:
/// turning federation on changes nothing a client of `schema.graphql` sees.
#[tokio::test]
async fn the_subgraph_adds_only_the_federation_fields_to_the_client_schema() {
    let client = types_by_name(&schema::build().execute(INTROSPECTION).await);
    let mut subgraph = types_by_name(&schema::subgraph_builder().finish().execute(INTROSPECTION).await);
    let added: Vec<String> = ["_Any", "_Entity", "_Service"]
        .iter()
        .filter_map(|name| subgraph.remove(*name).map(|_| name.to_string()))
        .collect();
    assert_eq!(added, ["_Any", "_Entity", "_Service"]);
    let query = subgraph.get_mut("Query").expect("Query");
    let fields = query["fields"].as_array_mut().expect("fields");
    let root_fields = fields.len();
    fields.retain(|field| !matches!(field["name"].as_str(), Some("_service" | "_entities")));
    assert_eq!(fields.len() + 2, root_fields, "`_service` and `_entities` on Query");
    assert!(subgraph == client, "the subgraph changes a client-facing type");
}

fn types_by_name(response: &async_graphql::Response) -> std::collections::BTreeMap<String, Value> {
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.clone().into_json().expect("JSON");
    data["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|ty| (ty["name"].as_str().unwrap_or_default().to_owned(), ty.clone()))
        .collect()
}

/// Every named thing of the schema, as introspection reports it, for the checks below.
const INTROSPECTION: &str = r#"{
  __schema { types {
    name kind description
    fields(includeDeprecated: true) { name description isDeprecated deprecationReason
      args { name description } }
    inputFields { name description }
    enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  } }
}"#;

/// The schema's own types (introspection types and the spec's scalars excluded).
async fn own_types() -> Vec<Value> {
    let response = schema::build().execute(INTROSPECTION).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().expect("JSON");
    let types = data["__schema"]["types"].as_array().expect("types").clone();
    let built_in = ["String", "Int", "Float", "Boolean", "ID"];
    types
        .into_iter()
        .filter(|t| {
            t["name"]
                .as_str()
                .is_some_and(|n| !n.starts_with("__") && !built_in.contains(&n))
        })
        .collect()
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn undescribed(value: &Value) -> bool {
    value["description"].as_str().is_none_or(|d| d.trim().is_empty())
}

#[tokio::test]
async fn every_type_field_argument_input_field_and_enum_value_has_a_description() {
    let mut missing = Vec::new();
    for ty in own_types().await {
        let name = ty["name"].as_str().unwrap_or("?");
        if undescribed(&ty) {
            missing.push(name.to_owned());
        }
        for field in list(&ty, "fields") {
            let field_name = format!("{name}.{}", field["name"].as_str().unwrap_or("?"));
            if undescribed(field) {
                missing.push(field_name.clone());
            }
            for arg in list(field, "args").iter().filter(|a| undescribed(a)) {
                missing.push(format!("{field_name}({}:)", arg["name"].as_str().unwrap_or("?")));
            }
        }
        for member in list(&ty, "inputFields").iter().chain(list(&ty, "enumValues")) {
            if undescribed(member) {
                missing.push(format!("{name}.{}", member["name"].as_str().unwrap_or("?")));
            }
        }
    }
    assert!(missing.is_empty(), "undescribed: {missing:#?}");
}

/// Nothing is removed or renamed silently: the old name stays, `@deprecated` with a reason
/// that says what to use instead (async-graphql's bare default says nothing).
#[tokio::test]
async fn every_deprecation_says_what_to_use_instead() {
    let mut unexplained = Vec::new();
    for ty in own_types().await {
        let name = ty["name"].as_str().unwrap_or("?");
        for member in list(&ty, "fields").iter().chain(list(&ty, "enumValues")) {
            let reason = member["deprecationReason"].as_str().unwrap_or("").trim();
            let deprecated = member["isDeprecated"] == true;
            if deprecated && (reason.is_empty() || reason == "No longer supported") {
                unexplained.push(format!("{name}.{}", member["name"].as_str().unwrap_or("?")));
            }
        }
    }
    assert!(unexplained.is_empty(), "deprecated without a reason: {unexplained:#?}");
}
