//! The session's `TimeZone`: how TIMESTAMPTZ values are printed and how a
//! time written without an offset (`'2026-11-24 12:00'`) is read, as in
//! PostgreSQL. Values themselves are instants and do not change with it.
//!
//! A zone is kept as Arrow spells one (an IANA name such as
//! `Europe/Berlin`, or an offset `+05:30`), so DataFusion's casts and
//! timestamp functions read it directly.

use chrono::{Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;

/// The zone of a session that has not set one, as Arrow spells UTC.
pub const DEFAULT_ZONE: &str = crate::catalog::UTC;

/// A `SET TIME ZONE` value as the zone name to keep and show, or None
/// when it names no zone. Accepted: IANA names (any case), `UTC`/`GMT`/`Z`,
/// `LOCAL`/`DEFAULT` (UTC: the server's zone), offsets (`+05:30`, `-08`)
/// and PostgreSQL's hours east of UTC (`SET TIME ZONE -5`, `5.5`).
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
        Ok(hours) if hours.abs() <= 14.0 && !text.contains(':') => (hours * 60.0).round() as i32,
        _ => iso_offset_minutes(text)?,
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
        assert_eq!(setting("+05:45").as_deref(), Some("+05:45"));
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
