//! INSERT … ON CONFLICT on a table: the proposed rows are split by whether
//! their values in the arbiter (the primary key or a UNIQUE constraint the
//! clause names; any of them for DO NOTHING without a target) are taken in
//! the statement's view. DO NOTHING drops the taken ones; DO UPDATE turns
//! each into an update of the row that holds the values,
//! its SET expressions evaluated over that row and the proposed one
//! (`EXCLUDED`), planned by DataFusion like any query.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{Column, JoinType, ParamValues, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col};
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, ConflictTarget, Expr as SqlExpr, Ident, OnConflict, OnConflictAction, VisitMut, VisitorMut,
};

use super::TableWrite;
use super::dml::{Found, cast_type, split_found};
use super::state::{Key, TableState};
use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::sql::parse::object_name;

/// The constraint an ON CONFLICT is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arbiter {
    PrimaryKey,
    /// The table's UNIQUE constraint of this number.
    Unique(usize),
    /// Every constraint (DO NOTHING without a target).
    Any,
}

impl Arbiter {
    /// Whether a violation of `constraint` is one this clause decides on
    /// (so the statement may run again on the newer state).
    pub fn decides(self, def: &RelationDef, constraint: &str) -> bool {
        match self {
            Arbiter::PrimaryKey => constraint == def.primary_key_name(),
            Arbiter::Unique(number) => def.uniques[number].name == constraint,
            Arbiter::Any => true,
        }
    }

    /// The constraints it covers on `def`: a keyless table's hidden row
    /// identity is none (its values are new with each row).
    fn constraints(self, def: &RelationDef) -> Vec<Arbiter> {
        match self {
            Arbiter::Any => {
                let key = def.row_id().is_none().then_some(Arbiter::PrimaryKey);
                key.into_iter().chain((0..def.uniques.len()).map(Arbiter::Unique)).collect()
            }
            one => vec![one],
        }
    }
}

/// What to do with a proposed row whose arbiter values are taken.
#[derive(Debug, Clone)]
pub enum ConflictAction {
    DoNothing,
    /// SET column positions and expressions (SQL, target columns qualified),
    /// and the optional WHERE.
    DoUpdate {
        assigned: Vec<usize>,
        values: Vec<String>,
        selection: Option<String>,
    },
}

/// The constraint the ON CONFLICT clause names: by its columns (in any
/// order) or its name; a keyless table's hidden row identity is none.
pub fn arbiter(def: &RelationDef, on: &OnConflict) -> Result<Arbiter> {
    let declared_key = def.row_id().is_none();
    match &on.conflict_target {
        Some(ConflictTarget::Columns(columns)) => {
            let named: HashSet<String> = columns.iter().map(|c| object_name(&c.to_string())).collect();
            let names = |positions: &[usize]| -> HashSet<String> {
                positions.iter().map(|i| def.columns[*i].name.clone()).collect()
            };
            if declared_key && named == names(&def.primary_key) {
                return Ok(Arbiter::PrimaryKey);
            }
            let unique = def.uniques.iter().position(|u| names(&u.columns) == named);
            unique.map(Arbiter::Unique).ok_or(Error::InvalidColumnReference)
        }
        Some(ConflictTarget::OnConstraint(name)) => {
            let name = object_name(&name.to_string());
            if declared_key && name == def.primary_key_name() {
                return Ok(Arbiter::PrimaryKey);
            }
            let unique = def.uniques.iter().position(|u| u.name == name && !u.index_only);
            unique.map(Arbiter::Unique).ok_or_else(|| {
                Error::UndefinedObject(format!("constraint \"{name}\" for table \"{}\" does not exist", def.name))
            })
        }
        None if matches!(on.action, OnConflictAction::DoUpdate(_)) => {
            Err(Error::Malformed("ON CONFLICT DO UPDATE requires inference specification or constraint name".into()))
        }
        None => Ok(Arbiter::Any),
    }
}

/// Resolves the SET targets of the ON CONFLICT clause. `qualifier` is how
/// the statement names the target (alias or name).
pub fn conflict_action(def: &RelationDef, on: &OnConflict, qualifier: &str) -> Result<ConflictAction> {
    let OnConflictAction::DoUpdate(update) = &on.action else {
        return Ok(ConflictAction::DoNothing);
    };
    let mut assigned = Vec::new();
    let mut values = Vec::new();
    for assignment in &update.assignments {
        let AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(Error::FeatureNotSupported("SET (a, b) = … is not supported yet".into()));
        };
        let column = object_name(&name.to_string());
        let position = def.columns.iter().position(|c| c.name == column).ok_or_else(|| {
            Error::UndefinedColumn(format!("column \"{column}\" of relation \"{}\" does not exist", def.name))
        })?;
        if assigned.contains(&position) {
            return Err(Error::DuplicateColumn(column));
        }
        let value = qualify(def, qualifier, &assignment.value);
        values.push(format!("CAST(({value}) AS {})", cast_type(&def.columns[position].sql_type)));
        assigned.push(position);
    }
    let selection = update.selection.as_ref().map(|s| qualify(def, qualifier, s).to_string());
    Ok(ConflictAction::DoUpdate { assigned, values, selection })
}

