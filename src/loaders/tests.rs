//! Loader behaviour that HTTP tests cannot reach: a panic while loading one key.

use std::{future::Future, sync::Arc};

use super::{BlockLoader, RecordKey, RequestScope, load_one};
use crate::{
    blocks::{BlockClients, BlockError},
    cache::{CacheSettings, Resource, ResponseCache},
};

/// A key whose fetch panics for the id "boom".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Explosive(&'static str);

impl RecordKey for Explosive {
    type Record = String;
    const RESOURCE: Resource = Resource::CrmPerson;

    fn cache_id(&self) -> String {
        self.0.to_owned()
    }

    fn fetch(&self, _loader: &BlockLoader) -> impl Future<Output = Result<Option<String>, BlockError>> + Send {
        let id = self.0;
        async move {
            if id == "boom" {
                panic!("a bug while loading");
            }
            Ok(Some(format!("record {id}")))
        }
    }
}

#[tokio::test]
async fn a_panicking_key_fails_alone_and_the_batch_survives() {
    let loader = BlockLoader::new(
        Arc::new(BlockClients::default()),
        ResponseCache::new(CacheSettings::default()),
        RequestScope::default(),
    );
    let loaders = loader.into_data_loader();
    // Both keys land in one batch.
    let (boom, fine) = tokio::join!(
        load_one(&loaders, Explosive("boom")),
        load_one(&loaders, Explosive("fine"))
    );
    assert!(matches!(boom, Err(BlockError::Internal { .. })), "{boom:?}");
    assert_eq!(
        fine.ok().flatten().map(|record| record.data.clone()),
        Some("record fine".to_owned())
    );
    // The loader keeps serving afterwards.
    let again = load_one(&loaders, Explosive("later")).await;
    assert!(again.is_ok());
}
