//! Statement front end: parse SQL into commands, and rewrite queries before
//! DataFusion plans them.

pub(crate) mod ddl;
pub mod parse;
pub mod rewrite;
