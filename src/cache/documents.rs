//! Parsed operation documents, reused across requests. Frontends send the same few
//! documents again and again, and parsing one (pest) is the largest cost of a request the
//! cache answers: keeping the parsed form makes a warm request several times cheaper.
//!
//! Installed as the innermost async-graphql extension, so every other extension's parse
//! hook (limits, the document guard) still runs on every request and sees the document;
//! only the parse itself is skipped. Code that needs the document before execution (the
//! operation's kind or name) should ask [`ParsedDocuments::parse`] rather than parse again.
//! Parse errors are not kept.

use std::sync::Arc;

use async_graphql::{
    ServerResult, Variables,
    async_trait::async_trait,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::{self, types::ExecutableDocument},
};
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

impl ExtensionFactory for ParsedDocuments {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_trait]
impl Extension for ParsedDocuments {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.parsed.get(query) {
            return Ok(ExecutableDocument::clone(&document));
        }
        let document = next.run(ctx, query, variables).await?;
        self.keep(query, &Arc::new(document.clone()));
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn hello(&self, name: Option<String>) -> String {
            format!("hello {}", name.unwrap_or_default())
        }
    }

    fn schema_keeping_documents_in(documents: &ParsedDocuments) -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(documents.clone())
            .finish()
    }

    #[tokio::test]
    async fn a_document_is_parsed_once_and_answers_alike_with_other_variables() {
        let documents = ParsedDocuments::new(10);
        let schema = schema_keeping_documents_in(&documents);
        let query = "query ($name: String) { hello(name: $name) }";
        for name in ["a", "b"] {
            let request =
                async_graphql::Request::new(query).variables(Variables::from_json(serde_json::json!({ "name": name })));
            let response = schema.execute(request).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            let data = response.data.into_json().expect("JSON");
            assert_eq!(data["hello"], format!("hello {name}"));
        }
        assert_eq!(documents.len(), 1);
        assert!(
            documents
                .parse(query)
                .is_ok_and(|document| document.operations.iter().count() == 1)
        );
        assert_eq!(documents.len(), 1, "parse answers from what execution kept");
    }

    #[tokio::test]
    async fn a_document_that_does_not_parse_is_refused_every_time_and_not_kept() {
        let documents = ParsedDocuments::new(10);
        let schema = schema_keeping_documents_in(&documents);
        for _ in 0..2 {
            let response = schema.execute("{ hello(").await;
            assert_eq!(response.errors.len(), 1);
        }
        assert!(documents.is_empty());
        assert!(documents.parse("{ hello(").is_err());
        assert!(documents.is_empty());
    }
}
