//! Rewrites applied to a statement before DataFusion plans it:
//! - `*` leaves out the system columns `_offset`, `_ts` (they appear only
//!   when selected by name, DESIGN §2);
//! - `current_offset()` becomes the statement's read offset, so it agrees
//!   with what the statement reads;
//! - `INSERT INTO s VALUES …` without a column list names the user columns.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, ExcludeSelectItem, Expr, Ident, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, TableObject, Value, VisitMut, VisitorMut,
    WildcardAdditionalOptions,
};

use super::parse::object_name;
use crate::catalog::{Catalog, SYSTEM_COLUMNS};
use crate::log::Offset;

pub fn rewrite(statement: &mut Statement, catalog: &Catalog, read_offset: Offset) {
    let mut ctes = HashSet::new();
    let _ = statement.visit(&mut CteNames(&mut ctes));
    let _ = statement.visit(&mut Rewriter { catalog, ctes: &ctes, read_offset });
    if let Statement::Insert(insert) = statement
        && insert.columns.is_empty()
        && let TableObject::TableName(name) = &insert.table
        && let Some(def) = catalog.get(&object_name(&name.to_string()))
    {
        insert.columns = def.columns.iter().map(|c| ObjectName::from(vec![Ident::with_quote('"', &c.name)])).collect();
    }
}

struct CteNames<'a>(&'a mut HashSet<String>);

impl VisitorMut for CteNames<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter<'a> {
    catalog: &'a Catalog,
    ctes: &'a HashSet<String>,
    read_offset: Offset,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        self.hide_system_columns(select);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr
            && function.name.to_string().eq_ignore_ascii_case("current_offset")
        {
            let literal = Expr::value(Value::Number(self.read_offset.0.to_string(), false));
            *expr = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(literal),
                data_type: DataType::BigInt(None),
                array: false,
                format: None,
            };
        }
        ControlFlow::Continue(())
    }
}

/// A FROM item as `*` sees it: its qualifier, and whether it is a Strata relation.
struct FromItem {
    qualifier: Option<String>,
    is_relation: bool,
}

impl Rewriter<'_> {
    fn from_items(&self, select: &Select) -> Vec<FromItem> {
        let mut items = Vec::new();
        for table in &select.from {
            items.push(self.from_item(&table.relation));
            for join in &table.joins {
                items.push(self.from_item(&join.relation));
            }
        }
        items
    }

    fn from_item(&self, factor: &TableFactor) -> FromItem {
        match factor {
            TableFactor::Table { name, alias, args: None, .. } => {
                let relation = object_name(&name.to_string());
                let is_relation = !self.ctes.contains(&relation) && self.catalog.get(&relation).is_some();
                let qualifier = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or(relation);
                FromItem { qualifier: Some(qualifier), is_relation }
            }
            TableFactor::Derived { alias, .. } | TableFactor::Table { alias, .. } => {
                FromItem { qualifier: alias.as_ref().map(|a| a.name.value.clone()), is_relation: false }
            }
            _ => FromItem { qualifier: None, is_relation: false },
        }
    }

    fn hide_system_columns(&self, select: &mut Select) {
        let items = self.from_items(select);
        if !items.iter().any(|i| i.is_relation) {
            return;
        }
        let mut projection = Vec::with_capacity(select.projection.len());
        for item in std::mem::take(&mut select.projection) {
            match item {
                SelectItem::Wildcard(mut options) if items.len() == 1 => {
                    exclude_system_columns(&mut options);
                    projection.push(SelectItem::Wildcard(options));
                }
                // Several FROM items: `*` becomes `a.*, b.*, …` so each
                // relation's system columns can be left out by qualifier.
                SelectItem::Wildcard(options) if items.iter().all(|i| i.qualifier.is_some()) => {
                    for from in &items {
                        let mut options = options.clone();
                        if from.is_relation {
                            exclude_system_columns(&mut options);
                        }
                        let name = ObjectName::from(vec![Ident::new(from.qualifier.clone().unwrap_or_default())]);
                        projection.push(SelectItem::QualifiedWildcard(
                            SelectItemQualifiedWildcardKind::ObjectName(name),
                            options,
                        ));
                    }
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), mut options) => {
                    let qualifier = object_name(&name.to_string());
                    if items.iter().any(|i| i.is_relation && i.qualifier.as_deref() == Some(qualifier.as_str())) {
                        exclude_system_columns(&mut options);
                    }
                    projection.push(SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(name),
                        options,
                    ));
                }
                other => projection.push(other),
            }
        }
        select.projection = projection;
    }
}

fn exclude_system_columns(options: &mut WildcardAdditionalOptions) {
    let mut names: Vec<ObjectName> = match options.opt_exclude.take() {
        Some(ExcludeSelectItem::Single(name)) => vec![name],
        Some(ExcludeSelectItem::Multiple(names)) => names,
        None => Vec::new(),
    };
    for column in SYSTEM_COLUMNS {
        if !names.iter().any(|n| object_name(&n.to_string()) == column) {
            names.push(ObjectName::from(vec![Ident::new(column)]));
        }
    }
    options.opt_exclude = Some(ExcludeSelectItem::Multiple(names));
}

/// Whether a query reads any relation at all (used to skip needless work).
pub fn is_select(statement: &Statement) -> bool {
    matches!(statement, Statement::Query(q) if matches!(*q.body, SetExpr::Select(_) | SetExpr::SetOperation { .. } | SetExpr::Values(_) | SetExpr::Query(_)))
}
