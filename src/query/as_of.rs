//! A table as it was at a point in time, rebuilt from its latest state
//! snapshot at or before that point plus the changes after the snapshot up
//! to the point: the snapshot's rows whose key no later change touched, and
//! for every touched key its last change when that change adds a row. The
//! cost is one snapshot read plus at most about a table's worth of changes
//! (see [`crate::log::snapshot`]), never the whole history.
//!
//! [`crate::sql::as_of`] turns `FOR SYSTEM_TIME AS OF`, `VERSION AS OF` and
//! `SET system_time` on any relation into `__strata_as_of('x', upto,
//! straddling, at)`: a table rebuilt as above, or a stream's log up to the
//! point (the caller filters it by time). Either way a point older than the
//! history the relation's retention keeps is refused here, at planning.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::{filter_record_batch, interleave};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::row::{Row, RowConverter, Rows, SortField};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{HashMap, Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;

use super::provider::{ChangeRange, RelationTable};
use super::scope::StatementScope;
use crate::catalog::{HistoryStart, RelationDef, RelationKind, UTC};
use crate::error::{Error, Result};
use crate::log::{CommitTs, Log, Offset, SnapshotMeta};

pub const AS_OF_FUNCTION: &str = "__strata_as_of";

/// Which committed events a point in time includes: those at offsets up to
/// `upto` (the statement's offset when `None`), except the commit stamped
/// `straddling` (it continues past `upto`), committed no later than `at`.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub upto: Option<Offset>,
    pub straddling: Option<CommitTs>,
    pub at: Option<CommitTs>,
}

impl Point {
    fn admits_time(&self, ts: CommitTs) -> bool {
        self.at.is_none_or(|at| ts <= at) && self.straddling.is_none_or(|s| ts < s)
    }

    /// Whether a snapshot holds only events this point includes.
    fn admits_snapshot(&self, upto: Offset, snapshot: &SnapshotMeta) -> bool {
        snapshot.through <= upto && self.admits_time(snapshot.through_ts)
    }
}

/// `__strata_as_of('x', upto, straddling, at)`.
#[derive(Debug)]
pub struct AsOfFunction {
    pub log: Arc<Log>,
}

impl TableFunctionImpl for AsOfFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let usage =
            |what: &str| Error::InvalidParameterValue(format!("a point in time needs {what}")).into_datafusion();
        let exprs = args.exprs();
        let [name, upto, straddling, at] = exprs else { return Err(usage("four arguments")) };
        let Expr::Literal(ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)), _) = name else {
            return Err(usage("a relation name"));
        };
        let upto = match literal(upto, &DataType::Int64) {
            Some(ScalarValue::Int64(Some(v))) if v >= 0 => Some(Offset(v as u64)),
            Some(ScalarValue::Int64(None)) => None,
            _ => return Err(usage("an offset")),
        };
        let time = |expr: &Expr| match literal(expr, &DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))) {
            Some(ScalarValue::TimestampMicrosecond(v, _)) => Ok(v.map(CommitTs)),
            _ => Err(usage("a constant time")),
        };
        let point = Point { upto, straddling: time(straddling)?, at: time(at)? };
        let name = crate::sql::parse::object_name(name);
        let def = self.log.relation(&name).ok_or_else(|| Error::UndefinedRelation(name).into_datafusion())?;
        if let Some(start) = self.log.history_start(def.id) {
            refuse_before(&def, start, &point).map_err(Error::into_datafusion)?;
        }
        Ok(match def.kind {
            RelationKind::Table => Arc::new(TableAsOf { log: self.log.clone(), schema: def.full_schema(), def, point }),
            RelationKind::Stream => {
                let range = ChangeRange { after: Offset::ZERO, upto: point.upto };
                Arc::new(RelationTable::changes(self.log.clone(), def, range))
            }
        })
    }
}

