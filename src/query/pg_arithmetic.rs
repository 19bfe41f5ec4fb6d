//! Arithmetic as PostgreSQL does it, where DataFusion's differs:
//! - `+`, `-` and `*` on integers and NUMERIC fail with 22003 (`integer out
//!   of range`) instead of wrapping around (DataFusion checks overflow only
//!   when a plan asks for it, and its SQL planner never does);
//! - NUMERIC division keeps 16 decimal places, rounded (`1 / 3.0` is
//!   0.3333333333333333, where Arrow gives 0.3333 truncated), fewer where
//!   the quotient's integer part could need the room;
//! - intervals compare and sort by their length (see `pg_interval.rs`).
//!
//! An analyzer rule, run after type coercion so both sides have their final
//! types, turns such operators into the functions below; expressions
//! compiled outside a plan (an UPDATE's SET) go through [`pg_arithmetic`].

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, AsArray, new_empty_array};
use datafusion::arrow::compute::kernels::{arity::try_binary, numeric};
use datafusion::arrow::datatypes::i256;
use datafusion::arrow::datatypes::{DataType, Decimal128Type};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// Decimal places NUMERIC division keeps at least (PostgreSQL's
/// NUMERIC_MIN_SIG_DIGITS; it varies the scale with the quotient's size,
/// an Arrow column has one scale).
const DIVISION_SCALE_MIN: i8 = 16;

/// NUMERIC's precision in Arrow (Decimal128).
const NUMERIC_DIGITS_MAX: u8 = 38;

#[derive(Debug, Default)]
pub struct PostgresArithmetic;

impl AnalyzerRule for PostgresArithmetic {
    fn name(&self) -> &str {
        "postgres_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        super::text_casts::rewrite_expressions(plan, &rewrite)
    }
}

/// The same for an expression compiled outside a plan, over `schema`
/// (after type coercion).
pub fn pg_arithmetic(expr: Expr, schema: &DFSchema) -> DfResult<Expr> {
    expr.transform_up(|expr| rewrite(expr, schema)).map(|t| t.data)
}

fn rewrite(expr: Expr, schema: &DFSchema) -> DfResult<Transformed<Expr>> {
    if let Some(compared) = super::pg_interval::compared_by_length(&expr, schema) {
        return Ok(Transformed::yes(compared));
    }
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else { return Ok(Transformed::no(expr)) };
    let op = match op {
        Operator::Plus => Op::Add,
        Operator::Minus => Op::Sub,
        Operator::Multiply => Op::Mul,
        Operator::Divide => Op::Div,
        _ => return Ok(Transformed::no(expr)),
    };
    // A column of an outer query is not in this plan's schema: left as is.
    let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    let checked = match (&left_type, &right_type) {
        (DataType::Decimal128(..), DataType::Decimal128(..)) => true,
        (l, r) if l == r && is_signed_integer(l) => op != Op::Div,
        _ => false,
    };
    if !checked {
        return Ok(Transformed::no(expr));
    }
    let args = vec![whole_scale(left, &left_type), whole_scale(right, &right_type)];
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(function(op), args));
    // What surrounds a product was coerced to the type planned for it; one
    // typed otherwise here (see `product_type`) keeps that type. (A
    // quotient's type is its own: DataFusion's coercion did not type it.)
    let planned = expr.get_type(schema)?;
    match op == Op::Mul && call.get_type(schema)? != planned {
        true => Ok(Transformed::yes(Expr::Cast(Cast::new(Box::new(call), planned)))),
        false => Ok(Transformed::yes(call)),
    }
}

/// Run before type coercion: a product of NUMERICs whose exact digits
/// exceed 38 is typed by [`product_type`] before what surrounds it is
/// coerced to its type (`avg(x) * avg(x) > 20`).
#[derive(Debug, Default)]
pub struct NumericProductsFirst;

impl AnalyzerRule for NumericProductsFirst {
    fn name(&self) -> &str {
        "numeric_products_first"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        super::text_casts::rewrite_expressions(plan, &product_first)
    }
}

/// The same for an expression compiled outside a plan (before coercion).
pub fn numeric_products_first(expr: Expr, schema: &DFSchema) -> DfResult<Expr> {
    expr.transform_up(|expr| product_first(expr, schema)).map(|t| t.data)
}

