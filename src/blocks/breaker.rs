//! A circuit breaker per block, shared by every request to it. After `threshold`
//! consecutive failures that mean "unavailable" (connection errors, timeouts, 5xx) it opens:
//! calls are refused at once, without a request, for a cool-down. Then one probe is let
//! through (half-open); its success closes the circuit, its failure opens it again.
//!
//! It also keeps the pause a block asked for with `429` and `Retry-After`: until then calls
//! are refused as rate limited instead of flooding the block further.

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use tokio::time::Instant;

/// The longest `Retry-After` pause honoured; a block asking for more is retried sooner.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the circuit; 0 turns the breaker off.
    pub threshold: u32,
    /// How long the circuit stays open before a probe is let through.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            cool_down: Duration::from_secs(5),
        }
    }
}

/// Why a call was refused without a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The circuit is open (or its one probe is in flight); retry in about this long.
    Open {
        /// Time left until a probe may go.
        retry_in: Duration,
    },
    /// The block asked for a pause with `Retry-After`; seconds left of it.
    Paused {
        /// Whole seconds left, at least 1.
        retry_after: u64,
    },
}

/// How a call that was let through ended, as far as the block's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The block answered (any status but 5xx and 429).
    Answered,
    /// Connection error, timeout or 5xx.
    Unavailable,
    /// 429, with the pause the block asked for.
    RateLimited {
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
}

/// What the breaker knows of its block's health, from the outcome of recent calls (no
/// request is sent to learn it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The last call was answered (or none was made yet).
    Up,
    /// Recent calls failed but the circuit is closed, a probe is due or in flight, or the
    /// block asked for a pause (`429`).
    Degraded,
    /// The circuit is open: calls are refused for about this long.
    Open {
        /// Time left of the cool-down.
        retry_in: Duration,
    },
}

impl Health {
    /// The state as `/readyz` names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Open { .. } => "breaker_open",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    consecutive_failures: u32,
    paused_until: Option<Instant>,
}

/// One block's breaker. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State {
                phase: Phase::Closed,
                consecutive_failures: 0,
                paused_until: None,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another call panicked mid-update; the state is
        // still a valid value, so keep using it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets a call through, or says why not. The returned pass must be settled with
    /// [`Pass::settle`]; a pass dropped unsettled (the call was cancelled, or ended in a way
    /// that says nothing about the block) frees its probe slot and changes nothing else.
    pub fn admit(&self) -> Result<Pass<'_>, Refusal> {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(until) = state.paused_until {
            if now < until {
                let left = until - now;
                return Err(Refusal::Paused {
                    retry_after: left.as_secs_f64().ceil().max(1.0) as u64,
                });
            }
            state.paused_until = None;
        }
        let probe = match state.phase {
            Phase::Closed => false,
            Phase::Open { until } if now < until => return Err(Refusal::Open { retry_in: until - now }),
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                state.phase = Phase::HalfOpen { probing: true };
                true
            }
            Phase::HalfOpen { probing: true } => {
                return Err(Refusal::Open {
                    retry_in: Duration::ZERO,
                });
            }
        };
        Ok(Pass {
            breaker: self,
            probe,
            settled: false,
        })
    }

    /// The block's health as the breaker sees it now.
    pub fn health(&self) -> Health {
        let now = Instant::now();
        let state = self.state();
        let paused = state.paused_until.is_some_and(|until| now < until);
        match state.phase {
            Phase::Open { until } if now < until => Health::Open { retry_in: until - now },
            Phase::Closed if state.consecutive_failures == 0 && !paused => Health::Up,
            _ => Health::Degraded,
        }
    }

    /// Records an outcome; `true` when it opened the circuit.
    fn settle(&self, probe: bool, outcome: Outcome) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        match outcome {
            Outcome::Answered => {
                state.consecutive_failures = 0;
                state.phase = Phase::Closed;
            }
            Outcome::RateLimited { retry_after } => {
                // The block is up: a 429 is not a failure, but its pause is kept.
                state.consecutive_failures = 0;
                state.phase = Phase::Closed;
                if let Some(pause) = retry_after.filter(|pause| !pause.is_zero()) {
                    state.paused_until = Some(now + pause.min(MAX_PAUSE));
                }
            }
            Outcome::Unavailable => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                let tripped = self.policy.threshold > 0 && state.consecutive_failures >= self.policy.threshold;
                let was_closed = state.phase == Phase::Closed;
                if probe || tripped {
                    state.phase = Phase::Open {
                        until: now + self.policy.cool_down,
                    };
                    return was_closed || probe;
                }
            }
        }
        false
    }

    fn release_probe(&self) {
        let mut state = self.state();
        if state.phase == (Phase::HalfOpen { probing: true }) {
            state.phase = Phase::HalfOpen { probing: false };
        }
    }
}

/// Permission for one call; see [`CircuitBreaker::admit`].
#[derive(Debug)]
pub struct Pass<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl Pass<'_> {
    /// Reports how the call ended; `true` when this outcome opened the circuit.
    pub fn settle(mut self, outcome: Outcome) -> bool {
        self.settled = true;
        self.breaker.settle(self.probe, outcome)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breaker.release_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cool_down_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(BreakerPolicy {
            threshold,
            cool_down: Duration::from_millis(cool_down_ms),
        })
    }

    fn fail(breaker: &CircuitBreaker) -> bool {
        breaker.admit().expect("admitted").settle(Outcome::Unavailable)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let breaker = breaker(3, 10_000);
        fail(&breaker);
        fail(&breaker);
        breaker.admit().expect("admitted").settle(Outcome::Answered);
        fail(&breaker);
        fail(&breaker);
        assert!(breaker.admit().is_ok(), "a success in between resets the count");
        assert!(fail(&breaker), "the third failure in a row opens it");
        assert!(matches!(breaker.admit(), Err(Refusal::Open { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_after_the_cool_down_closes_or_reopens() {
        let breaker = breaker(1, 100);
        fail(&breaker);
        assert!(breaker.admit().is_err());
        tokio::time::advance(Duration::from_millis(101)).await;
        let probe = breaker.admit().expect("probe");
        assert!(breaker.admit().is_err(), "only one probe at a time");
        assert!(probe.settle(Outcome::Unavailable));
        assert!(breaker.admit().is_err(), "a failed probe reopens");
        tokio::time::advance(Duration::from_millis(101)).await;
        breaker.admit().expect("probe").settle(Outcome::Answered);
        assert!(breaker.admit().is_ok() && breaker.admit().is_ok(), "closed again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_frees_its_slot() {
        let breaker = breaker(1, 100);
        fail(&breaker);
        tokio::time::advance(Duration::from_millis(101)).await;
        drop(breaker.admit().expect("probe"));
        assert!(breaker.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_calls() {
        let breaker = breaker(5, 100);
        breaker.admit().expect("admitted").settle(Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        });
        assert_eq!(breaker.admit().err(), Some(Refusal::Paused { retry_after: 2 }));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(breaker.admit().is_ok());
    }

    #[test]
    fn health_follows_the_recent_outcomes() {
        let breaker = breaker(2, 10_000);
        assert_eq!(breaker.health(), Health::Up);
        fail(&breaker);
        assert_eq!(breaker.health(), Health::Degraded);
        fail(&breaker);
        assert!(matches!(breaker.health(), Health::Open { .. }));
        assert_eq!(breaker.health().label(), "breaker_open");
    }

    #[test]
    fn threshold_zero_never_opens() {
        let breaker = breaker(0, 10_000);
        for _ in 0..20 {
            assert!(!fail(&breaker));
        }
        assert!(breaker.admit().is_ok());
    }
}
