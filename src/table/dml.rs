//! UPDATE, DELETE and TRUNCATE on a table, as queries: each becomes a SELECT
//! of the target rows (with their version's `_offset`, and for UPDATE the new
//! values), planned by DataFusion like any query — so WHERE clauses, joins in
//! FROM/USING and subqueries work as they do in SELECT. The result becomes a
//! [`super::TableWrite`]: the old rows retracted, the new rows added.

use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, FromTable, SelectItem, Statement, TableFactor, UpdateTableFromKind,
};

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{Int64Type, Schema};

use crate::catalog::{RelationDef, SqlType};
use crate::error::{Error, Result};
use crate::log::Offset;
use crate::write::check_rows;

/// Prefix of the columns carrying an UPDATE's new values.
pub const SET_PREFIX: &str = "__strata_set_";

/// What a table DML statement selects, and which columns it assigns.
pub struct DmlQuery {
    pub sql: String,
    /// For UPDATE: the positions of the assigned columns, in SET order.
    pub assigned: Vec<usize>,
    /// RETURNING's select list, and how the statement names the table.
    pub returning: Option<(Vec<SelectItem>, String)>,
}

pub fn select_targets(def: &RelationDef, statement: &Statement) -> Result<DmlQuery> {
    match statement {
        Statement::Delete(delete) => {
            let from = match &delete.from {
                FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from) => from,
            };
            let target = from.first().ok_or_else(|| Error::Syntax("DELETE needs a table".into()))?;
            let qualifier = qualifier(def, &target.relation);
            let mut sql = format!("SELECT {} FROM {}", target_columns(def, &qualifier), target);
            if let Some(using) = &delete.using {
                for item in using {
                    sql.push_str(&format!(", {item}"));
                }
            }
            if let Some(selection) = &delete.selection {
                sql.push_str(&format!(" WHERE {selection}"));
            }
            let returning = delete.returning.clone().map(|items| (items, name_in_statement(def, &target.relation)));
            Ok(DmlQuery { sql, assigned: Vec::new(), returning })
        }
        Statement::Update(update) => {
            let qualifier = qualifier(def, &update.table.relation);
            let mut assigned = Vec::new();
            let mut values = Vec::new();
            for assignment in &update.assignments {
                let AssignmentTarget::ColumnName(name) = &assignment.target else {
                    return Err(Error::FeatureNotSupported("UPDATE … SET (a, b) = … is not supported yet".into()));
                };
                let column = crate::sql::parse::object_name(&name.to_string());
                let position = def.columns.iter().position(|c| c.name == column).ok_or_else(|| {
                    Error::UndefinedColumn(format!("column \"{column}\" of relation \"{}\" does not exist", def.name))
                })?;
                if assigned.contains(&position) {
                    return Err(Error::DuplicateColumn(column));
                }
                // The cast gives parameters (`SET v = $1`) the column's type.
                let sql_type = cast_type(&def.columns[position].sql_type);
                values.push(format!(
                    "CAST(({}) AS {sql_type}) AS \"{SET_PREFIX}{}\"",
                    assignment.value,
                    assigned.len()
                ));
                assigned.push(position);
            }
            let mut sql =
                format!("SELECT {}, {} FROM {}", target_columns(def, &qualifier), values.join(", "), update.table);
            match &update.from {
                Some(UpdateTableFromKind::AfterSet(items)) | Some(UpdateTableFromKind::BeforeSet(items)) => {
                    for item in items {
                        sql.push_str(&format!(", {item}"));
                    }
                }
                None => {}
            }
            if let Some(selection) = &update.selection {
                sql.push_str(&format!(" WHERE {selection}"));
            }
            let returning =
                update.returning.clone().map(|items| (items, name_in_statement(def, &update.table.relation)));
            Ok(DmlQuery { sql, assigned, returning })
        }
        Statement::Truncate(_) => Ok(DmlQuery {
            sql: format!("SELECT {} FROM \"{}\"", target_columns(def, &format!("\"{}\"", def.name)), def.name),
            assigned: Vec::new(),
            returning: None,
        }),
        other => Err(Error::Internal(format!("not a table modification: {other}"))),
    }
}

/// How the target table is named in the query: its alias, else its name.
fn qualifier(def: &RelationDef, factor: &TableFactor) -> String {
    format!("\"{}\"", name_in_statement(def, factor).replace('"', "\"\""))
}

fn name_in_statement(def: &RelationDef, factor: &TableFactor) -> String {
    match factor {
        TableFactor::Table { alias: Some(alias), .. } => crate::sql::parse::object_name(&alias.name.to_string()),
        _ => def.name.clone(),
    }
}

/// Every user column of the target, then the version's `_offset`.
fn target_columns(def: &RelationDef, qualifier: &str) -> String {
    let mut columns: Vec<String> =
        def.columns.iter().map(|c| format!("{qualifier}.\"{}\"", c.name.replace('"', "\"\""))).collect();
    columns.push(format!("{qualifier}._offset"));
    columns.join(", ")
}

/// A type name DataFusion's SQL planner accepts for a column type (the exact
/// Arrow type is restored after the query).
pub fn cast_type(sql_type: &SqlType) -> String {
    match sql_type {
        SqlType::Jsonb | SqlType::Varchar { .. } => "TEXT".into(),
        SqlType::Numeric { precision, scale } => format!("DECIMAL({precision}, {scale})"),
        SqlType::Array(element) => format!("{}[]", cast_type(element)),
        other => other.sql_name(),
    }
}

/// Rows a modification found: the current versions to retract, the offsets
/// of those versions, and (for assignments) the new versions.
pub struct Found {
    pub deletes: RecordBatch,
    pub expected: Vec<Option<Offset>>,
    pub updated: RecordBatch,
}

/// Splits `found` (user columns, the version's `_offset`, then one column
/// per assignment) into the rows to retract and their new versions, with
/// each assigned value converted to its column's type and checked.
pub fn split_found(def: &RelationDef, found: &RecordBatch, assigned: &[usize]) -> Result<Found> {
    let user_count = def.columns.len();
    let deletes = RecordBatch::try_new(def.user_schema(), found.columns()[..user_count].to_vec())?;
    let offsets = found.column(user_count).as_primitive::<Int64Type>();
    let expected = (0..offsets.len()).map(|i| (!offsets.is_null(i)).then(|| Offset(offsets.value(i) as u64))).collect();
    if assigned.is_empty() {
        return Ok(Found { deletes, expected, updated: RecordBatch::new_empty(def.user_schema()) });
    }
    let mut columns = deletes.columns().to_vec();
    let options = CastOptions { safe: false, ..Default::default() };
    for (slot, position) in assigned.iter().enumerate() {
        let target = def.columns[*position].sql_type.arrow_type();
        columns[*position] = cast_with_options(found.column(user_count + 1 + slot), &target, &options)?;
    }
    let nullable: Vec<_> = def.user_schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    let updated = RecordBatch::try_new(Arc::new(Schema::new(nullable)), columns)?;
    let updated = check_rows(def, updated)?;
    let updated = RecordBatch::try_new(def.user_schema(), updated.columns().to_vec())?;
    Ok(Found { deletes, expected, updated })
}
