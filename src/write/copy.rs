//! COPY … FROM STDIN: PostgreSQL's text and CSV formats parsed into the
//! relation's Arrow schema. Nothing is appended until the whole input parsed
//! and passed the write checks, so a bad row leaves no trace.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryBuilder, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;

use super::{Limits, check_rows};
use crate::catalog::{RelationDef, SqlType};
use crate::error::{Error, Result};
use crate::pg_text::{normalize_interval, parse_bytea};
use crate::query::defaults::LeftOutDefaults;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
}

#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub header: bool,
    pub delimiter: u8,
    pub null: String,
    pub quote: u8,
    pub escape: u8,
}

impl CopyOptions {
    pub fn new(format: CopyFormat) -> CopyOptions {
        match format {
            CopyFormat::Text => {
                CopyOptions { format, header: false, delimiter: b'\t', null: "\\N".into(), quote: b'"', escape: b'"' }
            }
            CopyFormat::Csv => {
                CopyOptions { format, header: false, delimiter: b',', null: String::new(), quote: b'"', escape: b'"' }
            }
        }
    }
}

/// Rows handed to a parser this many at a time become one Arrow batch.
const ROWS_PER_BATCH: usize = 8192;

/// An incoming COPY: raw bytes arrive in pieces and are parsed into batches.
pub struct CopyIn {
    def: Arc<RelationDef>,
    /// Positions in the relation of the columns the input provides, in order.
    targets: Vec<usize>,
    /// DEFAULTs of the relation columns the input leaves out.
    defaults: LeftOutDefaults,
    options: CopyOptions,
    limits: Limits,
    buffered: Vec<u8>,
    pending: Vec<Vec<Option<String>>>,
    batches: Vec<RecordBatch>,
    rows: usize,
    line: usize,
    header_skipped: bool,
}

impl CopyIn {
    pub fn new(def: Arc<RelationDef>, targets: Vec<usize>, options: CopyOptions, limits: Limits) -> Result<CopyIn> {
        let defaults = LeftOutDefaults::plan(&def, &targets)?;
        Ok(CopyIn {
            def,
            targets,
            defaults,
            options,
            limits,
            buffered: Vec::new(),
            pending: Vec::new(),
            batches: Vec::new(),
            rows: 0,
            line: 0,
            header_skipped: false,
        })
    }

    pub fn relation(&self) -> &Arc<RelationDef> {
        &self.def
    }

    pub fn column_count(&self) -> usize {
        self.targets.len()
    }

    /// Takes the next piece of input; complete records are parsed now so
    /// memory holds Arrow batches, not the raw text.
    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        self.buffered.extend_from_slice(data);
        let parsed_up_to = self.parse_complete_records(false)?;
        self.buffered.drain(..parsed_up_to);
        let bytes = self.buffered.len() + self.batches.iter().map(|b| b.get_array_memory_size()).sum::<usize>();
        self.limits.check_statement(self.rows, bytes)
    }

    /// Parses what remains and returns every row, checked, in the relation's user schema.
    pub fn finish(mut self) -> Result<(Arc<RelationDef>, Vec<RecordBatch>, usize)> {
        self.parse_complete_records(true)?;
        self.flush_pending()?;
        Ok((self.def, self.batches, self.rows))
    }

    /// Parses whole records from the buffer; returns how many bytes were consumed.
    fn parse_complete_records(&mut self, at_end: bool) -> Result<usize> {
        let mut consumed = 0;
        loop {
            let rest = &self.buffered[consumed..];
            let Some((record_len, next)) = record_end(rest, &self.options, at_end) else {
                break;
            };
            let record = rest[..record_len].to_vec();
            consumed += next;
            self.line += 1;
            if self.options.header && !self.header_skipped {
                self.header_skipped = true;
                continue;
            }
            if self.options.format == CopyFormat::Text && record == b"\\." {
                continue;
            }
            let fields = match self.options.format {
                CopyFormat::Text => split_text(&record, &self.options),
                CopyFormat::Csv => split_csv(&record, &self.options),
            }
            .map_err(|reason| self.bad_line(reason))?;
            if fields.len() != self.targets.len() {
                let reason = if fields.len() < self.targets.len() {
                    "missing data for a column"
                } else {
                    "extra data after last expected column"
                };
                return Err(self.bad_line(reason.to_string()));
            }
            self.pending.push(fields);
            self.rows += 1;
            if self.pending.len() >= ROWS_PER_BATCH {
                self.flush_pending()?;
            }
        }
        Ok(consumed)
    }

    fn bad_line(&self, reason: String) -> Error {
        Error::BadCopyFile(format!("{reason} (COPY {}, line {})", self.def.name, self.line))
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let first_line = self.line + 1 - rows.len();
        let row_count = rows.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.def.columns.len());
        for (position, column) in self.def.columns.iter().enumerate() {
            let array = match self.targets.iter().position(|t| *t == position) {
                Some(field) => {
                    let texts: Vec<Option<&str>> = rows.iter().map(|r| r[field].as_deref()).collect();
                    convert(&texts, &column.sql_type).map_err(|(row, value)| {
                        Error::InvalidTextRepresentation(format!(
                            "invalid input syntax for type {}: \"{value}\" (COPY {}, line {}, column {})",
                            column.sql_type.sql_name(),
                            self.def.name,
                            first_line + row,
                            column.name
                        ))
                    })?
                }
                None => self.defaults.column(&self.def, position, row_count)?,
            };
            columns.push(array);
        }
        let batch = RecordBatch::try_new(self.def.user_schema(), columns).map_err(|e| Error::Internal(e.to_string()));
        let batch = match batch {
            Ok(batch) => batch,
            // A NULL in a NOT NULL column makes the batch invalid for the schema.
            Err(_) => return Err(self.not_null_error()),
        };
        check_rows(&self.def, &batch)?;
        self.batches.push(batch);
        Ok(())
    }

    fn not_null_error(&self) -> Error {
        let column = self.def.columns.iter().find(|c| !c.nullable).map(|c| c.name.clone()).unwrap_or_default();
        Error::NotNullViolation { relation: self.def.name.clone(), column }
    }
}

