//! A cast of a timestamp, a float or an interval to text — `ts::text`, `'at ' || ts`,
//! `CAST(x AS TEXT)` — gives PostgreSQL's text (`2026-11-27 10:00:00+00`,
//! `1.5`), not Arrow's (`2026-11-27T10:00:00Z`, `1.5` but `1.0` for 1). An
//! analyzer rule, run after DataFusion's type coercion so the casts it adds
//! are included, turns such casts into calls of `pg_text`, keeping each
//! column's name. It also gives a text literal cast to a timestamp the
//! seconds PostgreSQL lets users leave out (`'2026-11-20 12:00'`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::pg_text::as_text;

/// The function casts to text become.
const PG_TEXT: &str = "pg_text";

#[derive(Debug, Default)]
pub struct PostgresTextCasts;

/// The same for an expression compiled outside a plan (an UPDATE's SET, a
/// DEFAULT), over `schema`, in the session's time zone `zone`.
pub fn postgres_text_casts(expr: Expr, schema: &DFSchema, zone: &str) -> DfResult<Expr> {
    expr.transform_up(|expr| rewrite(expr, schema, zone)).map(|t| t.data)
}

impl AnalyzerRule for PostgresTextCasts {
    fn name(&self) -> &str {
        "postgres_text_casts"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        let zone = crate::session::time_zone::of_statement(config);
        rewrite_expressions(plan, &|expr, schema| rewrite(expr, schema, &zone))
    }
}

/// Applies `rewrite` bottom-up to every expression of `plan` and its
/// subqueries, over the schema of the node's inputs, keeping each
/// expression's name.
pub(super) fn rewrite_expressions(
    plan: LogicalPlan,
    rewrite: &dyn Fn(Expr, &DFSchema) -> DfResult<Transformed<Expr>>,
) -> DfResult<LogicalPlan> {
    plan.transform_up_with_subqueries(|plan| {
        let mut schema = merge_schema(&plan.inputs());
        if plan.inputs().is_empty() {
            schema.merge(plan.schema());
        }
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            expr.transform_up(|expr| rewrite(expr, &schema)).map(|t| t.update_data(|e| name.restore(e)))
        })?
        .map_data(|plan| plan.recompute_schema())
    })
    .map(|t| t.data)
}

/// Run before DataFusion's type coercion: what SQL planning typed in the
/// session's zone (`'…'::timestamptz`; DataFusion's zone is set to the
/// session's, so table functions' arguments read times there too) is read
/// as PostgreSQL reads it there: a time a change to summer time skips
/// takes the offset before it, one the change back repeats is standard
/// time (Arrow refuses both). The type stays as planned.
#[derive(Debug, Default)]
pub struct StoredZoneFirst;

impl AnalyzerRule for StoredZoneFirst {
    fn name(&self) -> &str {
        "read_times_in_session_zone"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        let zone = crate::session::time_zone::of_statement(config);
        if crate::session::time_zone::is_utc(&zone) {
            return Ok(plan);
        }
        rewrite_expressions(plan, &|expr, schema| read_in_session_zone(expr, schema, &zone))
    }
}

fn read_in_session_zone(expr: Expr, schema: &DFSchema, zone: &str) -> DfResult<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else { return Ok(Transformed::no(expr)) };
    if !matches!(field.data_type(), DataType::Timestamp(_, Some(z)) if z.as_ref() == zone) {
        return Ok(Transformed::no(expr));
    }
    let local = match inner.get_type(schema) {
        Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => inner.as_ref().clone(),
        Ok(DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64) => Expr::Cast(Cast::new(
            inner.clone(),
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
        )),
        _ => return Ok(Transformed::no(expr)),
    };
    Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(in_zone_call(local, zone)), field.clone()))))
}

/// A duration as the interval PostgreSQL's `timestamp - timestamp` gives.
fn justified(duration: Expr) -> Expr {
    let micros = Expr::Cast(Cast::new(
        Box::new(duration),
        DataType::Duration(datafusion::arrow::datatypes::TimeUnit::Microsecond),
    ));
    Expr::ScalarFunction(ScalarFunction::new_udf(super::pg_interval::justify(), vec![micros]))
}

fn in_zone_call(local: Expr, zone: &str) -> Expr {
    let zone = Expr::Literal(ScalarValue::Utf8(Some(zone.to_string())), None);
    Expr::ScalarFunction(ScalarFunction::new_udf(pg_in_zone(), vec![local, zone]))
}

