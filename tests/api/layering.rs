//! The source keeps its layers: every module of `src/` imports only from its own layer or
//! below, the top-level modules import each other without a circle, and the product reaches
//! the block emulator (the `blocks-sandbox` crate) from `main.rs` alone. It reads the
//! sources (every `use`, every path, every macro body), so an import added anywhere, at
//! any depth, is seen.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use syn::visit::Visit;

/// The layers, top down (see `ARCHITECTURE.md`); `lib.rs` only declares the modules.
const LAYERS: &[&[&str]] = &[
    &["main", "server", "shutdown", "playground"],
    &["config"],
    &["gateway", "admission", "trusted_documents"],
    &["schema"],
    &["loaders"],
    &["cache", "link_index", "callers"],
    &["blocks"],
    &["metrics", "explain", "telemetry", "limits", "error_code"],
];

/// The emulator crate, which only `main.rs` may name.
const EMULATOR: &str = "blocks_sandbox";

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// One import of another top-level module (or of the emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Import {
    line: usize,
    target: String,
}

/// A broken rule, naming the file, the line and what it imports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "src/{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The module path of a file under `src/` (`schema/mutation/persons.rs` ->
/// `[schema, mutation, persons]`, `schema/mod.rs` -> `[schema]`, `main.rs` -> `[main]`).
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|last| last == "mod" || last == "lib") {
        parts.pop();
    }
    parts
}

/// Collects the top-level modules a file's paths lead to.
struct Collector {
    /// The module the visitor is in (inline `mod` blocks push onto it).
    here: Vec<String>,
    /// Whether the file is the binary, which names the library as `blocks_gateway`.
    binary: bool,
    imports: Vec<Import>,
}

impl Collector {
    /// Records where a path of `segments` (at `line`) leads, when it leaves its module.
    fn record(&mut self, segments: &[String], line: usize) {
        let Some(first) = segments.first() else { return };
        let target = match first.as_str() {
            "crate" | "$crate" => segments.get(1).cloned(),
            "blocks_gateway" if self.binary => segments.get(1).cloned(),
            EMULATOR => Some(EMULATOR.to_owned()),
            "super" => {
                let ups = segments.iter().take_while(|segment| *segment == "super").count();
                let base = self.here.len().saturating_sub(ups);
                if base == 0 {
                    segments.get(ups).cloned()
                } else {
                    Some(self.here[0].clone())
                }
            }
            _ => None,
        };
        if let Some(target) = target {
            self.imports.push(Import { line, target });
        }
    }

    /// The first segments of every branch of a `use` tree.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, line: usize) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                if prefix.len() > leading_roots(prefix) {
                    self.record(prefix, line);
                } else {
                    self.use_tree(prefix, &path.tree, line);
                }
                prefix.pop();
            }
            syn::UseTree::Group(group) => {
                for item in &group.items {
                    self.use_tree(prefix, item, line);
                }
            }
            syn::UseTree::Name(name) => {
                prefix.push(name.ident.to_string());
                self.record(prefix, line);
                prefix.pop();
            }
            syn::UseTree::Rename(rename) => {
                prefix.push(rename.ident.to_string());
                self.record(prefix, line);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => self.record(prefix, line),
        }
    }

    /// `crate :: name` (and `$crate`, `super`, the emulator) inside a macro's tokens.
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        let flat: Vec<proc_macro2::TokenTree> = tokens.into_iter().collect();
        for (index, token) in flat.iter().enumerate() {
            match token {
                proc_macro2::TokenTree::Group(group) => self.tokens(group.stream()),
                proc_macro2::TokenTree::Ident(ident) => {
                    let name = ident.to_string();
                    let dollar = index > 0
                        && matches!(&flat[index - 1], proc_macro2::TokenTree::Punct(punct) if punct.as_char() == '$');
                    let root = if dollar && name == "crate" {
                        "$crate".to_owned()
                    } else {
                        name
                    };
                    if !(is_relative_root(&root) || root == EMULATOR || root == "blocks_gateway") {
                        continue;
                    }
                    let mut segments = vec![root];
                    let mut at = index + 1;
                    while let (Some(proc_macro2::TokenTree::Punct(colon)), Some(proc_macro2::TokenTree::Ident(next))) =
                        (flat.get(at + 1), flat.get(at + 2))
                    {
                        let is_path_separator = matches!(&flat[at], proc_macro2::TokenTree::Punct(first) if first.as_char() == ':')
                            && colon.as_char() == ':';
                        if !is_path_separator {
                            break;
                        }
                        segments.push(next.to_string());
                        at += 3;
                    }
                    if segments.len() > 1 {
                        self.record(&segments, ident.span().start().line);
                    }
                }
                _ => {}
            }
        }
    }
}

/// How many leading segments only say where a path starts (`crate`, `super::super`).
fn leading_roots(segments: &[String]) -> usize {
    match segments.first().map(String::as_str) {
        Some("super") => segments.iter().take_while(|segment| *segment == "super").count(),
        Some(root) if is_relative_root(root) => 1,
        _ => 0,
    }
}

