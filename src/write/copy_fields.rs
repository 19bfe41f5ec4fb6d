//! Splitting COPY input into records and fields: PostgreSQL's text format
//! (backslash escapes) and CSV (quotes). Each field's bytes go straight into
//! one growing buffer per input column, so a million rows cost a handful of
//! allocations, not one per field; UTF-8 is checked once per batch.

use datafusion::arrow::array::StringArray;
use datafusion::arrow::array::builder::NullBufferBuilder;
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use memchr::{memchr, memchr2, memchr3};

use super::copy::{CopyFormat, CopyOptions};

/// Why a record cannot be read: its shape (22P04) or its bytes (22021).
#[derive(Debug, PartialEq)]
pub enum BadRecord {
    Format(String),
    Encoding(&'static str),
}

impl From<&str> for BadRecord {
    fn from(reason: &str) -> BadRecord {
        BadRecord::Format(reason.to_string())
    }
}

/// One input column's values for the rows parsed since its last batch.
pub struct FieldColumn {
    values: Vec<u8>,
    /// Where each value starts in `values`, plus where the last one ends.
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl FieldColumn {
    pub fn new() -> FieldColumn {
        FieldColumn { values: Vec::new(), offsets: vec![0], nulls: NullBufferBuilder::new(0) }
    }

    pub fn bytes(&self) -> usize {
        self.values.len() + self.offsets.len() * 4
    }

    /// One value given whole (binary COPY), `None` for NULL.
    pub fn push(&mut self, value: Option<&str>) -> Result<(), BadRecord> {
        match value {
            Some(text) => {
                self.values.extend_from_slice(text.as_bytes());
                self.push_value()
            }
            None => self.push_null(),
        }
    }

    fn push_null(&mut self) -> Result<(), BadRecord> {
        self.nulls.append_null();
        self.end_value()
    }

    fn push_value(&mut self) -> Result<(), BadRecord> {
        self.nulls.append_non_null();
        self.end_value()
    }

    fn end_value(&mut self) -> Result<(), BadRecord> {
        let end = i32::try_from(self.values.len()).map_err(|_| BadRecord::from("field value too large"))?;
        self.offsets.push(end);
        Ok(())
    }

    /// The values as text, emptying the column; on invalid UTF-8, the row
    /// (counted from the batch's first) of the first bad value.
    pub fn take_strings(&mut self) -> Result<StringArray, usize> {
        let values = Buffer::from(std::mem::take(&mut self.values));
        let offsets = ScalarBuffer::from(std::mem::replace(&mut self.offsets, vec![0]));
        let nulls = self.nulls.finish();
        // try_new checks the bytes are UTF-8 and every value starts and ends
        // on a character boundary (escapes can make any byte, so a value may
        // end inside a character the next one completes).
        StringArray::try_new(OffsetBuffer::new(offsets.clone()), values.clone(), nulls).map_err(|_| {
            let bytes = values.as_slice();
            let valid = |w: &[i32]| std::str::from_utf8(&bytes[w[0] as usize..w[1] as usize]).is_ok();
            offsets.windows(2).position(|w| !valid(w)).unwrap_or(0)
        })
    }
}

/// Where the first complete record in `bytes` ends: its length without the
/// line terminator, and where the next record starts. At the end of the
/// input an unterminated last line is a record too.
pub fn record_end(bytes: &[u8], options: &CopyOptions, at_end: bool) -> Option<(usize, usize)> {
    // Bytes that change how the next ones read: a backslash in text; in CSV
    // the quote, and the escape (which keeps a quote inside quotes).
    let (first, second) = match options.format {
        // Binary input is framed by `copy_binary.rs`, not read as records.
        CopyFormat::Csv | CopyFormat::Binary => (options.quote, options.escape),
        CopyFormat::Text => (b'\\', b'\\'),
    };
    let mut in_quotes = false;
    let mut i = 0;
    while let Some(found) = memchr3(b'\n', first, second, &bytes[i..]) {
        let at = i + found;
        let byte = bytes[at];
        i = at + 1;
        if byte == b'\n' {
            if !in_quotes {
                let len = if at > 0 && bytes[at - 1] == b'\r' { at - 1 } else { at };
                return Some((len, at + 1));
            }
        } else if options.format == CopyFormat::Text {
            i += 1; // the escaped byte, even a newline
        } else if in_quotes
            && byte == options.escape
            && matches!(bytes.get(i), Some(&next) if next == options.quote || next == options.escape)
        {
            i += 1; // an escaped quote (or escape) inside quotes
        } else if byte == options.quote {
            in_quotes = !in_quotes;
        }
        if i >= bytes.len() {
            break;
        }
    }
    (at_end && !bytes.is_empty()).then_some((bytes.len(), bytes.len()))
}

/// Splits one record into `columns`, one field each; the error says why the
/// record is malformed.
pub fn split_record(record: &[u8], options: &CopyOptions, columns: &mut [FieldColumn]) -> Result<(), BadRecord> {
    let mut count = 0;
    let mut rest = record;
    loop {
        let column = columns.get_mut(count).ok_or_else(|| BadRecord::from("extra data after last expected column"))?;
        count += 1;
        let used = match options.format {
            CopyFormat::Text => text_field(rest, options, column)?,
            CopyFormat::Csv | CopyFormat::Binary => csv_field(rest, options, column)?,
        };
        if used >= rest.len() {
            break;
        }
        rest = &rest[used + 1..]; // past the delimiter
    }
    if count < columns.len() {
        return Err("missing data for a column".into());
    }
    Ok(())
}

/// Appends the text-format field at the start of `input`; returns its raw
/// length (up to the delimiter or the end of the record).
fn text_field(input: &[u8], options: &CopyOptions, column: &mut FieldColumn) -> Result<usize, BadRecord> {
    let delimiter = options.delimiter;
    let raw_end = text_field_end(input, delimiter);
    let raw = &input[..raw_end];
    if raw == options.null.as_bytes() {
        column.push_null()?;
        return Ok(raw_end);
    }
    let out = &mut column.values;
    let mut i = 0;
    while i < raw.len() {
        let Some(found) = memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + found]);
        i += found + 1;
        let Some(&escaped) = raw.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match escaped {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let digits = raw[i..].iter().take(2).take_while(|b| (b'0'..=b'7').contains(*b)).count();
                // As PostgreSQL: up to three octal digits, taken modulo 256.
                let value = raw[i - 1..i + digits].iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0')) as u8;
                if value == 0 {
                    return Err(BadRecord::Encoding("invalid byte sequence for encoding \"UTF8\": 0x00"));
                }
                out.push(value);
                i += digits;
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let digits = raw[i..].iter().take(2).take_while(|b| b.is_ascii_hexdigit()).count();
                let text = std::str::from_utf8(&raw[i..i + digits]).expect("hex digits are ASCII");
                let value = u8::from_str_radix(text, 16).expect("hex digits");
                if value == 0 {
                    return Err(BadRecord::Encoding("invalid byte sequence for encoding \"UTF8\": 0x00"));
                }
                out.push(value);
                i += digits;
            }
            other => out.push(other),
        }
    }
    column.push_value()?;
    Ok(raw_end)
}

