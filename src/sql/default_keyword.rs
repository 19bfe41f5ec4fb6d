//! The DEFAULT keyword where PostgreSQL takes it: `INSERT … VALUES
//! (DEFAULT, …)`, `INSERT … DEFAULT VALUES` and `UPDATE … SET c = DEFAULT`.
//! Each becomes the column's DEFAULT expression as CREATE TABLE wrote it
//! (NULL for a column without one) before the statement is planned, so the
//! value is the one leaving the column out would give.

use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, Expr, Ident, Insert, ObjectName, OnConflict, OnConflictAction, OnInsert, SetExpr,
    Statement, Value,
};
use datafusion::sql::sqlparser::parser::Parser;

use super::dialect::StrataDialect;
use super::parse::object_name;
use crate::catalog::{ColumnDef, RelationDef};

/// Whether `expr` is the keyword DEFAULT (the parser reads it as a name).
fn is_default(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(ident) if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("default"))
}

/// `column`'s DEFAULT as an expression; NULL without one.
fn default_of(column: &ColumnDef) -> Expr {
    column
        .default
        .as_deref()
        .and_then(|sql| Parser::new(&StrataDialect).try_with_sql(sql).and_then(|mut p| p.parse_expr()).ok())
        .unwrap_or_else(|| Expr::value(Value::Null))
}

fn column_named<'a>(def: &'a RelationDef, name: &str) -> Option<&'a ColumnDef> {
    let name = object_name(name);
    def.columns.iter().find(|c| c.name == name)
}

/// `INSERT INTO t DEFAULT VALUES` as `INSERT INTO t (every column) VALUES
/// (DEFAULT, …)`, to be filled by [`fill_insert_defaults`].
pub fn default_values_as_row(insert: &mut Insert, def: &RelationDef) {
    if insert.source.is_some() || !insert.columns.is_empty() {
        return;
    }
    let positions = def.visible_positions();
    insert.columns =
        positions.iter().map(|p| ObjectName::from(vec![Ident::with_quote('"', &def.columns[*p].name)])).collect();
    let row = vec!["DEFAULT"; positions.len()].join(", ");
    insert.source =
        Parser::new(&StrataDialect).try_with_sql(&format!("VALUES ({row})")).and_then(|mut p| p.parse_query()).ok();
}

/// Replaces DEFAULT in the VALUES rows of `insert`, whose target columns
/// are named.
pub fn fill_insert_defaults(insert: &mut Insert, def: &RelationDef) {
    let Some(SetExpr::Values(values)) = insert.source.as_deref_mut().map(|q| q.body.as_mut()) else { return };
    for row in &mut values.rows {
        for (value, target) in row.content.iter_mut().zip(&insert.columns) {
            if is_default(value)
                && let Some(column) = column_named(def, &target.to_string())
            {
                *value = default_of(column);
            }
        }
    }
}

/// Replaces DEFAULT in the `ON CONFLICT … DO UPDATE SET` of `insert`.
pub fn fill_conflict_defaults(insert: &mut Insert, def: &RelationDef) {
    if let Some(OnInsert::OnConflict(OnConflict { action: OnConflictAction::DoUpdate(update), .. })) = &mut insert.on {
        fill_assignments(&mut update.assignments, def);
    }
}

/// Replaces `SET c = DEFAULT` in an UPDATE of `def`.
pub fn fill_set_defaults(statement: &mut Statement, def: &RelationDef) {
    if let Statement::Update(update) = statement {
        fill_assignments(&mut update.assignments, def);
    }
}

fn fill_assignments(assignments: &mut [Assignment], def: &RelationDef) {
    for assignment in assignments {
        if let AssignmentTarget::ColumnName(name) = &assignment.target
            && is_default(&assignment.value)
            && let Some(column) = column_named(def, &name.to_string())
        {
            assignment.value = default_of(column);
        }
    }
}

/// Whether an UPDATE sets some column to DEFAULT (only then is it rewritten).
pub fn sets_default(statement: &Statement) -> bool {
    matches!(statement, Statement::Update(update) if update.assignments.iter().any(|a| is_default(&a.value)))
}
