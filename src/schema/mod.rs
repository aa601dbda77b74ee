//! The GraphQL schema: types and resolvers only. Resolvers reach the blocks through the
//! request's loaders (reads) or the block clients (writes); no HTTP details live here.
//!
//! Two variants share every type: the client-facing schema (`schema.graphql`, what
//! frontends generate code from) and the federation subgraph, which adds the root fields
//! `_service` and `_entities` a router needs (`subgraph.graphql`, see [`federation`]).

pub mod block_types;
pub mod crm;
pub mod errors;
pub mod federation;
pub mod identity;
pub mod identity_links;
pub mod mutation;
pub mod pagination;
pub mod query;
pub mod timestamp;

use std::{convert::Infallible, ops::Deref, sync::Arc};

use async_graphql::{Context, EmptySubscription, ObjectType, Schema, SchemaBuilder, dataloader::Loader};

use crate::loaders::{self, BlockLoader, Loaded, Loaders, RecordKey};
use errors::{IntoGraphql, SchemaError};

/// The gateway's schema type.
pub type GatewaySchema = Schema<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

/// The schema under construction, before [`build_with`] finishes it.
pub type GatewaySchemaBuilder = SchemaBuilder<query::QueryRoot, mutation::MutationRoot, EmptySubscription>;

/// The federation subgraph's schema type.
pub type SubgraphSchema = Schema<federation::SubgraphQueryRoot, mutation::MutationRoot, EmptySubscription>;

/// Builds the schema. Per-request data (the loaders) is attached to each request.
pub fn build() -> GatewaySchema {
    build_with(|builder| builder)
}

/// The schema builder of the client-facing schema.
pub fn builder() -> GatewaySchemaBuilder {
    Schema::build(query::QueryRoot, mutation::MutationRoot, EmptySubscription)
}

/// The schema builder of the federation subgraph.
pub fn subgraph_builder() -> SchemaBuilder<federation::SubgraphQueryRoot, mutation::MutationRoot, EmptySubscription> {
    Schema::build(federation::SubgraphQueryRoot, mutation::MutationRoot, EmptySubscription)
}

/// Builds the schema with extensions added by `extend` (the gateway's document guard, a
/// validation-only check); the types are always the same.
pub fn build_with(extend: impl FnOnce(GatewaySchemaBuilder) -> GatewaySchemaBuilder) -> GatewaySchema {
    extend(builder()).finish()
}

/// Turns introspection and field suggestions off unless `introspection` (the admission
/// refuses `__schema`/`__type` with an error; this hides the rest).
pub fn with_introspection<Q, M, S>(builder: SchemaBuilder<Q, M, S>, introspection: bool) -> SchemaBuilder<Q, M, S> {
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

/// The subgraph SDL, as `blocks-gateway schema --federation` prints it and
/// `subgraph.graphql` holds it.
pub fn subgraph_sdl() -> String {
    federation::subgraph_sdl().to_owned()
}

/// The schema a gateway serves: the client-facing one, or the federation subgraph
/// (`GATEWAY_FEDERATION`). Cheap to clone.
#[derive(Clone)]
pub enum ServedSchema {
    /// The client-facing schema.
    Client(GatewaySchema),
    /// The client-facing schema with `_service` and `_entities`.
    Subgraph(SubgraphSchema),
}

/// What a gateway adds to the schema it serves, whichever the variant (limits, the
/// introspection switch): called with the variant's builder.
pub trait SchemaExtension {
    /// `builder` with the additions.
    fn extend<Q: ObjectType + 'static>(
        &self,
        builder: SchemaBuilder<Q, mutation::MutationRoot, EmptySubscription>,
    ) -> SchemaBuilder<Q, mutation::MutationRoot, EmptySubscription>;
}

impl ServedSchema {
    /// The subgraph when `federation`, else the client-facing schema, with `extension`.
    pub fn build(federation: bool, extension: &impl SchemaExtension) -> Self {
        if federation {
            Self::Subgraph(extension.extend(subgraph_builder()).finish())
        } else {
            Self::Client(extension.extend(builder()).finish())
        }
    }

    /// Runs one request.
    pub async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        match self {
            Self::Client(schema) => schema.execute(request).await,
            Self::Subgraph(schema) => schema.execute(request).await,
        }
    }
}

/// The request's loaders as one field reads through them; every request built by the
/// server carries them.
pub(crate) fn loaders<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<FieldLoaders<'a>> {
    let loaders = ctx.data::<Loaders>().map_err(|_| SchemaError::Internal).gql()?;
    Ok(FieldLoaders { loaders, ctx })
}

/// The request's loaders and the field reading through them: a record a block outage was
/// answered with from a stale copy is labelled with the path of every field that shows it
/// (`extensions.stale`).
#[derive(Clone, Copy)]
pub(crate) struct FieldLoaders<'a> {
    loaders: &'a Loaders,
    ctx: &'a Context<'a>,
}

impl Deref for FieldLoaders<'_> {
    type Target = Loaders;

    fn deref(&self) -> &Loaders {
        self.loaders
    }
}

impl FieldLoaders<'_> {
    /// Whether `record` is a stale copy standing in for its failed block.
    pub(crate) fn is_stale<T>(&self, record: &Arc<T>) -> bool {
        self.loaders
            .loader()
            .stale_answers()
            .is_some_and(|stale| stale.is_stale(record))
    }
}

/// Loads one key through the request's DataLoader (see [`loaders::load_one`]), labelling
/// a stale answer with the field's path.
pub(crate) async fn load_one<K: RecordKey>(field: FieldLoaders<'_>, key: K) -> Loaded<K::Record>
where
    BlockLoader: Loader<K, Value = Loaded<K::Record>, Error = Infallible>,
{
    let loaded = loaders::load_one(field.loaders, key).await;
    if let (Ok(Some(record)), Some(stale)) = (&loaded, field.loaders.loader().stale_answers()) {
        stale.shown_at(record, || serde_json::to_value(field.ctx.path_node).unwrap_or_default());
    }
    loaded
}