/// A product of operands NUMERIC once coerced (`CASE … THEN 0 ELSE a END
/// * b` too: each operand is coerced alone to find its type).
fn product_first(expr: Expr, schema: &DFSchema) -> DfResult<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Multiply, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let coerce = |operand: &Expr| -> Option<(Expr, DataType)> {
        match operand.get_type(schema) {
            Ok(data_type @ DataType::Decimal128(..)) => return Some((operand.clone(), data_type)),
            // A column or literal of another type is an integer or float:
            // its product with a NUMERIC keeps Arrow's type (scale 0 adds
            // no places), so nothing is coerced to find out.
            _ if matches!(operand, Expr::Column(_) | Expr::Literal(..)) => return None,
            _ => {}
        }
        let simplifier = datafusion::optimizer::simplify_expressions::ExprSimplifier::new(
            datafusion::logical_expr::simplify::SimplifyContext::builder()
                .with_schema(std::sync::Arc::new(schema.clone()))
                .build(),
        );
        let coerced = simplifier.coerce(operand.clone(), schema).ok()?;
        let data_type = coerced.get_type(schema).ok()?;
        Some((coerced, data_type))
    };
    let (Some((l, left_type)), Some((r, right_type))) = (coerce(left), coerce(right)) else {
        return Ok(Transformed::no(expr));
    };
    if product_type(&left_type, &right_type).is_none() {
        return Ok(Transformed::no(expr));
    }
    let args = vec![whole_scale(&l, &left_type), whole_scale(&r, &right_type)];
    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(function(Op::Mul), args))))
}

/// `expr` with a negative decimal scale (DataFusion reads `1e3` so where
/// no rewrite wrote it out) cast to scale 0, the scale the functions
/// below expect.
fn whole_scale(expr: &Expr, data_type: &DataType) -> Expr {
    match data_type {
        DataType::Decimal128(precision, scale) if *scale < 0 => {
            let digits = (*precision as i16 - *scale as i16).min(NUMERIC_DIGITS_MAX as i16) as u8;
            Expr::Cast(Cast::new(Box::new(expr.clone()), DataType::Decimal128(digits, 0)))
        }
        _ => expr.clone(),
    }
}

