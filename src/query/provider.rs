//! A Strata relation as a DataFusion table: scans read sealed segments
//! (Parquet, through the object store) and the in-memory tail as of the
//! statement's offset, skipping what `_offset`/`_ts` filters rule out;
//! inserts go through [`AppendSink`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, AsArray, new_null_array};
use datafusion::arrow::datatypes::{Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::metadata::FieldMetadata;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{BinaryExpr, Literal, col};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use std::collections::BTreeMap;

use super::defaults::ColumnDefaults;
use super::prune::Bounds;
use super::read_types::{conform, read_schema, read_type};
use super::scope::StatementScope;
use super::sink::AppendSink;
use crate::catalog::{OFFSET_COLUMN, RelationDef};
use crate::error::Error;
use crate::log::layout::names_as_of;
use crate::log::{Log, Offset, STORE_URL};

/// A relation's log: a stream's events (its `SELECT *`), or, for
/// `changes()`, any relation's change events with `_diff`.
#[derive(Debug)]
pub struct RelationTable {
    log: Arc<Log>,
    def: Arc<RelationDef>,
    /// What the log stores: user columns, `_offset`, `_ts` (+ `_diff` for a table).
    stored: SchemaRef,
    /// `stored` as queries read it (see [`read_types`]).
    read: SchemaRef,
    schema: SchemaRef,
    /// Set for `changes()`: events with offsets in `(after, upto]`.
    changes: Option<ChangeRange>,
    defaults: ColumnDefaults,
}

#[derive(Debug, Clone, Copy)]
pub struct ChangeRange {
    pub after: Offset,
    pub upto: Option<Offset>,
}

impl RelationTable {
    pub fn new(log: Arc<Log>, def: Arc<RelationDef>) -> RelationTable {
        let schema = read_schema(&def.full_schema());
        let defaults = ColumnDefaults::of(&def);
        let stored = def.log_schema();
        RelationTable { log, read: read_schema(&stored), stored, def, schema, changes: None, defaults }
    }

    pub fn changes(log: Arc<Log>, def: Arc<RelationDef>, range: ChangeRange) -> RelationTable {
        let schema = read_schema(&def.changes_schema());
        let stored = def.log_schema();
        let read = read_schema(&stored);
        RelationTable { log, stored, read, def, schema, changes: Some(range), defaults: Default::default() }
    }

    fn append_only_error(&self, verb: &str) -> datafusion::error::DataFusionError {
        Error::WrongObjectType(format!(
            "cannot {verb} \"{}\": it is a {}, and {}s are append-only",
            self.def.name,
            self.def.kind.noun(),
            self.def.kind.noun()
        ))
        .into_datafusion()
    }

    /// The sealed part of a scan: the segments' Parquet files. Rows past
    /// `read_offset` (a seal that ran after the statement started) are
    /// filtered out.
    async fn scan_segments(
        &self,
        state: &dyn Session,
        segments: &[Arc<crate::log::SegmentMeta>],
        read_offset: Offset,
        projection: Option<&Vec<usize>>,
        partitions: usize,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        for segment in segments {
            segment.verify(self.log.store()).await.map_err(|e| Error::from(e).into_datafusion())?;
        }
        let straddles = segments.iter().any(|s| s.last_offset > read_offset);
        // A segment holds the columns of the time it was written: segments
        // from before an ALTER … ADD / DROP / RENAME COLUMN are read, era by
        // era, with the names of their time and laid out in today's columns.
        let mut eras: BTreeMap<Vec<Option<String>>, Vec<Arc<crate::log::SegmentMeta>>> = BTreeMap::new();
        for segment in segments {
            eras.entry(names_as_of(&self.def, segment.written_at)).or_default().push(segment.clone());
        }
        let today: Vec<Option<String>> = self.def.columns.iter().map(|c| Some(c.name.clone())).collect();
        let whole = straddles || eras.keys().any(|names| *names != today);
        let mut plans = Vec::with_capacity(eras.len());
        for (names, files) in &eras {
            let names = (*names != today).then_some(names.as_slice());
            let projection = if whole { None } else { projection };
            plans.push(self.scan_files(state, files, names, projection, partitions)?);
        }
        let plan = match plans.len() {
            1 => plans.pop().expect("one plan"),
            _ => UnionExec::try_new(plans)?,
        };
        if !whole {
            return Ok(plan);
        }
        let filtered: Arc<dyn ExecutionPlan> = if straddles {
            let visible = Arc::new(BinaryExpr::new(
                col(OFFSET_COLUMN, &self.read)?,
                Operator::LtEq,
                Arc::new(Literal::new(ScalarValue::Int64(Some(read_offset.0 as i64)))),
            ));
            Arc::new(FilterExec::try_new(visible, plan)?)
        } else {
            plan
        };
        let indices: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.stored.fields().len()).collect());
        let columns = indices
            .iter()
            .map(|i| {
                let name = self.stored.field(*i).name().clone();
                Ok((col(&name, &self.read)?, name))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(columns, filtered)?))
    }

    /// Segment files of one era as the stored schema: with `names` (the
    /// columns' names then, `None` for one not yet added) when they differ
    /// from today's; otherwise `projection` is pushed into the scan.
    fn scan_files(
        &self,
        state: &dyn Session,
        segments: &[Arc<crate::log::SegmentMeta>],
        names: Option<&[Option<String>]>,
        projection: Option<&Vec<usize>>,
        partitions: usize,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let n = self.def.columns.len();
        let read_schema: SchemaRef = match names {
            None => self.read.clone(),
            Some(names) => {
                let mut fields: Vec<Field> = names
                    .iter()
                    .zip(&self.def.columns)
                    .filter_map(|(name, c)| {
                        // The column's field (its JSONB mark included) under its name then.
                        name.as_ref().map(|name| {
                            c.field()
                                .with_name(name)
                                .with_data_type(read_type(&c.sql_type.arrow_type()))
                                .with_nullable(true)
                        })
                    })
                    .collect();
                fields.extend(self.read.fields()[n..].iter().map(|f| f.as_ref().clone()));
                Arc::new(Schema::new(fields))
            }
        };
        // Each file carries its segment's metadata: while a plan holds it, a
        // seal does not delete the file (see `Log::delete_unread`).
        let files: Vec<PartitionedFile> =
            segments.iter().map(|s| PartitionedFile::new(s.path.clone(), s.bytes).with_extension(s.clone())).collect();
        let groups = FileGroup::new(files).split_files(partitions.max(1));
        // As DataFusion's own Parquet tables do: the session's Parquet
        // options, and footers read once and cached.
        let store_url = ObjectStoreUrl::parse(STORE_URL)?;
        let store = state.runtime_env().object_store(&store_url)?;
        let footers = state.runtime_env().cache_manager.get_file_metadata_cache();
        let source = ParquetSource::new(read_schema.clone())
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(store, footers)));
        let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
            .with_file_groups(groups)
            .with_projection_indices(if names.is_none() { projection.cloned() } else { None })?
            .build();
        let plan: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        let Some(names) = names else { return Ok(plan) };
        let columns = self
            .read
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let expr: Arc<dyn PhysicalExpr> = match names.get(i) {
                    Some(Some(name)) => col(name, &read_schema)?,
                    Some(None) => {
                        let missing = crate::log::layout::missing_array(&self.def.columns[i], 1)
                            .map_err(|e| Error::from(e).into_datafusion())?;
                        let value = ScalarValue::try_from_array(&missing, 0)?.cast_to(field.data_type())?;
                        let metadata = FieldMetadata::new_from_field(field);
                        Arc::new(Literal::new_with_metadata(value, (!metadata.is_empty()).then_some(metadata)))
                    }
                    None => col(field.name(), &read_schema)?,
                };
                Ok((expr, field.name().clone()))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(columns, plan)?))
    }
}

