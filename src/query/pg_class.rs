//! Corrections to the pg_catalog emulation (datafusion-pg-catalog), which
//! derives the catalog from DataFusion's tables and schemas:
//! - psql's `\dm` lists the relations whose `pg_class.relkind` is 'm', and
//!   DataFusion's table types have no materialized view: `pg_class` says 'm'
//!   for continuous views (and `\dt` no longer lists them as tables);
//! - `_offset`, `_ts`, `_diff` and a keyless table's `_rowid` are columns of
//!   every scan, but system columns (shown when named, not by `*`):
//!   `pg_attribute` numbers them below zero, as PostgreSQL numbers its own
//!   system columns, so `\d` and drivers listing columns leave them out;
//! - tables' primary keys and CHECKs (`pg_constraints.rs`);
//! - columns' declared types (`character varying(20)`, `numeric(12,2)`) and
//!   DEFAULTs (`pg_columns.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{ExecutionPlan, collect};

use super::pg_sizes::RelationOids;
use super::{pg_columns, pg_constraints};
use crate::log::Log;

/// The emulated `pg_catalog` schema, with `pg_class` knowing Strata's views.
#[derive(Debug)]
pub struct PgCatalogWithViews {
    inner: Arc<dyn SchemaProvider>,
    log: Arc<Log>,
    /// Filled as `pg_class` is read, for the size functions.
    oids: RelationOids,
}

