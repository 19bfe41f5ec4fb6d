//! The one place errors become SQLSTATEs.

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::Error;
use crate::log;

pub fn error_info(error: &Error) -> ErrorInfo {
    let code = sqlstate(error);
    let message = match error {
        Error::DataFusion(inner) => datafusion_message(inner),
        other => other.to_string(),
    };
    if let Some(message) = integer_out_of_range(error) {
        return ErrorInfo::new("ERROR".to_string(), "22003".to_string(), message);
    }
    if let Some((code, message)) = text_to_numeric(error) {
        return ErrorInfo::new("ERROR".to_string(), code.to_string(), message);
    }
    if let Some(message) = text_to_timestamp(error) {
        return ErrorInfo::new("ERROR".to_string(), "22007".to_string(), message);
    }
    if let Some(detail) = numeric_overflow(error) {
        let mut info = ErrorInfo::new("ERROR".to_string(), "22003".to_string(), "numeric field overflow".into());
        info.detail = Some(detail);
        return info;
    }
    let mut info = ErrorInfo::new("ERROR".to_string(), code.to_string(), message);
    // The object an integrity error is about, in the fields PostgreSQL
    // fills (drivers show them, e.g. psycopg's `diag.constraint_name`).
    let (table, column, constraint, detail) = match error {
        Error::Storage(
            log::Error::UniqueViolation { table, constraint, detail }
            | log::Error::UniqueIndexBlocked { table, index: constraint, detail }
            | log::Error::ForeignKeyViolation { table, constraint, detail, .. },
        ) => (table, None, Some(constraint), Some(detail)),
        Error::CheckViolation { relation, constraint } => (relation, None, Some(constraint), None),
        Error::NotNullViolation { relation, column } => (relation, Some(column), None, None),
        _ => return info,
    };
    info.schema = Some("public".into());
    info.table = Some(table.clone());
    info.column = column.cloned();
    info.constraint = constraint.cloned();
    info.detail = detail.cloned();
    info
}

pub fn to_pgwire(error: Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&error)))
}

fn sqlstate(error: &Error) -> &'static str {
    match error {
        Error::Syntax(_) | Error::Malformed(_) => "42601",
        Error::UndefinedRelation(_) => "42P01",
        Error::DuplicateRelation(_) => "42P07",
        Error::DuplicateColumn(_) => "42701",
        Error::FeatureNotSupported(_) => "0A000",
        Error::UndefinedColumn(_) => "42703",
        Error::UndefinedObject(_) => "42704",
        Error::InvalidTableDefinition(_) => "42P16",
        Error::InvalidForeignKey(_) => "42830",
        Error::DatatypeMismatch(_) => "42804",
        Error::CheckViolation { .. } => "23514",
        Error::WrongObjectType(_) => "42809",
        Error::InvalidColumnReference => "42P10",
        Error::CardinalityViolation(_) => "21000",
        Error::InvalidTextRepresentation(_) => "22P02",
        Error::NotNullViolation { .. } => "23502",
        Error::StringTooLong { .. } => "22001",
        Error::InvalidParameterValue(_) => "22023",
        Error::InvalidTransactionState(_) => "25001",
        Error::TransactionAborted => "25P02",
        Error::QueryCanceled => "57014",
        Error::SequenceExhausted(_) => "2200H",
        Error::ReadOnlyTransaction(_) => "25006",
        Error::NoActiveTransaction(_) => "25P01",
        Error::UndefinedSavepoint(_) => "3B001",
        Error::ProgramLimitExceeded(_) => "54000",
        Error::BadCopyFile(_) => "22P04",
        Error::CharacterNotInRepertoire(_) => "22021",
        Error::UndefinedCursor(_) => "34000",
        Error::UndefinedPreparedStatement(_) => "26000",
        Error::DuplicateCursor(_) => "42P03",
        Error::DuplicatePreparedStatement(_) => "42P05",
        Error::UndefinedParameter(_) => "42P02",
        Error::Storage(storage) => match storage {
            log::Error::DuplicateRelation(_) => "42P07",
            log::Error::UndefinedRelation(_) => "42P01",
            log::Error::WrongObjectType(_) => "42809",
            log::Error::DuplicateColumn { .. } => "42701",
            log::Error::UndefinedColumn { .. } => "42703",
            log::Error::DependentObjects(_) => "2BP01",
            log::Error::CommitTooLarge { .. } | log::Error::LimitExceeded(_) => "54000",
            log::Error::UniqueViolation { .. } | log::Error::UniqueIndexBlocked { .. } => "23505",
            log::Error::UndefinedIndex(_) | log::Error::UndefinedConstraint { .. } => "42704",
            log::Error::Unsupported(_) => "0A000",
            log::Error::ForeignKeyViolation { .. } => "23503",
            log::Error::Conflict | log::Error::ViewBehind => "40001",
            log::Error::View { source, .. } => match source {
                crate::view::ViewError::Unsupported(_) => "0A000",
                crate::view::ViewError::Overflow(_) => "22003",
                crate::view::ViewError::DataFusion(inner) => datafusion_sqlstate(inner),
                crate::view::ViewError::Arrow(ArrowError::DivideByZero) => "22012",
                crate::view::ViewError::Arrow(ArrowError::ArithmeticOverflow(_)) => "22003",
                crate::view::ViewError::Arrow(_) | crate::view::ViewError::Internal(_) => "XX000",
            },
            log::Error::Corrupt { .. } => "XX001",
            log::Error::Io { .. } | log::Error::Store(_) | log::Error::Poisoned | log::Error::Closed => "58030",
            log::Error::Encode(_) | log::Error::Decode(_) | log::Error::Arrow(_) => "XX000",
        },
        Error::DataFusion(inner) => datafusion_sqlstate(inner),
        Error::Internal(_) => "XX000",
    }
}

