//! What psql's `\df`, `\dT`, `\dD`, `\do`, `\dc` and `\dF` ask of objects
//! the emulated catalog lists: whether the search path finds them, and a
//! function's argument types; and the `oid[]` asyncpg's type lookup reads.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array, ListArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result as DfResult, config::ConfigOptions};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, Volatility, create_udf};

/// The kinds of object psql asks `pg_<kind>_is_visible(oid)` of.
const VISIBLE_KINDS: [&str; 7] = ["function", "type", "operator", "conversion", "collation", "ts_config", "opclass"];

pub fn functions() -> Vec<ScalarUDF> {
    let mut functions: Vec<ScalarUDF> = VISIBLE_KINDS.iter().map(|kind| visible(kind)).collect();
    functions.push(argument_types());
    functions.push(oid_array());
    functions
}

/// `pg_<kind>_is_visible(oid)`: true. Every object the emulated catalog
/// has is PostgreSQL's own, in `pg_catalog` (searched first, so nothing
/// hides it) or `information_schema` (which psql's queries leave out by
/// name); Strata has no CREATE FUNCTION, TYPE or OPERATOR of its own.
fn visible(kind: &str) -> ScalarUDF {
    create_udf(
        &format!("pg_{kind}_is_visible"),
        vec![DataType::Int64],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|arguments: &[ColumnarValue]| {
            Ok(match &arguments[0] {
                ColumnarValue::Scalar(_) => ColumnarValue::Scalar(true.into()),
                ColumnarValue::Array(oids) => {
                    ColumnarValue::Array(Arc::new(datafusion::arrow::array::BooleanArray::from(vec![true; oids.len()])))
                }
            })
        }),
    )
}

/// `strata_argument_types(proargtypes)`: a function's argument types as
/// `format_type` names them, comma-separated, from `pg_proc.proargtypes`
/// (text of space-separated type oids in the emulation). psql's
/// `pg_get_function_arguments(p.oid)` becomes this (see `sql/psql.rs`).
/// PostgreSQL also writes `VARIADIC` and argument names and defaults,
/// which the emulated `pg_proc` does not hold.
pub const ARGUMENT_TYPES: &str = "strata_argument_types";

fn argument_types() -> ScalarUDF {
    create_udf(
        ARGUMENT_TYPES,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|arguments: &[ColumnarValue]| {
            let lists = ColumnarValue::values_to_arrays(arguments)?;
            let lists = datafusion::arrow::compute::cast(&lists[0], &DataType::Utf8)?;
            let lists = lists.as_string::<i32>();
            let oids: Vec<Vec<i32>> = (0..lists.len())
                .map(|i| {
                    if lists.is_null(i) {
                        return Vec::new();
                    }
                    lists.value(i).split_whitespace().filter_map(|oid| oid.parse().ok()).collect()
                })
                .collect();
            let names = type_names(oids.iter().flatten().copied().collect())?;
            let mut next = 0;
            let text: StringArray = oids
                .iter()
                .enumerate()
                .map(|(i, list)| {
                    let joined = names[next..next + list.len()].join(", ");
                    next += list.len();
                    lists.is_valid(i).then_some(joined)
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(text)))
        }),
    )
}

/// `format_type(oid, NULL)` of each oid, by the emulation's own function.
fn type_names(oids: Vec<i32>) -> DfResult<Vec<String>> {
    let format_type = datafusion_pg_catalog::pg_catalog::format_type::create_format_type_udf();
    let rows = oids.len();
    let oids = Arc::new(Int32Array::from(oids));
    let typmods = Arc::new(Int32Array::new_null(rows));
    let result = format_type.invoke_with_args(ScalarFunctionArgs {
        args: vec![ColumnarValue::Array(oids), ColumnarValue::Array(typmods)],
        arg_fields: vec![
            Arc::new(Field::new("oid", DataType::Int32, true)),
            Arc::new(Field::new("typmod", DataType::Int32, true)),
        ],
        number_rows: rows,
        return_field: Arc::new(Field::new("format_type", DataType::Utf8, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })?;
    let names = result.into_array(rows)?;
    let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
    let names = names.as_string::<i32>();
    Ok((0..rows).map(|i| names.value(i).to_string()).collect())
}

/// `strata_oid_array(integer[])`: the same array, described to clients as
/// `oid[]`. Oids are INTEGERs here, marked as oids where a catalog column
/// holds them, and `array_agg` drops the mark: asyncpg's type lookup
/// aggregates a composite type's attribute types, and would look up the
/// `integer[]` it was told of with the same query, without end (see
/// `sql/psql.rs`, which wraps that aggregate in this).
pub const OID_ARRAY: &str = "strata_oid_array";

fn oid_array() -> ScalarUDF {
    let marked = Arc::new(
        Field::new_list_field(DataType::Int32, true)
            .with_metadata([(arrow_pg::datatypes::PG_OID_ALIAS_KEY.to_string(), "oid".to_string())].into()),
    );
    let returned = DataType::List(marked.clone());
    create_udf(
        OID_ARRAY,
        vec![DataType::new_list(DataType::Int32, true)],
        returned,
        Volatility::Immutable,
        Arc::new(move |arguments: &[ColumnarValue]| {
            let lists = ColumnarValue::values_to_arrays(arguments)?;
            let (_, offsets, values, nulls) = lists[0].as_list::<i32>().clone().into_parts();
            Ok(ColumnarValue::Array(Arc::new(ListArray::try_new(marked.clone(), offsets, values, nulls)?)))
        }),
    )
}
