//! A cast of a timestamp, a float or an interval to text — `ts::text`, `'at ' || ts`,
//! `CAST(x AS TEXT)` — gives PostgreSQL's text (`2026-11-27 10:00:00+00`,
//! `1.5`), not Arrow's (`2026-11-27T10:00:00Z`, `1.5` but `1.0` for 1). An
//! analyzer rule, run after DataFusion's type coercion so the casts it adds
//! are included, turns such casts into calls of `pg_text`, keeping each
//! column's name. It also gives a text literal cast to a timestamp the
//! seconds PostgreSQL lets users leave out (`'2026-11-20 12:00'`).

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
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
        let zone = config.execution.time_zone.clone().unwrap_or_else(|| crate::catalog::UTC.into());
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

/// Functions that read a TIMESTAMPTZ as a time of day in the session's zone.
const CALENDAR_FUNCTIONS: [&str; 4] = ["date_trunc", "date_part", "to_char", "age"];

fn rewrite(expr: Expr, schema: &DFSchema, zone: &str) -> DfResult<Transformed<Expr>> {
    if let Expr::ScalarFunction(function) = &expr
        && CALENDAR_FUNCTIONS.contains(&function.func.name())
    {
        let args: Vec<Expr> = function.args.iter().map(|a| in_zone(a.clone(), schema, zone)).collect();
        if args != function.args {
            return Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(function.func.clone(), args))));
        }
        return Ok(Transformed::no(expr));
    }
    let Expr::Cast(Cast { expr: inner, field }) = &expr else { return Ok(Transformed::no(expr)) };
    let data_type = field.data_type();
    // Text to a TIMESTAMPTZ of another zone (a column's, in a comparison):
    // read as a time in the session's zone, then the same instant.
    if let DataType::Timestamp(unit, Some(target)) = data_type
        && target.as_ref() != zone
        && matches!(inner.get_type(schema), Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8))
    {
        let local = Expr::Cast(Cast::new(inner.clone(), DataType::Timestamp(*unit, Some(zone.into()))));
        let local = rewrite(local, schema, zone)?.data;
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(Box::new(local), field.clone()))));
    }
    // A TIMESTAMPTZ to a date, a time or a TIMESTAMP: its time in the
    // session's zone (Arrow's cast to a TIMESTAMP keeps the UTC time).
    if matches!(data_type, DataType::Date32 | DataType::Date64 | DataType::Time64(_) | DataType::Timestamp(_, None))
        && matches!(inner.get_type(schema), Ok(DataType::Timestamp(_, Some(_))))
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
        DataType::Timestamp(..) | DataType::Float32 | DataType::Float64 | DataType::Interval(_) | DataType::List(_)
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
        Ok(match argument {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&text, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(text),
        })
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
        Ok(match argument {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&lists, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(lists),
        })
    }
}

/// A TIMESTAMPTZ expression of another zone as the same instants in
/// `zone` (which DataFusion's functions and Arrow's casts read times of day
/// in); anything else as it is.
fn in_zone(expr: Expr, schema: &DFSchema, zone: &str) -> Expr {
    match expr.get_type(schema) {
        Ok(DataType::Timestamp(unit, Some(current))) if current.as_ref() != zone => {
            Expr::Cast(Cast::new(Box::new(expr), DataType::Timestamp(unit, Some(zone.into()))))
        }
        _ => expr,
    }
}
