//! A Strata table as a DataFusion table: scans read its current state (the
//! statement's snapshot of the key index, never the history), with a
//! lookup when the filters fix every column of the primary key, a UNIQUE
//! constraint or an index; inserts become a [`TableWrite`] checked at commit.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::StreamExt;

use super::defaults::ColumnDefaults;
use super::scope::StatementScope;
use crate::catalog::RelationDef;
use crate::error::Error;
use crate::log::{Log, Offset};
use crate::table::TableWrite;
use crate::table::replay::{Base, Replay, Times};
use crate::table::state::{Key, Lookup, TableState};
use crate::write::{Limits, check_rows, user_columns};

#[derive(Debug)]
pub struct TableStateTable {
    log: Arc<Log>,
    def: Arc<RelationDef>,
    schema: SchemaRef,
    defaults: ColumnDefaults,
}

impl TableStateTable {
    pub fn new(log: Arc<Log>, def: Arc<RelationDef>) -> TableStateTable {
        let schema = def.full_schema();
        let defaults = ColumnDefaults::of(&def);
        TableStateTable { log, def, schema, defaults }
    }

    /// The keys of the rows the filters can match, when they fix (`c =
    /// literal`) every column of the primary key, else of a UNIQUE
    /// constraint, else of an index. The indexes are those of the state
    /// read, whose definition may be older than the one planned with (a
    /// transaction block's snapshot, after another session's CREATE INDEX).
    fn lookup_keys(table: &TableState, filters: &[Expr]) -> Option<Vec<Key>> {
        let def = &table.codec.def;
        let fixed = fixed_columns(def, filters);
        let values = |positions: &[usize]| -> Option<Vec<ScalarValue>> {
            positions.iter().map(|p| fixed.get(p).cloned()).collect()
        };
        // A value of another type: scan, and let the filter decide.
        if let Some(values) = values(&def.primary_key) {
            return table.codec.key_of(&values).ok().map(|key| key.into_iter().collect());
        }
        let uniques = def.uniques.iter().enumerate().map(|(n, u)| (Lookup::Unique(n), &u.columns));
        let indexes = def.indexes.iter().enumerate().map(|(n, i)| (Lookup::Index(n), &i.columns));
        let (lookup, values) = uniques.chain(indexes).find_map(|(lookup, columns)| Some((lookup, values(columns)?)))?;
        match table.codec.lookup_values(lookup, &values).ok()? {
            Some(values) => Some(table.look_up(lookup, &values)),
            None => Some(Vec::new()), // A NULL equals nothing.
        }
    }
}

#[async_trait]
impl TableProvider for TableStateTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: key equalities narrow the scan to a lookup; DataFusion
        // still applies every filter to what comes back.
        Ok(filters.iter().map(|_| TableProviderFilterPushDown::Inexact).collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (tables, read_offset, transaction) = match StatementScope::from_config(state.config()) {
            Some(scope) => (scope.tables.clone(), scope.read_offset, scope.transaction.clone()),
            None => {
                let view = self.log.snapshot();
                (view.tables, view.offset, None)
            }
        };
        let batches = match tables.get(self.def.id) {
            Some(table) => {
                let keys = Self::lookup_keys(table, filters);
                let own_writes = transaction.is_some_and(|t| t.lock().expect("transaction lock").wrote(self.def.id));
                if keys.is_some() || own_writes || table.len() < self.log.scan_cache_rows_min() {
                    vec![table.to_batch(&self.schema, keys.as_deref())?]
                } else {
                    current_rows(&self.log, &self.def, table, read_offset).await.map_err(Error::into_datafusion)?
                }
            }
            None => vec![RecordBatch::new_empty(self.schema.clone())],
        };
        let source = MemorySourceConfig::try_new(&[batches], self.schema.clone(), projection.cloned())?;
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(Error::FeatureNotSupported(format!("{insert_op} is not supported")).into_datafusion());
        }
        let sink = TableSink::new(self.log.clone(), self.def.clone(), self.schema.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// The columns (by position) that `filters` fix to a literal.
fn fixed_columns(def: &RelationDef, filters: &[Expr]) -> HashMap<usize, ScalarValue> {
    let mut fixed = HashMap::new();
    for filter in filters {
        let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = filter else { continue };
        let (column, literal) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => (c, v),
            _ => continue,
        };
        if let Some(position) = def.columns.iter().position(|c| c.name == column.name) {
            fixed.insert(position, literal.clone());
        }
    }
    fixed
}

