//! The embedding API: open a database on a directory, open sessions, run SQL
//! and get Arrow batches. The server is one user of it.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::execution::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::setup_pg_catalog;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::{Log, STORE_URL};
use crate::query::RelationSchema;
use crate::query::pg_class::PgCatalogWithViews;
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
    /// Views being backfilled and open subscriptions, shown in `strata.*`.
    pub activity: crate::query::Activity,
    pub base_state: SessionState,
    pub config: Config,
    sealer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held by a query string running again after its commit lost a race:
    /// such strings take turns, so that under contention they stop
    /// colliding with each other (see `server/query_string.rs`).
    retry_turn: Arc<tokio::sync::Mutex<()>>,
    /// SERIAL columns' counters.
    pub serials: crate::write::serial::Serials,
}

impl Database {
    /// Opens the database in `config.data_dir`, replaying its log.
    pub async fn open(config: Config) -> Result<Database> {
        let (log, report) = Log::open(&config).await?;
        tracing::info!(
            sealed_through = report.sealed_through.0,
            segments = report.segments,
            replayed_commits = report.replayed_commits,
            state_rows_replayed = report.state_rows_replayed,
            last_offset = report.last_offset.0,
            torn_bytes = report.torn_bytes,
            data_dir = %config.data_dir.display(),
            "log recovered"
        );
        let log = Arc::new(log);
        let mut session_config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, SCHEMA_NAME)
            .with_information_schema(true)
            .with_extension(Arc::new(Limits::from(&config)));
        // Sessions run in UTC: `now()` and TIMESTAMPTZ literals are
        // TIMESTAMPTZ, as in PostgreSQL (DataFusion's default has no zone).
        session_config.options_mut().execution.time_zone = Some(crate::catalog::UTC.into());
        // `1.5` is NUMERIC, as in PostgreSQL (DataFusion reads DOUBLE).
        session_config.options_mut().sql_parser.parse_float_as_decimal = true;
        // The session's own zone, set per statement (see `Session::prepare_at`).
        session_config.options_mut().extensions.insert(crate::session::time_zone::StrataOptions::default());
        let mut context = array_operators_first(session_config);
        let activity = crate::query::Activity::default();
        register_catalog_in(&context, CATALOG_NAME, &log, &activity)?;
        setup_pg_catalog(&context, CATALOG_NAME, EmptyContextProvider).map_err(|e| Error::DataFusion(*e))?;
        let catalog = context.catalog(CATALOG_NAME).ok_or_else(|| Error::Internal("no catalog".into()))?;
        let pg_catalog = catalog.schema("pg_catalog").ok_or_else(|| Error::Internal("no pg_catalog".into()))?;
        let oids = crate::query::pg_sizes::RelationOids::default();
        catalog
            .register_schema("pg_catalog", Arc::new(PgCatalogWithViews::new(pg_catalog, log.clone(), oids.clone())))?;
        for function in crate::query::pg_functions::functions(log.clone(), oids) {
            context.register_udf(function);
        }
        let type_names = crate::query::pg_regtype::TypeNames::read(&context).await?;
        context.register_udf(crate::query::pg_regtype::to_regtype(Arc::new(type_names)));
        crate::query::jsonb::register(&mut context)?;
        crate::query::pg_interval::register(&mut context)?;
        context.register_udaf(crate::query::pg_sum::sum());
        context.register_udaf(crate::query::pg_avg::avg());
        // This rule sums sums (`count(DISTINCT a), sum(b)` as an inner
        // GROUP BY a with sum(b), then the sum of those), and asks `sum` for
        // the type of a sum over the inner one: for a sum of INTs (BIGINT)
        // that is NUMERIC, not the BIGINT planned, and the optimizer refuses
        // the changed schema.
        context.remove_optimizer_rule("single_distinct_aggregation_to_group_by");
        context.add_analyzer_rule(Arc::new(crate::query::text_casts::PostgresTextCasts));
        context.add_analyzer_rule(Arc::new(crate::query::pg_arithmetic::PostgresArithmetic));
        let changes = crate::query::changes::ChangesFunction { log: log.clone() };
        context.register_udtf(crate::query::changes::CHANGES_FUNCTION, Arc::new(changes));
        let as_of = crate::query::as_of::AsOfFunction { log: log.clone() };
        context.register_udtf(crate::query::as_of::AS_OF_FUNCTION, Arc::new(as_of));
        let base_state = context.state();
        let sealer = tokio::spawn(run_sealer(log.clone(), config.clone()));
        let sealer = std::sync::Mutex::new(Some(sealer));
        let database = Database {
            inner: Arc::new(Inner {
                log,
                activity,
                base_state,
                config,
                sealer,
                retry_turn: Default::default(),
                serials: Default::default(),
            }),
        };
        database.restore_views().await?;
        Ok(database)
    }

    /// Rebuilds the operators of every continuous view from its inputs as
    /// they were recovered, before any client can commit. A view that cannot
    /// be rebuilt stops the start: its inputs could not be written safely.
    async fn restore_views(&self) -> Result<()> {
        let catalog = self.inner.log.catalog();
        let mut views: Vec<_> = catalog.relations().filter(|d| d.view.is_some()).cloned().collect();
        views.sort_by_key(|d| d.id);
        for def in views {
            let started = std::time::Instant::now();
            let name = def.name.clone();
            self.session().restore_view(def).await.map_err(|error| {
                Error::Internal(format!("cannot rebuild materialized view \"{name}\" at start: {error}"))
            })?;
            tracing::info!(view = %name, elapsed_ms = started.elapsed().as_millis() as u64, "view rebuilt");
        }
        Ok(())
    }

    pub fn session(&self) -> Session {
        Session::new(self.inner.clone())
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Waits for the turn to run a query string again (see `Inner::retry_turn`).
    pub async fn retry_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.inner.retry_turn.clone().lock_owned().await
    }

    /// Moves on with every committed change of a relation's definition.
    pub(crate) fn catalog_generation(&self) -> u64 {
        self.inner.log.catalog().generation()
    }

    /// Runs every statement in `sql` in a fresh session and returns the rows
    /// of the last one (empty for commands).
    pub async fn execute(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.session().query(sql).await
    }

    /// Makes Strata's relations visible in an application's own DataFusion
    /// context as catalog `name` (schema `public`). Each scan reads at the
    /// latest commit when it is planned; call [`Database::pin_reads`] first
    /// when one query reads several relations and they must agree.
    pub fn register_catalog(&self, context: &SessionContext, name: &str) -> Result<()> {
        register_catalog_in(context, name, &self.inner.log, &self.inner.activity)
    }

    /// Fixes every later read through `context` at the latest commit, so all
    /// relations are seen as of one offset (whole commits only) until the
    /// next call. Returns that offset.
    pub fn pin_reads(&self, context: &SessionContext) -> crate::log::Offset {
        let view = self.inner.log.snapshot();
        let read_offset = view.offset;
        let scope = crate::query::scope::StatementScope { read_offset, tables: view.tables, transaction: None };
        context.state_ref().write().config_mut().set_extension(Arc::new(scope));
        read_offset
    }

    /// Seals every committed row into segments now (what `CHECKPOINT` does).
    pub async fn checkpoint(&self) -> Result<crate::log::SealReport> {
        Ok(self.inner.log.seal().await?)
    }

    /// Stops sealing, finishes queued commits and stops the log writer.
    pub async fn shutdown(&self) {
        let sealer = self.inner.sealer.lock().expect("sealer lock").take();
        if let Some(sealer) = sealer {
            sealer.abort();
            let _ = sealer.await;
        }
        self.inner.log.shutdown().await;
    }
}

