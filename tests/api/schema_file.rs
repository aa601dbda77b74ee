//! `schema.graphql` is the published contract: it must equal `blocks-gateway schema`, describe
//! everything it names, and explain every deprecation.

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
