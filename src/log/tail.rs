//! The unsealed tail: committed rows held in Arrow batches, one batch per
//! commit and relation, each already carrying its `_offset` and `_ts` columns.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{ArrayRef, Int64Array, TimestampMicrosecondArray};
use datafusion::arrow::record_batch::RecordBatch;

use super::{CommitTs, Offset, RelationId, Result};
use crate::catalog::{RelationDef, UTC};

struct TailBatch {
    last_offset: Offset,
    rows: RecordBatch,
}

#[derive(Default)]
pub(super) struct Tails {
    by_relation: RwLock<HashMap<RelationId, Vec<TailBatch>>>,
}

impl Tails {
    pub fn append(
        &self,
        def: &RelationDef,
        first_offset: Offset,
        ts: CommitTs,
        rows: &RecordBatch,
    ) -> Result<()> {
        let count = rows.num_rows();
        let offsets =
            Int64Array::from_iter_values((0..count as i64).map(|i| first_offset.0 as i64 + i));
        let stamps = TimestampMicrosecondArray::from_value(ts.0, count).with_timezone(UTC);
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        columns.push(Arc::new(offsets));
        columns.push(Arc::new(stamps));
        let full = RecordBatch::try_new(def.full_schema(), columns)?;
        let last_offset = Offset(first_offset.0 + count as u64 - 1);
        let mut map = self.by_relation.write().expect("tail lock");
        map.entry(def.id).or_default().push(TailBatch {
            last_offset,
            rows: full,
        });
        Ok(())
    }

    pub fn read(&self, relation: RelationId, upto: Offset) -> Vec<RecordBatch> {
        let map = self.by_relation.read().expect("tail lock");
        let Some(batches) = map.get(&relation) else {
            return Vec::new();
        };
        // Batches are in offset order and never straddle a commit, so the
        // visible ones are a prefix.
        let visible = batches.partition_point(|b| b.last_offset <= upto);
        batches[..visible].iter().map(|b| b.rows.clone()).collect()
    }

    pub fn drop_relation(&self, relation: RelationId) {
        self.by_relation
            .write()
            .expect("tail lock")
            .remove(&relation);
    }
}
