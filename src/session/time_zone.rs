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
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
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

/// A zone's name as SHOW gives it: an IANA name as the database spells
/// it, UTC as `UTC`, anything else as written.
pub fn shown(text: &str) -> String {
    let text = text.trim();
    match setting(text) {
        Some(zone) if zone == "UTC" || chrono_tz::TZ_VARIANTS.iter().any(|z| z.name() == zone) => zone,
        _ => text.to_string(),
    }
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
    parse(zone).map_or(0, |tz| offset_in(&tz, micros))
}

/// `zone` read once, for the many values of a column (None: a zone Arrow
/// cannot read, never kept: SET checks).
pub fn parse(zone: &str) -> Option<Tz> {
    zone.parse().ok()
}

/// Seconds east of UTC in `tz` at the instant `micros`.
pub fn offset_in(tz: &Tz, micros: i64) -> i32 {
    let Some(utc) = chrono::DateTime::from_timestamp_micros(micros) else { return 0 };
    tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc()
}

datafusion::common::extensions_options! {
    /// Strata's per-statement settings the analyzer rules read.
    pub struct StrataOptions {
        /// The session's zone as Arrow spells it (see `setting`).
        pub time_zone: String, default = DEFAULT_ZONE.to_string()
        /// The session's settings, for `current_setting` (see `query::pg_settings`).
        pub settings: String, default = String::new()
    }
}

impl datafusion::common::config::ConfigExtension for StrataOptions {
    const PREFIX: &'static str = "strata";
}

/// The session's zone a statement runs in (UTC where none was set).
pub fn of_statement(config: &datafusion::common::config::ConfigOptions) -> String {
    config.extensions.get::<StrataOptions>().map_or_else(|| DEFAULT_ZONE.to_string(), |o| o.time_zone.clone())
}

/// The instant (µs) of a local time (µs since the epoch as if UTC) in
/// `zone`, as PostgreSQL reads one: a time a change to summer time skips
/// takes the offset before the change (02:30 is 03:30 summer time), a time
/// the change back repeats is standard time (the later instant).
pub fn local_to_utc(tz: &Tz, local: i64) -> Option<i64> {
    let naive = chrono::DateTime::from_timestamp_micros(local)?.naive_utc();
    let offset = match tz.offset_from_local_datetime(&naive) {
        chrono::LocalResult::Single(offset) => offset.fix(),
        chrono::LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.fix(), b.fix());
            if a.local_minus_utc() < b.local_minus_utc() { a } else { b }
        }
        // Zones do not change twice in a day: a day earlier is before the change.
        chrono::LocalResult::None => {
            tz.offset_from_local_datetime(&(naive - chrono::Duration::days(1))).earliest()?.fix()
        }
    };
    Some(local - offset.local_minus_utc() as i64 * 1_000_000)
}

/// The instant (µs) a TIMESTAMPTZ's text names: with an offset or a zone,
/// that; without, the time in `zone`. None for text that is no time.
pub fn instant_from_text(text: &str, zone: &str) -> Option<i64> {
    instant_in(text, &parse(zone)?)
}

/// [`instant_from_text`] in a zone read once.
fn instant_in(text: &str, tz: &Tz) -> Option<i64> {
    use datafusion::arrow::compute::kernels::cast_utils::string_to_datetime;
    let text = crate::pg_text::normalize_timestamp(text.trim());
    let as_utc = string_to_datetime(&chrono::Utc, &text).ok()?;
    // Read in two zones, text with its own offset names one instant.
    let as_east = string_to_datetime(&chrono::FixedOffset::east_opt(3600)?, &text).ok()?;
    if as_utc == as_east {
        return Some(as_utc.timestamp_micros());
    }
    local_to_utc(tz, as_utc.timestamp_micros())
}

/// [`instant_from_text`] of each text, as stored TIMESTAMPTZ values; on
/// failure, the row at fault.
pub fn instants_from_texts(texts: &StringArray, zone: &str) -> Result<TimestampMicrosecondArray, usize> {
    // A zone is checked when set; UTC stands in should one not read.
    let tz = parse(zone).or_else(|| parse(DEFAULT_ZONE)).expect("UTC reads");
    let values: Vec<Option<i64>> = (0..texts.len())
        .map(|row| texts.is_valid(row).then(|| instant_in(texts.value(row), &tz).ok_or(row)).transpose())
        .collect::<Result<_, _>>()?;
    Ok(TimestampMicrosecondArray::from(values).with_timezone(DEFAULT_ZONE))
}

/// TIMESTAMP values (µs) as the instants they are in `zone`, as stored
/// TIMESTAMPTZ values.
pub fn instants_from_local(local: &TimestampMicrosecondArray, zone: &str) -> TimestampMicrosecondArray {
    let tz = parse(zone);
    local
        .iter()
        .map(|v| v.and_then(|v| local_to_utc(tz.as_ref()?, v)))
        .collect::<TimestampMicrosecondArray>()
        .with_timezone(DEFAULT_ZONE)
}

/// Whether a TIMESTAMPTZ type's zone is the one stored values, `now()`
/// and TIMESTAMPTZ casts carry (so its times of day are the session's to
/// take), not one a query chose (`AT TIME ZONE 'UTC'`).
pub fn is_stored(zone: &str) -> bool {
    // `+00` is how DataFusion types a time it coerces to a column's zone (date_bin's origin).
    matches!(zone, DEFAULT_ZONE | "+00")
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
        DataType::Timestamp(unit, Some(zone)) if is_stored(zone) => Some(*unit),
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
    fn local_times_read_as_postgresql_reads_them() {
        let at = |text: &str| {
            super::instant_from_text(text, "Europe/Berlin")
                .map(|m| chrono::DateTime::from_timestamp_micros(m).unwrap().format("%Y-%m-%d %H:%M").to_string())
        };
        assert_eq!(at("2026-11-24 13:00").as_deref(), Some("2026-11-24 12:00"));
        assert_eq!(at("2026-11-24 13:00+00").as_deref(), Some("2026-11-24 13:00"));
        // Skipped by the change to summer time: the offset before it.
        assert_eq!(at("2026-03-29 02:30").as_deref(), Some("2026-03-29 01:30"));
        // Repeated by the change back: standard time.
        assert_eq!(at("2026-10-25 02:30").as_deref(), Some("2026-10-25 01:30"));
        assert_eq!(at("not a time"), None);
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        // 2026-07-01 and 2026-12-01, 12:00 UTC.
        assert_eq!(offset_at("Europe/Berlin", 1_782_907_200_000_000), 7200);
        assert_eq!(offset_at("Europe/Berlin", 1_796_126_400_000_000), 3600);
        assert_eq!(offset_at("+05:30", 0), 19_800);
    }
}