fn is_relative_root(segment: &str) -> bool {
    matches!(segment, "crate" | "$crate" | "super" | "blocks_gateway")
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let line = item.use_token.span.start().line;
        self.use_tree(&mut Vec::new(), &item.tree, line);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|segment| segment.ident.to_string()).collect();
        if segments.len() > 1 {
            let line = path.segments[0].ident.span().start().line;
            self.record(&segments, line);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.here.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.here.pop();
    }
}

/// The imports of one file (`file` relative to `src/`) that leave its top-level module.
fn imports_of(file: &str, source: &str) -> Result<Vec<Import>, String> {
    let parsed = syn::parse_file(source).map_err(|error| format!("src/{file}: {error}"))?;
    let here = module_path(file);
    let own = here.first().cloned().unwrap_or_default();
    let mut collector = Collector {
        here,
        binary: file == "main.rs",
        imports: Vec::new(),
    };
    collector.visit_file(&parsed);
    Ok(collector
        .imports
        .into_iter()
        .filter(|import| import.target != own)
        .collect())
}

/// Checks one file's imports against the layers.
fn check_file(file: &str, source: &str) -> Result<(Vec<Violation>, BTreeSet<String>), String> {
    let module = module_path(file).first().cloned().unwrap_or_default();
    let mut violations = Vec::new();
    let mut targets = BTreeSet::new();
    if module.is_empty() {
        return Ok((violations, targets));
    }
    let Some(layer) = layer_of(&module) else {
        violations.push(Violation {
            file: file.to_owned(),
            line: 1,
            message: format!("module `{module}` is in no layer: place it in tests/api/layering.rs and ARCHITECTURE.md"),
        });
        return Ok((violations, targets));
    };
    for import in imports_of(file, source)? {
        if import.target == EMULATOR {
            if file != "main.rs" {
                violations.push(Violation {
                    file: file.to_owned(),
                    line: import.line,
                    message: format!("the product reaches the block emulator (`{EMULATOR}`) outside main.rs"),
                });
            }
            continue;
        }
        match layer_of(&import.target) {
            Some(target_layer) if target_layer < layer => violations.push(Violation {
                file: file.to_owned(),
                line: import.line,
                message: format!(
                    "`{module}` (layer {}) imports `{}` from the layer above it (layer {})",
                    layer + 1,
                    import.target,
                    target_layer + 1
                ),
            }),
            Some(_) => {
                targets.insert(import.target);
            }
            // Not a module of the crate (a name brought in by `use super::*`, say).
            None => {}
        }
    }
    Ok((violations, targets))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// A circle among the top-level modules, if any (`a -> b -> a`).
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|step| step == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn imports_run_down_the_layers_and_only_main_reaches_the_emulator() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 40, "found the sources under {}", src.display());
    let mut violations = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let file = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let source = std::fs::read_to_string(path).expect("readable source");
        let (found, targets) = check_file(&file, &source).expect("every source parses");
        violations.extend(found);
        if let Some(module) = module_path(&file).first() {
            graph.entry(module.clone()).or_default().extend(targets);
        }
    }
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(listed.is_empty(), "imports against the layers:\n{}", listed.join("\n"));
    if let Some(circle) = circle(&graph) {
        panic!(
            "top-level modules import each other in a circle: {}",
            circle.join(" -> ")
        );
    }
}

#[test]
fn the_check_sees_upward_imports_wherever_they_are_written() {
    let upward = |file: &str, source: &str| {
        check_file(file, source)
            .expect("parses")
            .0
            .into_iter()
            .map(|violation| violation.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        upward("metrics.rs", "use crate::gateway::Gateway;"),
        ["src/metrics.rs:1: `metrics` (layer 8) imports `gateway` from the layer above it (layer 3)"]
    );
    assert_eq!(
        upward("limits.rs", "use crate::{blocks::X, schema::{errors::E}};").len(),
        2
    );
    assert_eq!(
        upward(
            "blocks/http.rs",
            "fn f() {\n    let _ = crate::cache::ResponseCache::new(x);\n}"
        )
        .len(),
        1
    );
    assert_eq!(upward("limits.rs", "use super::schema::pagination;").len(), 1);
    assert_eq!(
        upward("schema/mutation/persons.rs", "use super::super::super::gateway;").len(),
        1
    );
    assert_eq!(
        upward("loaders/keys.rs", "macro_rules! m { () => { $crate::gateway::x() } }").len(),
        1
    );
    assert_eq!(upward("config/mod.rs", "use blocks_sandbox::Sandbox;").len(), 1);
    assert!(upward("main.rs", "use blocks_sandbox::Sandbox; use blocks_gateway::server;").is_empty());
    assert!(
        upward(
            "schema/mutation/persons.rs",
            "use super::super::crm::Person; use crate::loaders::PersonKey;"
        )
        .is_empty()
    );
    assert_eq!(upward("newcomer.rs", "").len(), 1, "a module must be placed in a layer");
    let graph = BTreeMap::from([
        ("cache".to_owned(), BTreeSet::from(["link_index".to_owned()])),
        ("link_index".to_owned(), BTreeSet::from(["cache".to_owned()])),
    ]);
    assert_eq!(
        circle(&graph),
        Some(vec!["cache".to_owned(), "link_index".to_owned(), "cache".to_owned()])
    );
}
