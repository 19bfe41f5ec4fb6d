//! Offset and commit-time bounds read off a scan's filters, so segments and
//! tail batches that cannot match are skipped before any data is read.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

use crate::catalog::{OFFSET_COLUMN, TS_COLUMN};

/// Inclusive bounds; `i64::MIN..=i64::MAX` when unconstrained. Times are µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub offset_min: i64,
    pub offset_max: i64,
    pub ts_min: i64,
    pub ts_max: i64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { offset_min: i64::MIN, offset_max: i64::MAX, ts_min: i64::MIN, ts_max: i64::MAX }
    }
}

impl Bounds {
    /// Bounds implied by the conjunction of `filters`.
    pub fn from_filters(filters: &[Expr]) -> Bounds {
        let mut bounds = Bounds::default();
        for filter in filters {
            bounds.narrow(filter);
        }
        bounds
    }

    /// Whether a filter is one `narrow` understands (it can prune with it).
    pub fn understands(filter: &Expr) -> bool {
        let mut probe = Bounds::default();
        probe.narrow(filter)
    }

    pub fn overlaps(&self, offsets: (i64, i64), ts: (i64, i64)) -> bool {
        offsets.0 <= self.offset_max && offsets.1 >= self.offset_min && ts.0 <= self.ts_max && ts.1 >= self.ts_min
    }

    fn narrow(&mut self, filter: &Expr) -> bool {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
                let l = self.narrow(left);
                let r = self.narrow(right);
                l || r
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match (column_of(left), literal_of(right)) {
                (Some(column), Some(value)) => self.apply(column, *op, value),
                _ => match (literal_of(left), column_of(right), op.swap()) {
                    (Some(value), Some(column), Some(op)) => self.apply(column, op, value),
                    _ => false,
                },
            },
            Expr::Between(Between { expr, negated: false, low, high }) => {
                match (column_of(expr), literal_of(low), literal_of(high)) {
                    (Some(column), Some(low), Some(high)) => {
                        self.apply(column, Operator::GtEq, low) && self.apply(column, Operator::LtEq, high)
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    fn apply(&mut self, column: &str, op: Operator, value: i64) -> bool {
        let (min, max) = match column {
            OFFSET_COLUMN => (&mut self.offset_min, &mut self.offset_max),
            TS_COLUMN => (&mut self.ts_min, &mut self.ts_max),
            _ => return false,
        };
        match op {
            Operator::Eq => {
                *min = (*min).max(value);
                *max = (*max).min(value);
            }
            Operator::Gt => *min = (*min).max(value.saturating_add(1)),
            Operator::GtEq => *min = (*min).max(value),
            Operator::Lt => *max = (*max).min(value.saturating_sub(1)),
            Operator::LtEq => *max = (*max).min(value),
            _ => return false,
        }
        true
    }
}

fn column_of(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(column) if column.name == OFFSET_COLUMN || column.name == TS_COLUMN => Some(&column.name),
        _ => None,
    }
}

/// An integer or a timestamp literal, timestamps in µs.
fn literal_of(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::Int32(Some(v)) => Some(*v as i64),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1000)),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn ranges_from_comparisons() {
        let filters =
            vec![col("_offset").gt(lit(10i64)).and(col("_offset").lt_eq(lit(20i64))), lit(5i64).lt(col("_offset"))];
        let bounds = Bounds::from_filters(&filters);
        assert_eq!((bounds.offset_min, bounds.offset_max), (11, 20));
        assert!(bounds.overlaps((20, 30), (0, 0)));
        assert!(!bounds.overlaps((21, 30), (0, 0)));
        assert!(!Bounds::understands(&col("url").eq(lit("x"))));
    }
}