fn is_signed_integer(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Int16 | DataType::Int32 | DataType::Int64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

fn function(op: Op) -> Arc<ScalarUDF> {
    static FUNCTIONS: OnceLock<[Arc<ScalarUDF>; 4]> = OnceLock::new();
    let functions = FUNCTIONS.get_or_init(|| {
        [Op::Add, Op::Sub, Op::Mul, Op::Div].map(|op| {
            Arc::new(ScalarUDF::new_from_impl(Checked { op, signature: Signature::any(2, Volatility::Immutable) }))
        })
    });
    functions[op as usize].clone()
}

/// `a op b`, failing where PostgreSQL fails. Called only by the rule above
/// (after type checking), so it takes any two arguments.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    op: Op,
    signature: Signature,
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        match self.op {
            Op::Add => "add_checked",
            Op::Sub => "subtract_checked",
            Op::Mul => "multiply_checked",
            Op::Div => "divide_numeric",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, types: &[DataType]) -> DfResult<DataType> {
        if self.op == Op::Div {
            return Ok(division_type(&types[0], &types[1]));
        }
        if let (Op::Mul, Some(product)) = (self.op, product_type(&types[0], &types[1])) {
            return Ok(product);
        }
        // Arrow's kernels decide the type (a NUMERIC sum's precision and scale).
        let (left, right) = (new_empty_array(&types[0]), new_empty_array(&types[1]));
        Ok(self.apply(&left, &right)?.data_type().clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalars = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result = self.apply(&arrays[0], &arrays[1]).map_err(|e| overflow_in(e, arrays[0].data_type()))?;
        super::shaped(scalars, result)
    }
}

impl Checked {
    fn apply(&self, left: &ArrayRef, right: &ArrayRef) -> Result<ArrayRef, ArrowError> {
        match self.op {
            Op::Add => numeric::add(left, right),
            Op::Sub => numeric::sub(left, right),
            Op::Mul if product_type(left.data_type(), right.data_type()).is_some() => multiply_numeric(left, right),
            Op::Mul => numeric::mul(left, right),
            Op::Div => divide_numeric(left, right),
        }
    }
}

/// PostgreSQL's words for an overflow of `data_type`.
fn overflow_in(error: ArrowError, data_type: &DataType) -> DataFusionError {
    let error = match error {
        ArrowError::ArithmeticOverflow(_) => ArrowError::ArithmeticOverflow(
            match data_type {
                DataType::Int16 => "smallint out of range",
                DataType::Int32 => "integer out of range",
                DataType::Int64 => "bigint out of range",
                _ => "value overflows numeric format",
            }
            .into(),
        ),
        other => other,
    };
    DataFusionError::ArrowError(Box::new(error), None)
}

fn decimal_scale(data_type: &DataType) -> i8 {
    match data_type {
        DataType::Decimal128(_, scale) => (*scale).max(0),
        _ => 0,
    }
}

/// NUMERIC / NUMERIC: the operands' larger scale, and up to
/// [`DIVISION_SCALE_MIN`] places where the quotient's largest possible
/// integer part leaves room for them in 38 digits.
fn division_type(left: &DataType, right: &DataType) -> DataType {
    let (left_scale, right_scale) = (decimal_scale(left), decimal_scale(right));
    // |left / right| < 10^(integer digits of left + places of right).
    let integer_digits = decimal_precision(left) as i8 - left_scale + right_scale;
    let room = (NUMERIC_DIGITS_MAX as i8 - integer_digits).max(0);
    let scale = left_scale.max(right_scale).max(DIVISION_SCALE_MIN.min(room)).min(NUMERIC_DIGITS_MAX as i8);
    DataType::Decimal128(NUMERIC_DIGITS_MAX, scale)
}

fn decimal_precision(data_type: &DataType) -> u8 {
    match data_type {
        DataType::Decimal128(precision, _) => *precision,
        _ => NUMERIC_DIGITS_MAX,
    }
}

/// The quotient rounded half away from zero, as PostgreSQL rounds.
fn divide_numeric(left: &ArrayRef, right: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let DataType::Decimal128(precision, scale) = division_type(left.data_type(), right.data_type()) else {
        unreachable!("division_type is a decimal")
    };
    // left × 10^shift ÷ right has `scale` places.
    let shift = (scale - decimal_scale(left.data_type()) + decimal_scale(right.data_type())) as u32;
    let multiplier = i256::from_i128(10).checked_pow(shift).ok_or_else(overflow)?;
    let limit = i256::from_i128(10).wrapping_pow(precision as u32);
    let quotients = try_binary::<_, _, _, Decimal128Type>(
        left.as_primitive::<Decimal128Type>(),
        right.as_primitive::<Decimal128Type>(),
        |dividend, divisor| {
            if divisor == 0 {
                return Err(ArrowError::DivideByZero);
            }
            let (dividend, divisor) = (i256::from_i128(dividend), i256::from_i128(divisor));
            let dividend = dividend.checked_mul(multiplier).ok_or_else(overflow)?;
            let mut quotient = dividend.wrapping_div(divisor);
            let remainder = dividend.wrapping_rem(divisor);
            if remainder.wrapping_abs().wrapping_mul(i256::from_i128(2)) >= divisor.wrapping_abs() {
                let away = if (dividend < i256::ZERO) == (divisor < i256::ZERO) { i256::ONE } else { i256::MINUS_ONE };
                quotient = quotient.wrapping_add(away);
            }
            if quotient.wrapping_abs() >= limit {
                return Err(overflow());
            }
            quotient.to_i128().ok_or_else(overflow)
        },
    )?;
    Ok(Arc::new(quotients.with_precision_and_scale(precision, scale)?))
}

/// NUMERIC × NUMERIC whose exact product's digits may exceed 38: Arrow's
/// type keeps every place (the scales' sum), whole digits or not, and its
/// kernel does not check the precision (`avg(x) * avg(x)` of 1000 printed
/// 100000.000…). Here a product keeps its operands' larger scale, and up
/// to [`PRODUCT_SCALE_MIN`] places where that is less (28 whole digits
/// remain for plain NUMERICs), rounded half away from zero; one still too
/// large is 22003. `None` where Arrow's type holds every product.
fn product_type(left: &DataType, right: &DataType) -> Option<DataType> {
    let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) = (left, right) else { return None };
    if (*p1 as u16 + *p2 as u16) < NUMERIC_DIGITS_MAX as u16 || *s1 < 0 || *s2 < 0 {
        return None;
    }
    let scale = (*s1 + *s2).min(PRODUCT_SCALE_MIN.max((*s1).max(*s2)));
    Some(DataType::Decimal128(NUMERIC_DIGITS_MAX, scale))
}

