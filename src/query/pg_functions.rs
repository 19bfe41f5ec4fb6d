//! PostgreSQL functions that clients call and the pg_catalog emulation does
//! not provide: `version()`, `pg_typeof()`, `current_setting()`, and what psql's `\d+`, `\dt+`,
//! `\l+`, `\dn+` and `\db` ask for.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};

/// Every function here and in `pg_constraints.rs`, `pg_columns.rs`,
/// `pg_visibility.rs`, `pg_to_char.rs` and `pg_age.rs`, to register in a
/// session.
pub fn functions(log: Arc<crate::log::Log>, oids: super::pg_sizes::RelationOids) -> Vec<ScalarUDF> {
    let mut functions = vec![
        version(),
        no_description("col_description", vec![DataType::Int64, DataType::Int64]),
        no_description("obj_description", vec![DataType::Int64, DataType::Utf8]),
        no_description("shobj_description", vec![DataType::Int64, DataType::Utf8]),
        no_description("pg_get_serial_sequence", vec![DataType::Utf8, DataType::Utf8]),
        no_description("pg_get_triggerdef", vec![DataType::Int64, DataType::Boolean]),
        pg_size_pretty(),
        ScalarUDF::new_from_impl(PgTypeof { signature: Signature::any(1, Volatility::Immutable) }),
        no_location(),
        super::pg_settings::current_setting(),
        super::pg_settings::set_config(),
    ];
    functions.extend(super::pg_sizes::functions(log.clone(), oids));
    functions.extend(super::pg_constraints::functions(log));
    functions.push(super::pg_columns::pg_get_expr());
    functions.extend(super::pg_visibility::functions());
    functions.extend(standalone());
    functions
}

/// The functions above that need no database, which column DEFAULTs can
/// call too (`DEFAULT gen_random_uuid()`).
pub fn standalone() -> Vec<ScalarUDF> {
    vec![
        super::pg_to_char::to_char(),
        super::pg_age::age(),
        super::pg_extract::date_part(),
        super::pg_array_functions::array_length(),
        super::pg_literals::coalesce(),
        super::pg_array_functions::array_remove(),
        super::pg_array_functions::array_to_string(),
        // PostgreSQL's name for a random (version 4) UUID, as text.
        datafusion::functions::string::uuid().as_ref().clone().with_aliases(["gen_random_uuid"]),
    ]
}

/// `version()` as PostgreSQL clients expect it: the PostgreSQL version
/// Strata speaks, then what it really is.
fn version() -> ScalarUDF {
    let text = format!(
        "PostgreSQL 15.0 (Strata {}) on {}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// `pg_typeof(x)`: the name of the argument's type, as PostgreSQL names
/// it (`integer`, `numeric`, `timestamp with time zone`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let data_type = args.arg_fields[0].data_type();
        let name = match crate::view::sql_type_of(&args.arg_fields[0]) {
            Some(crate::catalog::SqlType::Numeric { .. }) => "numeric".to_string(),
            Some(_) if *data_type == DataType::Null => "unknown".to_string(),
            Some(sql_type) => sql_type.sql_name(),
            None => data_type.to_string(),
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// A comment on an object. Strata has no COMMENT ON, so there is none:
/// NULL, as PostgreSQL returns for an object without one. Also the
/// sequence a column takes its values from (`pg_get_serial_sequence`, which
/// SQLAlchemy's inspector asks): Strata has no sequences; and a trigger's
/// definition (psql's `\d` asks for a table in a foreign key): Strata has
/// no triggers.
fn no_description(name: &str, arguments: Vec<DataType>) -> ScalarUDF {
    create_udf(
        name,
        arguments,
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    )
}

/// `pg_tablespace_location(oid)`: the default tablespaces have no
/// directory of their own, which PostgreSQL shows as an empty location.
fn no_location() -> ScalarUDF {
    create_udf(
        "pg_tablespace_location",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(String::new()))))),
    )
}

/// `pg_size_pretty(bigint)`: bytes, kB, MB, GB, TB or PB, as PostgreSQL 15
/// prints them.
fn pg_size_pretty() -> ScalarUDF {
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|arguments: &[ColumnarValue]| size_pretty_column(&arguments[0])),
    )
}

fn size_pretty_column(argument: &ColumnarValue) -> DfResult<ColumnarValue> {
    let scalar = matches!(argument, ColumnarValue::Scalar(_));
    let sizes = datafusion::arrow::compute::cast(&argument.to_array(1)?, &DataType::Int64)?;
    let text: StringArray = sizes.as_primitive::<Int64Type>().iter().map(|size| size.map(size_pretty)).collect();
    super::shaped(scalar, Arc::new(text))
}

/// PostgreSQL's rule: each unit is used below 10 kB (bytes) or 20 of the
/// next unit's worth (the rest), halves rounded away from zero.
fn size_pretty(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes.unsigned_abs() < 10 * 1024 {
        return format!("{bytes} bytes");
    }
    // Kept in half units, so the last halving can round.
    let mut halves = bytes / 512;
    for (index, unit) in UNITS.iter().enumerate() {
        if halves.unsigned_abs() < 20 * 1024 - 1 || index == UNITS.len() - 1 {
            let rounded = (halves + if halves < 0 { -1 } else { 1 }) / 2;
            return format!("{rounded} {unit}");
        }
        halves /= 1024;
    }
    unreachable!("the last unit returns")
}

#[cfg(test)]
mod tests {
    use super::size_pretty;

    /// Expected values printed by PostgreSQL 15's `pg_size_pretty`.
    #[test]
    fn sizes_print_as_postgresql_prints_them() {
        let cases = [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (-10240, "-10 kB"),
            (10485247, "10239 kB"),
            (10485248, "10 MB"),
            (20971520, "20 MB"),
            (1_000_000_000, "954 MB"),
            (1_073_741_824, "1024 MB"),
            (21_474_836_480, "20 GB"),
            (i64::MAX, "8192 PB"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(size_pretty(bytes), expected, "pg_size_pretty({bytes})");
        }
    }
}
