//! What one statement reads and where its writes go, handed to table
//! providers and sinks through DataFusion's session config extensions.

use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::TaskContext;
use datafusion::prelude::SessionConfig;

use crate::log::{Change, Offset, ReadView, RelationId};
use crate::table::TableWrite;
use crate::table::state::TableStates;

/// Fixed at the start of a statement: every relation it reads is read as of
/// `read_offset`, so a statement never sees part of a commit; tables are read
/// from `tables`, their state at that offset (plus the transaction's writes).
#[derive(Debug, Clone)]
pub struct StatementScope {
    pub read_offset: Offset,
    pub tables: Arc<TableStates>,
    /// The session's open transaction, if it is inside BEGIN … COMMIT.
    pub transaction: Option<Arc<Mutex<Transaction>>>,
}

impl StatementScope {
    pub fn from_config(config: &SessionConfig) -> Option<Arc<StatementScope>> {
        config.get_extension::<StatementScope>()
    }

    pub fn from_task(task: &TaskContext) -> Option<Arc<StatementScope>> {
        task.session_config().get_extension::<StatementScope>()
    }
}

/// An explicit transaction: it reads as of the moment of its first statement
/// (plus its own writes), and its writes are buffered and appended as one
/// commit at COMMIT, where the log checks them against what committed since.
#[derive(Debug, Default)]
pub struct Transaction {
    pub changes: Vec<Change>,
    pub bytes: usize,
    /// Set when a statement in the block failed: only ROLLBACK is accepted then.
    pub failed: bool,
    /// `BEGIN READ ONLY`: writes fail with 25006.
    pub read_only: bool,
    /// What the transaction reads; its tables include its own writes.
    pub view: Option<ReadView>,
    /// Open savepoints, oldest first.
    pub savepoints: Vec<Savepoint>,
    /// Relations the block dropped, by name: its statements no longer see
    /// them (the drop is made at COMMIT, as one of its changes); and the
    /// former names of those it renamed.
    pub dropped: Vec<String>,
    /// Relations the block altered (ALTER, RENAME): its statements see them
    /// as its view's catalog has them.
    pub altered: Vec<RelationId>,
}

/// What `ROLLBACK TO SAVEPOINT` returns a transaction to: its writes and
/// its view (whose tables hold its writes; a persistent map, so keeping
/// one is cheap) as they were at `SAVEPOINT`.
#[derive(Debug)]
pub struct Savepoint {
    pub name: String,
    changes: usize,
    bytes: usize,
    dropped: usize,
    altered: usize,
    view: Option<ReadView>,
}

impl Transaction {
    /// Marks the transaction's state now as `name`.
    pub fn savepoint(&mut self, name: String) {
        let (changes, bytes, view) = (self.changes.len(), self.bytes, self.view.clone());
        let (dropped, altered) = (self.dropped.len(), self.altered.len());
        self.savepoints.push(Savepoint { name, changes, bytes, dropped, altered, view });
    }

    /// Forgets savepoint `name` and those after it (`RELEASE`); its
    /// position among the open savepoints, `None` if there is none.
    pub fn release(&mut self, name: &str) -> Option<usize> {
        let position = self.savepoints.iter().rposition(|s| s.name == name)?;
        self.savepoints.truncate(position);
        Some(position)
    }

    /// Undoes what the transaction did after savepoint `name`, which stays
    /// open (`ROLLBACK TO`), and clears a failure; its position among the
    /// open savepoints, `None` if there is none.
    pub fn roll_back_to(&mut self, name: &str) -> Option<usize> {
        let position = self.savepoints.iter().rposition(|s| s.name == name)?;
        self.savepoints.truncate(position + 1);
        let savepoint = &self.savepoints[position];
        self.changes.truncate(savepoint.changes);
        self.dropped.truncate(savepoint.dropped);
        self.altered.truncate(savepoint.altered);
        self.bytes = savepoint.bytes;
        self.view = savepoint.view.clone();
        self.failed = false;
        Some(position)
    }
}

impl Transaction {
    /// Rows this transaction appended to stream `relation`, in its user schema.
    pub fn pending_rows(&self, relation: RelationId) -> Vec<RecordBatch> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::Append { relation: id, rows } if *id == relation => Some(rows.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the transaction wrote rows to relation `relation`.
    pub fn wrote(&self, relation: RelationId) -> bool {
        self.changes.iter().any(|c| match c {
            Change::Append { relation: id, .. } => *id == relation,
            Change::TableWrite(write) => write.relation == relation,
            _ => false,
        })
    }

    /// Buffers a table write and applies it to the transaction's own view.
    pub fn write_table(&mut self, write: TableWrite) -> crate::error::Result<()> {
        let view = self.view.as_mut().expect("a transaction's view is fixed by its first statement");
        let tables = Arc::make_mut(&mut view.tables);
        if let Some(table) = tables.by_relation.get_mut(&write.relation) {
            crate::table::apply_pending(table, &write)?;
            let (relation, deletes, inserts) = (write.relation, &write.deletes, &write.inserts);
            crate::table::foreign_key::check_write(&view.catalog, tables, relation, deletes, inserts)?;
        }
        self.bytes += write.deletes.get_array_memory_size() + write.inserts.get_array_memory_size();
        self.changes.push(Change::TableWrite(write));
        Ok(())
    }
}
