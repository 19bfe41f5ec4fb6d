//! Column DEFAULT expressions, as DataFusion expressions: the INSERT planner
//! asks the target's provider for them when a column is left out.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::Schema;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{ColumnarValue, Expr, ExprSchemable};
use datafusion::prelude::SessionContext;

use crate::catalog::{ColumnDef, RelationDef};
use crate::error::{Error, Result};

/// Plans default expressions; they read no columns, so no catalog is needed.
static PLANNER: LazyLock<SessionState> = LazyLock::new(|| SessionContext::new().state());

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
    let context = SessionContext::new();
    for column in columns {
        let Some(sql) = &column.default else { continue };
        let query = format!("SELECT CAST(({sql}) AS {})", crate::table::dml::cast_type(&column.sql_type));
        context.sql(&query).await.map_err(Error::from_datafusion)?.collect().await.map_err(Error::from_datafusion)?;
    }
    Ok(())
}

/// The column's DEFAULT evaluated now, in the column's type: the value a
/// COPY gives every row that leaves the column out.
pub fn evaluate_default(column: &ColumnDef) -> Result<Option<ScalarValue>> {
    let Some(expr) = default_expr(column)? else {
        return Ok(None);
    };
    let schema = DFSchema::empty();
    let expr = expr.cast_to(&column.sql_type.arrow_type(), &schema).map_err(Error::from_datafusion)?;
    let mut state = PLANNER.clone();
    state.mark_start_execution();
    let physical = state.create_physical_expr(expr, &schema).map_err(Error::from_datafusion)?;
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let value = physical.evaluate(&one_row).map_err(Error::from_datafusion)?;
    let value = match value {
        ColumnarValue::Scalar(scalar) => scalar,
        ColumnarValue::Array(array) => ScalarValue::try_from_array(&array, 0).map_err(Error::from_datafusion)?,
    };
    Ok(Some(value))
}
