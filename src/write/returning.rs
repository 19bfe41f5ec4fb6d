//! RETURNING: the statement's select list evaluated over the rows it wrote
//! (inserted or new versions for INSERT and UPDATE, removed rows for DELETE),
//! before the commit, so an error in it changes nothing.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ParamValues;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::log::ReadView;
use crate::sql::column_names::name_columns_as_postgres;

/// What a RETURNING clause produced.
pub struct Returned {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The select list's plan, with its parameters still open: what a
    /// Describe learns their types from (`RETURNING v + $3`).
    pub plan: LogicalPlan,
}

/// Evaluates `items` over `rows` of `def` (user columns), which the
/// statement names `qualifier`. A keyless table's row identity is left out.
/// It runs in `state`, the statement's (its session's zone, Strata's
/// functions, PostgreSQL's integer literals: `RETURNING v + 1` of an INT
/// overflows as PostgreSQL's does), with the statement's `params`; a
/// subquery in it reads what the statement reads.
#[allow(clippy::too_many_arguments)]
pub async fn returning(
    state: &SessionState,
    view: &ReadView,
    def: &RelationDef,
    items: &[SelectItem],
    qualifier: &str,
    rows: &RecordBatch,
    params: Option<&ParamValues>,
) -> Result<Returned> {
    let rows = &rows.project(&def.visible_positions())?;
    let table = MemTable::try_new(rows.schema(), vec![vec![rows.clone()]]).map_err(Error::from_datafusion)?;
    let mut state = state.clone();
    state.register_udtf(WRITTEN_ROWS, Arc::new(WrittenRows(Arc::new(table))));
    let list: Vec<String> = items.iter().map(ToString::to_string).collect();
    let sql = format!("SELECT {} FROM {WRITTEN_ROWS}() AS \"{}\"", list.join(", "), qualifier.replace('"', "\"\""));
    let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| Error::Syntax(e.to_string()))?
        .pop()
        .ok_or_else(|| Error::Internal("RETURNING parsed to nothing".into()))?;
    if let Statement::Query(query) = &mut statement
        && let SetExpr::Select(select) = query.body.as_mut()
    {
        name_columns_as_postgres(select);
    }
    // Read as a SELECT's list is (`x::jsonb`, `ARRAY(SELECT …)`, …).
    crate::sql::rewrite::rewrite(&mut statement, &view.catalog, view.offset, &Default::default());
    let plan =
        state.statement_to_plan(DfStatement::Statement(Box::new(statement))).await.map_err(Error::from_datafusion)?;
    let open = crate::query::pg_literals::narrow_integer_literals(plan).map_err(Error::from_datafusion)?;
    let plan = match params {
        Some(params) => open.clone().replace_params_with_values(params).map_err(Error::from_datafusion)?,
        None => open.clone(),
    };
    let frame = DataFrame::new(state, plan);
    let schema = Arc::new(frame.schema().as_arrow().clone());
    // No rows (a Describe, or a write that matched none): nothing to compute,
    // and a parameter has no value yet.
    let batches = match rows.num_rows() {
        0 => Vec::new(),
        _ => frame.collect().await.map_err(Error::from_datafusion)?,
    };
    Ok(Returned { schema, batches, plan: open })
}

/// The table function RETURNING's query reads the written rows from: a
/// name no catalog holds, in a copy of the statement's state (rebuilding
/// a state with another catalog would register its functions again, in
/// no set order).
const WRITTEN_ROWS: &str = "strata_written_rows";

#[derive(Debug)]
struct WrittenRows(Arc<MemTable>);

impl TableFunctionImpl for WrittenRows {
    fn call_with_args(&self, _: TableFunctionArgs) -> datafusion::common::Result<Arc<dyn TableProvider>> {
        Ok(self.0.clone())
    }
}
