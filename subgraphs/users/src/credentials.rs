//! Passwords and tokens: the secrets of this service and the rules for them.
//!
//! - Passwords are hashed with argon2id at the library's defaults (19 MiB, 2 passes, 1 lane: the
//!   OWASP-recommended minimum), on the blocking pool so hashing never stalls the async workers,
//!   and at most one job per CPU but one at a time ([`Argon2Pool`]).
//! - Tokens are 32 random bytes from the OS, base64url-encoded behind a `tpr_` prefix. The database
//!   stores HMAC-SHA256(SECRET_KEY, token) only, so a leaked table cannot be replayed as tokens.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// The prefix of every token, so leaked tokens are easy to recognise in logs and scanners.
const TOKEN_PREFIX: &str = "tpr_";

/// How long a password check may wait for its turn before the caller is told to retry.
const ARGON2_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Runs argon2 work on the blocking pool, at most `permits` at a time: a flood of sign-ins then
/// keeps that many cores busy, not all of them, and other requests still get CPU. A job that cannot
/// start within [`ARGON2_QUEUE_WAIT`] is refused with `RATE_LIMITED` instead of queueing forever.
pub struct Argon2Pool {
    permits: Semaphore,
    wait: Duration,
}

impl Argon2Pool {
    /// A pool running at most `permits` jobs at once.
    pub fn new(permits: usize, wait: Duration) -> Self {
        Argon2Pool {
            permits: Semaphore::new(permits.max(1)),
            wait,
        }
    }

    /// The process's pool: one job per CPU but one (at least one), so a core is always left for
    /// everything else.
    pub fn global() -> &'static Argon2Pool {
        static POOL: OnceLock<Argon2Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            Argon2Pool::new(cpus.saturating_sub(1), ARGON2_QUEUE_WAIT)
        })
    }

    /// Runs `job` when a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = tokio::time::timeout(self.wait, self.permits.acquire())
            .await
            .map_err(|_| Error::RateLimited {
                retry_after_seconds: 1,
            })?
            .expect("the pool's semaphore is never closed");
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| Error::Internal(format!("password hashing task: {e}")))?
    }
}

/// Hashes a password (argon2id, random salt) off the async workers.
pub async fn hash_password(password: String) -> Result<String> {
    Argon2Pool::global()
        .run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
        })
        .await
}

/// Checks `password` against a stored hash; `None` checks against a dummy hash so that an unknown
/// username costs as much time as a wrong password, and always fails.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool> {
    Argon2Pool::global()
        .run(move || {
            let known = stored.is_some();
            let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
            let hash = PasswordHash::new(&stored)
                .map_err(|e| Error::Internal(format!("stored password hash unreadable: {e}")))?;
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok();
            Ok(known && matches)
        })
        .await
}

/// A hash of a random password, made once, to verify against when the username is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 32];
        OsRng.fill_bytes(&mut random);
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(&random, &salt)
            .expect("hashing 32 bytes with default parameters cannot fail")
            .to_string()
    })
}

/// Issues and hashes tokens with the service's secret key. Cheap to clone.
#[derive(Clone)]
pub struct TokenKeys {
    secret: Arc<[u8]>,
}

impl TokenKeys {
    /// Keys from `SECRET_KEY`.
    pub fn new(secret: &str) -> Self {
        TokenKeys {
            secret: secret.as_bytes().into(),
        }
    }

    /// A new random token and the hash to store for it.
    pub fn issue(&self) -> (String, String) {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = self.hash(&token);
        (token, hash)
    }

    /// The stored form of a token: hex HMAC-SHA256 under the secret key.
    pub fn hash(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(token.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_256_bit_and_hashed_with_the_key() {
        let keys = TokenKeys::new("k".repeat(32).as_str());
        let (a, hash_a) = keys.issue();
        let (b, _) = keys.issue();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&a[TOKEN_PREFIX.len()..])
                .expect("base64url")
                .len(),
            32
        );
        assert_eq!(keys.hash(&a), hash_a);
        assert_ne!(TokenKeys::new("j".repeat(32).as_str()).hash(&a), hash_a);
        assert!(!hash_a.contains(&a));
    }

    /// A flood of argon2 jobs runs at most `permits` at once, and a job that cannot start in time
    /// is refused as RATE_LIMITED rather than queued without bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn argon2_work_is_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = Arc::new(Argon2Pool::new(2, Duration::from_secs(30)));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..12)
            .map(|_| {
                let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            job.await.expect("no panic").expect("runs");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);

        let busy = Arc::new(Argon2Pool::new(1, Duration::from_millis(50)));
        let (started, release) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let holder = {
            let (busy, started, release) = (busy.clone(), started.clone(), release.clone());
            tokio::spawn(async move {
                busy.run(move || {
                    started.notify_one();
                    release.wait();
                    Ok(())
                })
                .await
            })
        };
        started.notified().await;
        let refused = busy.run(|| Ok(())).await;
        assert!(
            matches!(refused, Err(Error::RateLimited { .. })),
            "{refused:?}"
        );
        release.wait();
        holder.await.expect("no panic").expect("runs");
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("Secret123".into()).await.expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("Secret123".into(), Some(hash.clone()))
            .await
            .expect("runs"));
        assert!(!verify_password("Secret124".into(), Some(hash))
            .await
            .expect("runs"));
        assert!(!verify_password("Secret123".into(), None)
            .await
            .expect("runs"));
    }
}
