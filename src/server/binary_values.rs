//! Binary result forms that `arrow-pg` does not write as PostgreSQL does:
//! JSONB (a version byte before the text), NUMERIC (arrow-pg goes through
//! rust_decimal, which holds 28 digits: a NUMERIC(38) value of more took the
//! server's memory) and INTERVAL (a NULL was sent as a value). Each becomes a `Binary` column of the exact
//! bytes, which arrow-pg sends as they are.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, IntervalMonthDayNanoType};
use datafusion::arrow::error::ArrowError;

/// JSONB's binary form: a version byte (1), then the text.
pub fn jsonb_binary(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let text = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
    let binary: BinaryArray =
        text.as_string::<i32>().iter().map(|text| text.map(|t| [&[1u8][..], t.as_bytes()].concat())).collect();
    Ok(Arc::new(binary))
}

/// NUMERIC's binary form for a decimal column of scale `scale` (≥ 0).
pub fn numeric_binary(column: &ArrayRef, scale: i8) -> ArrayRef {
    let decimals = column.as_primitive::<Decimal128Type>();
    let scale = scale.max(0) as u16;
    let binary: BinaryArray = (0..decimals.len())
        .map(|row| decimals.is_valid(row).then(|| numeric_bytes(decimals.value(row), scale)))
        .collect();
    Arc::new(binary)
}

/// An array's binary form (as `array_send` writes it) per list, its
/// elements' binary forms taken from `elements` (a BinaryArray over the
/// lists' values, in order).
pub fn array_binary(lists: &datafusion::arrow::array::ListArray, element_oid: u32, elements: &ArrayRef) -> ArrayRef {
    let elements = elements.as_binary::<i32>();
    let offsets = lists.value_offsets();
    let binary: BinaryArray = (0..lists.len())
        .map(|row| {
            lists.is_valid(row).then(|| {
                let range = offsets[row] as usize..offsets[row + 1] as usize;
                let has_nulls = range.clone().any(|i| elements.is_null(i));
                let mut bytes = Vec::new();
                // An empty array has no dimensions.
                bytes.extend_from_slice(&i32::from(!range.is_empty()).to_be_bytes());
                bytes.extend_from_slice(&i32::from(has_nulls).to_be_bytes());
                bytes.extend_from_slice(&element_oid.to_be_bytes());
                if !range.is_empty() {
                    bytes.extend_from_slice(&(range.len() as i32).to_be_bytes());
                    bytes.extend_from_slice(&1i32.to_be_bytes());
                }
                for i in range {
                    match elements.is_valid(i) {
                        true => {
                            let value = elements.value(i);
                            bytes.extend_from_slice(&(value.len() as i32).to_be_bytes());
                            bytes.extend_from_slice(value);
                        }
                        false => bytes.extend_from_slice(&(-1i32).to_be_bytes()),
                    }
                }
                bytes
            })
        })
        .collect();
    Arc::new(binary)
}

/// INTERVAL's binary form: microseconds, days, months. arrow-pg wrote a NULL
/// interval as a value (asyncpg failed on the whole result).
pub fn interval_binary(column: &ArrayRef) -> ArrayRef {
    let intervals = column.as_primitive::<IntervalMonthDayNanoType>();
    let binary: BinaryArray = intervals
        .iter()
        .map(|value| {
            value.map(|v| {
                let mut bytes = Vec::with_capacity(16);
                bytes.extend_from_slice(&(v.nanoseconds / 1_000).to_be_bytes());
                bytes.extend_from_slice(&v.days.to_be_bytes());
                bytes.extend_from_slice(&v.months.to_be_bytes());
                bytes
            })
        })
        .collect();
    Arc::new(binary)
}

/// PostgreSQL's NUMERIC on the wire: the number of base-10000 digits, the
/// weight of the first (its power of 10000), the sign, the display scale,
/// then the digits, leading and trailing zero digits left out.
fn numeric_bytes(value: i128, scale: u16) -> Vec<u8> {
    const NEGATIVE: u16 = 0x4000;
    let sign = if value < 0 { NEGATIVE } else { 0 };
    let decimal = value.unsigned_abs().to_string();
    let scale_digits = scale as usize;
    let decimal = if decimal.len() <= scale_digits {
        format!("{}{decimal}", "0".repeat(scale_digits + 1 - decimal.len()))
    } else {
        decimal
    };
    let (whole, fraction) = decimal.split_at(decimal.len() - scale_digits);
    // Groups of four digits, aligned on the decimal point.
    let lead = (4 - whole.len() % 4) % 4;
    let trail = (4 - fraction.len() % 4) % 4;
    let aligned = format!("{}{whole}{fraction}{}", "0".repeat(lead), "0".repeat(trail));
    let mut groups: Vec<i16> = aligned
        .as_bytes()
        .chunks(4)
        .map(|chunk| chunk.iter().fold(0i16, |n, digit| n * 10 + (digit - b'0') as i16))
        .collect();
    let mut weight = ((lead + whole.len()) / 4) as i16 - 1;
    match groups.iter().position(|g| *g != 0) {
        Some(first) => {
            weight -= first as i16;
            groups.drain(..first);
        }
        None => return header(0, 0, 0, scale),
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let mut bytes = header(groups.len() as i16, weight, sign, scale);
    for group in groups {
        bytes.extend_from_slice(&group.to_be_bytes());
    }
    bytes
}

fn header(digits: i16, weight: i16, sign: u16, scale: u16) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + 2 * digits.max(0) as usize);
    bytes.extend_from_slice(&digits.to_be_bytes());
    bytes.extend_from_slice(&weight.to_be_bytes());
    bytes.extend_from_slice(&sign.to_be_bytes());
    bytes.extend_from_slice(&scale.to_be_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::numeric_bytes;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn numbers_are_the_bytes_postgresql_sends() {
        // PostgreSQL 15's numeric_send() of the same values.
        assert_eq!(hex(&numeric_bytes(150, 2)), "000200000000000200011388");
        assert_eq!(hex(&numeric_bytes(-10000, 10)), "0001fffe4000000a0064");
        assert_eq!(hex(&numeric_bytes(0, 3)), "0000000000000003");
        assert_eq!(hex(&numeric_bytes(100_000_000, 0)), "00010002000000000001");
        assert_eq!(
            hex(&numeric_bytes(123_456_789_012_345_678_901_234_567_895, 1)),
            "0009000700000001000109291a85007b11d722c509291a851388"
        );
        assert_eq!(
            hex(&numeric_bytes(-99_999_999_999_999_999_999_999_999_999_999_999_999, 0)),
            "000a0009400000000063270f270f270f270f270f270f270f270f270f"
        );
    }
}
