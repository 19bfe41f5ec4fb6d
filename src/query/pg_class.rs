//! psql's `\dm` lists the relations whose `pg_class.relkind` is 'm'. The
//! pg_catalog emulation (datafusion-pg-catalog) derives relkind from
//! DataFusion's table types, which have no materialized view: this wraps its
//! `pg_catalog` schema so that `pg_class` says 'm' for continuous views
//! (and `\dt` no longer lists them as tables).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{ExecutionPlan, collect};

use crate::log::Log;

/// The emulated `pg_catalog` schema, with `pg_class` knowing Strata's views.
#[derive(Debug)]
pub struct PgCatalogWithViews {
    inner: Arc<dyn SchemaProvider>,
    log: Arc<Log>,
}

impl PgCatalogWithViews {
    pub fn new(inner: Arc<dyn SchemaProvider>, log: Arc<Log>) -> PgCatalogWithViews {
        PgCatalogWithViews { inner, log }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogWithViews {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.inner.table(name).await? {
            Some(inner) if name == "pg_class" => Ok(Some(Arc::new(PgClass { inner, log: self.log.clone() }))),
            other => Ok(other),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

#[derive(Debug)]
struct PgClass {
    inner: Arc<dyn TableProvider>,
    log: Arc<Log>,
}

#[async_trait]
impl TableProvider for PgClass {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    /// Reads the emulation's rows (one per relation: few) and marks views.
    /// Filters are left to DataFusion, so they see the corrected relkind.
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, None, &[], None).await?;
        let batches = collect(plan, state.task_ctx()).await?;
        let views: HashSet<String> =
            self.log.catalog().relations().filter(|d| d.view.is_some()).map(|d| d.name.clone()).collect();
        let schema = self.inner.schema();
        let (name_at, kind_at) = (schema.index_of("relname")?, schema.index_of("relkind")?);
        let mut marked = Vec::with_capacity(batches.len());
        for batch in batches {
            let names = batch.column(name_at).as_string::<i32>();
            let kinds = batch.column(kind_at).as_string::<i32>();
            let relkind: StringArray = names
                .iter()
                .zip(kinds.iter())
                .map(|(name, kind)| if name.is_some_and(|n| views.contains(n)) { Some("m") } else { kind })
                .collect();
            let mut columns = batch.columns().to_vec();
            columns[kind_at] = Arc::new(relkind);
            marked.push(RecordBatch::try_new(batch.schema(), columns)?);
        }
        let source = MemorySourceConfig::try_new(&[marked], schema, projection.cloned())?.with_limit(limit);
        Ok(DataSourceExec::from_data_source(source))
    }
}
