//! `to_char(timestamp | timestamptz | date, text)` with PostgreSQL's
//! template patterns (`YYYY-MM-DD HH24:MI:SS`, `FMMonth DDth`, `Dy`, …).
//! DataFusion's `to_char` takes chrono's `%Y-%m-%d` and copies anything
//! else, so `to_char(now(), 'YYYY-MM-DD')` was the text `YYYY-MM-DD`.
//!
//! Times are formatted in the session's zone, UTC; a DATE is formatted as
//! the TIMESTAMPTZ of its midnight, as PostgreSQL resolves `to_char(date)`.
//! The `TM` prefix (translated names) leaves names unpadded and English;
//! the `SP` suffix (spelled out, which PostgreSQL does not implement) is
//! read and changes nothing.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike, Weekday};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result as DfResult, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

pub fn to_char() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToChar { signature: Signature::user_defined(Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let [value, _] = arg_types else { return plan_err!("to_char takes a value and a template") };
        let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some(crate::catalog::UTC.into()));
        let value = match value {
            DataType::Timestamp(_, Some(_)) | DataType::Date32 | DataType::Date64 => zoned,
            DataType::Timestamp(_, None)
            | DataType::Utf8
            | DataType::Utf8View
            | DataType::LargeUtf8
            | DataType::Null => DataType::Timestamp(TimeUnit::Microsecond, None),
            other => return plan_err!("function to_char({other}, text) does not exist"),
        };
        Ok(vec![value, DataType::Utf8])
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // Coerced to TIMESTAMP(µs), with or without a zone.
        let values = arrays[0].as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
        let templates = arrays[1].as_string::<i32>();
        let zoned = matches!(arrays[0].data_type(), DataType::Timestamp(_, Some(_)));
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        let mut parsed: Option<(String, Vec<Piece>)> = None;
        let zone = super::pg_age::zone_of(values);
        let named = values.timezone().and_then(|z| z.parse::<chrono_tz::Tz>().ok());
        for row in 0..rows {
            let Some(at) = super::pg_age::local_time_at(values, zone.as_ref(), row)? else {
                out.append_null();
                continue;
            };
            if templates.is_null(row) {
                out.append_null();
                continue;
            }
            let template = templates.value(row);
            // PostgreSQL's to_char of an empty template is NULL.
            if template.is_empty() {
                out.append_null();
                continue;
            }
            if parsed.as_ref().is_none_or(|(text, _)| text != template) {
                parsed = Some((template.to_string(), parse(template)));
            }
            let pieces = &parsed.as_ref().expect("parsed above").1;
            let zone_at = zoned.then(|| zone_at(values.timezone(), zone.as_ref(), named.as_ref(), values.value(row)));
            out.append_value(format(pieces, &at, zone_at.as_ref()));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// A piece of a template: a pattern with its fill mode and ordinal
/// suffix, or text to copy.
#[derive(Debug, PartialEq)]
enum Piece {
    Pattern { pattern: Pattern, fill_mode: bool, ordinal: Option<Case> },
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Upper,
    Capitalized,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pattern {
    Hour12,
    Hour24,
    Minute,
    Second,
    Millisecond,
    Microsecond,
    Fraction(u8),
    SecondsOfDay,
    Meridiem { dots: bool, case: Case },
    Era { dots: bool, case: Case },
    YearComma,
    Year(u8),
    IsoYear(u8),
    MonthName(Case),
    MonthAbbreviation(Case),
    Month,
    RomanMonth(Case),
    DayName(Case),
    DayAbbreviation(Case),
    DayOfYear,
    DayOfMonth,
    DayOfWeek,
    IsoDayOfWeek,
    IsoDayOfYear,
    WeekOfMonth,
    WeekOfYear,
    IsoWeek,
    Century,
    Quarter,
    JulianDay,
    ZoneName(Case),
    ZoneHours,
    ZoneMinutes,
    ZoneOffset,
}

/// PostgreSQL's patterns in the order it tries them: a longer one before
/// its prefixes (`HH24` before `HH`, `DDD` before `DD` before `D`). Each
/// one in capitals has a lower-case twin (`yyyy`, `month`: see
/// [`find_pattern`]); `Month`, `Day`, `Mon` and `Dy` are their own.
const PATTERNS: &[(&str, Pattern)] = {
    use Case::*;
    use Pattern::*;
    &[
        ("A.D.", Era { dots: true, case: Upper }),
        ("A.M.", Meridiem { dots: true, case: Upper }),
        ("AD", Era { dots: false, case: Upper }),
        ("AM", Meridiem { dots: false, case: Upper }),
        ("B.C.", Era { dots: true, case: Upper }),
        ("BC", Era { dots: false, case: Upper }),
        ("CC", Century),
        ("DAY", DayName(Upper)),
        ("DDD", DayOfYear),
        ("DD", DayOfMonth),
        ("DY", DayAbbreviation(Upper)),
        ("Day", DayName(Capitalized)),
        ("Dy", DayAbbreviation(Capitalized)),
        ("D", DayOfWeek),
        ("FF1", Fraction(1)),
        ("FF2", Fraction(2)),
        ("FF3", Fraction(3)),
        ("FF4", Fraction(4)),
        ("FF5", Fraction(5)),
        ("FF6", Fraction(6)),
        ("HH24", Hour24),
        ("HH12", Hour12),
        ("HH", Hour12),
        ("IDDD", IsoDayOfYear),
        ("ID", IsoDayOfWeek),
        ("IW", IsoWeek),
        ("IYYY", IsoYear(4)),
        ("IYY", IsoYear(3)),
        ("IY", IsoYear(2)),
        ("I", IsoYear(1)),
        ("J", JulianDay),
        ("MI", Minute),
        ("MM", Month),
        ("MONTH", MonthName(Upper)),
        ("MON", MonthAbbreviation(Upper)),
        ("MS", Millisecond),
        ("Month", MonthName(Capitalized)),
        ("Mon", MonthAbbreviation(Capitalized)),
        ("OF", ZoneOffset),
        ("P.M.", Meridiem { dots: true, case: Upper }),
        ("PM", Meridiem { dots: false, case: Upper }),
        ("Q", Quarter),
        ("RM", RomanMonth(Upper)),
        ("SSSSS", SecondsOfDay),
        ("SSSS", SecondsOfDay),
        ("SS", Second),
        ("TZH", ZoneHours),
        ("TZM", ZoneMinutes),
        ("TZ", ZoneName(Upper)),
        ("US", Microsecond),
        ("WW", WeekOfYear),
        ("W", WeekOfMonth),
        ("Y,YYY", YearComma),
        ("YYYY", Year(4)),
        ("YYY", Year(3)),
        ("YY", Year(2)),
        ("Y", Year(1)),
    ]
};

fn parse(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        // Quoted text is copied; in it a backslash copies the character after it.
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => text.push(escaped),
                        None => text.push('\\'),
                    },
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => text.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            continue;
        }
        // Outside quotes a backslash escapes only a double quote.
        if let Some(quote) = rest.strip_prefix("\\\"") {
            text.push('"');
            rest = quote;
            continue;
        }
        // `FX` (fixed format) matters only when parsing text: skipped.
        if let Some(after) = rest.strip_prefix("FX").or_else(|| rest.strip_prefix("fx")) {
            rest = after;
            continue;
        }
        // Prefixes: `FM` (no padding) and `TM` (translated names), in any
        // order; one before no pattern is dropped, as PostgreSQL drops it.
        let mut fill_mode = false;
        let mut after_prefix = rest;
        loop {
            if let Some(after) = after_prefix.strip_prefix("FM").or_else(|| after_prefix.strip_prefix("fm")) {
                fill_mode = true;
                after_prefix = after;
            } else if let Some(after) = after_prefix.strip_prefix("TM").or_else(|| after_prefix.strip_prefix("tm")) {
                // Translated names come without trailing blanks.
                fill_mode = true;
                after_prefix = after;
            } else {
                break;
            }
        }
        if let Some((length, pattern)) = find_pattern(after_prefix) {
            let mut after = &after_prefix[length..];
            let ordinal = if let Some(a) = after.strip_prefix("TH") {
                after = a;
                Some(Case::Upper)
            } else if let Some(a) = after.strip_prefix("th") {
                after = a;
                Some(Case::Lower)
            } else {
                None
            };
            // `SP` (spell mode) is not implemented by PostgreSQL either.
            if let Some(a) = after.strip_prefix("SP").or_else(|| after.strip_prefix("sp")) {
                after = a;
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Pattern { pattern, fill_mode, ordinal });
            rest = after;
            continue;
        }
        if after_prefix.len() < rest.len() {
            rest = after_prefix;
            continue;
        }
        let c = rest.chars().next().expect("rest is not empty");
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// The pattern `text` starts with, and its length: as written in
/// [`PATTERNS`], or a capitals-only one in lower case (its names then print
/// in lower case).
fn find_pattern(text: &str) -> Option<(usize, Pattern)> {
    if let Some((name, pattern)) = PATTERNS.iter().find(|(name, _)| text.starts_with(name)) {
        return Some((name.len(), *pattern));
    }
    let lower_twin = |name: &str| {
        !name.bytes().any(|b| b.is_ascii_lowercase())
            && text.len() >= name.len()
            && name.bytes().zip(text.bytes()).all(|(n, t)| n.to_ascii_lowercase() == t)
    };
    PATTERNS.iter().find(|(name, _)| lower_twin(name)).map(|(name, pattern)| (name.len(), pattern.lower_case()))
}

impl Pattern {
    /// The pattern's lower-case twin: names in lower case.
    fn lower_case(self) -> Pattern {
        let lower = |case: Case| if case == Case::Upper { Case::Lower } else { case };
        match self {
            Pattern::Meridiem { dots, case } => Pattern::Meridiem { dots, case: lower(case) },
            Pattern::Era { dots, case } => Pattern::Era { dots, case: lower(case) },
            Pattern::MonthName(case) => Pattern::MonthName(lower(case)),
            Pattern::MonthAbbreviation(case) => Pattern::MonthAbbreviation(lower(case)),
            Pattern::RomanMonth(case) => Pattern::RomanMonth(lower(case)),
            Pattern::DayName(case) => Pattern::DayName(lower(case)),
            Pattern::DayAbbreviation(case) => Pattern::DayAbbreviation(lower(case)),
            Pattern::ZoneName(case) => Pattern::ZoneName(lower(case)),
            other => other,
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const ROMAN_MONTHS: [&str; 12] = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"];

/// Days from 4714-11-24 BC (Julian day 0) to 0001-01-01 less one (chrono's
/// day 1 of the common era).
const JULIAN_DAY_OF_CE_DAY_0: i64 = 1_721_425;

/// A TIMESTAMPTZ's zone at its instant: seconds east of UTC, and the
/// zone's abbreviation (`CET`), or its offset where it has none.
struct ZoneAt {
    offset: i32,
    name: String,
}

/// `zone` is the column's zone, `tz` it read for offsets and `named` for
/// abbreviations (an IANA zone's; none for an offset), each read once.
fn zone_at(
    zone: Option<&str>,
    tz: Option<&datafusion::arrow::array::timezone::Tz>,
    named: Option<&chrono_tz::Tz>,
    micros: i64,
) -> ZoneAt {
    let offset = tz.map_or(0, |tz| crate::session::time_zone::offset_in(tz, micros));
    if crate::session::time_zone::is_utc(zone.unwrap_or(crate::catalog::UTC)) {
        return ZoneAt { offset, name: "UTC".into() };
    }
    let named = named.and_then(|tz| {
        use chrono::TimeZone;
        use chrono_tz::OffsetName;
        let utc = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
        tz.offset_from_utc_datetime(&utc).abbreviation().map(str::to_string)
    });
    let name = named.unwrap_or_else(|| {
        let sign = if offset < 0 { '-' } else { '+' };
        format!("{sign}{:02}{}", offset.abs() / 3600, minutes_part(offset))
    });
    ZoneAt { offset, name }
}

/// `:MM` of an offset with minutes, else nothing.
fn minutes_part(offset: i32) -> String {
    match offset.abs() / 60 % 60 {
        0 => String::new(),
        minutes => format!(":{minutes:02}"),
    }
}

fn format(pieces: &[Piece], at: &NaiveDateTime, zone: Option<&ZoneAt>) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Pattern { pattern, fill_mode, ordinal } => {
                let (text, number) = field(*pattern, at, zone, *fill_mode);
                out.push_str(&text);
                if let (Some(case), Some(number)) = (ordinal, number) {
                    let suffix = ordinal_suffix(number);
                    out.push_str(&if *case == Case::Upper { suffix.to_uppercase() } else { suffix.to_string() });
                }
            }
        }
    }
    out
}

/// A pattern's text, and its number for an ordinal suffix.
fn field(pattern: Pattern, at: &NaiveDateTime, zone: Option<&ZoneAt>, fill_mode: bool) -> (String, Option<i64>) {
    let padded = |value: i64, width: usize| {
        let text = if fill_mode { value.to_string() } else { format!("{value:0width$}") };
        (text, Some(value))
    };
    // Fractions of a second keep their digits under FM, as in PostgreSQL.
    let fraction = |value: i64, width: usize| (format!("{value:0width$}"), Some(value));
    let named = |name: &str, case: Case, width: usize| {
        let text = match case {
            Case::Upper => name.to_uppercase(),
            Case::Lower => name.to_lowercase(),
            Case::Capitalized => name.to_string(),
        };
        let text = if fill_mode { text } else { format!("{text:<width$}") };
        (text, None)
    };
    let date = at.date();
    let year = date.year() as i64;
    let shown_year = if year <= 0 { 1 - year } else { year };
    let hour12 = match at.hour() % 12 {
        0 => 12,
        h => h as i64,
    };
    match pattern {
        Pattern::Hour12 => padded(hour12, 2),
        Pattern::Hour24 => padded(at.hour() as i64, 2),
        Pattern::Minute => padded(at.minute() as i64, 2),
        Pattern::Second => padded(at.second() as i64, 2),
        Pattern::Millisecond => fraction((at.nanosecond() / 1_000_000) as i64, 3),
        Pattern::Microsecond => fraction((at.nanosecond() / 1_000) as i64, 6),
        Pattern::Fraction(digits) => {
            let value = (at.nanosecond() / 10u32.pow(9 - digits as u32)) as i64;
            fraction(value, digits as usize)
        }
        Pattern::SecondsOfDay => {
            let seconds = at.num_seconds_from_midnight() as i64;
            (seconds.to_string(), Some(seconds))
        }
        Pattern::Meridiem { dots, case } => {
            let text = match (at.hour() < 12, dots) {
                (true, false) => "AM",
                (false, false) => "PM",
                (true, true) => "A.M.",
                (false, true) => "P.M.",
            };
            (if case == Case::Lower { text.to_lowercase() } else { text.to_string() }, None)
        }
        Pattern::Era { dots, case } => {
            let text = match (year > 0, dots) {
                (true, false) => "AD",
                (false, false) => "BC",
                (true, true) => "A.D.",
                (false, true) => "B.C.",
            };
            (if case == Case::Lower { text.to_lowercase() } else { text.to_string() }, None)
        }
        Pattern::YearComma => {
            let text = format!("{},{:03}", shown_year / 1000, shown_year % 1000);
            (text, Some(shown_year))
        }
        Pattern::Year(4) => padded(shown_year, 4),
        Pattern::Year(digits) => padded(shown_year % 10i64.pow(digits as u32), digits as usize),
        Pattern::IsoYear(digits) => {
            let iso = date.iso_week().year() as i64;
            if digits == 4 { padded(iso, 4) } else { padded(iso % 10i64.pow(digits as u32), digits as usize) }
        }
        Pattern::MonthName(case) => named(MONTHS[date.month0() as usize], case, 9),
        Pattern::MonthAbbreviation(case) => named(&MONTHS[date.month0() as usize][..3], case, 3),
        Pattern::Month => padded(date.month() as i64, 2),
        Pattern::RomanMonth(case) => named(ROMAN_MONTHS[date.month0() as usize], case, 4),
        Pattern::DayName(case) => named(day_name(date.weekday()), case, 9),
        Pattern::DayAbbreviation(case) => named(&day_name(date.weekday())[..3], case, 3),
        Pattern::DayOfYear => padded(date.ordinal() as i64, 3),
        Pattern::DayOfMonth => padded(date.day() as i64, 2),
        Pattern::DayOfWeek => padded(date.weekday().num_days_from_sunday() as i64 + 1, 1),
        Pattern::IsoDayOfWeek => padded(date.weekday().number_from_monday() as i64, 1),
        Pattern::IsoDayOfYear => {
            let week = date.iso_week().week() as i64;
            padded((week - 1) * 7 + date.weekday().number_from_monday() as i64, 3)
        }
        Pattern::WeekOfMonth => padded((date.day() as i64 - 1) / 7 + 1, 1),
        Pattern::WeekOfYear => padded((date.ordinal() as i64 - 1) / 7 + 1, 2),
        Pattern::IsoWeek => padded(date.iso_week().week() as i64, 2),
        Pattern::Century => {
            let century = if year > 0 { (year + 99) / 100 } else { -((99 - year) / 100) };
            padded(century, 2)
        }
        Pattern::Quarter => padded((date.month0() as i64) / 3 + 1, 1),
        Pattern::JulianDay => padded(date.num_days_from_ce() as i64 + JULIAN_DAY_OF_CE_DAY_0, 1),
        // A TIMESTAMP without zone has no name for one; its offset is 0
        // (the session's would be PostgreSQL's: a known difference).
        Pattern::ZoneName(case) => {
            let name = zone.map_or("", |z| z.name.as_str());
            (if case == Case::Lower { name.to_lowercase() } else { name.to_string() }, None)
        }
        Pattern::ZoneHours | Pattern::ZoneOffset => {
            let offset = zone.map_or(0, |z| z.offset);
            let sign = if offset < 0 { '-' } else { '+' };
            let hours = offset.abs() / 3600;
            let mut text = if fill_mode { format!("{sign}{hours}") } else { format!("{sign}{hours:02}") };
            if pattern == Pattern::ZoneOffset {
                text.push_str(&minutes_part(offset));
            }
            (text, None)
        }
        Pattern::ZoneMinutes => {
            let minutes = zone.map_or(0, |z| z.offset.abs() / 60 % 60);
            (if fill_mode { minutes.to_string() } else { format!("{minutes:02}") }, None)
        }
    }
}

fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn ordinal_suffix(number: i64) -> &'static str {
    match (number % 100, number % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    }
}
