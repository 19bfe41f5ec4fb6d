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

tokio::task_local! {
    static GATE: CancelGate;
}

#[derive(Debug, Clone, Default)]
pub struct CancelGate(Arc<AtomicU8>);

impl CancelGate {
    /// Runs `work` with this gate closing for its commits.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        GATE.scope(self.clone(), work).await
    }

    /// Whether only the holder asking still holds this gate (its connection ended).
    pub fn is_orphan(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }

    /// Delivers a cancel request with `cancel`, unless a commit is in
    /// flight: then it is dropped. Returns whether it was delivered.
    pub async fn cancel<F: Future>(&self, cancel: F) -> bool {
        if self.0.compare_exchange(OPEN, CANCELLING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        // Reopened however delivery ends (its task may be dropped).
        let _reopen = Reopen(self.clone());
        cancel.await;
        true
    }
}

/// Opens a gate when dropped: the current task's, closed for one commit, or
/// one a cancel request is being delivered through.
pub(super) struct Reopen(CancelGate);

impl Drop for Reopen {
    fn drop(&mut self) {
        self.0.0.store(OPEN, Ordering::Release);
    }
}

/// Closes the current task's gate before a commit is handed over (`None`
/// outside a connection). A cancel being delivered finishes first; then one
/// turn is yielded, so that a cancel delivered before stops the query now,
/// before its commit is made.
pub(super) async fn close() -> Option<Reopen> {
    let gate = GATE.try_with(Clone::clone).ok()?;
    loop {
        match gate.0.compare_exchange(OPEN, CLOSED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            // Closed by a commit of this task still in flight: it reopens it.
            Err(CLOSED) => return None,
            Err(_) => tokio::task::yield_now().await,
        }
    }
    let closed = Reopen(gate);
    tokio::task::yield_now().await;
    Some(closed)
}
