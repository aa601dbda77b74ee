//! The GraphQL schema: types and resolvers only. Resolvers reach the blocks through the
//! request's loaders (reads) or the block clients (writes); no HTTP details live here.

pub mod block_types;
pub mod crm;
pub mod errors;
pub mod identity;
pub mod identity_links;
pub mod mutation;
pub mod pagination;
pub mod query;

use async_graphql::{Context, EmptySubscription, Schema, SchemaBuilder};

use crate::loaders::Loaders;
use errors::{IntoGraphql, SchemaError};

/// The gateway's schema type.
pub type GatewaySchema = Schema<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

/// The schema under construction, before [`build_with`] finishes it.
pub type GatewaySchemaBuilder = SchemaBuilder<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

/// Builds the schema. Per-request data (the loaders) is attached to each request.
pub fn build() -> GatewaySchema {
    build_with(|builder| builder)
}

/// Builds the schema with extensions added by `extend` (the gateway's document guard, a
/// validation-only check); the types are always the same.
pub fn build_with(extend: impl FnOnce(GatewaySchemaBuilder) -> GatewaySchemaBuilder) -> GatewaySchema {
    extend(Schema::build(
        query::QueryRoot,
        mutation::MutationRoot,
        EmptySubscription,
    ))
    .finish()
}

/// Turns introspection and field suggestions off unless `introspection` (the admission
/// refuses `__schema`/`__type` with an error; this hides the rest).
pub fn with_introspection(builder: GatewaySchemaBuilder, introspection: bool) -> GatewaySchemaBuilder {
    if introspection {
        builder
    } else {
        builder.disable_introspection().disable_suggestions()
    }
}

/// The schema in SDL, as `blocks-gateway schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    build().sdl()
}

/// The request's loaders; every request built by the server carries them.
pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>().map_err(|_| SchemaError::Internal).gql()
}
