//! The sizes psql's `\dt+`, `\dm+` and `\l+` show: `pg_table_size(oid)`,
//! `pg_relation_size(oid)`, `pg_total_relation_size(oid)` and
//! `pg_database_size(name)`. A relation's size is what
//! [`Log::relation_bytes`] counts (segments, snapshots, unsealed rows, a
//! view's state); the database's is the sum over its relations.
//!
//! The emulated catalog assigns object ids, and a function sees only the id:
//! each read of `pg_class` (psql's queries join it) records which relation
//! each id names, in [`RelationOids`]. An id not seen there is NULL, as for
//! an object that does not exist.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use crate::log::Log;

/// Relation names by the object id the emulated `pg_class` gave them.
#[derive(Debug, Clone, Default)]
pub struct RelationOids(Arc<RwLock<HashMap<i64, String>>>);

impl RelationOids {
    /// Records the ids of the relations in `pg_class` rows.
    pub fn record(&self, classes: &HashMap<String, super::pg_constraints::ClassRow>) {
        let named = classes.iter().map(|(name, row)| (row.oid as i64, name.clone())).collect();
        *self.0.write().expect("relation oids lock") = named;
    }

    fn name(&self, oid: i64) -> Option<String> {
        self.0.read().expect("relation oids lock").get(&oid).cloned()
    }
}

pub fn functions(log: Arc<Log>, oids: RelationOids) -> Vec<ScalarUDF> {
    let mut functions: Vec<ScalarUDF> = ["pg_table_size", "pg_relation_size", "pg_total_relation_size"]
        .into_iter()
        .map(|name| relation_size(name, log.clone(), oids.clone()))
        .collect();
    functions.push(database_size(log));
    functions.push(relation_name(oids));
    functions
}

/// `strata_relation_name(oid)`: the name of the relation with that
/// `pg_class` oid, where psql prints an oid cast to `regclass` (which
/// prints as digits here).
fn relation_name(oids: RelationOids) -> ScalarUDF {
    create_udf(
        "strata_relation_name",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |arguments: &[ColumnarValue]| {
            let scalar = matches!(arguments[0], ColumnarValue::Scalar(_));
            let given = datafusion::arrow::compute::cast(&arguments[0].to_array(1)?, &DataType::Int64)?;
            let names: datafusion::arrow::array::StringArray =
                given.as_primitive::<Int64Type>().iter().map(|oid| oid.and_then(|oid| oids.name(oid))).collect();
            super::shaped(scalar, Arc::new(names))
        }),
    )
}

/// A relation's bytes by its object id (PostgreSQL's three differ by which
/// forks and indexes they count; a Strata relation has one of each).
fn relation_size(name: &str, log: Arc<Log>, oids: RelationOids) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Stable,
        Arc::new(move |arguments: &[ColumnarValue]| {
            let size = |oid: i64| {
                let def = log.relation(&oids.name(oid)?)?;
                Some(log.relation_bytes(def.id) as i64)
            };
            let scalar = matches!(arguments[0], ColumnarValue::Scalar(_));
            let oids = datafusion::arrow::compute::cast(&arguments[0].to_array(1)?, &DataType::Int64)?;
            let sizes: Int64Array = oids.as_primitive::<Int64Type>().iter().map(|oid| oid.and_then(size)).collect();
            super::shaped(scalar, Arc::new(sizes))
        }),
    )
}

/// The database's bytes, whatever its name (Strata serves one).
fn database_size(log: Arc<Log>) -> ScalarUDF {
    create_udf(
        "pg_database_size",
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Stable,
        Arc::new(move |arguments: &[ColumnarValue]| {
            let total: u64 = log.catalog().relations().map(|def| log.relation_bytes(def.id)).sum();
            let total = ScalarValue::Int64(Some(total as i64));
            Ok(match &arguments[0] {
                ColumnarValue::Scalar(_) => ColumnarValue::Scalar(total),
                ColumnarValue::Array(array) => ColumnarValue::Array(total.to_array_of_size(array.len())?),
            })
        }),
    )
}
