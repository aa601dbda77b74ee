//! Validation of a document against the gateway's schema without executing it: an
//! extension ends every request right after validation, so no resolver runs and no block
//! is called.

use std::sync::{Arc, LazyLock};

use async_graphql::{
    Request, ServerError, ValidationResult,
    async_trait::async_trait,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation},
};

use crate::schema::{self, GatewaySchema};

/// The message of the error that stops a valid document before execution.
const STOPPED_AFTER_VALIDATION: &str = "valid; not executed";

struct StopAfterValidation;

impl ExtensionFactory for StopAfterValidation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(StopAfterValidation)
    }
}

#[async_trait]
impl Extension for StopAfterValidation {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await?;
        Err(vec![ServerError::new(STOPPED_AFTER_VALIDATION, None)])
    }
}

static VALIDATOR: LazyLock<GatewaySchema> = LazyLock::new(|| schema::build_with(|b| b.extension(StopAfterValidation)));

/// What is wrong with `document` against the schema (parse errors included), one message
/// per problem with its line and column; empty when the document is valid. With several
/// operations in the document, `operation_name` picks the one to check.
pub async fn validation_errors(document: &str, operation_name: Option<&str>) -> Vec<String> {
    let mut request = Request::new(document);
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    let response = VALIDATOR.execute(request).await;
    response
        .errors
        .into_iter()
        .filter(|error| error.message != STOPPED_AFTER_VALIDATION)
        .map(|error| match error.locations.first() {
            Some(at) => format!("{} (line {}, column {})", error.message, at.line, at.column),
            None => error.message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_valid_document_has_no_errors_and_is_not_executed() {
        // `persons` would need the request's loaders: executing it would fail.
        assert_eq!(
            validation_errors("{ persons { totalCount } }", None).await,
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn unknown_fields_and_syntax_errors_are_reported() {
        let errors = validation_errors("{ persons { nickname } }", None).await;
        assert!(
            errors.len() == 1 && errors[0].contains("nickname") && errors[0].contains("line 1"),
            "{errors:?}"
        );
        assert_eq!(validation_errors("{ persons {", None).await.len(), 1);
    }
}
