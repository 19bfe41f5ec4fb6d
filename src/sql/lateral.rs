//! A set-returning JSONB function laterally over a relation's column,
//! `FROM orders o, jsonb_array_elements(o.payload->'items') e` (or `CROSS
//! JOIN [LATERAL]`, `LATERAL f(…)`), which DataFusion cannot plan: the
//! relation becomes a derived table that carries the unnested column,
//!
//! ```sql
//! (SELECT o.*, o._offset, o._ts, unnest(…_list(o.payload->'items')) AS "value⁣lateral" FROM orders o) o
//! ```
//!
//! and the SELECT's references to `e`'s columns (`e.value`, `value`, a bare
//! `e`) become references to that column. Its name ends in an invisible
//! mark ([`super::column_names::display_name`] drops it), so it cannot meet
//! a relation column; a SELECT-list item that is such a reference is named
//! back (`value`, `e`), so an outer query sees PostgreSQL's name.
//!
//! Only this shape is rewritten: one relation of the catalog beside the
//! function, whose argument reads that relation only. Others (a CTE, a
//! point-in-time read, an outer query's column) are refused
//! ([`super::jsonb_sets::lateral_refusal`]).

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Expr, Ident, JoinConstraint, JoinOperator, ObjectName, OrderBy, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins, VisitMut, VisitorMut,
    WildcardAdditionalOptions,
};

use super::ast::{change_own_expressions, empty_query, folded};
use super::jsonb_sets::{SetFunctionItem, set_function, unnested};
use super::parse::object_name;
use crate::catalog::{Catalog, RelationDef, SYSTEM_COLUMNS};

/// The name of a function's column inside the derived table.
fn hidden(column: &str) -> String {
    format!("{column}{}lateral", super::column_names::SUFFIX_MARK)
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

/// Rewrites every SELECT of `statement` that has the shape; returns the
/// derived tables' names, whose `*` leaves out the system columns as the
/// relation's would.
pub fn rewrite_lateral(statement: &mut Statement, catalog: &Catalog, ctes: &HashSet<String>) -> Vec<String> {
    struct Lateral<'a> {
        catalog: &'a Catalog,
        ctes: &'a HashSet<String>,
        made: Vec<String>,
    }
    impl VisitorMut for Lateral<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            // The SELECTs of a set operation too (its ORDER BY names its
            // output columns, which the rewrite keeps).
            let order_by = query.order_by.as_mut();
            match query.body.as_mut() {
                SetExpr::Select(select) => self.made.extend(rewrite_select(select, order_by, self.catalog, self.ctes)),
                body => {
                    for select in selects_of(body) {
                        self.made.extend(rewrite_select(select, None, self.catalog, self.ctes));
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut lateral = Lateral { catalog, ctes, made: Vec::new() };
    let _ = statement.visit(&mut lateral);
    lateral.made
}

/// The SELECTs directly in a set operation's branches.
fn selects_of(body: &mut SetExpr) -> Vec<&mut Select> {
    match body {
        SetExpr::Select(select) => vec![select.as_mut()],
        SetExpr::SetOperation { left, right, .. } => {
            let mut selects = selects_of(left);
            selects.extend(selects_of(right));
            selects
        }
        _ => Vec::new(),
    }
}

/// The relation and the function of a SELECT of the shape, by position.
fn shape(select: &Select) -> Option<(&TableFactor, &TableFactor)> {
    match select.from.as_slice() {
        [a, f] if a.joins.is_empty() && f.joins.is_empty() => Some((&a.relation, &f.relation)),
        [a] if a.joins.len() == 1
            && matches!(a.joins[0].join_operator, JoinOperator::CrossJoin(JoinConstraint::None)) =>
        {
            Some((&a.relation, &a.joins[0].relation))
        }
        _ => None,
    }
}

fn rewrite_select(
    select: &mut Select,
    order_by: Option<&mut OrderBy>,
    catalog: &Catalog,
    ctes: &HashSet<String>,
) -> Option<String> {
    let (relation, function) = shape(select)?;
    let TableFactor::Table { name, alias: relation_alias, args: None, .. } = relation else { return None };
    let relation_name = object_name(&name.to_string());
    if ctes.contains(&relation_name) {
        return None;
    }
    let def = catalog.get(&relation_name)?;
    let SetFunctionItem { argument, qualifier: function_qualifier, columns } = set_function(function)?;
    let qualifier = relation_alias.as_ref().map(|a| folded(&a.name)).unwrap_or_else(|| relation_name.clone());
    let relation_columns = columns_of(def);
    if !reads_only(&argument, &qualifier, &relation_columns) {
        return None;
    }
    let names: Vec<String> = columns.iter().map(|(_, c)| c.clone()).collect();

    // The derived table, its relation aliased by the qualifier (a
    // schema-qualified name included).
    let mut relation = relation.clone();
    if let TableFactor::Table { alias, .. } = &mut relation {
        alias.get_or_insert_with(|| TableAlias { explicit: true, name: quoted(&qualifier), columns: vec![], at: None });
    }
    let mut inner = empty_query();
    let SetExpr::Select(inner_select) = inner.body.as_mut() else { return None };
    inner_select.projection.push(SelectItem::QualifiedWildcard(
        SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(vec![quoted(&qualifier)])),
        WildcardAdditionalOptions::default(),
    ));
    // `_offset` and `_ts`, which the outer `*` leaves out again (a keyless
    // table's `_rowid` is not carried).
    for system in SYSTEM_COLUMNS {
        inner_select
            .projection
            .push(SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![quoted(&qualifier), Ident::new(system)])));
    }
    for (list, column) in &columns {
        inner_select.projection.push(SelectItem::ExprWithAlias {
            expr: unnested(*list, argument.clone()),
            alias: quoted(&hidden(column)),
        });
    }
    inner_select.from = vec![TableWithJoins { relation, joins: vec![] }];

    let references = References {
        qualifier: &qualifier,
        function: &function_qualifier,
        names: &names,
        relation_columns: &relation_columns,
    };
    name_projection(select, &references);
    // The references in the SELECT (or its ORDER BY), not in nested
    // subqueries (their names are their own), nor an output column's name.
    let rename = |expr: &mut Expr, output_names: &HashSet<String>| {
        if let Expr::Identifier(ident) = expr
            && output_names.contains(&folded(ident))
        {
            return;
        }
        if let Some((reference, _)) = references.target(expr) {
            *expr = reference;
        }
    };
    change_own_expressions(select, |expr| rename(expr, &HashSet::new()));
    if let Some(order_by) = order_by {
        // A bare ORDER BY name is an output column first, as in PostgreSQL.
        let output_names = output_names(select);
        change_own_expressions(order_by, |expr| rename(expr, &output_names));
    }
    select.from = vec![TableWithJoins {
        relation: TableFactor::Derived {
            lateral: false,
            subquery: Box::new(inner),
            alias: Some(TableAlias { explicit: true, name: quoted(&qualifier), columns: vec![], at: None }),
            sample: None,
        },
        joins: vec![],
    }];
    Some(qualifier)
}