/// Functions that read a TIMESTAMPTZ as a time of day in the session's zone.
const CALENDAR_FUNCTIONS: [&str; 5] = ["date_trunc", "date_part", "extract", "to_char", "age"];

fn rewrite(expr: Expr, schema: &DFSchema, zone: &str) -> DfResult<Transformed<Expr>> {
    // Calendar functions and interval arithmetic (`at + interval '1 day'`)
    // over a stored TIMESTAMPTZ take their days and hours in the session's
    // zone; a result keeps the type it was planned with (the same instant).
    let retagged = match &expr {
        // Today is the session's.
        Expr::ScalarFunction(function)
            if function.func.name() == "current_date" && !crate::session::time_zone::is_utc(zone) =>
        {
            let mut options = ConfigOptions::default();
            options.execution.time_zone = Some(crate::catalog::UTC.into());
            let now = datafusion::functions::datetime::now(&options);
            let now = Expr::ScalarFunction(ScalarFunction::new_udf(now, vec![]));
            Some(Expr::Cast(Cast::new(Box::new(in_zone(now, schema, zone)), DataType::Date32)))
        }
        // `extract(hour FROM ts - ts)`: of the interval PostgreSQL's
        // subtraction gives (5 for 2 days 05:00:00, not 53).
        Expr::ScalarFunction(function)
            if function.func.name() == "date_part"
                && matches!(function.args.get(1).map(|a| a.get_type(schema)), Some(Ok(DataType::Duration(_)))) =>
        {
            let mut args = function.args.clone();
            args[1] = justified(args[1].clone());
            return Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(function.func.clone(), args))));
        }
        Expr::ScalarFunction(function) if CALENDAR_FUNCTIONS.contains(&function.func.name()) => {
            let args = function.args.iter().map(|a| in_zone(a.clone(), schema, zone)).collect();
            Some(Expr::ScalarFunction(ScalarFunction::new_udf(function.func.clone(), args)))
        }
        Expr::BinaryExpr(BinaryExpr { left, op: op @ (Operator::Plus | Operator::Minus), right })
            if is_interval(left, schema) || is_interval(right, schema) =>
        {
            let left = in_zone(left.as_ref().clone(), schema, zone);
            let right = in_zone(right.as_ref().clone(), schema, zone);
            Some(Expr::BinaryExpr(BinaryExpr::new(Box::new(left), *op, Box::new(right))))
        }
        _ => None,
    };
    if let Some(retagged) = retagged {
        if retagged == expr {
            return Ok(Transformed::no(expr));
        }
        let planned = expr.get_type(schema)?;
        let retagged = match retagged.get_type(schema)? == planned {
            true => retagged,
            false => Expr::Cast(Cast::new(Box::new(retagged), planned)),
        };
        return Ok(Transformed::yes(retagged));
    }
    let Expr::Cast(Cast { expr: inner, field }) = &expr else { return Ok(Transformed::no(expr)) };
    let data_type = field.data_type();
    // Text, a TIMESTAMP or a DATE to a stored TIMESTAMPTZ (a cast, or a
    // comparison with a column): a time in the session's zone.
    if let DataType::Timestamp(_, Some(target)) = data_type
        && crate::session::time_zone::is_stored(target)
        && !crate::session::time_zone::is_utc(zone)
    {
        let local = match inner.get_type(schema) {
            Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => Some(inner.as_ref().clone()),
            Ok(DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64) => Some(Expr::Cast(Cast::new(
                inner.clone(),
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
            ))),
            _ => None,
        };
        if let Some(local) = local {
            let instants = in_zone_call(local, zone);
            return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(instants), field.clone()))));
        }
    }
    // A stored TIMESTAMPTZ to a date, a time or a TIMESTAMP: its time in
    // the session's zone (Arrow's cast to a TIMESTAMP keeps the UTC time).
    // One of another zone (`ts AT TIME ZONE 'Europe/Berlin'`, an instant)
    // is left to Arrow, as before.
    if matches!(data_type, DataType::Date32 | DataType::Date64 | DataType::Time64(_) | DataType::Timestamp(_, None))
        && matches!(inner.get_type(schema), Ok(DataType::Timestamp(_, Some(z))) if crate::session::time_zone::is_stored(&z))
    {
        let local = in_zone(inner.as_ref().clone(), schema, zone);
        let local = match data_type {
            DataType::Timestamp(_, None) => Expr::ScalarFunction(ScalarFunction::new_udf(
                datafusion::functions::datetime::to_local_time(),
                vec![local],
            )),
            _ => local,
        };
        if local != **inner {
            return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(local), field.clone()))));
        }
    }
    // The other way, text to a timestamp: PostgreSQL's forms Arrow does not
    // read (`'2026-11-20 12:00'`, no seconds), in casts DataFusion's
    // coercion adds (`at > '…'`) as in written ones.
    if let (
        DataType::Timestamp(..),
        Expr::Literal(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)), _),
    ) = (data_type, inner.as_ref())
        && let std::borrow::Cow::Owned(normalized) = crate::pg_text::normalize_timestamp(text)
    {
        let literal = Expr::Literal(ScalarValue::Utf8(Some(normalized)), None);
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(literal), field.clone()))));
    }
    // A duration (`ts - ts`) stored or cast as an INTERVAL: whole days and
    // the rest, as PostgreSQL's subtraction gives it (Arrow's cast keeps
    // only nanoseconds: `49:00:00` for `2 days 01:00:00`).
    // A NUMERIC or a float to an integer is rounded, as PostgreSQL rounds
    // it (half away from zero, and a float's half to even); Arrow's cast
    // truncates (`2.7::int` was 2).
    if matches!(data_type, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)
        && matches!(
            inner.get_type(schema),
            Ok(DataType::Decimal128(_, 1..) | DataType::Float32 | DataType::Float64 | DataType::Float16)
        )
        && !matches!(inner.as_ref(), Expr::ScalarFunction(f) if f.func.name() == "pg_round_to_integer")
    {
        let call = Expr::ScalarFunction(ScalarFunction::new_udf(
            super::pg_arithmetic::round_to_integer(),
            vec![inner.as_ref().clone()],
        ));
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(call), field.clone()))));
    }
    // Text to an interval: PostgreSQL's forms, in the words Arrow reads.
    if let (DataType::Interval(_), Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)) =
        (data_type, inner.get_type(schema))
        && !matches!(inner.as_ref(), Expr::ScalarFunction(f) if f.func.name() == "pg_interval_text")
    {
        let text = Expr::Cast(Cast::new(inner.clone(), DataType::Utf8));
        let call = Expr::ScalarFunction(ScalarFunction::new_udf(super::pg_interval::interval_text(), vec![text]));
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(call), field.clone()))));
    }
    if let (DataType::Interval(_), Ok(DataType::Duration(_))) = (data_type, inner.get_type(schema)) {
        let call = justified(inner.as_ref().clone());
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(call), field.clone()))));
    }
    if let DataType::List(element) = data_type
        && let Some(element) = crate::view::sql_type_of(element)
        && matches!(inner.get_type(schema), Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8))
    {
        // Text to an array reads PostgreSQL's array text (Arrow would make
        // a one-element list of the whole text).
        let target = Expr::Literal(ScalarValue::try_from(data_type)?, None);
        let call =
            Expr::ScalarFunction(ScalarFunction::new_udf(pg_array_in(element), vec![inner.as_ref().clone(), target]));
        return Ok(Transformed::yes(call));
    }
    if !matches!(data_type, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
        return Ok(Transformed::no(expr));
    }
    // A column of an outer query is not in this plan's schema: left as is.
    let Ok(from) = inner.get_type(schema) else { return Ok(Transformed::no(expr)) };
    if !matches!(
        from,
        DataType::Timestamp(..)
            | DataType::Float32
            | DataType::Float64
            | DataType::Interval(_)
            | DataType::Duration(_)
            | DataType::List(_)
    ) {
        return Ok(Transformed::no(expr));
    }
    let call =
        Expr::ScalarFunction(ScalarFunction::new_udf(pg_text(), vec![in_zone(inner.as_ref().clone(), schema, zone)]));
    let text = match data_type {
        DataType::Utf8 => call,
        _ => Expr::Cast(Cast::new_from_field(Box::new(call), field.clone())),
    };
    Ok(Transformed::yes(text))
}

