//! The types PostgreSQL gives literals, where DataFusion's differ:
//! - an integer literal is INTEGER when it fits in one (BIGINT beyond):
//!   `SELECT 1` is `integer`, `int_column + 1` is INTEGER (and overflows as
//!   PostgreSQL's does, with 22003), `sum(1)` is BIGINT. DataFusion reads
//!   every integer literal as BIGINT, which drivers then read as a string
//!   (node-postgres) or a long (JDBC's `getObject`);
//! - a quoted literal of no stated type (`'2026-01-01'`, `'1 day'`) beside
//!   a typed operand takes the type PostgreSQL resolves for it: the other
//!   operand's in `at - '2026-01-01'` and `id + '1'`, an interval in
//!   `at + '1 day'`, the first typed argument's in `coalesce(at,
//!   '2026-01-01')`. DataFusion found no common type for any of these.
//!
//! Integer literals are retyped as a statement is planned, before its
//! parameters are filled in (a parameter's value is no literal: `$1 + 1`
//! keeps the type the client was told) and before DataFusion's type
//! coercion, which then types what surrounds them; expressions compiled
//! outside a plan (an UPDATE's SET) go through [`pg_literals`]. Unknown
//! operands are resolved by an expression planner, as the SQL is planned;
//! `coalesce` by its own coercion.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef, IntervalUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::WindowFunctionDefinition;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Subquery, Values,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// `plan` with its integer literals INTEGER where they fit, and its NUMERIC
/// parameters unconstrained. Left as
/// planned: a recursive query's (its working table was typed with them),
/// a LIMIT's (DataFusion reads it as BIGINT) and an INSERT's VALUES list
/// (typed by its target columns). A literal becomes a cast of itself, which
/// keeps the name every column reference goes by (`x + Int64(1)`); a VALUES
/// column of such literals becomes INTEGER, as PostgreSQL types it.
pub fn narrow_integer_literals(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    let recursive = plan.exists(|p| Ok(matches!(p, LogicalPlan::RecursiveQuery(_))))?;
    if recursive {
        return Ok(plan);
    }
    let insert = matches!(plan, LogicalPlan::Dml(_));
    // Once anything is narrowed, every plan above it is typed again, and
    // subqueries' references to outer columns too (the analyzer would type
    // the plans again, not the references).
    let mut narrowed_any = false;
    plan.transform_up_with_subqueries(|plan| {
        let plan = match plan {
            LogicalPlan::Values(values) if !insert => {
                let narrowed = narrowed_values(values)?;
                narrowed_any |= narrowed.transformed;
                return Ok(narrowed);
            }
            LogicalPlan::Limit(_) | LogicalPlan::Values(_) => return Ok(Transformed::no(plan)),
            plan if narrowed_any => retyped_outer_references(plan)?.data,
            plan => plan,
        };
        // Names are kept (a cast is invisible in most, not in a FILTER's).
        let names = NamePreserver::new(&plan);
        let rewritten = plan.map_expressions(|expr| {
            let name = names.save(&expr);
            expr.transform_up(narrowed).map(|t| t.update_data(|e| name.restore(e)))
        })?;
        narrowed_any |= rewritten.transformed;
        match narrowed_any {
            true => rewritten.map_data(|plan| plan.recompute_schema()).map(|t| Transformed::yes(t.data)),
            false => Ok(rewritten),
        }
    })
    .map(|t| t.data)
}

