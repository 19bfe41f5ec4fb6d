//! `extract(field FROM x)` and `date_part('field', x)` as PostgreSQL
//! computes them. `extract` is NUMERIC with the places PostgreSQL gives the
//! field (`56.789000` seconds, `1795782896.789000` for an epoch, `2026` for
//! a year); `date_part` is DOUBLE PRECISION. DataFusion's `date_part` gave
//! whole seconds (`extract(second …)` of 56.789 was 56), typed most fields
//! INTEGER and knew no julian, century, decade, millennium or timezone.
//!
//! Every field's value is computed exactly as an integer at the field's
//! scale: seconds, milliseconds and microseconds are the same count of
//! microseconds read with 6, 3 and 0 places.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, DurationMicrosecondType, Field, FieldRef, IntervalMonthDayNanoType, IntervalUnit,
    Time64MicrosecondType, TimeUnit,
};
use datafusion::common::{
    DataFusionError, Result as DfResult, ScalarValue, exec_datafusion_err, exec_err, internal_err, plan_err,
};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `date_part(text, x)`, DOUBLE PRECISION (replaces DataFusion's).
pub fn date_part() -> ScalarUDF {
    let signature = Signature::user_defined(Volatility::Immutable);
    ScalarUDF::new_from_impl(DatePart { numeric: false, signature, aliases: vec!["datepart".into()] })
}

/// What `extract(field FROM x)` calls: NUMERIC.
pub fn extract() -> ScalarUDF {
    let signature = Signature::user_defined(Volatility::Immutable);
    ScalarUDF::new_from_impl(DatePart { numeric: true, signature, aliases: Vec::new() })
}

/// Plans `extract(field FROM x)` as [`extract`] (DataFusion's planner made
/// it `date_part`).
#[derive(Debug)]
pub struct Extract;

impl ExprPlanner for Extract {
    fn plan_extract(&self, args: Vec<Expr>) -> DfResult<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
            Arc::new(extract()),
            args,
        ))))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DatePart {
    /// `extract` (NUMERIC), or `date_part` (DOUBLE PRECISION).
    numeric: bool,
    signature: Signature,
    aliases: Vec<String>,
}

/// A field PostgreSQL takes of a time, a date or an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Microseconds,
    Milliseconds,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    Decade,
    Century,
    Millennium,
    Dow,
    Isodow,
    Doy,
    Isoyear,
    Epoch,
    Julian,
    Timezone,
    TimezoneHour,
    TimezoneMinute,
}

impl Unit {
    /// A field as PostgreSQL reads its name: any case, its abbreviations
    /// and plurals, the first 10 characters (`microseconds` is `microsecon`).
    fn parse(text: &str) -> Option<Unit> {
        let lower = text.trim().trim_matches(|c| c == '\'' || c == '"').to_lowercase();
        let key: String = lower.chars().take(10).collect();
        Some(match key.as_str() {
            "microsecon" | "us" | "usec" | "usecond" | "useconds" | "usecs" => Unit::Microseconds,
            "millisecon" | "ms" | "msec" | "msecond" | "mseconds" | "msecs" => Unit::Milliseconds,
            "s" | "sec" | "second" | "seconds" | "secs" => Unit::Second,
            "m" | "min" | "mins" | "minute" | "minutes" => Unit::Minute,
            "h" | "hour" | "hours" | "hr" | "hrs" => Unit::Hour,
            "d" | "day" | "days" => Unit::Day,
            "w" | "week" | "weeks" => Unit::Week,
            "mon" | "mons" | "month" | "months" => Unit::Month,
            "qtr" | "quarter" => Unit::Quarter,
            "y" | "year" | "years" | "yr" | "yrs" => Unit::Year,
            "dec" | "decade" | "decades" | "decs" => Unit::Decade,
            "c" | "cent" | "century" | "centuries" => Unit::Century,
            "mil" | "mils" | "millennium" | "millennia" => Unit::Millennium,
            "dow" => Unit::Dow,
            "isodow" => Unit::Isodow,
            "doy" => Unit::Doy,
            "isoyear" => Unit::Isoyear,
            "epoch" => Unit::Epoch,
            "j" | "jd" | "julian" => Unit::Julian,
            "timezone" => Unit::Timezone,
            "timezone_h" => Unit::TimezoneHour,
            "timezone_m" => Unit::TimezoneMinute,
            _ => return None,
        })
    }
}

