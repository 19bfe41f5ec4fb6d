//! PostgreSQL's binary forms of values, read as the text PostgreSQL would
//! print for them: binary parameters (NUMERIC) and `COPY … FROM STDIN
//! (FORMAT binary)`, whose fields then take the text path's conversions and
//! checks.

use crate::catalog::SqlType;
use crate::error::Error;

/// Microseconds and days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const EPOCH_2000_MICROS: i64 = 946_684_800_000_000;
const EPOCH_2000_DAYS: i32 = 10_957;

/// One binary field of a column of type `sql_type`, as text.
pub fn field_text(sql_type: &SqlType, bytes: &[u8]) -> Result<String, Error> {
    let sized = |n: usize| -> Result<&[u8], Error> {
        match bytes.len() == n {
            true => Ok(bytes),
            false => Err(Error::InvalidTextRepresentation(format!(
                "incorrect binary data format: {} bytes for a {} value",
                bytes.len(),
                sql_type.sql_name()
            ))),
        }
    };
    let be = |n: usize| -> Result<[u8; 8], Error> {
        let mut out = [0u8; 8];
        out[8 - n..].copy_from_slice(sized(n)?);
        Ok(out)
    };
    Ok(match sql_type {
        SqlType::Boolean => (if sized(1)?[0] != 0 { "t" } else { "f" }).to_string(),
        SqlType::SmallInt => (i64::from_be_bytes(be(2)?) as u16 as i16).to_string(),
        SqlType::Int => (i64::from_be_bytes(be(4)?) as u32 as i32).to_string(),
        SqlType::BigInt => i64::from_be_bytes(be(8)?).to_string(),
        SqlType::Real => crate::pg_text::float4(f32::from_bits(u64::from_be_bytes(be(4)?) as u32)),
        SqlType::Double => crate::pg_text::float8(f64::from_bits(u64::from_be_bytes(be(8)?))),
        SqlType::Numeric { .. } => numeric_text(bytes)?,
        SqlType::Text | SqlType::Varchar { .. } => utf8(bytes)?,
        SqlType::Array(element) => crate::pg_array::format(&crate::pg_array::binary_elements(element, bytes)?),
        SqlType::Jsonb => match bytes.split_first() {
            // JSONB's binary form is a version byte, then the text; JSON's is the text.
            Some((1, text)) => utf8(text)?,
            _ => utf8(bytes)?,
        },
        SqlType::Bytea => crate::pg_text::bytea(bytes),
        SqlType::Date => {
            let days = (i64::from_be_bytes(be(4)?) as u32 as i32) as i64;
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::try_days(days + EPOCH_2000_DAYS as i64)?))
                .ok_or_else(|| Error::InvalidParameterValue("date out of range".into()))?;
            date.format("%Y-%m-%d").to_string()
        }
        SqlType::Timestamp | SqlType::TimestampTz => {
            let micros = i64::from_be_bytes(be(8)?)
                .checked_add(EPOCH_2000_MICROS)
                .ok_or_else(|| Error::InvalidParameterValue("timestamp out of range".into()))?;
            crate::pg_text::timestamp(micros, *sql_type == SqlType::TimestampTz)
        }
        SqlType::Interval => {
            let value = sized(16)?;
            let micros = i64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
            let days = i32::from_be_bytes(value[8..12].try_into().expect("4 bytes"));
            let months = i32::from_be_bytes(value[12..].try_into().expect("4 bytes"));
            let nanos = micros
                .checked_mul(1_000)
                .ok_or_else(|| Error::InvalidParameterValue("interval out of range".into()))?;
            crate::pg_text::interval(months, days, nanos)
        }
    })
}

fn utf8(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::CharacterNotInRepertoire("invalid byte sequence for encoding \"UTF8\"".into()))
}

/// The decimal text of NUMERIC's binary form (see `server/binary_values.rs`).
pub fn numeric_text(bytes: &[u8]) -> Result<String, Error> {
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
