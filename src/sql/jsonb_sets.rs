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
    ObjectName, OrderByExpr, SelectItem, SetExpr, Statement, TableAlias, TableAliasColumnDef, TableFactor, Visit,
    Visitor,
};
use std::ops::ControlFlow;

use super::parse::object_name;
use crate::query::jsonb::SetFunction;

/// `jsonb_agg`, `jsonb_object_agg` and the SELECT-list set-returning
/// functions in `expr`, rewritten.
pub fn rewrite_expr(expr: &mut Expr) {
    let Expr::Function(function) = expr else { return };
    let name = function.name.to_string().to_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
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
    let mut finish = finish;
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
        finish = SetFunction::ValuesFinish;
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
    *expr = unnested(list, argument);
}

/// `unnest(list(argument))`, marked as JSONB again when its items are.
pub(super) fn unnested(list: SetFunction, argument: Expr) -> Expr {
    let items = call("unnest", vec![call(list.name(), vec![argument])]);
    match list {
        SetFunction::Elements | SetFunction::Values => call(SetFunction::Mark.name(), vec![items]),
        _ => items,
    }
}

fn string(text: &str) -> Expr {
    Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString(text.into()))
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

fn unnamed(argument: &FunctionArg) -> Option<&Expr> {
    match argument {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
        _ => None,
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// A set-returning function in FROM: the lists it unnests, each with its
/// column's name (None: the alias's, or the function's).
pub(super) fn from_item_columns(name: &str) -> Option<Vec<(SetFunction, Option<&'static str>)>> {
    Some(match name {
        "jsonb_array_elements" | "json_array_elements" => vec![(SetFunction::Elements, Some("value"))],
        "jsonb_array_elements_text" | "json_array_elements_text" => vec![(SetFunction::ElementsText, Some("value"))],
        "jsonb_object_keys" | "json_object_keys" => vec![(SetFunction::Keys, None)],
        "jsonb_each" | "json_each" => vec![(SetFunction::EachKeys, Some("key")), (SetFunction::Values, Some("value"))],
        "jsonb_each_text" | "json_each_text" => {
            vec![(SetFunction::EachTextKeys, Some("key")), (SetFunction::ValuesText, Some("value"))]
        }
        _ => return None,
    })
}

/// A FROM item calling one of the set-returning functions above: its
/// name, argument and alias. `f(…) WITH ORDINALITY` is not one (it is
/// refused: the rewrites give no ordinality column).
pub(super) fn set_function(factor: &TableFactor) -> Option<(String, Expr, Option<TableAlias>)> {
    let (name, args, alias) = match factor {
        TableFactor::Table { name, args: Some(args), alias, with_ordinality: false, .. } => (name, &args.args, alias),
        // `LATERAL f(…)`.
        TableFactor::Function { name, args, alias, with_ordinality: false, .. } => (name, args, alias),
        _ => return None,
    };
    let function = object_name(&name.to_string());
    from_item_columns(&function)?;
    let [argument] = args.as_slice() else { return None };
    Some((function, unnamed(argument)?.clone(), alias.clone()))
}

/// A set-returning function in FROM over values of its own (constants,
/// parameters) as a derived table: `(SELECT unnest(…) AS value) AS alias`.
pub fn rewrite_from_item(factor: &mut TableFactor) {
    let Some((function, argument, alias)) = set_function(factor) else { return };
    let Some(columns) = from_item_columns(&function) else { return };
    if refers_to_columns(&argument) {
        return;
    }
    let alias = &alias;
    let alias_name = alias.as_ref().map(|a| a.name.clone()).unwrap_or_else(|| Ident::new(&function));
    let renamed: Vec<Ident> =
        alias.as_ref().map(|a| a.columns.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
    let mut projection = Vec::new();
    for (position, (list, column)) in columns.iter().enumerate() {
        let column = match (renamed.get(position), column) {
            (Some(renamed), _) => renamed.clone(),
            (None, Some(column)) => Ident::new(*column),
            // A function of one unnamed column: named after its alias.
            (None, None) => alias_name.clone(),
        };
        let item = unnested(*list, argument.clone());
        projection.push(SelectItem::ExprWithAlias { expr: item, alias: column });
    }
    let mut query = super::array_subquery::empty_query();
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = projection;
    }
    *factor = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(TableAlias {
            explicit: true,
            name: alias_name,
            columns: Vec::<TableAliasColumnDef>::new(),
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
            let (name, with_ordinality) = match factor {
                TableFactor::Table { name, args: Some(_), with_ordinality, .. } => (name, *with_ordinality),
                TableFactor::Function { name, with_ordinality, .. } => (name, *with_ordinality),
                _ => return ControlFlow::Continue(()),
            };
            let function = object_name(&name.to_string());
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
