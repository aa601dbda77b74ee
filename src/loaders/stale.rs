//! The stale answers of one operation: the records a block outage was answered with from
//! a cached copy past its TTL (stale-if-error), and the field paths the schema showed them
//! at. The gateway reports them in `extensions.stale`.
//!
//! A stale record is known by its allocation: the same `Arc` reaches every field that reads
//! it (through the request's DataLoader memo), so the schema needs no key to tell, and a
//! load that found nothing stale costs one atomic read.

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::Value;

use crate::{blocks::BlockName, cache::Resource, error_code::ErrorCode};

/// One record answered from a stale copy.
#[derive(Debug, Clone)]
pub struct StaleAnswer {
    /// The block that failed.
    pub block: BlockName,
    /// The cached resource.
    pub resource: Resource,
    /// How long ago the block answered with the copy.
    pub age: Duration,
    /// How long ago the copy's TTL ended.
    pub expired_for: Duration,
    /// The code of the block's failure (`UPSTREAM_UNAVAILABLE`, `UPSTREAM_TIMEOUT`, ...).
    pub cause: ErrorCode,
    /// The block's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The GraphQL paths of the fields that showed the record (as in `errors[].path`).
    pub paths: Vec<Value>,
    /// The record's allocation.
    record: usize,
}

/// The stale answers of one operation. Shared by its loader and the gateway.
#[derive(Debug, Default)]
pub struct StaleAnswers {
    any: AtomicBool,
    answers: Mutex<Vec<StaleAnswer>>,
}

/// The address `record` is known by.
fn address<T>(record: &Arc<T>) -> usize {
    Arc::as_ptr(record).cast::<()>() as usize
}

impl StaleAnswers {
    fn answers(&self) -> MutexGuard<'_, Vec<StaleAnswer>> {
        // A poisoned lock only means a recorder panicked mid-push; the list stays usable.
        self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes that `record` is a stale copy of `resource` standing in for its failed block.
    pub(super) fn record<T>(&self, record: &Arc<T>, resource: Resource, staleness: &crate::cache::Staleness) {
        let record = address(record);
        let mut answers = self.answers();
        if answers.iter().any(|answer| answer.record == record) {
            return;
        }
        answers.push(StaleAnswer {
            block: resource.block(),
            resource,
            age: staleness.age,
            expired_for: staleness.expired_for,
            cause: staleness.cause.code(),
            status: staleness.cause.status(),
            paths: Vec::new(),
            record,
        });
        self.any.store(true, Ordering::Release);
    }

    /// Whether any record of the operation was stale (cheap: checked after every load).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Whether `record` is one of the stale copies.
    pub fn is_stale<T>(&self, record: &Arc<T>) -> bool {
        self.any() && {
            let record = address(record);
            self.answers().iter().any(|answer| answer.record == record)
        }
    }

    /// Notes that the field at `path` showed `record`, when it is a stale copy (`path` is
    /// only built then).
    pub fn shown_at<T>(&self, record: &Arc<T>, path: impl FnOnce() -> Value) {
        if !self.any() {
            return;
        }
        let record = address(record);
        let mut answers = self.answers();
        if let Some(answer) = answers.iter_mut().find(|answer| answer.record == record) {
            let path = path();
            if !answer.paths.contains(&path) {
                answer.paths.push(path);
            }
        }
    }

    /// The stale answers noted so far, oldest first.
    pub fn take(&self) -> Vec<StaleAnswer> {
        std::mem::take(&mut *self.answers())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{blocks::BlockError, cache::Staleness};

    #[test]
    fn a_stale_record_collects_the_paths_it_was_shown_at() {
        let answers = StaleAnswers::default();
        let (stale, fresh) = (Arc::new(1), Arc::new(2));
        answers.shown_at(&stale, || panic!("no path is built while nothing is stale"));
        let staleness = Staleness {
            age: Duration::from_secs(40),
            expired_for: Duration::from_secs(10),
            cause: BlockError::CircuitOpen {
                block: BlockName::Crm,
                retry_in: Duration::from_secs(1),
            },
        };
        answers.record(&stale, Resource::CrmPerson, &staleness);
        answers.record(&stale, Resource::CrmPerson, &staleness);
        answers.shown_at(&stale, || serde_json::json!(["person"]));
        answers.shown_at(&stale, || serde_json::json!(["person"]));
        answers.shown_at(&stale, || serde_json::json!(["again", 0, "person"]));
        answers.shown_at(&fresh, || panic!("only stale records are labelled"));
        assert!(answers.is_stale(&stale) && !answers.is_stale(&fresh));
        let taken = answers.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].block, BlockName::Crm);
        assert_eq!(taken[0].cause, ErrorCode::UpstreamUnavailable);
        assert_eq!(taken[0].paths.len(), 2);
    }
}
