//! Statements inside a transaction block besides reads and writes:
//! savepoints (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`) and `SET
//! TRANSACTION`. Each is 25P01 outside a block, as in PostgreSQL (`SET
//! TRANSACTION` only warns there).

use std::sync::{Arc, Mutex};

use super::{Outcome, Session, done};
use crate::error::{Error, Notice, Result};
use crate::query::scope::Transaction;

impl Session {
    fn open_block(&self, statement: &'static str) -> Result<Arc<Mutex<Transaction>>> {
        self.transaction.clone().ok_or(Error::NoActiveTransaction(statement))
    }

    pub(super) fn savepoint(&mut self, name: String) -> Result<Outcome> {
        let transaction = self.open_block("SAVEPOINT")?;
        // The view is fixed now if no statement fixed it yet: a rollback to
        // here must find the tables as they were.
        let _ = self.read_view();
        self.savepoint_settings();
        transaction.lock().expect("transaction lock").savepoint(name);
        Ok(done("SAVEPOINT"))
    }

    pub(super) fn release_savepoint(&mut self, name: String) -> Result<Outcome> {
        let transaction = self.open_block("RELEASE SAVEPOINT")?;
        let position = transaction.lock().expect("transaction lock").release(&name);
        let position = position.ok_or(Error::UndefinedSavepoint(name))?;
        self.release_savepoint_settings(position);
        Ok(done("RELEASE"))
    }

    pub(super) fn roll_back_to_savepoint(&mut self, name: String) -> Result<Outcome> {
        let transaction = self.open_block("ROLLBACK TO SAVEPOINT")?;
        let position = transaction.lock().expect("transaction lock").roll_back_to(&name);
        let position = position.ok_or(Error::UndefinedSavepoint(name))?;
        self.roll_back_settings_to(position);
        self.close_cursors(false, Some(position));
        Ok(done("ROLLBACK"))
    }

    /// Closes the cursors the end of the current block (committed or rolled
    /// back) or a rollback to savepoint number `to` closes.
    pub(super) fn close_cursors(&mut self, committed: bool, to: Option<usize>) {
        let block = self.blocks_begun;
        self.cursors.retain(|_, cursor| cursor.survives(block, committed, to));
    }

    /// `SET TRANSACTION READ ONLY | READ WRITE`; other modes (isolation
    /// levels) change nothing: every transaction reads one snapshot.
    pub(super) fn set_transaction(&mut self, read_only: Option<bool>) -> Result<Outcome> {
        match (&self.transaction, read_only) {
            (None, _) => self
                .notices
                .push(Notice::warning("25P01", "SET TRANSACTION can only be used in transaction blocks".into())),
            (Some(transaction), Some(read_only)) => {
                let mut transaction = transaction.lock().expect("transaction lock");
                // Once a statement has read, a read-only block stays so.
                if transaction.read_only && !read_only && transaction.view.is_some() {
                    return Err(Error::InvalidTransactionState(
                        "transaction read-write mode must be set before any query".into(),
                    ));
                }
                transaction.read_only = read_only;
            }
            (Some(_), None) => {}
        }
        Ok(done("SET"))
    }
}
