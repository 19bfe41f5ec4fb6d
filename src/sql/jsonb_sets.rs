//! PostgreSQL's JSONB aggregates and set-returning functions, in the forms
//! DataFusion plans (the functions they use are `query/jsonb/sets.rs`):
//!
//! - `jsonb_agg(x …)` → `jsonb_agg_finish(array_agg(to_jsonb(x) …))`, and
//!   `jsonb_object_agg(k, v …)` → `jsonb_object_agg_finish(array_agg(
//!   jsonb_build_object(k, v) …))`, keeping ORDER BY, DISTINCT, FILTER and
//!   OVER on the `array_agg`;
//! - in a SELECT list, `jsonb_array_elements(j)`, `…_text(j)` and
//!   `jsonb_object_keys(j)` → `unnest(…_list(j))`, a row per element;
//! - in FROM, `jsonb_array_elements(…)`, `…_text`, `jsonb_object_keys`,
//!   `jsonb_each` and `jsonb_each_text` over values that are not another
//!   FROM item's columns → a derived table of the unnested lists, with
//!   PostgreSQL's column names (`value`; `key`, `value`);
//! - over a relation's column, `FROM t, jsonb_array_elements(t.j) e` (or
//!   `CROSS JOIN [LATERAL]`), which DataFusion cannot unnest laterally →
//!   a derived table of `t` with the unnested column (`sql/lateral.rs`);
//!   other lateral shapes are refused ([`lateral_refusal`]).

use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, Ident,
    ObjectName, OrderByExpr, SelectItem, SetExpr, Statement, TableAlias, TableFactor, Visit, Visitor,
};
use std::ops::ControlFlow;

use super::ast::{call, empty_query, folded, string, unnamed};
use super::parse::object_name;
use crate::query::jsonb::SetFunction;

/// `expr`, a call of function `name`, rewritten if it is `jsonb_agg`,
/// `jsonb_object_agg` or a SELECT-list set-returning function.
pub fn rewrite_call(expr: &mut Expr, name: &str) {
    match name {
        "jsonb_agg" | "json_agg" => aggregate(expr, SetFunction::AggFinish, "to_jsonb"),
        "jsonb_object_agg" | "json_object_agg" => aggregate(expr, SetFunction::ObjectAggFinish, "jsonb_build_object"),
        "jsonb_array_elements" | "json_array_elements" => unnest(expr, SetFunction::Elements),
        "jsonb_array_elements_text" | "json_array_elements_text" => unnest(expr, SetFunction::ElementsText),
        "jsonb_object_keys" | "json_object_keys" => unnest(expr, SetFunction::Keys),
        _ => {}
    }
}

/// `name(args …)` → `finish(array_agg(build(args) …))`.
fn aggregate(expr: &mut Expr, finish: SetFunction, build: &str) {
    let Expr::Function(function) = expr else { return };
    let FunctionArguments::List(list) = &mut function.args else { return };
    let arguments: Vec<Expr> = list.args.iter().filter_map(unnamed).cloned().collect();
    let expected = if finish == SetFunction::AggFinish { 1 } else { 2 };
    if arguments.len() != expected || list.args.len() != expected {
        return;
    }
    // DISTINCT, and the order it implies when none is given, are the
    // values' (2 before 10), not their JSON texts': the values are
    // aggregated beside their JSON, `{v: x, j: to_jsonb(x)}`, ordered by
    // that (so by x), and the JSON taken after.
    if finish == SetFunction::AggFinish && list.duplicate_treatment == Some(DuplicateTreatment::Distinct) {
        let value = arguments[0].clone();
        let pair =
            call("named_struct", vec![string("v"), value.clone(), string("j"), call("to_jsonb", vec![value.clone()])]);
        let mut ordered = false;
        for clause in &mut list.clauses {
            if let FunctionArgumentClause::OrderBy(order) = clause {
                ordered = true;
                for o in order.iter_mut().filter(|o| o.expr == value) {
                    o.expr = pair.clone();
                }
            }
        }
        if !ordered {
            let order = OrderByExpr { expr: pair.clone(), options: Default::default(), with_fill: None };
            list.clauses.push(FunctionArgumentClause::OrderBy(vec![order]));
        }
        list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(pair))];
    } else {
        list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(call(build, arguments)))];
    }
    function.name = ObjectName::from(vec![Ident::new("array_agg")]);
    let array_agg = std::mem::replace(expr, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
    *expr = call(finish.name(), vec![array_agg]);
}

/// `name(j)` → `unnest(list(j))`.
fn unnest(expr: &mut Expr, list: SetFunction) {
    let Expr::Function(function) = expr else { return };
    let Some(argument) = single_argument(function) else { return };
    *expr = unnested(Some(list), argument);
}

/// `unnest(list(argument))`, marked as JSONB again when its items are;
/// `unnest(argument)` of an array (`list` None).
pub(super) fn unnested(list: Option<SetFunction>, argument: Expr) -> Expr {
    let Some(list) = list else { return call("unnest", vec![argument]) };
    let items = call("unnest", vec![call(list.name(), vec![argument])]);
    match list {
        SetFunction::Elements | SetFunction::Values => call(SetFunction::Mark.name(), vec![items]),
        _ => items,
    }
}

fn single_argument(function: &Function) -> Option<Expr> {
    if function.over.is_some() || function.filter.is_some() {
        return None;
    }
    match &function.args {
        FunctionArguments::List(list) if list.args.len() == 1 && list.clauses.is_empty() => {
            unnamed(&list.args[0]).cloned()
        }
        _ => None,
    }
}

