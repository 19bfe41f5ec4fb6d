//! PostgreSQL's text forms where Arrow's differ. Input forms Arrow's parsers
//! do not accept are rewritten into forms they do: hex `bytea` (`\x0a1b`) and
//! `HH:MM:SS` in intervals. Output: floats in their shortest exact form (`1`,
//! `2.5`, `1e+20`, not `1.0`), timestamps with a space and a fraction only
//! when there is one (`2026-11-26 10:00:00+00`), intervals as `1 day
//! 02:00:00.5`, for the wire and for casts to text.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, IntervalMonthDayNanoType, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;

/// PostgreSQL's hex format for bytea (`\x0a1b`); other text is taken as bytes.
pub fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let Some(hex) = text.strip_prefix("\\x") else {
        return Some(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// PostgreSQL's timestamp text that Arrow does not parse, in a form it
/// does: a time without seconds (`2026-11-20 12:00`, `2026-11-20T12:00+02`)
/// gets `:00`. Anything else is returned as it is.
pub fn normalize_timestamp(text: &str) -> std::borrow::Cow<'_, str> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let minutes_end = b.len() >= 16
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b' ' | b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b.get(16).is_none_or(|c| !c.is_ascii_digit() && *c != b':');
    match minutes_end {
        true => format!("{}:00{}", &text[..16], &text[16..]).into(),
        false => text.into(),
    }
}

/// Rewrites PostgreSQL interval text (`3 days 04:05:06`, `2 mons`, `-1:30`)
/// into the unit words Arrow parses (`3 days 4 hours 5 minutes 6 seconds`).
pub fn normalize_interval(text: &str) -> String {
    let mut parts = Vec::new();
    let tokens: Vec<&str> = text.split_whitespace().collect();
    for (index, token) in tokens.iter().enumerate() {
        if let Some(clock) = clock_time(token) {
            parts.push(clock);
            continue;
        }
        // A number with no unit after it is days before a time of day
        // (`'1 12:00'`), seconds otherwise (`'90'` is 00:01:30; Arrow read
        // both as months).
        let next = tokens.get(index + 1);
        let unit_follows = next.is_some_and(|next| next.starts_with(|c: char| c.is_alphabetic()));
        if !unit_follows && token.parse::<f64>().is_ok_and(f64::is_finite) {
            let unit = if next.is_some_and(|next| clock_time(next).is_some()) { "days" } else { "seconds" };
            parts.push(format!("{token} {unit}"));
            continue;
        }
        let unit = match token.to_ascii_lowercase().as_str() {
            "mon" | "mons" => "months".to_string(),
            "yr" | "yrs" => "years".to_string(),
            "hr" | "hrs" => "hours".to_string(),
            "min" | "mins" => "minutes".to_string(),
            "sec" | "secs" => "seconds".to_string(),
            _ => token.to_string(),
        };
        parts.push(unit);
    }
    parts.join(" ")
}

/// `[-]H:MM[:SS[.ffffff]]` as `H hours M minutes S seconds`, signs applied to each.
fn clock_time(token: &str) -> Option<String> {
    let (sign, digits) = match token.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", token.strip_prefix('+').unwrap_or(token)),
    };
    let fields: Vec<&str> = digits.split(':').collect();
    if !(2..=3).contains(&fields.len()) {
        return None;
    }
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !fields.iter().all(|f| numeric(f)) || fields[..fields.len() - 1].iter().any(|f| f.contains('.')) {
        return None;
    }
    let mut out = format!("{sign}{} hours {sign}{} minutes", fields[0], fields[1]);
    if let Some(seconds) = fields.get(2) {
        out.push_str(&format!(" {sign}{seconds} seconds"));
    }
    Some(out)
}