/// `pg_text(x)`: a timestamp or float as PostgreSQL prints it. Called only
/// by the rule above (after type checking), so it takes any one argument.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgText {
    signature: Signature,
}

fn pg_text() -> Arc<ScalarUDF> {
    static PG_TEXT_UDF: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    PG_TEXT_UDF
        .get_or_init(|| {
            Arc::new(ScalarUDF::new_from_impl(PgText { signature: Signature::any(1, Volatility::Immutable) }))
        })
        .clone()
}

impl ScalarUDFImpl for PgText {
    fn name(&self) -> &str {
        PG_TEXT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let argument = &args.args[0];
        // A scalar is printed once, not once per row of the batch.
        let array = argument.to_array(1)?;
        let text = match as_text(&array)? {
            Some(text) => Arc::new(text) as ArrayRef,
            None => datafusion::arrow::compute::cast(&array, &DataType::Utf8)?,
        };
        super::shaped(matches!(argument, ColumnarValue::Scalar(_)), text)
    }
}

/// `pg_array_in(text, NULL::t[])`: PostgreSQL's array text as an array of
/// the second argument's type, elements read as a column of that type reads
/// them. Called only by the rule above.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgArrayIn {
    signature: Signature,
    element: crate::catalog::SqlType,
}

fn pg_array_in(element: crate::catalog::SqlType) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(PgArrayIn { signature: Signature::any(2, Volatility::Immutable), element }))
}

