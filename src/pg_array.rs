//! PostgreSQL's array forms, for one-dimensional arrays: the text form
//! (`{1,2,NULL}`, `{"a b","x,y"}`) as `array_in` reads it, and the binary
//! form of parameters and `COPY … (FORMAT binary)`. Each element comes out
//! as text of the element type, so it takes the same conversions and checks
//! as a column of that type.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ListArray, StringArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::Field;

use crate::catalog::SqlType;
use crate::error::Error;

/// The most elements one array value may have; PostgreSQL's limit (MaxArraySize) is larger.
pub const MAX_ELEMENTS: usize = 16 * 1024 * 1024;

fn malformed(text: &str, detail: &str) -> Error {
    Error::InvalidTextRepresentation(format!("malformed array literal: \"{text}\" ({detail})"))
}

/// Arrays' text forms as a list column of `element`: each element converted
/// as a column of that type converts its text. On failure, the row at fault.
pub fn parse_column(texts: &StringArray, element: &SqlType) -> Result<ArrayRef, (usize, Error)> {
    let mut offsets: Vec<i32> = Vec::with_capacity(texts.len() + 1);
    offsets.push(0);
    let mut elements: Vec<Option<String>> = Vec::new();
    for (row, text) in texts.iter().enumerate() {
        if let Some(text) = text {
            elements.extend(parse(text).map_err(|error| (row, error))?);
        }
        let end = i32::try_from(elements.len())
            .map_err(|_| (row, Error::ProgramLimitExceeded("too many array elements in one statement".into())))?;
        offsets.push(end);
    }
    let values = crate::write::copy::convert(StringArray::from(elements), element).map_err(|(at, value)| {
        // The row whose elements hold the one at fault.
        let row = offsets.partition_point(|&end| end as usize <= at).saturating_sub(1);
        (row, element_error(&value, element))
    })?;
    let field = Arc::new(Field::new_list_field(element.arrow_type(), true));
    let nulls = NullBuffer::from_iter(texts.iter().map(|t| t.is_some()));
    ListArray::try_new(field, OffsetBuffer::new(offsets.into()), values, Some(nulls))
        .map(|list| Arc::new(list) as ArrayRef)
        .map_err(|error| (0, Error::Internal(error.to_string())))
}

/// The error for an element that does not convert: a number out of its
/// type's range as Arrow reports it (which `server::sqlstate` reads as
/// PostgreSQL's 22003), anything else as input that is no value of the type.
fn element_error(value: &str, element: &SqlType) -> Error {
    let not_a_value = || {
        Error::InvalidTextRepresentation(format!("invalid input syntax for type {}: \"{value}\"", element.sql_name()))
    };
    if value.trim().parse::<f64>().is_err() {
        return not_a_value();
    }
    let strict = datafusion::arrow::compute::CastOptions { safe: false, ..Default::default() };
    let one: ArrayRef = Arc::new(StringArray::from(vec![value]));
    match datafusion::arrow::compute::cast_with_options(&one, &element.arrow_type(), &strict) {
        Err(error) => Error::DataFusion(datafusion::error::DataFusionError::ArrowError(Box::new(error), None)),
        Ok(_) => not_a_value(),
    }
}

/// The elements of an array's text form; `None` is NULL.
pub fn parse(text: &str) -> Result<Vec<Option<String>>, Error> {
    let body = text.trim_matches(is_space);
    if body.starts_with('[') {
        return Err(Error::FeatureNotSupported("array bounds (\"[1:3]=\") are not supported".into()));
    }
    let Some(inner) = body.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) else {
        return Err(malformed(text, "array value must start with \"{\" and end with \"}\""));
    };
    let mut elements = Vec::new();
    if inner.trim_matches(is_space).is_empty() {
        return Ok(elements);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| is_space(*c)).is_some() {}
        let mut element = String::new();
        // Quoted or escaped somewhere: never NULL, and may be empty.
        let mut literal = false;
        // Length of `element` up to its last character that was quoted or
        // escaped: trailing spaces after it are the element's own.
        let mut kept = 0;
        loop {
            match chars.peek().copied() {
                None | Some(',') => break,
                Some('{') => {
                    return Err(Error::FeatureNotSupported("multidimensional arrays are not supported".into()));
                }
                Some('}') => return Err(malformed(text, "unexpected \"}\" character")),
                Some('"') => {
                    chars.next();
                    literal = true;
                    loop {
                        match chars.next() {
                            None => return Err(malformed(text, "unexpected end of input")),
                            Some('"') => break,
                            Some('\\') => {
                                element.push(chars.next().ok_or_else(|| malformed(text, "unexpected end of input"))?)
                            }
                            Some(c) => element.push(c),
                        }
                    }
                    kept = element.len();
                }
                Some('\\') => {
                    chars.next();
                    element.push(chars.next().ok_or_else(|| malformed(text, "unexpected end of input"))?);
                    literal = true;
                    kept = element.len();
                }
                Some(c) => {
                    chars.next();
                    element.push(c);
                    if !is_space(c) {
                        kept = element.len();
                    }
                }
            }
        }
        element.truncate(kept);
        if !literal && element.is_empty() {
            return Err(malformed(text, "unexpected \",\" character"));
        }
        let null = !literal && element.eq_ignore_ascii_case("NULL");
        elements.push((!null).then_some(element));
        if elements.len() > MAX_ELEMENTS {
            return Err(Error::ProgramLimitExceeded(format!("an array may have at most {MAX_ELEMENTS} elements")));
        }
        if chars.next().is_none() {
            return Ok(elements);
        }
    }
}