/// Converts text values to the column type; on failure, the row and value.
fn convert(texts: &[Option<&str>], sql_type: &SqlType) -> Result<ArrayRef, (usize, String)> {
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
    let normalized: Vec<Option<String>>;
    let texts: &[Option<&str>] = if *sql_type == SqlType::Interval {
        normalized = texts.iter().map(|t| t.map(normalize_interval)).collect();
        &normalized.iter().map(|t| t.as_deref()).collect::<Vec<_>>()
    } else {
        texts
    };
    let strings: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
    let target = sql_type.arrow_type();
    if target == DataType::Utf8 {
        return Ok(strings);
    }
    let strict = CastOptions { safe: false, ..Default::default() };
    match cast_with_options(&strings, &target, &strict) {
        Ok(array) => Ok(array),
        Err(_) => {
            // Find the first value that does not convert, to name it.
            for (row, text) in texts.iter().enumerate() {
                if let Some(text) = text {
                    let one: ArrayRef = Arc::new(StringArray::from(vec![*text]));
                    if cast_with_options(&one, &target, &strict).is_err() {
                        return Err((row, text.to_string()));
                    }
                }
            }
            Err((0, String::new()))
        }
    }
}

/// Where the first complete record in `bytes` ends: its length without the
/// line terminator, and where the next record starts.
fn record_end(bytes: &[u8], options: &CopyOptions, at_end: bool) -> Option<(usize, usize)> {
    let mut in_quotes = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if options.format == CopyFormat::Csv && byte == options.quote {
            in_quotes = !in_quotes;
        } else if options.format == CopyFormat::Text && byte == b'\\' {
            i += 2;
            continue;
        } else if byte == b'\n' && !in_quotes {
            let len = if i > 0 && bytes[i - 1] == b'\r' { i - 1 } else { i };
            return Some((len, i + 1));
        }
        i += 1;
    }
    (at_end && !bytes.is_empty()).then_some((bytes.len(), bytes.len()))
}

fn split_text(record: &[u8], options: &CopyOptions) -> Result<Vec<Option<String>>, String> {
    let mut fields = Vec::new();
    for raw in record.split(|b| *b == options.delimiter) {
        if raw == options.null.as_bytes() {
            fields.push(None);
            continue;
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut bytes = raw.iter().copied();
        while let Some(b) = bytes.next() {
            if b != b'\\' {
                out.push(b);
                continue;
            }
            match bytes.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b't') => out.push(b'\t'),
                Some(b'r') => out.push(b'\r'),
                Some(b'b') => out.push(8),
                Some(b'f') => out.push(12),
                Some(b'v') => out.push(11),
                Some(other) => out.push(other),
                None => out.push(b'\\'),
            }
        }
        fields.push(Some(String::from_utf8(out).map_err(|_| "invalid UTF-8".to_string())?));
    }
    Ok(fields)
}

fn split_csv(record: &[u8], options: &CopyOptions) -> Result<Vec<Option<String>>, String> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut i = 0;
    while i < record.len() {
        let byte = record[i];
        if quoted {
            if byte == options.escape && options.escape != options.quote && record.get(i + 1) == Some(&options.quote) {
                field.push(options.quote);
                i += 2;
                continue;
            }
            if byte == options.quote {
                if options.escape == options.quote && record.get(i + 1) == Some(&options.quote) {
                    field.push(options.quote);
                    i += 2;
                    continue;
                }
                quoted = false;
            } else {
                field.push(byte);
            }
        } else if byte == options.quote {
            quoted = true;
            was_quoted = true;
        } else if byte == options.delimiter {
            fields.push(finish_csv_field(&mut field, was_quoted, options)?);
            was_quoted = false;
        } else {
            field.push(byte);
        }
        i += 1;
    }
    if quoted {
        return Err("unterminated CSV quoted field".into());
    }
    fields.push(finish_csv_field(&mut field, was_quoted, options)?);
    Ok(fields)
}

/// In CSV an unquoted value equal to the NULL string is NULL; a quoted one never is.
fn finish_csv_field(field: &mut Vec<u8>, was_quoted: bool, options: &CopyOptions) -> Result<Option<String>, String> {
    let bytes = std::mem::take(field);
    if !was_quoted && bytes == options.null.as_bytes() {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|_| "invalid UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes_and_nulls() {
        let options = CopyOptions::new(CopyFormat::Csv);
        let fields = split_csv(br#"1,"a,b",,"""q""","""#, &options).unwrap();
        assert_eq!(fields, vec![Some("1".into()), Some("a,b".into()), None, Some("\"q\"".into()), Some(String::new())]);
    }

    #[test]
    fn text_fields_unescape() {
        let options = CopyOptions::new(CopyFormat::Text);
        let fields = split_text(b"a\\tb\t\\N\tc\\\\d", &options).unwrap();
        assert_eq!(fields, vec![Some("a\tb".into()), None, Some("c\\d".into())]);
    }

    #[test]
    fn csv_record_may_span_lines_inside_quotes() {
        let options = CopyOptions::new(CopyFormat::Csv);
        assert_eq!(record_end(b"1,\"x\ny\"\n2,z\n", &options, false), Some((7, 8)));
        assert_eq!(record_end(b"1,\"x\ny", &options, false), None);
    }
}
