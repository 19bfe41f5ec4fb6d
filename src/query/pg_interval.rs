//! `interval * number`, `number * interval` and `interval / number`, which
//! DataFusion cannot plan ("Invalid interval arithmetic operation"), as
//! PostgreSQL computes them (`interval_mul`, `interval_div`): months and
//! days are scaled apart, a fraction of a month carries down as 30 days
//! and a fraction of a day as 24 hours (`interval '1 month' * 1.5` is
//! `1 mon 15 days`, `interval '1 day' / 2` is `12:00:00`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    SortExpr, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);
const DAYS_PER_MONTH: f64 = 30.0;
const SECONDS_PER_DAY: f64 = 86_400.0;

/// Registers the planner that turns the operators into [`ScaleInterval`].
pub fn register(context: &mut datafusion::prelude::SessionContext) -> DfResult<()> {
    context.register_expr_planner(Arc::new(IntervalArithmetic))
}

#[derive(Debug)]
struct IntervalArithmetic;

impl ExprPlanner for IntervalArithmetic {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let RawBinaryExpr { op, left, right } = expr;
        let (left, right) = same_zone(left, right, schema);
        let is_interval = |e: &Expr| e.get_type(schema).is_ok_and(|t| matches!(t, DataType::Interval(_)));
        // A parameter or NULL takes the number's place, as in PostgreSQL.
        let is_number = |e: &Expr| {
            matches!(e, Expr::Placeholder(_)) || e.get_type(schema).is_ok_and(|t| t.is_numeric() || t == DataType::Null)
        };
        let (interval, factor, divide) = match op {
            BinaryOperator::Multiply if is_interval(&left) && is_number(&right) => (left, right, false),
            BinaryOperator::Multiply if is_number(&left) && is_interval(&right) => (right, left, false),
            BinaryOperator::Divide if is_interval(&left) && is_number(&right) => (left, right, true),
            _ => return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        };
        let interval = Expr::Cast(Cast::new(Box::new(interval), INTERVAL));
        let factor = Expr::Cast(Cast::new(Box::new(factor), DataType::Float64));
        let function = ScalarUDF::new_from_impl(ScaleInterval::new(divide));
        Ok(PlannerResult::Planned(function.call(vec![interval, factor])))
    }
}

/// Two TIMESTAMPTZ operands of different zones (a stored value and
/// `'…'::timestamptz` typed in the session's): DataFusion's arithmetic
/// refuses them, so the other takes the stored one's (the same instants).
fn same_zone(left: Expr, right: Expr, schema: &DFSchema) -> (Expr, Expr) {
    let zone_of = |e: &Expr| match e.get_type(schema) {
        Ok(DataType::Timestamp(unit, Some(zone))) => Some((unit, zone)),
        _ => None,
    };
    let retag = |e: Expr, unit, zone| Expr::Cast(Cast::new(Box::new(e), DataType::Timestamp(unit, Some(zone))));
    match (zone_of(&left), zone_of(&right)) {
        (Some((_, l)), Some((unit, r))) if l != r && crate::session::time_zone::is_stored(&l) => {
            (left, retag(right, unit, l))
        }
        (Some((unit, l)), Some((_, r))) if l != r && crate::session::time_zone::is_stored(&r) => {
            (retag(left, unit, r), right)
        }
        _ => (left, right),
    }
}

/// `interval_mul(interval, float8)` or `interval_div(interval, float8)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ScaleInterval {
    divide: bool,
    signature: Signature,
}