/// `column` as PostgreSQL prints it, where arrow-pg's text (or Arrow's)
/// would differ; `None` for a column both print right.
pub fn as_text(column: &ArrayRef) -> Result<Option<StringArray>, ArrowError> {
    Ok(match column.data_type() {
        DataType::Float64 => Some(column.as_primitive::<Float64Type>().iter().map(|v| v.map(float8)).collect()),
        DataType::Float32 => Some(column.as_primitive::<Float32Type>().iter().map(|v| v.map(float4)).collect()),
        DataType::Interval(IntervalUnit::MonthDayNano) => Some(
            column
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| v.map(|v| interval(v.months, v.days, v.nanoseconds)))
                .collect(),
        ),
        DataType::Duration(_) => as_text(&duration_as_interval(column)?)?,
        DataType::Timestamp(unit, zone) => {
            // The instants (a cast to a zoneless type would move them to local time).
            let micros = match unit {
                TimeUnit::Microsecond => column.clone(),
                _ => {
                    datafusion::arrow::compute::cast(column, &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))?
                }
            };
            let micros = micros.as_primitive::<TimestampMicrosecondType>();
            Some(match zone.as_deref() {
                Some(zone) if !crate::session::time_zone::is_utc(zone) => {
                    let tz = crate::session::time_zone::parse(zone);
                    let offset = |v| tz.as_ref().map_or(0, |tz| crate::session::time_zone::offset_in(tz, v));
                    micros.iter().map(|v| v.map(|v| timestamp_at(v, offset(v)))).collect()
                }
                _ => micros.iter().map(|v| v.map(|v| timestamp(v, zone.is_some()))).collect(),
            })
        }
        // Arrow's text is PostgreSQL's for all 38 digits; arrow-pg writes a
        // decimal through rust_decimal, which holds 28 (a larger one took
        // the server's memory).
        DataType::Decimal128(_, scale) if *scale >= 0 => {
            Some(datafusion::arrow::compute::cast(column, &DataType::Utf8)?.as_string::<i32>().clone())
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) | DataType::ListView(_) => {
            let list = datafusion::arrow::compute::cast(column, &DataType::new_list(element_type(column), true))?;
            Some(array_texts(list.as_list::<i32>())?)
        }
        _ => None,
    })
}

/// A duration (what DataFusion gives for `timestamp - timestamp`) as the
/// interval PostgreSQL gives for it: whole days of 24 hours, the rest as
/// time (`2 days 01:00:00`, not `49:00:00`; both signs alike, as
/// `justify_hours`). Durations stay durations inside a query, where
/// DataFusion averages and compares them; this is their form for clients
/// and for stored INTERVAL columns.
pub fn duration_as_interval(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    use datafusion::arrow::array::IntervalMonthDayNanoArray;
    use datafusion::arrow::datatypes::{DurationMicrosecondType, IntervalMonthDayNano};
    const DAY: i64 = 86_400_000_000;
    let micros = datafusion::arrow::compute::cast(column, &DataType::Duration(TimeUnit::Microsecond))?;
    let intervals: IntervalMonthDayNanoArray = micros
        .as_primitive::<DurationMicrosecondType>()
        .iter()
        .map(|v| v.map(|v| IntervalMonthDayNano::new(0, (v / DAY) as i32, v % DAY * 1_000)))
        .collect();
    Ok(std::sync::Arc::new(intervals))
}

fn element_type(column: &ArrayRef) -> DataType {
    match column.data_type() {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
            f.data_type().clone()
        }
        other => other.clone(),
    }
}

/// Each list as PostgreSQL's array text (`{1,2,NULL}`, `{"a b",t}`), its
/// elements in their PostgreSQL text.
fn array_texts(lists: &datafusion::arrow::array::ListArray) -> Result<StringArray, ArrowError> {
    let texts = element_texts(lists.values())?;
    let offsets = lists.value_offsets();
    Ok((0..lists.len())
        .map(|row| {
            lists.is_valid(row).then(|| {
                let elements: Vec<Option<String>> = (offsets[row] as usize..offsets[row + 1] as usize)
                    .map(|i| texts.is_valid(i).then(|| texts.value(i).to_string()))
                    .collect();
                crate::pg_array::format(&elements)
            })
        })
        .collect())
}

