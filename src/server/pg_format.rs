//! PostgreSQL's text for the values `arrow-pg` writes differently: floats in
//! their shortest exact form (`1`, `2.5`, `1e+20`, not `1.0`), timestamps with
//! a fraction only when there is one (`2026-11-26 10:00:00+00`). Columns sent
//! in binary are left alone; others become text arrays before encoding (the
//! field keeps its PostgreSQL type).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldFormat;

/// `batch` with its text-format float and timestamp columns as PostgreSQL text.
pub fn postgres_text(batch: RecordBatch, format: &Format) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let mut fields: Vec<Field> = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut changed = false;
    for (index, (field, column)) in schema.fields().iter().zip(batch.columns()).enumerate() {
        let text = match format.format_for(index) {
            FieldFormat::Text => as_text(column)?,
            FieldFormat::Binary => None,
        };
        match text {
            Some(text) => {
                changed = true;
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                columns.push(Arc::new(text));
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    if !changed {
        return Ok(batch);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn as_text(column: &ArrayRef) -> Result<Option<StringArray>, ArrowError> {
    Ok(match column.data_type() {
        DataType::Float64 => Some(column.as_primitive::<Float64Type>().iter().map(|v| v.map(float8)).collect()),
        DataType::Float32 => Some(column.as_primitive::<Float32Type>().iter().map(|v| v.map(float4)).collect()),
        DataType::Timestamp(_, zone) => {
            let micros = datafusion::arrow::compute::cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let micros = micros.as_primitive::<TimestampMicrosecondType>();
            Some(micros.iter().map(|v| v.map(|v| timestamp(v, zone.is_some()))).collect())
        }
        _ => None,
    })
}

/// `float8` as PostgreSQL prints it (shortest digits that read back exactly;
/// exponent form below 1e-4 and from 1e15).
pub fn float8(value: f64) -> String {
    float(value, 15, value.to_string(), format!("{value:e}"))
}

/// `float4` as PostgreSQL prints it (exponent form below 1e-4 and from 1e6).
pub fn float4(value: f32) -> String {
    float(value as f64, 6, value.to_string(), format!("{value:e}"))
}

fn float(value: f64, digits: i32, plain: String, exponent: String) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if value == 0.0 {
        return plain;
    }
    let magnitude = value.abs().log10().floor() as i32;
    if (-4..digits).contains(&magnitude) {
        return plain;
    }
    // Rust writes `1.5e-5`; PostgreSQL `1.5e-05`.
    match exponent.split_once('e') {
        Some((mantissa, power)) => {
            let power: i32 = power.parse().unwrap_or(0);
            format!("{mantissa}e{}{:02}", if power < 0 { '-' } else { '+' }, power.abs())
        }
        None => plain,
    }
}

/// A timestamp (µs since the epoch, UTC) as PostgreSQL prints it in a UTC
/// session: `2026-11-26 10:00:00`, `.5` fractions without trailing zeros,
/// `+00` for TIMESTAMPTZ.
pub fn timestamp(micros: i64, with_zone: bool) -> String {
    let Some(time) = chrono::DateTime::from_timestamp_micros(micros) else { return micros.to_string() };
    let mut text = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    if with_zone {
        text.push_str("+00");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_postgresql_prints_them() {
        let cases =
            [(1.0, "1"), (2.5, "2.5"), (0.1, "0.1"), (-3.0, "-3"), (1e20, "1e+20"), (1.5e-5, "1.5e-05"), (0.0, "0")];
        for (value, text) in cases {
            assert_eq!(float8(value), text, "{value}");
        }
        assert_eq!(float8(123456789012345.0), "123456789012345");
        assert_eq!(float8(f64::NAN), "NaN");
        assert_eq!(float8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float4(1.5), "1.5");
        assert_eq!(float4(1234567.0), "1.234567e+06");
    }

    #[test]
    fn timestamps_print_a_fraction_only_when_there_is_one() {
        assert_eq!(timestamp(1_764_151_200_000_000, true), "2025-11-26 10:00:00+00");
        assert_eq!(timestamp(1_764_151_200_500_000, false), "2025-11-26 10:00:00.5");
        assert_eq!(timestamp(1_764_151_200_000_123, true), "2025-11-26 10:00:00.000123+00");
    }
}
