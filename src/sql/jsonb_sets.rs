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
//!   a derived table of `t` with the unnested column ([`rewrite_lateral`]);
//!   other lateral shapes are refused ([`lateral_refusal`]).

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, Ident,
    JoinConstraint, JoinOperator, ObjectName, OrderByExpr, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement, TableAlias, TableAliasColumnDef, TableFactor, TableWithJoins, Visit, VisitMut, Visitor, VisitorMut,
    WildcardAdditionalOptions,
};
use std::ops::ControlFlow;

use super::parse::object_name;
use crate::catalog::Catalog;
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
fn unnested(list: SetFunction, argument: Expr) -> Expr {
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
fn from_item_columns(name: &str) -> Option<Vec<(SetFunction, Option<&'static str>)>> {
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
fn set_function(factor: &TableFactor) -> Option<(String, Expr, Option<TableAlias>)> {
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
fn refers_to_columns(expr: &Expr) -> bool {
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

/// The name a lateral set-returning function's column takes inside the
/// derived table that replaces it: unique beside the relation's columns,
/// shown to clients as `column` ([`super::column_names::display_name`]).
fn hidden(column: &str) -> String {
    format!("{column}{}lateral", super::column_names::SUFFIX_MARK)
}

/// `FROM a, f(a.j) e` and `FROM a CROSS JOIN [LATERAL] f(a.j) e`, where `a`
/// is a relation and `f` one of the set-returning functions above, in every
/// query of `statement`: DataFusion cannot unnest laterally, so `a` becomes
/// `(SELECT a.*, a._offset, a._ts, unnest(list(a.j)) AS "value…" FROM a) a`
/// and each reference to `e`'s columns (`e.value`, `value`, `e`) one to the
/// derived table's. Returns the derived tables' names, whose `*` leaves out
/// the system columns as the relation's would.
pub fn rewrite_lateral(statement: &mut Statement, catalog: &Catalog, ctes: &HashSet<String>) -> Vec<String> {
    struct Lateral<'a> {
        catalog: &'a Catalog,
        ctes: &'a HashSet<String>,
        made: Vec<String>,
    }
    impl VisitorMut for Lateral<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let Some(name) = lateral_query(query, self.catalog, self.ctes) {
                self.made.push(name);
            }
            ControlFlow::Continue(())
        }
    }
    let mut lateral = Lateral { catalog, ctes, made: Vec::new() };
    let _ = statement.visit(&mut lateral);
    lateral.made
}

/// The function, its argument and its alias when `factor` is a
/// set-returning function over another FROM item's columns.
fn lateral_function(factor: &TableFactor) -> Option<(String, Expr, Option<TableAlias>)> {
    set_function(factor).filter(|(_, argument, _)| refers_to_columns(argument))
}

fn lateral_query(query: &mut Query, catalog: &Catalog, ctes: &HashSet<String>) -> Option<String> {
    let SetExpr::Select(select) = query.body.as_mut() else { return None };
    let (relation, function) = match select.from.as_slice() {
        [a, f] if a.joins.is_empty() && f.joins.is_empty() => (&a.relation, &f.relation),
        [a] if a.joins.len() == 1
            && matches!(a.joins[0].join_operator, JoinOperator::CrossJoin(JoinConstraint::None)) =>
        {
            (&a.relation, &a.joins[0].relation)
        }
        _ => return None,
    };
    let TableFactor::Table { name, alias: relation_alias, args: None, version: None, .. } = relation else {
        return None;
    };
    let relation_name = object_name(&name.to_string());
    if ctes.contains(&relation_name) {
        return None;
    }
    let def = catalog.get(&relation_name)?;
    let (function_name, argument, function_alias) = lateral_function(function)?;
    let qualifier = relation_alias.as_ref().map(|a| folded(&a.name)).unwrap_or_else(|| relation_name.clone());
    let function_qualifier = function_alias.as_ref().map(|a| folded(&a.name)).unwrap_or_else(|| function_name.clone());
    let renamed: Vec<String> =
        function_alias.as_ref().map(|a| a.columns.iter().map(|c| folded(&c.name)).collect()).unwrap_or_default();
    let lists = from_item_columns(&function_name)?;
    let columns: Vec<(SetFunction, String)> = lists
        .iter()
        .enumerate()
        .map(|(position, (list, column))| {
            let name = match (renamed.get(position), column) {
                (Some(renamed), _) => renamed.clone(),
                (None, Some(column)) => column.to_string(),
                (None, None) => function_qualifier.clone(),
            };
            (*list, name)
        })
        .collect();

    // The derived table: the relation's columns, its system columns, and
    // the unnested lists.
    let mut inner = super::array_subquery::empty_query();
    let SetExpr::Select(inner_select) = inner.body.as_mut() else { return None };
    let qualified = |column: &str| Expr::CompoundIdentifier(vec![Ident::new(&qualifier), Ident::new(column)]);
    inner_select.projection.push(SelectItem::QualifiedWildcard(
        SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(vec![Ident::new(&qualifier)])),
        WildcardAdditionalOptions::default(),
    ));
    // `_offset` and `_ts`, which the outer `*` leaves out again (a keyless
    // table's `_rowid` is not carried).
    for system in crate::catalog::SYSTEM_COLUMNS {
        inner_select.projection.push(SelectItem::UnnamedExpr(qualified(system)));
    }
    for (list, column) in &columns {
        inner_select.projection.push(SelectItem::ExprWithAlias {
            expr: unnested(*list, argument.clone()),
            alias: Ident::with_quote('"', hidden(column)),
        });
    }
    inner_select.from = vec![TableWithJoins { relation: relation.clone(), joins: vec![] }];

    // References to the function's columns, to the derived table's.
    let relation_columns: HashSet<String> = def
        .columns
        .iter()
        .map(|c| c.name.clone())
        .chain(def.hidden_columns(false).iter().map(|s| s.to_string()))
        .collect();
    let names: Vec<String> = columns.iter().map(|(_, c)| c.clone()).collect();
    let mut references = References {
        qualifier: &qualifier,
        function: &function_qualifier,
        names: &names,
        relation_columns: &relation_columns,
    };
    // A bare `e` in the SELECT list keeps its name, as in PostgreSQL.
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(Expr::Identifier(ident)) = item
            && folded(ident) == function_qualifier
            && names.len() == 1
        {
            let expr = Expr::Identifier(ident.clone());
            *item = SelectItem::ExprWithAlias { expr, alias: ident.clone() };
        }
    }
    let _ = select.visit(&mut references);
    if let Some(order_by) = &mut query.order_by {
        let _ = order_by.visit(&mut references);
    }
    let SetExpr::Select(select) = query.body.as_mut() else { return None };
    select.from = vec![TableWithJoins {
        relation: TableFactor::Derived {
            lateral: false,
            subquery: Box::new(inner),
            alias: Some(TableAlias { explicit: true, name: Ident::new(&qualifier), columns: vec![], at: None }),
            sample: None,
        },
        joins: vec![],
    }];
    Some(qualifier)
}

struct References<'a> {
    /// The derived table's name.
    qualifier: &'a str,
    /// The function's alias.
    function: &'a str,
    names: &'a [String],
    relation_columns: &'a HashSet<String>,
}

impl References<'_> {
    fn to_hidden(&self, column: &str) -> Expr {
        Expr::CompoundIdentifier(vec![Ident::new(self.qualifier), Ident::with_quote('"', hidden(column))])
    }
}

impl VisitorMut for References<'_> {
    type Break = ();
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let replacement = match expr {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 && folded(&parts[0]) == self.function => {
                let column = folded(&parts[1]);
                self.names.contains(&column).then(|| self.to_hidden(&column))
            }
            Expr::Identifier(ident) => {
                let name = folded(ident);
                if name == self.function && self.names.len() == 1 {
                    Some(self.to_hidden(&self.names[0]))
                } else if self.names.contains(&name) && !self.relation_columns.contains(&name) {
                    Some(self.to_hidden(&name))
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            *expr = replacement;
        }
        ControlFlow::Continue(())
    }
}

/// An identifier as PostgreSQL stores it: lower case unless quoted.
fn folded(ident: &Ident) -> String {
    if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() }
}
