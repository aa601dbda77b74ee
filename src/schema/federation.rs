//! The schema as an Apollo Federation v2 subgraph: `Identity`, `Organization` and `Person`
//! are entities keyed by `id`. A router asks `_entities` for the fields this subgraph owns
//! of entities another subgraph returned (or extends), and may read the subgraph SDL from
//! `_service { sdl }` (`blocks-gateway schema --federation` prints the same text).
//!
//! async-graphql's own entity resolvers (`#[graphql(entity)]`) are not used: its `_entities`
//! fails the whole list when one representation fails or names an unknown type, and the
//! errors of an entity's fields lose the entity's index in their `path`, which routers use
//! to tell which entity failed. So this root defines both fields itself, and the subgraph
//! SDL is async-graphql's federation export with the entities' `@key` directives added.

use std::{borrow::Cow, collections::HashMap, sync::Arc, sync::LazyLock};

use async_graphql::{
    Any, Context, ContextSelectionSet, Object, ObjectType, OutputType, Positioned, Result, SDLExportOptions,
    ServerResult, SimpleObject, Union, Value,
    parser::types::Field,
    registry::{MetaType, Registry},
    resolver_utils::{ContainerType, resolve_container},
};
use futures::future::join_all;

use super::{
    crm::{Organization, Person, parse_uuid},
    errors::{IntoGraphql, SchemaError},
    identity::Identity,
    load_one, loaders,
    query::{QueryRoot, identity_id},
};
use crate::{
    blocks::crm::{CrmOrganization, CrmPerson},
    cache::Record,
    loaders::{OrganizationKey, PersonKey},
};

/// The entity types and their key fields, as the subgraph SDL declares them.
pub const ENTITY_KEYS: [(&str, &str); 3] = [("Identity", "id"), ("Organization", "id"), ("Person", "id")];

/// The subgraph SDL, computed once (it is the same for every gateway).
static SUBGRAPH_SDL: LazyLock<String> = LazyLock::new(|| {
    let exported = super::build().sdl_with_options(SDLExportOptions::new().federation());
    with_entity_keys(&exported)
});

/// The subgraph SDL: the client-facing schema with `@key` on each entity and the
/// `@link` to Federation v2 (`subgraph.graphql` holds it).
pub fn subgraph_sdl() -> &'static str {
    &SUBGRAPH_SDL
}

/// `sdl` with ` @key(fields: "...")` on the definition line of each entity of [`ENTITY_KEYS`].
fn with_entity_keys(sdl: &str) -> String {
    let mut keyed = String::with_capacity(sdl.len() + 128);
    for line in sdl.split_inclusive('\n') {
        let key = ENTITY_KEYS.iter().find(|(name, _)| {
            line.strip_prefix("type ")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        });
        match (key, line.trim_end().strip_suffix('{')) {
            (Some((_, fields)), Some(head)) => {
                keyed.push_str(&format!("{} @key(fields: \"{fields}\") {{\n", head.trim_end()));
            }
            _ => keyed.push_str(line),
        }
    }
    keyed
}

/// The query root of the subgraph: the client-facing `Query` with the federation fields
/// added. Written out because async-graphql's `MergedObject` cannot take a member with the
/// merged type's own name (`Query`), and the client-facing root must keep that name.
pub struct SubgraphQueryRoot;

impl ContainerType for SubgraphQueryRoot {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        match FederationRoot.resolve_field(ctx).await? {
            Some(value) => Ok(Some(value)),
            None => QueryRoot.resolve_field(ctx).await,
        }
    }
}

