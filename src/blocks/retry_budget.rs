//! A retry budget per block: retries may add at most a fraction of the requests recently
//! sent, so a failing block gets a few more requests, not two or three times its load.
//!
//! A token bucket: every request deposits `percent / 100` of a token, every retry takes a
//! whole one. The bucket holds at most [`RESERVE`] tokens and starts full, so a quiet
//! gateway may still retry a handful of isolated failures.

use std::sync::Mutex;

/// Tokens the bucket starts with and never exceeds.
const RESERVE: f64 = 10.0;

/// One block's retry budget.
#[derive(Debug)]
pub struct RetryBudget {
    deposit: f64,
    tokens: Mutex<f64>,
}

impl RetryBudget {
    /// A budget letting retries add `percent` % of the requests sent.
    pub fn new(percent: u32) -> Self {
        Self {
            deposit: f64::from(percent) / 100.0,
            tokens: Mutex::new(RESERVE),
        }
    }

    fn with_tokens<T>(&self, change: impl FnOnce(&mut f64) -> T) -> T {
        let mut tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut tokens)
    }

    /// Records one request sent (not a retry).
    pub fn record_request(&self) {
        let deposit = self.deposit;
        self.with_tokens(|tokens| *tokens = (*tokens + deposit).min(RESERVE));
    }

    /// Takes the budget for one retry; `false` when it is spent.
    pub fn try_retry(&self) -> bool {
        self.with_tokens(|tokens| {
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_the_reserve_then_by_the_fraction_of_requests() {
        let budget = RetryBudget::new(20);
        let mut retries = 0;
        for _ in 0..100 {
            budget.record_request();
            while budget.try_retry() {
                retries += 1;
            }
        }
        // 10 from the reserve, then one per five requests (the first five fill the reserve).
        assert!((28..=30).contains(&retries), "{retries}");
    }

    #[test]
    fn zero_percent_allows_only_the_reserve() {
        let budget = RetryBudget::new(0);
        let allowed = (0..50)
            .filter(|_| {
                budget.record_request();
                budget.try_retry()
            })
            .count();
        assert_eq!(allowed, RESERVE as usize);
    }
}