/// Any values as PostgreSQL prints them (`t`, `\\x0a`, `2026-11-24 12:00:00+00`).
pub fn element_texts(values: &ArrayRef) -> Result<StringArray, ArrowError> {
    Ok(match as_text(values)? {
        Some(texts) => texts,
        None => match values.data_type() {
            DataType::Boolean => values.as_boolean().iter().map(|v| v.map(|v| if v { "t" } else { "f" })).collect(),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                let bytes = datafusion::arrow::compute::cast(values, &DataType::Binary)?;
                bytes.as_binary::<i32>().iter().map(|v| v.map(bytea)).collect()
            }
            _ => datafusion::arrow::compute::cast(values, &DataType::Utf8)?.as_string::<i32>().clone(),
        },
    })
}

/// PostgreSQL's hex text of bytea (`\x0a1b`).
pub fn bytea(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 + 2 * bytes.len());
    text.push_str("\\x");
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// `float8` as PostgreSQL prints it (shortest digits that read back exactly;
/// exponent form below 1e-4 and from 1e15).
pub fn float8(value: f64) -> String {
    float(value, 15, value.to_string(), format!("{value:e}"))
}

/// `float4` as PostgreSQL prints it (exponent form below 1e-4 and from 1e6).
pub fn float4(value: f32) -> String {
    float(value as f64, 6, value.to_string(), format!("{value:e}"))
}

fn float(value: f64, digits: i32, plain: String, exponent: String) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if value == 0.0 {
        return plain;
    }
    let magnitude = value.abs().log10().floor() as i32;
    if (-4..digits).contains(&magnitude) {
        return plain;
    }
    // Rust writes `1.5e-5`; PostgreSQL `1.5e-05`.
    match exponent.split_once('e') {
        Some((mantissa, power)) => {
            let power: i32 = power.parse().unwrap_or(0);
            format!("{mantissa}e{}{:02}", if power < 0 { '-' } else { '+' }, power.abs())
        }
        None => plain,
    }
}

/// A timestamp (µs since the epoch, UTC) as PostgreSQL prints it in a UTC
/// session: `2026-11-26 10:00:00`, `.5` fractions without trailing zeros,
/// `+00` for TIMESTAMPTZ.
pub fn timestamp(micros: i64, with_zone: bool) -> String {
    let Some(time) = chrono::DateTime::from_timestamp_micros(micros) else { return micros.to_string() };
    let mut text = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    if with_zone {
        text.push_str("+00");
    }
    text
}

/// A TIMESTAMPTZ as PostgreSQL prints it in a zone `offset` seconds east
/// of UTC: the local time, then the offset (`+01`, `+05:30`, `-03:30`).
pub fn timestamp_at(micros: i64, offset: i32) -> String {
    let mut text = timestamp(micros + offset as i64 * 1_000_000, false);
    let sign = if offset < 0 { '-' } else { '+' };
    let (hours, minutes, seconds) = (offset.abs() / 3600, offset.abs() / 60 % 60, offset.abs() % 60);
    text.push_str(&format!("{sign}{hours:02}"));
    if minutes != 0 || seconds != 0 {
        text.push_str(&format!(":{minutes:02}"));
    }
    if seconds != 0 {
        text.push_str(&format!(":{seconds:02}"));
    }
    text
}

