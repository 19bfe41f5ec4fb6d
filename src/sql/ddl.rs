//! CREATE STREAM and CREATE TABLE: column definitions from the parsed statement, with the
//! PostgreSQL type names Strata accepts.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, ColumnOption, ConstraintCharacteristics, ConstraintReferenceMatchKind,
    CreateTable, CreateTableOptions, DataType, DeferrableInitial, ExactNumberInfo, Expr, ForeignKeyConstraint, Ident,
    NullsDistinctOption, ReferentialAction, SqlOption, TableConstraint, TimezoneInfo, UniqueConstraint, Value,
    visit_expressions,
};

use crate::catalog::{
    CHANGE_COLUMNS, CheckDef, ColumnDef, NUMERIC_DEFAULT_PRECISION, NUMERIC_DEFAULT_SCALE, ROW_ID_COLUMN, RelationKind,
    Retention, SYSTEM_COLUMNS, SqlType, UniqueDef, free_name,
};
use crate::error::{Error, Result};

pub fn stream_columns(create: &CreateTable) -> Result<Vec<ColumnDef>> {
    if create.query.is_some() {
        return Err(Error::FeatureNotSupported("CREATE STREAM … AS SELECT is not supported".into()));
    }
    if !create.constraints.is_empty() {
        return Err(Error::FeatureNotSupported(
            "streams take no table constraints (PRIMARY KEY, UNIQUE, …); keyed state is a table".into(),
        ));
    }
    if create.columns.is_empty() {
        return Err(Error::Syntax("a stream needs at least one column".into()));
    }
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        let name = column.name.value.clone();
        if SYSTEM_COLUMNS.contains(&name.as_str()) {
            return Err(Error::InvalidParameterValue(format!(
                "column name \"{name}\" is reserved for a system column"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(Error::DuplicateColumn(name));
        }
        columns.push(plain_column(column, "on a stream")?);
    }
    Ok(columns)
}

/// A column with a type, NULL/NOT NULL and a DEFAULT only (a stream's, or
/// one `ALTER … ADD COLUMN` adds); other options are refused, `place` saying
/// where they are not supported.
fn plain_column(column: &datafusion::sql::sqlparser::ast::ColumnDef, place: &str) -> Result<ColumnDef> {
    let mut nullable = true;
    let mut default = None;
    for option in &column.options {
        if !null_or_default(&option.option, &mut nullable, &mut default)? {
            let other = &option.option;
            return Err(Error::FeatureNotSupported(format!("column option {other} is not supported {place}")));
        }
    }
    if serial_type(&column.data_type).is_some() {
        return Err(Error::FeatureNotSupported(format!("{} columns are not supported {place}", column.data_type)));
    }
    Ok(ColumnDef::new(column.name.value.clone(), sql_type(&column.data_type)?, nullable, default))
}

/// The integer type of `SERIAL` (`serial4`), `BIGSERIAL` (`serial8`) or
/// `SMALLSERIAL` (`serial2`), which are not types but say the column takes
/// its values from a counter when a write gives none.
fn serial_type(data_type: &DataType) -> Option<SqlType> {
    let DataType::Custom(name, arguments) = data_type else { return None };
    if !arguments.is_empty() || name.0.len() != 1 {
        return None;
    }
    Some(match name.to_string().to_lowercase().as_str() {
        "serial" | "serial4" => SqlType::Int,
        "bigserial" | "serial8" => SqlType::BigInt,
        "smallserial" | "serial2" => SqlType::SmallInt,
        _ => return None,
    })
}

/// Applies NULL, NOT NULL or DEFAULT; false for any other option.
fn null_or_default(option: &ColumnOption, nullable: &mut bool, default: &mut Option<String>) -> Result<bool> {
    match option {
        ColumnOption::NotNull => *nullable = false,
        ColumnOption::Null => *nullable = true,
        ColumnOption::Default(expr) => *default = Some(default_expr(expr)?),
        _ => return Ok(false),
    }
    Ok(true)
}

pub fn sql_type(data_type: &DataType) -> Result<SqlType> {
    let sql_type = match data_type {
        DataType::Boolean | DataType::Bool => SqlType::Boolean,
        DataType::SmallInt(_) | DataType::Int2(_) => SqlType::SmallInt,
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => SqlType::Int,
        DataType::BigInt(_) | DataType::Int8(_) => SqlType::BigInt,
        DataType::Real | DataType::Float4 => SqlType::Real,
        DataType::DoublePrecision | DataType::Float8 | DataType::Double(_) => SqlType::Double,
        DataType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => SqlType::Real,
        DataType::Float(_) => SqlType::Double,
        DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => numeric(info)?,
        DataType::Text => SqlType::Text,
        DataType::Varchar(length) | DataType::CharacterVarying(length) | DataType::CharVarying(length) => {
            let max_chars = match length {
                None => None,
                Some(CharacterLength::IntegerLength { length, .. }) if *length >= 1 && *length <= 10_485_760 => {
                    Some(*length as u32)
                }
                Some(other) => {
                    return Err(Error::InvalidParameterValue(format!("invalid length {other} for type varchar")));
                }
            };
            SqlType::Varchar { max_chars }
        }
        DataType::Bytea => SqlType::Bytea,
        DataType::Date => SqlType::Date,
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => SqlType::Timestamp,
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => SqlType::TimestampTz,
        DataType::Interval { .. } => SqlType::Interval,
        DataType::JSONB | DataType::JSON => SqlType::Jsonb,
        DataType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("timestamptz") => SqlType::TimestampTz,
        DataType::Array(ArrayElemTypeDef::SquareBracket(element, _) | ArrayElemTypeDef::AngleBracket(element)) => {
            match sql_type(element)? {
                SqlType::Array(_) => {
                    return Err(Error::FeatureNotSupported("multidimensional arrays are not supported".into()));
                }
                element => SqlType::Array(Box::new(element)),
            }
        }
        other => {
            return Err(Error::FeatureNotSupported(format!("type {other} is not supported")));
        }
    };
    Ok(sql_type)
}

fn numeric(info: &ExactNumberInfo) -> Result<SqlType> {
    let (precision, scale) = match info {
        ExactNumberInfo::None => (NUMERIC_DEFAULT_PRECISION as u64, NUMERIC_DEFAULT_SCALE as i64),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if !(1..=38).contains(&precision) {
        return Err(Error::InvalidParameterValue(format!("NUMERIC precision {precision} must be between 1 and 38")));
    }
    if scale < 0 || scale > precision as i64 {
        return Err(Error::InvalidParameterValue(format!(
            "NUMERIC scale {scale} must be between 0 and precision {precision}"
        )));
    }
    Ok(SqlType::Numeric { precision: precision as u8, scale: scale as i8 })
}

/// What CREATE TABLE defines.
pub struct TableDefinition {
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<usize>,
    pub checks: Vec<CheckDef>,
    pub uniques: Vec<UniqueDef>,
    pub foreign_keys: Vec<ForeignKeyClause>,
}

/// A UNIQUE constraint as written: its columns by name.
pub struct UniqueClause {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub nulls_not_distinct: bool,
}

/// A table constraint's UNIQUE (a, b).
pub fn unique_clause(constraint: &UniqueConstraint) -> Result<UniqueClause> {
    let columns = constraint.columns.iter().map(|c| super::parse::object_name(&c.column.expr.to_string())).collect();
    unique(columns, constraint)
}

/// A UNIQUE constraint on `columns` (the column's own when it is a column
/// option). Checked as each statement ends, so not deferrable.
fn unique(columns: Vec<String>, constraint: &UniqueConstraint) -> Result<UniqueClause> {
    if deferrable(constraint.characteristics.as_ref()) {
        return Err(Error::FeatureNotSupported("a deferrable UNIQUE constraint is not supported yet".into()));
    }
    Ok(UniqueClause {
        name: constraint.name.as_ref().map(|n| n.value.clone()),
        columns,
        nulls_not_distinct: constraint.nulls_distinct == NullsDistinctOption::NotDistinct,
    })
}

fn deferrable(characteristics: Option<&ConstraintCharacteristics>) -> bool {
    characteristics.is_some_and(|c| c.deferrable == Some(true) || c.initially == Some(DeferrableInitial::Deferred))
}

/// A FOREIGN KEY as written; the session resolves the table it names.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKeyClause {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub parent: String,
    /// Empty: the parent's primary key.
    pub parent_columns: Vec<String>,
    /// ` ON UPDATE RESTRICT ON DELETE RESTRICT`, as PostgreSQL prints it.
    pub actions: String,
}

/// A FOREIGN KEY clause on `columns`. Only what Strata checks is taken:
/// MATCH SIMPLE, NO ACTION or RESTRICT (the same here: checked as each
/// statement ends), not deferrable.
fn foreign_key(columns: Vec<String>, constraint: &ForeignKeyConstraint) -> Result<ForeignKeyClause> {
    let mut actions = String::new();
    for (what, action) in [("UPDATE", &constraint.on_update), ("DELETE", &constraint.on_delete)] {
        match action {
            None | Some(ReferentialAction::NoAction) => {}
            Some(ReferentialAction::Restrict) => actions.push_str(&format!(" ON {what} RESTRICT")),
            Some(other) => {
                return Err(Error::FeatureNotSupported(format!(
                    "ON {what} {other} is not supported yet (a FOREIGN KEY takes NO ACTION or RESTRICT)"
                )));
            }
        }
    }
    if !matches!(constraint.match_kind, None | Some(ConstraintReferenceMatchKind::Simple)) {
        return Err(Error::FeatureNotSupported("a FOREIGN KEY is MATCH SIMPLE only".into()));
    }
    if deferrable(constraint.characteristics.as_ref()) {
        return Err(Error::FeatureNotSupported("a deferrable FOREIGN KEY is not supported yet".into()));
    }
    Ok(ForeignKeyClause {
        name: constraint.name.as_ref().map(|n| n.value.clone()),
        columns,
        parent: super::parse::object_name(&constraint.foreign_table.to_string()),
        parent_columns: constraint.referred_columns.iter().map(|c| c.value.clone()).collect(),
        actions,
    })
}

/// CREATE TABLE: columns, the primary key (column or table constraint,
/// single or composite; its columns become NOT NULL; without one, the hidden
/// row identity `_rowid` is the key) and CHECK constraints, named as
/// PostgreSQL names them.
pub fn table_definition(table: &str, create: &CreateTable) -> Result<TableDefinition> {
    if create.query.is_some() {
        return Err(Error::FeatureNotSupported("CREATE TABLE … AS SELECT is not supported".into()));
    }
    if create.columns.is_empty() {
        return Err(Error::Syntax("a table needs at least one column".into()));
    }
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(create.columns.len());
    let mut key_names: Vec<String> = Vec::new();
    let mut checks = Vec::new();
    let mut foreign_keys = Vec::new();
    let mut uniques = Vec::new();
    for column in &create.columns {
        let name = column.name.value.clone();
        if CHANGE_COLUMNS.contains(&name.as_str()) || name == ROW_ID_COLUMN {
            return Err(Error::InvalidParameterValue(format!(
                "column name \"{name}\" is reserved for a system column"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(Error::DuplicateColumn(name));
        }
        let mut nullable = true;
        let mut default = None;
        for option in &column.options {
            if null_or_default(&option.option, &mut nullable, &mut default)? {
                continue;
            }
            match &option.option {
                ColumnOption::PrimaryKey(_) => {
                    if !key_names.is_empty() {
                        return Err(multiple_keys(table));
                    }
                    key_names.push(name.clone());
                }
                ColumnOption::Check(check) => checks.push(CheckDef {
                    name: check_name(&checks, check.name.as_ref(), format!("{table}_{name}_check")),
                    expr: check.expr.to_string(),
                }),
                ColumnOption::ForeignKey(constraint) => foreign_keys.push(foreign_key(vec![name.clone()], constraint)?),
                ColumnOption::Unique(constraint) => uniques.push(unique(vec![name.clone()], constraint)?),
                other => {
                    return Err(Error::FeatureNotSupported(format!("column option {other} is not supported yet")));
                }
            }
        }
        match serial_type(&column.data_type) {
            Some(_) if default.is_some() => {
                return Err(Error::Syntax(format!(
                    "multiple default values specified for column \"{name}\" of table \"{table}\""
                )));
            }
            Some(integer) => {
                let mut serial = ColumnDef::new(name, integer, false, None);
                serial.serial = true;
                columns.push(serial);
            }
            None => columns.push(ColumnDef::new(name, sql_type(&column.data_type)?, nullable, default)),
        }
    }
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::PrimaryKey(key) => {
                if !key_names.is_empty() {
                    return Err(multiple_keys(table));
                }
                key_names = key.columns.iter().map(|c| super::parse::object_name(&c.column.expr.to_string())).collect();
            }
            TableConstraint::Check(check) => checks.push(CheckDef {
                name: check_name(&checks, check.name.as_ref(), format!("{table}_check")),
                expr: check.expr.to_string(),
            }),
            TableConstraint::ForeignKey(constraint) => {
                let columns = constraint.columns.iter().map(|c| c.value.clone()).collect();
                foreign_keys.push(foreign_key(columns, constraint)?);
            }
            TableConstraint::Unique(constraint) => uniques.push(unique_clause(constraint)?),
            other => {
                return Err(Error::FeatureNotSupported(format!("table constraint {other} is not supported yet")));
            }
        }
    }
    let uniques = unique_constraints(table, &columns, &checks, uniques)?;
    if key_names.is_empty() {
        // No key: a hidden row identity, filled in when rows are written.
        columns.push(ColumnDef::new(ROW_ID_COLUMN, SqlType::BigInt, true, None));
        return Ok(TableDefinition { primary_key: vec![columns.len() - 1], columns, checks, uniques, foreign_keys });
    }
    let mut primary_key = Vec::with_capacity(key_names.len());
    for key in &key_names {
        let position = columns
            .iter()
            .position(|c| &c.name == key)
            .ok_or_else(|| Error::UndefinedColumn(format!("column \"{key}\" named in key does not exist")))?;
        columns[position].nullable = false;
        primary_key.push(position);
    }
    Ok(TableDefinition { columns, primary_key, checks, uniques, foreign_keys })
}

/// The UNIQUE clauses with their columns' positions, named as PostgreSQL
/// names them where the clause gives no name (`t_a_b_key`, then `t_a_b_key1`
/// when a constraint before it took that).
fn unique_constraints(
    table: &str,
    columns: &[ColumnDef],
    checks: &[CheckDef],
    clauses: Vec<UniqueClause>,
) -> Result<Vec<UniqueDef>> {
    let mut uniques: Vec<UniqueDef> = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let mut positions = Vec::with_capacity(clause.columns.len());
        for name in &clause.columns {
            let position = columns
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| Error::UndefinedColumn(format!("column \"{name}\" named in key does not exist")))?;
            if positions.contains(&position) {
                return Err(Error::DuplicateColumn(name.clone()));
            }
            positions.push(position);
        }
        let taken = |name: &str| {
            name == format!("{table}_pkey")
                || checks.iter().any(|c| c.name == name)
                || uniques.iter().any(|u| u.name == name)
        };
        let (name, generated_name) = match clause.name {
            // PostgreSQL names the constraint's index so, and an index is a relation.
            Some(name) if taken(&name) => return Err(Error::DuplicateRelation(name)),
            Some(name) => (name, false),
            None => (free_name(&format!("{table}_{}_key", clause.columns.join("_")), taken), true),
        };
        uniques.push(UniqueDef {
            name,
            columns: positions,
            nulls_not_distinct: clause.nulls_not_distinct,
            index_only: false,
            generated_name,
        });
    }
    Ok(uniques)
}

/// A DEFAULT expression, kept as SQL text. Like PostgreSQL, it may not read
/// columns or relations; it is checked against the column type when used.
fn default_expr(expr: &Expr) -> Result<String> {
    let mut reads_data = false;
    let _ = visit_expressions(expr, |e| {
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Subquery(_) | Expr::Exists { .. }) {
            reads_data = true;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if reads_data {
        return Err(Error::FeatureNotSupported(format!(
            "DEFAULT {expr}: a default cannot refer to columns or relations"
        )));
    }
    Ok(expr.to_string())
}

fn multiple_keys(table: &str) -> Error {
    Error::InvalidTableDefinition(format!("multiple primary keys for table \"{table}\" are not allowed"))
}

/// The retention a CREATE's `WITH (…)` sets, if any.
pub fn create_retention(kind: RelationKind, create: &CreateTable) -> Result<Option<Retention>> {
    match &create.table_options {
        CreateTableOptions::None => Ok(None),
        CreateTableOptions::With(options) => retention(kind, options),
        other => Err(Error::FeatureNotSupported(format!("{other} is not supported"))),
    }
}

/// `retention = '7 days'` (a stream) or `history_retention = '30 days'` (a
/// table); `NULL` keeps history forever. Any other option is refused, as
/// PostgreSQL refuses an unknown storage parameter.
pub fn retention(kind: RelationKind, options: &[SqlOption]) -> Result<Option<Retention>> {
    let wanted = kind.retention_option();
    let mut setting = None;
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(Error::Syntax(format!("expected name = value, found {option}")));
        };
        if !key.value.eq_ignore_ascii_case(wanted) {
            return Err(Error::InvalidParameterValue(format!(
                "unrecognized parameter \"{}\" for a {} (it takes {wanted})",
                key.value,
                kind.noun()
            )));
        }
        setting = match value {
            Expr::Value(v) if matches!(v.value, Value::Null) => None,
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(text) => Some(interval(wanted, text)?),
                other => {
                    return Err(Error::InvalidParameterValue(format!(
                        "{wanted} needs an interval such as '7 days', not {other}"
                    )));
                }
            },
            other => {
                return Err(Error::InvalidParameterValue(format!(
                    "{wanted} needs an interval such as '7 days', not {other}"
                )));
            }
        };
    }
    Ok(setting)
}

