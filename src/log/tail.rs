//! Per relation: the sealed segments, a table's state snapshots, and the unsealed tail of committed rows
//! held in Arrow batches (one per commit, each already carrying `_offset`
//! and `_ts`). Both change under one lock, so a reader sees every row once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{ArrayRef, Int64Array, TimestampMicrosecondArray};
use datafusion::arrow::record_batch::RecordBatch;

use super::segment::SegmentMeta;
use super::snapshot::SnapshotMeta;
use super::{CommitTs, Offset, RelationId, Result};
use crate::catalog::{HistoryStart, RelationDef, UTC};

struct TailBatch {
    last_offset: Offset,
    ts: CommitTs,
    rows: RecordBatch,
}

#[derive(Default)]
struct RelationData {
    segments: Vec<Arc<SegmentMeta>>,
    /// Oldest first.
    snapshots: Vec<Arc<SnapshotMeta>>,
    tail: Vec<TailBatch>,
    history_start: Option<HistoryStart>,
}

/// A relation as of some offset: sealed segments, then tail batches.
#[derive(Default, Clone)]
pub struct RelationSnapshot {
    pub segments: Vec<Arc<SegmentMeta>>,
    /// A table's state snapshots through that offset, oldest first.
    pub states: Vec<Arc<SnapshotMeta>>,
    /// Set when retention dropped or folded the history before it.
    pub history_start: Option<HistoryStart>,
    pub batches: Vec<RecordBatch>,
    /// Commit time of each batch in `batches`, for pruning by `_ts`.
    pub batch_ts: Vec<CommitTs>,
}

#[derive(Default)]
pub(super) struct Tails {
    by_relation: RwLock<HashMap<RelationId, RelationData>>,
    /// Memory held by unsealed batches, for the seal trigger and backpressure.
    tail_bytes: AtomicUsize,
}

impl Tails {
    pub fn append(&self, def: &RelationDef, first_offset: Offset, ts: CommitTs, rows: &RecordBatch) -> Result<()> {
        let count = rows.num_rows();
        let offsets = Int64Array::from_iter_values((0..count as i64).map(|i| first_offset.0 as i64 + i));
        let stamps = TimestampMicrosecondArray::from_value(ts.0, count).with_timezone(UTC);
        // User columns, then `_offset`, `_ts`, then what the entry carries
        // after the user columns (a table's `_diff`).
        let user_count = def.columns.len();
        let mut columns: Vec<ArrayRef> = rows.columns()[..user_count].to_vec();
        columns.push(Arc::new(offsets));
        columns.push(Arc::new(stamps));
        columns.extend(rows.columns()[user_count..].iter().cloned());
        let full = RecordBatch::try_new(def.log_schema(), columns)?;
        let last_offset = Offset(first_offset.0 + count as u64 - 1);
        self.tail_bytes.fetch_add(full.get_array_memory_size(), Ordering::Relaxed);
        let mut map = self.by_relation.write().expect("tail lock");
        map.entry(def.id).or_default().tail.push(TailBatch { last_offset, ts, rows: full });
        Ok(())
    }

    pub fn add_segment(&self, segment: Arc<SegmentMeta>) {
        let mut map = self.by_relation.write().expect("tail lock");
        map.entry(segment.relation).or_default().segments.push(segment);
    }

    pub fn add_snapshot(&self, snapshot: Arc<SnapshotMeta>) {
        let mut map = self.by_relation.write().expect("tail lock");
        map.entry(snapshot.relation).or_default().snapshots.push(snapshot);
    }

    pub fn read(&self, relation: RelationId, upto: Offset) -> RelationSnapshot {
        let map = self.by_relation.read().expect("tail lock");
        let Some(data) = map.get(&relation) else { return RelationSnapshot::default() };
        // Batches are in offset order and never straddle a commit, so the
        // visible ones are a prefix.
        let visible = data.tail.partition_point(|b| b.last_offset <= upto);
        let segments = data.segments.iter().filter(|s| s.first_offset <= upto).cloned().collect();
        let states = data.snapshots.iter().filter(|s| s.through <= upto).cloned().collect();
        let batches = data.tail[..visible].iter().map(|b| b.rows.clone()).collect();
        let batch_ts = data.tail[..visible].iter().map(|b| b.ts).collect();
        RelationSnapshot { segments, states, history_start: data.history_start, batches, batch_ts }
    }

