//! Commands before events: the checks every write passes before anything is
//! appended (system columns, NOT NULL, VARCHAR length, JSON validity), shared
//! by INSERT and COPY, and the per-statement size limits.

pub mod copy;
mod copy_binary;
mod copy_fields;
pub mod returning;
pub mod serial;
pub mod values;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::record_batch::RecordBatch;

use crate::catalog::{RelationDef, SqlType};
use crate::error::{Error, Result};

/// Per-statement bounds, carried to sinks through the session config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub statement_rows_max: usize,
    pub statement_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let config = crate::config::Config::default();
        Limits { statement_rows_max: config.statement_rows_max, statement_bytes_max: config.statement_bytes_max }
    }
}

impl Limits {
    pub fn check_statement(&self, rows: usize, bytes: usize) -> Result<()> {
        if rows > self.statement_rows_max {
            return Err(Error::ProgramLimitExceeded(format!(
                "statement writes more than statement_rows_max ({}) rows",
                self.statement_rows_max
            )));
        }
        if bytes > self.statement_bytes_max {
            return Err(Error::ProgramLimitExceeded(format!(
                "statement or transaction buffers more than statement_bytes_max ({} bytes)",
                self.statement_bytes_max
            )));
        }
        Ok(())
    }
}

impl From<&crate::config::Config> for Limits {
    fn from(config: &crate::config::Config) -> Self {
        Limits { statement_rows_max: config.statement_rows_max, statement_bytes_max: config.statement_bytes_max }
    }
}

impl Limits {
    pub fn shared(self) -> Arc<Limits> {
        Arc::new(self)
    }
}

/// Drops the system columns from rows shaped like the relation's full schema.
pub fn user_columns(def: &RelationDef, batch: RecordBatch) -> Result<RecordBatch> {
    refuse_system_values(def, &batch)?;
    let projected = batch.project(&(0..def.columns.len()).collect::<Vec<_>>())?;
    // A query's text arrives as it reads it (`Utf8View`); the log stores `Utf8`.
    Ok(crate::query::read_types::conform(&projected, &def.user_schema())?)
}

/// A value given for a system column is refused (offsets and times are the log's).
pub fn refuse_system_values(def: &RelationDef, batch: &RecordBatch) -> Result<()> {
    for (index, column) in batch.columns().iter().enumerate().skip(def.columns.len()) {
        if column.null_count() != column.len() {
            let name = batch.schema().field(index).name().clone();
            return Err(Error::InvalidParameterValue(format!(
                "cannot insert a value into system column \"{name}\": it is assigned at commit"
            )));
        }
    }
    Ok(())
}

/// The rules a row must satisfy before it may become an event, and the rows
/// as they are stored: JSONB in PostgreSQL's normalized form.
pub fn check_rows(def: &RelationDef, batch: RecordBatch) -> Result<RecordBatch> {
    let mut normalized: Vec<(usize, ArrayRef)> = Vec::new();
    for (index, (column, array)) in def.columns.iter().zip(batch.columns()).enumerate() {
        if !column.nullable && array.null_count() > 0 {
            return Err(Error::NotNullViolation { relation: def.name.clone(), column: column.name.clone() });
        }
        if let Some(array) = check_values(&column.sql_type, array)? {
            normalized.push((index, array));
        }
    }
    if normalized.is_empty() {
        return Ok(batch);
    }
    let mut columns = batch.columns().to_vec();
    for (index, array) in normalized {
        columns[index] = array;
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Checks values of `sql_type` (a VARCHAR's length, also in an array's
/// elements); the values as stored where that differs (JSONB normalized).
fn check_values(sql_type: &SqlType, array: &ArrayRef) -> Result<Option<ArrayRef>> {
    match sql_type {
        SqlType::Varchar { max_chars: Some(max_chars) } => {
            let strings = array.as_string::<i32>();
            if strings.iter().flatten().any(|s| s.chars().count() > *max_chars as usize) {
                return Err(Error::StringTooLong { max_chars: *max_chars });
            }
            Ok(None)
        }
        SqlType::Jsonb => Ok(Some(normalize_json(array.as_string::<i32>())?)),
        SqlType::Array(element) => {
            let lists = array.as_list::<i32>();
            let Some(values) = check_values(element, lists.values())? else { return Ok(None) };
            let (field, offsets, _, nulls) = lists.clone().into_parts();
            Ok(Some(Arc::new(datafusion::arrow::array::ListArray::try_new(field, offsets, values, nulls)?)))
        }
        _ => Ok(None),
    }
}

/// Each text as PostgreSQL's JSONB input reads it, or 22P02.
fn normalize_json(texts: &StringArray) -> Result<ArrayRef> {
    let normalized: StringArray = texts
        .iter()
        .map(|text| text.map(|text| crate::query::jsonb::normalize(text).map_err(Error::from)).transpose())
        .collect::<Result<_>>()?;
    Ok(Arc::new(normalized))
}

/// Appends rows to a stream as one commit, or buffers them in the open transaction.
pub async fn append_or_buffer(
    log: &crate::log::Log,
    transaction: Option<&Arc<std::sync::Mutex<crate::query::scope::Transaction>>>,
    def: &RelationDef,
    rows: RecordBatch,
    limits: &Limits,
) -> Result<()> {
    let bytes = rows.get_array_memory_size();
    let change = crate::log::Change::Append { relation: def.id, rows };
    match transaction {
        Some(transaction) => {
            let mut transaction = transaction.lock().expect("transaction lock");
            transaction.bytes += bytes;
            limits.check_statement(0, transaction.bytes)?;
            transaction.changes.push(change);
        }
        None => {
            log.commit(vec![change]).await?;
        }
    }
    Ok(())
}

impl From<crate::log::Error> for datafusion::error::DataFusionError {
    fn from(error: crate::log::Error) -> Self {
        Error::from(error).into_datafusion()
    }
}
