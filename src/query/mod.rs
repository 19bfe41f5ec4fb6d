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
pub mod pg_class;
mod pg_columns;
mod pg_constraints;
pub(crate) mod pg_functions;
pub(crate) mod pg_interval;
pub(crate) mod pg_sum;
mod pg_to_char;
mod pg_visibility;
mod provider;
mod prune;
pub mod read_types;
mod schema;
pub mod scope;
mod sink;
mod system;
pub mod table;
pub(crate) mod text_casts;

pub use provider::RelationTable;
pub use schema::RelationSchema;
pub use system::{Activity, SYSTEM_SCHEMA, SubscriptionProgress, Subscriptions, SystemSchema};