/// An error when `point` lies before the history `def`'s retention keeps.
fn refuse_before(def: &RelationDef, start: HistoryStart, point: &Point) -> Result<()> {
    let before_offset = point.upto.is_some_and(|upto| upto < start.offset);
    let before_time = point.at.is_some_and(|at| at < start.ts);
    if !before_offset && !before_time {
        return Ok(());
    }
    let setting = def
        .retention
        .as_ref()
        .map(|r| format!(" ({} = '{}')", def.kind.retention_option(), r.text))
        .unwrap_or_default();
    Err(Error::InvalidParameterValue(format!(
        "{} \"{}\" keeps no history before offset {} ({}): older history was removed by its retention{setting}",
        def.kind.noun(),
        def.name,
        start.offset,
        crate::sql::as_of::timestamp_literal(start.ts),
    )))
}

/// A literal argument cast to `target` (NULL stays NULL).
fn literal(expr: &Expr, target: &DataType) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => value.cast_to(target).ok(),
        _ => None,
    }
}

#[derive(Debug)]
struct TableAsOf {
    log: Arc<Log>,
    def: Arc<RelationDef>,
    schema: SchemaRef,
    point: Point,
}

#[async_trait]
impl TableProvider for TableAsOf {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let read_offset = match StatementScope::from_config(state.config()) {
            Some(scope) => scope.read_offset,
            None => self.log.visible_offset(),
        };
        let upto = self.point.upto.map_or(read_offset, |upto| upto.min(read_offset));
        let projection: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let schema = Arc::new(self.schema.project(&projection)?);
        let partition = Arc::new(Rebuild {
            log: self.log.clone(),
            def: self.def.clone(),
            point: self.point,
            upto,
            projection,
            schema: schema.clone(),
        });
        Ok(Arc::new(StreamingTableExec::try_new(schema, vec![partition], None, [], false, None)?))
    }
}

/// The work of one point-in-time scan, done when the plan runs.
#[derive(Debug)]
struct Rebuild {
    log: Arc<Log>,
    def: Arc<RelationDef>,
    point: Point,
    upto: Offset,
    /// Positions in the table's full schema (user columns, `_offset`, `_ts`).
    projection: Vec<usize>,
    schema: SchemaRef,
}

