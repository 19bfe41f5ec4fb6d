//! Where INSERT rows go: checked against the relation's rules, then appended
//! as one commit (or buffered in the session's open transaction).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result as DfResult;
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;

use super::scope::StatementScope;
use crate::catalog::RelationDef;
use crate::error::Error;
use crate::log::Log;
use crate::write::{Limits, append_or_buffer, check_rows, user_columns};

#[derive(Debug)]
pub struct AppendSink {
    log: Arc<Log>,
    def: Arc<RelationDef>,
    /// The full schema with every field nullable: NOT NULL is checked by
    /// [`check_rows`], which names the column the way PostgreSQL does.
    schema: SchemaRef,
}

impl AppendSink {
    pub fn new(log: Arc<Log>, def: Arc<RelationDef>, full_schema: SchemaRef) -> AppendSink {
        let fields: Vec<_> = full_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        AppendSink { log, def, schema: Arc::new(Schema::new(fields)) }
    }
}

impl DisplayAs for AppendSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppendSink: relation={}", self.def.name)
    }
}

#[async_trait]
impl DataSink for AppendSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(&self, mut data: SendableRecordBatchStream, context: &Arc<TaskContext>) -> DfResult<u64> {
        let scope = StatementScope::from_task(context);
        let limits = context.session_config().get_extension::<Limits>().unwrap_or_default();
        let mut batches: Vec<RecordBatch> = Vec::new();
        let (mut rows, mut bytes) = (0usize, 0usize);
        while let Some(batch) = data.next().await {
            let batch = user_columns(&self.def, batch?).map_err(Error::into_datafusion)?;
            let batch = check_rows(&self.def, batch).map_err(Error::into_datafusion)?;
            rows += batch.num_rows();
            bytes += batch.get_array_memory_size();
            limits.check_statement(rows, bytes).map_err(Error::into_datafusion)?;
            batches.push(batch);
        }
        if rows == 0 {
            return Ok(0);
        }
        let rows_batch = datafusion::arrow::compute::concat_batches(&self.def.user_schema(), &batches)?;
        let transaction = scope.as_ref().and_then(|s| s.transaction.as_ref());
        append_or_buffer(&self.log, transaction, &self.def, rows_batch, &limits)
            .await
            .map_err(Error::into_datafusion)?;
        Ok(rows as u64)
    }
}