/// A set-returning function in FROM: the lists it unnests (None: its
/// argument is the array), each with its column's name (None: the alias's,
/// or the function's).
fn from_item_columns(name: &str) -> Option<Vec<(Option<SetFunction>, Option<&'static str>)>> {
    let lists = match name {
        // PostgreSQL's `unnest(array)`; DataFusion plans it only over constants.
        "unnest" => return Some(vec![(None, None)]),
        "jsonb_array_elements" | "json_array_elements" => vec![(SetFunction::Elements, Some("value"))],
        "jsonb_array_elements_text" | "json_array_elements_text" => vec![(SetFunction::ElementsText, Some("value"))],
        "jsonb_object_keys" | "json_object_keys" => vec![(SetFunction::Keys, None)],
        "jsonb_each" | "json_each" => vec![(SetFunction::EachKeys, Some("key")), (SetFunction::Values, Some("value"))],
        "jsonb_each_text" | "json_each_text" => {
            vec![(SetFunction::EachTextKeys, Some("key")), (SetFunction::ValuesText, Some("value"))]
        }
        _ => return None,
    };
    Some(lists.into_iter().map(|(list, column)| (Some(list), column)).collect())
}

/// A FROM item calling one of the set-returning functions above.
pub(super) struct SetFunctionItem {
    pub argument: Expr,
    /// The FROM item's name: its alias, or the function's.
    pub qualifier: String,
    /// The lists it unnests, each with its column's name (PostgreSQL's, or
    /// the alias's column list's), as PostgreSQL folds it.
    pub columns: Vec<(Option<SetFunction>, String)>,
}

/// `factor` as a [`SetFunctionItem`]. `f(…) WITH ORDINALITY` is not one
/// (it is refused: the rewrites give no ordinality column).
pub(super) fn set_function(factor: &TableFactor) -> Option<SetFunctionItem> {
    let (function, argument, alias) = match factor {
        TableFactor::Table { name, args: Some(args), alias, with_ordinality: false, .. } => {
            match args.args.as_slice() {
                [argument] => (object_name(&name.to_string()), unnamed(argument)?, alias),
                _ => return None,
            }
        }
        // `LATERAL f(…)`.
        TableFactor::Function { name, args, alias, with_ordinality: false, .. } => match args.as_slice() {
            [argument] => (object_name(&name.to_string()), unnamed(argument)?, alias),
            _ => return None,
        },
        // sqlparser's own node for `unnest(…)`.
        TableFactor::UNNEST { alias, array_exprs, with_offset: false, with_ordinality: false, .. } => {
            match array_exprs.as_slice() {
                [argument] => ("unnest".to_string(), argument, alias),
                _ => return None,
            }
        }
        _ => return None,
    };
    let lists = from_item_columns(&function)?;
    let qualifier = alias.as_ref().map(|a| folded(&a.name)).unwrap_or(function);
    let renamed: Vec<String> = alias.iter().flat_map(|a| a.columns.iter().map(|c| folded(&c.name))).collect();
    let columns = lists
        .into_iter()
        .enumerate()
        .map(|(position, (list, column))| {
            let name = match (renamed.get(position), column) {
                (Some(renamed), _) => renamed.clone(),
                (None, Some(column)) => column.to_string(),
                // A function of one unnamed column: named after its alias.
                (None, None) => qualifier.clone(),
            };
            (list, name)
        })
        .collect();
    Some(SetFunctionItem { argument: argument.clone(), qualifier, columns })
}

/// A set-returning function in FROM over values of its own (constants,
/// parameters) as a derived table: `(SELECT unnest(…) AS value) AS alias`.
pub fn rewrite_from_item(factor: &mut TableFactor) {
    let Some(item) = set_function(factor) else { return };
    if refers_to_columns(&item.argument) {
        return;
    }
    let mut query = empty_query();
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = (item.columns.iter())
            .map(|(list, column)| SelectItem::ExprWithAlias {
                expr: unnested(*list, item.argument.clone()),
                alias: Ident::with_quote('"', column),
            })
            .collect();
    }
    *factor = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(TableAlias {
            explicit: true,
            name: Ident::with_quote('"', &item.qualifier),
            columns: vec![],
            at: None,
        }),
        sample: None,
    };
}

/// Whether `expr` names a column (of another FROM item, here); a
/// subquery's own columns do not count.
pub(super) fn refers_to_columns(expr: &Expr) -> bool {
    super::array_subquery::any_outside_subqueries(expr, |e| {
        matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
    })
}

/// The error for a set-returning function over another FROM item's
/// columns, which the rewrite leaves in place: DataFusion would say it
/// knows no such table function.
pub fn lateral_refusal(statement: &Statement) -> Option<String> {
    struct Finder(Option<String>);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            let (function, with_ordinality) = match factor {
                TableFactor::Table { name, args: Some(_), with_ordinality, .. } => {
                    (object_name(&name.to_string()), *with_ordinality)
                }
                TableFactor::Function { name, with_ordinality, .. } => {
                    (object_name(&name.to_string()), *with_ordinality)
                }
                // `unnest(a, b)` over constants is DataFusion's to plan.
                TableFactor::UNNEST { array_exprs, with_ordinality, .. } if array_exprs.len() == 1 => {
                    ("unnest".to_string(), *with_ordinality)
                }
                _ => return ControlFlow::Continue(()),
            };
            if from_item_columns(&function).is_none() {
                return ControlFlow::Continue(());
            }
            self.0 = Some(if with_ordinality {
                format!("{function} … WITH ORDINALITY is not supported")
            } else {
                format!(
                    "{function} in FROM over another FROM item's column is not supported here; \
                     call it in the SELECT list instead (SELECT t.id, {function}(t.j) FROM t)"
                )
            });
            ControlFlow::Break(())
        }
    }
    let mut finder = Finder(None);
    let _ = statement.visit(&mut finder);
    finder.0
}
