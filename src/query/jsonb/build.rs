//! Building JSONB from SQL values: `to_jsonb(x)`, `jsonb_build_object(k, v,
//! …)` and `jsonb_build_array(v, …)`. Each value becomes JSON as PostgreSQL
//! converts it: numbers as numbers (`1e20::float8` is written out), text as
//! strings, JSONB as itself, times in ISO 8601 (`2026-11-20T12:00:00+00:00`),
//! intervals and BYTEA as their text, arrays as arrays, NULL as `null`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::value::{Json, written_out};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Build {
    ToJsonb,
    Object,
    Array,
}

pub fn functions() -> Vec<ScalarUDF> {
    [Build::ToJsonb, Build::Object, Build::Array]
        .into_iter()
        .map(|kind| {
            // Immutable (PostgreSQL's are stable, as times print in the
            // session's zone; Strata's sessions are all UTC), so views use them.
            let signature = match kind {
                Build::ToJsonb => Signature::any(1, Volatility::Immutable),
                // `jsonb_build_object()` is `{}`.
                _ => Signature::one_of(vec![TypeSignature::VariadicAny, TypeSignature::Nullary], Volatility::Immutable),
            };
            ScalarUDF::new_from_impl(BuildJsonb { kind, signature })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct BuildJsonb {
    kind: Build,
    signature: Signature,
}

impl ScalarUDFImpl for BuildJsonb {
    fn name(&self) -> &str {
        match self.kind {
            Build::ToJsonb => "to_jsonb",
            Build::Object => "jsonb_build_object",
            Build::Array => "jsonb_build_array",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(super::tag(Field::new(self.name(), DataType::Utf8, true))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        if self.kind == Build::Object && !args.args.len().is_multiple_of(2) {
            return Err(Error::InvalidParameterValue(
                "argument list must have even number of elements (jsonb_build_object takes alternating keys and values)"
                    .into(),
            )
            .into_datafusion());
        }
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let jsonb: Vec<bool> = args.arg_fields.iter().map(|f| super::is_jsonb(f)).collect();
        let out: StringArray = (0..rows)
            .map(|row| {
                let values = arrays
                    .iter()
                    .zip(&jsonb)
                    .map(|(array, is_jsonb)| Ok((ScalarValue::try_from_array(array, row)?, *is_jsonb)));
                let values: Vec<(ScalarValue, bool)> = values.collect::<DfResult<_>>()?;
                Ok(match self.kind {
                    Build::ToJsonb => {
                        let (value, is_jsonb) = &values[0];
                        (!value.is_null()).then(|| to_json(value, *is_jsonb)).transpose()?.map(|j| j.to_text())
                    }
                    Build::Array => {
                        let items = values.iter().map(|(v, j)| to_json(v, *j)).collect::<DfResult<_>>()?;
                        Some(Json::Array(items).to_text())
                    }
                    Build::Object => Some(object(&values)?.to_text()),
                })
            })
            .collect::<DfResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

fn object(values: &[(ScalarValue, bool)]) -> DfResult<Json> {
    let mut entries = Vec::with_capacity(values.len() / 2);
    for (pair, chunk) in values.chunks(2).enumerate() {
        let (key, value) = (&chunk[0].0, &chunk[1]);
        if key.is_null() {
            let message = format!("argument {}: key must not be null", 2 * pair + 1);
            return Err(Error::InvalidParameterValue(message).into_datafusion());
        }
        let key = key_text(key, chunk[0].1)
            .map_err(|()| {
                Error::InvalidParameterValue("key value must be scalar, not array, composite, or json".into())
            })
            .map_err(Error::into_datafusion)?;
        entries.push((key, to_json(&value.0, value.1)?));
    }
    Ok(Json::object(entries))
}

/// An object key: the value's text, as PostgreSQL prints it (a float's
/// own text, `1e+20`); an array or JSONB is no key.
fn key_text(key: &ScalarValue, is_jsonb: bool) -> Result<String, ()> {
    if is_jsonb || matches!(key, ScalarValue::List(_) | ScalarValue::LargeList(_) | ScalarValue::Struct(_)) {
        return Err(());
    }
    Ok(match key {
        ScalarValue::Float32(Some(f)) => crate::pg_text::float4(*f),
        ScalarValue::Float64(Some(f)) => crate::pg_text::float8(*f),
        other => match to_json(other, false).map_err(|_| ())? {
            Json::String(text) => text,
            other => other.to_text(),
        },
    })
}

/// One SQL value as JSON; `is_jsonb` when it is JSONB text.
fn to_json(value: &ScalarValue, is_jsonb: bool) -> DfResult<Json> {
    if value.is_null() {
        return Ok(Json::Null);
    }
    let number = |text: String| Json::Number(written_out(&text).unwrap_or(text));
    Ok(match value {
        ScalarValue::Boolean(Some(b)) => Json::Bool(*b),
        ScalarValue::Int8(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::Int16(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::Int32(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::Int64(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::UInt8(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::UInt16(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::UInt32(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::UInt64(Some(n)) => Json::Number(n.to_string()),
        ScalarValue::Float32(Some(f)) if f.is_finite() => number(crate::pg_text::float4(*f)),
        ScalarValue::Float64(Some(f)) if f.is_finite() => number(crate::pg_text::float8(*f)),
        ScalarValue::Float32(Some(f)) => Json::String(crate::pg_text::float4(*f)),
        ScalarValue::Float64(Some(f)) => Json::String(crate::pg_text::float8(*f)),
        ScalarValue::Decimal128(Some(v), _, scale) => number(format!("{v}e{}", -(*scale as i32))),
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => match is_jsonb
        {
            true => super::functions::parse(s)?,
            false => Json::String(s.clone()),
        },
        ScalarValue::List(list) => {
            let values = list.value(0);
            let items = (0..values.len())
                .map(|i| to_json(&ScalarValue::try_from_array(&values, i)?, false))
                .collect::<DfResult<_>>()?;
            Json::Array(items)
        }
        ScalarValue::Date32(Some(days)) => {
            let date = chrono::DateTime::from_timestamp(*days as i64 * 86_400, 0).map(|t| t.date_naive());
            Json::String(date.map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string()))
        }
        ScalarValue::TimestampSecond(Some(seconds), zone) => {
            Json::String(iso_timestamp(seconds.saturating_mul(1_000_000), zone.is_some()))
        }
        ScalarValue::TimestampMillisecond(Some(millis), zone) => {
            Json::String(iso_timestamp(millis.saturating_mul(1_000), zone.is_some()))
        }
        ScalarValue::TimestampMicrosecond(Some(micros), zone) => Json::String(iso_timestamp(*micros, zone.is_some())),
        ScalarValue::TimestampNanosecond(Some(nanos), zone) => {
            Json::String(iso_timestamp(nanos.div_euclid(1_000), zone.is_some()))
        }
        other => {
            // Intervals, BYTEA and the rest: their PostgreSQL text.
            let array = other.to_array()?;
            let text =
                crate::pg_text::as_text(&array)?.map(|t| t.value(0).to_string()).unwrap_or_else(|| match other {
                    ScalarValue::Binary(Some(bytes)) | ScalarValue::LargeBinary(Some(bytes)) => {
                        crate::pg_text::bytea(bytes)
                    }
                    other => other.to_string(),
                });
            Json::String(text)
        }
    })
}

/// A timestamp as JSON writes it: ISO 8601 with a `T`, the fraction only
/// when there is one, and `+00:00` for TIMESTAMPTZ.
fn iso_timestamp(micros: i64, with_zone: bool) -> String {
    let text = crate::pg_text::timestamp(micros, false).replacen(' ', "T", 1);
    if with_zone { format!("{text}+00:00") } else { text }
}