/// What a field is taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Date,
    /// TIMESTAMP (false) or TIMESTAMPTZ (true).
    Timestamp(bool),
    Time,
    Interval,
}

impl Source {
    fn of(data_type: &DataType) -> Option<Source> {
        Some(match data_type {
            DataType::Date32 => Source::Date,
            DataType::Timestamp(_, zone) => Source::Timestamp(zone.is_some()),
            DataType::Time64(_) => Source::Time,
            DataType::Interval(_) | DataType::Duration(_) => Source::Interval,
            _ => return None,
        })
    }

    fn sql_name(self) -> &'static str {
        match self {
            Source::Date => "date",
            Source::Timestamp(false) => "timestamp without time zone",
            Source::Timestamp(true) => "timestamp with time zone",
            Source::Time => "time without time zone",
            Source::Interval => "interval",
        }
    }

    fn supports(self, unit: Unit) -> bool {
        use Unit::*;
        let time_of_day = matches!(unit, Microseconds | Milliseconds | Second | Minute | Hour);
        match self {
            Source::Timestamp(zoned) => zoned || !matches!(unit, Timezone | TimezoneHour | TimezoneMinute),
            Source::Date => !time_of_day && !matches!(unit, Timezone | TimezoneHour | TimezoneMinute),
            Source::Time => time_of_day || unit == Epoch,
            Source::Interval => {
                time_of_day || matches!(unit, Day | Month | Quarter | Year | Decade | Century | Millennium | Epoch)
            }
        }
    }

    /// The places of `extract`'s NUMERIC for `unit`.
    fn scale(self, unit: Unit) -> i8 {
        match (unit, self) {
            (Unit::Second | Unit::Epoch, Source::Date) => 0,
            (Unit::Second | Unit::Epoch, _) => 6,
            (Unit::Milliseconds, _) => 3,
            (Unit::Julian, Source::Timestamp(_)) => JULIAN_SCALE,
            _ => 0,
        }
    }
}

/// Whole digits of `extract`'s NUMERIC: room for any field (an interval's
/// epoch reaches 16), and few enough that a quotient keeps its places
/// (`extract(year …) / 3` is 675.3333333333333333, as in PostgreSQL).
const WHOLE_DIGITS: u8 = 20;

fn precision(scale: i8) -> u8 {
    (WHOLE_DIGITS + scale as u8).min(38)
}

/// The places of a julian day with a time of day (PostgreSQL shows 20).
const JULIAN_SCALE: i8 = 20;
const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
/// Julian day number of 0001-01-01 minus chrono's day number of it (1).
const JULIAN_OF_CE: i64 = 1_721_425;
/// Julian day number of 1970-01-01 (day 0 of a DATE).
const JULIAN_OF_EPOCH: i128 = 2_440_588;

/// `unit` of `source`, checked as PostgreSQL checks it.
fn checked_unit(text: &str, source: Source) -> DfResult<Unit> {
    let name = text.trim().trim_matches(|c| c == '\'' || c == '"').to_lowercase();
    let Some(unit) = Unit::parse(text) else {
        return plan_err!("unit \"{name}\" not recognized for type {}", source.sql_name());
    };
    if !source.supports(unit) {
        return Err(DataFusionError::NotImplemented(format!(
            "unit \"{name}\" not supported for type {}",
            source.sql_name()
        )));
    }
    Ok(unit)
}