/// Seals the tail into segments when it holds `seal_bytes_max` or its
/// oldest rows have waited `seal_age_ms_max`, and applies retention.
async fn run_sealer(log: Arc<Log>, config: Config) {
    let mut last_seal = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(config.seal_check_ms)).await;
        let now = crate::log::CommitTs(chrono::Utc::now().timestamp_micros());
        match log.enforce_retention(now).await {
            Ok(report) if report.segments_dropped + report.snapshots_dropped > 0 => tracing::info!(
                segments = report.segments_dropped,
                snapshots = report.snapshots_dropped,
                "dropped history older than its retention"
            ),
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "applying retention failed; the history stays"),
        }
        match log.merge_small_segments().await {
            Ok(0) => {}
            Ok(merged) => tracing::info!(segments = merged, "merged small segments"),
            Err(error) => tracing::error!(%error, "merging small segments failed; they stay as they are"),
        }
        let tail_bytes = log.tail_bytes();
        let aged = tail_bytes > 0 && last_seal.elapsed().as_millis() as u64 >= config.seal_age_ms_max;
        if tail_bytes < config.seal_bytes_max && !aged {
            continue;
        }
        match log.seal().await {
            Ok(report) => tracing::info!(
                sealed_through = report.sealed_through.0,
                segments = report.segments_written,
                snapshots = report.snapshots_written,
                rows = report.rows,
                wal_files_removed = report.wal_files_removed,
                "sealed tail into segments"
            ),
            Err(error) => tracing::error!(%error, "sealing failed; the tail stays in memory and the WAL"),
        }
        last_seal = std::time::Instant::now();
    }
}

