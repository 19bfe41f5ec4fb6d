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
        transaction.lock().expect("transaction lock").savepoint(name);
        Ok(done("SAVEPOINT"))
    }

    pub(super) fn release_savepoint(&mut self, name: String) -> Result<Outcome> {
        let transaction = self.open_block("RELEASE SAVEPOINT")?;
        match transaction.lock().expect("transaction lock").release(&name) {
            true => Ok(done("RELEASE")),
            false => Err(Error::UndefinedSavepoint(name)),
        }
    }

    pub(super) fn roll_back_to_savepoint(&mut self, name: String) -> Result<Outcome> {
        let transaction = self.open_block("ROLLBACK TO SAVEPOINT")?;
        match transaction.lock().expect("transaction lock").roll_back_to(&name) {
            true => Ok(done("ROLLBACK")),
            false => Err(Error::UndefinedSavepoint(name)),
        }
    }

    /// `SET TRANSACTION READ ONLY | READ WRITE`; other modes (isolation
    /// levels) change nothing: every transaction reads one snapshot.
    pub(super) fn set_transaction(&mut self, read_only: Option<bool>) -> Result<Outcome> {
        match (&self.transaction, read_only) {
            (None, _) => self
                .notices
                .push(Notice::warning("25P01", "SET TRANSACTION can only be used in transaction blocks".into())),
            (Some(transaction), Some(read_only)) => transaction.lock().expect("transaction lock").read_only = read_only,
            (Some(_), None) => {}
        }
        Ok(done("SET"))
    }
}
