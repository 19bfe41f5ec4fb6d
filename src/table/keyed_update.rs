//! `UPDATE t SET … WHERE <every key column> = <parameter or literal>`: the
//! shape of most single-row updates, run as a lookup in the key index and
//! the SET expressions evaluated on that one row, without planning a query
//! (planning costs far more than the update). Any other UPDATE, or a value
//! this path cannot convert exactly, takes the general path in [`super::dml`].

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ParamValues, ScalarValue, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, Volatility};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{AssignmentTarget, BinaryOperator, Expr as SqlExpr, Statement, TableFactor};

use super::TableWrite;
use super::dml::{Found, cast_type, split_found};
use super::state::TableState;
use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::log::RelationId;
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
        compiled: &mut CompiledSets,
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
        let Some(version) = table.rows.get(&key) else { return Ok(Keyed::NoRow) };
        let existing = table.version_batch(version)?;
        let user = existing.project(&(0..def.columns.len()).collect::<Vec<_>>())?;
        let Some(params) = Params::of(params)? else { return Ok(Keyed::Fallback) };
        let with_params = params.appended_to(&user)?;
        // `found`: the row, its version's `_offset`, then each new value.
        let mut found = existing.columns()[..=def.columns.len()].to_vec();
        let mut found_fields: Vec<_> = existing.schema().fields()[..=def.columns.len()].to_vec();
        for (slot, sql) in self.values.iter().enumerate() {
            let Some(expr) = compiled.get(state, def, &self.qualifier, sql, &params, started) else {
                return Ok(Keyed::Fallback);
            };
            let value = expr.evaluate(&with_params).and_then(|v| v.into_array(1)).map_err(Error::from_datafusion)?;
            found_fields.push(Arc::new(Field::new(format!("set_{slot}"), value.data_type().clone(), true)));
            found.push(value);
        }
        let found = RecordBatch::try_new(Arc::new(Schema::new(found_fields)), found)?;
        let Found { deletes, expected, updated } = split_found(def, &found, &self.assigned)?;
        Ok(Keyed::Write(TableWrite { relation: def.id, deletes, expected, inserts: updated }))
    }
}

/// A session's SET expressions of keyed UPDATEs, compiled once per relation
/// definition, table alias, expression and parameter types: planning one
/// costs several times the rest of the update. An expression with a
/// function fixed at the statement's start (`now()`) is compiled per
/// statement; parameters are columns of the row it is evaluated on, so a
/// prepared statement's executions share one compiled form.
#[derive(Default)]
pub struct CompiledSets {
    by_text: HashMap<SetText, (Arc<RelationDef>, Arc<dyn PhysicalExpr>)>,
}

/// Past this many, the cache starts over (a session running ever new texts).
const COMPILED_SETS_MAX: usize = 256;

#[derive(PartialEq, Eq, Hash)]
struct SetText {
    relation: RelationId,
    qualifier: String,
    sql: String,
    params: Vec<DataType>,
}

impl CompiledSets {
    /// `sql` compiled against `def`'s row, qualified by `qualifier`, plus
    /// the parameters; `None` when this path cannot compile it (a subquery,
    /// say) and the general path must run the statement.
    fn get(
        &mut self,
        state: &SessionState,
        def: &Arc<RelationDef>,
        qualifier: &str,
        sql: &str,
        params: &Params,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Option<Arc<dyn PhysicalExpr>> {
        let text = SetText {
            relation: def.id,
            qualifier: qualifier.to_string(),
            sql: sql.to_string(),
            params: params.fields.iter().map(|f| f.data_type().clone()).collect(),
        };
        if let Some((compiled_for, expr)) = self.by_text.get(&text)
            && Arc::ptr_eq(compiled_for, def)
        {
            return Some(expr.clone());
        }
        let mut fields: Vec<(Option<TableReference>, FieldRef)> =
            def.user_schema().fields().iter().map(|f| (Some(TableReference::bare(qualifier)), f.clone())).collect();
        fields.extend(params.fields.iter().map(|f| (None, f.clone())));
        let schema = DFSchema::new_with_metadata(fields, HashMap::new()).ok()?;
        let expr = state.create_logical_expr(sql, &schema).ok()?;
        let expr = expr
            .transform(|e| match e {
                Expr::Placeholder(placeholder) => Ok(Transformed::yes(Expr::Column(Column::from_name(placeholder.id)))),
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        let fixed_at_start = expr
            .exists(|e| Ok(matches!(e, Expr::ScalarFunction(f) if f.func.signature().volatility == Volatility::Stable)))
            .ok()?;
        let compiled = physical_expr_at(state, expr, &schema, started).ok()?;
        if !fixed_at_start {
            if self.by_text.len() >= COMPILED_SETS_MAX {
                self.by_text.clear();
            }
            self.by_text.insert(text, (def.clone(), compiled.clone()));
        }
        Some(compiled)
    }
}

/// A statement's parameter values as columns named `$1`, `$2`, … (one row),
/// which compiled SET expressions read in place of the placeholders.
struct Params {
    fields: Vec<FieldRef>,
    values: Vec<ArrayRef>,
}

impl Params {
    /// `None` for named parameters (`$name`), which this path leaves to the
    /// general one.
    fn of(params: Option<&ParamValues>) -> Result<Option<Params>> {
        let values: Vec<ScalarValue> = match params {
            None => Vec::new(),
            Some(ParamValues::List(list)) => list.iter().map(|p| p.value.clone()).collect(),
            Some(ParamValues::Map(_)) => return Ok(None),
        };
        let fields = values
            .iter()
            .enumerate()
            .map(|(i, v)| Arc::new(Field::new(format!("${}", i + 1), v.data_type(), true)))
            .collect();
        let values =
            values.iter().map(|v| v.to_array_of_size(1)).collect::<Result<_, _>>().map_err(Error::from_datafusion)?;
        Ok(Some(Params { fields, values }))
    }

    /// `row` with the parameters as further columns.
    fn appended_to(&self, row: &RecordBatch) -> Result<RecordBatch> {
        if self.fields.is_empty() {
            return Ok(row.clone());
        }
        let mut fields: Vec<FieldRef> = row.schema().fields().iter().cloned().collect();
        fields.extend(self.fields.iter().cloned());
        let mut columns = row.columns().to_vec();
        columns.extend(self.values.iter().cloned());
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
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
