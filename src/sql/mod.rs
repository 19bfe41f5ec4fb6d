//! Statement front end: parse SQL into commands, and rewrite queries before
//! DataFusion plans them.

mod array_subquery;
pub mod as_of;
mod ast;
pub mod column_names;
mod compat;
pub(crate) mod ddl;
pub mod default_keyword;
pub mod dialect;
mod exists;
mod indexes;
pub mod insert_columns;
mod insert_values;
mod join_columns;
pub mod jsonb_sets;
mod lateral;
mod numeric_literals;
pub mod parse;
mod psql;
pub mod rewrite;
pub mod subscribe;
pub mod windows;