/// An interval as PostgreSQL prints it (IntervalStyle `postgres`): `1 year
/// 2 mons 3 days 04:05:06.5`, `-1 days +02:00:00`, `00:00:00`. PostgreSQL
/// keeps microseconds; finer parts are dropped.
pub fn interval(months: i32, days: i32, nanoseconds: i64) -> String {
    let mut text = String::new();
    let mut before_negative = false;
    for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
        if value == 0 {
            continue;
        }
        let separator = if text.is_empty() { "" } else { " " };
        let plus = if before_negative && value > 0 { "+" } else { "" };
        let plural = if value != 1 { "s" } else { "" };
        text.push_str(&format!("{separator}{plus}{value} {unit}{plural}"));
        before_negative = value < 0;
    }
    let micros = nanoseconds / 1_000;
    if text.is_empty() || micros != 0 {
        let separator = if text.is_empty() { "" } else { " " };
        let sign = if micros < 0 {
            "-"
        } else if before_negative {
            "+"
        } else {
            ""
        };
        let micros = micros.unsigned_abs();
        let (hours, minutes, seconds) = (micros / 3_600_000_000, micros / 60_000_000 % 60, micros / 1_000_000 % 60);
        text.push_str(&format!("{separator}{sign}{hours:02}:{minutes:02}:{seconds:02}"));
        let fraction = micros % 1_000_000;
        if fraction != 0 {
            text.push('.');
            text.push_str(format!("{fraction:06}").trim_end_matches('0'));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_without_seconds_get_them() {
        assert_eq!(normalize_timestamp("2026-11-20 12:00"), "2026-11-20 12:00:00");
        assert_eq!(normalize_timestamp("2026-11-20T12:00+02"), "2026-11-20T12:00:00+02");
        assert_eq!(normalize_timestamp("2026-11-20 12:00 UTC"), "2026-11-20 12:00:00 UTC");
        for unchanged in ["2026-11-20 12:00:05", "2026-11-20", "2026-11-20 12:00:05.5+00", "12:00", "now"] {
            assert_eq!(normalize_timestamp(unchanged), unchanged);
        }
    }

    #[test]
    fn intervals_print_as_postgres_does() {
        const HOUR: i64 = 3_600_000_000_000;
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(14, 3, 4 * HOUR + 306_500_000_000), "1 year 2 mons 3 days 04:05:06.5");
        assert_eq!(interval(0, -1, 2 * HOUR), "-1 days +02:00:00");
        assert_eq!(interval(0, 1, -2 * HOUR), "1 day -02:00:00");
        assert_eq!(interval(-12, 3, -1_000), "-1 years +3 days -00:00:00.000001");
        assert_eq!(interval(1, 0, 0), "1 mon");
        assert_eq!(interval(0, 0, 100 * HOUR + 1_500), "100:00:00.000001");
    }

    #[test]
    fn intervals_in_postgres_form() {
        assert_eq!(normalize_interval("3 days 04:05:06"), "3 days 04 hours 05 minutes 06 seconds");
        assert_eq!(normalize_interval("-1:30"), "-1 hours -30 minutes");
        // A bare number: seconds, or days before a time of day.
        assert_eq!(normalize_interval("90"), "90 seconds");
        assert_eq!(normalize_interval("1 12:00"), "1 days 12 hours 00 minutes");
        assert_eq!(normalize_interval("2 days 30"), "2 days 30 seconds");
        assert_eq!(normalize_interval("1 year 2 mons"), "1 year 2 months");
        assert_eq!(normalize_interval("2 hours"), "2 hours");
    }

    #[test]
    fn bytea_hex() {
        assert_eq!(parse_bytea("\\x0aff"), Some(vec![10, 255]));
        assert_eq!(parse_bytea("\\x0"), None);
        assert_eq!(parse_bytea("\\xzz"), None);
        assert_eq!(parse_bytea("raw"), Some(b"raw".to_vec()));
    }

    #[test]
    fn floats_print_as_postgresql_prints_them() {
        let cases =
            [(1.0, "1"), (2.5, "2.5"), (0.1, "0.1"), (-3.0, "-3"), (1e20, "1e+20"), (1.5e-5, "1.5e-05"), (0.0, "0")];
        for (value, text) in cases {
            assert_eq!(float8(value), text, "{value}");
        }
        assert_eq!(float8(123456789012345.0), "123456789012345");
        assert_eq!(float8(f64::NAN), "NaN");
        assert_eq!(float8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float4(1.5), "1.5");
        assert_eq!(float4(1234567.0), "1.234567e+06");
    }

    #[test]
    fn timestamps_print_a_fraction_only_when_there_is_one() {
        assert_eq!(timestamp(1_764_151_200_000_000, true), "2025-11-26 10:00:00+00");
        assert_eq!(timestamp(1_764_151_200_500_000, false), "2025-11-26 10:00:00.5");
        assert_eq!(timestamp(1_764_151_200_000_123, true), "2025-11-26 10:00:00.000123+00");
    }
}
