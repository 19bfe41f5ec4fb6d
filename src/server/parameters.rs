//! Parameters `arrow-pg` does not read as PostgreSQL does, read here:
//! - NUMERIC: arrow-pg goes through rust_decimal, which keeps 28
//!   significant digits and rounds the rest away without a word (a
//!   NUMERIC(38) value bound as a parameter, as asyncpg sends them in
//!   binary, was stored changed). A parameter bound to a NUMERIC becomes its
//!   decimal text, then is cast as a literal of that text is.
//! - arrays (`text[]`, `integer[]`): arrow-pg splits their text at every
//!   comma (quotes and NULLs kept as text) and reads few binary element
//!   types; here they are read as PostgreSQL's array input reads them.
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
pub fn deserialize<S: Default + Clone>(
    portal: &Portal<S>,
    types: &[Option<&DataType>],
    zone: &str,
) -> PgWireResult<ParamValues> {
    let mut exact: Vec<(usize, ScalarValue)> = Vec::new();
    for (index, bytes) in portal.parameters.iter().enumerate() {
        let hinted = portal.statement.parameter_types.get(index).cloned().flatten();
        let planned = types.get(index).copied().flatten();
        let Some(bytes) = bytes.as_deref() else {
            // A NULL array: arrow-pg knows few array types, even for NULL.
            if let Some(list @ DataType::List(_)) = planned {
                exact.push((index, ScalarValue::try_from(list).map_err(|e| to_pgwire(Error::from_datafusion(e)))?));
            }
            continue;
        };
        let binary = portal.parameter_format.is_binary(index);
        let value = match (&hinted, planned) {
            (Some(hint), _) if *hint == Type::JSON || *hint == Type::JSONB => {
                let text = json_text(bytes, binary && *hint == Type::JSONB).map_err(to_pgwire)?;
                cast(ScalarValue::Utf8(Some(text)), planned)?
            }
            // A NUMERIC on the wire: the client said so, or left it to the plan.
            (hint, Some(DataType::Decimal128(..)))
                if hint.as_ref().is_none_or(|t| *t == Type::NUMERIC || *t == Type::UNKNOWN) =>
            {
                cast(numeric(bytes, binary)?, planned)?
            }
            // A number the client typed as an integer or a float where the
            // plan has a NUMERIC (`avg(x) > $1`): arrow-pg refuses it.
            (Some(hint), Some(DataType::Decimal128(..)))
                if [Type::INT2, Type::INT4, Type::INT8, Type::FLOAT4, Type::FLOAT8].contains(hint) =>
            {
                cast(ScalarValue::Utf8(Some(number_text(bytes, binary, hint).map_err(to_pgwire)?)), planned)?
            }
            // A TIMESTAMPTZ in text without an offset is a time in the
            // session's zone; PostgreSQL's forms arrow-pg does not read
            // (no seconds: `2026-11-20 12:00`) are read here too.
            (hint, Some(DataType::Timestamp(_, Some(_))))
                if (!binary || hint.as_ref().is_some_and(|t| *t == Type::TEXT || *t == Type::VARCHAR))
                    && (!crate::session::time_zone::is_utc(zone) || needs_seconds(bytes)) =>
            {
                let text = String::from_utf8_lossy(bytes);
                let instant = crate::session::time_zone::instant_from_text(&text, zone).ok_or_else(|| {
                    to_pgwire(Error::InvalidTextRepresentation(format!(
                        "invalid input syntax for type timestamp with time zone: \"{text}\""
                    )))
                })?;
                cast(ScalarValue::TimestampMicrosecond(Some(instant), Some(crate::catalog::UTC.into())), planned)?
            }
            (hint, Some(DataType::Timestamp(_, None)))
                if (!binary || hint.as_ref().is_some_and(|t| *t == Type::TEXT || *t == Type::VARCHAR))
                    && needs_seconds(bytes) =>
            {
                let text = crate::pg_text::normalize_timestamp(&String::from_utf8_lossy(bytes)).into_owned();
                cast(ScalarValue::Utf8(Some(text)), planned)?
            }
            // A TIME in text with a fraction of a second or without
            // seconds (arrow-pg reads only `HH:MM:SS`).
            (_, Some(DataType::Time64(_))) if !binary => {
                let text = String::from_utf8_lossy(bytes);
                let time = ["%H:%M:%S%.f", "%H:%M"]
                    .iter()
                    .find_map(|format| chrono::NaiveTime::parse_from_str(text.trim(), format).ok())
                    .ok_or_else(|| {
                        to_pgwire(Error::InvalidTextRepresentation(format!(
                            "invalid input syntax for type time: \"{text}\""
                        )))
                    })?;
                use chrono::Timelike;
                let micros = time.num_seconds_from_midnight() as i64 * 1_000_000 + (time.nanosecond() / 1000) as i64;
                cast(ScalarValue::Time64Microsecond(Some(micros)), planned)?
            }
            // An array, in PostgreSQL's text or binary form (arrow-pg
            // splits text at every comma and reads few binary element types).
            (_, Some(DataType::List(field))) if let Some(element) = crate::view::sql_type_of(field) => {
                // Binary text (a client that typed the parameter `text`) is its bytes.
                let array_sent = hinted.as_ref().is_none_or(|t| matches!(t.kind(), postgres_types::Kind::Array(_)));
                let text = match binary && array_sent {
                    true => crate::pg_array::binary_elements(&element, bytes).map(|e| crate::pg_array::format(&e)),
                    false => String::from_utf8(bytes.to_vec())
                        .map_err(|_| Error::CharacterNotInRepertoire("invalid UTF-8 in an array parameter".into())),
                }
                .map_err(to_pgwire)?;
                let texts = datafusion::arrow::array::StringArray::from(vec![text]);
                let array = crate::pg_array::parse_column(&texts, &element).map_err(|(_, e)| to_pgwire(e))?;
                let value = ScalarValue::try_from_array(&array, 0).map_err(|e| to_pgwire(Error::from_datafusion(e)))?;
                cast(value, planned)?
            }
            _ => continue,
        };
        exact.push((index, value));
    }
    // A parameter Strata left as text (used only where nothing types it,
    // as in RETURNING `id + $3`) that the client typed as an integer is
    // read as one, as PostgreSQL reads it. Other types keep the text path:
    // a float or a time cast to text or NUMERIC from Arrow's value would
    // not be PostgreSQL's (`1.0`, binary rounding).
    let client_integer = |index: usize, planned: &Option<&DataType>| {
        let hint = portal.statement.parameter_types.get(index).and_then(Option::as_ref);
        *planned == Some(&DataType::Utf8) && hint.is_some_and(|t| [Type::INT2, Type::INT4, Type::INT8].contains(t))
    };
    // Built only for a statement that has such a parameter (Bind is hot).
    let retyped: Option<Vec<Option<&DataType>>> =
        types.iter().enumerate().any(|(index, planned)| client_integer(index, planned)).then(|| {
            types
                .iter()
                .enumerate()
                .map(|(index, planned)| if client_integer(index, planned) { None } else { *planned })
                .collect()
        });
    let types = retyped.as_deref().unwrap_or(types);
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
    // Typed as text for arrow-pg, which would still refuse a type it does
    // not know (and leaves out a NULL of no type: the values would shift).
    let mut others_types = types.to_vec();
    for (index, _) in &exact {
        if let Some(planned) = others_types.get_mut(*index) {
            *planned = Some(&DataType::Utf8);
        }
    }
    let mut params = deserialize_parameters(&others, &others_types)?;
    let ParamValues::List(values) = &mut params else { return Ok(params) };
    for (index, value) in exact {
        values[index].value = value;
    }
    Ok(params)
}

