//! Column DEFAULT expressions, as DataFusion expressions: the INSERT planner
//! asks the target's provider for them when a column is left out.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::datatypes::Schema;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

use crate::catalog::{ColumnDef, RelationDef, SqlType};
use crate::error::{Error, Result};

/// Plans default expressions; they read no columns, so no catalog is needed.
static PLANNER: LazyLock<SessionState> = LazyLock::new(|| defaults_context().state());

/// DataFusion's functions and PostgreSQL's that need no database.
fn defaults_context() -> SessionContext {
    let context = SessionContext::new();
    // `'{}'::int[]` and DEFAULT '{}' read PostgreSQL's array text.
    context.add_analyzer_rule(Arc::new(crate::query::text_casts::PostgresTextCasts));
    for function in crate::query::pg_functions::standalone() {
        context.register_udf(function);
    }
    context
}

#[derive(Debug, Default)]
pub struct ColumnDefaults(HashMap<String, Expr>);

impl ColumnDefaults {
    /// The relation's defaults. They were checked at CREATE, so one that no
    /// longer plans (a function since removed) is left out and reads as NULL.
    pub fn of(def: &RelationDef) -> ColumnDefaults {
        let defaults =
            def.columns.iter().filter_map(|column| Some((column.name.clone(), default_expr(column).ok()??))).collect();
        ColumnDefaults(defaults)
    }

    pub fn get(&self, column: &str) -> Option<&Expr> {
        self.0.get(column)
    }
}

/// The column's DEFAULT as a DataFusion expression, if it has one.
pub fn default_expr(column: &ColumnDef) -> Result<Option<Expr>> {
    let Some(sql) = &column.default else {
        return Ok(None);
    };
    PLANNER.create_logical_expr(sql, &DFSchema::empty()).map(Some).map_err(Error::from_datafusion)
}

/// Checks at CREATE that every default plans and converts to its column's
/// type, so a bad default fails the DDL rather than a later INSERT.
pub async fn check_defaults(columns: &[ColumnDef]) -> Result<()> {
    let context = defaults_context();
    for column in columns {
        let Some(sql) = &column.default else { continue };
        let query = format!("SELECT CAST(({sql}) AS {})", crate::table::dml::cast_type(&column.sql_type));
        context.sql(&query).await.map_err(Error::from_datafusion)?.collect().await.map_err(Error::from_datafusion)?;
    }
    Ok(())
}

/// A physical expression for `expr` over `schema`, for a statement that
/// started at `started`: time functions (`now()`) are folded to that time
/// first, as DataFusion's query planner does (`create_physical_expr` alone
/// leaves them, and they cannot run unfolded).
pub fn physical_expr_at(
    state: &SessionState,
    expr: Expr,
    schema: &DFSchema,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<Arc<dyn PhysicalExpr>> {
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_config_options(state.config_options().clone())
            .with_schema(Arc::new(schema.clone()))
            .with_query_execution_start_time(Some(started))
            .build(),
    );
    // Coerced first, so the PostgreSQL rewrites see the final types, as
    // analyzer rules after DataFusion's coercion do in a query.
    // Literals typed as PostgreSQL types them, the result in the type it
    // was planned with (a DEFAULT's `0` for a BIGINT column stays BIGINT).
    let planned = expr.get_type(schema).ok();
    let expr = crate::query::pg_literals::pg_literals(expr).map_err(Error::from_datafusion)?;
    let expr = match planned {
        Some(planned) if expr.get_type(schema).ok().as_ref() != Some(&planned) => expr.cast_to(&planned, schema),
        _ => Ok(expr),
    }
    .map_err(Error::from_datafusion)?;
    let expr = crate::query::pg_settings::answered(expr, state.config_options()).map_err(Error::from_datafusion)?;
    let expr = crate::query::pg_arithmetic::numeric_products_first(expr, schema).map_err(Error::from_datafusion)?;
    let expr = simplifier.coerce(expr, schema).map_err(Error::from_datafusion)?;
    let zone = state.config_options().execution.time_zone.clone().unwrap_or_else(|| crate::catalog::UTC.into());
    let expr = crate::query::text_casts::postgres_text_casts(expr, schema, &zone).map_err(Error::from_datafusion)?;
    let expr = crate::query::pg_arithmetic::pg_arithmetic(expr, schema).map_err(Error::from_datafusion)?;
    let expr = simplifier.simplify(expr).map_err(Error::from_datafusion)?;
    state.create_physical_expr(expr, schema).map_err(Error::from_datafusion)
}

/// The value of `column`'s DEFAULT for a statement starting now (NULL
/// without one), in the column's type.
pub fn default_value(column: &ColumnDef) -> Result<ScalarValue> {
    let defaults = LeftOutDefaults::plan_columns(std::slice::from_ref(column), &[])?;
    let value = defaults.column_of(0, &column.sql_type, 1)?;
    ScalarValue::try_from_array(&value, 0).map_err(Error::from_datafusion)
}

/// The DEFAULTs of the columns a write leaves out, planned once per
/// statement (so `now()` is the statement's start) and evaluated per batch
/// of rows (so a volatile default such as `random()` differs row to row, as
/// in PostgreSQL).
pub struct LeftOutDefaults {
    /// Per relation column: its default, if it is left out and has one.
    exprs: Vec<Option<Arc<dyn PhysicalExpr>>>,
}

impl LeftOutDefaults {
    pub fn plan(def: &RelationDef, provided: &[usize]) -> Result<LeftOutDefaults> {
        Self::plan_columns(&def.columns, provided)
    }

    fn plan_columns(columns: &[ColumnDef], provided: &[usize]) -> Result<LeftOutDefaults> {
        let started = chrono::Utc::now();
        let mut exprs = Vec::with_capacity(columns.len());
        for (position, column) in columns.iter().enumerate() {
            let expr = match default_expr(column)? {
                Some(expr) if !provided.contains(&position) => expr,
                _ => {
                    exprs.push(None);
                    continue;
                }
            };
            let schema = DFSchema::empty();
            let expr = expr.cast_to(&column.sql_type.arrow_type(), &schema).map_err(Error::from_datafusion)?;
            exprs.push(Some(physical_expr_at(&PLANNER, expr, &schema, started)?));
        }
        Ok(LeftOutDefaults { exprs })
    }

    /// `rows` values for the column at `position`: its default, else NULLs.
    pub fn column(&self, def: &RelationDef, position: usize, rows: usize) -> Result<ArrayRef> {
        self.column_of(position, &def.columns[position].sql_type, rows)
    }

    fn column_of(&self, position: usize, sql_type: &SqlType, rows: usize) -> Result<ArrayRef> {
        let Some(expr) = &self.exprs[position] else {
            return Ok(new_null_array(&sql_type.arrow_type(), rows));
        };
        let no_columns = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        expr.evaluate(&no_columns).and_then(|value| value.into_array(rows)).map_err(Error::from_datafusion)
    }
}
