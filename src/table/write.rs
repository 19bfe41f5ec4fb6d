//! The last steps of every table write (INSERT, UPDATE, DELETE, COPY): CHECK
//! constraints on the new rows, then one commit, or the open transaction.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::TableWrite;
use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::log::{Change, Log};
use crate::query::scope::StatementScope;
use crate::write::Limits;

/// Checks `write`'s new rows against the table's CHECK constraints, gives
/// new rows of a keyless table their row identity, then commits the write,
/// or buffers it in the statement's transaction.
pub async fn commit_or_buffer(
    log: &Log,
    scope: Option<&StatementScope>,
    def: &RelationDef,
    mut write: TableWrite,
    limits: &Limits,
) -> Result<()> {
    check_constraints(def, &write).await?;
    if let Some(position) = def.row_id() {
        write.inserts = assign_row_ids(log, &write.inserts, position)?;
    }
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

/// Fills the NULL row identities of new rows (an updated row keeps its own)
/// with ids no row of the database ever had.
fn assign_row_ids(log: &Log, rows: &RecordBatch, position: usize) -> Result<RecordBatch> {
    let ids = rows.column(position).as_primitive::<Int64Type>();
    let missing = ids.null_count();
    if missing == 0 {
        return Ok(rows.clone());
    }
    let filled = crate::write::serial::nulls_numbered(ids, log.allocate_row_ids(missing as u64));
    let mut columns = rows.columns().to_vec();
    columns[position] = Arc::new(filled);
    Ok(RecordBatch::try_new(rows.schema(), columns)?)
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