fn datafusion_sqlstate(error: &DataFusionError) -> &'static str {
    match error.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(schema_error, _) => match schema_error.as_ref() {
            SchemaError::FieldNotFound { .. } => "42703",
            SchemaError::AmbiguousReference { .. } => "42702",
            SchemaError::DuplicateQualifiedField { .. } | SchemaError::DuplicateUnqualifiedField { .. } => "42701",
        },
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
            ArrowError::DivideByZero => "22012",
            ArrowError::ArithmeticOverflow(_) => "22003",
            _ => "XX000",
        },
        DataFusionError::Plan(message) if message.contains("table") && message.contains("not found") => "42P01",
        // extract's and date_part's unknown field, as PostgreSQL words it.
        DataFusionError::Plan(message) if message.contains("not recognized for type") => "22023",
        DataFusionError::Plan(message)
            if message.contains("No function matches") || message.contains("Invalid function") =>
        {
            "42883"
        }
        // PostgreSQL runs such a subquery per row; DataFusion plans it as a join.
        DataFusionError::Plan(message) if message.contains("Correlated scalar subquery must be aggregated") => "0A000",
        DataFusionError::Plan(_) => "42804",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::Execution(message) if message.contains("Cast error") || message.contains("Cannot cast") => {
            "22P02"
        }
        DataFusionError::Execution(message) if message.contains(DIVIDE_BY_ZERO) => "22012",
        DataFusionError::Execution(message) if message.contains(SUBQUERY_ROWS) => "21000",
        DataFusionError::Execution(_) => "XX000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        _ => "XX000",
    }
}

/// DataFusion's message for an integer division by zero, and PostgreSQL's.
const DIVIDE_BY_ZERO: &str = "Divide by zero";
const DIVISION_BY_ZERO: &str = "division by zero";

/// DataFusion's message for a scalar subquery of several rows.
const SUBQUERY_ROWS: &str = "Scalar subquery returned more than one row";

/// DataFusion's message without its "Error during planning:" style prefixes
/// (and PostgreSQL's words where they differ).
fn datafusion_message(error: &DataFusionError) -> String {
    let root = error.find_root();
    match root {
        DataFusionError::Execution(message) if message.contains(SUBQUERY_ROWS) => {
            "more than one row returned by a subquery used as an expression".into()
        }
        DataFusionError::Execution(message) if message.contains(DIVIDE_BY_ZERO) => DIVISION_BY_ZERO.into(),
        DataFusionError::Plan(message)
        | DataFusionError::Execution(message)
        | DataFusionError::NotImplemented(message) => message.clone(),
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            // Worded as PostgreSQL words it where it is raised (`bigint out of range`).
            ArrowError::ArithmeticOverflow(message) => message.clone(),
            ArrowError::DivideByZero => DIVISION_BY_ZERO.into(),
            other => other.to_string(),
        },
        DataFusionError::SchemaError(schema_error, _) => schema_error.to_string(),
        other => other.to_string(),
    }
}

