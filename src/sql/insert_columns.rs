//! The columns an INSERT fills. With no column list PostgreSQL fills the
//! first as many columns as the source yields and gives the rest their
//! defaults (`INSERT INTO t VALUES (1)` into a three-column table), and it
//! checks the counts before planning, with its own messages.

use datafusion::sql::sqlparser::ast::{Insert, Query, SelectItem, SetExpr};

use crate::catalog::RelationDef;
use crate::error::{Error, Result};

/// Positions in `def` of the columns `insert` fills when it names none.
pub fn implicit_targets(def: &RelationDef, insert: &Insert) -> Vec<usize> {
    let mut visible = def.visible_positions();
    if let Ok(Some(width)) = source_width(insert) {
        visible.truncate(width);
    }
    visible
}

/// PostgreSQL's errors for an INSERT whose source and targets differ in
/// width, or whose VALUES rows do: 42601, before anything is planned.
pub fn check_widths(def: &RelationDef, insert: &Insert) -> Result<()> {
    let Some(width) = source_width(insert)? else { return Ok(()) };
    let targets = match insert.columns.len() {
        0 => def.visible_positions().len(),
        named => named,
    };
    if width > targets {
        return Err(Error::Malformed("INSERT has more expressions than target columns".into()));
    }
    if width < targets && !insert.columns.is_empty() {
        return Err(Error::Malformed("INSERT has more target columns than expressions".into()));
    }
    Ok(())
}

/// How many columns the source yields, where that shows without planning:
/// VALUES, or a SELECT list without `*`. `INSERT … DEFAULT VALUES` has none.
fn source_width(insert: &Insert) -> Result<Option<usize>> {
    match insert.source.as_deref() {
        Some(query) => query_width(query),
        None => Ok(None),
    }
}

fn query_width(query: &Query) -> Result<Option<usize>> {
    set_width(&query.body)
}

fn set_width(body: &SetExpr) -> Result<Option<usize>> {
    match body {
        SetExpr::Values(values) => {
            let Some(first) = values.rows.first() else { return Ok(None) };
            if values.rows.iter().any(|row| row.content.len() != first.content.len()) {
                return Err(Error::Malformed("VALUES lists must all be the same length".into()));
            }
            Ok(Some(first.content.len()))
        }
        SetExpr::Select(select) => Ok(select
            .projection
            .iter()
            .all(|item| matches!(item, SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }))
            .then_some(select.projection.len())),
        SetExpr::Query(query) => query_width(query),
        SetExpr::SetOperation { left, .. } => set_width(left),
        _ => Ok(None),
    }
}
