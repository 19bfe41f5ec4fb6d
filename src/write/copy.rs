//! COPY … FROM STDIN: PostgreSQL's text and CSV formats parsed into the
//! relation's Arrow schema. Nothing is appended until the whole input parsed
//! and passed the write checks, so a bad row leaves no trace.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryBuilder, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;

use super::copy_binary::{BinaryFraming, Piece};
use super::copy_fields::{BadRecord, FieldColumn, record_end, split_record};
use super::{Limits, check_rows};
use crate::catalog::{RelationDef, SqlType, UTC};
use crate::error::{Error, Result};
use crate::pg_text::{normalize_interval, normalize_timestamp, parse_bytea};
use crate::query::defaults::LeftOutDefaults;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub header: bool,
    pub delimiter: u8,
    pub null: String,
    pub quote: u8,
    pub escape: u8,
    /// The session's zone: a TIMESTAMPTZ field without an offset is a time there.
    pub time_zone: String,
}

impl CopyOptions {
    pub fn new(format: CopyFormat) -> CopyOptions {
        match format {
            CopyFormat::Text => {
                let null = "\\N".into();
                CopyOptions {
                    format,
                    header: false,
                    delimiter: b'\t',
                    null,
                    quote: b'"',
                    escape: b'"',
                    time_zone: UTC.into(),
                }
            }
            CopyFormat::Csv | CopyFormat::Binary => {
                let null = String::new();
                CopyOptions {
                    format,
                    header: false,
                    delimiter: b',',
                    null,
                    quote: b'"',
                    escape: b'"',
                    time_zone: UTC.into(),
                }
            }
        }
    }
}

/// Rows parsed are converted to one Arrow batch this many at a time, or
/// sooner when their text passes `BATCH_TEXT_BYTES`.
const ROWS_PER_BATCH: usize = 8192;
const BATCH_TEXT_BYTES: usize = 64 << 20;

/// An incoming COPY: raw bytes arrive in pieces and are parsed into batches.
pub struct CopyIn {
    def: Arc<RelationDef>,
    /// Positions in the relation of the columns the input provides, in order.
    targets: Vec<usize>,
    /// DEFAULTs of the relation columns the input leaves out.
    defaults: LeftOutDefaults,
    /// Counters of the relation's SERIAL columns (see [`CopyIn::with_serials`]).
    serials: super::serial::Counters,
    options: CopyOptions,
    limits: Limits,
    buffered: Vec<u8>,
    /// The fields of rows parsed but not yet converted, one column per target.
    fields: Vec<FieldColumn>,
    pending_rows: usize,
    /// The input line of the first pending row, for error messages.
    pending_first_line: usize,
    /// Set by the end-of-data line `\.`: what follows is ignored, as
    /// PostgreSQL does.
    ended: bool,
    batches: Vec<RecordBatch>,
    /// Memory the converted batches hold, for the statement limit.
    batches_bytes: usize,
    rows: usize,
    line: usize,
    header_skipped: bool,
    binary: BinaryFraming,
}

impl CopyIn {
    /// The counters SERIAL columns the data leaves NULL take values from.
    pub fn with_serials(mut self, serials: super::serial::Counters) -> CopyIn {
        self.serials = serials;
        self
    }

    pub fn new(def: Arc<RelationDef>, targets: Vec<usize>, options: CopyOptions, limits: Limits) -> Result<CopyIn> {
        let defaults = LeftOutDefaults::plan(&def, &targets)?;
        let fields = targets.iter().map(|_| FieldColumn::new()).collect();
        Ok(CopyIn {
            def,
            targets,
            defaults,
            serials: Vec::new(),
            options,
            limits,
            buffered: Vec::new(),
            fields,
            pending_rows: 0,
            pending_first_line: 0,
            ended: false,
            batches: Vec::new(),
            batches_bytes: 0,
            rows: 0,
            line: 0,
            header_skipped: false,
            binary: BinaryFraming::default(),
        })
    }

    pub fn relation(&self) -> &Arc<RelationDef> {
        &self.def
    }

    pub fn column_count(&self) -> usize {
        self.targets.len()
    }

    pub fn is_binary(&self) -> bool {
        self.options.format == CopyFormat::Binary
    }

