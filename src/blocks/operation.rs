//! What one GraphQL operation may spend upstream: a deadline and a number of requests.
//! Shared by the per-operation copies of the block clients, so every block call of the
//! operation (reads, writes and retries) is counted against the same budget.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::time::Instant;

/// One operation's deadline and request cap.
#[derive(Debug)]
pub struct OperationBudget {
    deadline: Option<Instant>,
    time_limit: Duration,
    max_requests: Option<usize>,
    sent: AtomicUsize,
}

impl OperationBudget {
    /// A budget ending `time_limit` from now (`None`: no deadline) and allowing
    /// `max_requests` upstream requests (`None`: no cap).
    pub fn new(time_limit: Option<Duration>, max_requests: Option<usize>) -> Self {
        Self {
            deadline: time_limit.map(|limit| Instant::now() + limit),
            time_limit: time_limit.unwrap_or_default(),
            max_requests,
            sent: AtomicUsize::new(0),
        }
    }

    /// No deadline, no cap (service tasks such as a reindex).
    pub fn unlimited() -> Self {
        Self::new(None, None)
    }

    /// When the operation's time is up.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The configured time limit (for messages).
    pub fn time_limit(&self) -> Duration {
        self.time_limit
    }

    /// Time left before the deadline; `Some(ZERO)` once it passed, `None` without one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline passed.
    pub fn expired(&self) -> bool {
        self.remaining().is_some_and(|left| left.is_zero())
    }

    /// Counts one request; `Err(cap)` when the operation already sent `cap` requests.
    pub fn take_request(&self) -> Result<(), usize> {
        let Some(cap) = self.max_requests else {
            self.sent.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        self.sent
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |sent| {
                (sent < cap).then_some(sent + 1)
            })
            .map(|_| ())
            .map_err(|_| cap)
    }

    /// Requests counted so far.
    pub fn requests_sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_exactly() {
        let budget = OperationBudget::new(None, Some(2));
        assert_eq!(budget.take_request(), Ok(()));
        assert_eq!(budget.take_request(), Ok(()));
        assert_eq!(budget.take_request(), Err(2));
        assert_eq!(budget.requests_sent(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_expires() {
        let budget = OperationBudget::new(Some(Duration::from_millis(50)), None);
        assert!(!budget.expired());
        tokio::time::advance(Duration::from_millis(51)).await;
        assert!(budget.expired());
        assert!(OperationBudget::unlimited().remaining().is_none());
    }
}
