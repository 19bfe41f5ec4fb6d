//! Strata: a stream database whose source of truth is one append-only,
//! durable log of events, queried with SQL over the PostgreSQL wire protocol.
//!
//! Write path: a statement (`INSERT`, `COPY`) is a command until accepted —
//! [`write`] checks it — then [`log::Log`] appends it as one commit: offsets
//! and a commit time assigned, framed into the WAL, fsynced with the commits
//! around it (group commit), made visible, acknowledged.
//!
//! Read path: [`session::Session`] fixes a read offset per statement;
//! [`query`] exposes each relation to DataFusion as a table reading the log
//! as of that offset, so a statement sees whole commits only.
//!
//! Embedding: [`Database::open`] on a directory, [`Database::session`] to run
//! SQL and get Arrow batches, [`Database::register_catalog`] to use Strata's
//! relations from an application's own DataFusion `SessionContext`.

pub mod catalog;
pub mod config;
pub mod database;
pub mod error;
pub mod log;
pub mod pg_array;
pub mod pg_binary;
pub mod pg_text;
pub mod query;
pub mod server;
pub mod session;
pub mod sql;
pub mod table;
pub mod view;
pub mod write;

pub use config::Config;
pub use database::Database;
pub use error::{Error, Result};