impl ScalarUDFImpl for DatePart {
    fn name(&self) -> &str {
        if self.numeric { "extract" } else { "date_part" }
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Times in microseconds (PostgreSQL's precision), a TIMESTAMPTZ
    /// keeping its zone (the session's: see `text_casts`); text as a TIMESTAMP.
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let [unit, value] = arg_types else {
            return plan_err!("{} takes a field and a time", self.name());
        };
        let unit = match unit {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => DataType::Utf8,
            other => return plan_err!("function {}({other}, …) does not exist", self.name()),
        };
        let value = match value {
            DataType::Timestamp(_, zone) => DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            // date_part reads a date as the TIMESTAMP of its midnight, as PostgreSQL's does.
            DataType::Date32 | DataType::Date64 if self.numeric => DataType::Date32,
            DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Time32(_) | DataType::Time64(_) => DataType::Time64(TimeUnit::Microsecond),
            DataType::Interval(_) => DataType::Interval(IntervalUnit::MonthDayNano),
            DataType::Duration(_) => DataType::Duration(TimeUnit::Microsecond),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            other => return plan_err!("function {}(text, {other}) does not exist", self.name()),
        };
        Ok(vec![unit, value])
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        internal_err!("{} is typed by return_field_from_args", self.name())
    }

    /// `extract`'s places depend on the field, which is a constant; an
    /// unknown field, or one the type has not, is refused as the
    /// statement is planned.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let source = Source::of(args.arg_fields[1].data_type());
        let unit = match args.scalar_arguments.first() {
            Some(Some(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)))) => Some(text),
            _ => None,
        };
        let data_type = match (self.numeric, source, unit) {
            (false, Some(source), Some(unit)) => {
                checked_unit(unit, source)?;
                DataType::Float64
            }
            (false, _, _) => DataType::Float64,
            (true, Some(source), Some(unit)) => {
                let scale = source.scale(checked_unit(unit, source)?);
                DataType::Decimal128(precision(scale), scale)
            }
            (true, _, _) => return plan_err!("extract takes a constant field"),
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let values = args.args[1].to_array(rows)?;
        let ColumnarValue::Scalar(ScalarValue::Utf8(unit)) = &args.args[0] else {
            return self.per_row(&args.args[0].to_array(rows)?, &values);
        };
        let source = match Source::of(values.data_type()) {
            Some(source) => source,
            None => return internal_err!("{} of {}", self.name(), values.data_type()),
        };
        let Some(unit) = unit else {
            let nulls: ArrayRef = match args.return_field.data_type() {
                DataType::Decimal128(p, s) => {
                    Arc::new(Decimal128Array::new_null(rows).with_precision_and_scale(*p, *s)?)
                }
                _ => Arc::new(Float64Array::new_null(rows)),
            };
            return Ok(ColumnarValue::Array(nulls));
        };
        let unit = checked_unit(unit, source)?;
        let scale = source.scale(unit);
        let scaled = scaled_values(&values, unit)?;
        let result: ArrayRef = if self.numeric {
            Arc::new(Decimal128Array::from(scaled).with_precision_and_scale(precision(scale), scale)?)
        } else {
            Arc::new(scaled.into_iter().map(|v| v.map(|v| as_float(v, scale))).collect::<Float64Array>())
        };
        Ok(ColumnarValue::Array(result))
    }
}

impl DatePart {
    /// `date_part(field, x)` with a field read from a column: each row's own.
    fn per_row(&self, units: &ArrayRef, values: &ArrayRef) -> DfResult<ColumnarValue> {
        if self.numeric {
            return exec_err!("extract takes a constant field");
        }
        let units = datafusion::arrow::compute::cast(units, &DataType::Utf8)?;
        let units = units.as_string::<i32>();
        let source = Source::of(values.data_type())
            .ok_or_else(|| exec_datafusion_err!("date_part of {}", values.data_type()))?;
        let mut out = Vec::with_capacity(values.len());
        for row in 0..values.len() {
            if units.is_null(row) || values.is_null(row) {
                out.push(None);
                continue;
            }
            let unit = checked_unit(units.value(row), source)?;
            let scaled = scaled_values(&values.slice(row, 1), unit)?[0];
            out.push(scaled.map(|v| as_float(v, source.scale(unit))));
        }
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(out))))
    }
}

