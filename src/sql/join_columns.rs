//! NATURAL and USING joins as PostgreSQL has them. A NATURAL join is on
//! the columns both sides show: a relation's hidden system columns
//! (`_offset`, `_ts`) are on both sides too, and DataFusion joined on
//! them, so no row matched. And `*` over a USING join shows each USING
//! column once (Strata spells `*` over several relations as `a.*, b.*`,
//! which showed it twice). A USING column named without a qualifier is
//! the joined column, as in PostgreSQL: the left side's in an inner or
//! left join, the right side's in a right join, the two coalesced in a
//! full join (DataFusion found it ambiguous in WHERE, and took the left
//! side's everywhere else).

use std::collections::HashMap;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectName, OrderBy, OrderByKind, Query,
    Select, SelectItem, SetExpr, TableFactor, Value,
};

use super::ast::change_own_expressions;

/// A SELECT's USING joins.
#[derive(Debug, Default)]
pub struct Joins {
    /// The USING columns each FROM item joins by, in FROM order (relation,
    /// then its joins; none for a chain's first item).
    pub using: Vec<Vec<String>>,
    /// Each joined column, in the order the joins name them, where it is
    /// known which FROM items hold it; `complete` when every one is.
    pub merged: Vec<Merged>,
    pub complete: bool,
    /// What an unqualified name stands for: each joined column no other
    /// FROM item may have (PostgreSQL finds such a name ambiguous).
    pub named: HashMap<String, Expr>,
}

/// A column USING joins: what it stands for, and the positions of the FROM
/// items that hold it (whose `*` leaves it out).
#[derive(Debug, Clone)]
pub struct Merged {
    pub name: String,
    pub expr: Expr,
    pub holders: Vec<usize>,
}

/// Turns `select`'s NATURAL joins into USING joins on the columns both
/// sides show, where `columns_of` knows every relation of the join chain,
/// and names each USING column unqualified in the SELECT's own expressions
/// by the column it stands for.
pub fn using_columns(select: &mut Select, columns_of: impl Fn(&TableFactor) -> Option<Vec<String>>) -> Joins {
    let mut joins = Joins { complete: true, ..Default::default() };
    let mut merged: Vec<Merged> = Vec::new();
    // Every FROM item: position and columns, where known.
    let mut every: Vec<(usize, Option<Vec<String>>)> = Vec::new();
    for from in &mut select.from {
        joins.using.push(Vec::new());
        let mut left = columns_of(&from.relation);
        // The chain's items so far: position, qualifier and columns, where known.
        let mut items = vec![(joins.using.len() - 1, qualifier(&from.relation), left.clone())];
        every.push((joins.using.len() - 1, left.clone()));
        for join in &mut from.joins {
            let right = columns_of(&join.relation);
            let constraint = constraint_mut(&mut join.join_operator);
            if let (Some(left), Some(right), Some(constraint)) = (&left, &right, constraint)
                && matches!(constraint, JoinConstraint::Natural)
            {
                let common: Vec<&String> = left.iter().filter(|column| right.contains(column)).collect();
                *constraint = match common.is_empty() {
                    // No column in common: every pair of rows, as in PostgreSQL.
                    true => JoinConstraint::On(Expr::value(Value::Boolean(true))),
                    false => JoinConstraint::Using(
                        common.into_iter().map(|c| ObjectName::from(vec![Ident::with_quote('"', c)])).collect(),
                    ),
                };
            }
            let columns: Vec<String> = match constraint_mut(&mut join.join_operator) {
                Some(JoinConstraint::Using(names)) => {
                    names.iter().map(|n| super::parse::object_name(&n.to_string())).collect()
                }
                _ => Vec::new(),
            };
            let position = joins.using.len();
            let right_qualifier = qualifier(&join.relation);
            // The join's condition, where a column it joins on is not the
            // one DataFusion would take (the left relation's): after an
            // outer join, the coalesced or the right side's column.
            let mut conditions: Option<Vec<Expr>> = Some(Vec::new());
            let mut rejoined = false;
            for column in &columns {
                let earlier = merged.iter().position(|m| &m.name == column);
                let left_side = match earlier {
                    Some(at) => Some((merged[at].expr.clone(), merged[at].holders.clone())),
                    None => {
                        // The first item that has the column, if that is known.
                        let holder =
                            items.iter().find(|(_, _, known)| known.as_ref().is_none_or(|k| k.contains(column)));
                        match holder {
                            Some((at, Some(q), known)) if known.is_some() || items.len() == 1 => {
                                Some((qualified(q, column), vec![*at]))
                            }
                            _ => None,
                        }
                    }
                };
                let (Some((left_expr, mut holders)), Some(q)) = (left_side, &right_qualifier) else {
                    joins.complete = false;
                    conditions = None;
                    continue;
                };
                let right_expr = qualified(q, column);
                let first = items.iter().find(|(at, ..)| *at == holders[0]).and_then(|(_, q, _)| q.as_ref());
                rejoined |= first.is_none_or(|first| left_expr != qualified(first, column));
                if let Some(conditions) = &mut conditions {
                    conditions.push(Expr::BinaryOp {
                        left: Box::new(left_expr.clone()),
                        op: BinaryOperator::Eq,
                        right: Box::new(right_expr.clone()),
                    });
                }
                holders.push(position);
                let expr = match &join.join_operator {
                    JoinOperator::FullOuter(_) => super::ast::call("coalesce", vec![left_expr, right_expr]),
                    JoinOperator::Right(_) | JoinOperator::RightOuter(_) => right_expr,
                    _ => left_expr,
                };
                let joined = Merged { name: column.clone(), expr, holders };
                match earlier {
                    Some(at) => merged[at] = joined,
                    None => merged.push(joined),
                }
            }
            if rejoined
                && let Some(conditions) = conditions
                && let Some(constraint) = constraint_mut(&mut join.join_operator)
            {
                let condition = conditions.into_iter().reduce(|all, next| Expr::BinaryOp {
                    left: Box::new(all),
                    op: BinaryOperator::And,
                    right: Box::new(next),
                });
                *constraint = JoinConstraint::On(condition.expect("a USING join names a column"));
            }
            items.push((position, right_qualifier, right.clone()));
            every.push((position, right.clone()));
            joins.using.push(columns);
            left = match (left, right) {
                (Some(mut left), Some(right)) => {
                    left.extend(right.into_iter().filter(|column| !left.contains(column)).collect::<Vec<_>>());
                    Some(left)
                }
                _ => None,
            };
        }
    }
    joins.named = merged
        .iter()
        .filter(|m| {
            let elsewhere = |(at, known): &&(usize, Option<Vec<String>>)| {
                !m.holders.contains(at) && known.as_ref().is_none_or(|k| k.contains(&m.name))
            };
            !every.iter().any(|item| elsewhere(&item))
        })
        .map(|m| (m.name.clone(), m.expr.clone()))
        .collect();
    if !joins.named.is_empty() {
        name_joined_columns(select, &joins.named);
    }
    joins.merged = merged;
    joins
}

