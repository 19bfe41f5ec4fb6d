//! NATURAL and USING joins as PostgreSQL has them. A NATURAL join is on
//! the columns both sides show: a relation's hidden system columns
//! (`_offset`, `_ts`) are on both sides too, and DataFusion joined on
//! them, so no row matched. And `*` over a USING join shows each USING
//! column once (Strata spells `*` over several relations as `a.*, b.*`,
//! which showed it twice).

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, JoinConstraint, JoinOperator, ObjectName, Select, TableFactor, Value,
};

/// Turns `select`'s NATURAL joins into USING joins on the columns both
/// sides show, where `columns_of` knows every relation of the join chain;
/// returns the USING columns each FROM item joins by, in FROM order
/// (relation, then its joins; none for a chain's first item).
pub fn using_columns(
    select: &mut Select,
    columns_of: impl Fn(&TableFactor) -> Option<Vec<String>>,
) -> Vec<Vec<String>> {
    let mut using = Vec::new();
    for from in &mut select.from {
        using.push(Vec::new());
        let mut left = columns_of(&from.relation);
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
            using.push(match constraint_mut(&mut join.join_operator) {
                Some(JoinConstraint::Using(names)) => {
                    names.iter().map(|n| super::parse::object_name(&n.to_string())).collect()
                }
                _ => Vec::new(),
            });
            left = match (left, right) {
                (Some(mut left), Some(right)) => {
                    left.extend(right.into_iter().filter(|column| !left.contains(column)).collect::<Vec<_>>());
                    Some(left)
                }
                _ => None,
            };
        }
    }
    using
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
