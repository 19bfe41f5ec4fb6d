//! An untyped literal or parameter beside an array is an array, as
//! PostgreSQL resolves it: `tags || '{b,c}'` concatenates (DataFusion
//! appended the whole text as one element), `tags @> '{x}'`,
//! `tags = '{a}'` and `$1 <@ tags` compare arrays (DataFusion found no
//! common type). `&&` is overlap. The literal becomes a cast, which
//! `text_casts` reads as PostgreSQL's array text. Planned before
//! DataFusion's own operators (see `database.rs`), which would take the
//! text as an element first.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::GetFieldAccess;
use datafusion::logical_expr::expr::{Placeholder, ScalarFunction};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr, RawFieldAccessExpr};
use datafusion::logical_expr::{Cast, Expr, ExprSchemable};
use datafusion::sql::sqlparser::ast::BinaryOperator;

#[derive(Debug)]
pub struct ArrayOperators;

impl ExprPlanner for ArrayOperators {
    /// `a[i]` counts from 1, and below 1 is NULL (see `pg_array_functions`).
    fn plan_field_access(
        &self,
        expr: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawFieldAccessExpr>> {
        match (&expr.field_access, list_type(&expr.expr, schema)) {
            (GetFieldAccess::ListIndex { key }, Some(_)) => {
                let element = super::pg_array_functions::array_element();
                let args = vec![expr.expr, key.as_ref().clone()];
                Ok(PlannerResult::Planned(Expr::ScalarFunction(ScalarFunction::new_udf(element, args))))
            }
            _ => Ok(PlannerResult::Original(expr)),
        }
    }

    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let RawBinaryExpr { op, left, right } = expr;
        let applies = matches!(
            op,
            BinaryOperator::StringConcat
                | BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
                | BinaryOperator::AtArrow
                | BinaryOperator::ArrowAt
                | BinaryOperator::PGOverlap
        );
        if !applies {
            return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }));
        }
        let (left, right) = match (list_type(&left, schema), list_type(&right, schema)) {
            (Some(list), None) => (left, as_array(right, &list)),
            (None, Some(list)) => (as_array(left, &list), right),
            _ => (left, right),
        };
        if op == BinaryOperator::PGOverlap {
            let overlap = datafusion::functions_nested::array_has::array_has_any_udf();
            return Ok(PlannerResult::Planned(Expr::ScalarFunction(ScalarFunction::new_udf(
                overlap,
                vec![left, right],
            ))));
        }
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }
}

fn list_type(expr: &Expr, schema: &DFSchema) -> Option<DataType> {
    match expr.get_type(schema) {
        Ok(list @ DataType::List(_)) => Some(list),
        _ => None,
    }
}

/// A string literal or an untyped parameter as an array of `list`'s type;
/// anything else as it is.
fn as_array(expr: Expr, list: &DataType) -> Expr {
    match expr {
        Expr::Literal(ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)), _) => {
            Expr::Cast(Cast::new(Box::new(expr), list.clone()))
        }
        Expr::Placeholder(Placeholder { id, field: None }) => {
            Expr::Placeholder(Placeholder { id, field: Some(Arc::new(Field::new("", list.clone(), true))) })
        }
        other => other,
    }
}