/// `plan` with its subqueries' references to its inputs' columns typed as
/// those columns are now: a column that became INTEGER below `plan` is
/// INTEGER in the subqueries too (a join DataFusion makes of them
/// compares both sides' types).
fn retyped_outer_references(plan: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    let mut outer = DFSchema::empty();
    for input in plan.inputs() {
        outer.merge(input.schema());
    }
    let retyped = |expr: Expr| {
        expr.transform(|expr| match expr {
            Expr::OuterReferenceColumn(field, column) => {
                match outer.field_with_name(column.relation.as_ref(), &column.name) {
                    Ok(now) if now.data_type() != field.data_type() => {
                        let field = Arc::new(field.as_ref().clone().with_data_type(now.data_type().clone()));
                        Ok(Transformed::yes(Expr::OuterReferenceColumn(field, column)))
                    }
                    _ => Ok(Transformed::no(Expr::OuterReferenceColumn(field, column))),
                }
            }
            expr => Ok(Transformed::no(expr)),
        })
    };
    plan.map_subqueries(|subquery| {
        let LogicalPlan::Subquery(Subquery { subquery: inner, outer_ref_columns, spans }) = subquery else {
            return Ok(Transformed::no(subquery));
        };
        // Once a reference is retyped, every plan above it is typed again.
        let mut changed = false;
        let inner = Arc::unwrap_or_clone(inner).transform_up(|plan| {
            let rewritten = plan.map_expressions(retyped)?;
            changed |= rewritten.transformed;
            match changed {
                true => rewritten.map_data(|plan| plan.recompute_schema()).map(|t| Transformed::yes(t.data)),
                false => Ok(rewritten),
            }
        })?;
        let outer_ref_columns =
            outer_ref_columns.into_iter().map(|expr| retyped(expr).map(|t| t.data)).collect::<DfResult<_>>()?;
        let subquery = Subquery { subquery: Arc::new(inner.data), outer_ref_columns, spans };
        Ok(Transformed::new_transformed(LogicalPlan::Subquery(subquery), inner.transformed))
    })
}

/// A VALUES list whose columns of integer literals that all fit an INTEGER
/// (NULLs aside) are INTEGER: `(VALUES (1), (2))` is `integer` in
/// PostgreSQL, `(VALUES (1), (3000000000))` `bigint`.
fn narrowed_values(values: Values) -> DfResult<Transformed<LogicalPlan>> {
    let fits = |expr: &Expr| match expr {
        Expr::Literal(ScalarValue::Int64(n), _) => n.is_none_or(|n| i32::try_from(n).is_ok()),
        Expr::Literal(ScalarValue::Null, _) => true,
        _ => false,
    };
    let narrow: Vec<bool> = (0..values.schema.fields().len())
        .map(|column| {
            values.schema.field(column).data_type() == &DataType::Int64
                && values.values.iter().all(|row| row.get(column).is_some_and(fits))
        })
        .collect();
    if !narrow.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Values(values)));
    }
    let rows = values
        .values
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&narrow)
                .map(|(expr, narrow)| match expr {
                    Expr::Literal(ScalarValue::Int64(n), metadata) if *narrow => {
                        Expr::Literal(ScalarValue::Int32(n.map(|n| n as i32)), metadata)
                    }
                    Expr::Literal(ScalarValue::Null, metadata) if *narrow => {
                        Expr::Literal(ScalarValue::Int32(None), metadata)
                    }
                    expr => expr,
                })
                .collect()
        })
        .collect();
    let fields: Vec<FieldRef> = values
        .schema
        .fields()
        .iter()
        .zip(&narrow)
        .map(|(field, narrow)| match narrow {
            true => Arc::new(field.as_ref().clone().with_data_type(DataType::Int32)),
            false => field.clone(),
        })
        .collect();
    let schema = DFSchema::from_unqualified_fields(fields.into(), values.schema.metadata().clone())?;
    Ok(Transformed::yes(LogicalPlan::Values(Values { schema: Arc::new(schema), values: rows })))
}

/// The same for an expression compiled outside a plan (before type coercion).
pub fn pg_literals(expr: Expr) -> DfResult<Expr> {
    expr.transform_up(narrowed).map(|t| t.data)
}

