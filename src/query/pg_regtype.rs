//! `to_regtype(name)`: a type's oid from its name as PostgreSQL reads one
//! (`integer`, `int4`, `pg_catalog.text`, `character varying(10)`,
//! `text[]`), or NULL where no type has it. psycopg's `TypeInfo.fetch`
//! asks it, and SQLAlchemy runs that on every new connection (for hstore).
//! The names are the emulated `pg_type`'s, read once when the database opens.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// Type oids by `pg_type.typname`.
#[derive(Debug, Default)]
pub struct TypeNames(HashMap<String, i32>);

impl TypeNames {
    /// Every type the session's `pg_catalog.pg_type` lists.
    pub async fn read(context: &SessionContext) -> Result<TypeNames> {
        let rows = context
            .sql("SELECT oid, typname FROM pg_catalog.pg_type")
            .await
            .map_err(Error::from_datafusion)?
            .collect()
            .await
            .map_err(Error::from_datafusion)?;
        let mut names = HashMap::new();
        for batch in rows {
            let oids = datafusion::arrow::compute::cast(batch.column(0), &DataType::Int32)?;
            let oids = oids.as_primitive::<Int32Type>();
            let typnames = datafusion::arrow::compute::cast(batch.column(1), &DataType::Utf8)?;
            let typnames = typnames.as_string::<i32>();
            for row in (0..batch.num_rows()).filter(|&row| oids.is_valid(row) && typnames.is_valid(row)) {
                names.insert(typnames.value(row).to_string(), oids.value(row));
            }
        }
        Ok(TypeNames(names))
    }

    /// The oid of the type `name` names, as PostgreSQL reads a type name.
    fn resolve(&self, name: &str) -> Option<i32> {
        let mut name = name.trim();
        let mut array = false;
        while let Some(element) = name.strip_suffix(']').and_then(|n| n.rsplit_once('[')).map(|(e, _)| e.trim_end()) {
            (name, array) = (element, true);
        }
        if let Some(unqualified) = name.get(..11).filter(|p| p.eq_ignore_ascii_case("pg_catalog.")).map(|_| &name[11..])
        {
            name = unqualified;
        }
        let typname = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            // A quoted name is the type's own (`"char"` is not `char`).
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => {
                // Modifiers (`varchar(10)`, `numeric(10, 2)`) name no other type.
                let bare = name.split_once('(').map_or(name, |(bare, _)| bare);
                let words = bare.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
                sql_spelling(&words).unwrap_or(&words).to_string()
            }
        };
        match array {
            true => self.0.get(&format!("_{typname}")).copied(),
            false => self.0.get(&typname).copied(),
        }
    }
}

/// The `pg_type` name of a type SQL spells otherwise.
fn sql_spelling(words: &str) -> Option<&'static str> {
    Some(match words {
        "integer" | "int" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "character" | "char" => "bpchar",
        "decimal" => "numeric",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "time with time zone" => "timetz",
        "time without time zone" => "time",
        "bit varying" => "varbit",
        _ => return None,
    })
}

pub fn to_regtype(names: Arc<TypeNames>) -> ScalarUDF {
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |arguments: &[ColumnarValue]| {
            let texts = ColumnarValue::values_to_arrays(arguments)?;
            let texts = datafusion::arrow::compute::cast(&texts[0], &DataType::Utf8)?;
            let oids: Int32Array = texts.as_string::<i32>().iter().map(|name| names.resolve(name?)).collect();
            Ok(match arguments[0] {
                ColumnarValue::Scalar(_) => {
                    ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&oids, 0)?)
                }
                ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(oids)),
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_read_as_postgresql_reads_them() {
        let names = TypeNames(
            [("int4", 23), ("_int4", 1007), ("varchar", 1043), ("_text", 1009), ("char", 18), ("bpchar", 1042)]
                .into_iter()
                .map(|(name, oid)| (name.to_string(), oid))
                .collect(),
        );
        for (name, oid) in [
            ("int4", Some(23)),
            ("INTEGER", Some(23)),
            (" pg_catalog.int4 ", Some(23)),
            ("integer[]", Some(1007)),
            ("int4[3]", Some(1007)),
            ("character  varying(10)", Some(1043)),
            ("pg_catalog.text []", Some(1009)),
            ("\"char\"", Some(18)),
            ("char(2)", Some(1042)),
            ("\"INT4\"", None),
            ("hstore", None),
            ("", None),
        ] {
            assert_eq!(names.resolve(name), oid, "{name}");
        }
    }
}
