//! State snapshots: a table's rows as they were after every commit through
//! some offset (user columns, `_offset`, `_ts` of each row's version, in key
//! order), as one Parquet file `snapshots/<relation id>/<through>.parquet`.
//!
//! A seal writes one for a table once the changes since its last snapshot
//! reach the table's size (at least `snapshot_changes_min`): a restart then
//! loads the latest snapshot and replays only the segments after it, and a
//! point-in-time read starts from the latest snapshot at or before its point,
//! replaying at most about one table's worth of changes. The snapshots take
//! at most about as much space as the history they summarize.

use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::segment::{decode, fetch_checked, parquet_bytes};
use super::store::SegmentStore;
use super::{CommitTs, Offset, RelationId, Result};
use crate::catalog::RelationDef;

pub const SNAPSHOTS_PREFIX: &str = "snapshots";

#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub relation: RelationId,
    pub path: String,
    /// The state after every commit through this offset.
    pub through: Offset,
    /// The latest commit time of any event through `through`: the snapshot
    /// serves `FOR SYSTEM_TIME AS OF` any time from this one on.
    pub through_ts: CommitTs,
    pub rows: u64,
    pub bytes: u64,
    pub crc32c: u32,
    #[serde(skip)]
    pub verified: AtomicBool,
}

impl SnapshotMeta {
    /// `columns` (positions in `def`'s current full schema) of the snapshot's rows.
    pub async fn read(&self, store: &SegmentStore, def: &RelationDef, columns: &[usize]) -> Result<Vec<RecordBatch>> {
        let bytes = fetch_checked(store, &self.path, self.bytes, self.crc32c, &self.verified).await?;
        decode(&self.path, bytes, def, columns, self.through, None)
    }
}

/// Encodes a table's state (`rows` in its full schema) as of `through`.
pub fn encode(
    def: &RelationDef,
    rows: &RecordBatch,
    through: Offset,
    through_ts: CommitTs,
) -> Result<(SnapshotMeta, Bytes)> {
    let buffer = parquet_bytes(rows, def)?;
    let meta = SnapshotMeta {
        relation: def.id,
        path: format!("{SNAPSHOTS_PREFIX}/{}/{:020}.parquet", def.id.0, through.0),
        through,
        through_ts,
        rows: rows.num_rows() as u64,
        bytes: buffer.len() as u64,
        crc32c: crc32c::crc32c(&buffer),
        verified: AtomicBool::new(true),
    };
    Ok((meta, Bytes::from(buffer)))
}
