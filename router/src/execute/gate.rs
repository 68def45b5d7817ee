//! How many operations hold subgraph answers at once ([`MergeGate`]), and one operation's place
//! there ([`Place`]).
//!
//! An operation takes a place just before it reads its first subgraph answer and keeps it until
//! its own answer is written; the others wait with that answer unread. Each operation's answers are
//! parsed and merged in memory, so the router's memory is bounded by a few operations' answers
//! however many clients are connected, and merging a few at a time keeps them in the CPU's caches.
//! A subgraph request slower than the gate's `slow` gives its operation's place back while it
//! waits (the operation takes one again to read the answer): a slow or hung subgraph must not hold
//! the places that operations on the other subgraphs need.

use std::{
    future::Future,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The router's places for operations holding subgraph answers.
pub struct MergeGate {
    places: Semaphore,
    slow: Duration,
}

impl MergeGate {
    /// `places` places (at least one); a wait for a subgraph longer than `slow` gives one back.
    pub fn new(places: usize, slow: Duration) -> Self {
        MergeGate {
            places: Semaphore::new(places.max(1)),
            slow,
        }
    }
}

/// One operation's place at a gate: none yet, held, or given back. Without a gate, nothing waits.
pub struct Place<'g> {
    gate: Option<&'g MergeGate>,
    held: Mutex<Option<SemaphorePermit<'g>>>,
    /// Held while the operation waits for a place: its parallel fetches queue for one place here,
    /// not for one each at the gate, where the second would wait for ever for the place the first
    /// one got.
    taking: tokio::sync::Mutex<()>,
}

impl<'g> Place<'g> {
    pub fn new(gate: Option<&'g MergeGate>) -> Self {
        Place {
            gate,
            held: Mutex::new(None),
            taking: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits for `request` (a subgraph's answer); if it takes longer than the gate's `slow`, the
    /// place is given back meanwhile.
    pub async fn wait_for<T>(&self, request: impl Future<Output = T>) -> T {
        let Some(gate) = self.gate.filter(|_| self.holds()) else {
            return request.await;
        };
        let mut request = std::pin::pin!(request);
        match tokio::time::timeout(gate.slow, &mut request).await {
            Ok(answer) => answer,
            Err(_) => {
                drop(self.slot().take());
                request.await
            }
        }
    }

    /// Takes a place, unless the operation holds one (or there is no gate).
    pub async fn take(&self) {
        let Some(gate) = self.gate.filter(|_| !self.holds()) else {
            return;
        };
        let _turn = self.taking.lock().await;
        // A parallel fetch of this operation may have taken one while this one waited its turn.
        if self.holds() {
            return;
        }
        let permit = gate
            .places
            .acquire()
            .await
            .expect("the router never closes its gate");
        *self.slot() = Some(permit);
    }

    /// The place held, to be given back when the operation's answer is written.
    pub fn into_held(self) -> Option<SemaphorePermit<'g>> {
        self.held
            .into_inner()
            .expect("the place lock is never poisoned")
    }

    fn holds(&self) -> bool {
        self.slot().is_some()
    }

    fn slot(&self) -> MutexGuard<'_, Option<SemaphorePermit<'g>>> {
        self.held.lock().expect("the place lock is never poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    /// Whether `future` completes within a tenth of a second.
    async fn completes<T>(future: impl Future<Output = T>) -> bool {
        tokio::time::timeout(Duration::from_millis(100), future)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_place_is_held_until_the_operation_gives_it_back() {
        let gate = MergeGate::new(1, LONG);
        let first = Place::new(Some(&gate));
        first.take().await;
        let second = Place::new(Some(&gate));
        assert!(!completes(second.take()).await, "the only place is taken");
        drop(first.into_held());
        assert!(completes(second.take()).await);
        assert!(second.into_held().is_some());
    }

    #[tokio::test]
    async fn parallel_fetches_of_one_operation_wait_for_one_place() {
        let gate = MergeGate::new(1, LONG);
        let other = Place::new(Some(&gate));
        other.take().await;
        let place = Place::new(Some(&gate));
        // Both fetches of `place` wait while `other` holds the only place, then both go on with
        // the one place `place` gets.
        {
            let both = async { tokio::join!(place.take(), place.take()) };
            let mut both = std::pin::pin!(both);
            assert!(!completes(&mut both).await);
            drop(other.into_held());
            assert!(
                completes(&mut both).await,
                "neither waits for the other's place"
            );
        }
        assert!(place.into_held().is_some());
    }

    #[tokio::test]
    async fn a_slow_wait_gives_the_place_back_and_a_quick_one_keeps_it() {
        let gate = MergeGate::new(1, Duration::from_millis(20));
        let place = Place::new(Some(&gate));
        place.take().await;
        place.wait_for(async {}).await;
        assert!(place.holds(), "a quick answer keeps the place");
        let other = Place::new(Some(&gate));
        let slow = place.wait_for(async {
            // While this waits, the place is free for another operation.
            assert!(completes(other.take()).await);
        });
        slow.await;
        assert!(!place.holds());
        assert!(other.into_held().is_some());
    }

    #[tokio::test]
    async fn without_a_gate_nothing_waits() {
        let place = Place::new(None);
        assert!(completes(place.take()).await);
        assert!(place.into_held().is_none());
    }
}
