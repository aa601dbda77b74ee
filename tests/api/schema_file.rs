//! `schema.graphql` is the published contract: it must equal `blocks-gateway schema`.

use blocks_gateway::schema;

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
fn every_type_field_argument_and_enum_value_has_a_description() {
    let sdl = schema::sdl();
    let lines: Vec<&str> = sdl.lines().collect();
    let mut missing = Vec::new();
    let mut in_schema_block = false;
    for (index, line) in lines.iter().enumerate() {
        let text = line.trim();
        if text.starts_with("schema {") {
            in_schema_block = true;
        }
        if in_schema_block {
            in_schema_block = text != "}";
            continue;
        }
        let is_definition = ["type ", "enum ", "input ", "scalar ", "interface ", "union "]
            .iter()
            .any(|p| text.starts_with(p));
        // Fields and enum values are indented once, arguments twice.
        let is_member =
            line.starts_with('\t') && !text.is_empty() && !text.starts_with("\"\"\"") && !text.starts_with(')');
        let in_docstring = lines[..index].iter().filter(|l| l.trim() == "\"\"\"").count() % 2 == 1;
        if !(is_definition || is_member) || in_docstring {
            continue;
        }
        let previous = lines[..index]
            .iter()
            .rev()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .unwrap_or("");
        if !previous.ends_with("\"\"\"") {
            missing.push(text.to_owned());
        }
    }
    assert!(missing.is_empty(), "undescribed: {missing:#?}");
}