/// An integer or float parameter's value as decimal text (a float's
/// shortest, so 0.1 is `0.1`, not its binary expansion).
fn number_text(bytes: &[u8], binary: bool, hint: &Type) -> Result<String, Error> {
    let bad = || Error::InvalidTextRepresentation(format!("invalid {hint} parameter"));
    if !binary {
        return String::from_utf8(bytes.to_vec()).map_err(|_| bad());
    }
    let array = |n: usize| -> Result<[u8; 8], Error> {
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(bytes.get(..n).filter(|b| b.len() == bytes.len()).ok_or_else(bad)?);
        Ok(out)
    };
    Ok(match *hint {
        Type::INT2 => i16::from_be_bytes(array(2)?[..2].try_into().expect("2 bytes")).to_string(),
        Type::INT4 => i32::from_be_bytes(array(4)?[..4].try_into().expect("4 bytes")).to_string(),
        Type::INT8 => i64::from_be_bytes(array(8)?).to_string(),
        Type::FLOAT4 => f32::from_be_bytes(array(4)?[..4].try_into().expect("4 bytes")).to_string(),
        _ => f64::from_be_bytes(array(8)?).to_string(),
    })
}

/// Timestamp text PostgreSQL reads and arrow-pg does not: a time without
/// seconds.
fn needs_seconds(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes)
        .is_ok_and(|text| matches!(crate::pg_text::normalize_timestamp(text), std::borrow::Cow::Owned(_)))
}

/// A NUMERIC parameter's decimal text.
fn numeric(bytes: &[u8], binary: bool) -> PgWireResult<ScalarValue> {
    let text = match binary {
        true => crate::pg_binary::numeric_text(bytes).map_err(to_pgwire)?,
        false => String::from_utf8_lossy(bytes).trim().to_string(),
    };
    // Arrow reads no exponent; drivers send one (psycopg: `1E-7`).
    let text = match text.contains(['e', 'E']) {
        true => crate::query::jsonb::written_out(&text).unwrap_or(text),
        false => text,
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
