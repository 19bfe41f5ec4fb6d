//! A VALUES list inside an INSERT's SELECT (`INSERT INTO t (a, b) SELECT
//! p0, p1 FROM (VALUES (…, 0), (…, 1)) AS v(p0, p1, n) ORDER BY n`, which
//! SQLAlchemy sends for an ORM's batch of rows) as a UNION ALL of
//! one-row SELECTs. DataFusion plans every VALUES of an INSERT in the
//! target columns' types, position by position: a list of another width
//! failed ("Inconsistent data length"), one of the same width computed in
//! the target's types (`a / 3` of an integer into NUMERIC gave 3.33).
//! PostgreSQL types such a list by its values, as a UNION ALL is typed; the
//! INSERT's own VALUES list keeps the target's types, as in PostgreSQL.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Query, SetExpr, Statement, TableFactor, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrites the VALUES lists nested in `statement`'s source, if it is an
/// INSERT whose source is not itself a VALUES list.
pub fn nested_values_as_selects(statement: &mut Statement) {
    let Statement::Insert(insert) = statement else { return };
    let Some(source) = insert.source.as_mut() else { return };
    if matches!(source.body.as_ref(), SetExpr::Values(_)) {
        return;
    }
    let _ = source.visit(&mut NestedValues);
}

struct NestedValues;

impl VisitorMut for NestedValues {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Derived { subquery, .. } = factor {
            as_selects(subquery);
        }
        ControlFlow::Continue(())
    }
}

/// `query`'s VALUES body as `SELECT row1 UNION ALL SELECT row2 …`.
fn as_selects(query: &mut Query) {
    let SetExpr::Values(values) = query.body.as_ref() else { return };
    let rows: Vec<String> = values
        .rows
        .iter()
        .map(|row| format!("SELECT {}", row.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))
        .collect();
    if rows.is_empty() {
        return;
    }
    // Parsed back from its own text, so it cannot fail; left alone if it did.
    if let Ok(mut parser) = Parser::new(&PostgreSqlDialect {}).try_with_sql(&rows.join(" UNION ALL "))
        && let Ok(selects) = parser.parse_query()
    {
        query.body = selects.body;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        nested_values_as_selects(&mut statement);
        statement.to_string()
    }

    #[test]
    fn only_values_lists_nested_in_an_inserts_select_become_selects() {
        assert_eq!(
            rewritten("INSERT INTO t (a) SELECT p0 FROM (VALUES ($1, 0), ($2, 1)) AS v(p0, n) ORDER BY n"),
            "INSERT INTO t (a) SELECT p0 FROM (SELECT $1, 0 UNION ALL SELECT $2, 1) AS v (p0, n) ORDER BY n"
        );
        assert_eq!(rewritten("INSERT INTO t VALUES (1, 2)"), "INSERT INTO t VALUES (1, 2)");
        assert_eq!(rewritten("SELECT * FROM (VALUES (1)) AS v(a)"), "SELECT * FROM (VALUES (1)) AS v (a)");
    }
}