impl PartitionStream for Rebuild {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _context: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rebuild = Rebuild {
            log: self.log.clone(),
            def: self.def.clone(),
            point: self.point,
            upto: self.upto,
            projection: self.projection.clone(),
            schema: self.schema.clone(),
        };
        let batches = futures::stream::once(async move { rebuild.run().await }).flat_map(|result| {
            let items: Vec<DfResult<RecordBatch>> = match result {
                Ok(batches) => batches.into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error.into_datafusion())],
            };
            futures::stream::iter(items)
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

impl Rebuild {
    async fn run(&self) -> Result<Vec<RecordBatch>> {
        let started = std::time::Instant::now();
        let n = self.def.columns.len();
        let (offset_column, ts_column, diff_column) = (n, n + 1, n + 2);
        let read = self.log.read(self.def.id, self.upto);
        let snapshot = read.states.iter().rev().find(|s| self.point.admits_snapshot(self.upto, s)).cloned();
        let after = snapshot.as_ref().map_or(Offset::ZERO, |s| s.through);

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
            read.segments.iter().filter(|s| s.last_offset > after && self.point.admits_time(s.min_ts)).collect();
        segments.sort_by_key(|s| s.first_offset);
        for segment in segments {
            let store = self.log.store();
            for batch in segment.read_offsets(store, &change_columns, offset_column, after, self.upto).await? {
                delta.extend(self.admitted(&changes, batch, after)?);
            }
        }
        for (batch, ts) in read.batches.iter().zip(&read.batch_ts) {
            if self.point.admits_time(*ts) {
                delta.extend(self.admitted(&changes, batch.project(&change_columns)?, after)?);
            }
        }

        let delta_read = started.elapsed();
        // The last change of every key the delta touches: each key's latest
        // position (the delta is in offset order), marked in one bitmap so
        // the surviving rows come out in offset order without a sort.
        let total: usize = delta.iter().map(|b| b.num_rows()).sum();
        let converter = RowConverter::new(
            self.def.primary_key.iter().map(|k| SortField::new(self.def.columns[*k].sql_type.arrow_type())).collect(),
        )?;
        let int_key = int_key(&self.def);
        let delta_keys: Vec<Rows> = match int_key {
            Some(_) => Vec::new(),
            None => delta
                .iter()
                .map(|b| converter.convert_columns(&changes.columns(b, &self.def.primary_key)))
                .collect::<std::result::Result<_, _>>()?,
        };
        let touched = match int_key {
            Some(key) => {
                let mut latest = HashMap::with_capacity(total);
                let columns =
                    delta.iter().map(|b| int_values(b.column(changes.position(key)))).collect::<DfResult<Vec<_>>>()?;
                for (position, key) in columns.iter().flat_map(|c| c.values().iter()).enumerate() {
                    latest.insert(*key, position);
                }
                Touched::Ints(latest)
            }
            None => {
                let mut latest = HashMap::with_capacity(total);
                for (position, key) in delta_keys.iter().flat_map(|keys| keys.iter()).enumerate() {
                    latest.insert(key, position);
                }
                Touched::Rows(latest)
            }
        };
        let mut latest = vec![false; total];
        for position in touched.positions() {
            latest[position] = true;
        }
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
        if let Some(snapshot) = snapshot {
            let stored = Layout::new(&wanted);
            for batch in snapshot.read(self.log.store(), Some(&wanted)).await? {
                let untouched = match &touched {
                    Touched::Ints(latest) => {
                        let keys = int_values(batch.column(stored.position(self.def.primary_key[0])))?;
                        keys.values().iter().map(|k| Some(!latest.contains_key(k))).collect::<BooleanArray>()
                    }
                    Touched::Rows(latest) => {
                        let keys = converter.convert_columns(&stored.columns(&batch, &self.def.primary_key))?;
                        keys.iter().map(|k| Some(!latest.contains_key(&k))).collect::<BooleanArray>()
                    }
                };
                let batch = filter_record_batch(&batch, &untouched)?;
                let columns = stored.columns(&batch, &self.projection);
                out.push(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options(batch.num_rows()))?);
            }
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
            snapshot = after.0,
            changes = delta.iter().map(|b| b.num_rows()).sum::<usize>(),
            delta_read_ms = delta_read.as_secs_f64() * 1e3,
            delta_indexed_ms = delta_indexed.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "rebuilt a table at a point in time"
        );
        Ok(out)
    }

    /// The rows of a change batch (in `layout`) after `after` that the point includes.
    fn admitted(&self, layout: &Layout, batch: RecordBatch, after: Offset) -> Result<Option<RecordBatch>> {
        let n = self.def.columns.len();
        let offsets = batch.column(layout.position(n)).as_primitive::<Int64Type>();
        let stamps = batch.column(layout.position(n + 1)).as_primitive::<TimestampMicrosecondType>();
        let (after, upto) = (after.0 as i64, self.upto.0 as i64);
        let keep: BooleanArray = offsets
            .values()
            .iter()
            .zip(stamps.values())
            .map(|(offset, ts)| Some(*offset > after && *offset <= upto && self.point.admits_time(CommitTs(*ts))))
            .collect();
        let batch = match keep.true_count() {
            0 => return Ok(None),
            all if all == batch.num_rows() => batch,
            _ => filter_record_batch(&batch, &keep)?,
        };
        Ok(Some(batch))
    }
}

/// Every key the changes touch, with the position of its last change. A
/// key of one integer column is hashed as an integer (the common case, and
/// several times faster than through Arrow's row format).
enum Touched<'a> {
    Ints(HashMap<i64, usize>),
    Rows(HashMap<Row<'a>, usize>),
}

impl Touched<'_> {
    fn positions(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        match self {
            Touched::Ints(latest) => Box::new(latest.values().copied()),
            Touched::Rows(latest) => Box::new(latest.values().copied()),
        }
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
