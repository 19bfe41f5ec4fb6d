//! Read-only transactions, as PostgreSQL has them: `BEGIN READ ONLY`,
//! `SET TRANSACTION READ ONLY`, and `default_transaction_read_only` for
//! every transaction of a session (a statement outside a block is one).
//! A write in one fails with 25006 and changes nothing; reads, SET, SHOW
//! and subscriptions run.

use super::Session;
use crate::error::{Error, Result};
use crate::sql::parse::Command;
use datafusion::sql::sqlparser::ast::Statement;

/// The session setting that makes new transactions read-only.
pub(super) const DEFAULT_READ_ONLY: &str = "default_transaction_read_only";
/// The setting SHOW reads for the current transaction.
pub(super) const READ_ONLY: &str = "transaction_read_only";

impl Session {
    /// Whether a new transaction (or a statement outside one) is read-only.
    pub(super) fn read_only_by_default(&self) -> bool {
        self.settings.get(DEFAULT_READ_ONLY).is_some_and(|value| setting_is_on(value))
    }

    /// Whether the current transaction, or a statement outside one, is read-only.
    pub(super) fn read_only(&self) -> bool {
        match &self.transaction {
            Some(transaction) => transaction.lock().expect("transaction lock").read_only,
            None => self.read_only_by_default(),
        }
    }

    /// 25006 for a write in a read-only transaction.
    pub(super) fn refuse_write_if_read_only(&self, command: &Command) -> Result<()> {
        match write_verb(command) {
            Some(verb) if self.read_only() => Err(Error::ReadOnlyTransaction(verb)),
            _ => Ok(()),
        }
    }
}

/// PostgreSQL's name for what `command` writes (`INSERT`, `CREATE TABLE`),
/// or `None` for a command that writes nothing.
fn write_verb(command: &Command) -> Option<String> {
    Some(match command {
        Command::CreateRelation { kind, .. } => format!("CREATE {}", kind.noun().to_uppercase()),
        Command::AlterColumns { kind, .. }
        | Command::SetRetention { kind, .. }
        | Command::RenameRelation { kind, .. } => {
            format!("ALTER {}", kind.noun().to_uppercase())
        }
        Command::DropRelation { kind, view: false, .. } => format!("DROP {}", kind.noun().to_uppercase()),
        Command::DropRelation { view: true, .. } => "DROP MATERIALIZED VIEW".into(),
        Command::CreateView { .. } => "CREATE MATERIALIZED VIEW".into(),
        Command::CopyFrom { .. } => "COPY FROM".into(),
        Command::Modify { verb: "TRUNCATE", .. } => "TRUNCATE TABLE".into(),
        Command::Modify { verb, .. } => verb.split(' ').next().unwrap_or(verb).to_string(),
        Command::Query(statement) if matches!(statement.as_ref(), Statement::Insert(_)) => "INSERT".into(),
        _ => return None,
    })
}

/// A boolean setting's value as PostgreSQL reads it (`on`, `true`, `1`, …).
pub(super) fn setting_is_on(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "1" | "t" | "y")
}