/// `unit` of every value, as integers at the unit's scale.
fn scaled_values(values: &ArrayRef, unit: Unit) -> DfResult<Vec<Option<i128>>> {
    match values.data_type() {
        DataType::Timestamp(_, _) => {
            let times: &TimestampMicrosecondArray = values.as_primitive();
            let zone = super::pg_age::zone_of(times);
            // A zone of one offset (UTC, how TIMESTAMPTZ is stored) is read
            // once, not per value.
            let fixed = match (times.timezone(), &zone) {
                (None, _) => Some(0),
                (Some(name), Some(tz)) if name.starts_with(['+', '-']) || name.eq_ignore_ascii_case("utc") => {
                    Some(crate::session::time_zone::offset_in(tz, 0))
                }
                _ => None,
            };
            let offset = |instant| match (fixed, &zone) {
                (Some(offset), _) => offset,
                (None, Some(tz)) => crate::session::time_zone::offset_in(tz, instant),
                (None, None) => 0,
            };
            times.iter().map(|t| t.map(|t| of_instant(unit, t, offset(t), zone.is_some())).transpose()).collect()
        }
        // A date is the TIMESTAMP of its midnight, but for its epoch and
        // julian day, which are whole numbers.
        DataType::Date32 => {
            let of_date = |days: i32| match unit {
                Unit::Epoch => Ok(days as i128 * 86_400),
                Unit::Julian => Ok(days as i128 + JULIAN_OF_EPOCH),
                _ => of_instant(unit, days as i64 * MICROS_PER_DAY, 0, false),
            };
            values.as_primitive::<Date32Type>().iter().map(|d| d.map(of_date).transpose()).collect()
        }
        DataType::Time64(_) => {
            Ok(values.as_primitive::<Time64MicrosecondType>().iter().map(|t| t.map(|t| of_time(unit, t))).collect())
        }
        DataType::Interval(_) => Ok(values
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| v.map(|v| of_interval(unit, v.months, v.days as i64, v.nanoseconds.div_euclid(1000))))
            .collect()),
        // A difference of times, as PostgreSQL's subtraction gives it:
        // whole days, and the rest as time (`2 days 05:00:00`).
        DataType::Duration(_) => Ok(values
            .as_primitive::<DurationMicrosecondType>()
            .iter()
            .map(|d| d.map(|d| of_interval(unit, 0, d / MICROS_PER_DAY, d % MICROS_PER_DAY)))
            .collect()),
        other => internal_err!("date_part of {other}"),
    }
}

/// `date_part`'s DOUBLE PRECISION of a value at `scale`.
fn as_float(scaled: i128, scale: i8) -> f64 {
    scaled as f64 / 10f64.powi(scale as i32)
}

/// A field of the time `instant` (µs) is at `offset` seconds east of UTC;
/// `zoned` for a TIMESTAMPTZ (whose zone fields are that offset's). Fields
/// of the time of day are computed from the count; the others need the date.
fn of_instant(unit: Unit, instant: i64, offset: i32, zoned: bool) -> DfResult<i128> {
    let local = instant + offset as i64 * MICROS_PER_SECOND;
    Ok(match unit {
        Unit::Microseconds | Unit::Milliseconds | Unit::Second => local.rem_euclid(MICROS_PER_MINUTE) as i128,
        Unit::Minute => (local.rem_euclid(MICROS_PER_HOUR) / MICROS_PER_MINUTE) as i128,
        Unit::Hour => (local.rem_euclid(MICROS_PER_DAY) / MICROS_PER_HOUR) as i128,
        Unit::Epoch => instant as i128,
        _ => {
            let Some(time) = chrono::DateTime::from_timestamp_micros(local) else {
                return exec_err!("timestamp out of range");
            };
            of_timestamp(unit, &time.naive_utc(), instant, zoned.then_some(offset))
        }
    })
}

/// The Julian day number of `t`'s date.
fn julian_day(t: &NaiveDateTime) -> i64 {
    t.date().num_days_from_ce() as i64 + JULIAN_OF_CE
}