/// A table's rows at `offset` (full schema), for a full scan: the rows the
/// last scan produced plus the changes since, or, when there are none kept
/// or more changes since than a quarter of the table, from the key index.
async fn current_rows(
    log: &Log,
    def: &RelationDef,
    table: &TableState,
    offset: Offset,
) -> crate::error::Result<Vec<RecordBatch>> {
    let cache = log.scan_cache();
    // Rows kept from before an ALTER of the columns do not fit any more.
    let fits = |rows: &[RecordBatch]| rows.first().is_none_or(|b| b.schema().fields() == def.full_schema().fields());
    if let Some(cached) = cache.get(def.id, offset).filter(|c| fits(&c.batches)) {
        if cached.offset == offset {
            return Ok(cached.batches.clone());
        }
        if changes_after(&log.read(def.id, offset), def, cached.offset) <= table.len() / 4 {
            let projection: Vec<usize> = (0..def.columns.len() + 2).collect();
            let replay = Replay {
                log,
                def,
                after: cached.offset,
                upto: offset,
                times: Times::default(),
                projection: &projection,
                schema: def.full_schema(),
            };
            let mut rows = replay.run(Base::Rows(cached.batches.clone())).await?;
            // Each replay adds a batch; a few big ones scan faster.
            if rows.len() > 8 {
                rows = vec![datafusion::arrow::compute::concat_batches(&def.full_schema(), &rows)?];
            }
            cache.put(def.id, offset, rows.clone());
            return Ok(rows);
        }
    }
    let rows = vec![table.to_batch(&def.full_schema(), None)?];
    cache.put(def.id, offset, rows.clone());
    Ok(rows)
}

/// About how many changes of `def` the log holds after `after` (whole
/// segments and commits counted).
fn changes_after(read: &crate::log::RelationSnapshot, def: &RelationDef, after: Offset) -> usize {
    let sealed: u64 = read.segments.iter().filter(|s| s.last_offset > after).map(|s| s.rows).sum();
    let offset_column = def.columns.len();
    let tail: usize = read
        .batches
        .iter()
        .filter(|b| {
            let offsets = b.column(offset_column).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            !offsets.is_empty() && offsets.value(offsets.len() - 1) > after.0 as i64
        })
        .map(|b| b.num_rows())
        .sum();
    sealed as usize + tail
}

/// Where INSERT rows for a table go: checked, then committed as one
/// [`TableWrite`] (or buffered in the open transaction).
#[derive(Debug)]
pub struct TableSink {
    log: Arc<Log>,
    def: Arc<RelationDef>,
    schema: SchemaRef,
}

impl TableSink {
    pub fn new(log: Arc<Log>, def: Arc<RelationDef>, full_schema: SchemaRef) -> TableSink {
        let fields: Vec<_> = full_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        TableSink { log, def, schema: Arc::new(Schema::new(fields)) }
    }
}

impl DisplayAs for TableSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TableSink: table={}", self.def.name)
    }
}

#[async_trait]
impl DataSink for TableSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(&self, mut data: SendableRecordBatchStream, context: &Arc<TaskContext>) -> DfResult<u64> {
        let limits = context.session_config().get_extension::<Limits>().unwrap_or_default();
        let serials = context.session_config().get_extension::<crate::write::serial::StatementCounters>();
        let mut batches: Vec<RecordBatch> = Vec::new();
        let (mut rows, mut bytes) = (0usize, 0usize);
        while let Some(batch) = data.next().await {
            let batch = user_columns(&self.def, batch?).map_err(Error::into_datafusion)?;
            let batch = match &serials {
                Some(serials) => {
                    crate::write::serial::fill(&self.def, batch, &serials.0).map_err(Error::into_datafusion)?
                }
                None => batch,
            };
            let batch = check_rows(&self.def, batch).map_err(Error::into_datafusion)?;
            rows += batch.num_rows();
            bytes += batch.get_array_memory_size();
            limits.check_statement(rows, bytes).map_err(Error::into_datafusion)?;
            batches.push(batch);
        }
        let inserts = datafusion::arrow::compute::concat_batches(&self.def.user_schema(), &batches)?;
        let write = TableWrite {
            relation: self.def.id,
            deletes: RecordBatch::new_empty(self.def.user_schema()),
            expected: Vec::new(),
            inserts,
        };
        let scope = StatementScope::from_task(context);
        crate::table::write::commit_or_buffer(&self.log, scope.as_deref(), &self.def, write, &limits)
            .await
            .map_err(Error::into_datafusion)?;
        Ok(rows as u64)
    }
}
