//! `ARRAY(subquery)`: PostgreSQL's array of a subquery's one column, in its
//! order, `{}` when it has no rows. DataFusion has no such constructor, so
//! it becomes the scalar subquery that aggregates the same rows:
//!
//! - a plain `SELECT e FROM … WHERE … [ORDER BY o]` aggregates in place,
//!   `(SELECT coalesce(array_agg(e ORDER BY o), make_array()) FROM … WHERE …)`,
//!   so it may refer to the outer query (psql's `\du` does, by equality:
//!   DataFusion decorrelates that, not an ordered `array_agg`);
//! - anything else (LIMIT, DISTINCT, GROUP BY, aggregates, UNION) is read
//!   as a derived table, `(SELECT coalesce(array_agg(x), make_array()) FROM
//!   (subquery) AS array(x))`, which keeps its order only when it is by the
//!   column itself; ordered otherwise, it is left as it is (DataFusion then
//!   names the construct it cannot plan).

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArgumentClause, FunctionArguments, GroupByExpr, Ident, OrderByExpr, OrderByKind, Query,
    SelectItem, SetExpr, TableAlias, TableAliasColumnDef, TableFactor, TableWithJoins, Value, Visit, Visitor,
};
use std::ops::ControlFlow;

use super::ast::{call, empty_query};

/// The name of the derived table and its column in the general form.
const COLUMN: &str = "array";

/// Aggregates a projection may hold that make a SELECT one group per query
/// (not a row per row): such a subquery takes the general form.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "median",
    "bit_and",
    "bit_or",
    "bit_xor",
    "corr",
    "covar_pop",
    "covar_samp",
    "regr_slope",
    "regr_intercept",
    "regr_count",
    "regr_r2",
    "first_value",
    "last_value",
    "percentile_cont",
    "approx_distinct",
    "approx_median",
    "approx_percentile_cont",
    "jsonb_agg",
    "json_agg",
];

/// Replaces `ARRAY(subquery)`, a call of `array`, by its scalar-subquery form.
pub fn array_of_subquery(expr: &mut Expr) {
    let Expr::Function(function) = expr else { return };
    let FunctionArguments::Subquery(query) = &mut function.args else { return };
    let rewritten = if let Some((item, order)) = plain_select(query) {
        aggregate_in_place(query, item, order)
    } else if let Some(order) = order_of_derived(query) {
        aggregate_derived(query, order)
    } else {
        return;
    };
    *expr = Expr::Subquery(Box::new(rewritten));
}

/// The projected expression and the order of a subquery that aggregates in
/// place: one SELECT of one non-aggregate column, without LIMIT, DISTINCT
/// or grouping.
fn plain_select(query: &Query) -> Option<(Expr, Vec<OrderByExpr>)> {
    if query.with.is_some() || query.limit_clause.is_some() || query.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(exprs, _) if exprs.is_empty());
    if grouped || select.having.is_some() || select.distinct.is_some() || select.projection.len() != 1 {
        return None;
    }
    let (item, alias) = match &select.projection[0] {
        SelectItem::UnnamedExpr(expr) => (expr, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
        _ => return None,
    };
    if aggregates(item) {
        return None;
    }
    let order = order_exprs(query)?
        .into_iter()
        .map(|mut o| {
            if refers_to_column(&o.expr, Some(item), alias) {
                o.expr = item.clone();
            }
            o
        })
        .collect();
    Some((item.clone(), order))
}

/// The order of `array_agg(array)` over the subquery as a derived table,
/// whose columns are renamed `array`, `array_key1`, …: ordered by its one
/// column (by position, name or expression) or by keys of a single SELECT,
/// which are added to its projection (the ORDER BY stays for its LIMIT).
/// None when a set operation is ordered by anything but its column.
fn order_of_derived(query: &mut Query) -> Option<Vec<OrderByExpr>> {
    let mut order = order_exprs(query)?;
    // A set operation's columns are named by its first SELECT.
    let mut first = query.body.as_ref();
    while let SetExpr::SetOperation { left, .. } = first {
        first = left.as_ref();
    }
    let (item, alias) = match first {
        SetExpr::Select(select) => match select.projection.as_slice() {
            [SelectItem::ExprWithAlias { expr, alias }] => (expr.clone(), Some(alias.clone())),
            [SelectItem::UnnamedExpr(expr)] => (expr.clone(), None),
            _ => return None,
        },
        _ => return None,
    };
    // Keys added to a DISTINCT projection would change what is distinct
    // (PostgreSQL refuses such an ORDER BY).
    let select = match query.body.as_mut() {
        SetExpr::Select(select) if select.distinct.is_none() => Some(select),
        _ => None,
    };
    let mut keys = Vec::new();
    for o in &mut order {
        let key = if refers_to_column(&o.expr, Some(&item), alias.as_ref()) {
            COLUMN.to_string()
        } else if select.is_some() {
            keys.push(o.expr.clone());
            format!("{COLUMN}_key{}", keys.len())
        } else {
            return None;
        };
        o.expr = Expr::Identifier(Ident::with_quote('"', key));
    }
    if let Some(select) = select {
        select.projection.extend(keys.into_iter().map(SelectItem::UnnamedExpr));
    }
    Some(order)
}

