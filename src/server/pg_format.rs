//! PostgreSQL's text for the values `arrow-pg` writes differently (floats,
//! timestamps, intervals, large decimals; see [`crate::pg_text::as_text`]),
//! and the binary forms it writes differently (JSONB, NUMERIC; see
//! `binary_values.rs`). Other columns sent in binary are left alone; the
//! rest become text arrays before encoding (the field keeps its PostgreSQL
//! type).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema};
use datafusion::arrow::error::ArrowError;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldFormat;

use super::binary_values::{array_binary, interval_binary, jsonb_binary, numeric_binary};
use crate::pg_text::as_text;

/// `batch` with its text-format float, timestamp, interval and decimal
/// columns as PostgreSQL text, and any decimal of negative scale as a whole
/// number.
/// `jsonb` says which columns the client was told are JSONB (a batch read
/// from an older segment may lack the field's mark).
pub fn postgres_text(batch: RecordBatch, format: &Format, jsonb: &[bool]) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let mut fields: Vec<Field> = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut changed = false;
    for (index, (field, column)) in schema.fields().iter().zip(batch.columns()).enumerate() {
        // A decimal of negative scale (`arrow_cast(1500, 'Decimal128(5, -2)')`)
        // has no PostgreSQL form, and arrow-pg took its scale as a huge
        // positive one (the server grew without bound): whole numbers.
        let column = &match column.data_type() {
            DataType::Duration(_) => crate::pg_text::duration_as_interval(column)?,
            // REAL on the wire; arrow-pg has no encoder for half floats
            // (in a struct it panicked).
            data_type if let Some(wider) = without_half_floats(data_type) => {
                datafusion::arrow::compute::cast(column, &wider)?
            }
            DataType::Decimal128(precision, scale) if *scale < 0 => {
                let digits = (*precision as i16 - *scale as i16).min(38) as u8;
                datafusion::arrow::compute::cast(column, &DataType::Decimal128(digits, 0))?
            }
            _ => column.clone(),
        };
        let text = match format.format_for(index) {
            FieldFormat::Text => as_text(column)?,
            // NUMERIC and INTERVAL elements of an array in binary: arrow-pg
            // writes decimals through rust_decimal (it panicked past 28 digits).
            FieldFormat::Binary if let Some(element) = custom_binary_elements(column.data_type()) => {
                let lists = datafusion::arrow::compute::cast(column, &DataType::new_list(element.clone(), true))?;
                let lists = lists.as_list::<i32>();
                let (oid, elements) = match lists.values().data_type() {
                    DataType::Decimal128(_, scale) => (NUMERIC_OID, numeric_binary(lists.values(), *scale)),
                    _ => (
                        INTERVAL_OID,
                        interval_binary(&datafusion::arrow::compute::cast(
                            lists.values(),
                            &DataType::Interval(IntervalUnit::MonthDayNano),
                        )?),
                    ),
                };
                changed = true;
                fields.push(Field::new(field.name(), DataType::Binary, true));
                columns.push(array_binary(lists, oid, &elements));
                continue;
            }
            FieldFormat::Binary
                if jsonb.get(index) == Some(&true)
                    || matches!(column.data_type(), DataType::Decimal128(..) | DataType::Interval(_)) =>
            {
                let binary = match column.data_type() {
                    DataType::Decimal128(_, scale) => numeric_binary(column, *scale),
                    DataType::Interval(_) => interval_binary(&datafusion::arrow::compute::cast(
                        column,
                        &DataType::Interval(IntervalUnit::MonthDayNano),
                    )?),
                    _ => jsonb_binary(column)?,
                };
                changed = true;
                fields.push(Field::new(field.name(), DataType::Binary, true));
                columns.push(binary);
                continue;
            }
            FieldFormat::Binary => None,
        };
        match text {
            Some(text) => {
                changed = true;
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                columns.push(Arc::new(text));
            }
            None => {
                changed |= column.data_type() != field.data_type();
                fields.push(field.as_ref().clone().with_data_type(column.data_type().clone()));
                columns.push(column.clone());
            }
        }
    }
    if !changed {
        return Ok(batch);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// PostgreSQL's oids of the element types written here rather than by arrow-pg.
const NUMERIC_OID: u32 = 1700;
const INTERVAL_OID: u32 = 1186;

/// The element type of a list whose binary form is written here.
fn custom_binary_elements(data_type: &DataType) -> Option<&DataType> {
    match data_type {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
            matches!(f.data_type(), DataType::Decimal128(..) | DataType::Interval(_)).then(|| f.data_type())
        }
        _ => None,
    }
}

/// `data_type` with every half float in it (an element, a field, a
/// dictionary's values) made a REAL; `None` if it holds none.
fn without_half_floats(data_type: &DataType) -> Option<DataType> {
    let field = |field: &Arc<Field>| {
        without_half_floats(field.data_type()).map(|wider| Arc::new(field.as_ref().clone().with_data_type(wider)))
    };
    match data_type {
        DataType::Float16 => Some(DataType::Float32),
        DataType::List(element) => field(element).map(DataType::List),
        DataType::LargeList(element) => field(element).map(DataType::LargeList),
        DataType::FixedSizeList(element, size) => field(element).map(|f| DataType::FixedSizeList(f, *size)),
        DataType::Dictionary(key, value) => {
            without_half_floats(value).map(|wider| DataType::Dictionary(key.clone(), Box::new(wider)))
        }
        DataType::Struct(fields) => {
            let widened: Vec<Option<Arc<Field>>> = fields.iter().map(field).collect();
            widened.iter().any(Option::is_some).then(|| {
                DataType::Struct(
                    fields
                        .iter()
                        .zip(widened)
                        .map(|(original, wider)| wider.unwrap_or_else(|| original.clone()))
                        .collect(),
                )
            })
        }
        _ => None,
    }
}
