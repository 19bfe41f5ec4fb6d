//! Rows in COPY's text format (what `COPY … TO STDOUT` sends): columns
//! separated by tabs, `\N` for NULL, backslash escapes for tab, newline,
//! carriage return and backslash; values spelled as PostgreSQL prints them.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use pgwire::api::portal::Format;

use super::pg_format::postgres_text;

/// Appends `batch`'s rows to `out`, one line each.
pub fn copy_text(batch: RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    let batch = postgres_text(batch, &Format::UnifiedText)?;
    let options = FormatOptions::default().with_null("");
    let formatters: Vec<ArrayFormatter> =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<_, _>>()?;
    for row in 0..batch.num_rows() {
        for (index, column) in batch.columns().iter().enumerate() {
            if index > 0 {
                out.push(b'\t');
            }
            if column.is_null(row) {
                out.extend_from_slice(b"\\N");
                continue;
            }
            let text = match column.data_type() {
                DataType::Boolean => (if column.as_boolean().value(row) { "t" } else { "f" }).to_string(),
                DataType::Binary => {
                    let bytes = column.as_binary::<i32>().value(row);
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    format!("\\x{hex}")
                }
                _ => formatters[index].value(row).to_string(),
            };
            escape(&text, out);
        }
        out.push(b'\n');
    }
    Ok(())
}

fn escape(text: &str, out: &mut Vec<u8>) {
    for byte in text.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
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
