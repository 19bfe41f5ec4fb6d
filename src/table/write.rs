//! The last steps of every table write (INSERT, UPDATE, DELETE, COPY): CHECK
//! constraints on the new rows, then one commit, or the open transaction.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::TableWrite;
use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::log::{Change, Log};
use crate::query::scope::StatementScope;
use crate::write::Limits;

/// Checks `write`'s new rows against the table's CHECK constraints, then
/// commits it, or buffers it in the statement's transaction.
pub async fn commit_or_buffer(
    log: &Log,
    scope: Option<&StatementScope>,
    def: &RelationDef,
    write: TableWrite,
    limits: &Limits,
) -> Result<()> {
    check_constraints(def, &write).await?;
    match scope.and_then(|s| s.transaction.as_ref()) {
        Some(transaction) => {
            let mut transaction = transaction.lock().expect("transaction lock");
            transaction.write_table(write)?;
            limits.check_statement(0, transaction.bytes)
        }
        None => {
            log.commit(vec![Change::TableWrite(write)]).await?;
            Ok(())
        }
    }
}

/// A CHECK passes unless its expression is false (NULL passes), as in PostgreSQL.
async fn check_constraints(def: &RelationDef, write: &TableWrite) -> Result<()> {
    if def.checks.is_empty() || write.inserts.num_rows() == 0 {
        return Ok(());
    }
    let context = SessionContext::new();
    let rows = MemTable::try_new(write.inserts.schema(), vec![vec![write.inserts.clone()]])?;
    context.register_table("new_rows", Arc::new(rows)).map_err(Error::from_datafusion)?;
    for check in &def.checks {
        let sql = format!("SELECT count(*) FROM new_rows WHERE NOT ({})", check.expr);
        let batches =
            context.sql(&sql).await.map_err(Error::from_datafusion)?.collect().await.map_err(Error::from_datafusion)?;
        let violations = batches.first().map(|b| b.column(0).as_primitive::<Int64Type>().value(0)).unwrap_or(0);
        if violations > 0 {
            return Err(Error::CheckViolation { relation: def.name.clone(), constraint: check.name.clone() });
        }
    }
    Ok(())
}
