//! Column types with their modifiers and column DEFAULTs in the emulated
//! pg_catalog, so psql's `\d accounts` shows `character varying(20)`,
//! `numeric(12,2)` and `now()` as PostgreSQL does.
//!
//! The emulation (datafusion-pg-catalog) derives `pg_attribute` from Arrow
//! types, which carry no VARCHAR length (`text`) and no modifier
//! (`atttypmod` -1), and serves `pg_attrdef` as PostgreSQL's own system
//! rows only; its `pg_get_expr` returns ''. Here `pg_attribute` gains the
//! declared types, NOT NULL and `atthasdef`, `pg_attrdef` a row per DEFAULT whose
//! `adbin` is the expression's text, and `pg_get_expr` returns that text.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::pg_constraints::{ClassRow, rows_of, with_columns};
use crate::catalog::{ColumnDef, SqlType};
use crate::log::Log;

/// PostgreSQL's oid of `character varying`.
const VARCHAR_OID: i32 = 1043;
/// PostgreSQL's oid of `jsonb` (stored as text).
const JSONB_OID: i32 = 3802;
/// PostgreSQL's oid of `interval` (the emulation shows it as text).
const INTERVAL_OID: i32 = 1186;
/// A type modifier carries this on top of its value (PostgreSQL's VARHDRSZ).
const TYPMOD_HEADER: i32 = 4;

/// The declared type's oid where the Arrow type loses it, and its modifier.
fn declared_type(column: &ColumnDef) -> (Option<i32>, i32) {
    match column.sql_type {
        SqlType::Varchar { max_chars: Some(n) } => (Some(VARCHAR_OID), n as i32 + TYPMOD_HEADER),
        SqlType::Varchar { max_chars: None } => (Some(VARCHAR_OID), -1),
        SqlType::Jsonb => (Some(JSONB_OID), -1),
        SqlType::Interval => (Some(INTERVAL_OID), -1),
        SqlType::Numeric { precision, scale } => (None, ((precision as i32) << 16 | scale as i32) + TYPMOD_HEADER),
        // An array's modifier is its element's (`numeric(12,2)[]`).
        SqlType::Array(ref element) => {
            let element_modifier = declared_type(&ColumnDef::new("", (**element).clone(), true, None)).1;
            (Some(array_oid(element)), element_modifier)
        }
        _ => (None, -1),
    }
}

/// PostgreSQL's oid of the array type of `element` (pg_type's `typarray`).
fn array_oid(element: &SqlType) -> i32 {
    match element {
        SqlType::Boolean => 1000,
        SqlType::SmallInt => 1005,
        SqlType::Int => 1007,
        SqlType::BigInt => 1016,
        SqlType::Real => 1021,
        SqlType::Double => 1022,
        SqlType::Numeric { .. } => 1231,
        SqlType::Text => 1009,
        SqlType::Varchar { .. } => 1015,
        SqlType::Bytea => 1001,
        SqlType::Date => 1182,
        SqlType::Timestamp => 1115,
        SqlType::TimestampTz => 1185,
        SqlType::Interval => 1187,
        SqlType::Jsonb => 3807,
        // Multidimensional arrays are refused at CREATE; PostgreSQL's
        // `anyarray` stands in should one appear.
        SqlType::Array(_) => 2277,
    }
}

/// Each row's Strata column, found by its relation's oid and its name.
fn columns_of<'a>(
    batch: &RecordBatch,
    relations: &'a HashMap<i32, Arc<crate::catalog::RelationDef>>,
) -> DfResult<Vec<Option<&'a ColumnDef>>> {
    let oids = cast(batch.column(batch.schema().index_of("attrelid")?), &DataType::Int32)?;
    let names = cast(batch.column(batch.schema().index_of("attname")?), &DataType::Utf8)?;
    let (oids, names) = (oids.as_primitive::<Int32Type>(), names.as_string::<i32>());
    Ok((0..batch.num_rows())
        .map(|row| {
            let def = relations.get(&oids.value(row))?;
            names.is_valid(row).then(|| def.columns.iter().find(|c| c.name == names.value(row))).flatten()
        })
        .collect())
}

/// Strata's relations by their `pg_class` oid.
fn relations_by_oid(log: &Log, classes: &HashMap<String, ClassRow>) -> HashMap<i32, Arc<crate::catalog::RelationDef>> {
    let catalog = log.catalog();
    classes.iter().filter_map(|(name, class)| Some((class.oid, catalog.get(name)?.clone()))).collect()
}

