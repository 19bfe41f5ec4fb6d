//! A simple-query string of several statements runs as PostgreSQL runs it:
//! outside a transaction block, as one implicit block, so a failure undoes
//! the statements before it and `SET LOCAL` lasts to the string's end.
//!
//! The block must end however the string ends. [`Running`] holds the
//! session while the string (or a protocol Execute) runs; dropped before it
//! finished (a cancel request drops the running query, an error reading
//! parameters or sending a response returns early) it rolls an implicit
//! block back, since not all of its statements ran, and fails an explicit
//! one, as PostgreSQL does.

use std::ops::{Deref, DerefMut};

use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use pgwire::api::ClientInfo;
use pgwire::api::results::Response;
use pgwire::error::PgWireError;
use pgwire::messages::response::TransactionStatus;
use tokio::sync::OwnedMutexGuard;

use crate::error::{Error, Result};
use crate::session::Session;
use crate::sql::parse::Command;

/// The session, held while one query string or Execute runs.
pub struct Running {
    session: OwnedMutexGuard<Session>,
    /// The implicit block this string opened, while it is open.
    implicit: bool,
    finished: bool,
}

impl Running {
    pub fn new(session: OwnedMutexGuard<Session>) -> Running {
        Running { session, implicit: false, finished: false }
    }

    /// Opens the implicit block of `commands` if they need one: several
    /// statements, outside a block, that can all run in one, and one of
    /// them with something to undo (a write, a SET). A string of reads
    /// needs none, and its last rows are then streamed, not held.
    pub async fn begin_implicit(&mut self, commands: &[Command]) -> Result<bool> {
        let needed = commands.len() > 1
            && !self.session.in_transaction()
            && commands.iter().all(fits_implicit_block)
            && commands.iter().any(undoable);
        if needed {
            self.session.execute(Command::Begin { read_only: None }, None).await?;
            self.implicit = true;
        }
        Ok(needed)
    }

    /// Ends the implicit block: commits it, or rolls it back when a
    /// statement `failed`.
    pub async fn end_implicit(&mut self, failed: bool) -> Result<()> {
        let ended = match failed {
            true => {
                self.session.roll_back_block();
                Ok(())
            }
            // Dropped while it commits (a cancel before the commit was
            // handed over), the block is still open and `Drop` rolls it back.
            false => self.session.execute(Command::Commit, None).await.map(|_| ()),
        };
        self.implicit = false;
        ended
    }

    /// Tells `client` the session's transaction status, as it stands after
    /// each statement. pgwire works the status out from the responses, but
    /// when a query is cancelled, or a response fails while it is sent, it
    /// sends the last status it was told (`BEGIN; SELECT 1/0` said idle). An
    /// implicit block is not the client's: idle.
    pub fn report_status<C: ClientInfo + ?Sized>(&self, client: &mut C) {
        client.set_transaction_status(match (self.implicit, self.session.block_failed()) {
            (true, _) | (false, None) => TransactionStatus::Idle,
            (false, Some(false)) => TransactionStatus::Transaction,
            (false, Some(true)) => TransactionStatus::Error,
        });
    }

    /// The string or Execute ran to its end.
    pub fn finish<C: ClientInfo + ?Sized>(mut self, client: &mut C) {
        self.report_status(client);
        self.finished = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.implicit {
            self.session.roll_back_block();
        } else if !self.finished {
            self.session.fail_transaction();
        }
    }
}

impl Deref for Running {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

/// A response's rows encoded now, as they will be sent: an implicit block
/// commits only once nothing of it can fail anymore. The error if one does.
pub async fn encoded_now(response: Response) -> Result<Response, PgWireError> {
    let Response::Query(mut query) = response else { return Ok(response) };
    let mut rows = Vec::new();
    while let Some(row) = query.data_rows.next().await {
        rows.push(row?);
    }
    query.data_rows = Box::pin(futures::stream::iter(rows.into_iter().map(Ok)));
    Ok(Response::Query(query))
}

/// A response whose rows, if one fails while it is encoded or sent (or a
/// cancel stops them), fail the open block with `fail`, as an error in any
/// statement of a block does.
pub fn failing_block(response: Response, fail: Option<impl Fn() + Send + Sync + 'static>) -> Response {
    match (response, fail) {
        (Response::Query(mut query), Some(fail)) => {
            query.data_rows = Box::pin(query.data_rows.inspect(move |row| {
                if row.is_err() {
                    fail();
                }
            }));
            Response::Query(query)
        }
        (response, _) => response,
    }
}

/// Whether a statement can run in an implicit block: reads, writes,
/// settings, EXECUTE (of what PREPARE takes: reads and writes) and query
/// cursors. DDL, COPY, SUBSCRIBE, transaction control and PREPARE or
/// DEALLOCATE (which no rollback undoes) keep a string running statement by
/// statement, each committing on its own.
fn fits_implicit_block(command: &Command) -> bool {
    match command {
        Command::Query(statement) => {
            matches!(**statement, Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. })
        }
        Command::Modify { .. }
        | Command::Set { .. }
        | Command::Reset { .. }
        | Command::Show { .. }
        | Command::SetTransaction { .. }
        | Command::Execute { .. }
        | Command::DeclareQueryCursor { .. }
        | Command::Fetch { .. }
        | Command::CloseCursor { .. } => true,
        _ => false,
    }
}

/// Whether a statement changes what a rollback undoes.
fn undoable(command: &Command) -> bool {
    match command {
        Command::Query(statement) => matches!(**statement, Statement::Insert(_)),
        Command::Show { .. } | Command::Fetch { .. } | Command::CloseCursor { .. } => false,
        _ => true,
    }
}

/// How long to wait before running a string again the `attempt`th time:
/// a random part of a span that doubles with each attempt, so strings that
/// collided do not collide again in step.
pub fn backoff(attempt: usize) -> std::time::Duration {
    use std::hash::BuildHasher;
    let span_micros = (100u64 << attempt.min(9)).min(50_000);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    std::time::Duration::from_micros(random % (span_micros + 1))
}

/// Whether an implicit block whose commit failed with `error` is run again:
/// another commit took a key or changed a row it decided on. Nothing of it
/// reached the client yet, so the string runs again on the new state, as
/// each statement alone would (an upsert decides again).
pub fn run_again(error: &Error) -> bool {
    matches!(error, Error::Storage(crate::log::Error::Conflict | crate::log::Error::UniqueViolation { .. }))
}
