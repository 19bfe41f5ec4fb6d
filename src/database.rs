//! The embedding API: open a database on a directory, open sessions, run SQL
//! and get Arrow batches. The server is one user of it.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::common::ScalarValue;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::setup_pg_catalog;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::query::RelationSchema;
use crate::session::Session;
use crate::write::Limits;

/// Name of the catalog (database) Strata presents; any database name a client
/// asks for connects to it.
pub const CATALOG_NAME: &str = "strata";
pub const SCHEMA_NAME: &str = "public";

#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub log: Arc<Log>,
    pub base_state: SessionState,
    pub config: Config,
}

impl Database {
    /// Opens the database in `config.data_dir`, replaying its log.
    pub async fn open(config: Config) -> Result<Database> {
        let opened = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Log::open(&config))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??
        };
        let (log, report) = opened;
        tracing::info!(
            commits = report.commits,
            last_offset = report.last_offset.0,
            torn_bytes = report.torn_bytes,
            data_dir = %config.data_dir.display(),
            "log recovered"
        );
        let log = Arc::new(log);
        let session_config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, SCHEMA_NAME)
            .with_information_schema(true)
            .with_extension(Arc::new(Limits::from(&config)));
        let context = SessionContext::new_with_config(session_config);
        register_catalog_in(&context, CATALOG_NAME, &log)?;
        setup_pg_catalog(&context, CATALOG_NAME, EmptyContextProvider)
            .map_err(|e| Error::DataFusion(*e))?;
        context.register_udf(version_udf());
        let base_state = context.state();
        Ok(Database {
            inner: Arc::new(Inner {
                log,
                base_state,
                config,
            }),
        })
    }

    pub fn session(&self) -> Session {
        Session::new(self.inner.clone())
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs every statement in `sql` in a fresh session and returns the rows
    /// of the last one (empty for commands).
    pub async fn execute(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.session().query(sql).await
    }

    /// Makes Strata's relations visible in an application's own DataFusion
    /// context as catalog `name` (schema `public`), read at the latest commit.
    pub fn register_catalog(&self, context: &SessionContext, name: &str) -> Result<()> {
        register_catalog_in(context, name, &self.inner.log)
    }

    /// Finishes queued commits and stops the log writer.
    pub async fn shutdown(&self) {
        self.inner.log.shutdown().await;
    }
}

/// `version()` as PostgreSQL clients expect it: the PostgreSQL version
/// Strata speaks, then what it really is.
fn version_udf() -> ScalarUDF {
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

fn register_catalog_in(context: &SessionContext, name: &str, log: &Arc<Log>) -> Result<()> {
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(SCHEMA_NAME, Arc::new(RelationSchema::new(log.clone())))?;
    context.register_catalog(name, Arc::new(catalog));
    Ok(())
}
