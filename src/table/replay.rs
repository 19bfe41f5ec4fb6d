//! Rebuilding a table's rows at an offset from a base — a state snapshot,
//! or rows already rebuilt at an earlier offset — plus the changes after it:
//! the base's rows whose key no later change touched, and for every touched
//! key its last change when that change adds a row. The cost is reading the
//! base and the changes, never the history before the base.
//!
//! Point-in-time reads start from a state snapshot (see
//! [`crate::log::snapshot`]); full scans of a big table's current state start
//! from the rows the previous scan produced (see [`super::scan_cache`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::{filter_record_batch, interleave};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimestampMicrosecondType};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::Result as DfResult;

use super::touched::Touched;
use crate::catalog::RelationDef;
use crate::error::Result;
use crate::log::{CommitTs, Log, Offset, SnapshotMeta};

/// What a rebuild starts from.
pub enum Base {
    /// Nothing: the table before its first change.
    Empty,
    Snapshot(Arc<SnapshotMeta>),
    /// Rows in the table's full schema (user columns, `_offset`, `_ts`).
    Rows(Vec<RecordBatch>),
}

/// The base's rows: being read from a snapshot (only the wanted columns),
/// or at hand (full schema).
enum Decoded {
    Pending(tokio::task::JoinHandle<crate::log::Result<Vec<RecordBatch>>>),
    Ready(Vec<RecordBatch>),
}

/// Which commit times a rebuild includes: up to `at`, and before the commit
/// stamped `straddling` (it continues past the offset bound).
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    pub at: Option<CommitTs>,
    pub straddling: Option<CommitTs>,
}

impl Times {
    pub fn admits(&self, ts: CommitTs) -> bool {
        self.at.is_none_or(|at| ts <= at) && self.straddling.is_none_or(|s| ts < s)
    }
}

/// A rebuild of `def`'s rows: the base is the table at `after`; the changes
/// in `(after, upto]` that `times` admits are applied to it; the result has
/// the full-schema columns `projection`, in `schema`.
pub struct Replay<'a> {
    pub log: &'a Log,
    pub def: &'a RelationDef,
    pub after: Offset,
    pub upto: Offset,
    pub times: Times,
    pub projection: &'a [usize],
    pub schema: SchemaRef,
}

