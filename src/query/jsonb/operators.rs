//! PostgreSQL's JSONB operators, planned as function calls: `->`, `->>`,
//! `#>`, `#>>` by `datafusion-functions-json` (it walks a path without
//! building the whole value), `@>`, `<@`, `?`, `?|`, `?&` by
//! `functions.rs`. A string literal compared with a JSONB value is read as
//! JSONB, as PostgreSQL types it, so `payload = '{"a":1}'` compares values
//! and not spellings.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, ScalarUDF};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use datafusion_functions_json::udfs::{json_as_text_udf, json_get_json_udf};

use super::functions::Kind;
use crate::error::Error;

#[derive(Debug)]
pub struct JsonbOperators {
    functions: Vec<Arc<ScalarUDF>>,
}

impl JsonbOperators {
    pub fn new(functions: &[ScalarUDF]) -> JsonbOperators {
        JsonbOperators { functions: functions.iter().cloned().map(Arc::new).collect() }
    }

    fn call(&self, kind: Kind, args: Vec<Expr>) -> Expr {
        let func = self.functions.iter().find(|f| f.name() == kind.name()).expect("every JSONB function is registered");
        Expr::ScalarFunction(ScalarFunction { func: func.clone(), args })
    }
}

impl ExprPlanner for JsonbOperators {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let RawBinaryExpr { op, left, right } = expr;
        let planned = match &op {
            BinaryOperator::Arrow => match by_name_or_index(&right, schema) {
                true => get(json_get_json_udf(), left, index(right, schema)),
                false => self.call(Kind::ObjectField, vec![left, right]),
            },
            BinaryOperator::LongArrow => match by_name_or_index(&right, schema) {
                true => get(json_as_text_udf(), left, index(right, schema)),
                false => self.call(Kind::ObjectFieldText, vec![left, right]),
            },
            // PostgreSQL reads `j->-1` as `j -> -1` (an operator does not end
            // in `-`); sqlparser reads one operator `->-`.
            BinaryOperator::Custom(op) if op == "->-" => get(json_get_json_udf(), left, index(negative(right), schema)),
            BinaryOperator::Custom(op) if op == "->>-" => get(json_as_text_udf(), left, index(negative(right), schema)),
            BinaryOperator::HashArrow => get(json_get_json_udf(), left, text_array(right)?),
            BinaryOperator::HashLongArrow => get(json_as_text_udf(), left, text_array(right)?),
            BinaryOperator::Question => self.call(Kind::Exists, vec![left, right]),
            BinaryOperator::QuestionPipe => self.call(Kind::ExistsAny, vec![left, text_array(right)?]),
            BinaryOperator::QuestionAnd => self.call(Kind::ExistsAll, vec![left, text_array(right)?]),
            // `@>` and `<@` are also array containment: only text and JSONB here.
            BinaryOperator::AtArrow if is_text(&left, schema) && is_text(&right, schema) => {
                self.call(Kind::Contains, vec![self.as_jsonb(left), self.as_jsonb(right)])
            }
            BinaryOperator::ArrowAt if is_text(&left, schema) && is_text(&right, schema) => {
                self.call(Kind::Contains, vec![self.as_jsonb(right), self.as_jsonb(left)])
            }
            BinaryOperator::StringConcat if is_jsonb(&left, schema) || is_jsonb(&right, schema) => {
                self.call(Kind::Concat, vec![self.as_jsonb(left), self.as_jsonb(right)])
            }
            BinaryOperator::Minus if is_jsonb(&left, schema) => self.call(Kind::Delete, vec![left, right]),
            BinaryOperator::Eq | BinaryOperator::NotEq if is_jsonb(&left, schema) || is_jsonb(&right, schema) => {
                let (left, right) = (self.as_jsonb(left), self.as_jsonb(right));
                return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }));
            }
            _ => return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        };
        Ok(PlannerResult::Planned(planned))
    }
}

impl JsonbOperators {
    /// A string literal or a parameter as the JSONB it spells (checked and
    /// normalized); anything else as it is.
    fn as_jsonb(&self, expr: Expr) -> Expr {
        match &expr {
            Expr::Literal(value, _) if string_literal(value).is_some() => self.call(Kind::In, vec![expr]),
            Expr::Placeholder(_) => self.call(Kind::In, vec![expr]),
            _ => expr,
        }
    }
}

/// Whether `datafusion-functions-json` reads `->`'s key as PostgreSQL
/// does: an integer (an index), or a literal name that is no number (it
/// would take `'1'` as an index into an array too).
fn by_name_or_index(key: &Expr, schema: &DFSchema) -> bool {
    match key {
        Expr::Literal(value, _) => string_literal(value).is_none_or(|name| name.trim().parse::<i64>().is_err()),
        _ => !is_text(key, schema),
    }
}

fn get(function: Arc<ScalarUDF>, json: Expr, key: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction { func: function, args: vec![json, key] })
}

/// An integer key as a BIGINT, the one integer type the functions read (an
/// integer literal becomes an INT later, as PostgreSQL types it).
fn index(key: Expr, schema: &DFSchema) -> Expr {
    let integer = match &key {
        Expr::Literal(value, _) => value.data_type().is_integer(),
        _ => key.get_type(schema).is_ok_and(|t| t.is_integer()),
    };
    match integer {
        true => Expr::Cast(Cast::new(Box::new(key), DataType::Int64)),
        false => key,
    }
}

fn negative(expr: Expr) -> Expr {
    Expr::Negative(Box::new(expr))
}

fn string_literal(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => Some(s),
        _ => None,
    }
}

fn is_text(expr: &Expr, schema: &DFSchema) -> bool {
    matches!(expr.get_type(schema), Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null))
}

fn is_jsonb(expr: &Expr, schema: &DFSchema) -> bool {
    expr.to_field(schema).is_ok_and(|(_, field)| super::is_jsonb(&field))
}

/// A path or key list: PostgreSQL's array literal `'{a,b}'` as a `text[]`;
/// any other expression (`ARRAY['a', 'b']`) as it is.
fn text_array(expr: Expr) -> DfResult<Expr> {
    let Expr::Literal(value, _) = &expr else { return Ok(expr) };
    let Some(text) = string_literal(value) else { return Ok(expr) };
    let elements = crate::pg_array::parse(text).map_err(Error::into_datafusion)?;
    let values: Vec<ScalarValue> = elements.into_iter().map(ScalarValue::Utf8).collect();
    Ok(Expr::Literal(ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Utf8)), None))
}
