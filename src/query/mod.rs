//! DataFusion integration: Strata's relations as a catalog, scans that read
//! the log at the statement's offset, and inserts that append to it.

pub mod as_of;
pub mod changes;
pub mod defaults;
pub mod jsonb;
mod pg_age;
pub(crate) mod pg_arithmetic;
pub mod pg_array_functions;
pub mod pg_array_operators;
pub(crate) mod pg_avg;
pub mod pg_class;
mod pg_columns;
mod pg_constraints;
pub mod pg_extract;
pub(crate) mod pg_functions;
pub(crate) mod pg_interval;
pub(crate) mod pg_literals;
pub mod pg_regtype;
pub(crate) mod pg_settings;
pub(crate) mod pg_sizes;
pub(crate) mod pg_sum;
mod pg_to_char;
mod pg_visibility;
mod provider;
mod prune;
pub mod read_types;
pub mod schema;
pub mod scope;
mod sink;
mod system;
pub mod table;
pub(crate) mod text_casts;

pub use provider::RelationTable;
pub use schema::RelationSchema;
pub use system::{Activity, SYSTEM_SCHEMA, SubscriptionProgress, Subscriptions, SystemSchema};

/// A scalar function's result `array`: one value when its arguments were
/// single values (`scalar`), the column otherwise.
pub(crate) fn shaped(
    scalar: bool,
    array: datafusion::arrow::array::ArrayRef,
) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    Ok(match scalar {
        true => ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&array, 0)?),
        false => ColumnarValue::Array(array),
    })
}
