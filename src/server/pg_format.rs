//! PostgreSQL's text for the values `arrow-pg` writes differently (floats,
//! timestamps; see [`crate::pg_text::as_text`]). Columns sent in binary are
//! left alone; others become text arrays before encoding (the field keeps its
//! PostgreSQL type).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldFormat;

use crate::pg_text::as_text;

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
