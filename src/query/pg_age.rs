//! `age(a, b)` and `age(a)`: the difference of two times in years, months
//! and days, as PostgreSQL's `timestamp_age` gives it (`age('2026-11-27',
//! '2026-01-15')` is `10 mons 12 days`, not a count of days): each field is
//! subtracted, then a negative one borrows from the next larger, a day
//! borrowing the length of the month it falls in. `age(a)` is from
//! midnight today (UTC, the session's zone): the rewrite makes it
//! `age(CAST(current_date AS TIMESTAMP), a)`, so this function of two
//! times is immutable (continuous views may use it) and `current_date` is
//! what views refuse.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result as DfResult, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

pub fn age() -> ScalarUDF {
    ScalarUDF::new_from_impl(Age { signature: Signature::user_defined(Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Age {
    signature: Signature,
}

impl ScalarUDFImpl for Age {
    fn name(&self) -> &str {
        "age"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Both as timestamps in microseconds: a TIMESTAMPTZ's instant is its
    /// UTC time, which is its time in the session's zone.
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("age takes one or two times, not {}", arg_types.len());
        }
        arg_types
            .iter()
            .map(|t| match t {
                DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Null
                | DataType::Utf8
                | DataType::Utf8View => Ok(DataType::Timestamp(TimeUnit::Microsecond, None)),
                other => plan_err!("function age({other}) does not exist"),
            })
            .collect()
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let later = arrays[0].as_primitive::<TimestampMicrosecondType>();
        let earlier = arrays[1].as_primitive::<TimestampMicrosecondType>();
        let mut out = Vec::with_capacity(rows);
        let (later_zone, earlier_zone) = (zone_of(later), zone_of(earlier));
        for row in 0..rows {
            out.push(
                match (
                    local_time_at(later, later_zone.as_ref(), row)?,
                    local_time_at(earlier, earlier_zone.as_ref(), row)?,
                ) {
                    (Some(first), Some(second)) => Some(difference(&first, &second)),
                    _ => None,
                },
            );
        }
        Ok(ColumnarValue::Array(Arc::new(IntervalMonthDayNanoArray::from(out))))
    }
}

/// The zone of a TIMESTAMPTZ column (the session's: see `text_casts`),
/// read once for its values; None for a TIMESTAMP.
pub(super) fn zone_of(
    times: &datafusion::arrow::array::TimestampMicrosecondArray,
) -> Option<datafusion::arrow::array::timezone::Tz> {
    times.timezone().and_then(crate::session::time_zone::parse)
}

/// A TIMESTAMP value as its time, or a TIMESTAMPTZ as its time of day in
/// `zone`, its column's ([`zone_of`]).
pub(super) fn local_time_at(
    times: &datafusion::arrow::array::TimestampMicrosecondArray,
    zone: Option<&datafusion::arrow::array::timezone::Tz>,
    row: usize,
) -> DfResult<Option<NaiveDateTime>> {
    if times.is_null(row) {
        return Ok(None);
    }
    let micros = times.value(row);
    let offset = zone.map_or(0, |tz| crate::session::time_zone::offset_in(tz, micros));
    match chrono::DateTime::from_timestamp_micros(micros + offset as i64 * 1_000_000) {
        Some(t) => Ok(Some(t.naive_utc())),
        None => exec_err!("timestamp out of range"),
    }
}

/// Makes a negative `lower` field whole by borrowing from `upper`, `unit`
/// at a time.
fn borrow(lower: &mut i64, upper: &mut i64, unit: i64) {
    while *lower < 0 {
        *lower += unit;
        *upper -= 1;
    }
}

/// PostgreSQL's `timestamp_age(first, second)`.
fn difference(first: &NaiveDateTime, second: &NaiveDateTime) -> IntervalMonthDayNano {
    let negative = first < second;
    let sign = if negative { -1 } else { 1 };
    let micros = |t: &NaiveDateTime| (t.nanosecond() / 1000) as i64;
    let mut fraction = sign * (micros(first) - micros(second));
    let mut second_ = sign * (first.second() as i64 - second.second() as i64);
    let mut minute = sign * (first.minute() as i64 - second.minute() as i64);
    let mut hour = sign * (first.hour() as i64 - second.hour() as i64);
    let mut day = sign * (first.day() as i64 - second.day() as i64);
    let mut month = sign * (first.month() as i64 - second.month() as i64);
    let mut year = sign * (first.year() as i64 - second.year() as i64);
    borrow(&mut fraction, &mut second_, 1_000_000);
    borrow(&mut second_, &mut minute, 60);
    borrow(&mut minute, &mut hour, 60);
    borrow(&mut hour, &mut day, 24);
    // A day borrows the length of the earlier time's month (the first
    // argument's when it is the earlier).
    let borrowed_from = if negative { first } else { second };
    borrow(&mut day, &mut month, borrowed_from.num_days_in_month() as i64);
    borrow(&mut month, &mut year, 12);
    let months = sign * (year * 12 + month);
    let days = sign * day;
    let time = sign * (((hour * 60 + minute) * 60 + second_) * 1_000_000 + fraction);
    IntervalMonthDayNano::new(months as i32, days as i32, time * 1000)
}