/// The relation's columns, system columns included.
fn columns_of(def: &RelationDef) -> HashSet<String> {
    def.columns.iter().map(|c| c.name.clone()).chain(def.hidden_columns(false).iter().map(|s| s.to_string())).collect()
}

/// Whether every column `argument` names is the relation's (qualified by
/// it, or a bare name of its columns); not an outer query's.
fn reads_only(argument: &Expr, qualifier: &str, relation_columns: &HashSet<String>) -> bool {
    !super::array_subquery::any_outside_subqueries(argument, |e| match e {
        Expr::CompoundIdentifier(parts) => parts.first().is_none_or(|q| folded(q) != qualifier),
        Expr::Identifier(ident) => !relation_columns.contains(&folded(ident)),
        _ => false,
    })
}

/// Names back the SELECT-list items that are the function's columns,
/// leaves `o.*` without them (PostgreSQL's `o.*` is the relation's only),
/// and spells out the function's `e.*`.
fn name_projection(select: &mut Select, references: &References) {
    let mut projection = Vec::with_capacity(select.projection.len());
    for mut item in std::mem::take(&mut select.projection) {
        if let SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) = &item
            && object_name(&name.to_string()) == references.function
            && references.function != references.qualifier
        {
            projection.extend(references.names.iter().map(|column| SelectItem::ExprWithAlias {
                expr: Expr::CompoundIdentifier(vec![quoted(references.qualifier), quoted(&hidden(column))]),
                alias: quoted(column),
            }));
            continue;
        }
        match &mut item {
            SelectItem::UnnamedExpr(expr) => {
                if let Some((_, name)) = references.target(expr) {
                    let shown = match expr {
                        Expr::Identifier(ident) => ident.clone(),
                        Expr::CompoundIdentifier(parts) => parts.last().cloned().unwrap_or_else(|| quoted(&name)),
                        _ => quoted(&name),
                    };
                    item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: shown };
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), options)
                if object_name(&name.to_string()) == references.qualifier =>
            {
                let mut excluded: Vec<ObjectName> = match options.opt_exclude.take() {
                    Some(ExcludeSelectItem::Single(name)) => vec![name],
                    Some(ExcludeSelectItem::Multiple(names)) => names,
                    None => Vec::new(),
                };
                excluded.extend(references.names.iter().map(|n| ObjectName::from(vec![quoted(&hidden(n))])));
                options.opt_exclude = Some(ExcludeSelectItem::Multiple(excluded));
            }
            _ => {}
        }
        projection.push(item);
    }
    select.projection = projection;
}

fn output_names(select: &Select) -> HashSet<String> {
    select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(folded(alias)),
            _ => None,
        })
        .collect()
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
    /// The function column `expr` refers to, as (reference, column name).
    /// A relation column wins over a bare name, as PostgreSQL resolves it
    /// (where it would call the name ambiguous, the relation's is taken).
    fn target(&self, expr: &Expr) -> Option<(Expr, String)> {
        let column = match expr {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 && folded(&parts[0]) == self.function => {
                let column = folded(&parts[1]);
                self.names.contains(&column).then_some(column)?
            }
            Expr::Identifier(ident) => {
                let name = folded(ident);
                if self.relation_columns.contains(&name) {
                    return None;
                }
                if name == self.function && self.names.len() == 1 {
                    self.names[0].clone()
                } else if self.names.contains(&name) {
                    name
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        let reference = Expr::CompoundIdentifier(vec![quoted(self.qualifier), quoted(&hidden(&column))]);
        Some((reference, column))
    }
}