fn order_exprs(query: &Query) -> Option<Vec<OrderByExpr>> {
    match &query.order_by {
        None => Some(Vec::new()),
        Some(order_by) => match &order_by.kind {
            OrderByKind::Expressions(exprs) => Some(exprs.clone()),
            OrderByKind::All(_) => None,
        },
    }
}

/// `ORDER BY 1`, by the column's alias, or by its expression.
fn refers_to_column(expr: &Expr, item: Option<&Expr>, alias: Option<&Ident>) -> bool {
    match expr {
        Expr::Value(value) if matches!(&value.value, Value::Number(n, _) if n == "1") => true,
        Expr::Identifier(ident) if alias.is_some_and(|a| a.value.eq_ignore_ascii_case(&ident.value)) => true,
        _ => item == Some(expr),
    }
}

/// Whether `expr` aggregates or is a window function; those inside a
/// nested subquery belong to it and do not count.
pub(super) fn aggregates(expr: &Expr) -> bool {
    any_outside_subqueries(expr, |e| {
        let Expr::Function(function) = e else { return false };
        let name = function.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase());
        function.over.is_some() || name.is_some_and(|n| AGGREGATES.contains(&n.as_str()))
    })
}

/// Whether some part of `expr` outside its nested subqueries passes `test`.
pub(super) fn any_outside_subqueries(expr: &Expr, test: impl Fn(&Expr) -> bool) -> bool {
    struct Finder<F> {
        test: F,
        found: bool,
        nested_queries: usize,
    }
    impl<F: Fn(&Expr) -> bool> Visitor for Finder<F> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.nested_queries += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.nested_queries -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            self.found |= self.nested_queries == 0 && (self.test)(expr);
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder { test, found: false, nested_queries: 0 };
    let _ = expr.visit(&mut finder);
    finder.found
}

/// `(SELECT coalesce(array_agg(item ORDER BY order), make_array()) FROM … WHERE …)`.
fn aggregate_in_place(query: &mut Query, item: Expr, order: Vec<OrderByExpr>) -> Query {
    let mut query = std::mem::replace(query, empty_query());
    query.order_by = None;
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = vec![SelectItem::UnnamedExpr(array_or_empty(item, order))];
    }
    query
}

/// `(SELECT coalesce(array_agg(array ORDER BY …), make_array()) FROM (query) AS array(array, array_key1, …))`.
fn aggregate_derived(query: &mut Query, order: Vec<OrderByExpr>) -> Query {
    let width = match query.body.as_ref() {
        SetExpr::Select(select) => select.projection.len(),
        _ => 1,
    };
    let columns = (0..width)
        .map(|i| {
            let name = if i == 0 { COLUMN.to_string() } else { format!("{COLUMN}_key{i}") };
            TableAliasColumnDef { name: Ident::with_quote('"', name), data_type: None }
        })
        .collect();
    let inner = std::mem::replace(query, empty_query());
    let column = Expr::Identifier(Ident::with_quote('"', COLUMN));
    let from = TableWithJoins {
        relation: TableFactor::Derived {
            lateral: false,
            subquery: Box::new(inner),
            alias: Some(TableAlias { explicit: true, name: Ident::with_quote('"', COLUMN), columns, at: None }),
            sample: None,
        },
        joins: vec![],
    };
    let mut outer = empty_query();
    if let SetExpr::Select(select) = outer.body.as_mut() {
        select.projection = vec![SelectItem::UnnamedExpr(array_or_empty(column, order))];
        select.from = vec![from];
    }
    outer
}

/// `coalesce(array_agg(item ORDER BY order), make_array())`: an aggregate
/// of no rows is NULL, where PostgreSQL's ARRAY() is empty.
fn array_or_empty(item: Expr, order: Vec<OrderByExpr>) -> Expr {
    let mut array_agg = call("array_agg", vec![item]);
    if let Expr::Function(Function { args: FunctionArguments::List(list), .. }) = &mut array_agg
        && !order.is_empty()
    {
        list.clauses.push(FunctionArgumentClause::OrderBy(order));
    }
    call("coalesce", vec![array_agg, call("make_array", vec![])])
}