/// PostgreSQL's message for a number cast to an integer type too small for
/// it, from Arrow's "Can't cast value 4000000000 to type Int32" (a number)
/// or "Cannot cast string '4000000000' to value of Int32 type" (text).
fn integer_out_of_range(error: &Error) -> Option<String> {
    let Error::DataFusion(inner) = error else { return None };
    let message = match inner.find_root() {
        DataFusionError::Execution(message) => message,
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::CastError(message) => message,
            _ => return None,
        },
        _ => return None,
    };
    let type_name = |arrow_name: &str| match arrow_name.trim() {
        "Int16" => Some("smallint"),
        "Int32" => Some("integer"),
        "Int64" => Some("bigint"),
        _ => None,
    };
    if let Some((_, target)) =
        message.split_once("Can't cast value ").and_then(|(_, rest)| rest.split_once(" to type "))
    {
        return Some(format!("{} out of range", type_name(target)?));
    }
    // A NUMERIC cast to an integer: "value of 2147483648 is out of range Int32".
    if let Some((_, target)) =
        message.split_once("value of ").and_then(|(_, rest)| rest.split_once(" is out of range "))
    {
        return Some(format!("{} out of range", type_name(target)?));
    }
    let (text, target) = message.split_once("Cannot cast string '")?.1.split_once("' to value of ")?;
    let type_name = type_name(target.strip_suffix(" type")?)?;
    // Digits too many for the type; other text is not a number at all (22P02).
    text.trim().parse::<i128>().ok()?;
    Some(format!("value \"{text}\" is out of range for type {type_name}"))
}

/// PostgreSQL's error for text that does not become a NUMERIC, from Arrow's
/// "Cannot cast string '…' to value of Decimal128(p, s) type": a number too
/// big for the type (22003), or text that is no number (22P02).
fn text_to_numeric(error: &Error) -> Option<(&'static str, String)> {
    let Error::DataFusion(inner) = error else { return None };
    let DataFusionError::ArrowError(arrow, _) = inner.find_root() else { return None };
    let ArrowError::CastError(message) = arrow.as_ref() else { return None };
    let (text, target) = message.split_once("Cannot cast string '")?.1.rsplit_once("' to value of ")?;
    if !target.starts_with("Decimal") {
        return None;
    }
    let unsigned = text.trim().trim_start_matches(['-', '+']);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let number = !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction);
    Some(match number {
        true => ("22003", "numeric field overflow".to_string()),
        false => ("22P02", format!("invalid input syntax for type numeric: \"{text}\"")),
    })
}

/// PostgreSQL's error for text that is no time, from Arrow's "Error parsing
/// timestamp from '1 day': …" (`at - '1 day'` reads the text as a time).
fn text_to_timestamp(error: &Error) -> Option<String> {
    let Error::DataFusion(inner) = error else { return None };
    let DataFusionError::ArrowError(arrow, _) = inner.find_root() else { return None };
    let ArrowError::ParseError(message) = arrow.as_ref() else { return None };
    let (text, _) = message.strip_prefix("Error parsing timestamp from '")?.rsplit_once("': ")?;
    Some(format!("invalid input syntax for type timestamp: \"{text}\""))
}

/// PostgreSQL's detail for a value too big for its NUMERIC(p, s), from
/// Arrow's "1.5 is too large to store in a Decimal128 of precision 2. Max is 0.99".
fn numeric_overflow(error: &Error) -> Option<String> {
    let Error::DataFusion(inner) = error else { return None };
    let DataFusionError::ArrowError(arrow, _) = inner.find_root() else { return None };
    let ArrowError::InvalidArgumentError(message) = arrow.as_ref() else { return None };
    let (_, rest) = message.split_once(" to store in a Decimal")?;
    let precision: u32 = rest.split_once("of precision ")?.1.split_once('.')?.0.parse().ok()?;
    let bound = rest.rsplit_once(" is ")?.1;
    let scale = bound.split_once('.').map_or(0, |(_, fraction)| fraction.len() as u32);
    Some(format!(
        "A field with precision {precision}, scale {scale} must round to an absolute value less than {}.",
        match precision - scale.min(precision) {
            0 => "1".to_string(),
            digits => format!("10^{digits}"),
        }
    ))
}
