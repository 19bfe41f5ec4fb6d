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
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
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
use crate::log::{CommitTs, Log, Offset};
use crate::table::replay::{Base, Replay, Times};

pub const AS_OF_FUNCTION: &str = "__strata_as_of";

/// Which committed events a point in time includes: those at offsets up to
/// `upto` (the statement's offset when `None`) whose commit times `times` admits.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub upto: Option<Offset>,
    pub times: Times,
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
        let point = Point { upto, times: Times { straddling: time(straddling)?, at: time(at)? } };
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
    let before_time = point.times.at.is_some_and(|at| at < start.ts);
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
#[derive(Debug, Clone)]
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
        let rebuild = self.clone();
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
    /// The table at the point: its latest snapshot the point includes, plus
    /// the changes after it.
    async fn run(&self) -> Result<Vec<RecordBatch>> {
        let read = self.log.read(self.def.id, self.upto);
        let times = self.point.times;
        let snapshot = read.states.iter().rev().find(|s| s.through <= self.upto && times.admits(s.through_ts)).cloned();
        let after = snapshot.as_ref().map_or(Offset::ZERO, |s| s.through);
        let base = snapshot.map_or(Base::Empty, Base::Snapshot);
        let replay = Replay {
            log: &self.log,
            def: &self.def,
            after,
            upto: self.upto,
            times,
            projection: &self.projection,
            schema: self.schema.clone(),
        };
        replay.run(base).await
    }
}
