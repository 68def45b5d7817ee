//! Failed sign-ins, throttled per username and per client address with growing delays.
//!
//! Every password check (`login`, and the re-checks of `changePassword` and `deleteAccount`) first
//! takes an attempt from the username's and the client address's records; an attempt counts as
//! failed until it succeeds, so many attempts at once cannot all slip through before the first
//! fails. [`USERNAME_FREE_FAILURES`] failures in a row for a username (or
//! [`ADDRESS_FREE_FAILURES`] from one address: several people may share one) are checked freely;
//! the last of them blocks the next attempt for 1 s, and each further failure for twice as long as
//! the one before, up to [`MAX_DELAY`]. So the sixth wrong password in a row for a username is
//! refused with `RATE_LIMITED` and `retryAfterSeconds`, before any argon2 work, unless the wait
//! has passed. A wait runs from when the failed check ended (the argon2 work can take a while):
//! [`Attempt::failed`].
//! A success clears the username's record (not the address's: signing in to one's own account must
//! not reset a guesser's count). Records are forgotten after [`FORGET_AFTER`] without attempts.
//!
//! The records live in the process: behind a load balancer each replica counts on its own, so an
//! attacker spreading guesses over N replicas gets N times the attempts (still growing delays on
//! each).

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moka::future::Cache;

/// Failures in a row a username may have before delays start.
pub const USERNAME_FREE_FAILURES: u32 = 5;
/// Failures in a row an address may have before delays start.
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// How long a record is kept without attempts.
pub const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// The most records of each kind kept (least recently used ones go first).
const MAX_RECORDS: u64 = 100_000;

/// One username's or address's recent failures.
#[derive(Debug, Default)]
struct Record {
    failures: u32,
    blocked_until: Option<Instant>,
}

impl Record {
    /// Seconds until an attempt may be made, if it may not be made at `now`.
    fn wait(&self, now: Instant) -> Option<u64> {
        let until = self.blocked_until?;
        (until > now).then(|| (until - now).as_secs_f64().ceil() as u64)
    }

    /// Counts a failure (pessimistically, when the attempt starts).
    fn fail(&mut self, free: u32, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.block(free, now);
    }

    /// Blocks attempts for the delay the failures so far earn, from `now` (none before `free`
    /// failures); a block already longer stays.
    fn block(&mut self, free: u32, now: Instant) {
        if self.failures >= free {
            let doublings = (self.failures - free).min(20);
            let delay = Duration::from_secs(1u64 << doublings).min(MAX_DELAY);
            self.blocked_until = self.blocked_until.max(Some(now + delay));
        }
    }
}

type Records<K> = Cache<K, Arc<Mutex<Record>>>;

fn records<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Records<K> {
    Cache::builder()
        .max_capacity(MAX_RECORDS)
        .time_to_idle(FORGET_AFTER)
        .build()
}

/// The sign-in records of this process.
pub struct Throttle {
    by_username: Records<String>,
    by_address: Records<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            by_username: records(),
            by_address: records(),
        }
    }
}

/// An attempt taken from the records: counted as failed unless [`Attempt::succeeded`] is called.
pub struct Attempt {
    username: Arc<Mutex<Record>>,
    address: Option<Arc<Mutex<Record>>>,
    /// The address's block before this attempt counted against it, restored on success.
    address_before: Option<Instant>,
}

impl Attempt {
    /// The credentials were right: the username's failures are forgotten, and this attempt no
    /// longer counts against the address (its earlier failures still do: signing in to one's own
    /// account must not reset a guesser's count).
    pub fn succeeded(self) {
        *self
            .username
            .lock()
            .expect("a record's lock is never poisoned") = Record::default();
        if let Some(address) = &self.address {
            let mut record = address.lock().expect("a record's lock is never poisoned");
            record.failures = record.failures.saturating_sub(1);
            record.blocked_until = self.address_before;
        }
    }

    /// The credentials were wrong, as found at `now`: the wait this failure earns runs from now
    /// (the check itself may have taken a while).
    pub fn failed(self, now: Instant) {
        let records = [
            (Some(&self.username), USERNAME_FREE_FAILURES),
            (self.address.as_ref(), ADDRESS_FREE_FAILURES),
        ];
        for (record, free) in records {
            if let Some(record) = record {
                record
                    .lock()
                    .expect("a record's lock is never poisoned")
                    .block(free, now);
            }
        }
    }
}

