//! The types of parameters DataFusion leaves open, as PostgreSQL infers
//! them: a parameter cast to a type is of that type, one that `x =
//! ANY($1)` searches is an array of `x`'s type, and one the client's Parse
//! types takes that type where the plan leaves it open (or would read a
//! NUMERIC as an integer). A client picks its encoder by the described
//! type (asyncpg sends a list only for an array type).
//!
//! Parameters cast to `oid` or `oid[]` are described with that type too.
//! The plan cannot say so (oids are planned as INTEGERs, with no trace of
//! the name), so the statement's text does. asyncpg, told `integer[]` for
//! its own type lookup's `$1::oid[]`, would look up `integer[]` with the
//! same query, again and again.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::expr::{Cast, Placeholder, ScalarFunction, TryCast};
use datafusion::logical_expr::{ExprSchemable, LogicalPlan};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CastKind, DataType as SqlType, Expr as SqlExpr, ObjectNamePart, Statement, Value,
    visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use pgwire::api::Type;

/// The type of each placeholder the plan leaves untyped that is directly
/// cast to one (`$1::int`, and the casts table UPDATEs put around SET
/// values), or searched by `x = ANY($1)` (DataFusion's `array_has($1, x)`).
pub fn placeholder_casts(plan: &LogicalPlan) -> datafusion::common::Result<HashMap<String, DataType>> {
    use datafusion::logical_expr::Expr;
    let mut found = HashMap::new();
    plan.apply_with_subqueries(|node| {
        let inputs = node.inputs();
        node.apply_expressions(|expr| {
            expr.apply(|expr| {
                let untyped = |expr: &Expr| match expr {
                    Expr::Placeholder(Placeholder { id, field: None }) => Some(id.clone()),
                    _ => None,
                };
                match expr {
                    Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field }) => {
                        if let Some(id) = untyped(inner) {
                            found.entry(id).or_insert_with(|| field.data_type().clone());
                        }
                    }
                    Expr::ScalarFunction(ScalarFunction { func, args })
                        if func.name() == "array_has"
                            && let [haystack, needle] = args.as_slice()
                            && let Some(id) = untyped(haystack)
                            && let Some(element) =
                                inputs.iter().find_map(|input| needle.get_type(input.schema()).ok())
                            && element != DataType::Null =>
                    {
                        found.entry(id).or_insert_with(|| DataType::new_list(element, true));
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}

/// The parameters (`$n`, 1-based) whose type the client's should replace:
/// those the plan leaves untyped, and integers the client sends as NUMERIC
/// or floats (`$1 * 3` of 0.5 is 1.5, not 0 times 3).
pub fn retypable(described: &[Option<DataType>], untyped: &[usize], client: &[Option<Type>]) -> Vec<usize> {
    let fractional = |n: usize| {
        client
            .get(n - 1)
            .and_then(Option::as_ref)
            .is_some_and(|t| [Type::NUMERIC, Type::FLOAT4, Type::FLOAT8].contains(t))
    };
    (1..=described.len())
        .filter(|&n| {
            untyped.contains(&n) || (described[n - 1].as_ref().is_some_and(DataType::is_integer) && fractional(n))
        })
        .collect()
}

/// `statement` with each placeholder of `retypable` (`$n`, 1-based) that
/// the client's Parse typed cast to that type (`$2` as `CAST($2 AS
/// numeric)`), as PostgreSQL types such a parameter; `None` if the client
/// typed none of them (text and unknown are left: an untyped parameter is
/// text already).
pub fn with_client_types(statement: &Statement, retypable: &[usize], client: &[Option<Type>]) -> Option<Statement> {
    let typed: HashMap<usize, SqlType> = retypable
        .iter()
        .filter_map(|&n| {
            let name = client.get(n - 1)?.as_ref()?.name();
            let castable = ["bool", "int2", "int4", "int8", "float4", "float8", "numeric", "bytea", "date"]
                .into_iter()
                .chain(["timestamp", "timestamptz", "interval", "jsonb"])
                .any(|known| known == name);
            let data_type = Parser::new(&PostgreSqlDialect {}).try_with_sql(name).ok()?.parse_data_type().ok()?;
            castable.then_some((n, data_type))
        })
        .collect();
    if typed.is_empty() {
        return None;
    }
    let mut statement = statement.clone();
    let _ = visit_expressions_mut(&mut statement, |expr| {
        if let SqlExpr::Value(value) = expr
            && let Value::Placeholder(id) = &value.value
            && let Some(data_type) =
                id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).and_then(|n| typed.get(&n))
        {
            *expr = SqlExpr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(expr.clone()),
                data_type: data_type.clone(),
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
    Some(statement)
}

/// `$n` (1-based) → its described type, for each placeholder cast directly
/// to `oid` or `oid[]` in `statement`; the first cast of a placeholder decides.
pub fn oid_typed(statement: &Statement) -> BTreeMap<usize, Type> {
    let mut found = BTreeMap::new();
    let _ = visit_expressions(statement, |expr| {
        if let SqlExpr::Cast { expr: inner, data_type, .. } = expr
            && let SqlExpr::Value(value) = inner.as_ref()
            && let Value::Placeholder(id) = &value.value
            && let Some(n) = id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
            && let Some(described) = oid_type(data_type)
        {
            found.entry(n).or_insert(described);
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// `oid`, or `oid[]`, as PostgreSQL types a parameter cast to it.
fn oid_type(data_type: &SqlType) -> Option<Type> {
    match data_type {
        SqlType::Custom(name, arguments)
            if arguments.is_empty()
                && matches!(name.0.last(), Some(ObjectNamePart::Identifier(last)) if last.value.eq_ignore_ascii_case("oid")) =>
        {
            Some(Type::OID)
        }
        SqlType::Array(ArrayElemTypeDef::SquareBracket(element, _)) => match oid_type(element)? {
            Type::OID => Some(Type::OID_ARRAY),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(sql: &str) -> Vec<(usize, Type)> {
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        let statement = datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, sql).unwrap().remove(0);
        oid_typed(&statement).into_iter().collect()
    }

    #[test]
    fn untyped_parameters_take_the_clients_types() {
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        let sql = "SELECT $1, $2, $3 + 1, $4";
        let statement = datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, sql).unwrap().remove(0);
        let client = [Some(Type::NUMERIC), Some(Type::TEXT), Some(Type::INT8), Some(Type::UNKNOWN)];
        let retyped = with_client_types(&statement, &[1, 2, 4], &client).unwrap();
        assert_eq!(retyped.to_string(), "SELECT CAST($1 AS NUMERIC), $2, $3 + 1, $4");
        assert!(with_client_types(&statement, &[2, 4], &client).is_none());
    }

    #[test]
    fn placeholders_cast_to_oid_types_are_described_with_them() {
        assert_eq!(
            described("SELECT t.oid FROM pg_type t WHERE t.oid = any($2::oid[]) AND $1::pg_catalog.oid > 0"),
            vec![(1, Type::OID), (2, Type::OID_ARRAY)]
        );
        assert_eq!(described("SELECT CAST($1 AS oid)"), vec![(1, Type::OID)]);
        // Other casts, and casts of expressions, leave the plan's type.
        assert_eq!(described("SELECT $1::int[], $2::int, ($3 + 1)::oid, $4::regtype[]"), vec![]);
    }
}