impl Replay<'_> {
    /// The table's rows (in `schema`) after applying the changes to `base`.
    pub async fn run(&self, base: Base) -> Result<Vec<RecordBatch>> {
        let started = std::time::Instant::now();
        let n = self.def.columns.len();
        let (offset_column, ts_column, diff_column) = (n, n + 1, n + 2);
        let read = self.log.read(self.def.id, self.upto);
        let after = self.after;

        // Read only what the query projects, plus the key (and, from the
        // change log, each change's offset, time and diff).
        let mut wanted: Vec<usize> = self.projection.iter().chain(&self.def.primary_key).copied().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut change_columns = wanted.clone();
        change_columns.extend([offset_column, ts_column, diff_column]);
        change_columns.sort_unstable();
        change_columns.dedup();

        let changes = Layout::new(&change_columns);
        let mut delta: Vec<RecordBatch> = Vec::new();
        // Offsets and times both grow along the log: a segment or batch whose
        // first event the point leaves out holds nothing it includes.
        let mut segments: Vec<_> =
            read.segments.iter().filter(|s| s.last_offset > after && self.times.admits(s.min_ts)).collect();
        segments.sort_by_key(|s| s.first_offset);
        // Files decode on the runtime's threads side by side (Parquet
        // decoding is most of a rebuild's time); the base starts first.
        let base = match base {
            Base::Snapshot(snapshot) => {
                let (store, def, wanted) = (self.log.store().clone(), Arc::new(self.def.clone()), wanted.clone());
                Decoded::Pending(tokio::spawn(async move { snapshot.read(&store, &def, &wanted).await }))
            }
            Base::Rows(batches) => Decoded::Ready(batches),
            Base::Empty => Decoded::Ready(Vec::new()),
        };
        let reads: Vec<_> = segments
            .into_iter()
            .map(|segment| {
                let (segment, store, def, columns, upto) = (
                    segment.clone(),
                    self.log.store().clone(),
                    Arc::new(self.def.clone()),
                    change_columns.clone(),
                    self.upto,
                );
                tokio::spawn(async move { segment.read(&store, &def, &columns, Some((after, upto))).await })
            })
            .collect();
        for read in reads {
            for batch in read.await.map_err(|e| crate::error::Error::Internal(e.to_string()))?? {
                delta.extend(self.admitted(&changes, batch, after)?);
            }
        }
        for (batch, ts) in read.batches.iter().zip(&read.batch_ts) {
            if self.times.admits(*ts) {
                delta.extend(self.admitted(&changes, batch.project(&change_columns)?, after)?);
            }
        }

        let delta_read = started.elapsed();
        // The last change of every key the delta touches, marked change by
        // change so the surviving rows come out in offset order without a sort.
        let total: usize = delta.iter().map(|b| b.num_rows()).sum();
        let converter = RowConverter::new(
            self.def.primary_key.iter().map(|k| SortField::new(self.def.columns[*k].sql_type.arrow_type())).collect(),
        )?;
        let int_key = int_key(self.def);
        let delta_keys: Vec<Rows> = match int_key {
            Some(_) => Vec::new(),
            None => delta
                .iter()
                .map(|b| converter.convert_columns(&changes.columns(b, &self.def.primary_key)))
                .collect::<std::result::Result<_, _>>()?,
        };
        let touched = match int_key {
            Some(key) => {
                let columns =
                    delta.iter().map(|b| int_values(b.column(changes.position(key)))).collect::<DfResult<Vec<_>>>()?;
                Touched::ints(&columns)
            }
            None => Touched::rows(&delta_keys),
        };
        let latest = &touched.last;
        let mut added: Vec<(usize, usize)> = Vec::new();
        let mut position = 0;
        for (b, batch) in delta.iter().enumerate() {
            let diffs = batch.column(changes.position(diff_column)).as_primitive::<Int64Type>().values();
            for (i, diff) in diffs.iter().enumerate() {
                if latest[position] && *diff > 0 {
                    added.push((b, i));
                }
                position += 1;
            }
        }
        let delta_indexed = started.elapsed();

        let options = |rows: usize| RecordBatchOptions::new().with_row_count(Some(rows));
        let mut out = Vec::new();
        let stored = Layout::new(&wanted);
        let base_batches: Vec<RecordBatch> = match base {
            Decoded::Pending(read) => read.await.map_err(|e| crate::error::Error::Internal(e.to_string()))??,
            Decoded::Ready(batches) => {
                batches.iter().map(|b| b.project(&wanted)).collect::<std::result::Result<_, _>>()?
            }
        };
        let base_read = started.elapsed();
        for batch in base_batches {
            // The base rows no change touched (all of them when none did).
            let batch = if total == 0 {
                batch
            } else {
                let keys = stored.columns(&batch, &self.def.primary_key);
                let untouched = match int_key {
                    Some(_) => touched.untouched_ints(&int_values(&keys[0])?),
                    None => touched.untouched_rows(&converter.convert_columns(&keys)?),
                };
                filter_record_batch(&batch, &untouched)?
            };
            let columns = stored.columns(&batch, self.projection);
            out.push(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options(batch.num_rows()))?);
        }
        if !added.is_empty() {
            let columns = self
                .projection
                .iter()
                .map(|c| {
                    let arrays: Vec<&dyn Array> =
                        delta.iter().map(|b| b.column(changes.position(*c)).as_ref()).collect();
                    interleave(&arrays, &added)
                })
                .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
            out.push(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options(added.len()))?);
        }
        tracing::debug!(
            table = self.def.name,
            upto = self.upto.0,
            base = after.0,
            changes = delta.iter().map(|b| b.num_rows()).sum::<usize>(),
            delta_read_ms = delta_read.as_secs_f64() * 1e3,
            delta_indexed_ms = delta_indexed.as_secs_f64() * 1e3,
            base_read_ms = base_read.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "rebuilt a table's rows from a base and later changes"
        );
        Ok(out)
    }

    /// The rows of a change batch (in `layout`) in `(after, upto]` that `times` admits.
    fn admitted(&self, layout: &Layout, batch: RecordBatch, after: Offset) -> Result<Option<RecordBatch>> {
        let n = self.def.columns.len();
        let offsets = batch.column(layout.position(n)).as_primitive::<Int64Type>();
        let stamps = batch.column(layout.position(n + 1)).as_primitive::<TimestampMicrosecondType>();
        let (after, upto) = (after.0 as i64, self.upto.0 as i64);
        let keep: BooleanArray = offsets
            .values()
            .iter()
            .zip(stamps.values())
            .map(|(offset, ts)| Some(*offset > after && *offset <= upto && self.times.admits(CommitTs(*ts))))
            .collect();
        let batch = match keep.true_count() {
            0 => return Ok(None),
            all if all == batch.num_rows() => batch,
            _ => filter_record_batch(&batch, &keep)?,
        };
        Ok(Some(batch))
    }
}

/// The key column when a table's key is one integer column.
fn int_key(def: &RelationDef) -> Option<usize> {
    match def.primary_key.as_slice() {
        [key] if def.columns[*key].sql_type.arrow_type().is_integer() => Some(*key),
        _ => None,
    }
}

fn int_values(column: &ArrayRef) -> DfResult<datafusion::arrow::array::Int64Array> {
    Ok(datafusion::arrow::compute::cast(column, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// Which columns of the full log schema a read batch holds, in order.
struct Layout<'a> {
    columns: &'a [usize],
}

impl<'a> Layout<'a> {
    fn new(columns: &'a [usize]) -> Layout<'a> {
        Layout { columns }
    }

    fn position(&self, column: usize) -> usize {
        self.columns.binary_search(&column).expect("every column read is in the layout")
    }

    fn columns(&self, batch: &RecordBatch, wanted: &[usize]) -> Vec<ArrayRef> {
        wanted.iter().map(|c| batch.column(self.position(*c)).clone()).collect()
    }
}
