//! SERIAL, BIGSERIAL and SMALLSERIAL columns: a row written without a value
//! for one (the column left out, or NULL) takes the next of the column's
//! counter, as from PostgreSQL's sequence. A counter starts, once per
//! server run, after the largest value the column holds then; as in
//! PostgreSQL, a value written explicitly above it is not skipped (its key
//! is taken when the counter reaches it), and a rolled-back write leaves a
//! gap. Unlike PostgreSQL's sequence, which never goes back, values of rows
//! deleted at the top may be given again after a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;

use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::log::RelationId;

/// The last value given of each SERIAL column, by relation and position.
#[derive(Debug, Default)]
pub struct Serials(Mutex<HashMap<(RelationId, usize), Arc<AtomicI64>>>);

/// A relation's SERIAL columns' counters, ready to give values.
pub type Counters = Vec<(usize, Arc<AtomicI64>)>;

/// The counters of an INSERT's target, started before it runs, for the
/// sink that writes its rows (through the session config).
#[derive(Debug, Default)]
pub struct StatementCounters(pub Counters);

impl Serials {
    /// The counter of `def`'s column at `position`, if it was started.
    pub fn started(&self, def: &RelationDef, position: usize) -> Option<Arc<AtomicI64>> {
        self.0.lock().expect("serials lock").get(&(def.id, position)).cloned()
    }

    /// Starts the counter after `largest` (the column's largest value), unless
    /// another write started it meanwhile.
    pub fn start(&self, def: &RelationDef, position: usize, largest: i64) -> Arc<AtomicI64> {
        let mut counters = self.0.lock().expect("serials lock");
        counters.entry((def.id, position)).or_insert_with(|| Arc::new(AtomicI64::new(largest))).clone()
    }
}

/// The positions of `def`'s SERIAL columns.
pub fn serial_positions(def: &RelationDef) -> Vec<usize> {
    def.columns.iter().enumerate().filter(|(_, column)| column.serial).map(|(position, _)| position).collect()
}

/// `values` with its NULLs replaced by `first`, `first + 1`, … in order
/// (also a keyless table's new row identities).
pub fn nulls_numbered(values: &Int64Array, first: i64) -> Int64Array {
    let mut next = first;
    values
        .iter()
        .map(|value| {
            Some(value.unwrap_or_else(|| {
                next += 1;
                next - 1
            }))
        })
        .collect()
}

/// `rows` (user columns) with every NULL of a SERIAL column replaced by
/// the next values of its counter, in row order.
pub fn fill(def: &RelationDef, rows: RecordBatch, counters: &Counters) -> Result<RecordBatch> {
    let mut columns = rows.columns().to_vec();
    if !fill_columns(def, &mut columns, counters)? {
        return Ok(rows);
    }
    Ok(RecordBatch::try_new(rows.schema(), columns)?)
}

/// [`fill`] on a relation's user columns; whether any value was filled.
pub fn fill_columns(def: &RelationDef, columns: &mut [ArrayRef], counters: &Counters) -> Result<bool> {
    let mut filled = false;
    for (position, counter) in counters {
        let column = &columns[*position];
        let missing = column.null_count();
        if missing == 0 {
            continue;
        }
        let first = counter.fetch_add(missing as i64, Ordering::AcqRel) + 1;
        let wide = datafusion::arrow::compute::cast(column, &DataType::Int64)?;
        let wide: ArrayRef = Arc::new(nulls_numbered(wide.as_primitive::<Int64Type>(), first));
        let options = CastOptions { safe: false, ..Default::default() };
        columns[*position] = cast_with_options(&wide, column.data_type(), &options).map_err(|_| {
            let name = &def.columns[*position].name;
            Error::SequenceExhausted(format!("nextval: reached maximum value of sequence \"{}_{name}_seq\"", def.name))
        })?;
        filled = true;
    }
    Ok(filled)
}
