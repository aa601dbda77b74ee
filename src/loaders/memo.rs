//! One operation's answers fetched past the shared cache (`Cache-Control: no-cache`, or a
//! Redis tier whose invalidations may be missed): `no-cache` skips the shared tiers, not
//! the operation's own deduplication, so every distinct key still costs one upstream
//! request however many fields ask for it, and concurrent asks share the one in flight.

use std::{
    any::Any,
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::OnceCell;

use crate::{blocks::BlockError, cache::CacheKey};

/// A fetched answer of any record type (each [`CacheKey`] names one type).
type Shared = Result<Option<Arc<dyn Any + Send + Sync>>, BlockError>;

/// The answers of one operation, by cache key.
#[derive(Default)]
pub(super) struct OperationMemo {
    answers: Mutex<HashMap<CacheKey, Arc<OnceCell<Shared>>>>,
}

impl OperationMemo {
    fn cell(&self, key: &CacheKey) -> Arc<OnceCell<Shared>> {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.entry(key.clone()).or_default().clone()
    }

    /// The answer for `key`: fetched by the first caller, shared with every later one.
    pub(super) async fn get_or_fetch<T: Send + Sync + 'static>(
        &self,
        key: CacheKey,
        fetch: impl Future<Output = Result<Option<Arc<T>>, BlockError>>,
    ) -> Result<Option<Arc<T>>, BlockError> {
        let cell = self.cell(&key);
        let shared = cell
            .get_or_init(|| async {
                fetch
                    .await
                    .map(|value| value.map(|value| value as Arc<dyn Any + Send + Sync>))
            })
            .await;
        typed(&key, shared.clone())
    }

    /// The answer for `key` when this operation already has it.
    pub(super) fn peek<T: Send + Sync + 'static>(&self, key: &CacheKey) -> Option<Arc<T>> {
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        match answers.get(key)?.get()? {
            Ok(Some(value)) => value.clone().downcast::<T>().ok(),
            _ => None,
        }
    }
}

fn typed<T: Send + Sync + 'static>(key: &CacheKey, shared: Shared) -> Result<Option<Arc<T>>, BlockError> {
    match shared? {
        None => Ok(None),
        Some(value) => value.downcast::<T>().map(Some).map_err(|_| {
            tracing::error!(resource = ?key.resource, "one cache key asked for two record types");
            BlockError::Internal {
                block: key.resource.block(),
            }
        }),
    }
}
