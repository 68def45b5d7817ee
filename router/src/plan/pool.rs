//! Where operations are prepared (parsed, validated, split at `@defer`, planned): on a few blocking
//! threads of their own, never on the async workers that serve every request, and each client (by
//! address) on at most a share of them.
//!
//! Preparing a new operation is the one step whose cost a client chooses: a few hundred
//! milliseconds for the largest operation the limits let through. Done on an async worker, four
//! such operations at once stalled every other request of the router. Here they wait for a
//! thread instead; the operating system shares the CPU between these threads and the async
//! workers, so the plans already in the cache (nearly every request) keep being served. One
//! client's operations wait for their own share, not in front of everyone else's; a wait longer
//! than [`MAX_WAIT`] is refused with `RATE_LIMITED`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::{
    client::ClientKey,
    error::{Code, GraphqlError, RequestError},
};

/// The longest an operation waits for a thread before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// The threads operations are prepared on.
#[derive(Debug)]
pub struct Preparer {
    threads: Arc<Semaphore>,
    /// How many of the threads one client may use at once.
    share: usize,
    /// Each client's places, while it has operations waiting or running.
    clients: Mutex<HashMap<ClientKey, Arc<Semaphore>>>,
}

impl Preparer {
    /// `threads` threads (at least one), each client using at most half of them (at least one).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        Preparer {
            threads: Arc::new(Semaphore::new(threads)),
            share: (threads / 2).max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Threads for a router on this machine: one per CPU it may use.
    pub fn for_this_machine() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` for `client` on a preparing thread, once the client's share and a thread are
    /// free; refused if that takes longer than [`MAX_WAIT`].
    pub async fn run<T: Send + 'static>(
        &self,
        client: &ClientKey,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RequestError> {
        let started = Instant::now();
        let share = Share::take(self, client);
        let _own = tokio::time::timeout(MAX_WAIT, share.places.acquire())
            .await
            .map_err(|_| busy())?
            .expect("never closed");
        let left = MAX_WAIT.saturating_sub(started.elapsed());
        let _thread = tokio::time::timeout(left, self.threads.acquire())
            .await
            .map_err(|_| busy())?
            .expect("never closed");
        // A request that goes away leaves its work running: the places stay taken until it ends.
        // Its spans stay in the request's trace.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|error| {
                tracing::error!(%error, "preparing an operation failed on its thread");
                RequestError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Code::InternalServerError,
                    "internal error",
                )
            })
    }

    /// Clients with operations waiting or being prepared now.
    pub fn clients(&self) -> usize {
        self.clients.lock().expect("never poisoned").len()
    }
}

/// A client's places, held by one of its operations; the last to let go removes them.
struct Share<'p> {
    preparer: &'p Preparer,
    client: ClientKey,
    places: Arc<Semaphore>,
}

impl<'p> Share<'p> {
    fn take(preparer: &'p Preparer, client: &ClientKey) -> Self {
        let mut clients = preparer.clients.lock().expect("never poisoned");
        let places = clients
            .entry(client.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(preparer.share)))
            .clone();
        Share {
            preparer,
            client: client.clone(),
            places,
        }
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut clients = self.preparer.clients.lock().expect("never poisoned");
        // Only the map and this operation hold them: no other operation of the client waits.
        if Arc::strong_count(&self.places) == 2 {
            clients.remove(&self.client);
        }
    }
}

fn busy() -> RequestError {
    RequestError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        errors: vec![GraphqlError::new(
            Code::RateLimited,
            format!(
                "the router is busy preparing new operations; this one did not start within {} s: try again",
                MAX_WAIT.as_secs()
            ),
        )
        .retry_after(1)],
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn client(last: u8) -> ClientKey {
        ClientKey::Address(std::net::IpAddr::from([192, 0, 2, last]))
    }

    // The test waits on its channels by blocking: the runtime needs threads besides this one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_client_uses_its_share_and_another_is_not_behind_it() {
        let preparer = Arc::new(Preparer::new(2));
        let (release, released) = mpsc::channel::<()>();
        let (started, starts) = mpsc::channel::<&str>();
        // A's first job holds its share (one of the two threads) until released.
        let first = {
            let (preparer, started) = (preparer.clone(), started.clone());
            tokio::spawn(async move {
                preparer
                    .run(&client(1), move || {
                        started.send("a1").expect("the test listens");
                        released.recv().expect("released");
                    })
                    .await
            })
        };
        assert_eq!(starts.recv().expect("a1 starts"), "a1");
        // A's second job waits for A's share; B's runs on the other thread meanwhile.
        let second = {
            let (preparer, started) = (preparer.clone(), started.clone());
            tokio::spawn(async move {
                preparer
                    .run(&client(1), move || started.send("a2").expect("listens"))
                    .await
            })
        };
        let b = preparer
            .run(&client(2), move || started.send("b").expect("listens"))
            .await;
        assert!(b.is_ok());
        assert_eq!(starts.recv().expect("b ran"), "b", "B was not behind A");
        release.send(()).expect("a1 waits");
        first.await.expect("joins").expect("a1 ran");
        second.await.expect("joins").expect("a2 ran");
        assert_eq!(starts.recv().expect("a2 ran"), "a2");
        assert_eq!(
            preparer.clients(),
            0,
            "nothing is kept for clients with nothing to do"
        );
    }
}
