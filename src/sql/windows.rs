//! Time windows as table functions in FROM, as RisingWave and Flink spell them:
//!
//! - `tumble(relation, time_column, size)`: every row of the relation with
//!   the window holding it, `window_start` and `window_end`;
//! - `hop(relation, time_column, slide, size)`: every row once per window
//!   holding it, windows of `size` starting every `slide` (`size` a
//!   multiple of `slide`, so each row falls in `size / slide` windows).
//!
//! Windows are aligned to the Unix epoch, as `date_bin`'s are; rows whose
//! time is NULL are in no window. Each call becomes a derived table of
//! `date_bin` projections of the relation (a UNION ALL of one per window a
//! row falls in), so a continuous view over a window is maintained as its
//! buckets are, and point-in-time reads apply to the relation inside.

use std::ops::ControlFlow;

use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Ident, Statement, TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};

use super::as_of::derived;
use crate::error::{Error, Result};

/// Windows one row may fall in (`size / slide` of `hop`): the derived table
/// reads the relation once per window.
pub const HOP_WINDOWS_MAX: i64 = 64;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Replaces every `tumble(…)` and `hop(…)` in FROM by its derived table.
pub fn rewrite_windows(statement: &mut Statement) -> Result<()> {
    let mut windows = Windows { error: None };
    let _ = statement.visit(&mut windows);
    windows.error.map_or(Ok(()), Err)
}

struct Windows {
    error: Option<Error>,
}

impl VisitorMut for Windows {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, args: Some(args), .. } = factor else {
            return ControlFlow::Continue(());
        };
        let function = super::parse::object_name(&name.to_string());
        if function != "tumble" && function != "hop" {
            return ControlFlow::Continue(());
        }
        let alias = alias.clone().unwrap_or_else(|| TableAlias {
            explicit: false,
            name: Ident::new(function.as_str()),
            columns: vec![],
            at: None,
        });
        match window_query(&function, &args.args).and_then(|query| derived(&query, alias)) {
            Ok(table) => {
                *factor = table;
                ControlFlow::Continue(())
            }
            Err(error) => {
                self.error = Some(error);
                ControlFlow::Break(())
            }
        }
    }
}

/// The SQL of the derived table for `function(args)`.
fn window_query(function: &str, args: &[FunctionArg]) -> Result<String> {
    let usage = match function {
        "tumble" => "tumble(relation, time_column, size)",
        _ => "hop(relation, time_column, slide, size)",
    };
    let wrong = || Error::InvalidParameterValue(format!("{usage}: {} arguments given", args.len()));
    let exprs: Vec<&Expr> = args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(wrong)?;
    let (relation, time, slide, size) = match (function, exprs.as_slice()) {
        ("tumble", [relation, time, size]) => (relation, time, size, size),
        ("hop", [relation, time, slide, size]) => (relation, time, slide, size),
        _ => return Err(wrong()),
    };
    let relation = match relation {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => relation.to_string(),
        other => {
            return Err(Error::InvalidParameterValue(format!(
                "{usage}: the first argument names a relation, not {other}"
            )));
        }
    };
    let slide_nanos = interval_nanos(usage, slide)?;
    let size_nanos = interval_nanos(usage, size)?;
    if size_nanos % slide_nanos != 0 {
        return Err(Error::InvalidParameterValue(format!("{usage}: the size must be a multiple of the slide")));
    }
    let windows = size_nanos / slide_nanos;
    if windows > HOP_WINDOWS_MAX {
        return Err(Error::ProgramLimitExceeded(format!(
            "{usage}: each row would fall in {windows} windows; at most {HOP_WINDOWS_MAX}"
        )));
    }
    let bucket = format!("date_bin(INTERVAL '{slide_nanos} nanoseconds', {time})");
    let size = format!("INTERVAL '{size_nanos} nanoseconds'");
    let branches: Vec<String> = (0..windows)
        .map(|window| {
            let start = match window {
                0 => bucket.clone(),
                n => format!("{bucket} - INTERVAL '{} nanoseconds'", n * slide_nanos),
            };
            format!(
                "SELECT {relation}.*, {start} AS window_start, {start} + {size} AS window_end \
                 FROM {relation} WHERE {time} IS NOT NULL"
            )
        })
        .collect();
    Ok(branches.join(" UNION ALL "))
}

/// A positive interval literal in nanoseconds (a day is 24 hours, as in
/// `date_bin`); months have no fixed length, so they are refused.
fn interval_nanos(usage: &str, expr: &Expr) -> Result<i64> {
    let text = match expr {
        Expr::Interval(interval) => match (interval.value.as_ref(), &interval.leading_field) {
            (Expr::Value(value), field) => match &value.value {
                Value::SingleQuotedString(text) => match field {
                    Some(field) => format!("{text} {field}"),
                    None => text.clone(),
                },
                _ => return Err(not_literal(usage, expr)),
            },
            _ => return Err(not_literal(usage, expr)),
        },
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) => text.clone(),
            _ => return Err(not_literal(usage, expr)),
        },
        Expr::Cast { expr: inner, .. } => return interval_nanos(usage, inner),
        _ => return Err(not_literal(usage, expr)),
    };
    let interval = parse_interval_month_day_nano(&text)
        .map_err(|e| Error::InvalidParameterValue(format!("{usage}: {text}: {e}")))?;
    if interval.months != 0 {
        return Err(Error::InvalidParameterValue(format!(
            "{usage}: {text}: a window cannot be measured in months (their length varies)"
        )));
    }
    let nanos = (interval.days as i64)
        .checked_mul(NANOS_PER_DAY)
        .and_then(|days| days.checked_add(interval.nanoseconds))
        .filter(|nanos| *nanos > 0)
        .ok_or_else(|| Error::InvalidParameterValue(format!("{usage}: {text}: a window must be positive")))?;
    Ok(nanos)
}

fn not_literal(usage: &str, expr: &Expr) -> Error {
    Error::InvalidParameterValue(format!("{usage}: the window size and slide are interval literals, not {expr}"))
}