impl ScaleInterval {
    fn new(divide: bool) -> Self {
        ScaleInterval { divide, signature: Signature::exact(vec![INTERVAL, DataType::Float64], Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for ScaleInterval {
    fn name(&self) -> &str {
        if self.divide { "interval_div" } else { "interval_mul" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(INTERVAL)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let intervals = arrays[0].as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
        let factors = arrays[1].as_primitive::<Float64Type>();
        let mut out = Vec::with_capacity(intervals.len());
        for row in 0..intervals.len() {
            if intervals.is_null(row) || factors.is_null(row) {
                out.push(None);
                continue;
            }
            let factor = factors.value(row);
            if self.divide && factor == 0.0 {
                return Err(DataFusionError::ArrowError(
                    Box::new(datafusion::arrow::error::ArrowError::DivideByZero),
                    None,
                ));
            }
            out.push(Some(scale(intervals.value(row), factor, self.divide)?));
        }
        Ok(ColumnarValue::Array(Arc::new(IntervalMonthDayNanoArray::from(out))))
    }
}

/// PostgreSQL's `TSROUND`: to the microsecond.
fn round_to_microseconds(value: f64) -> f64 {
    (value * 1_000_000.0).round_ties_even() / 1_000_000.0
}

fn out_of_range() -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(datafusion::arrow::error::ArrowError::ArithmeticOverflow("interval out of range".into())),
        None,
    )
}

fn to_i32(value: f64) -> DfResult<i32> {
    if value.is_nan() || value > i32::MAX as f64 || value < i32::MIN as f64 {
        return Err(out_of_range());
    }
    Ok(value as i32)
}

/// `span` times `factor` (or divided by it), unit by unit as PostgreSQL 15
/// does it; its time is in microseconds, Arrow's in nanoseconds.
fn scale(span: IntervalMonthDayNano, factor: f64, divide: bool) -> DfResult<IntervalMonthDayNano> {
    let by = |value: f64| if divide { value / factor } else { value * factor };
    let months = to_i32(by(span.months as f64))?;
    let mut days = to_i32(by(span.days as f64))?;
    let month_remainder_days = round_to_microseconds((by(span.months as f64) - months as f64) * DAYS_PER_MONTH);
    let mut second_remainder = round_to_microseconds(
        (by(span.days as f64) - days as f64 + month_remainder_days - month_remainder_days.trunc()) * SECONDS_PER_DAY,
    );
    if second_remainder.abs() >= SECONDS_PER_DAY {
        let whole_days = (second_remainder / SECONDS_PER_DAY).trunc();
        days = days.checked_add(whole_days as i32).ok_or_else(out_of_range)?;
        second_remainder -= whole_days * SECONDS_PER_DAY;
    }
    days = days.checked_add(month_remainder_days.trunc() as i32).ok_or_else(out_of_range)?;
    let microseconds = (by(span.nanoseconds as f64 / 1000.0) + second_remainder * 1_000_000.0).round_ties_even();
    if microseconds.is_nan() || microseconds.abs() > (i64::MAX / 1000) as f64 {
        return Err(out_of_range());
    }
    Ok(IntervalMonthDayNano::new(months, days, microseconds as i64 * 1000))
}

/// `pg_justify_duration(d)`: a duration as the interval PostgreSQL's
/// `timestamp - timestamp` gives ([`crate::pg_text::duration_as_interval`]).
/// Called only by the cast rewrite in `text_casts.rs`.
pub fn justify() -> Arc<ScalarUDF> {
    static JUSTIFY: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    JUSTIFY
        .get_or_init(|| {
            Arc::new(datafusion::logical_expr::create_udf(
                "pg_justify_duration",
                vec![DataType::Duration(datafusion::arrow::datatypes::TimeUnit::Microsecond)],
                INTERVAL,
                Volatility::Immutable,
                Arc::new(|args: &[ColumnarValue]| {
                    let scalar = matches!(args[0], ColumnarValue::Scalar(_));
                    let intervals = crate::pg_text::duration_as_interval(&args[0].to_array(1)?)?;
                    super::shaped(scalar, intervals)
                }),
            ))
        })
        .clone()
}

/// A comparison of intervals as PostgreSQL compares them, by their length
/// with a month of 30 days and a day of 24 hours (`interval '1 day' =
/// interval '24 hours'`, `now() - at < interval '36 hours'` for 30 hours
/// ago); Arrow compares months, then days, then the rest. `None` for any
/// other expression. Called after type coercion (a duration compared with
/// an interval is one by then).
pub fn compared_by_length(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    use datafusion::logical_expr::{Between, BinaryExpr, Operator};
    // One referring to an outer query is left alone: DataFusion turns such
    // a subquery into a join only while its columns are bare.
    let is_interval = |e: &Expr| !e.contains_outer() && matches!(e.get_type(schema), Ok(DataType::Interval(_)));
    let key = |e: &Expr| length_of(e.clone());
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) && is_interval(left)
                && is_interval(right) =>
        {
            Some(Expr::BinaryExpr(BinaryExpr::new(Box::new(key(left)), *op, Box::new(key(right)))))
        }
        Expr::InList(datafusion::logical_expr::expr::InList { expr: value, list, negated })
            if is_interval(value) && list.iter().all(is_interval) =>
        {
            let list = list.iter().map(key).collect();
            Some(Expr::InList(datafusion::logical_expr::expr::InList::new(Box::new(key(value)), list, *negated)))
        }
        Expr::Between(Between { expr: value, negated, low, high })
            if is_interval(value) && is_interval(low) && is_interval(high) =>
        {
            Some(Expr::Between(Between::new(Box::new(key(value)), *negated, Box::new(key(low)), Box::new(key(high)))))
        }
        _ => None,
    }
}

/// ORDER BY an interval sorts by its length, as PostgreSQL does (`25
/// hours` after `1 day`; Arrow compares months, then days, then the
/// rest), that of a query and a window's. Run before type coercion, which
/// refuses a window's RANGE frame over an interval.
#[derive(Debug, Default)]
pub struct OrderedByLength;

impl datafusion::optimizer::AnalyzerRule for OrderedByLength {
    fn name(&self) -> &str {
        "intervals_ordered_by_length"
    }

