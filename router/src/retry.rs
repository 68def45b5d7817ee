//! The retry budget for idempotent subgraph fetches ([`crate::fetch`]).
//!
//! A query or `_entities` fetch that failed at the connection level (refused, reset, closed before
//! an answer; or a load balancer's 502/503 saying the same of the replica behind it) is sent once
//! more, so that a replica dying or restarting under a load balancer costs clients nothing. A
//! budget bounds the retries: each first attempt earns a fifth of a retry, each retry spends one,
//! and at most [`MAX_BANKED`] are saved up. When every replica is down, retries stop at about a
//! fifth of the traffic instead of doubling it. Timeouts are never retried (the subgraph may still
//! be working on it), nor is a mutation (it may have been applied).

use std::sync::atomic::{AtomicU64, Ordering};

/// Retries saved up at most (and to start with), in whole retries.
pub const MAX_BANKED: u64 = 100;

/// What one first attempt earns, and one retry costs, in thousandths of a retry.
const EARNED: u64 = 200;
const COST: u64 = 1000;

/// The shared budget (one per router).
#[derive(Debug)]
pub struct RetryBudget {
    milli: AtomicU64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            milli: AtomicU64::new(MAX_BANKED * COST),
        }
    }
}

impl RetryBudget {
    /// A first attempt was sent.
    pub fn earn(&self) {
        let _ = self
            .milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (m < MAX_BANKED * COST).then(|| (m + EARNED).min(MAX_BANKED * COST))
            });
    }

    /// Takes one retry from the budget, or says there is none.
    pub fn spend(&self) -> bool {
        self.milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                m.checked_sub(COST)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_what_first_attempts_earned() {
        let budget = RetryBudget::default();
        let spent = (0..1000).take_while(|_| budget.spend()).count();
        assert_eq!(spent as u64, MAX_BANKED, "what is banked at start");
        assert!(!budget.spend());
        for _ in 0..4 {
            budget.earn();
        }
        assert!(!budget.spend(), "four attempts earn four fifths");
        budget.earn();
        assert!(budget.spend(), "five earn one");
        assert!(!budget.spend());
        for _ in 0..10_000 {
            budget.earn();
        }
        let spent = (0..1000).take_while(|_| budget.spend()).count();
        assert_eq!(spent as u64, MAX_BANKED, "savings are capped");
    }
}
