//! One more try for an idempotent request to another service, within a budget: the router's
//! query and `_entities` fetches, and the subgraphs' calls to each other (token introspection,
//! orders' catalog lookups).
//!
//! A request that failed at the connection level (refused, reset, closed before an answer; or a
//! 502/503: a load balancer saying the same of the replica behind it, or a service saying it
//! cannot answer now) is sent once more, so that a replica dying or restarting behind a load
//! balancer costs the caller nothing. The retry waits a moment first ([`RETRY_PAUSE`], jittered),
//! goes over a new connection, and gets only what is left of the request's time, so
//! the caller's timeout still bounds the whole. A budget bounds
//! the retries: each first attempt earns a fifth of a retry, each retry spends one, and at most
//! [`MAX_BANKED`] are saved up. When every replica is down, retries stop at about a fifth of the
//! traffic instead of doubling it. Timeouts are never retried (the other side may still be working
//! on it), nor is anything that may change data (a mutation may have been applied): callers send
//! only idempotent requests through [`send_idempotent`].

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

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

/// What became of a request's failed first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// Sent once more; the answer is the second attempt's.
    Yes,
    /// Not sent again: the budget was spent.
    BudgetExhausted,
}

/// A request's answer, and, when its first attempt failed at the connection level, why and what
/// became of it.
pub struct Sent {
    pub answer: Result<reqwest::Response, reqwest::Error>,
    pub retry: Option<(Retried, String)>,
}

/// How long a retry waits at least (and at most twice that, at random).
pub const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Less time than this left of a request's `timeout` is not worth a retry.
const MIN_RETRY_TIME: Duration = Duration::from_millis(100);

/// Sends `request`, and once more if it failed at the connection level, `budget` allows and
/// more than a moment is left of `timeout` (the whole request's, which the retry keeps to). A
/// request whose body cannot be copied (a stream) is sent once.
///
/// Only for idempotent requests (reads): a failure "at the connection level" includes a connection
/// closed after the request was sent, when the other side may have acted on it.
pub async fn send_idempotent(
    request: reqwest::RequestBuilder,
    budget: &RetryBudget,
    timeout: Duration,
) -> Sent {
    let started = Instant::now();
    let (client, request) = request.build_split();
    let request = match request {
        Ok(request) => request,
        Err(error) => {
            return Sent {
                answer: Err(error),
                retry: None,
            }
        }
    };
    let again = request.try_clone();
    let answer = client.execute(request).await;
    budget.earn();
    let (Some(mut again), Some(reason)) = (again, connection_failure(&answer)) else {
        return Sent {
            answer,
            retry: None,
        };
    };
    let left = timeout.saturating_sub(started.elapsed());
    if left < MIN_RETRY_TIME {
        return Sent {
            answer,
            retry: None,
        };
    }
    if !budget.spend() {
        return Sent {
            answer,
            retry: Some((Retried::BudgetExhausted, reason)),
        };
    }
    // A moment's pause first, so that a replica dying under the first attempt is dead (its
    // connections refused, which a load balancer sends on to another replica) rather than dying
    // under the retry too (seen in the multi-host test: both attempts met the same kill).
    let pause = RETRY_PAUSE + RETRY_PAUSE.mul_f64(rand::random::<f64>());
    if left <= pause + MIN_RETRY_TIME {
        return Sent {
            answer,
            retry: None,
        };
    }
    tokio::time::sleep(pause).await;
    *again.timeout_mut() = Some(left - pause);
    Sent {
        answer: fresh_connections().execute(again).await,
        retry: Some((Retried::Yes, reason)),
    }
}

/// A client that keeps no connection for another request: what a retry is sent with. A load
/// balancer closes the kept-alive connections it had tied to a replica that died, all at once; a
/// retry on another kept-alive connection could meet the same fate (seen in the multi-host test),
/// one on a new connection cannot.
fn fresh_connections() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default()
    })
}

/// Why `answer` failed at the connection level, so that sending it again may succeed: no answer
/// for a reason other than a timeout (refused, reset, closed before the answer), or a 502 or 503
/// (a load balancer's: no replica answered, or none is up; or the service's own "not now").
fn connection_failure(answer: &Result<reqwest::Response, reqwest::Error>) -> Option<String> {
    match answer {
        Err(error) if error.is_timeout() => None,
        Err(error) if error.is_connect() => Some("connection refused or unreachable".to_owned()),
        Err(error) if error.is_request() => Some(format!("request failed: {}", causes(error))),
        Err(_) => None,
        Ok(response) => matches!(response.status().as_u16(), 502 | 503)
            .then(|| format!("HTTP {}", response.status())),
    }
}

/// `error` and its sources, `: `-separated (reqwest's own message alone says only "error sending
/// request"; its sources say how: a reset, a connection closed before the answer).
pub fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
