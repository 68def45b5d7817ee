//! How much subgraph answer text the router holds at once ([`AnswerBudget`]), and one operation's
//! share of it ([`Share`]).
//!
//! Each operation's answers are parsed and merged in memory until its own answer is written, so
//! what the router holds grows with the operations in their later fetches. The bound is on bytes,
//! never on operations: an operation is admitted when it reads its first subgraph answer, if the
//! answers held by all operations are under the budget, and from then on it never waits again (its
//! later answers are added to what it holds; an operation that could wait while holding answers
//! would let two such operations wait for each other). Operations waiting for admission hold their
//! first answer unread, nothing parsed. Waiting on a subgraph holds nothing back: a slow subgraph
//! makes operations wait longer, not fewer of them run, so the router keeps up with slow subgraphs
//! as far as memory allows, and a bound of bytes sized for the machine is what decides how many.

use std::sync::Mutex;

use tokio::sync::Notify;

/// The router's budget of subgraph answer bytes held at once.
#[derive(Debug)]
pub struct AnswerBudget {
    /// The most bytes held before new operations wait (at least one is admitted whatever its size).
    limit: usize,
    held: Mutex<usize>,
    /// Signalled whenever bytes are given back.
    freed: Notify,
}

impl AnswerBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        AnswerBudget {
            limit,
            held: Mutex::new(0),
            freed: Notify::new(),
        }
    }

    /// The bytes held now, by every operation.
    #[cfg(test)]
    fn held(&self) -> usize {
        *self.held.lock().expect("the budget lock is never poisoned")
    }
}

/// One operation's share of a budget: what it holds, given back when dropped (once its answer is
/// written). Without a budget, nothing waits.
#[derive(Debug)]
pub struct Share<'b> {
    budget: Option<&'b AnswerBudget>,
    held: Mutex<usize>,
    /// Held while the operation waits for admission: its parallel fetches wait for one admission.
    admitting: tokio::sync::Mutex<()>,
}

impl<'b> Share<'b> {
    pub fn new(budget: Option<&'b AnswerBudget>) -> Self {
        Share {
            budget,
            held: Mutex::new(0),
            admitting: tokio::sync::Mutex::new(()),
        }
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, usize> {
        self.held.lock().expect("the share lock is never poisoned")
    }

    /// Adds `bytes` of answer to what the operation holds: at once if it holds some already;
    /// otherwise once the router holds less than its budget.
    pub async fn hold(&self, bytes: usize) {
        let Some(budget) = self.budget else {
            return;
        };
        if *self.mine() == 0 {
            let _turn = self.admitting.lock().await;
            // Admitted while this fetch waited its turn: a parallel fetch of the operation was.
            if *self.mine() == 0 {
                loop {
                    // Registered before the check, so a release between the two is not missed.
                    let freed = budget.freed.notified();
                    tokio::pin!(freed);
                    freed.as_mut().enable();
                    {
                        let mut held = budget.held.lock().expect("never poisoned");
                        if *held < budget.limit {
                            *held += bytes;
                            break;
                        }
                    }
                    freed.await;
                }
                *self.mine() += bytes;
                return;
            }
        }
        *budget.held.lock().expect("never poisoned") += bytes;
        *self.mine() += bytes;
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let Some(budget) = self.budget else {
            return;
        };
        let mine = *self.mine();
        if mine > 0 {
            *budget.held.lock().expect("never poisoned") -= mine;
            budget.freed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{future::Future, time::Duration};

    use super::*;

    /// Whether `future` completes within a tenth of a second.
    async fn completes<T>(future: impl Future<Output = T>) -> bool {
        tokio::time::timeout(Duration::from_millis(100), future)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn an_operation_waits_for_admission_only_before_it_holds_anything() {
        let budget = AnswerBudget::new(100);
        let first = Share::new(Some(&budget));
        first.hold(150).await;
        // Over the budget: the admitted operation still grows, a new one waits.
        first.hold(50).await;
        assert_eq!(budget.held(), 200);
        let second = Share::new(Some(&budget));
        assert!(!completes(second.hold(10)).await, "the budget is spent");
        drop(first);
        assert_eq!(budget.held(), 0);
        assert!(completes(second.hold(10)).await);
        drop(second);
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn parallel_fetches_of_one_operation_are_admitted_once() {
        let budget = AnswerBudget::new(100);
        let other = Share::new(Some(&budget));
        other.hold(100).await;
        let share = Share::new(Some(&budget));
        {
            let both = async { tokio::join!(share.hold(30), share.hold(40)) };
            let mut both = std::pin::pin!(both);
            assert!(!completes(both.as_mut()).await, "both wait for admission");
            drop(other);
            assert!(completes(both).await, "both go on once admitted");
        }
        assert_eq!(budget.held(), 70);
    }

    #[tokio::test]
    async fn without_a_budget_nothing_waits() {
        let share = Share::new(None);
        assert!(completes(share.hold(usize::MAX / 2)).await);
    }
}