impl Throttle {
    /// Takes an attempt for `username_key` (the lowercased username) from `address`, or says how
    /// many seconds to wait.
    pub async fn attempt(
        &self,
        username_key: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, u64> {
        let username = self
            .by_username
            .get_with_by_ref(username_key, async { Arc::default() })
            .await;
        let address = match address {
            Some(address) => Some(
                self.by_address
                    .get_with(address, async { Arc::default() })
                    .await,
            ),
            None => None,
        };
        let mut user_record = username.lock().expect("a record's lock is never poisoned");
        let mut address_record = address
            .as_ref()
            .map(|a| a.lock().expect("a record's lock is never poisoned"));
        let wait = user_record
            .wait(now)
            .max(address_record.as_ref().and_then(|r| r.wait(now)));
        if let Some(wait) = wait {
            return Err(wait.max(1));
        }
        user_record.fail(USERNAME_FREE_FAILURES, now);
        let address_before = address_record.as_ref().and_then(|r| r.blocked_until);
        if let Some(record) = address_record.as_mut() {
            record.fail(ADDRESS_FREE_FAILURES, now);
        }
        drop(user_record);
        drop(address_record);
        Ok(Attempt {
            username: username.clone(),
            address: address.clone(),
            address_before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[tokio::test]
    async fn five_failures_are_free_then_delays_double_and_a_success_clears_them() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for _ in 0..USERNAME_FREE_FAILURES {
            throttle
                .attempt("ann", address(1), start)
                .await
                .expect("free failures");
        }
        // The fifth failure blocks the sixth attempt for 1 s; each failure after that doubles it.
        let mut now = start;
        for expected in [1, 2, 4, 8] {
            assert_eq!(
                throttle.attempt("ann", address(1), now).await.err(),
                Some(expected)
            );
            now += Duration::from_secs(expected);
            throttle
                .attempt("ann", address(1), now)
                .await
                .expect("allowed once the delay has passed");
        }
        now += Duration::from_secs(16);
        // Another username is unaffected, from the same address.
        throttle
            .attempt("bob", address(1), now)
            .await
            .expect("bob is not ann")
            .succeeded();
        // A success clears ann's record.
        throttle
            .attempt("ann", address(1), now)
            .await
            .expect("the delay has passed")
            .succeeded();
        for _ in 0..USERNAME_FREE_FAILURES {
            throttle
                .attempt("ann", address(1), now)
                .await
                .expect("free again");
        }
        assert_eq!(
            throttle.attempt("ann", address(1), now).await.err(),
            Some(1)
        );
    }

    #[tokio::test]
    async fn a_wait_runs_from_the_end_of_the_failed_check() {
        let throttle = Throttle::default();
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(60))
            .expect("the machine has been up a minute");
        for _ in 0..USERNAME_FREE_FAILURES {
            // Checks that started a minute ago and fail now: the wait starts now.
            let attempt = throttle.attempt("cy", None, long_ago).await.expect("free");
            attempt.failed(Instant::now());
        }
        assert!(throttle.attempt("cy", None, Instant::now()).await.is_err());
    }

    #[tokio::test]
    async fn one_address_guessing_many_usernames_is_slowed_too() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_FREE_FAILURES {
            throttle
                .attempt(&format!("user{i}"), address(7), now)
                .await
                .expect("each username is new");
        }
        assert_eq!(
            throttle.attempt("someone", address(7), now).await.err(),
            Some(1)
        );
        throttle
            .attempt("someone", address(8), now)
            .await
            .expect("another address is not slowed");
    }

    #[tokio::test]
    async fn sign_ins_that_succeed_do_not_count_against_the_address() {
        let throttle = Throttle::default();
        let now = Instant::now();
        // An office behind one address: many people sign in, rightly.
        for i in 0..3 * ADDRESS_FREE_FAILURES {
            throttle
                .attempt(&format!("colleague{i}"), address(9), now)
                .await
                .expect("successes are not failures")
                .succeeded();
        }
        // Its failures still add up, and a success does not wipe them.
        for i in 0..ADDRESS_FREE_FAILURES - 1 {
            throttle
                .attempt(&format!("typo{i}"), address(9), now)
                .await
                .expect("free");
        }
        throttle
            .attempt("rightly", address(9), now)
            .await
            .expect("one short of the limit")
            .succeeded();
        throttle
            .attempt("typo-last", address(9), now)
            .await
            .expect("the twentieth failure");
        assert_eq!(
            throttle.attempt("anyone", address(9), now).await.err(),
            Some(1)
        );
    }

    #[test]
    fn delays_stop_growing_at_the_maximum() {
        let mut record = Record::default();
        let now = Instant::now();
        for _ in 0..100 {
            record.fail(0, now);
        }
        assert_eq!(record.wait(now), Some(MAX_DELAY.as_secs()));
    }
}
