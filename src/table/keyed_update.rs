//! `UPDATE t SET … WHERE <every key column> = <parameter or literal>`: the
//! shape of most single-row updates, run as a lookup in the key index and
//! the SET expressions evaluated on that one row, without planning a query
//! (planning costs far more than the update). Any other UPDATE, or a value
//! this path cannot convert exactly, takes the general path in [`super::dml`].

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ParamValues};
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::{AssignmentTarget, BinaryOperator, Expr as SqlExpr, Statement, TableFactor};

use super::TableWrite;
use super::dml::{Found, cast_type, split_found};
use super::state::TableState;
use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::query::defaults::physical_expr_at;
use crate::sql::parse::object_name;
use crate::write::values::scalar;

/// An UPDATE of one row named by its whole key.
#[derive(Debug)]
pub struct KeyedUpdate {
    /// For each key column (in key order), the value it is compared with.
    key: Vec<SqlExpr>,
    assigned: Vec<usize>,
    /// `CAST((value) AS type)` per assignment, in SQL.
    values: Vec<String>,
    qualifier: String,
}

/// What the fast path found.
pub enum Keyed {
    /// The statement needs the general path.
    Fallback,
    /// No row has that key.
    NoRow,
    Write(TableWrite),
}

impl KeyedUpdate {
    pub fn of(def: &RelationDef, statement: &Statement) -> Option<KeyedUpdate> {
        let Statement::Update(update) = statement else { return None };
        if update.from.is_some() || update.returning.is_some() || !update.table.joins.is_empty() {
            return None;
        }
        let TableFactor::Table { alias, .. } = &update.table.relation else { return None };
        let qualifier = match alias {
            Some(alias) if alias.columns.is_empty() => object_name(&alias.name.to_string()),
            Some(_) => return None,
            None => def.name.clone(),
        };
        let mut key: Vec<Option<SqlExpr>> = vec![None; def.primary_key.len()];
        let mut conjuncts = vec![update.selection.as_ref()?];
        while let Some(expr) = conjuncts.pop() {
            match expr {
                SqlExpr::BinaryOp { left, op: BinaryOperator::And, right } => {
                    conjuncts.push(left);
                    conjuncts.push(right);
                }
                SqlExpr::Nested(inner) => conjuncts.push(inner),
                SqlExpr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
                    let (column, value) = match (column_name(left, &qualifier), column_name(right, &qualifier)) {
                        (Some(column), None) => (column, right.as_ref()),
                        (None, Some(column)) => (column, left.as_ref()),
                        _ => return None,
                    };
                    let position = def.columns.iter().position(|c| c.name == column)?;
                    let slot = def.primary_key.iter().position(|k| *k == position)?;
                    if key[slot].replace(value.clone()).is_some() {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        let key = key.into_iter().collect::<Option<Vec<_>>>()?;
        let mut assigned = Vec::new();
        let mut values = Vec::new();
        for assignment in &update.assignments {
            let AssignmentTarget::ColumnName(name) = &assignment.target else { return None };
            let position = def.columns.iter().position(|c| c.name == object_name(&name.to_string()))?;
            if assigned.contains(&position) {
                return None;
            }
            values.push(format!("CAST(({}) AS {})", assignment.value, cast_type(&def.columns[position].sql_type)));
            assigned.push(position);
        }
        Some(KeyedUpdate { key, assigned, values, qualifier })
    }

    /// The write for the row, as of `table`; `state` is the database's shared
    /// session state (the statement's start time is given to the simplifier).
    pub fn write(
        &self,
        state: &SessionState,
        table: &TableState,
        def: &Arc<RelationDef>,
        params: Option<&ParamValues>,
    ) -> Result<Keyed> {
        let started = chrono::Utc::now();
        let now = started.timestamp_micros();
        let mut values = Vec::with_capacity(self.key.len());
        for (expr, position) in self.key.iter().zip(&def.primary_key) {
            let Some(value) = scalar(expr, &def.columns[*position].sql_type, params, now) else {
                return Ok(Keyed::Fallback);
            };
            values.push(value);
        }
        let key = match table.codec.key_of(&values) {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(Keyed::NoRow),
            // A value this path cannot convert: the general path reports it.
            Err(_) => return Ok(Keyed::Fallback),
        };
        if !table.rows.contains_key(&key) {
            return Ok(Keyed::NoRow);
        }
        let keys = [key];
        let existing = table.to_batch(&def.full_schema(), Some(&keys))?;
        let user = existing.project(&(0..def.columns.len()).collect::<Vec<_>>())?;
        let schema = DFSchema::try_from_qualified_schema(self.qualifier.as_str(), &user.schema())
            .map_err(Error::from_datafusion)?;
        // `found`: the row, its version's `_offset`, then each new value.
        let mut found = existing.columns()[..=def.columns.len()].to_vec();
        let mut found_fields: Vec<_> = existing.schema().fields()[..=def.columns.len()].to_vec();
        for (slot, sql) in self.values.iter().enumerate() {
            let expr = state.create_logical_expr(sql, &schema).map_err(Error::from_datafusion)?;
            let expr = with_params(expr, params)?;
            let physical = physical_expr_at(state, expr, &schema, started)?;
            let value = physical.evaluate(&user).and_then(|v| v.into_array(1)).map_err(Error::from_datafusion)?;
            found_fields.push(Arc::new(datafusion::arrow::datatypes::Field::new(
                format!("set_{slot}"),
                value.data_type().clone(),
                true,
            )));
            found.push(value);
        }
        let found = RecordBatch::try_new(Arc::new(Schema::new(found_fields)), found)?;
        let Found { deletes, expected, updated } = split_found(def, &found, &self.assigned)?;
        Ok(Keyed::Write(TableWrite { relation: def.id, deletes, expected, inserts: updated }))
    }
}

/// The column an expression names, if it is a column of the target.
fn column_name(expr: &SqlExpr, qualifier: &str) -> Option<String> {
    match expr {
        SqlExpr::Identifier(ident) => Some(object_name(&ident.to_string())),
        SqlExpr::CompoundIdentifier(parts) if parts.len() == 2 && object_name(&parts[0].to_string()) == qualifier => {
            Some(object_name(&parts[1].to_string()))
        }
        _ => None,
    }
}

/// Replaces `$n` with the statement's parameter values.
fn with_params(expr: Expr, params: Option<&ParamValues>) -> Result<Expr> {
    let Some(params) = params else { return Ok(expr) };
    expr.transform(|e| match e {
        Expr::Placeholder(placeholder) => {
            let value = params.get_placeholders_with_values(&placeholder.id)?;
            Ok(Transformed::yes(Expr::Literal(value.value, value.metadata)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .map_err(Error::from_datafusion)
}
