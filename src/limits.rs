//! What one GraphQL operation may cost: document limits checked before execution (tokens,
//! aliases, root fields, introspection nesting; depth, complexity and directives through
//! async-graphql's own limits), request limits (body size, batch size), and what execution
//! may spend upstream (a deadline and a request cap).
//!
//! A leaf: the limits take plain values and documents; the pipeline's admission applies
//! them (after a persisted-query hash was resolved) and the schema maps a refusal to the
//! caller's error. Depth and complexity count introspection fields too, and the playground's introspection query is 13 levels deep: an operation
//! that selects only introspection runs on a twin schema without those two limits, bounded
//! instead by the introspection nesting rule (graphql-js' `MaxIntrospectionDepthRule`) and
//! the token limit.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use async_graphql::{
    Name, Positioned, SchemaBuilder,
    parser::types::{ExecutableDocument, FragmentDefinition, OperationDefinition, Selection, SelectionSet},
};

/// The largest `first` a connection accepts.
pub const MAX_FIRST: i32 = 100;

/// How deeply the parser may recurse (nested selections, lists and objects in values).
const RECURSIVE_DEPTH: usize = 32;
/// Nesting of the introspection list fields allowed (graphql-js refuses from 3 on).
const MAX_INTROSPECTION_NESTING: usize = 2;
/// The introspection fields that return lists of types or fields.
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "interfaces", "possibleTypes", "inputFields"];
/// The root fields an introspection-only operation may select.
const INTROSPECTION_ROOTS: [&str; 3] = ["__schema", "__type", "__typename"];

/// The configured limits. Defaults follow the strictest common gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationLimits {
    /// Deepest field nesting (`GATEWAY_MAX_DEPTH`).
    pub max_depth: usize,
    /// Aliased fields in one document (`GATEWAY_MAX_ALIASES`).
    pub max_aliases: usize,
    /// Fields at the root of the executed operation (`GATEWAY_MAX_ROOT_FIELDS`).
    pub max_root_fields: usize,
    /// Directives on one field (`GATEWAY_MAX_DIRECTIVES`).
    pub max_directives: usize,
    /// Lexical tokens in the query text (`GATEWAY_MAX_TOKENS`).
    pub max_tokens: usize,
    /// Complexity: one per field, a connection's `first` multiplying its selection
    /// (`GATEWAY_MAX_COMPLEXITY`).
    pub max_complexity: usize,
    /// Request body size in bytes (`GATEWAY_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Operations in one batched request; 0 turns batching off (`GATEWAY_MAX_BATCH`).
    pub max_batch: usize,
    /// Time one operation may take; fields still waiting for a block then fail with
    /// `UPSTREAM_TIMEOUT` (`GATEWAY_OPERATION_TIMEOUT_MS`).
    pub operation_timeout: Duration,
    /// Upstream requests one operation may send, retries included
    /// (`GATEWAY_MAX_UPSTREAM_REQUESTS`).
    pub max_upstream_requests: usize,
}

impl Default for OperationLimits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_aliases: 30,
            max_root_fields: 10,
            max_directives: 5,
            max_tokens: 5_000,
            max_complexity: 5_000,
            max_body_bytes: 1024 * 1024,
            max_batch: 10,
            operation_timeout: Duration::from_secs(15),
            max_upstream_requests: 500,
        }
    }
}

/// The limits a request or operation can exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Field nesting.
    Depth,
    /// Aliased fields.
    Aliases,
    /// Root fields.
    RootFields,
    /// Directives on one field.
    Directives,
    /// Lexical tokens.
    Tokens,
    /// Complexity points.
    Complexity,
    /// Nested `fields`/`interfaces`/`possibleTypes`/`inputFields` in introspection.
    IntrospectionDepth,
    /// Request body bytes.
    BodyBytes,
    /// Operations in one batched request.
    Batch,
}