fn narrowed(expr: Expr) -> DfResult<Transformed<Expr>> {
    match expr {
        // A parameter typed by a NUMERIC(p, s) beside it is an unconstrained
        // NUMERIC, as PostgreSQL types it: `price * $1` with 0.125 is not
        // `price * 0.13` (its value would be rounded to the column's scale).
        Expr::Placeholder(mut placeholder) => {
            let wide = match placeholder.field.as_ref().map(|f| f.data_type()) {
                // Places for the value's own, whole digits for the column's.
                Some(DataType::Decimal128(precision, scale)) if *precision < 38 => {
                    let whole_digits = *precision as i8 - *scale;
                    DataType::Decimal128(38, (*scale).max(10).min(38 - whole_digits))
                }
                _ => return Ok(Transformed::no(Expr::Placeholder(placeholder))),
            };
            placeholder.field = placeholder.field.map(|f| Arc::new(f.as_ref().clone().with_data_type(wide)));
            Ok(Transformed::yes(Expr::Placeholder(placeholder)))
        }
        Expr::Literal(ScalarValue::Int64(Some(n)), _) if i32::try_from(n).is_ok() => {
            Ok(Transformed::yes(Expr::Cast(Cast::new(Box::new(expr), DataType::Int32))))
        }
        // PostgreSQL folds a minus into the number it negates, parentheses
        // or not: `-(-2147483648)` is the BIGINT 2147483648 (DataFusion
        // folds only `-2147483648`, which then fits an INTEGER).
        Expr::Negative(inner) => {
            let folded = match inner.as_ref() {
                Expr::Cast(Cast { expr: literal, field }) if *field.data_type() == DataType::Int32 => {
                    match literal.as_ref() {
                        Expr::Literal(ScalarValue::Int64(Some(n)), _) => n.checked_neg(),
                        _ => None,
                    }
                }
                _ => None,
            };
            match folded {
                Some(n) => narrowed(Expr::Literal(ScalarValue::Int64(Some(n)), None)).map(|t| Transformed::yes(t.data)),
                None => Ok(Transformed::no(Expr::Negative(inner))),
            }
        }
        // Arguments after the first of an aggregate (`nth_value(x, 2)`)
        // and every argument of a window function (`ntile(4)`, `lag(x, 1)`)
        // are settings DataFusion reads as BIGINT; `count(*)` counts `1`.
        Expr::AggregateFunction(mut function) => {
            let keep = if function.func.name() == "count" { 0 } else { 1 };
            let from = keep.min(function.params.args.len());
            let restored = restore(&mut function.params.args[from..]);
            Ok(Transformed::new_transformed(Expr::AggregateFunction(function), restored))
        }
        Expr::WindowFunction(mut window) => {
            let keep = match window.fun {
                WindowFunctionDefinition::AggregateUDF(ref f) if f.name() != "count" => 1,
                _ => 0,
            };
            let args = &mut window.params.args;
            let from = keep.min(args.len());
            let restored = restore(&mut args[from..]);
            Ok(Transformed::new_transformed(Expr::WindowFunction(window), restored))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// Undoes [`narrowed`] on `args`; whether any was.
fn restore(args: &mut [Expr]) -> bool {
    let mut restored = false;
    for arg in args {
        if let Expr::Cast(Cast { expr, field }) = arg
            && *field.data_type() == DataType::Int32
            && matches!(expr.as_ref(), Expr::Literal(ScalarValue::Int64(Some(_)), _))
        {
            *arg = expr.as_ref().clone();
            restored = true;
        }
    }
    restored
}

/// Resolves unknown operands of arithmetic as SQL is planned: the types of
/// an operator's result are needed then, before any analyzer rule runs.
#[derive(Debug)]
pub struct UnknownOperands;

impl ExprPlanner for UnknownOperands {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let RawBinaryExpr { op, left, right } = expr;
        let operator = match op {
            BinaryOperator::Plus => Operator::Plus,
            BinaryOperator::Minus => Operator::Minus,
            BinaryOperator::Multiply => Operator::Multiply,
            BinaryOperator::Divide => Operator::Divide,
            BinaryOperator::Modulo => Operator::Modulo,
            _ => return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        };
        if is_unknown(&left) == is_unknown(&right) {
            return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }));
        }
        let unknown_left = is_unknown(&left);
        let (known, unknown) = if unknown_left { (&right, &left) } else { (&left, &right) };
        let resolved = match known.get_type(schema) {
            Ok(other) => operand_type(operator, &other, unknown_left),
            // A column of an outer query is not in this plan's schema.
            Err(_) => None,
        };
        let resolved = match (resolved, unknown) {
            (Some(DataType::Decimal128(..)), Expr::Literal(value, _)) => Some(numeric_type_of(&value.to_string())),
            (resolved, _) => resolved,
        };
        // Interval text as PostgreSQL writes it (`'1 day 02:00:00'`, `'90'`
        // seconds), in the words Arrow reads.
        let interval = matches!(resolved, Some(DataType::Interval(_)));
        let as_interval = |unknown: Expr| match unknown {
            Expr::Literal(value, metadata) if interval => {
                let text = crate::pg_text::normalize_interval(&value.to_string());
                Expr::Literal(ScalarValue::Utf8(Some(text)), metadata)
            }
            other => other,
        };
        let (left, right) = match (resolved, unknown_left) {
            (None, _) => (left, right),
            (Some(resolved), true) => (typed(as_interval(left), &resolved), right),
            (Some(resolved), false) => (left, typed(as_interval(right), &resolved)),
        };
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }
}