/// A query's ORDER BY names a joined column unqualified, where its SELECT
/// list has no column of that name (which ORDER BY would mean first).
pub fn name_joined_columns_in_order(query: &mut Query, named: &HashMap<String, Expr>) {
    let SetExpr::Select(select) = &*query.body else { return };
    let shown: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|p| p.value.clone()),
            _ => None,
        })
        .map(|name| super::parse::object_name(&name))
        .collect();
    let Some(OrderBy { kind: OrderByKind::Expressions(expressions), .. }) = &mut query.order_by else { return };
    for order in expressions {
        if let Expr::Identifier(ident) = &order.expr {
            let name = super::parse::object_name(&ident.to_string());
            if let Some(joined) = named.get(&name).filter(|_| !shown.contains(&name)) {
                order.expr = joined.clone();
            }
        }
    }
}

/// Names each USING column unqualified in `select`'s list, WHERE, GROUP BY
/// and HAVING by the column it stands for (a bare one keeps its name).
fn name_joined_columns(select: &mut Select, joined: &HashMap<String, Expr>) {
    let name = |expr: &mut Expr| {
        if let Expr::Identifier(ident) = expr
            && let Some(column) = joined.get(&super::parse::object_name(&ident.to_string()))
        {
            *expr = column.clone();
        }
    };
    for item in &mut select.projection {
        match item {
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => {
                if let Some(expr) = joined.get(&super::parse::object_name(&ident.to_string())) {
                    *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: ident.clone() };
                }
            }
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                change_own_expressions(expr, name);
            }
            _ => {}
        }
    }
    if let Some(selection) = &mut select.selection {
        change_own_expressions(selection, name);
    }
    if let GroupByExpr::Expressions(expressions, _) = &mut select.group_by {
        change_own_expressions(expressions, name);
    }
    if let Some(having) = &mut select.having {
        change_own_expressions(having, name);
    }
}

/// What names a FROM item's columns: its alias, else its relation's name.
fn qualifier(factor: &TableFactor) -> Option<Ident> {
    match factor {
        TableFactor::Table { alias: Some(alias), .. }
        | TableFactor::Derived { alias: Some(alias), .. }
        | TableFactor::Function { alias: Some(alias), .. }
        | TableFactor::UNNEST { alias: Some(alias), .. } => Some(alias.name.clone()),
        TableFactor::Table { name, alias: None, .. } => name.0.last()?.as_ident().cloned(),
        _ => None,
    }
}

fn qualified(qualifier: &Ident, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![qualifier.clone(), Ident::with_quote('"', column)])
}

fn constraint_mut(operator: &mut JoinOperator) -> Option<&mut JoinConstraint> {
    match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c) => Some(c),
        _ => None,
    }
}