impl Limit {
    /// The name sent as `extensions.limit`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Depth => "depth",
            Self::Aliases => "aliases",
            Self::RootFields => "rootFields",
            Self::Directives => "directives",
            Self::Tokens => "tokens",
            Self::Complexity => "complexity",
            Self::IntrospectionDepth => "introspectionDepth",
            Self::BodyBytes => "bodyBytes",
            Self::Batch => "batch",
        }
    }

    fn allowance(self, max: usize) -> String {
        match self {
            Self::Depth => format!("fields may be nested at most {max} levels deep"),
            Self::Aliases => format!("a document may use at most {max} aliases"),
            Self::RootFields => format!("an operation may select at most {max} root fields"),
            Self::Directives => format!("a field may carry at most {max} directives"),
            Self::Tokens => format!("a document may have at most {max} tokens"),
            Self::Complexity => format!(
                "an operation may cost at most {max} points (one per field, a connection's `first` multiplying its selection)"
            ),
            Self::IntrospectionDepth => {
                format!(
                    "introspection may nest `fields`, `interfaces`, `possibleTypes` and `inputFields` at most {max} deep"
                )
            }
            Self::BodyBytes => format!("a request body may have at most {max} bytes"),
            Self::Batch if max == 0 => "batched requests are turned off: send one operation per request".to_owned(),
            Self::Batch => format!("a batched request may carry at most {max} operations"),
        }
    }
}

/// A refused request or operation: which limit, and its configured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operation exceeds the {} limit: {}", .limit.name(), .limit.allowance(*.max))]
pub struct LimitViolation {
    /// The limit.
    pub limit: Limit,
    /// Its configured value.
    pub max: usize,
}

