//! A connection's gate for cancel requests: closed while one of its commits
//! is in the writer's hands. A cancel stops a query by dropping it; once a
//! commit is handed over the writer makes it anyway, so a cancel then would
//! tell the client "canceled" of a commit that happened. PostgreSQL ignores
//! a cancel that arrives during commit; so does Strata.
//!
//! The server runs each connection's statements inside [`CancelGate::scope`];
//! [`Log::commit`](super::Log::commit) closes the gate of the task it runs
//! in (none outside a connection: embedded use).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

const OPEN: u8 = 0;
/// A cancel request is being delivered.
const CANCELLING: u8 = 1;
/// A commit is in the writer's hands.
const CLOSED: u8 = 2;
/// A cancel request was delivered while the query ran (or between
/// queries): its next commit first gives the cancel a turn to stop it.
const CANCELLED: u8 = 3;

tokio::task_local! {
    static GATE: CancelGate;
}

#[derive(Debug, Clone, Default)]
pub struct CancelGate(Arc<AtomicU8>);

impl CancelGate {
    /// Runs `work` with this gate closing for its commits. A cancel
    /// delivered during `work` is forgotten once it ends.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        let output = GATE.scope(self.clone(), work).await;
        let _ = self.0.compare_exchange(CANCELLED, OPEN, Ordering::AcqRel, Ordering::Acquire);
        output
    }

    /// Whether a cancel request was delivered since the last statement
    /// ended, forgetting it: a COPY's data asks, as it comes after the COPY
    /// statement returned and pgwire has no query to stop.
    pub fn take_cancel(&self) -> bool {
        self.0.compare_exchange(CANCELLED, OPEN, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whether only the holder asking still holds this gate (its connection ended).
    pub fn is_orphan(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }

    /// Delivers a cancel request with `cancel`, unless a commit is in
    /// flight: then it is dropped. Returns whether it was delivered.
    pub async fn cancel<F: Future>(&self, cancel: F) -> bool {
        let open = |state| state == OPEN || state == CANCELLED;
        if self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| open(s).then_some(CANCELLING)).is_err() {
            return false;
        }
        // Marked delivered however delivery ends (its task may be dropped).
        let _delivered = SetOnDrop(self.clone(), CANCELLED);
        cancel.await;
        true
    }
}

/// Sets a gate's state when dropped.
pub(super) struct SetOnDrop(CancelGate, u8);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.0.store(self.1, Ordering::Release);
    }
}

/// Closes the current task's gate before a commit is handed over (`None`
/// outside a connection); it reopens when the result is dropped. A cancel
/// being delivered finishes first; after one was delivered, one turn is
/// yielded, so that it stops the query now, before its commit is made
/// (without one, nothing is yielded: the commit is not delayed).
pub(super) async fn close() -> Option<SetOnDrop> {
    let gate = GATE.try_with(Clone::clone).ok()?;
    loop {
        match gate.0.load(Ordering::Acquire) {
            // Closed by a commit of this task still in flight: it reopens it.
            CLOSED => return None,
            CANCELLING => tokio::task::yield_now().await,
            state => {
                if gate.0.compare_exchange(state, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    continue;
                }
                let closed = SetOnDrop(gate, OPEN);
                if state == CANCELLED {
                    tokio::task::yield_now().await;
                }
                return Some(closed);
            }
        }
    }
}
