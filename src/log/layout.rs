//! Stored rows in a relation's current schema. History is never rewritten:
//! rows stored before an `ALTER … ADD / DROP / RENAME COLUMN` keep the
//! columns they were written with. They are read by the name each column had
//! when they were written, except that a column added after the rows takes
//! its missing value (NULL, or its DEFAULT as evaluated by the ALTER) even
//! when the rows hold an older column of the same name; dropped columns are
//! left out.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ScalarValue;

use super::{Offset, Result};
use crate::catalog::{ColumnDef, RelationDef};

/// Where each of `columns` (positions in `def`'s log schema) comes from in
/// rows stored with `stored`, laid out as of offset `written_through` (when
/// their file was written, or just before the ALTER for rows in memory): an
/// index in `stored`, or `None` for a column they predate.
pub fn sources(def: &RelationDef, stored: &Schema, written_through: Offset, columns: &[usize]) -> Vec<Option<usize>> {
    let log = def.log_schema();
    columns
        .iter()
        .map(|p| match def.columns.get(*p) {
            Some(column) => stored.index_of(column.name_as_of(written_through)?).ok(),
            None => stored.index_of(log.field(*p).name()).ok(),
        })
        .collect()
}

/// `batch` (stored through `written_through`) as `columns` of `def`'s log schema.
pub fn adapt(
    def: &RelationDef,
    batch: &RecordBatch,
    written_through: Offset,
    columns: &[usize],
) -> Result<RecordBatch> {
    let sources = sources(def, batch.schema_ref(), written_through, columns);
    arrange(def, batch, &sources, columns)
}

/// `batch`'s columns picked by `sources` (indices in `batch`), missing ones
/// filled, as `columns` of `def`'s log schema.
pub fn arrange(
    def: &RelationDef,
    batch: &RecordBatch,
    sources: &[Option<usize>],
    columns: &[usize],
) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(def.log_schema().project(columns)?);
    let rows = batch.num_rows();
    let arrays = sources
        .iter()
        .zip(columns)
        .zip(schema.fields())
        .map(|((source, p), field)| match source {
            // INTERVAL is stored as text in Parquet (`segment::parquet_storable`).
            Some(index) if batch.column(*index).data_type() != field.data_type() => {
                Ok(datafusion::arrow::compute::cast(batch.column(*index), field.data_type())?)
            }
            Some(index) => Ok(batch.column(*index).clone()),
            None => missing_array(&def.columns[*p], rows),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new_with_options(schema, arrays, &RecordBatchOptions::new().with_row_count(Some(rows)))?)
}

/// `rows` copies of what rows written before `column` existed hold in it.
pub fn missing_array(column: &ColumnDef, rows: usize) -> Result<ArrayRef> {
    let data_type = column.sql_type.arrow_type();
    match &column.missing {
        None => Ok(new_null_array(&data_type, rows)),
        Some(text) => {
            let failed = |e: String| super::Error::Decode(format!("missing value of column {}: {e}", column.name));
            let value = match &column.sql_type {
                crate::catalog::SqlType::Array(element) => {
                    let texts = datafusion::arrow::array::StringArray::from(vec![text.as_str()]);
                    let array =
                        crate::pg_array::parse_column(&texts, element).map_err(|(_, e)| failed(e.to_string()))?;
                    ScalarValue::try_from_array(&array, 0).map_err(|e| failed(e.to_string()))?
                }
                _ => ScalarValue::Utf8(Some(text.clone())).cast_to(&data_type).map_err(|e| failed(e.to_string()))?,
            };
            Ok(value.to_array_of_size(rows).map_err(|e| super::Error::Decode(e.to_string()))?)
        }
    }
}

/// The name each of `def`'s columns has in rows laid out as of offset
/// `written_through`, `None` for a column added since.
pub fn names_as_of(def: &RelationDef, written_through: Offset) -> Vec<Option<String>> {
    def.columns.iter().map(|c| c.name_as_of(written_through).map(str::to_string)).collect()
}