    /// Takes the next piece of input; complete records are parsed now so
    /// memory holds Arrow batches, not the raw text.
    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.buffered.is_empty() {
            // Parse straight from the message; keep only an incomplete last record.
            let parsed_up_to = self.parse_complete_records(data, false)?;
            self.buffered.extend_from_slice(&data[parsed_up_to..]);
        } else {
            let mut buffered = std::mem::take(&mut self.buffered);
            buffered.extend_from_slice(data);
            let parsed_up_to = self.parse_complete_records(&buffered, false)?;
            buffered.drain(..parsed_up_to);
            self.buffered = buffered;
        }
        let fields: usize = self.fields.iter().map(FieldColumn::bytes).sum();
        self.limits.check_statement(self.rows, self.buffered.len() + fields + self.batches_bytes)
    }

    /// Parses what remains and returns every row, checked, in the relation's user schema.
    pub fn finish(mut self) -> Result<(Arc<RelationDef>, Vec<RecordBatch>, usize)> {
        let buffered = std::mem::take(&mut self.buffered);
        self.parse_complete_records(&buffered, true)?;
        self.flush_pending()?;
        Ok((self.def, self.batches, self.rows))
    }

    /// Parses whole records from `input`; returns how many bytes were consumed.
    fn parse_complete_records(&mut self, input: &[u8], at_end: bool) -> Result<usize> {
        if self.options.format == CopyFormat::Binary {
            return self.parse_binary_tuples(input, at_end);
        }
        let mut consumed = 0;
        loop {
            if self.ended {
                return Ok(input.len());
            }
            let rest = &input[consumed..];
            let Some((record_len, next)) = record_end(rest, &self.options, at_end) else {
                break;
            };
            let record = &rest[..record_len];
            consumed += next;
            self.line += 1;
            if self.options.header && !self.header_skipped {
                self.header_skipped = true;
                continue;
            }
            if record == b"\\." {
                self.ended = true;
                continue;
            }
            split_record(record, &self.options, &mut self.fields).map_err(|reason| self.bad_line(reason))?;
            self.row_parsed()?;
        }
        Ok(consumed)
    }

    /// Counts a row whose fields were added, converting pending rows to a
    /// batch when there are enough of them.
    fn row_parsed(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            self.pending_first_line = self.line;
        }
        self.pending_rows += 1;
        self.rows += 1;
        if self.pending_rows >= ROWS_PER_BATCH
            || self.fields.iter().map(FieldColumn::bytes).sum::<usize>() >= BATCH_TEXT_BYTES
        {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Binary COPY: each field is read as the text PostgreSQL would print
    /// for it, then converted and checked as text input is.
    fn parse_binary_tuples(&mut self, input: &[u8], at_end: bool) -> Result<usize> {
        let mut consumed = 0;
        loop {
            if self.ended {
                if consumed < input.len() {
                    return Err(Error::BadCopyFile("received copy data after EOF marker".into()));
                }
                break;
            }
            let piece =
                self.binary.next(&input[consumed..]).map_err(|reason| self.bad_line(BadRecord::Format(reason)))?;
            let Some((piece, used)) = piece else {
                // Input may end where a tuple would start (no trailer), not before the header.
                if at_end && (consumed < input.len() || !self.binary.header_read()) {
                    let reason = match self.binary.header_read() {
                        true => "unexpected end of file",
                        false => "COPY file signature not recognized",
                    };
                    return Err(self.bad_line(BadRecord::Format(reason.into())));
                }
                break;
            };
            consumed += used;
            let fields = match piece {
                Piece::Header => continue,
                Piece::End => {
                    self.ended = true;
                    continue;
                }
                Piece::Tuple(fields) => fields,
            };
            self.line += 1;
            if fields.len() != self.targets.len() {
                let reason = format!("row field count is {}, expected {}", fields.len(), self.targets.len());
                return Err(self.bad_line(BadRecord::Format(reason)));
            }
            for (slot, field) in fields.into_iter().enumerate() {
                let column = &self.def.columns[self.targets[slot]];
                let text = field.map(|bytes| crate::pg_binary::field_text(&column.sql_type, bytes)).transpose();
                let text = text.map_err(|error| self.in_line(error, &column.name))?;
                self.fields[slot].push(text.as_deref()).map_err(|reason| self.bad_line(reason))?;
            }
            self.row_parsed()?;
        }
        Ok(consumed)
    }

    /// `error` with where in the input it happened.
    fn in_line(&self, error: Error, column: &str) -> Error {
        let at = format!(" (COPY {}, line {}, column {column})", self.def.name, self.line);
        match error {
            Error::InvalidTextRepresentation(message) => Error::InvalidTextRepresentation(message + &at),
            Error::CharacterNotInRepertoire(message) => Error::CharacterNotInRepertoire(message + &at),
            Error::InvalidParameterValue(message) => Error::InvalidParameterValue(message + &at),
            other => other,
        }
    }

    fn bad_line(&self, reason: BadRecord) -> Error {
        let at = format!("(COPY {}, line {})", self.def.name, self.line);
        match reason {
            BadRecord::Format(reason) => Error::BadCopyFile(format!("{reason} {at}")),
            BadRecord::Encoding(reason) => Error::CharacterNotInRepertoire(format!("{reason} {at}")),
        }
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let row_count = std::mem::take(&mut self.pending_rows);
        let first_line = self.pending_first_line;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.def.columns.len());
        for (position, column) in self.def.columns.iter().enumerate() {
            let array = match self.targets.iter().position(|t| *t == position) {
                Some(field) => {
                    let bad_value = |row: usize, value: String| {
                        Error::InvalidTextRepresentation(format!(
                            "invalid input syntax for type {}: \"{value}\" (COPY {}, line {}, column {})",
                            column.sql_type.sql_name(),
                            self.def.name,
                            first_line + row,
                            column.name
                        ))
                    };
                    let texts = self.fields[field].take_strings().map_err(|row| {
                        Error::CharacterNotInRepertoire(format!(
                            "invalid byte sequence for encoding \"UTF8\" (COPY {}, line {}, column {})",
                            self.def.name,
                            first_line + row,
                            column.name
                        ))
                    })?;
                    match &column.sql_type {
                        SqlType::Array(element) => {
                            crate::pg_array::parse_column(&texts, element).map_err(|(row, error)| match error {
                                Error::InvalidTextRepresentation(message) => Error::InvalidTextRepresentation(format!(
                                    "{message} (COPY {}, line {}, column {})",
                                    self.def.name,
                                    first_line + row,
                                    column.name
                                )),
                                other => other,
                            })?
                        }
                        _ => convert_in(texts, &column.sql_type, &self.options.time_zone)
                            .map_err(|(row, value)| bad_value(row, value))?,
                    }
                }
                None => self.defaults.column(&self.def, position, row_count)?,
            };
            columns.push(array);
        }
        super::serial::fill_columns(&self.def, &mut columns, &self.serials)?;
        // A NULL in a NOT NULL column (which would make the batch invalid
        // for the schema), named.
        let null_in = self.def.columns.iter().zip(&columns).find(|(c, a)| !c.nullable && a.null_count() > 0);
        if let Some((column, _)) = null_in {
            return Err(Error::NotNullViolation { relation: self.def.name.clone(), column: column.name.clone() });
        }
        let batch =
            RecordBatch::try_new(self.def.user_schema(), columns).map_err(|e| Error::Internal(e.to_string()))?;
        let batch = check_rows(&self.def, batch)?;
        self.batches_bytes += batch.get_array_memory_size();
        self.batches.push(batch);
        Ok(())
    }
}

