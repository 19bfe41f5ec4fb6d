//! Rows as COPY sends them (`COPY … TO STDOUT`, subscriptions): in text
//! format, columns separated by a tab, `\N` for NULL, backslash escapes
//! for tab, newline, carriage return, backslash and the delimiter; in CSV,
//! a value quoted where it holds the delimiter, a quote, a line break or
//! looks like NULL. Values are spelled as PostgreSQL prints them.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use pgwire::api::portal::Format;

use super::pg_format::postgres_text;
use crate::write::copy::{CopyFormat, CopyOptions};

/// Appends `batch`'s rows to `out` in the default text format, one line each.
pub fn copy_text(batch: RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    copy_lines(batch, &CopyOptions::new(CopyFormat::Text), |line| out.extend_from_slice(line))
}

/// Calls `line` with each row of `batch` as a line of COPY data in the
/// format of `options` (the line includes its newline).
pub fn copy_lines(batch: RecordBatch, options: &CopyOptions, mut line: impl FnMut(&[u8])) -> Result<(), ArrowError> {
    let batch = postgres_text(batch, &Format::UnifiedText, &[])?;
    let format = FormatOptions::default().with_null("");
    let formatters: Vec<ArrayFormatter> =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &format)).collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for row in 0..batch.num_rows() {
        out.clear();
        for (index, column) in batch.columns().iter().enumerate() {
            if index > 0 {
                out.push(options.delimiter);
            }
            if column.is_null(row) {
                out.extend_from_slice(options.null.as_bytes());
                continue;
            }
            write_value(&value_text(column, &formatters[index], row), options, &mut out);
        }
        out.push(b'\n');
        line(&out);
    }
    Ok(())
}

/// The header line: the column names, written as values are.
pub fn header_line(schema: &Schema, options: &CopyOptions) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, field) in schema.fields().iter().enumerate() {
        if index > 0 {
            out.push(options.delimiter);
        }
        write_value(crate::sql::column_names::display_name(field.name()), options, &mut out);
    }
    out.push(b'\n');
    out
}

fn value_text(column: &ArrayRef, formatter: &ArrayFormatter, row: usize) -> String {
    match column.data_type() {
        DataType::Boolean => (if column.as_boolean().value(row) { "t" } else { "f" }).to_string(),
        DataType::Binary => crate::pg_text::bytea(column.as_binary::<i32>().value(row)),
        _ => formatter.value(row).to_string(),
    }
}

fn write_value(text: &str, options: &CopyOptions, out: &mut Vec<u8>) {
    match options.format {
        CopyFormat::Text => escape(text, options.delimiter, out),
        // COPY TO in binary is refused when parsed.
        CopyFormat::Csv | CopyFormat::Binary => quote(text, options, out),
    }
}

fn escape(text: &str, delimiter: u8, out: &mut Vec<u8>) {
    for byte in text.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other if other == delimiter => out.extend_from_slice(&[b'\\', other]),
            other => out.push(other),
        }
    }
}

/// A CSV value, quoted where PostgreSQL quotes it: it holds the delimiter,
/// the quote, a line break, or could be read back as NULL (`""` when NULL
/// is the empty string, as by default).
fn quote(text: &str, options: &CopyOptions, out: &mut Vec<u8>) {
    let needs_quotes = text == options.null
        || text == "\\."
        || text.bytes().any(|b| b == options.delimiter || b == options.quote || b == b'\n' || b == b'\r');
    if !needs_quotes {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(options.quote);
    for byte in text.bytes() {
        if byte == options.quote || byte == options.escape {
            out.push(options.escape);
        }
        out.push(byte);
    }
    out.push(options.quote);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{BooleanArray, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn escapes_and_nulls_as_postgresql_copies_them() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("t", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a\tb\\c\nd"), None])),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false)])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        copy_text(batch, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1\ta\\tb\\\\c\\nd\tt\n\\N\t\\N\tf\n");
    }
}
