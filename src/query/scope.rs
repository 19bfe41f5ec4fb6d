//! What one statement reads and where its writes go, handed to table
//! providers and sinks through DataFusion's session config extensions.

use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::TaskContext;
use datafusion::prelude::SessionConfig;

use crate::log::{Offset, RelationId};

/// Fixed at the start of a statement: every relation it reads is read as of
/// `read_offset`, so a statement never sees part of a commit.
#[derive(Debug, Clone)]
pub struct StatementScope {
    pub read_offset: Offset,
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

/// Writes buffered by an explicit transaction, appended as one commit at COMMIT.
#[derive(Debug, Default)]
pub struct Transaction {
    pub appends: Vec<(RelationId, RecordBatch)>,
    pub bytes: usize,
    /// Set when a statement in the block failed: only ROLLBACK is accepted then.
    pub failed: bool,
}

impl Transaction {
    /// Rows this transaction wrote to `relation`, in the relation's user schema.
    pub fn pending_rows(&self, relation: RelationId) -> Vec<RecordBatch> {
        self.appends.iter().filter(|(id, _)| *id == relation).map(|(_, rows)| rows.clone()).collect()
    }
}