impl OutputType for SubgraphQueryRoot {
    fn type_name() -> Cow<'static, str> {
        QueryRoot::type_name()
    }

    /// Registers the client-facing `Query`, then moves the federation fields into it.
    fn create_type_info(registry: &mut Registry) -> String {
        let qualified = QueryRoot::create_type_info(registry);
        let federation = registry.create_fake_output_type::<FederationRoot>();
        registry.types.remove(&*FederationRoot::type_name());
        if let (MetaType::Object { fields: added, .. }, Some(MetaType::Object { fields, .. })) =
            (federation, registry.types.get_mut(&*QueryRoot::type_name()))
        {
            fields.extend(added);
        }
        qualified
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, _field: &Positioned<Field>) -> ServerResult<Value> {
        resolve_container(ctx, self).await
    }
}

impl ObjectType for SubgraphQueryRoot {}

/// The root fields a router needs of a subgraph, added to the client-facing query root.
pub struct FederationRoot;

/// The federation fields of the subgraph's query root.
#[Object(name = "_FederationRoot")]
impl FederationRoot {
    /// The subgraph SDL (Apollo Federation v2), for routers that compose from a running
    /// subgraph.
    #[graphql(name = "_service")]
    async fn service(&self) -> FederationService {
        FederationService {
            sdl: subgraph_sdl().to_owned(),
        }
    }

    /// The entities the representations name, in their order: null where the key is
    /// unknown, an error at that index where a block failed or the representation is
    /// wrong (the other entities still answer). Each distinct key is loaded once, through
    /// the operation's loaders and the shared cache.
    #[graphql(
        name = "_entities",
        complexity = "crate::limits::list_complexity(representations.len(), child_complexity)"
    )]
    async fn entities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Entity representations: `__typename` and the key `id`.")] representations: Vec<Any>,
    ) -> Vec<Option<Result<Entity>>> {
        let keys: Vec<Result<EntityKey, SchemaError>> = representations.iter().map(EntityKey::parse).collect();
        let mut distinct: Vec<&EntityKey> = keys.iter().filter_map(|key| key.as_ref().ok()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let found = join_all(distinct.iter().map(|key| key.find(ctx))).await;
        let found: HashMap<&EntityKey, Result<Option<Found>>> = distinct.into_iter().zip(found).collect();
        keys.iter()
            .map(|key| {
                let outcome = match key {
                    Ok(key) => found.get(key).cloned().unwrap_or(Ok(None)),
                    Err(error) => Err(error.clone()).gql(),
                };
                outcome.transpose().map(|found| found.map(Found::into_entity))
            })
            .collect()
    }
}

/// The subgraph's description for composition.
#[derive(SimpleObject)]
#[graphql(name = "_Service")]
pub struct FederationService {
    /// The subgraph SDL.
    sdl: String,
}

/// An entity this subgraph resolves by key.
#[derive(Union)]
#[graphql(name = "_Entity")]
pub enum Entity {
    /// An identity, by its shared unique id.
    Identity(Identity),
    /// A CRM organization, by UUID.
    Organization(Organization),
    /// A CRM person, by UUID.
    Person(Person),
}

/// A representation's entity type and key, checked (canonical UUIDs, a valid identity id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum EntityKey {
    Identity(String),
    Organization(String),
    Person(String),
}

/// What a key was found as; cloned to every position that names the key.
#[derive(Clone)]
enum Found {
    Identity(String),
    Organization(Arc<Record<CrmOrganization>>),
    Person(Arc<Record<CrmPerson>>),
}

impl Found {
    fn into_entity(self) -> Entity {
        match self {
            Self::Identity(id) => Entity::Identity(Identity::new(id)),
            Self::Organization(record) => Entity::Organization(Organization::new(record)),
            Self::Person(record) => Entity::Person(Person::new(record)),
        }
    }
}

