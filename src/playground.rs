//! The GraphiQL page at `/`: GraphiQL 5 with the explorer plugin, served from the binary
//! itself (`assets`), opening with one tab per example operation of `examples/operations/`
//! (embedded at build time, with its sample variables) and, when callers must
//! authenticate, an `Authorization: Bearer` header to fill in. GraphiQL keeps tabs in the
//! browser's local storage: the examples appear on a first visit, or after "Clear storage"
//! in GraphiQL's settings.

pub mod assets;

use serde_json::json;

/// One example operation: a document (one named operation with its fragments) and sample
/// variables a developer edits before running it.
#[derive(Debug, Clone, Copy)]
pub struct ExampleOperation {
    /// The operation's name, also the file's name.
    pub name: &'static str,
    /// The document's text, exactly as in `examples/operations/<name>.graphql`.
    pub document: &'static str,
    /// The JSON of `examples/operations/<name>.variables.json`.
    pub variables: &'static str,
}

macro_rules! example {
    ($name:literal) => {
        ExampleOperation {
            name: $name,
            document: include_str!(concat!("../examples/operations/", $name, ".graphql")),
            variables: include_str!(concat!("../examples/operations/", $name, ".variables.json")),
        }
    };
}

/// Every example operation, reads first (a test checks this is the whole directory).
pub const EXAMPLE_OPERATIONS: &[ExampleOperation] = &[
    example!("PersonList"),
    example!("IdentityProfile"),
    example!("OrganizationPage"),
    example!("OrganizationPersons"),
    example!("IdentityByEmail"),
    example!("B2BUsers"),
    example!("SalesEntities"),
    example!("AssetsUsers"),
    example!("RegisterIdentity"),
    example!("RegisterOrganization"),
    example!("InvitePerson"),
    example!("LinkPersonToUser"),
    example!("LinkIdentity"),
    example!("UnlinkIdentity"),
    example!("PreviewMergePersons"),
    example!("MergePersons"),
    example!("UpdateIdentity"),
    example!("CreatePerson"),
    example!("UpdatePerson"),
    example!("DeletePerson"),
    example!("CreateOrganization"),
    example!("UpdateOrganization"),
    example!("DeleteOrganization"),
    example!("SetB2BUserActive"),
    example!("UpdateB2BUser"),
    example!("AssignB2BRemoteId"),
    example!("RegisterSalesEntity"),
];

/// The header placeholder the page fills in when callers must send a key.
pub const CALLER_HEADER_PLACEHOLDER: &str = r#"{ "Authorization": "Bearer <your API key>" }"#;

/// The Content-Security-Policy of the page: everything from the gateway's own origin,
/// nothing inline but styles. Monaco and GraphiQL's components set element styles and add
/// `<style>` elements at run time (`'unsafe-inline'` for styles only); GraphiQL's
/// stylesheet carries its fonts and icons as `data:` URLs; Monaco's language services run
/// in workers served beside the script.
pub const PAGE_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; \
     connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the page finds its assets, relative to itself (the playground is served at `/`).
const ASSET_DIR: &str = "playground";

/// The path, below the page, of build `version`'s asset `name`.
pub fn asset_path(version: &str, name: &str) -> String {
    format!("{ASSET_DIR}/{version}/{name}")
}

/// The page; `endpoint` is the GraphQL URL (relative to the page), `caller_key_required`
/// adds the `Authorization` header placeholder to every tab and opens the headers pane.
pub fn graphiql_page(endpoint: &str, caller_key_required: bool) -> String {
    let headers = if caller_key_required {
        CALLER_HEADER_PLACEHOLDER
    } else {
        ""
    };
    let tabs: Vec<_> = EXAMPLE_OPERATIONS
        .iter()
        .map(|example| json!({ "query": example.document, "variables": readable_json(example.variables), "headers": headers }))
        .collect();
    let config = json!({ "endpoint": endpoint, "tabs": tabs, "headers": headers });
    let version = assets::version();
    PAGE.replace("{{SCRIPT}}", &asset_path(version, "playground.js"))
        .replace("{{STYLESHEET}}", &asset_path(version, "playground.css"))
        .replace("{{CONFIG}}", &script_safe_json(&config))
}

/// `text` pretty-printed when it is JSON (the variables pane shows one entry a line), else
/// as it is.
fn readable_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| text.trim().to_owned())
}

/// JSON that cannot end the `<script>` element it sits in.
fn script_safe_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// The configuration travels as JSON data, never as code: the only script is the bundle.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>blocks-gateway</title>
    <link rel="stylesheet" href="{{STYLESHEET}}">
    <script type="module" src="{{SCRIPT}}"></script>
  </head>
  <body>
    <div id="graphiql">Loading the playground...</div>
    <noscript>The playground needs JavaScript; the GraphQL endpoint is /graphql.</noscript>
    <script id="graphiql-config" type="application/json">{{CONFIG}}</script>
  </body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(page: &str) -> serde_json::Value {
        let start = page.find(r#"type="application/json">"#).expect("config script") + 24;
        let end = start + page[start..].find("</script>").expect("end of config");
        serde_json::from_str(&page[start..end]).expect("config is JSON")
    }

    #[test]
    fn every_example_is_a_tab_with_its_variables() {
        let config = config_of(&graphiql_page("/graphql", false));
        let tabs = config["tabs"].as_array().expect("tabs");
        assert_eq!(tabs.len(), EXAMPLE_OPERATIONS.len());
        for (tab, example) in tabs.iter().zip(EXAMPLE_OPERATIONS) {
            assert_eq!(tab["query"], example.document);
            let variables: serde_json::Value =
                serde_json::from_str(tab["variables"].as_str().expect("variables")).expect("variables are JSON");
            assert!(variables.is_object(), "{}", example.name);
            assert_eq!(tab["headers"], "");
        }
        assert_eq!(config["endpoint"], "/graphql");
    }

    #[test]
    fn the_caller_header_is_prefilled_only_when_a_key_is_required() {
        let config = config_of(&graphiql_page("/graphql", true));
        assert_eq!(config["headers"], CALLER_HEADER_PLACEHOLDER);
        assert!(
            config["tabs"]
                .as_array()
                .expect("tabs")
                .iter()
                .all(|t| t["headers"] == CALLER_HEADER_PLACEHOLDER)
        );
        assert!(!graphiql_page("/graphql", false).contains("Bearer"));
    }

    #[test]
    fn the_page_loads_only_embedded_assets_of_this_build() {
        let page = graphiql_page("/graphql", false);
        let references: Vec<&str> = ["src=\"", "href=\""]
            .iter()
            .flat_map(|attribute| page.split(attribute).skip(1))
            .map(|rest| &rest[..rest.find('"').expect("closing quote")])
            .collect();
        assert_eq!(references.len(), 2, "{references:?}");
        for reference in references {
            let name = reference
                .strip_prefix(&format!("{ASSET_DIR}/{}/", assets::version()))
                .unwrap_or_else(|| panic!("{reference} is not an asset of this build"));
            assert!(assets::find(assets::version(), name).is_some(), "{name}");
        }
    }

    #[test]
    fn the_configuration_cannot_close_its_script_element() {
        let escaped = script_safe_json(&json!({ "query": "</script><script>alert(1)</script>" }));
        assert!(!escaped.contains("</script"));
        let back: serde_json::Value = serde_json::from_str(&escaped).expect("still JSON");
        assert_eq!(back["query"], "</script><script>alert(1)</script>");
    }
}
