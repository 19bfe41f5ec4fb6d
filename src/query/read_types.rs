//! The types queries see. Text columns (TEXT, VARCHAR, JSONB) are stored as
//! `Utf8` (in the WAL, the tail and Parquet segments) but read as `Utf8View`,
//! as DataFusion's own Parquet tables do: a segment's strings are then
//! decoded without copying each one, and short ones are grouped and compared
//! inline. Whatever writes query results back into the log casts them to the
//! stored types again ([`conform`]).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

/// How a query reads a column stored as `stored`.
pub fn read_type(stored: &DataType) -> DataType {
    match stored {
        DataType::Utf8 => DataType::Utf8View,
        other => other.clone(),
    }
}

/// `stored` with each field as queries read it.
pub fn read_schema(stored: &Schema) -> SchemaRef {
    let fields: Vec<Field> =
        stored.fields().iter().map(|f| f.as_ref().clone().with_data_type(read_type(f.data_type()))).collect();
    Arc::new(Schema::new_with_metadata(fields, stored.metadata().clone()))
}

/// `batch` under `schema` (same columns in the same order), each column of
/// another type cast to the schema's.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema_ref() == schema {
        return Ok(batch.clone());
    }
    cast_columns(schema, batch.columns().to_vec(), batch.num_rows())
}

/// `columns` (`rows` long) under `schema`: names and nullability from the
/// schema, a column of another type cast to the schema's.
pub fn cast_columns(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch, ArrowError> {
    if columns.len() != schema.fields().len() {
        return Err(ArrowError::SchemaError(format!(
            "{} columns where {} were expected",
            columns.len(),
            schema.fields().len()
        )));
    }
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(column, field)| match (column.data_type(), field.data_type()) {
            (from, to) if from == to => Ok(column),
            (DataType::Duration(_), DataType::Interval(_)) => crate::pg_text::duration_as_interval(&column),
            _ => cast(&column, field.data_type()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
}