/// `pg_attribute` rows with Strata columns' declared types, modifiers and `atthasdef`.
pub fn typed_attributes(log: &Log, classes: &HashMap<String, ClassRow>, batch: RecordBatch) -> DfResult<RecordBatch> {
    let relations = relations_by_oid(log, classes);
    let columns = columns_of(&batch, &relations)?;
    let type_at = batch.schema().index_of("atttypid")?;
    let stored_types = cast(batch.column(type_at), &DataType::Int32)?;
    let stored_types = stored_types.as_primitive::<Int32Type>();
    let stored_mods = cast(batch.column(batch.schema().index_of("atttypmod")?), &DataType::Int32)?;
    let stored_mods = stored_mods.as_primitive::<Int32Type>();
    let mut types = Vec::with_capacity(columns.len());
    let mut mods = Vec::with_capacity(columns.len());
    let mut has_default = Vec::with_capacity(columns.len());
    let stored_not_null = batch.column(batch.schema().index_of("attnotnull")?).as_boolean().clone();
    let mut not_null = Vec::with_capacity(columns.len());
    for (row, column) in columns.iter().enumerate() {
        // Declared NOT NULL, whatever the Arrow field says (see `ColumnDef::field`).
        not_null.push(column.map_or(stored_not_null.value(row), |c| !c.nullable));
        let stored = (stored_types.is_valid(row).then(|| stored_types.value(row)), stored_mods.value(row));
        let (type_oid, modifier) = match column {
            Some(column) => {
                let (declared, modifier) = declared_type(column);
                (declared.or(stored.0), modifier)
            }
            None => stored,
        };
        types.push(type_oid);
        mods.push(modifier);
        has_default.push(column.is_some_and(|c| c.default.is_some() || c.serial));
    }
    with_columns(
        &batch,
        &[
            ("atttypid", Arc::new(Int32Array::from(types)) as ArrayRef),
            ("atttypmod", Arc::new(Int32Array::from(mods))),
            ("atthasdef", Arc::new(BooleanArray::from(has_default))),
            ("attnotnull", Arc::new(BooleanArray::from(not_null))),
        ],
    )
}

/// `pg_attrdef` rows for Strata columns with a DEFAULT: `adbin` holds the
/// expression's SQL text, numbered as the emulation's `pg_attribute` numbers the column.
pub fn attrdef_rows(
    log: &Log,
    classes: &HashMap<String, ClassRow>,
    attributes: &[RecordBatch],
    schema: &SchemaRef,
) -> DfResult<RecordBatch> {
    let relations = relations_by_oid(log, classes);
    let (mut relids, mut numbers, mut texts) = (Vec::new(), Vec::new(), Vec::new());
    for batch in attributes {
        let columns = columns_of(batch, &relations)?;
        let oids = cast(batch.column(batch.schema().index_of("attrelid")?), &DataType::Int32)?;
        let attnums = cast(batch.column(batch.schema().index_of("attnum")?), &DataType::Int32)?;
        let (oids, attnums) = (oids.as_primitive::<Int32Type>(), attnums.as_primitive::<Int32Type>());
        for (row, column) in columns.iter().enumerate() {
            let Some(column) = column else { continue };
            // A SERIAL column's, as PostgreSQL shows it (its sequence's name).
            let serial = || {
                let relation = relations.get(&oids.value(row)).map(|def| def.name.as_str()).unwrap_or_default();
                format!("nextval('{relation}_{}_seq'::regclass)", column.name)
            };
            let default = match (&column.default, column.serial) {
                (Some(default), _) => default.clone(),
                (None, true) => serial(),
                (None, false) => continue,
            };
            relids.push(oids.value(row));
            numbers.push(attnums.value(row));
            texts.push(default);
        }
    }
    rows_of(
        schema,
        relids.len(),
        &[
            ("adrelid", Arc::new(Int32Array::from(relids)) as ArrayRef),
            ("adnum", Arc::new(Int32Array::from(numbers))),
            ("adbin", Arc::new(StringArray::from(texts))),
        ],
    )
}

/// `pg_get_expr(adbin, relid [, pretty])`: `adbin` is already the expression's text here.
pub fn pg_get_expr() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgGetExpr { signature: Signature::variadic_any(Volatility::Stable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgGetExpr {
    signature: Signature,
}

impl ScalarUDFImpl for PgGetExpr {
    fn name(&self) -> &str {
        "pg_get_expr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arguments: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let text = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(cast(&text, &DataType::Utf8)?))
    }
}