/// A bare column name in DO UPDATE means the existing row, as in PostgreSQL;
/// it is qualified so it cannot be confused with `EXCLUDED`'s column.
fn qualify(def: &RelationDef, qualifier: &str, expr: &SqlExpr) -> SqlExpr {
    struct Qualify<'a> {
        def: &'a RelationDef,
        qualifier: &'a str,
    }
    impl VisitorMut for Qualify<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            if let SqlExpr::Identifier(ident) = expr
                && self.def.columns.iter().any(|c| c.name == object_name(&ident.to_string()))
            {
                *expr = SqlExpr::CompoundIdentifier(vec![Ident::with_quote('"', self.qualifier), ident.clone()]);
            }
            ControlFlow::Continue(())
        }
    }
    let mut expr = expr.clone();
    let _ = expr.visit(&mut Qualify { def, qualifier });
    expr
}

/// Each proposed row's values in one constraint (`None`: a NULL, which
/// conflicts with nothing) and the key of the row that holds them now.
fn held_values(table: &TableState, constraint: Arbiter, proposed: &RecordBatch) -> Result<Vec<Held>> {
    Ok(match constraint {
        Arbiter::Unique(number) => {
            let index = &table.uniques[number];
            let values = table.codec.unique_values(number, proposed)?;
            values
                .into_iter()
                .map(|value| Held { holder: value.as_ref().and_then(|v| index.get(v).cloned()), value })
                .collect()
        }
        _ => {
            let keys = table.codec.keys(proposed)?;
            keys.into_iter()
                .map(|key| Held { holder: table.rows.contains_key(&key).then(|| key.clone()), value: Some(key) })
                .collect()
        }
    })
}

struct Held {
    value: Option<Key>,
    holder: Option<Key>,
}

/// The write for `proposed` (user columns) under `action` on `arbiter`, and
/// the rows the statement inserted or updated (what RETURNING reports).
#[allow(clippy::too_many_arguments)]
pub async fn resolve(
    state: &SessionState,
    table: &TableState,
    def: &Arc<RelationDef>,
    proposed: RecordBatch,
    arbiter: Arbiter,
    action: &ConflictAction,
    qualifier: &str,
    params: Option<&ParamValues>,
) -> Result<(TableWrite, RecordBatch)> {
    let empty = RecordBatch::new_empty(def.user_schema());
    let (assigned, values, selection) = match action {
        ConflictAction::DoNothing => {
            // A row taking values held now, or by a row proposed before it
            // and not left out itself, is left out (PostgreSQL goes row by row).
            let held: Vec<Vec<Held>> = arbiter
                .constraints(def)
                .into_iter()
                .map(|constraint| held_values(table, constraint, &proposed))
                .collect::<Result<_>>()?;
            let mut taken: Vec<HashSet<Key>> = vec![HashSet::new(); held.len()];
            let mut fresh = Vec::new();
            for row in 0..proposed.num_rows() {
                let conflicts = held.iter().zip(&taken).any(|(held, taken)| {
                    held[row].holder.is_some() || held[row].value.as_ref().is_some_and(|v| taken.contains(v))
                });
                if !conflicts {
                    for (held, taken) in held.iter().zip(&mut taken) {
                        taken.extend(held[row].value.clone());
                    }
                    fresh.push(row as u32);
                }
            }
            let inserts = take_record_batch(&proposed, &UInt32Array::from(fresh))?;
            let write = TableWrite { relation: def.id, deletes: empty, expected: Vec::new(), inserts: inserts.clone() };
            return Ok((write, inserts));
        }
        ConflictAction::DoUpdate { assigned, values, selection } => (assigned, values, selection),
    };
    let held = held_values(table, arbiter, &proposed)?;
    let mut seen = HashSet::new();
    if let Some(row) = (0..held.len()).find(|&i| held[i].value.as_ref().is_some_and(|v| !seen.insert(v.clone()))) {
        let values = match arbiter {
            Arbiter::Unique(number) => table.codec.describe_unique(number, &proposed, row),
            _ => table.codec.describe_key(&proposed, row),
        };
        return Err(Error::CardinalityViolation(format!(
            "ON CONFLICT DO UPDATE command cannot affect row a second time ({values} is proposed twice); \
             ensure that no rows proposed for insertion within the same command have duplicate constrained values"
        )));
    }
    let (taken, fresh): (Vec<usize>, Vec<usize>) = (0..held.len()).partition(|&i| held[i].holder.is_some());
    let indices = |positions: &[usize]| UInt32Array::from(positions.iter().map(|&i| i as u32).collect::<Vec<_>>());
    let inserts = take_record_batch(&proposed, &indices(&fresh))?;
    if taken.is_empty() {
        let write = TableWrite { relation: def.id, deletes: empty, expected: Vec::new(), inserts: inserts.clone() };
        return Ok((write, inserts));
    }
    let taken_keys: Vec<Key> = taken.iter().filter_map(|&i| held[i].holder.clone()).collect();
    let existing = table.to_batch(&def.full_schema(), Some(&taken_keys))?;
    let excluded = take_record_batch(&proposed, &indices(&taken))?;
    let found =
        evaluate_updates(state, def, existing, excluded, values, selection.as_deref(), qualifier, params).await?;

    let Found { deletes, expected, updated } = split_found(def, &found, assigned)?;
    let inserts = concat_batches(&def.user_schema(), [&inserts, &updated])?;
    Ok((TableWrite { relation: def.id, deletes, expected, inserts: inserts.clone() }, inserts))
}

