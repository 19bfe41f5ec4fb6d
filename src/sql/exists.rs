//! `EXISTS (subquery)` in a SELECT list, which DataFusion cannot plan (it
//! turns EXISTS into a semi join in a WHERE clause only). There it becomes
//! the count of the subquery's rows compared with zero, a scalar subquery
//! DataFusion plans, correlated or not (`NOT EXISTS`: the count is zero):
//!
//! - a plain `SELECT … FROM … WHERE …` counts in place, `(SELECT count(*)
//!   FROM … WHERE …) > 0`, so it may refer to the outer query; its ORDER BY
//!   and a LIMIT of at least one row go (neither changes whether a row
//!   exists);
//! - anything else (GROUP BY, DISTINCT, aggregates, OFFSET, UNION) is
//!   counted as a derived table, `(SELECT count(*) FROM (subquery) AS
//!   exists) > 0`.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr,
    Ident, LimitClause, ObjectName, Query, Select, SelectItem, SetExpr, TableAlias, TableFactor, TableWithJoins, Value,
};

use super::ast::{change_own_expressions, empty_query};

/// Rewrites each EXISTS of `select`'s own SELECT list (not those of nested
/// subqueries, which are visited as SELECTs of their own).
pub fn exists_in_select_list(select: &mut Select) {
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            change_own_expressions(expr, exists_as_count);
        }
    }
}

/// `EXISTS (q)` as `(SELECT count(*) …) > 0`, `NOT EXISTS` as `= 0`.
fn exists_as_count(expr: &mut Expr) {
    let Expr::Exists { subquery, negated } = expr else { return };
    let op = if *negated { BinaryOperator::Eq } else { BinaryOperator::Gt };
    let count = count_rows(std::mem::replace(subquery.as_mut(), empty_query()));
    *expr = Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(Expr::Subquery(Box::new(count))),
        op,
        right: Box::new(Expr::value(Value::Number("0".into(), false))),
    }));
}

/// `SELECT count(*)` of the rows of `query`.
fn count_rows(mut query: Query) -> Query {
    if counts_in_place(&query)
        && let SetExpr::Select(select) = query.body.as_mut()
    {
        select.projection = vec![SelectItem::UnnamedExpr(count_star())];
        query.order_by = None;
        query.limit_clause = None;
        query.fetch = None;
        return query;
    }
    let mut count = empty_query();
    let SetExpr::Select(select) = count.body.as_mut() else { unreachable!("empty_query is a SELECT") };
    select.projection = vec![SelectItem::UnnamedExpr(count_star())];
    select.from = vec![TableWithJoins {
        relation: TableFactor::Derived {
            lateral: false,
            subquery: Box::new(query),
            alias: Some(TableAlias {
                explicit: true,
                name: Ident::with_quote('"', "exists"),
                columns: vec![],
                at: None,
            }),
            sample: None,
        },
        joins: vec![],
    }];
    count
}

/// A single SELECT whose rows are the rows of its FROM and WHERE: no
/// grouping, no aggregate or window function, no DISTINCT, no OFFSET, and
/// no LIMIT below one row.
fn counts_in_place(query: &Query) -> bool {
    let limit_keeps_a_row = match &query.limit_clause {
        None => true,
        Some(LimitClause::LimitOffset { limit, offset: None, limit_by }) if limit_by.is_empty() => {
            limit.as_ref().is_none_or(|l| matches!(l, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.parse::<u64>().is_ok_and(|n| n > 0))))
        }
        Some(_) => false,
    };
    if query.with.is_some() || query.fetch.is_some() || !limit_keeps_a_row {
        return false;
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return false };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(exprs, _) if exprs.is_empty());
    let aggregates = select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
            super::array_subquery::aggregates(expr)
        }
        _ => false,
    });
    !grouped && select.having.is_none() && select.distinct.is_none() && !aggregates
}

fn count_star() -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("count")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}