    fn analyze(&self, plan: LogicalPlan, _: &datafusion::common::config::ConfigOptions) -> DfResult<LogicalPlan> {
        ordered_by_length(plan)
    }
}

fn ordered_by_length(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    plan.transform_up_with_subqueries(|plan| match plan {
        LogicalPlan::Sort(mut sort) => {
            let changed = by_length(&mut sort.expr, sort.input.schema());
            let plan = LogicalPlan::Sort(sort);
            Ok(if changed { Transformed::yes(plan) } else { Transformed::no(plan) })
        }
        LogicalPlan::Window(_) => {
            let schema = plan.inputs()[0].schema().clone();
            // A window function's name shows its ORDER BY: kept as planned.
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                expr.transform_up(|expr| match expr {
                    Expr::WindowFunction(mut function) => {
                        let changed = by_length(&mut function.params.order_by, &schema);
                        let expr = Expr::WindowFunction(function);
                        Ok(if changed { Transformed::yes(expr) } else { Transformed::no(expr) })
                    }
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.update_data(|e| name.restore(e)))
            })
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// Makes each interval key of `keys` its length; whether one was.
fn by_length(keys: &mut [SortExpr], schema: &DFSchema) -> bool {
    let mut changed = false;
    for key in keys {
        if !key.expr.contains_outer() && matches!(key.expr.get_type(schema), Ok(DataType::Interval(_))) {
            key.expr = length_of(key.expr.clone());
            changed = true;
        }
    }
    changed
}

/// What an interval is compared and sorted by: its length.
fn length_of(interval: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(interval_length(), vec![interval]))
}

/// `pg_interval_length(i)`: an interval's length in nanoseconds, a month
/// counted as 30 days and a day as 24 hours (PostgreSQL's `interval_cmp`).
fn interval_length() -> Arc<ScalarUDF> {
    static LENGTH: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    LENGTH
        .get_or_init(|| {
            Arc::new(datafusion::logical_expr::create_udf(
                "pg_interval_length",
                vec![INTERVAL],
                DataType::Decimal128(38, 0),
                Volatility::Immutable,
                Arc::new(|args: &[ColumnarValue]| {
                    const DAY: i128 = 86_400_000_000_000;
                    let scalar = matches!(args[0], ColumnarValue::Scalar(_));
                    let intervals = args[0].to_array(1)?;
                    let lengths: datafusion::arrow::array::Decimal128Array = intervals
                        .as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>()
                        .iter()
                        .map(|v| {
                            v.map(|v| {
                                (v.months as i128 * DAYS_PER_MONTH as i128 + v.days as i128) * DAY
                                    + v.nanoseconds as i128
                            })
                        })
                        .collect();
                    super::shaped(scalar, Arc::new(lengths.with_precision_and_scale(38, 0)?))
                }),
            ))
        })
        .clone()
}

/// `pg_interval_text(t)`: interval text as PostgreSQL writes it (`1 day
/// 02:00:00`, `90` for seconds) in the words Arrow's cast reads (it read a
/// bare number as months). Called only by the cast rewrite in `text_casts.rs`.
pub fn interval_text() -> Arc<ScalarUDF> {
    static TEXT: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        Arc::new(datafusion::logical_expr::create_udf(
            "pg_interval_text",
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                let scalar = matches!(args[0], ColumnarValue::Scalar(_));
                let texts = args[0].to_array(1)?;
                let normalized: datafusion::arrow::array::StringArray =
                    texts.as_string::<i32>().iter().map(|t| t.map(crate::pg_text::normalize_interval)).collect();
                super::shaped(scalar, Arc::new(normalized))
            }),
        ))
    })
    .clone()
}
