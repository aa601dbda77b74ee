//! Parsed operation documents, reused across requests. Frontends send the same few
//! documents again and again, and parsing one (pest) is the largest cost of a request the
//! cache answers: keeping the parsed form makes a warm request several times cheaper.
//!
//! The gateway's admission parses through it and hands the schema the parsed document;
//! other code that needs the document before execution (the operation's kind or name for
//! metrics) asks [`ParsedDocuments::parse`] too. Parse errors are not kept.

use std::sync::Arc;

use async_graphql::parser::{self, types::ExecutableDocument};
use moka::sync::Cache;

/// Distinct documents kept (least recently used first out).
pub const DEFAULT_PARSED_DOCUMENTS: u64 = 1_000;
/// Longer documents are parsed every time rather than kept.
const MAX_KEPT_LEN: usize = 16 * 1024;

/// The parsed-document cache, shared by every request of a schema. Cheap to clone.
#[derive(Clone)]
pub struct ParsedDocuments {
    parsed: Cache<Arc<str>, Arc<ExecutableDocument>>,
}

impl ParsedDocuments {
    /// A cache keeping at most `capacity` documents.
    pub fn new(capacity: u64) -> Self {
        Self {
            parsed: Cache::new(capacity),
        }
    }

    /// The parsed form of `query`, parsed at most once while it is kept.
    pub fn parse(&self, query: &str) -> Result<Arc<ExecutableDocument>, parser::Error> {
        if let Some(document) = self.parsed.get(query) {
            return Ok(document);
        }
        let document = Arc::new(parser::parse_query(query)?);
        self.keep(query, &document);
        Ok(document)
    }

    fn keep(&self, query: &str, document: &Arc<ExecutableDocument>) {
        if query.len() <= MAX_KEPT_LEN {
            self.parsed.insert(Arc::from(query), document.clone());
        }
    }

    /// Documents kept now (after pending maintenance).
    pub fn len(&self) -> u64 {
        self.parsed.run_pending_tasks();
        self.parsed.entry_count()
    }

    /// Whether no document is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self::new(DEFAULT_PARSED_DOCUMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_shared() {
        let documents = ParsedDocuments::new(10);
        let query = "query ($name: String) { hello(name: $name) }";
        let first = documents.parse(query).expect("parses");
        let second = documents.parse(query).expect("parses");
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second parse answers from what the first kept"
        );
        assert_eq!(documents.len(), 1);
        assert_eq!(first.operations.iter().count(), 1);
    }

    #[test]
    fn a_document_that_does_not_parse_is_refused_every_time_and_not_kept() {
        let documents = ParsedDocuments::new(10);
        for _ in 0..2 {
            assert!(documents.parse("{ hello(").is_err());
            assert!(documents.is_empty());
        }
    }

    #[test]
    fn long_documents_are_parsed_but_not_kept() {
        let documents = ParsedDocuments::new(10);
        let query = format!("{{ hello {} }}", "hello ".repeat(MAX_KEPT_LEN / 6));
        assert!(documents.parse(&query).is_ok());
        assert!(documents.is_empty());
    }
}