/// Converts text values to the column type; on failure, the row and value.
pub(crate) fn convert(texts: StringArray, sql_type: &SqlType) -> Result<ArrayRef, (usize, String)> {
    convert_in(texts, sql_type, UTC)
}

/// [`convert`], a TIMESTAMPTZ without an offset read as a time in `zone`.
fn convert_in(texts: StringArray, sql_type: &SqlType, zone: &str) -> Result<ArrayRef, (usize, String)> {
    if *sql_type == SqlType::TimestampTz && !crate::session::time_zone::is_utc(zone) {
        return match crate::session::time_zone::instants_from_texts(&texts, zone) {
            Ok(instants) => Ok(Arc::new(instants)),
            Err(row) => Err((row, texts.value(row).to_string())),
        };
    }
    convert_to(texts, sql_type)
}

/// [`convert`] of a session in UTC.
fn convert_to(texts: StringArray, sql_type: &SqlType) -> Result<ArrayRef, (usize, String)> {
    if *sql_type == SqlType::Bytea {
        let mut builder = BinaryBuilder::new();
        for (row, text) in texts.iter().enumerate() {
            match text {
                None => builder.append_null(),
                Some(text) => builder.append_value(parse_bytea(text).ok_or((row, text.to_string()))?),
            }
        }
        return Ok(Arc::new(builder.finish()));
    }
    let strings: ArrayRef = match sql_type {
        SqlType::Interval => Arc::new(texts.iter().map(|t| t.map(normalize_interval)).collect::<StringArray>()),
        // Most rows have their seconds: the column is rebuilt only when one does not.
        SqlType::Timestamp | SqlType::TimestampTz
            if texts.iter().flatten().any(|t| matches!(normalize_timestamp(t), std::borrow::Cow::Owned(_))) =>
        {
            Arc::new(texts.iter().map(|t| t.map(normalize_timestamp)).collect::<StringArray>())
        }
        _ => Arc::new(texts),
    };
    let target = sql_type.arrow_type();
    if target == DataType::Utf8 {
        return Ok(strings);
    }
    let strict = CastOptions { safe: false, ..Default::default() };
    match cast_with_options(&strings, &target, &strict) {
        Ok(array) => Ok(array),
        Err(_) => {
            // Find the first value that does not convert, to name it.
            for (row, text) in strings.as_string::<i32>().iter().enumerate() {
                if let Some(text) = text {
                    let one: ArrayRef = Arc::new(StringArray::from(vec![text]));
                    if cast_with_options(&one, &target, &strict).is_err() {
                        return Err((row, text.to_string()));
                    }
                }
            }
            Err((0, String::new()))
        }
    }
}