impl RelationTable {
    /// The stored rows with offsets in `(after, read_offset]` (coarsely: whole
    /// segments and batches are skipped; the caller filters `after` exactly),
    /// plus the transaction's own appends.
    async fn scan_log(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        read_offset: Offset,
        after: Offset,
        transaction: Option<Arc<std::sync::Mutex<super::scope::Transaction>>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let bounds = Bounds::from_filters(filters);
        let snapshot = self.log.read(self.def.id, read_offset);

        let segments: Vec<_> = snapshot
            .segments
            .iter()
            .filter(|s| s.last_offset > after)
            .filter(|s| bounds.overlaps((s.first_offset.0 as i64, s.last_offset.0 as i64), (s.min_ts.0, s.max_ts.0)))
            .cloned()
            .collect();
        // A transaction block that altered the relation reads the log's
        // rows laid out for its own definition.
        let altered = self.def.kind == crate::catalog::RelationKind::Stream
            && self.log.catalog().by_id(self.def.id).is_some_and(|def| def.columns != self.def.columns);
        let laid_out: Vec<RecordBatch> = match altered {
            true => {
                let columns: Vec<usize> = (0..self.stored.fields().len()).collect();
                let adapt = |batch: &RecordBatch| crate::log::layout::adapt(&self.def, batch, read_offset, &columns);
                snapshot
                    .batches
                    .iter()
                    .map(adapt)
                    .collect::<Result<_, _>>()
                    .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?
            }
            false => snapshot.batches.clone(),
        };
        let mut batches: Vec<RecordBatch> = laid_out
            .iter()
            .zip(&snapshot.batch_ts)
            .filter(|(batch, ts)| {
                let offsets = batch.column(self.def.columns.len()).as_primitive::<Int64Type>();
                let range = (offsets.value(0), offsets.value(offsets.len() - 1));
                range.1 > after.0 as i64 && bounds.overlaps(range, (ts.0, ts.0))
            })
            .map(|(batch, _)| batch.clone())
            .collect();
        if let Some(transaction) = transaction {
            let pending = transaction.lock().expect("transaction lock").pending_rows(self.def.id);
            for rows in pending {
                batches.push(with_null_system_columns(&self.stored, rows)?);
            }
        }
        // Projected first, so only the columns read are cast.
        let read = match projection {
            Some(projection) => Arc::new(self.read.project(projection)?),
            None => self.read.clone(),
        };
        let batches = batches
            .iter()
            .map(|batch| {
                let batch = match projection {
                    Some(projection) => batch.project(projection)?,
                    None => batch.clone(),
                };
                conform(&batch, &read)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let batches_empty = batches.is_empty();
        let tail_source = MemorySourceConfig::try_new(&[batches], read, None)?;
        let tail: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(tail_source);
        if segments.is_empty() {
            return Ok(tail);
        }
        let partitions = state.config().target_partitions();
        let sealed = self.scan_segments(state, &segments, read_offset, projection, partitions).await?;
        if batches_empty {
            return Ok(sealed);
        }
        UnionExec::try_new(vec![sealed, tail])
    }
}

#[async_trait]
impl TableProvider for RelationTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: segments and batches are skipped by range, and DataFusion
        // still applies the filter to the rows that remain.
        Ok(filters
            .iter()
            .map(|f| {
                if Bounds::understands(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let scope = StatementScope::from_config(state.config());
        let mut read_offset = scope.as_ref().map(|s| s.read_offset).unwrap_or_else(|| self.log.visible_offset());
        let Some(range) = self.changes else {
            let transaction = scope.as_ref().and_then(|s| s.transaction.clone());
            return self.scan_log(state, projection, filters, read_offset, Offset::ZERO, transaction).await;
        };
        if let Some(upto) = range.upto {
            read_offset = read_offset.min(upto);
        }
        // The stored columns, then `_diff` (stored for a table, always +1 for a stream).
        let stored_count = self.stored.fields().len();
        let mut plan = self.scan_log(state, None, filters, read_offset, range.after, None).await?;
        if range.after > Offset::ZERO {
            let after = Arc::new(BinaryExpr::new(
                col(OFFSET_COLUMN, &self.read)?,
                Operator::Gt,
                Arc::new(Literal::new(ScalarValue::Int64(Some(range.after.0 as i64)))),
            ));
            plan = Arc::new(FilterExec::try_new(after, plan)?);
        }
        let indices: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let columns = indices
            .iter()
            .map(|i| {
                let name = self.schema.field(*i).name().clone();
                let expr: Arc<dyn PhysicalExpr> = if *i < stored_count {
                    col(&name, &self.read)?
                } else {
                    Arc::new(Literal::new(ScalarValue::Int64(Some(1))))
                };
                Ok((expr, name))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(columns, plan)?))
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
        let sink = AppendSink::new(self.log.clone(), self.def.clone(), self.schema.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn delete_from(&self, _state: &dyn Session, _filters: Vec<Expr>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(self.append_only_error("DELETE from"))
    }

    async fn update(
        &self,
        _state: &dyn Session,
        _assignments: Vec<(String, Expr)>,
        _filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(self.append_only_error("UPDATE"))
    }

    async fn truncate(&self, _state: &dyn Session) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(self.append_only_error("TRUNCATE"))
    }
}

/// Rows of an open transaction have no offset or commit time yet.
fn with_null_system_columns(schema: &SchemaRef, rows: RecordBatch) -> DfResult<RecordBatch> {
    let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
    for field in &schema.fields()[columns.len()..] {
        columns.push(new_null_array(field.data_type(), rows.num_rows()));
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
