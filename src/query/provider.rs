//! A Strata relation as a DataFusion table: scans read the log as of the
//! statement's offset; inserts go through [`AppendSink`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::ExecutionPlan;

use super::scope::StatementScope;
use super::sink::AppendSink;
use crate::catalog::RelationDef;
use crate::error::Error;
use crate::log::Log;

#[derive(Debug)]
pub struct RelationTable {
    log: Arc<Log>,
    def: Arc<RelationDef>,
    schema: SchemaRef,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("visible_offset", &self.visible_offset())
            .finish()
    }
}

impl RelationTable {
    pub fn new(log: Arc<Log>, def: Arc<RelationDef>) -> RelationTable {
        let schema = def.full_schema();
        RelationTable { log, def, schema }
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
}

#[async_trait]
impl TableProvider for RelationTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let scope = StatementScope::from_config(state.config());
        let read_offset = scope
            .as_ref()
            .map(|s| s.read_offset)
            .unwrap_or_else(|| self.log.visible_offset());
        let mut batches = self.log.read(self.def.id, read_offset);
        if let Some(transaction) = scope.as_ref().and_then(|s| s.transaction.as_ref()) {
            let pending = transaction
                .lock()
                .expect("transaction lock")
                .pending_rows(self.def.id);
            for rows in pending {
                batches.push(with_null_system_columns(&self.schema, rows)?);
            }
        }
        let source =
            MemorySourceConfig::try_new(&[batches], self.schema.clone(), projection.cloned())?;
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(
                Error::FeatureNotSupported(format!("{insert_op} is not supported"))
                    .into_datafusion(),
            );
        }
        let sink = AppendSink::new(self.log.clone(), self.def.clone(), self.schema.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn delete_from(
        &self,
        _state: &dyn Session,
        _filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
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
