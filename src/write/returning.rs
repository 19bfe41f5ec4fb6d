//! RETURNING: the statement's select list evaluated over the rows it wrote
//! (inserted or new versions for INSERT and UPDATE, removed rows for DELETE),
//! before the commit, so an error in it changes nothing.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::sql::column_names::name_columns_as_postgres;

/// What a RETURNING clause produced.
pub struct Returned {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Evaluates `items` over `rows` of `def` (user columns), which the
/// statement names `qualifier`. A keyless table's row identity is left out.
pub async fn returning(
    def: &RelationDef,
    items: &[SelectItem],
    qualifier: &str,
    rows: &RecordBatch,
) -> Result<Returned> {
    let rows = &rows.project(&def.visible_positions())?;
    let context = SessionContext::new();
    let table = MemTable::try_new(rows.schema(), vec![vec![rows.clone()]]).map_err(Error::from_datafusion)?;
    context.register_table(TableReference::bare(qualifier), Arc::new(table)).map_err(Error::from_datafusion)?;
    let list: Vec<String> = items.iter().map(ToString::to_string).collect();
    let sql = format!("SELECT {} FROM \"{}\"", list.join(", "), qualifier.replace('"', "\"\""));
    let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| Error::Syntax(e.to_string()))?
        .pop()
        .ok_or_else(|| Error::Internal("RETURNING parsed to nothing".into()))?;
    if let Statement::Query(query) = &mut statement
        && let SetExpr::Select(select) = query.body.as_mut()
    {
        name_columns_as_postgres(select);
    }
    let plan = context
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(Error::from_datafusion)?;
    let frame = context.execute_logical_plan(plan).await.map_err(Error::from_datafusion)?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(Error::from_datafusion)?;
    Ok(Returned { schema, batches })
}