/// An interval as PostgreSQL reads it (`'7 days'`, `'12 hours'`, `'1 mon'`),
/// a month counted as 30 days; it must be positive.
pub fn interval(option: &str, text: &str) -> Result<Retention> {
    use datafusion::arrow::datatypes::{DataType as ArrowType, IntervalUnit};
    use datafusion::common::ScalarValue;
    let invalid =
        || Error::InvalidParameterValue(format!("invalid value for {option}: \"{text}\" is not a positive interval"));
    let value = ScalarValue::Utf8(Some(text.to_string()))
        .cast_to(&ArrowType::Interval(IntervalUnit::MonthDayNano))
        .map_err(|_| invalid())?;
    let ScalarValue::IntervalMonthDayNano(Some(interval)) = value else { return Err(invalid()) };
    const DAY_MICROS: i64 = 86_400_000_000;
    let micros = (interval.months as i64 * 30 + interval.days as i64) * DAY_MICROS + interval.nanoseconds / 1000;
    if micros <= 0 {
        return Err(invalid());
    }
    Ok(Retention { text: text.to_string(), micros })
}

/// The column of `ALTER … ADD COLUMN`: a name, a type, NULL/NOT NULL and a
/// DEFAULT (keys and constraints are CREATE's).
pub fn added_column(column: &datafusion::sql::sqlparser::ast::ColumnDef) -> Result<ColumnDef> {
    let name = &column.name.value;
    if CHANGE_COLUMNS.contains(&name.as_str()) || name == ROW_ID_COLUMN {
        return Err(Error::InvalidParameterValue(format!("column name \"{name}\" is reserved for a system column")));
    }
    plain_column(column, "in ADD COLUMN")
}

/// A CHECK's name: the one given, else `generated` if no CHECK before it
/// took that, else `generated1`, `generated2`, … as PostgreSQL chooses
/// (`t_n_check`, `t_n_check1`).
fn check_name(checks: &[CheckDef], given: Option<&Ident>, generated: String) -> String {
    if let Some(given) = given {
        return given.value.clone();
    }
    free_name(&generated, |name| checks.iter().any(|c| c.name == name))
}