impl EntityKey {
    /// Reads `{ __typename, id }`; an unknown type or a malformed id is the caller's mistake.
    fn parse(representation: &Any) -> Result<Self, SchemaError> {
        let Value::Object(fields) = &representation.0 else {
            return Err(SchemaError::bad_input(
                "a representation must be an object with `__typename` and `id`",
            ));
        };
        let Some(Value::String(typename)) = fields.get("__typename") else {
            return Err(SchemaError::bad_input("a representation needs its `__typename`"));
        };
        let id = match fields.get("id") {
            Some(Value::String(id)) => id.clone(),
            Some(Value::Number(id)) => id.to_string(),
            _ => {
                return Err(SchemaError::bad_input(format!(
                    "a `{typename}` representation needs its key `id`"
                )));
            }
        };
        match typename.as_str() {
            "Identity" => identity_id(&id).map(Self::Identity),
            "Organization" => parse_uuid(&id, "id").map(Self::Organization),
            "Person" => parse_uuid(&id, "id").map(Self::Person),
            other => Err(SchemaError::bad_input(format!(
                "`{other}` is not an entity of this subgraph (its entities: {})",
                ENTITY_KEYS.map(|(name, _)| name).join(", ")
            ))),
        }
    }

    /// Loads the entity: `None` when its block (or, for an identity, every block the
    /// selection needs and the link index) does not know the key.
    async fn find(&self, ctx: &Context<'_>) -> Result<Option<Found>> {
        let loaders = loaders(ctx)?;
        Ok(match self {
            Self::Identity(id) => {
                let identity = Identity::new(id.clone());
                identity
                    .known_to_selected_blocks(ctx, loaders)
                    .await
                    .then(|| Found::Identity(id.clone()))
            }
            Self::Organization(id) => load_one(loaders, OrganizationKey(id.clone()))
                .await
                .gql()?
                .map(Found::Organization),
            Self::Person(id) => load_one(loaders, PersonKey(id.clone())).await.gql()?.map(Found::Person),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_gets_its_key_on_its_own_definition_line() {
        let sdl = "type Identity {\n  id: ID!\n}\ntype IdentityConnection {\n  x: Int\n}\n\"\"\"\ndoc\n\"\"\"\ntype Organization implements Node {\n}\ntype Person {\n}\ntype Query {\n}\n";
        let keyed = with_entity_keys(sdl);
        assert_eq!(
            keyed,
            "type Identity @key(fields: \"id\") {\n  id: ID!\n}\ntype IdentityConnection {\n  x: Int\n}\n\"\"\"\ndoc\n\"\"\"\ntype Organization implements Node @key(fields: \"id\") {\n}\ntype Person @key(fields: \"id\") {\n}\ntype Query {\n}\n"
        );
    }

    #[test]
    fn the_subgraph_sdl_keys_every_entity_and_links_federation_v2() {
        let sdl = subgraph_sdl();
        for (name, fields) in ENTITY_KEYS {
            let line = format!("type {name} @key(fields: \"{fields}\") {{");
            assert!(sdl.lines().any(|l| l == line), "{line} missing");
        }
        assert!(sdl.contains("url: \"https://specs.apollo.dev/federation/v2"), "{sdl}");
        assert!(!sdl.contains("_entities") && !sdl.contains("_service"));
    }

    #[test]
    fn representations_are_read_and_checked() {
        let parse = |value: serde_json::Value| EntityKey::parse(&Any(Value::from_json(value).expect("JSON")));
        let uuid = "0A0B0C0D-0000-4000-8000-000000000001";
        assert_eq!(
            parse(serde_json::json!({ "__typename": "Person", "id": uuid })).ok(),
            Some(EntityKey::Person(uuid.to_lowercase()))
        );
        assert_eq!(
            parse(serde_json::json!({ "__typename": "Identity", "id": "u-1" })).ok(),
            Some(EntityKey::Identity("u-1".into()))
        );
        for wrong in [
            serde_json::json!({ "__typename": "Person", "id": "not-a-uuid" }),
            serde_json::json!({ "__typename": "Asset", "id": "1" }),
            serde_json::json!({ "id": uuid }),
            serde_json::json!({ "__typename": "Organization" }),
            serde_json::json!("Person"),
        ] {
            assert!(
                matches!(parse(wrong.clone()), Err(SchemaError::BadUserInput { .. })),
                "{wrong}"
            );
        }
    }
}
