//! `INSERT … VALUES` whose values are parameters, literals or `now()` — the
//! shape of almost every single-row write — turned into rows directly,
//! without planning a query: planning costs far more than the row itself.
//! Anything else (expressions, subqueries, a value this path cannot convert
//! exactly) returns `None`, and the statement takes the general path, which
//! also reports the errors.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::compute::CastOptions;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{Expr, FunctionArguments, Insert, SetExpr, UnaryOperator, Value};

use crate::catalog::{RelationDef, SqlType, UTC};
use crate::pg_text::{normalize_interval, normalize_timestamp, parse_bytea};
use crate::query::defaults::LeftOutDefaults;
use crate::sql::insert_columns::implicit_targets;
use crate::sql::parse::object_name;

/// The rows of `insert` in `def`'s user columns (every field nullable, not
/// yet checked), or `None` when the statement needs the general path.
pub fn values_rows(
    def: &RelationDef,
    insert: &Insert,
    params: Option<&ParamValues>,
    zone: &str,
) -> Option<RecordBatch> {
    if insert.on.is_some() || insert.returning.is_some() || insert.table_alias.is_some() || insert.overwrite {
        return None;
    }
    let source = insert.source.as_ref()?;
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
        return None;
    }
    let SetExpr::Values(values) = source.body.as_ref() else { return None };
    let targets: Vec<usize> = if insert.columns.is_empty() {
        implicit_targets(def, insert)
    } else {
        let mut targets = Vec::with_capacity(insert.columns.len());
        for name in &insert.columns {
            let name = object_name(&name.to_string());
            let position = def.columns.iter().position(|c| c.name == name)?;
            if targets.contains(&position) {
                return None;
            }
            targets.push(position);
        }
        targets
    };
    let now = chrono::Utc::now().timestamp_micros();
    let options = CastOptions { safe: false, ..Default::default() };
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(values.rows.len()); def.columns.len()];
    for row in &values.rows {
        if row.content.len() != targets.len() {
            return None;
        }
        for (expr, &position) in row.content.iter().zip(&targets) {
            let column = &def.columns[position];
            let mut value = scalar(expr, &column.sql_type, params, now)?;
            // A TIMESTAMPTZ's text without an offset is a time in the session's zone.
            if let (SqlType::TimestampTz, ScalarValue::Utf8(Some(text))) = (&column.sql_type, &value)
                && !crate::session::time_zone::is_utc(zone)
            {
                let instant = crate::session::time_zone::instant_from_text(text, zone)?;
                value = ScalarValue::TimestampMicrosecond(Some(instant), Some(UTC.into()));
            }
            columns[position].push(value.cast_to_with_options(&column.sql_type.arrow_type(), &options).ok()?);
        }
    }
    let rows = values.rows.len();
    let defaults = LeftOutDefaults::plan(def, &targets).ok()?;
    let mut arrays = Vec::with_capacity(def.columns.len());
    for position in 0..def.columns.len() {
        let array = if targets.contains(&position) {
            ScalarValue::iter_to_array(std::mem::take(&mut columns[position])).ok()?
        } else {
            defaults.column(def, position, rows).ok()?
        };
        arrays.push(array);
    }
    let fields: Vec<_> = def.user_schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).ok()
}

/// One VALUES item as a scalar, if it is a parameter, a literal or `now()`.
pub(crate) fn scalar(expr: &Expr, target: &SqlType, params: Option<&ParamValues>, now: i64) -> Option<ScalarValue> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Placeholder(id) => {
                let index = id.strip_prefix('$')?.parse::<usize>().ok()?.checked_sub(1)?;
                match params? {
                    ParamValues::List(list) => list.get(index).map(|p| p.value.clone()),
                    ParamValues::Map(_) => None,
                }
            }
            Value::Number(digits, _) => Some(ScalarValue::Utf8(Some(digits.clone()))),
            // Text for bytea and interval columns reads as PostgreSQL reads it
            // (`\x…` hex, clock forms such as `1 day 02:00:00`), as in COPY.
            Value::SingleQuotedString(text) => match target {
                SqlType::Array(element) => {
                    let array = crate::pg_array::parse_column(&StringArray::from(vec![text.as_str()]), element).ok()?;
                    ScalarValue::try_from_array(&array, 0).ok()
                }
                SqlType::Bytea => parse_bytea(text).map(|bytes| ScalarValue::Binary(Some(bytes))),
                SqlType::Interval => Some(ScalarValue::Utf8(Some(normalize_interval(text)))),
                SqlType::Timestamp | SqlType::TimestampTz => {
                    Some(ScalarValue::Utf8(Some(normalize_timestamp(text).into_owned())))
                }
                _ => Some(ScalarValue::Utf8(Some(text.clone()))),
            },
            Value::Boolean(b) => Some(ScalarValue::Boolean(Some(*b))),
            Value::Null => Some(ScalarValue::Null),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match expr.as_ref() {
            Expr::Value(value) => match &value.value {
                Value::Number(digits, _) => Some(ScalarValue::Utf8(Some(format!("-{digits}")))),
                _ => None,
            },
            _ => None,
        },
        Expr::Function(function)
            if matches!(function.args, FunctionArguments::None)
                || matches!(&function.args, FunctionArguments::List(list) if list.args.is_empty()) =>
        {
            let name = object_name(&function.name.to_string());
            (name == "now" || name == "current_timestamp")
                .then(|| ScalarValue::TimestampMicrosecond(Some(now), Some(UTC.into())))
        }
        _ => None,
    }
    .filter(|value| exact_for(value, target))
}

/// Whether converting `value` to `target` is exact where PostgreSQL rounds:
/// text with more fractional digits than a NUMERIC's scale goes the general way.
fn exact_for(value: &ScalarValue, target: &SqlType) -> bool {
    match (value, target) {
        (ScalarValue::Utf8(Some(text)), SqlType::Numeric { scale, .. }) => {
            let fraction = text.split_once('.').map_or(0, |(_, f)| f.trim_end().len());
            !text.contains(['e', 'E']) && fraction <= *scale as usize
        }
        _ => true,
    }
}