    /// Tail batches of `relation` up to `upto` (the rows a seal writes out).
    pub fn unsealed(&self, relation: RelationId, upto: Offset) -> Vec<RecordBatch> {
        let map = self.by_relation.read().expect("tail lock");
        let Some(data) = map.get(&relation) else { return Vec::new() };
        data.tail.iter().take_while(|b| b.last_offset <= upto).map(|b| b.rows.clone()).collect()
    }

    /// Replaces the tail through `upto` with the segment that now holds it.
    pub fn seal(&self, relation: RelationId, upto: Offset, segment: Option<Arc<SegmentMeta>>) {
        let mut map = self.by_relation.write().expect("tail lock");
        let Some(data) = map.get_mut(&relation) else { return };
        let sealed = data.tail.partition_point(|b| b.last_offset <= upto);
        let freed: usize = data.tail.drain(..sealed).map(|b| b.rows.get_array_memory_size()).sum();
        self.tail_bytes.fetch_sub(freed, Ordering::Relaxed);
        if let Some(segment) = segment {
            data.segments.push(segment);
        }
    }

    /// Where the relation's readable history starts, when retention trimmed it.
    pub fn history_start(&self, relation: RelationId) -> Option<HistoryStart> {
        self.by_relation.read().expect("tail lock").get(&relation).and_then(|d| d.history_start)
    }

    /// Replaces segments `merged` of `relation` by the one segment `into`.
    pub fn replace_segments(&self, relation: RelationId, merged: &[Arc<SegmentMeta>], into: Arc<SegmentMeta>) {
        let mut map = self.by_relation.write().expect("tail lock");
        let data = map.entry(relation).or_default();
        data.segments.retain(|s| !merged.iter().any(|m| Arc::ptr_eq(m, s)));
        data.segments.push(into);
        data.segments.sort_by_key(|s| s.first_offset);
    }

    /// Forgets the segments and snapshots retention removed; history now
    /// starts at `start`.
    pub fn trim(
        &self,
        relation: RelationId,
        start: HistoryStart,
        segments: &[Arc<SegmentMeta>],
        snapshots: &[Arc<SnapshotMeta>],
    ) {
        let mut map = self.by_relation.write().expect("tail lock");
        let data = map.entry(relation).or_default();
        data.segments.retain(|s| !segments.iter().any(|d| Arc::ptr_eq(d, s)));
        data.snapshots.retain(|s| !snapshots.iter().any(|d| Arc::ptr_eq(d, s)));
        data.history_start = Some(start);
    }

    /// Lays the relation's unsealed rows out in `def`'s columns after the
    /// `ALTER … ADD / DROP / RENAME COLUMN` at `at` (see [`super::layout`]):
    /// they are laid out as just before it, whenever they were written.
    pub fn reshape(&self, def: &RelationDef, at: Offset) {
        let mut map = self.by_relation.write().expect("tail lock");
        let Some(data) = map.get_mut(&def.id) else { return };
        let log_schema = def.log_schema();
        let columns: Vec<usize> = (0..log_schema.fields().len()).collect();
        let before = Offset(at.0.saturating_sub(1));
        // A change of retention leaves the columns as they are.
        for batch in data.tail.iter_mut().filter(|b| b.rows.schema().fields() != log_schema.fields()) {
            match super::layout::adapt(def, &batch.rows, before, &columns) {
                Ok(rows) => {
                    // Seals and drops subtract the size a batch has then:
                    // count what the new layout holds, not what it replaced.
                    self.tail_bytes.fetch_add(rows.get_array_memory_size(), Ordering::Relaxed);
                    self.tail_bytes.fetch_sub(batch.rows.get_array_memory_size(), Ordering::Relaxed);
                    batch.rows = rows;
                }
                // Every column comes from the batch or is filled: this cannot fail.
                Err(error) => tracing::error!(%error, "could not lay out unsealed rows anew"),
            }
        }
    }

    pub fn drop_relation(&self, relation: RelationId) {
        if let Some(data) = self.by_relation.write().expect("tail lock").remove(&relation) {
            let freed: usize = data.tail.iter().map(|b| b.rows.get_array_memory_size()).sum();
            self.tail_bytes.fetch_sub(freed, Ordering::Relaxed);
        }
    }

    pub fn tail_bytes(&self) -> usize {
        self.tail_bytes.load(Ordering::Relaxed)
    }
}
