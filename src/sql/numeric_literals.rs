//! A literal with a decimal point or an exponent is NUMERIC, as in
//! PostgreSQL (`0.1 + 0.2 = 0.3` is true, `amount * 1.1` rounds as decimal
//! arithmetic does). DataFusion reads `1.5` as a decimal when
//! `parse_float_as_decimal` is set, but keeps an exponent as a negative
//! scale (`1.5e3` is 15 × 10²), which Arrow's kernels and casts do not all
//! take; this rewrite writes such literals out in full first.

use datafusion::sql::sqlparser::ast::{CastKind, DataType, ExactNumberInfo, Expr, Value};

/// The most digits a decimal literal keeps (Arrow's Decimal128); beyond
/// that a literal is DOUBLE PRECISION, as `1e300` must still compare with
/// a float column.
const DECIMAL_DIGITS_MAX: usize = 38;

/// Rewrites `expr` if it is a number literal with an exponent.
pub fn write_out_exponent(expr: &mut Expr) {
    let Expr::Value(value) = expr else { return };
    let Value::Number(text, _) = &value.value else { return };
    if !text.contains(['e', 'E']) {
        return;
    }
    *expr = match written_out(text) {
        Some(Written::Fraction(plain)) => Expr::value(Value::Number(plain, false)),
        Some(Written::Whole(digits)) => cast(
            Expr::value(Value::Number(digits.clone(), false)),
            DataType::Numeric(ExactNumberInfo::PrecisionAndScale(digits.len() as u64, 0)),
        ),
        None => cast(Expr::value(Value::SingleQuotedString(text.clone())), DataType::DoublePrecision),
    };
}

fn cast(expr: Expr, data_type: DataType) -> Expr {
    Expr::Cast { kind: CastKind::Cast, expr: Box::new(expr), data_type, array: false, format: None }
}

#[derive(Debug, PartialEq)]
enum Written {
    /// Digits with a decimal point: DataFusion reads it as a decimal.
    Fraction(String),
    /// Digits of a whole number, to be cast to NUMERIC(n, 0) (on its own it
    /// would read as an integer).
    Whole(String),
}

/// `1.5e3` as `1500`, `1.5e-3` as `0.0015`; `None` when that needs more
/// than [`DECIMAL_DIGITS_MAX`] digits (or the text is not a number).
fn written_out(text: &str) -> Option<Written> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let exponent: i64 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())) || whole.len() + fraction.len() == 0 {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let scale = (fraction.len() as i64).checked_sub(exponent)?;
    if scale <= 0 {
        let zeros = usize::try_from(-scale).ok()?;
        if digits.is_empty() {
            return Some(Written::Whole("0".into()));
        }
        if digits.len() + zeros > DECIMAL_DIGITS_MAX {
            return None;
        }
        return Some(Written::Whole(format!("{digits}{}", "0".repeat(zeros))));
    }
    let scale = usize::try_from(scale).ok()?;
    if scale.max(digits.len()) > DECIMAL_DIGITS_MAX {
        return None;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (integer, fraction) = padded.split_at(padded.len() - scale);
    Some(Written::Fraction(format!("{integer}.{fraction}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: &str) -> Option<Written> {
        Some(Written::Whole(s.into()))
    }

    fn fraction(s: &str) -> Option<Written> {
        Some(Written::Fraction(s.into()))
    }

    #[test]
    fn exponents_are_written_out() {
        assert_eq!(written_out("1.5e3"), whole("1500"));
        assert_eq!(written_out("1E3"), whole("1000"));
        assert_eq!(written_out("15e0"), whole("15"));
        assert_eq!(written_out("0e5"), whole("0"));
        assert_eq!(written_out("1.5e-3"), fraction("0.0015"));
        assert_eq!(written_out("12.5e-1"), fraction("1.25"));
        assert_eq!(written_out(".5e1"), whole("5"));
        assert_eq!(written_out("1.25e1"), fraction("12.5"));
        assert_eq!(written_out("1e37"), whole(&format!("1{}", "0".repeat(37))));
        assert_eq!(written_out("1e38"), None);
        assert_eq!(written_out("1e-37"), fraction(&format!("0.{}1", "0".repeat(36))));
        assert_eq!(written_out("1e-39"), None);
        assert_eq!(written_out("1e300"), None);
        assert_eq!(written_out("1e99999999999999999999"), None);
        assert_eq!(written_out("1.5e-9223372036854775807"), None);
        assert_eq!(written_out("1.5e-9223372036854775808"), None);
    }
}
