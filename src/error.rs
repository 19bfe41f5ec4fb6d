//! The crate's user-facing error: every failure a client can see, classified so
//! the server can give it one SQLSTATE (see `server::sqlstate`).

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A statement well formed but inconsistent, which PostgreSQL also
    /// reports as 42601 in words of its own ("VALUES lists must all be the same length").
    #[error("{0}")]
    Malformed(String),
    #[error("relation \"{0}\" does not exist")]
    UndefinedRelation(String),
    #[error("relation \"{0}\" already exists")]
    DuplicateRelation(String),
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),
    #[error("{0}")]
    FeatureNotSupported(String),
    #[error("{0}")]
    UndefinedColumn(String),
    #[error("{0}")]
    UndefinedObject(String),
    #[error("{0}")]
    InvalidTableDefinition(String),
    /// A FOREIGN KEY that names no key of its table, or a different number of columns.
    #[error("{0}")]
    InvalidForeignKey(String),
    /// Values of two types that cannot be compared (a FOREIGN KEY's columns and its key's).
    #[error("{0}")]
    DatatypeMismatch(String),
    #[error("new row for relation \"{relation}\" violates check constraint \"{constraint}\"")]
    CheckViolation { relation: String, constraint: String },
    /// An operation the relation's kind does not allow (UPDATE on a stream, …).
    #[error("{0}")]
    WrongObjectType(String),
    /// ON CONFLICT names no key of the relation.
    #[error("there is no unique or exclusion constraint matching the ON CONFLICT specification")]
    InvalidColumnReference,
    /// One statement would change the same row twice (ON CONFLICT DO UPDATE).
    #[error("{0}")]
    CardinalityViolation(String),
    #[error("{0}")]
    InvalidTextRepresentation(String),
    #[error("null value in column \"{column}\" of relation \"{relation}\" violates not-null constraint")]
    NotNullViolation { relation: String, column: String },
    #[error("value too long for type character varying({max_chars})")]
    StringTooLong { max_chars: u32 },
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidTransactionState(String),
    /// A statement that needs a transaction block, outside one (25P01).
    #[error("{0} can only be used in transaction blocks")]
    NoActiveTransaction(&'static str),
    #[error("savepoint \"{0}\" does not exist")]
    UndefinedSavepoint(String),
    /// A write in a read-only transaction; names the statement (`INSERT`).
    #[error("cannot execute {0} in a read-only transaction")]
    ReadOnlyTransaction(String),
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    TransactionAborted,
    /// A cancel request stopped the statement (pgwire answers most; a
    /// COPY's data arrives after its statement returned).
    #[error("canceling statement due to user request")]
    QueryCanceled,
    /// A SERIAL column's counter past its type's largest value.
    #[error("{0}")]
    SequenceExhausted(String),
    #[error("{0}")]
    ProgramLimitExceeded(String),
    #[error("{0}")]
    BadCopyFile(String),
    /// Input bytes that are not UTF-8 (or a NUL byte).
    #[error("{0}")]
    CharacterNotInRepertoire(String),
    #[error("cursor \"{0}\" does not exist")]
    UndefinedCursor(String),
    #[error("prepared statement \"{0}\" does not exist")]
    UndefinedPreparedStatement(String),
    #[error("cursor \"{0}\" already exists")]
    DuplicateCursor(String),
    #[error("prepared statement \"{0}\" already exists")]
    DuplicatePreparedStatement(String),
    /// A `$n` where none can be bound (in EXECUTE's arguments).
    #[error("there is no parameter {0}")]
    UndefinedParameter(String),
    #[error(transparent)]
    Storage(#[from] crate::log::Error),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps the error so it can travel through DataFusion (from a sink or a
    /// scan) and be recovered intact by [`Error::from_datafusion`].
    pub fn into_datafusion(self) -> DataFusionError {
        match self {
            Error::DataFusion(inner) => inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }

    /// A copy of an error that functions raise while a query runs (bad
    /// input to a function, a value out of range), for one that several
    /// streams share; None for the rest.
    fn raised_in_queries(&self) -> Option<Error> {
        Some(match self {
            Error::InvalidParameterValue(m) => Error::InvalidParameterValue(m.clone()),
            Error::InvalidTextRepresentation(m) => Error::InvalidTextRepresentation(m.clone()),
            Error::CharacterNotInRepertoire(m) => Error::CharacterNotInRepertoire(m.clone()),
            Error::ProgramLimitExceeded(m) => Error::ProgramLimitExceeded(m.clone()),
            Error::FeatureNotSupported(m) => Error::FeatureNotSupported(m.clone()),
            Error::Syntax(m) => Error::Syntax(m.clone()),
            _ => return None,
        })
    }

    /// Recovers a Strata error that was carried through DataFusion, so its
    /// classification survives; other DataFusion errors stay as they are.
    pub fn from_datafusion(error: DataFusionError) -> Error {
        match error {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(strata) => *strata,
                Err(other) => Error::DataFusion(DataFusionError::External(other)),
            },
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                Error::from_datafusion(*inner)
            }
            // Shared when an operator hands one error to several streams.
            DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
                Ok(inner) => Error::from_datafusion(inner),
                Err(shared) => match shared.as_ref() {
                    DataFusionError::External(inner) => {
                        match inner.downcast_ref::<Error>().and_then(Error::raised_in_queries) {
                            Some(copy) => copy,
                            None => Error::DataFusion(DataFusionError::Shared(shared)),
                        }
                    }
                    _ => Error::DataFusion(DataFusionError::Shared(shared)),
                },
            },
            DataFusionError::Plan(message) if undefined_table(&message).is_some() => {
                Error::UndefinedRelation(undefined_table(&message).unwrap_or_default())
            }
            other => Error::DataFusion(other),
        }
    }
}

/// The relation named by DataFusion's "table 'catalog.schema.name' not found".
fn undefined_table(message: &str) -> Option<String> {
    let quoted = message.strip_prefix("table '")?.strip_suffix("' not found")?;
    Some(quoted.rsplit('.').next().unwrap_or(quoted).to_string())
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(error: datafusion::arrow::error::ArrowError) -> Self {
        Error::DataFusion(DataFusionError::from(error))
    }
}

/// A message a statement sends its client besides its result, as
/// PostgreSQL's NOTICE and WARNING (`BEGIN` inside a transaction block, a
/// subscriber falling behind the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `WARNING` or `NOTICE`.
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl Notice {
    pub fn warning(code: &'static str, message: String) -> Notice {
        Notice { severity: "WARNING", code, message }
    }
}
