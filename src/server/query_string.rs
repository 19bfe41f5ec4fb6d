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
use pgwire::api::ClientInfo;
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
        self.implicit = false;
        if failed {
            self.session.roll_back_block();
            return Ok(());
        }
        self.session.execute(Command::Commit, None).await.map(|_| ())
    }

    /// The string or Execute ran to its end: tells `client` the session's transaction
    /// status. pgwire works it out from the responses, but sends its last
    /// known one when a response fails while it is sent (`BEGIN; SELECT
    /// 1/0` said idle).
    pub fn finish<C: ClientInfo + ?Sized>(mut self, client: &mut C) {
        client.set_transaction_status(match self.session.block_failed() {
            None => TransactionStatus::Idle,
            Some(false) => TransactionStatus::Transaction,
            Some(true) => TransactionStatus::Error,
        });
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

/// Whether a statement can run in an implicit block: reads, writes, settings
/// and EXECUTE. DDL, COPY, cursors, SUBSCRIBE, transaction control and
/// PREPARE/DEALLOCATE (which no rollback undoes) keep a string running
/// statement by statement, each committing on its own.
fn fits_implicit_block(command: &Command) -> bool {
    match command {
        Command::Query(statement) => matches!(**statement, Statement::Query(_) | Statement::Insert(_)),
        Command::Modify { .. }
        | Command::Set { .. }
        | Command::Reset { .. }
        | Command::Show { .. }
        | Command::Execute { .. } => true,
        _ => false,
    }
}

/// Whether a statement changes what a rollback undoes.
fn undoable(command: &Command) -> bool {
    match command {
        Command::Query(statement) => !matches!(**statement, Statement::Query(_)),
        Command::Show { .. } => false,
        _ => true,
    }
}

/// Whether an implicit block whose commit failed with `error` is run again:
/// another commit took a key or changed a row it decided on. Nothing of it
/// reached the client yet, so the string runs again on the new state, as
/// each statement alone would (an upsert decides again).
pub fn run_again(error: &Error) -> bool {
    matches!(error, Error::Storage(crate::log::Error::Conflict | crate::log::Error::UniqueViolation { .. }))
}