/// Joins each existing row with its proposed row (`EXCLUDED`), keeps those
/// passing the WHERE, and selects the existing row, its `_offset` and the
/// SET values.
#[allow(clippy::too_many_arguments)]
async fn evaluate_updates(
    state: &SessionState,
    def: &RelationDef,
    existing: RecordBatch,
    excluded: RecordBatch,
    values: &[String],
    selection: Option<&str>,
    qualifier: &str,
    params: Option<&ParamValues>,
) -> Result<RecordBatch> {
    const EXISTING_ROW: &str = "__strata_existing_row";
    const EXCLUDED_ROW: &str = "__strata_excluded_row";
    let context = SessionContext::new_with_state(state.clone());
    let existing = with_row_numbers(existing, EXISTING_ROW)?;
    let excluded = with_row_numbers(excluded, EXCLUDED_ROW)?;
    let df = |e: datafusion::error::DataFusionError| Error::from_datafusion(e);
    let scan = |batch: RecordBatch, alias: &str| -> datafusion::error::Result<LogicalPlan> {
        let plan = context.read_batch(batch)?.into_unoptimized_plan();
        LogicalPlanBuilder::from(plan).alias(TableReference::bare(alias))?.build()
    };
    let on = (
        vec![Column::new(Some(TableReference::bare(qualifier)), EXISTING_ROW)],
        vec![Column::new(Some(TableReference::bare("excluded")), EXCLUDED_ROW)],
    );
    let plan = LogicalPlanBuilder::from(scan(existing, qualifier).map_err(df)?)
        .join(scan(excluded, "excluded").map_err(df)?, JoinType::Inner, on, None)
        .and_then(LogicalPlanBuilder::build)
        .map_err(df)?;
    let mut joined = DataFrame::new(context.state(), plan);
    if let Some(selection) = selection {
        let filter = joined.parse_sql_expr(selection).map_err(df)?;
        joined = joined.filter(filter).map_err(df)?;
    }
    let mut select: Vec<_> = def
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .chain([crate::catalog::OFFSET_COLUMN])
        .map(|name| col(Column::new(Some(TableReference::bare(qualifier)), name)))
        .collect();
    for (slot, value) in values.iter().enumerate() {
        select.push(joined.parse_sql_expr(value).map_err(df)?.alias(format!("__strata_set_{slot}")));
    }
    let mut result = joined.select(select).map_err(df)?;
    if let Some(params) = params {
        result = result.with_param_values(params.clone()).map_err(df)?;
    }
    let schema = Arc::new(result.schema().as_arrow().clone());
    let batches = result.collect().await.map_err(df)?;
    Ok(concat_batches(&schema, &batches)?)
}

fn with_row_numbers(batch: RecordBatch, name: &str) -> Result<RecordBatch> {
    let numbers = UInt32Array::from((0..batch.num_rows() as u32).collect::<Vec<_>>());
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(name, DataType::UInt32, false));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(numbers));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}
