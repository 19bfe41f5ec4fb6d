//! A change to a relation as the view engine passes it between operators:
//! rows and, per row, how many copies appear (+) or disappear (−).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::{Result, ViewError};

#[derive(Debug, Clone)]
pub struct Delta {
    pub rows: RecordBatch,
    pub diffs: Int64Array,
}

impl Delta {
    pub fn new(rows: RecordBatch, diffs: Int64Array) -> Delta {
        debug_assert_eq!(rows.num_rows(), diffs.len());
        Delta { rows, diffs }
    }

    /// Rows that all appear once.
    pub fn inserts(rows: RecordBatch) -> Delta {
        let diffs = Int64Array::from(vec![1; rows.num_rows()]);
        Delta { rows, diffs }
    }

    pub fn empty(schema: SchemaRef) -> Delta {
        Delta { rows: RecordBatch::new_empty(schema), diffs: Int64Array::from(Vec::<i64>::new()) }
    }

    pub fn len(&self) -> usize {
        self.rows.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.num_rows() == 0
    }

    /// The rows for which `predicate` is true (NULL counts as false).
    pub fn filter(&self, predicate: &Arc<dyn PhysicalExpr>) -> Result<Delta> {
        let mask = evaluate(predicate, &self.rows)?;
        let mask = mask.as_boolean_opt().ok_or_else(|| ViewError::internal("a filter is not boolean"))?;
        let mask = if mask.null_count() > 0 {
            BooleanArray::from_iter(mask.iter().map(|v| Some(v == Some(true))))
        } else {
            mask.clone()
        };
        let rows = filter_record_batch(&self.rows, &mask)?;
        let diffs = datafusion::arrow::compute::filter(&self.diffs, &mask)?;
        Ok(Delta { rows, diffs: diffs.as_primitive::<Int64Type>().clone() })
    }

    /// Sums the diffs of equal rows and drops rows whose diffs cancel out.
    pub fn consolidate(self) -> Result<Delta> {
        if self.is_empty() {
            return Ok(self);
        }
        let fields = self.rows.schema().fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        let converter = RowConverter::new(fields)?;
        let encoded = converter.convert_columns(self.rows.columns())?;
        let mut sums: HashMap<&[u8], (u32, i64)> = HashMap::with_capacity(self.len());
        let mut order = Vec::new();
        for (index, row) in encoded.iter().enumerate() {
            let diff = self.diffs.value(index);
            sums.entry(row.data()).and_modify(|(_, sum)| *sum += diff).or_insert_with(|| {
                order.push(row.data());
                (index as u32, diff)
            });
        }
        let mut take = Vec::with_capacity(order.len());
        let mut diffs = Vec::with_capacity(order.len());
        for row in order {
            let (index, sum) = sums[row];
            if sum != 0 {
                take.push(index);
                diffs.push(sum);
            }
        }
        if take.len() == self.len() && diffs.iter().zip(self.diffs.values()).all(|(a, b)| a == b) {
            return Ok(self);
        }
        let rows = take_record_batch(&self.rows, &UInt32Array::from(take))?;
        Ok(Delta { rows, diffs: Int64Array::from(diffs) })
    }

    /// Appends `other` (same schema).
    pub fn concat(parts: Vec<Delta>, schema: &SchemaRef) -> Result<Delta> {
        let rows: Vec<&RecordBatch> = parts.iter().map(|d| &d.rows).collect();
        let rows = datafusion::arrow::compute::concat_batches(schema, rows)?;
        let diffs: Vec<i64> = parts.iter().flat_map(|d| d.diffs.values().iter().copied()).collect();
        Ok(Delta { rows, diffs: Int64Array::from(diffs) })
    }
}

/// Evaluates `expr` over every row of `rows`.
pub fn evaluate(expr: &Arc<dyn PhysicalExpr>, rows: &RecordBatch) -> Result<ArrayRef> {
    let value = expr.evaluate(rows)?;
    Ok(value.into_array(rows.num_rows())?)
}