/// Where a text-format field ends: the first delimiter not escaped by a backslash.
fn text_field_end(input: &[u8], delimiter: u8) -> usize {
    let mut i = 0;
    while let Some(found) = memchr2(delimiter, b'\\', &input[i..]) {
        let at = i + found;
        if input[at] == delimiter {
            return at;
        }
        i = at + 2;
        if i >= input.len() {
            break;
        }
    }
    input.len()
}

/// Appends the CSV field at the start of `input`; returns its raw length.
/// As in PostgreSQL, a quote anywhere in a field opens a quoted part, and an
/// unquoted value equal to the NULL string is NULL (a quoted one never is).
fn csv_field(input: &[u8], options: &CopyOptions, column: &mut FieldColumn) -> Result<usize, BadRecord> {
    let (delimiter, quote, escape) = (options.delimiter, options.quote, options.escape);
    let end = memchr2(delimiter, quote, input).unwrap_or(input.len());
    if end == input.len() || input[end] == delimiter {
        // The common case: no quotes, a plain slice.
        let raw = &input[..end];
        if raw == options.null.as_bytes() {
            column.push_null()?;
        } else {
            column.values.extend_from_slice(raw);
            column.push_value()?;
        }
        return Ok(end);
    }
    let out = &mut column.values;
    let mut quoted = false;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if quoted {
            if byte == escape && matches!(input.get(i + 1), Some(&next) if next == quote || next == escape) {
                out.push(input[i + 1]);
                i += 2;
                continue;
            }
            if byte == quote {
                quoted = false;
            } else {
                out.push(byte);
            }
        } else if byte == quote {
            quoted = true;
        } else if byte == delimiter {
            break;
        } else {
            out.push(byte);
        }
        i += 1;
    }
    if quoted {
        return Err("unterminated CSV quoted field".into());
    }
    column.push_value()?;
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(record: &[u8], options: &CopyOptions, columns: usize) -> Result<Vec<Option<String>>, BadRecord> {
        let mut fields: Vec<FieldColumn> = (0..columns).map(|_| FieldColumn::new()).collect();
        split_record(record, options, &mut fields)?;
        Ok(fields.iter_mut().map(|c| c.take_strings().unwrap().iter().next().unwrap().map(str::to_string)).collect())
    }

    #[test]
    fn csv_fields_handle_quotes_and_nulls() {
        let options = CopyOptions::new(CopyFormat::Csv);
        let fields = split(br#"1,"a,b",,"""q""","",x"y,z"w"#, &options, 6).unwrap();
        let expected = [Some("1"), Some("a,b"), None, Some("\"q\""), Some(""), Some("xy,zw")];
        assert_eq!(fields, expected.map(|f| f.map(str::to_string)));
        assert_eq!(split(b"1,\"open", &options, 2), Err("unterminated CSV quoted field".into()));
    }

    #[test]
    fn csv_escape_other_than_quote() {
        let mut options = CopyOptions::new(CopyFormat::Csv);
        options.escape = b'\\';
        let fields = split(br#""a\"b","c\d""#, &options, 2).unwrap();
        assert_eq!(fields, vec![Some("a\"b".into()), Some("c\\d".into())]);
    }

    #[test]
    fn text_fields_unescape() {
        let options = CopyOptions::new(CopyFormat::Text);
        let fields = split(b"a\\tb\t\\N\tc\\\\d\t\\101\\x42\\7\te\\\tf", &options, 5).unwrap();
        let expected = [Some("a\tb"), None, Some("c\\d"), Some("AB\u{7}"), Some("e\tf")];
        assert_eq!(fields, expected.map(|f| f.map(str::to_string)));
    }

    #[test]
    fn field_count_must_match() {
        let options = CopyOptions::new(CopyFormat::Text);
        assert_eq!(split(b"1\t2\t3", &options, 2), Err("extra data after last expected column".into()));
        assert_eq!(split(b"1", &options, 2), Err("missing data for a column".into()));
        assert_eq!(split(b"", &options, 1).unwrap(), vec![Some(String::new())]);
    }

    #[test]
    fn invalid_utf8_names_its_row() {
        let options = CopyOptions::new(CopyFormat::Text);
        let mut column = vec![FieldColumn::new()];
        for record in [&b"ok"[..], b"fine", b"bad\xff", b"ok"] {
            split_record(record, &options, &mut column).unwrap();
        }
        assert_eq!(column[0].take_strings().unwrap_err(), 2);
        // Whole, the bytes are UTF-8; split, row 1 ends inside a character.
        for record in [&b"ok"[..], b"a\\xc3", b"\\xa9b"] {
            split_record(record, &options, &mut column).unwrap();
        }
        assert_eq!(column[0].take_strings().unwrap_err(), 1);
    }

    #[test]
    fn csv_record_may_span_lines_inside_quotes() {
        let options = CopyOptions::new(CopyFormat::Csv);
        assert_eq!(record_end(b"1,\"x\ny\"\n2,z\n", &options, false), Some((7, 8)));
        assert_eq!(record_end(b"1,\"x\ny", &options, false), None);
        assert_eq!(record_end(b"1,x\r\n", &options, false), Some((3, 5)));
        assert_eq!(record_end(b"1,x", &options, true), Some((3, 3)));
    }

    #[test]
    fn text_record_keeps_escaped_newlines() {
        let options = CopyOptions::new(CopyFormat::Text);
        assert_eq!(record_end(b"a\\\nb\nc\n", &options, false), Some((4, 5)));
        assert_eq!(record_end(b"a\\", &options, false), None);
    }
}
