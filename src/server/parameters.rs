//! Parameters `arrow-pg` does not read as PostgreSQL does, read here:
//! - NUMERIC: arrow-pg goes through rust_decimal, which keeps 28
//!   significant digits and rounds the rest away without a word (a
//!   NUMERIC(38) value bound as a parameter, as asyncpg sends them in
//!   binary, was stored changed). A parameter bound to a NUMERIC becomes its
//!   decimal text, then is cast as a literal of that text is.
//! - JSON and JSONB, which arrow-pg refuses (psycopg sends its `Jsonb`
//!   values so typed): their text, without JSONB's binary version byte.

use arrow_pg::datatypes::df::deserialize_parameters;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use pgwire::api::Type;
use std::sync::Arc;

use pgwire::api::portal::Portal;
use pgwire::api::stmt::StoredStatement;
use pgwire::error::PgWireResult;

use super::sqlstate::to_pgwire;
use crate::error::Error;

/// The portal's parameters as `arrow-pg` reads them, but for those above.
pub fn deserialize<S: Default + Clone>(portal: &Portal<S>, types: &[Option<&DataType>]) -> PgWireResult<ParamValues> {
    let mut exact: Vec<(usize, ScalarValue)> = Vec::new();
    for (index, bytes) in portal.parameters.iter().enumerate() {
        let Some(bytes) = bytes.as_deref() else { continue };
        let hinted = portal.statement.parameter_types.get(index).cloned().flatten();
        let planned = types.get(index).copied().flatten();
        let binary = portal.parameter_format.is_binary(index);
        let value = match (&hinted, planned) {
            (Some(hint), _) if *hint == Type::JSON || *hint == Type::JSONB => {
                let text = json_text(bytes, binary && *hint == Type::JSONB).map_err(to_pgwire)?;
                cast(ScalarValue::Utf8(Some(text)), planned)?
            }
            (None, Some(decimal @ DataType::Decimal128(..))) => cast(numeric(bytes, binary)?, Some(decimal))?,
            (Some(hint), Some(decimal @ DataType::Decimal128(..)))
                if *hint == Type::NUMERIC || *hint == Type::UNKNOWN =>
            {
                cast(numeric(bytes, binary)?, Some(decimal))?
            }
            _ => continue,
        };
        exact.push((index, value));
    }
    if exact.is_empty() {
        return deserialize_parameters(portal, types);
    }
    // arrow-pg reads the others; these go to it as NULL text (it refuses
    // the JSON types, and a NUMERIC of more than 28 digits would be an
    // error there).
    let mut statement = StoredStatement::new(
        portal.statement.id.clone(),
        portal.statement.statement.clone(),
        portal.statement.parameter_types.clone(),
    );
    let mut others: Portal<S> = Portal::default();
    others.parameter_format = portal.parameter_format.clone();
    others.parameters = portal.parameters.clone();
    for (index, _) in &exact {
        others.parameters[*index] = None;
        if let Some(hint) = statement.parameter_types.get_mut(*index) {
            *hint = None;
        }
    }
    others.statement = Arc::new(statement);
    let mut params = deserialize_parameters(&others, types)?;
    let ParamValues::List(values) = &mut params else { return Ok(params) };
    for (index, value) in exact {
        values[index].value = value;
    }
    Ok(params)
}

/// A NUMERIC parameter's decimal text.
fn numeric(bytes: &[u8], binary: bool) -> PgWireResult<ScalarValue> {
    let text = match binary {
        true => numeric_text(bytes).map_err(to_pgwire)?,
        false => String::from_utf8_lossy(bytes).trim().to_string(),
    };
    Ok(ScalarValue::Utf8(Some(text)))
}

/// `value` as the plan's type, as a literal of it would be cast.
fn cast(value: ScalarValue, planned: Option<&DataType>) -> PgWireResult<ScalarValue> {
    match planned {
        Some(data_type) => value.cast_to(data_type).map_err(|e| to_pgwire(Error::from_datafusion(e))),
        None => Ok(value),
    }
}

/// A JSON parameter's text: JSONB's binary form is a version byte (1), then the text.
fn json_text(bytes: &[u8], jsonb_binary: bool) -> Result<String, Error> {
    let text = match (jsonb_binary, bytes.split_first()) {
        (false, _) => bytes,
        (true, Some((1, text))) => text,
        (true, _) => return Err(Error::InvalidTextRepresentation("unsupported jsonb version number".into())),
    };
    String::from_utf8(text.to_vec())
        .map_err(|_| Error::CharacterNotInRepertoire("invalid UTF-8 in a JSON parameter".into()))
}

/// The decimal text of NUMERIC's binary form (see `binary_values.rs`).
fn numeric_text(bytes: &[u8]) -> Result<String, Error> {
    let malformed = || Error::InvalidTextRepresentation("invalid binary NUMERIC parameter".into());
    let word = |i: usize| bytes.get(2 * i..2 * i + 2).map(|w| u16::from_be_bytes([w[0], w[1]])).ok_or_else(malformed);
    let digits = word(0)? as i16;
    let weight = word(1)? as i16;
    let sign = word(2)?;
    let scale = word(3)? as usize;
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        _ => return Err(Error::FeatureNotSupported("NaN and infinite NUMERIC values are not supported".into())),
    };
    if digits < 0 || bytes.len() != 8 + 2 * digits as usize {
        return Err(malformed());
    }
    let mut decimal = String::with_capacity(4 * digits as usize + 8);
    for i in 0..digits as usize {
        let group = word(4 + i)?;
        if group > 9999 {
            return Err(malformed());
        }
        decimal.push_str(&format!("{group:04}"));
    }
    // The point comes after the groups of weight 0 and above.
    let point = (weight as i64 + 1) * 4;
    if point <= 0 {
        decimal.insert_str(0, &"0".repeat((-point) as usize));
    } else if point as usize > decimal.len() {
        decimal.push_str(&"0".repeat(point as usize - decimal.len()));
    }
    let point = point.max(0) as usize;
    let whole = decimal[..point].trim_start_matches('0');
    let mut fraction = decimal[point..].to_string();
    fraction.truncate(scale);
    fraction.push_str(&"0".repeat(scale - fraction.len()));
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    text.push_str(if whole.is_empty() { "0" } else { whole });
    if scale > 0 {
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::numeric_text;

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn reads_what_postgresql_sends() {
        // PostgreSQL 15's numeric_send() of each value.
        for (hex, text) in [
            ("000200000000000200011388", "1.50"),
            ("0001fffe4000000a0064", "-0.0000010000"),
            ("0000000000000003", "0.000"),
            ("00010002000000000001", "100000000"),
            ("0009000700000001000109291a85007b11d722c509291a851388", "12345678901234567890123456789.5"),
        ] {
            assert_eq!(numeric_text(&bytes(hex)).unwrap(), text);
        }
        assert!(numeric_text(&bytes("0001000000000000")).is_err());
        assert!(numeric_text(&bytes("00000000c0000000")).is_err());
    }
}
