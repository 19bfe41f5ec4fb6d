//! The session's `TimeZone`: how TIMESTAMPTZ values are printed and how a
//! time written without an offset (`'2026-11-24 12:00'`) is read, as in
//! PostgreSQL. Values themselves are instants and do not change with it.
//!
//! A zone is kept as Arrow spells one (an IANA name such as
//! `Europe/Berlin`, or an offset `+05:30`), so DataFusion's casts and
//! timestamp functions read it directly.

use std::sync::Arc;

use chrono::{Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

/// The zone of a session that has not set one, as Arrow spells UTC.
pub const DEFAULT_ZONE: &str = crate::catalog::UTC;

/// A `SET TIME ZONE` value as the zone name to keep and show, or None
/// when it names no zone. Accepted: IANA names (any case), `UTC`/`GMT`/`Z`,
/// `LOCAL`/`DEFAULT` (UTC: the server's zone), POSIX offsets (`'+05:30'`,
/// hours west of UTC) and hours east of UTC (`SET TIME ZONE -5`, `5.5`),
/// as PostgreSQL reads each. An offset is kept as Arrow writes it (east).
pub fn setting(text: &str) -> Option<String> {
    let text = text.trim();
    if ["utc", "gmt", "z", "local", "default", "etc/utc", "zulu", "universal"].contains(&text.to_lowercase().as_str()) {
        return Some("UTC".into());
    }
    if let Some(zone) = chrono_tz::TZ_VARIANTS.iter().find(|zone| zone.name().eq_ignore_ascii_case(text)) {
        return Some(zone.name().to_string());
    }
    let offset_minutes = match text.parse::<f64>() {
        // Hours east of UTC, as PostgreSQL reads a number.
        Ok(hours) if hours.abs() <= 14.0 => (hours * 60.0).round() as i32,
        // A written offset is POSIX's, hours west of UTC, as PostgreSQL
        // reads it (`SET TIME ZONE '+05:30'` is 5:30 behind UTC).
        _ => -iso_offset_minutes(text)?,
    };
    Some(offset_text(offset_minutes))
}

/// `+05:30`, `-08`, `+0530` as minutes east of UTC.
fn iso_offset_minutes(text: &str) -> Option<i32> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

fn offset_text(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60)
}

/// The zone as Arrow and DataFusion take it (`UTC` as `+00:00`, the form
/// stored columns carry).
pub fn arrow_zone(setting: &str) -> &str {
    if setting == "UTC" { DEFAULT_ZONE } else { setting }
}

/// Seconds east of UTC in `zone` at the instant `micros`; 0 for a zone
/// Arrow cannot read (never kept: SET checks).
pub fn offset_at(zone: &str, micros: i64) -> i32 {
    let Ok(tz) = zone.parse::<Tz>() else { return 0 };
    let Some(utc) = chrono::DateTime::from_timestamp_micros(micros) else { return 0 };
    tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc()
}

/// Whether `zone` is UTC as Arrow may spell it.
pub fn is_utc(zone: &str) -> bool {
    matches!(zone, "+00:00" | "UTC" | "+00" | "Z" | "Etc/UTC")
}

/// `schema` with its TIMESTAMPTZ columns in `zone`: the same instants,
/// printed as times there.
pub fn schema_in(schema: &SchemaRef, zone: &str) -> SchemaRef {
    if !schema.fields().iter().any(|f| zoned(f.data_type()).is_some()) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match zoned(f.data_type()) {
            Some(unit) => f.as_ref().clone().with_data_type(DataType::Timestamp(unit, Some(zone.into()))),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` laid out as [`schema_in`] gives (a change of the columns' zone only).
pub fn batch_in(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if Arc::ptr_eq(&batch.schema(), schema) || batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| match column.data_type() == field.data_type() {
            true => Ok(column.clone()),
            false => datafusion::arrow::compute::cast(column, field.data_type()),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

fn zoned(data_type: &DataType) -> Option<datafusion::arrow::datatypes::TimeUnit> {
    match data_type {
        DataType::Timestamp(unit, Some(_)) => Some(*unit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{offset_at, setting};

    #[test]
    fn reads_what_set_time_zone_takes() {
        assert_eq!(setting("europe/berlin").as_deref(), Some("Europe/Berlin"));
        assert_eq!(setting("America/New_York").as_deref(), Some("America/New_York"));
        assert_eq!(setting("utc").as_deref(), Some("UTC"));
        assert_eq!(setting("LOCAL").as_deref(), Some("UTC"));
        assert_eq!(setting("-5").as_deref(), Some("-05:00"));
        assert_eq!(setting("5.5").as_deref(), Some("+05:30"));
        assert_eq!(setting("+05:45").as_deref(), Some("-05:45"));
        assert_eq!(setting("-03").as_deref(), Some("-03:00"));
        assert_eq!(setting("-03:00").as_deref(), Some("+03:00"));
        assert_eq!(setting("Mars/Olympus"), None);
        assert_eq!(setting("+25:00"), None);
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        // 2026-07-01 and 2026-12-01, 12:00 UTC.
        assert_eq!(offset_at("Europe/Berlin", 1_782_907_200_000_000), 7200);
        assert_eq!(offset_at("Europe/Berlin", 1_796_126_400_000_000), 3600);
        assert_eq!(offset_at("+05:30", 0), 19_800);
    }
}