impl OperationLimits {
    /// Every document limit, for the schema that runs operations.
    pub fn install<Q, M, S>(&self, builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S> {
        self.install_for_introspection(builder)
            .limit_depth(self.max_depth)
            .limit_complexity(self.max_complexity)
    }

    /// The document limits without depth and complexity, for the twin schema that runs
    /// introspection-only operations.
    pub fn install_for_introspection<Q, M, S>(&self, builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S> {
        builder
            .limit_directives(self.max_directives)
            .limit_recursive_depth(RECURSIVE_DEPTH)
    }

    /// The limit behind one of async-graphql's own refusals (a plain message without a
    /// code: depth, complexity, directives), with its configured value.
    pub fn builtin_refusal(&self, message: &str) -> Option<LimitViolation> {
        let (limit, max) = match message {
            "Query is nested too deep." => (Limit::Depth, self.max_depth),
            "Query is too complex." => (Limit::Complexity, self.max_complexity),
            message if message.starts_with("The number of directives on the field") => {
                (Limit::Directives, self.max_directives)
            }
            _ => return None,
        };
        Some(LimitViolation { limit, max })
    }

    fn check(&self, limit: Limit, found: usize) -> Result<(), LimitViolation> {
        let max = match limit {
            Limit::Tokens => self.max_tokens,
            Limit::Aliases => self.max_aliases,
            Limit::RootFields => self.max_root_fields,
            Limit::IntrospectionDepth => MAX_INTROSPECTION_NESTING,
            _ => return Ok(()),
        };
        if found > max {
            return Err(LimitViolation { limit, max });
        }
        Ok(())
    }

    /// The token limit, checked on the text before it is parsed.
    pub(crate) fn check_tokens(&self, query: &str) -> Result<(), LimitViolation> {
        self.check(Limit::Tokens, count_tokens(query, self.max_tokens))
    }

    /// The checks on a parsed document.
    pub(crate) fn check_document(&self, document: &ExecutableDocument) -> Result<(), LimitViolation> {
        self.check(Limit::Aliases, count_aliases(document))?;
        let mut walk = Walk::new(document);
        let root_fields = document
            .operations
            .iter()
            .map(|(_, operation)| walk.root_fields(&operation.node.selection_set))
            .max()
            .unwrap_or(0);
        self.check(Limit::RootFields, root_fields)?;
        let nesting = document
            .operations
            .iter()
            .map(|(_, operation)| walk.introspection_nesting(&operation.node.selection_set))
            .max()
            .unwrap_or(0);
        self.check(Limit::IntrospectionDepth, nesting)
    }
}

/// The complexity of a connection field: its selection counts once per requested item
/// (`first`, clamped to what the field accepts), plus the field itself.
pub fn connection_complexity(first: i32, child_complexity: usize) -> usize {
    list_complexity(first.clamp(1, MAX_FIRST) as usize, child_complexity)
}

/// The complexity of a field answering `items` objects (a connection page, the entities of
/// a subgraph request): its selection counts once per item, plus the field itself.
pub fn list_complexity(items: usize, child_complexity: usize) -> usize {
    items.max(1).saturating_mul(child_complexity).saturating_add(1)
}

/// Whether the operation of `document` named `operation_name` (or its only one) selects
/// only introspection (`__schema`, `__type`, `__typename`).
pub fn is_introspection_only(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let Some((_, operation)) = selected_operation(document, operation_name) else {
        return false;
    };
    let mut walk = Walk::new(document);
    let mut names = Vec::new();
    walk.root_field_names(&operation.node.selection_set, &mut names);
    !names.is_empty() && names.iter().all(|name| INTROSPECTION_ROOTS.contains(&name.as_str()))
}

/// The operation a request runs: the one named `operation_name`, or the first when none is
/// named (execution itself refuses an unnamed request among several operations).
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<(Option<&'a Name>, &'a Positioned<OperationDefinition>)> {
    document.operations.iter().find(|(name, _)| match operation_name {
        Some(wanted) => name.is_some_and(|name| name.as_str() == wanted),
        None => true,
    })
}

/// The root field names of every operation of `document` (fragments followed).
pub fn root_field_names(document: &ExecutableDocument) -> Vec<String> {
    let mut walk = Walk::new(document);
    let mut names = Vec::new();
    for (_, operation) in document.operations.iter() {
        walk.root_field_names(&operation.node.selection_set, &mut names);
        walk.entered.clear();
    }
    names
}

/// Counts the lexical tokens of `query`, stopping once past `stop_after`. Close enough to
/// the GraphQL lexer for a limit: punctuators, names, numbers and strings count one each;
/// blanks, commas and comments none.
fn count_tokens(query: &str, stop_after: usize) -> usize {
    let bytes = query.as_bytes();
    let mut at = 0;
    let mut count = 0;
    while at < bytes.len() && count <= stop_after {
        let (length, is_token) = next_lexeme(&bytes[at..]);
        at += length;
        count += usize::from(is_token);
    }
    count
}

/// The length of the lexeme `rest` starts with, and whether it is a token (not a blank,
/// comma or comment).
fn next_lexeme(rest: &[u8]) -> (usize, bool) {
    match rest[0] {
        b' ' | b'\t' | b'\n' | b'\r' | b',' => (1, false),
        b'#' => (
            rest.iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(rest.len()),
            false,
        ),
        b'"' if rest.starts_with(b"\"\"\"") => (block_string_length(rest), true),
        b'"' => (string_length(rest), true),
        b'.' if rest.starts_with(b"...") => (3, true),
        b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => {
            let length = rest
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')))
                .unwrap_or(rest.len());
            (length.max(1), true)
        }
        // A UTF-8 character outside strings: a byte-order mark, or something the parser refuses.
        byte if byte >= 0x80 => {
            let length = rest
                .iter()
                .skip(1)
                .position(|&b| !(0x80..0xC0).contains(&b))
                .map_or(rest.len(), |n| n + 1);
            (length, !rest.starts_with("\u{feff}".as_bytes()))
        }
        _ => (1, true),
    }
}

/// Length of a `"..."` string with escapes (to its end, or to the end of the line when
/// unterminated).
fn string_length(rest: &[u8]) -> usize {
    let mut at = 1;
    while at < rest.len() {
        match rest[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            b'\n' | b'\r' => return at,
            _ => at += 1,
        }
    }
    rest.len()
}

/// Length of a `"""..."""` block string (`\"""` does not end it).
fn block_string_length(rest: &[u8]) -> usize {
    let mut at = 3;
    while at < rest.len() {
        if rest[at..].starts_with(b"\\\"\"\"") {
            at += 4;
        } else if rest[at..].starts_with(b"\"\"\"") {
            return at + 3;
        } else {
            at += 1;
        }
    }
    rest.len()
}

/// Aliased fields in the operations and fragment definitions, each counted once.
fn count_aliases(document: &ExecutableDocument) -> usize {
    fn in_set(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + in_set(&field.node.selection_set.node)
                }
                Selection::InlineFragment(inline) => in_set(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let in_operations: usize = document
        .operations
        .iter()
        .map(|(_, operation)| in_set(&operation.node.selection_set.node))
        .sum();
    let in_fragments: usize = document
        .fragments
        .values()
        .map(|fragment| in_set(&fragment.node.selection_set.node))
        .sum();
    in_operations + in_fragments
}

/// Walks selection sets through fragments, each fragment's result computed once (a
/// document may spread one fragment many times, and cycles are not refused until
/// validation, which runs after these checks).
struct Walk<'a> {
    fragments: &'a HashMap<async_graphql::Name, Positioned<FragmentDefinition>>,
    nesting: HashMap<&'a str, usize>,
    entered: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn new(document: &'a ExecutableDocument) -> Self {
        Self {
            fragments: &document.fragments,
            nesting: HashMap::new(),
            entered: HashSet::new(),
        }
    }

    fn fragment(&self, name: &str) -> Option<&'a Positioned<FragmentDefinition>> {
        self.fragments.get(name)
    }

    /// Root fields of a selection set, fragments expanded at this level only.
    fn root_fields(&mut self, set: &'a Positioned<SelectionSet>) -> usize {
        let mut names = Vec::new();
        self.root_field_names(set, &mut names);
        self.entered.clear();
        names.len()
    }

    fn root_field_names(&mut self, set: &'a Positioned<SelectionSet>, names: &mut Vec<String>) {
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => names.push(field.node.name.node.to_string()),
                Selection::InlineFragment(inline) => self.root_field_names(&inline.node.selection_set, names),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(fragment) = self.fragment(name)
                        && self.entered.insert(name)
                    {
                        self.root_field_names(&fragment.node.selection_set, names);
                    }
                }
            }
        }
    }

    /// The deepest nesting of introspection list fields below `set`.
    fn introspection_nesting(&mut self, set: &'a Positioned<SelectionSet>) -> usize {
        let mut deepest = 0;
        for selection in &set.node.items {
            let nesting = match &selection.node {
                Selection::Field(field) => {
                    let own = usize::from(INTROSPECTION_LISTS.contains(&field.node.name.node.as_str()));
                    own + self.introspection_nesting(&field.node.selection_set)
                }
                Selection::InlineFragment(inline) => self.introspection_nesting(&inline.node.selection_set),
                Selection::FragmentSpread(spread) => self.fragment_nesting(spread.node.fragment_name.node.as_str()),
            };
            deepest = deepest.max(nesting);
        }
        deepest
    }

    fn fragment_nesting(&mut self, name: &'a str) -> usize {
        if let Some(known) = self.nesting.get(name) {
            return *known;
        }
        let Some(fragment) = self.fragment(name) else {
            return 0;
        };
        if !self.entered.insert(name) {
            return 0; // a cycle: validation refuses the document
        }
        let nesting = self.introspection_nesting(&fragment.node.selection_set);
        self.entered.remove(name);
        self.nesting.insert(name, nesting);
        nesting
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    #[test]
    fn tokens_are_counted_as_the_lexer_sees_them() {
        assert_eq!(count_tokens("{ a: __typename }", 100), 5);
        assert_eq!(count_tokens("# a comment\n{ x }, , ,", 100), 3);
        assert_eq!(count_tokens(r#"{ f(s: "a \" } { b") }"#, 100), 8);
        assert_eq!(
            count_tokens("{ f(s: \"\"\"x \\\"\"\" still { } inside\"\"\") }", 100),
            8
        );
        assert_eq!(count_tokens("query ($v: [Int!]! = [-1, 2.5e3]) { ...F }", 100), 20);
        assert_eq!(count_tokens("\u{feff}{ é }", 100), 3);
    }

    #[test]
    fn counting_stops_past_the_limit() {
        let long = "{ a }".repeat(10_000);
        assert_eq!(count_tokens(&long, 10), 11);
    }

    #[test]
    fn connection_complexity_clamps_first() {
        assert_eq!(connection_complexity(10, 3), 31);
        assert_eq!(connection_complexity(-5, 3), 4);
        assert_eq!(connection_complexity(i32::MAX, 3), 301);
    }

    #[test]
    fn introspection_only_operations_are_recognised() {
        let only = |query: &str, name: Option<&str>| {
            let document = parse_query(query).expect("parses");
            is_introspection_only(&document, name)
        };
        assert!(only("{ __schema { types { name } } }", None));
        assert!(only(
            "query A { persons { totalCount } } query B { ...F } fragment F on Query { __type(name: \"X\") { name } }",
            Some("B"),
        ));
        assert!(!only(
            "query A { persons { totalCount } } query B { ...F } fragment F on Query { __type(name: \"X\") { name } }",
            Some("A"),
        ));
        assert!(!only("{ __schema { types { name } } persons { totalCount } }", None));
        assert!(!only("query Q { __typename }", Some("Missing")));
    }

    #[test]
    fn the_builtin_messages_are_still_the_ones_recognised() {
        let limits = OperationLimits::default();
        let refused = |message: &str| limits.builtin_refusal(message).map(|violation| violation.limit);
        assert_eq!(refused("Query is nested too deep."), Some(Limit::Depth));
        assert_eq!(refused("Query is too complex."), Some(Limit::Complexity));
        assert_eq!(refused("Unknown field \"x\""), None);
    }
}