/// A calendar field of a local time, an epoch of `instant` (µs), a zone
/// field of `offset` (seconds east of UTC).
fn of_timestamp(unit: Unit, local: &NaiveDateTime, instant: i64, offset: Option<i32>) -> i128 {
    // There is no year 0: the year before 1 AD is 1 BC (-1).
    let year = |y: i32| if y > 0 { y } else { y - 1 };
    let astronomical = local.year();
    let offset = offset.unwrap_or(0);
    let value: i64 = match unit {
        Unit::Microseconds | Unit::Milliseconds | Unit::Second => {
            local.second() as i64 * MICROS_PER_SECOND + (local.nanosecond() / 1000) as i64
        }
        Unit::Minute => local.minute() as i64,
        Unit::Hour => local.hour() as i64,
        Unit::Day => local.day() as i64,
        Unit::Week => local.iso_week().week() as i64,
        Unit::Month => local.month() as i64,
        Unit::Quarter => (local.month0() / 3 + 1) as i64,
        Unit::Year => year(astronomical) as i64,
        Unit::Decade if astronomical >= 0 => (astronomical / 10) as i64,
        Unit::Decade => -((8 - (astronomical - 1)) / 10) as i64,
        Unit::Century if astronomical > 0 => ((astronomical + 99) / 100) as i64,
        Unit::Century => -((99 - (astronomical - 1)) / 100) as i64,
        Unit::Millennium if astronomical > 0 => ((astronomical + 999) / 1000) as i64,
        Unit::Millennium => -((999 - (astronomical - 1)) / 1000) as i64,
        Unit::Dow => local.weekday().num_days_from_sunday() as i64,
        Unit::Isodow => local.weekday().number_from_monday() as i64,
        Unit::Doy => local.ordinal() as i64,
        Unit::Isoyear => year(local.iso_week().year()) as i64,
        Unit::Epoch => instant,
        Unit::Julian => {
            let day_micros = local.num_seconds_from_midnight() as i128 * MICROS_PER_SECOND as i128
                + (local.nanosecond() / 1000) as i128;
            let places = 10i128.pow(JULIAN_SCALE as u32);
            let fraction = (day_micros * places + MICROS_PER_DAY as i128 / 2) / MICROS_PER_DAY as i128;
            return julian_day(local) as i128 * places + fraction;
        }
        Unit::Timezone => offset as i64,
        Unit::TimezoneHour => (offset / 3600) as i64,
        Unit::TimezoneMinute => ((offset / 60) % 60) as i64,
    };
    value as i128
}

/// A field of a time of day (µs since midnight).
fn of_time(unit: Unit, micros: i64) -> i128 {
    (match unit {
        Unit::Hour => micros / MICROS_PER_HOUR,
        Unit::Minute => micros / MICROS_PER_MINUTE % 60,
        Unit::Epoch => micros,
        _ => micros % MICROS_PER_MINUTE,
    }) as i128
}

/// A field of an interval, truncated toward zero as PostgreSQL's are
/// (`-26 hours -30 minutes` is hour -26, minute -30).
fn of_interval(unit: Unit, months: i32, days: i64, micros: i64) -> i128 {
    let (months, days, micros) = (months as i128, days as i128, micros as i128);
    let year = months / 12;
    match unit {
        Unit::Hour => micros / MICROS_PER_HOUR as i128,
        Unit::Minute => micros % MICROS_PER_HOUR as i128 / MICROS_PER_MINUTE as i128,
        Unit::Day => days,
        Unit::Month => months % 12,
        Unit::Quarter => months % 12 / 3 + 1,
        Unit::Year => year,
        Unit::Decade => year / 10,
        Unit::Century => year / 100,
        Unit::Millennium => year / 1000,
        // A year is 365.25 days, a month 30.
        Unit::Epoch => {
            (year * 31_557_600 + months % 12 * 2_592_000 + days * 86_400) * MICROS_PER_SECOND as i128 + micros
        }
        _ => micros % MICROS_PER_MINUTE as i128,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_field_names_as_postgres_does() {
        assert_eq!(Unit::parse("MICROSECONDS"), Some(Unit::Microseconds));
        assert_eq!(Unit::parse("timezone_hour"), Some(Unit::TimezoneHour));
        assert_eq!(Unit::parse("'Secs'"), Some(Unit::Second));
        assert_eq!(Unit::parse("fortnight"), None);
    }

    #[test]
    fn intervals_truncate_toward_zero() {
        let micros = -(26 * MICROS_PER_HOUR + 30 * MICROS_PER_MINUTE);
        assert_eq!(of_interval(Unit::Hour, 0, 0, micros), -26);
        assert_eq!(of_interval(Unit::Minute, 0, 0, micros), -30);
        assert_eq!(of_interval(Unit::Quarter, -2, 0, 0), 1);
        assert_eq!(of_interval(Unit::Epoch, -13, 0, 0), -34_149_600_000_000);
    }

    #[test]
    fn julian_days_match_postgres() {
        let noon = NaiveDateTime::parse_from_str("2026-11-27 12:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(julian_day(&noon), 2_461_372);
        assert_eq!(of_timestamp(Unit::Julian, &noon, 0, None), 246_137_250_000_000_000_000_000_000);
    }
}