/// Registers the relations as catalog `name`, and the segment store the
/// scans read through, in `context`.
fn register_catalog_in(
    context: &SessionContext,
    name: &str,
    log: &Arc<Log>,
    activity: &crate::query::Activity,
) -> Result<()> {
    let store_url = ObjectStoreUrl::parse(STORE_URL)?;
    context.runtime_env().register_object_store(store_url.as_ref(), log.store().objects.clone());
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(SCHEMA_NAME, Arc::new(RelationSchema::new(log.clone())))?;
    let system = crate::query::SystemSchema::new(log.clone(), activity.clone());
    catalog.register_schema(crate::query::SYSTEM_SCHEMA, Arc::new(system))?;
    context.register_catalog(name, Arc::new(catalog));
    Ok(())
}

/// A context whose array operators are planned before DataFusion's, which
/// would read `tags || '{b}'`'s text as one element, and whose zone rule
/// runs before DataFusion's type coercion. Made before anything
/// is registered: rebuilding a state registers its functions again, in no
/// set order (a function overridden by name could come back under an alias).
fn array_operators_first(config: SessionConfig) -> SessionContext {
    let defaults = SessionContext::new_with_config(config).state();
    let mut planners: Vec<Arc<dyn datafusion::logical_expr::planner::ExprPlanner>> = vec![
        Arc::new(crate::query::pg_array_operators::ArrayOperators),
        Arc::new(crate::query::pg_literals::UnknownOperands),
        Arc::new(crate::query::pg_extract::Extract),
    ];
    planners.extend(defaults.expr_planners().iter().cloned());
    // Before DataFusion's type coercion: see `StoredZoneFirst`.
    let mut rules: Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> = vec![
        Arc::new(crate::query::text_casts::StoredZoneFirst),
        Arc::new(crate::query::pg_settings::SessionSettings),
        Arc::new(crate::query::pg_arithmetic::NumericProductsFirst),
        Arc::new(crate::query::pg_interval::OrderedByLength),
    ];
    rules.extend(defaults.analyzer().rules.iter().cloned());
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(defaults)
        .with_expr_planners(planners)
        .with_analyzer_rules(rules)
        .build();
    SessionContext::new_with_state(state)
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{SessionConfig, SessionContext};

    #[test]
    fn rebuilding_keeps_every_function_under_its_names() {
        let defaults = SessionContext::new_with_config(SessionConfig::new()).state();
        let rebuilt = super::array_operators_first(SessionConfig::new()).state();
        for (name, function) in defaults.scalar_functions() {
            let again = rebuilt.scalar_functions().get(name).map(|f| f.name().to_string());
            assert_eq!(again.as_deref(), Some(function.name()), "{name}");
        }
        assert_eq!(rebuilt.expr_planners().len(), defaults.expr_planners().len() + 3);
    }
}
