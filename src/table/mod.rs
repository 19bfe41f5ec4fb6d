//! Tables: keyed state whose every change is an event. A write to a table is
//! a [`TableWrite`] (rows to retract, rows to add) checked against the current
//! state by the log writer, so key uniqueness and concurrent updates are
//! decided in commit order; the state itself is kept in [`state`].

pub mod dml;
pub mod foreign_key;
mod key;
pub mod keyed_update;
pub mod replay;
pub mod scan_cache;
pub mod state;
mod touched;
pub mod upsert;
pub mod write;

use datafusion::arrow::record_batch::RecordBatch;

use crate::log::{Offset, RelationId};

/// The changes one statement makes to one table. An UPDATE is a delete of the
/// old row and an insert of the new one; in the log it becomes a -1 event and
/// a +1 event in the same commit.
#[derive(Debug, Clone)]
pub struct TableWrite {
    pub relation: RelationId,
    /// Rows to retract (user columns), each with the offset of the version
    /// the statement saw: `None` for a row written earlier in the same commit.
    pub deletes: RecordBatch,
    pub expected: Vec<Option<Offset>>,
    /// Rows to add (user columns); their keys must be free.
    pub inserts: RecordBatch,
}

/// Applies a transaction's own write to its private view of the table, with
/// the same checks the log makes at commit, so the transaction reads its own
/// writes and a duplicate key fails at the statement, as in PostgreSQL.
pub fn apply_pending(table: &mut state::TableState, write: &TableWrite) -> crate::error::Result<()> {
    let codec = table.codec.clone();
    table.count_references(&write.deletes, |_| true)?;
    table.count_references(&write.inserts, |_| false)?;
    table.index_rows(&write.deletes, |_| true)?;
    table.index_rows(&write.inserts, |_| false)?;
    let (deleted, inserted) = (codec.keys(&write.deletes)?, codec.keys(&write.inserts)?);
    for key in &deleted {
        table.rows.remove(key);
    }
    let rows = codec.rows(&write.inserts)?;
    for (index, (key, row)) in inserted.iter().cloned().zip(rows).enumerate() {
        if table.rows.contains_key(&key) {
            return Err(crate::log::Error::UniqueViolation {
                table: codec.def.name.clone(),
                constraint: codec.def.primary_key_name(),
                detail: format!("{} already exists.", codec.describe_key(&write.inserts, index)),
            }
            .into());
        }
        table.rows.insert(key, std::sync::Arc::new(state::RowVersion { offset: None, ts: None, row }));
    }
    // After the primary key, so a row repeating both is reported as PostgreSQL does.
    table.take_unique_values((&write.deletes, &deleted), (&write.inserts, &inserted))?;
    Ok(())
}