/// The text form of an array of these elements, quoted as `array_out` quotes them.
pub fn format(elements: &[Option<String>]) -> String {
    let mut text = String::from("{");
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let Some(element) = element else {
            text.push_str("NULL");
            continue;
        };
        let quote = element.is_empty()
            || element.eq_ignore_ascii_case("NULL")
            || element.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || is_space(c));
        if !quote {
            text.push_str(element);
            continue;
        }
        text.push('"');
        for c in element.chars() {
            if matches!(c, '"' | '\\') {
                text.push('\\');
            }
            text.push(c);
        }
        text.push('"');
    }
    text.push('}');
    text
}

/// PostgreSQL's array_isspace: the ASCII white space characters.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// The elements of an array's binary form (as `array_send` writes it), each
/// as the text of `element` that `pg_binary::field_text` gives.
pub fn binary_elements(element: &SqlType, bytes: &[u8]) -> Result<Vec<Option<String>>, Error> {
    let malformed = || Error::InvalidTextRepresentation("invalid binary array value".into());
    let mut reader = Reader { rest: bytes };
    let dimensions = reader.word().ok_or_else(malformed)?;
    let _has_nulls = reader.word().ok_or_else(malformed)?;
    // The sender's element type decides how its elements read (a driver
    // may send `int8[]` for an `integer[]` column).
    let sent = element_of_oid(reader.word().ok_or_else(malformed)?);
    let element = sent.as_ref().unwrap_or(element);
    let count = match dimensions {
        0 => 0,
        1 => {
            let count = reader.word().ok_or_else(malformed)?;
            let _lower_bound = reader.word().ok_or_else(malformed)?;
            usize::try_from(count).map_err(|_| malformed())?
        }
        _ => return Err(Error::FeatureNotSupported("multidimensional arrays are not supported".into())),
    };
    if count > MAX_ELEMENTS {
        return Err(Error::ProgramLimitExceeded(format!("an array may have at most {MAX_ELEMENTS} elements")));
    }
    let mut elements = Vec::with_capacity(count.min(bytes.len() / 4));
    for _ in 0..count {
        let length = reader.word().ok_or_else(malformed)?;
        match usize::try_from(length) {
            Err(_) => elements.push(None),
            Ok(length) => {
                let value = reader.take(length).ok_or_else(malformed)?;
                elements.push(Some(crate::pg_binary::field_text(element, value)?));
            }
        }
    }
    if !reader.rest.is_empty() {
        return Err(malformed());
    }
    Ok(elements)
}

/// The element types whose binary form `pg_binary` reads, by PostgreSQL oid.
fn element_of_oid(oid: i32) -> Option<SqlType> {
    Some(match oid {
        16 => SqlType::Boolean,
        21 => SqlType::SmallInt,
        23 => SqlType::Int,
        20 => SqlType::BigInt,
        700 => SqlType::Real,
        701 => SqlType::Double,
        1700 => SqlType::Numeric { precision: 38, scale: 10 },
        25 | 1043 | 19 => SqlType::Text,
        17 => SqlType::Bytea,
        1082 => SqlType::Date,
        1114 => SqlType::Timestamp,
        1184 => SqlType::TimestampTz,
        1186 => SqlType::Interval,
        114 | 3802 => SqlType::Jsonb,
        _ => return None,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    fn word(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::{format, parse};

    fn texts(text: &str) -> Vec<Option<&'static str>> {
        parse(text).unwrap().into_iter().map(|e| e.map(|s| &*Box::leak(s.into_boxed_str()))).collect()
    }

    #[test]
    fn reads_what_array_in_reads() {
        assert_eq!(texts("{}"), vec![]);
        assert_eq!(texts(" { } "), vec![]);
        assert_eq!(texts("{1,2,3}"), vec![Some("1"), Some("2"), Some("3")]);
        assert_eq!(texts("{ a b , c }"), vec![Some("a b"), Some("c")]);
        assert_eq!(texts("{NULL,null,\"NULL\"}"), vec![None, None, Some("NULL")]);
        assert_eq!(texts(r#"{"a,b","x\"y",""}"#), vec![Some("a,b"), Some("x\"y"), Some("")]);
        assert_eq!(texts(r"{a\,b,c\\d}"), vec![Some("a,b"), Some(r"c\d")]);
        assert_eq!(texts(r"{a\ }"), vec![Some("a ")]);
        assert_eq!(texts(r"{\NULL}"), vec![Some("NULL")]);
        assert_eq!(texts(r#"{ "a " }"#), vec![Some("a ")]);
    }

    #[test]
    fn writes_what_it_reads() {
        let elements =
            vec![Some("a b".to_string()), None, Some("NULL".into()), Some("".into()), Some("x,\"y\\".into())];
        let text = format(&elements);
        assert_eq!(text, r#"{"a b",NULL,"NULL","","x,\"y\\"}"#);
        assert_eq!(parse(&text).unwrap(), elements);
    }

    #[test]
    fn refuses_what_array_in_refuses() {
        for bad in ["", "1,2", "{1,2", "{1,,2}", "{,}", "{1,}", "{\"a}", "{a}}", "{a\\}"] {
            assert!(parse(bad).is_err(), "{bad:?} was read");
        }
        assert!(parse("{{1,2},{3,4}}").is_err());
    }
}