impl ScalarUDFImpl for PgArrayIn {
    fn name(&self) -> &str {
        "pg_array_in"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arguments: &[DataType]) -> DfResult<DataType> {
        Ok(arguments[1].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let argument = &args.args[0];
        let texts = datafusion::arrow::compute::cast(&argument.to_array(1)?, &DataType::Utf8)?;
        let texts = texts.as_any().downcast_ref::<datafusion::arrow::array::StringArray>().expect("cast to Utf8");
        let lists = crate::pg_array::parse_column(texts, &self.element).map_err(|(_, e)| e.into_datafusion())?;
        let lists = datafusion::arrow::compute::cast(&lists, args.return_field.data_type())?;
        super::shaped(matches!(argument, ColumnarValue::Scalar(_)), lists)
    }
}

/// A stored TIMESTAMPTZ (in UTC, as every column and `now()` is) as the
/// same instants in `zone`, which DataFusion's functions and Arrow's casts
/// read times of day in; anything else (a value `AT TIME ZONE` another
/// zone, say) as it is.
fn in_zone(expr: Expr, schema: &DFSchema, zone: &str) -> Expr {
    match expr.get_type(schema) {
        Ok(DataType::Timestamp(unit, Some(current)))
            if crate::session::time_zone::is_stored(&current) && !crate::session::time_zone::is_utc(zone) =>
        {
            Expr::Cast(Cast::new(Box::new(expr), DataType::Timestamp(unit, Some(zone.into()))))
        }
        _ => expr,
    }
}

fn is_interval(expr: &Expr, schema: &DFSchema) -> bool {
    matches!(expr.get_type(schema), Ok(DataType::Interval(_)))
}

/// `pg_in_zone(x, zone)`: text (a time with or without an offset) or a
/// TIMESTAMP(µs) read as PostgreSQL reads a TIMESTAMPTZ in the session's
/// `zone` (see `session::time_zone`). Called only by the rules above.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgInZone {
    signature: Signature,
}

fn pg_in_zone() -> Arc<ScalarUDF> {
    static PG_IN_ZONE: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    PG_IN_ZONE
        .get_or_init(|| {
            Arc::new(ScalarUDF::new_from_impl(PgInZone { signature: Signature::any(2, Volatility::Immutable) }))
        })
        .clone()
}

impl ScalarUDFImpl for PgInZone {
    fn name(&self) -> &str {
        "pg_in_zone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some(crate::catalog::UTC.into())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use crate::session::time_zone::{instants_from_local, instants_from_texts};
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(zone))) = &args.args[1] else {
            return datafusion::common::exec_err!("pg_in_zone takes a zone name");
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = args.args[0].to_array(args.number_rows)?;
        let instants: ArrayRef = match values.data_type() {
            DataType::Timestamp(..) => {
                let local = datafusion::arrow::compute::cast(
                    &values,
                    &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
                )?;
                Arc::new(instants_from_local(local.as_primitive(), zone))
            }
            _ => {
                let texts = datafusion::arrow::compute::cast(&values, &DataType::Utf8)?;
                let texts = texts.as_string::<i32>();
                Arc::new(instants_from_texts(texts, zone).map_err(|row| {
                    crate::error::Error::InvalidTextRepresentation(format!(
                        "invalid input syntax for type timestamp with time zone: \"{}\"",
                        texts.value(row)
                    ))
                    .into_datafusion()
                })?)
            }
        };
        super::shaped(scalar, instants)
    }
}
