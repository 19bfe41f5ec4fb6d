//! Where a view's result changes become log rows. A view whose result only
//! grows is stored as a stream (its new rows appended). Any other is stored
//! as keyed state under a hidden `_rowid`: the offset of the event that
//! added the row. The sink remembers which row ids hold each distinct row,
//! so a retraction deletes one of them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::row::{RowConverter, SortField};

use super::aggregate::RowKey;
use super::delta::Delta;
use super::{Result, ViewError};
use crate::catalog::RelationDef;
use crate::log::{Offset, RelationId};
use crate::table::TableWrite;

#[derive(Debug, Clone)]
pub struct Sink {
    pub def: Arc<RelationDef>,
    /// Encodes a row's visible columns.
    codec: Arc<RowConverter>,
    /// Distinct row → the row ids holding it (keyed views only).
    holders: imbl::HashMap<RowKey, Vec<i64>>,
}

/// What one step of a view writes.
pub enum SinkWrite {
    Append { relation: RelationId, rows: RecordBatch },
    Table(TableWrite),
}

impl Sink {
    pub fn new(def: Arc<RelationDef>) -> Result<Sink> {
        let fields =
            def.visible_positions().into_iter().map(|p| SortField::new(def.columns[p].sql_type.arrow_type())).collect();
        Ok(Sink { codec: Arc::new(RowConverter::new(fields)?), def, holders: imbl::HashMap::new() })
    }

    pub fn relation(&self) -> RelationId {
        self.def.id
    }

    /// Remembers the rows a keyed view holds now (`rows`: its user columns,
    /// the row id last), as when it is loaded at start.
    pub fn load(&mut self, rows: &RecordBatch) -> Result<()> {
        let Some(row_id) = self.def.row_id() else { return Ok(()) };
        let visible: Vec<ArrayRef> = self.def.visible_positions().iter().map(|p| rows.column(*p).clone()).collect();
        let encoded = self.codec.convert_columns(&visible)?;
        let ids = rows
            .column(row_id)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| ViewError::internal("a view's row id is not BIGINT"))?;
        for (index, row) in encoded.iter().enumerate() {
            self.holders.entry(Arc::from(row.data())).or_default().push(ids.value(index));
        }
        Ok(())
    }

    /// Turns a change of the view's result (visible columns) into the rows
    /// to log, whose first event takes offset `first`.
    pub fn write(&mut self, delta: Delta, first: Offset) -> Result<Option<SinkWrite>> {
        let delta = delta.consolidate()?;
        if delta.is_empty() {
            return Ok(None);
        }
        let rows = self.conform(&delta.rows)?;
        if self.def.row_id().is_none() {
            let mut take = Vec::new();
            for (index, diff) in delta.diffs.values().iter().enumerate() {
                if *diff < 0 {
                    return Err(ViewError::internal("a retraction from a view kept as a stream"));
                }
                take.extend(std::iter::repeat_n(index as u32, *diff as usize));
            }
            let rows = take_record_batch(&rows, &UInt32Array::from(take))?;
            return Ok(Some(SinkWrite::Append { relation: self.def.id, rows }));
        }
        let encoded = self.codec.convert_columns(rows.columns())?;
        let (mut delete_take, mut delete_ids, mut insert_take) = (Vec::new(), Vec::new(), Vec::new());
        for (index, diff) in delta.diffs.values().iter().enumerate() {
            let key: RowKey = Arc::from(encoded.row(index).data());
            if *diff < 0 {
                let ids = self.holders.get_mut(&key).ok_or_else(|| {
                    ViewError::internal(&format!("view \"{}\" retracts a row it does not hold", self.def.name))
                })?;
                for _ in 0..diff.unsigned_abs() {
                    let id = ids.pop().ok_or_else(|| {
                        ViewError::internal(&format!("view \"{}\" retracts a row it does not hold", self.def.name))
                    })?;
                    delete_take.push(index as u32);
                    delete_ids.push(id);
                }
                if ids.is_empty() {
                    self.holders.remove(&key);
                }
            } else {
                insert_take.extend(std::iter::repeat_n(index as u32, *diff as usize));
            }
        }
        let first_insert = first.0 + delete_ids.len() as u64;
        let insert_ids: Vec<i64> = (0..insert_take.len() as u64).map(|i| (first_insert + i) as i64).collect();
        for (position, index) in insert_take.iter().enumerate() {
            let key: RowKey = Arc::from(encoded.row(*index as usize).data());
            self.holders.entry(key).or_default().push(insert_ids[position]);
        }
        let expected = delete_ids.iter().map(|id| Some(Offset(*id as u64))).collect();
        let deletes = self.with_row_ids(&take_record_batch(&rows, &UInt32Array::from(delete_take))?, delete_ids)?;
        let inserts = self.with_row_ids(&take_record_batch(&rows, &UInt32Array::from(insert_take))?, insert_ids)?;
        Ok(Some(SinkWrite::Table(TableWrite { relation: self.def.id, deletes, expected, inserts })))
    }

    /// The delta's rows cast to the view's column types.
    fn conform(&self, rows: &RecordBatch) -> Result<RecordBatch> {
        let positions = self.def.visible_positions();
        let fields: Vec<_> = positions.iter().map(|p| self.def.columns[*p].field().with_nullable(true)).collect();
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        super::dataflow::batch(&schema, rows.columns().to_vec(), rows.num_rows())
    }

    /// Visible columns plus row ids, in the view's user schema.
    fn with_row_ids(&self, visible: &RecordBatch, ids: Vec<i64>) -> Result<RecordBatch> {
        let mut columns = visible.columns().to_vec();
        let row_id = self.def.row_id().expect("keyed view");
        columns.insert(row_id, Arc::new(Int64Array::from(ids)));
        Ok(RecordBatch::try_new(self.def.user_schema(), columns)?)
    }
}