/// Places a product of NUMERICs past 38 digits keeps at least, when its
/// operands have them (PostgreSQL keeps all; NUMERIC's default scale).
const PRODUCT_SCALE_MIN: i8 = 10;

/// The product at [`product_type`]'s scale, rounded half away from zero.
fn multiply_numeric(left: &ArrayRef, right: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let Some(DataType::Decimal128(precision, scale)) = product_type(left.data_type(), right.data_type()) else {
        unreachable!("called for products of that type")
    };
    let places = decimal_scale(left.data_type()) + decimal_scale(right.data_type());
    let divisor = i256::from_i128(10).wrapping_pow((places - scale) as u32);
    let limit = i256::from_i128(10).wrapping_pow(precision as u32);
    let products = try_binary::<_, _, _, Decimal128Type>(
        left.as_primitive::<Decimal128Type>(),
        right.as_primitive::<Decimal128Type>(),
        |a, b| {
            let exact = i256::from_i128(a).wrapping_mul(i256::from_i128(b));
            let mut product = exact.wrapping_div(divisor);
            let remainder = exact.wrapping_rem(divisor);
            if remainder.wrapping_abs().wrapping_mul(i256::from_i128(2)) >= divisor {
                product = product.wrapping_add(if exact < i256::ZERO { i256::MINUS_ONE } else { i256::ONE });
            }
            if product.wrapping_abs() >= limit {
                return Err(overflow());
            }
            product.to_i128().ok_or_else(overflow)
        },
    )?;
    Ok(Arc::new(products.with_precision_and_scale(precision, scale)?))
}

fn overflow() -> ArrowError {
    ArrowError::ArithmeticOverflow("value overflows numeric format".into())
}

/// `pg_round_to_integer(x)`: a NUMERIC or float rounded to a whole number
/// of its own type, as PostgreSQL rounds one cast to an integer: a NUMERIC
/// half away from zero, a float half to even (`rint`). Called only by the
/// cast rewrite in `text_casts.rs`.
pub fn round_to_integer() -> Arc<ScalarUDF> {
    static ROUND: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    ROUND
        .get_or_init(|| {
            Arc::new(ScalarUDF::new_from_impl(RoundToInteger { signature: Signature::any(1, Volatility::Immutable) }))
        })
        .clone()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundToInteger {
    signature: Signature,
}

/// A NUMERIC rounded to scale 0 keeps its whole digits and one for a carry.
fn rounded_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Decimal128(precision, scale) if *scale > 0 => {
            DataType::Decimal128((*precision as i16 - *scale as i16 + 1).clamp(1, NUMERIC_DIGITS_MAX as i16) as u8, 0)
        }
        other => other.clone(),
    }
}

impl ScalarUDFImpl for RoundToInteger {
    fn name(&self) -> &str {
        "pg_round_to_integer"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, types: &[DataType]) -> DfResult<DataType> {
        Ok(rounded_type(&types[0]))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::datatypes::{Float32Type, Float64Type};
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = args.args[0].to_array(args.number_rows)?;
        let rounded: ArrayRef = match values.data_type() {
            DataType::Decimal128(_, scale) if *scale > 0 => {
                let DataType::Decimal128(precision, _) = rounded_type(values.data_type()) else { unreachable!() };
                let unit = 10i128.pow(*scale as u32);
                let whole = values.as_primitive::<Decimal128Type>().unary::<_, Decimal128Type>(|v| {
                    let (quotient, remainder) = (v / unit, v % unit);
                    match remainder.abs() * 2 >= unit {
                        true => quotient + v.signum(),
                        false => quotient,
                    }
                });
                Arc::new(whole.with_precision_and_scale(precision, 0)?)
            }
            DataType::Float64 => {
                Arc::new(values.as_primitive::<Float64Type>().unary::<_, Float64Type>(f64::round_ties_even))
            }
            DataType::Float32 => {
                Arc::new(values.as_primitive::<Float32Type>().unary::<_, Float32Type>(f32::round_ties_even))
            }
            _ => values,
        };
        super::shaped(scalar, rounded)
    }
}