/// `coalesce` whose text arguments take the type of its first argument of
/// another type (`coalesce(at, '2026-01-01')` is TIMESTAMPTZ), as
/// PostgreSQL types an unknown literal there; DataFusion's finds no
/// common type. The rest is DataFusion's.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgCoalesce {
    inner: Arc<ScalarUDF>,
}

pub fn coalesce() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgCoalesce { inner: datafusion::functions::core::coalesce() })
}

impl ScalarUDFImpl for PgCoalesce {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arguments: &[DataType]) -> DfResult<Vec<DataType>> {
        let first_typed = arguments.iter().find(|t| !is_text(t) && **t != DataType::Null);
        match first_typed {
            Some(typed) if arguments.iter().any(is_text) => {
                let arguments: Vec<DataType> =
                    arguments.iter().map(|t| if is_text(t) { typed.clone() } else { t.clone() }).collect();
                self.inner.coerce_types(&arguments)
            }
            _ => self.inner.coerce_types(arguments),
        }
    }

    fn return_type(&self, arguments: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arguments)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn conditional_arguments<'a>(&self, args: &'a [Expr]) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.inner().conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }
}

/// A quoted literal with no type written: PostgreSQL's `unknown`.
fn is_unknown(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Literal(ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)) | ScalarValue::LargeUtf8(Some(_)), _)
    )
}

fn is_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// The type of an unknown operand of `op` beside one of type `other`:
/// PostgreSQL's operator resolution, which first assumes the other
/// operand's type and otherwise takes the one candidate left (`+` of a
/// time has only an interval form). `None` where PostgreSQL finds no
/// operator or several (`date + '1 day'`).
fn operand_type(op: Operator, other: &DataType, unknown_left: bool) -> Option<DataType> {
    const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);
    let arithmetic =
        matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo);
    match other {
        DataType::Timestamp(..) if op == Operator::Plus => Some(INTERVAL),
        DataType::Timestamp(..) | DataType::Date32 if op == Operator::Minus => Some(other.clone()),
        DataType::Interval(_) if matches!(op, Operator::Plus | Operator::Minus) => Some(INTERVAL),
        // `interval * '2'`: the factor, as PostgreSQL's only candidate.
        DataType::Interval(_) if op == Operator::Multiply || (op == Operator::Divide && !unknown_left) => {
            Some(DataType::Float64)
        }
        // An unconstrained NUMERIC: the literal's digits are kept, not
        // rounded to the other operand's scale.
        DataType::Decimal128(..) | DataType::Decimal256(..) if arithmetic => Some(DataType::Decimal128(38, 10)),
        number if number.is_numeric() && arithmetic => Some(number.clone()),
        _ => None,
    }
}

/// NUMERIC text's own precision and scale (`'2.25'`: 3 and 2), so its
/// digits are kept as written; NUMERIC's widest for other text.
fn numeric_type_of(text: &str) -> DataType {
    let digits = text.trim().trim_start_matches(['-', '+']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (precision, scale) = (whole.len() + fraction.len(), fraction.len());
    match all_digits(whole) && all_digits(fraction) && (1..=38).contains(&precision) {
        true => DataType::Decimal128(precision.max(scale).max(1) as u8, scale as i8),
        false => DataType::Decimal128(38, 10),
    }
}

fn typed(unknown: Expr, data_type: &DataType) -> Expr {
    Expr::Cast(Cast::new(Box::new(unknown), data_type.clone()))
}
