//! Cursors: `DECLARE c CURSOR FOR SUBSCRIBE x` (see `subscribe`) and, as in
//! PostgreSQL, `DECLARE c [NO SCROLL] CURSOR [WITH HOLD] FOR query`, whose
//! rows `FETCH n FROM c` reads a few at a time (psql's `FETCH_COUNT`, the
//! server-side cursors of drivers). A query cursor holds the query's
//! running stream, so rows are computed as they are fetched and memory
//! stays at a batch or so; it reads the snapshot of its DECLARE.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use super::subscribe;
use crate::error::{Error, Notice, Result};

pub enum Cursor {
    Subscription(Box<subscribe::Cursor>),
    Query(QueryCursor),
}

/// Where a query cursor was declared: which transaction block of the
/// session, and how many savepoints were open in it. A rollback of the
/// block, or to a savepoint before the cursor, closes it, as in PostgreSQL
/// (its rows may hold writes the rollback undid).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeclaredIn {
    pub block: u64,
    pub savepoints: usize,
}

pub struct QueryCursor {
    declared_in: Option<DeclaredIn>,
    schema: SchemaRef,
    /// In a mutex only so a session stays `Sync` (a stream is not); it is
    /// read through `get_mut`, never locked.
    stream: std::sync::Mutex<SendableRecordBatchStream>,
    /// Rows of the last batch read that FETCH has not returned yet.
    pending: Option<RecordBatch>,
    /// `WITH HOLD`: stays open after its transaction ends.
    pub hold: bool,
}

impl Cursor {
    pub fn schema(&self) -> SchemaRef {
        match self {
            Cursor::Subscription(cursor) => cursor.schema(),
            Cursor::Query(cursor) => cursor.schema.clone(),
        }
    }

    pub fn take_notices(&mut self) -> Vec<Notice> {
        match self {
            Cursor::Subscription(cursor) => cursor.take_notices(),
            Cursor::Query(_) => Vec::new(),
        }
    }

    /// Up to `count` rows (all that are left with `None`). A subscription
    /// waits up to `timeout` for its first row; a query has no wait.
    pub async fn fetch(&mut self, count: Option<u64>, timeout: Option<std::time::Duration>) -> Result<RecordBatch> {
        match self {
            Cursor::Subscription(cursor) => cursor.fetch(count, timeout).await,
            Cursor::Query(cursor) => cursor.fetch(count).await,
        }
    }

    /// Whether the cursor stays open when block `block` ends: committed,
    /// only a `WITH HOLD` cursor (or one from another block) does; rolled
    /// back to savepoint number `to` (or wholly, `None`), only one declared
    /// before it.
    pub fn survives(&self, block: u64, committed: bool, to: Option<usize>) -> bool {
        let Cursor::Query(cursor) = self else { return true };
        match cursor.declared_in {
            Some(declared) if declared.block == block => match (committed, to) {
                (true, _) => cursor.hold,
                (false, Some(savepoint)) => declared.savepoints <= savepoint,
                (false, None) => false,
            },
            _ => true,
        }
    }
}

impl QueryCursor {
    pub fn new(
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        hold: bool,
        declared_in: Option<DeclaredIn>,
    ) -> QueryCursor {
        QueryCursor { declared_in, schema, stream: std::sync::Mutex::new(stream), pending: None, hold }
    }

    async fn fetch(&mut self, count: Option<u64>) -> Result<RecordBatch> {
        let stream = self.stream.get_mut().map_err(|_| Error::Internal("a cursor's stream panicked".into()))?;
        let wanted = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let mut parts = Vec::new();
        let mut taken = 0;
        while taken < wanted {
            let batch = match self.pending.take() {
                Some(batch) => batch,
                None => match stream.next().await {
                    Some(batch) => batch.map_err(Error::from_datafusion)?,
                    None => break,
                },
            };
            let take = (wanted - taken).min(batch.num_rows());
            if take < batch.num_rows() {
                self.pending = Some(batch.slice(take, batch.num_rows() - take));
            }
            taken += take;
            parts.push(batch.slice(0, take));
        }
        Ok(datafusion::arrow::compute::concat_batches(&stream.schema(), &parts)?)
    }
}
