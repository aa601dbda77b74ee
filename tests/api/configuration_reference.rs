//! The README's configuration table is the declared variables, as `blocks-gateway
//! variables` prints them: a variable added, renamed or re-documented in code shows here.

use blocks_gateway::config;

const BEGIN: &str = "<!-- variables: the output of `blocks-gateway variables`; a test keeps them equal -->\n";
const END: &str = "<!-- end of variables -->";

#[test]
fn the_readme_table_is_the_declared_configuration() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let start = readme
        .find(BEGIN)
        .expect("the README marks the start of its variables table")
        + BEGIN.len();
    let end = readme[start..]
        .find(END)
        .expect("the README marks the end of its variables table")
        + start;
    let documented = &readme[start..end];
    let declared = config::reference_table();
    assert!(
        documented == declared,
        "README.md's configuration table differs from the declared variables; replace it with the output of \
         `cargo run -- variables`.\n--- README\n{documented}\n--- declared\n{declared}"
    );
    for key in config::KEYS {
        assert!(documented.contains(&format!("| `{key}` |")), "{key} is in the table");
    }
}