impl PgCatalogWithViews {
    pub fn new(inner: Arc<dyn SchemaProvider>, log: Arc<Log>, oids: RelationOids) -> PgCatalogWithViews {
        PgCatalogWithViews { inner, log, oids }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogWithViews {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let correction = match name {
            "pg_class" => Correction::Class,
            "pg_attribute" => Correction::Attribute,
            "pg_index" => Correction::Index,
            "pg_constraint" => Correction::Constraint,
            "pg_attrdef" => Correction::Default,
            _ => return self.inner.table(name).await,
        };
        let Some(table) = self.inner.table(name).await? else { return Ok(None) };
        let pg_catalog = self.inner.clone();
        Ok(Some(Arc::new(Corrected { table, pg_catalog, log: self.log.clone(), oids: self.oids.clone(), correction })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// What a corrected table changes in the emulation's rows.
#[derive(Debug, Clone, Copy)]
enum Correction {
    /// Views marked, primary key indexes and CHECK counts added.
    Class,
    /// System columns numbered below zero, declared types and `atthasdef`.
    Attribute,
    /// Primary keys added (`pg_constraints.rs`).
    Index,
    /// Primary keys and CHECKs added.
    Constraint,
    /// Column DEFAULTs added (`pg_columns.rs`).
    Default,
}

/// One of the emulation's tables, its rows corrected.
#[derive(Debug)]
struct Corrected {
    table: Arc<dyn TableProvider>,
    /// The emulation's schema, to look relations' oids up in its `pg_class`.
    pg_catalog: Arc<dyn SchemaProvider>,
    log: Arc<Log>,
    oids: RelationOids,
    correction: Correction,
}

impl Corrected {
    /// Relations' oids and namespaces, as the emulation's `pg_class` gives them.
    async fn classes(&self, state: &dyn Session) -> DfResult<HashMap<String, pg_constraints::ClassRow>> {
        pg_constraints::class_rows(&self.emulated("pg_class", state).await?, self.public_namespace(state).await?)
    }

    /// The oid of namespace `public`, where Strata's relations are.
    async fn public_namespace(&self, state: &dyn Session) -> DfResult<Option<i32>> {
        for batch in self.emulated("pg_namespace", state).await? {
            let names =
                datafusion::arrow::compute::cast(batch.column(batch.schema().index_of("nspname")?), &DataType::Utf8)?;
            let oids =
                datafusion::arrow::compute::cast(batch.column(batch.schema().index_of("oid")?), &DataType::Int32)?;
            let (names, oids) = (names.as_string::<i32>(), oids.as_primitive::<Int32Type>());
            if let Some(row) = (0..batch.num_rows()).find(|&row| names.is_valid(row) && names.value(row) == "public") {
                return Ok(oids.is_valid(row).then(|| oids.value(row)));
            }
        }
        Ok(None)
    }

    /// Every row of one of the emulation's own tables, uncorrected.
    async fn emulated(&self, name: &str, state: &dyn Session) -> DfResult<Vec<RecordBatch>> {
        let Some(table) = self.pg_catalog.table(name).await? else { return Ok(Vec::new()) };
        let plan = table.scan(state, None, &[], None).await?;
        collect(plan, state.task_ctx()).await
    }
}

#[async_trait]
impl TableProvider for Corrected {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        self.table.table_type()
    }

    /// Reads the emulation's rows (a few per relation) and corrects them.
    /// Filters are left to DataFusion, so they see the corrected values.
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self.table.scan(state, None, &[], None).await?;
        let mut batches = collect(plan, state.task_ctx()).await?;
        let schema = self.table.schema();
        let log = &self.log;
        let corrected = match self.correction {
            Correction::Class => {
                let public = self.public_namespace(state).await?;
                let classes = batches
                    .into_iter()
                    .map(|batch| pg_constraints::class_with_indexes(log, mark_views(log, batch, public)?, public))
                    .collect::<DfResult<Vec<_>>>()?;
                self.oids.record(&pg_constraints::class_rows(&classes, public)?);
                classes
            }
            Correction::Attribute => {
                let classes = self.classes(state).await?;
                batches
                    .into_iter()
                    .map(|batch| pg_columns::typed_attributes(log, &classes, number_system_columns(batch)?))
                    .collect::<DfResult<Vec<_>>>()?
            }
            Correction::Index => {
                batches.push(pg_constraints::index_rows(log, &self.classes(state).await?, &schema)?);
                batches
            }
            Correction::Constraint => {
                batches.push(pg_constraints::constraint_rows(log, &self.classes(state).await?, &schema)?);
                batches
            }
            Correction::Default => {
                let attributes = self.emulated("pg_attribute", state).await?;
                batches.push(pg_columns::attrdef_rows(log, &self.classes(state).await?, &attributes, &schema)?);
                batches
            }
        };
        let source = MemorySourceConfig::try_new(&[corrected], schema, projection.cloned())?.with_limit(limit);
        Ok(DataSourceExec::from_data_source(source))
    }
}

/// `pg_class` rows with relkind 'm' for continuous views.
fn mark_views(log: &Log, batch: RecordBatch, public: Option<i32>) -> DfResult<RecordBatch> {
    let views: HashSet<String> =
        log.catalog().relations().filter(|d| d.view.is_some()).map(|d| d.name.clone()).collect();
    let schema = batch.schema();
    let (name_at, kind_at) = (schema.index_of("relname")?, schema.index_of("relkind")?);
    let names = batch.column(name_at).as_string::<i32>();
    let kinds = batch.column(kind_at).as_string::<i32>();
    let ours = pg_constraints::in_namespace(&batch, public)?;
    let relkind: StringArray = names
        .iter()
        .zip(kinds.iter())
        .zip(ours)
        .map(|((name, kind), ours)| if ours && name.is_some_and(|n| views.contains(n)) { Some("m") } else { kind })
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[kind_at] = Arc::new(relkind);
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Strata's system columns, numbered as PostgreSQL numbers system columns.
const SYSTEM_ATTNUMS: [(&str, i16); 4] = [("_offset", -1), ("_ts", -2), ("_diff", -3), ("_rowid", -4)];

/// `pg_attribute` rows with Strata's system columns numbered below zero.
fn number_system_columns(batch: RecordBatch) -> DfResult<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, Int16Array};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Int16Type};
    let schema = batch.schema();
    let (name_at, number_at) = (schema.index_of("attname")?, schema.index_of("attnum")?);
    let names = cast(batch.column(name_at), &DataType::Utf8)?;
    let names = names.as_string::<i32>();
    let numbers = cast(batch.column(number_at), &DataType::Int16)?;
    let numbers = numbers.as_primitive::<Int16Type>();
    let renumbered: Int16Array = names
        .iter()
        .zip(numbers.iter())
        .map(|(name, number)| {
            let system = SYSTEM_ATTNUMS.iter().find(|(n, _)| Some(*n) == name).map(|(_, attnum)| *attnum);
            system.or(number)
        })
        .collect();
    let renumbered: ArrayRef = cast(&(Arc::new(renumbered) as ArrayRef), schema.field(number_at).data_type())?;
    let mut columns = batch.columns().to_vec();
    columns[number_at] = renumbered;
    Ok(RecordBatch::try_new(schema, columns)?)
}
