//! One client's session: runs commands, holds its open transaction and its
//! settings. Every statement reads as of one offset fixed when it starts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::DataFrame;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;

mod blocks;
mod created;
mod cursor;
mod foreign_keys;
mod insert;
mod read_only;
mod serial;
mod settings;
pub(crate) use settings::canonical_setting;
pub mod subscribe;
pub mod time_zone;
mod view;

pub use subscribe::Subscription;

pub use insert::has_clauses;

use crate::catalog::RelationKind;
use crate::catalog::{ColumnDef, RelationDef, SqlType};
use crate::database::Inner;
use crate::error::{Error, Notice, Result};
use crate::log::{Change, ColumnChange, Offset, ReadView};
use crate::query::scope::{StatementScope, Transaction};
use crate::sql::as_of::{VersionBound, rewrite_as_of, version_offsets};
use crate::sql::column_names::display_schema;
use crate::sql::parse::{Command, parse};
use crate::sql::rewrite::{cte_names, rewrite};
use crate::table::TableWrite;
use crate::table::dml::{DmlQuery, Found, select_targets, split_found};
use crate::table::keyed_update::{CompiledSets, Keyed, KeyedUpdate};
use crate::table::state::TableCodec;
use crate::table::write::commit_or_buffer;
use crate::write::copy::{CopyIn, CopyOptions};
use crate::write::returning::{Returned, returning};
use crate::write::values::values_rows;
use crate::write::{Limits, append_or_buffer, check_rows};
use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::{concat_batches, take_record_batch};

/// What a command produced.
pub enum Outcome {
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// A command tag as PostgreSQL spells it (`INSERT 0 3`, `CREATE STREAM`).
    Done {
        tag: String,
        rows: Option<usize>,
    },
    TransactionStarted,
    TransactionEnded {
        tag: &'static str,
    },
    /// The client is to send COPY data next.
    CopyIn(Box<CopyIn>),
    /// Rows to send the client as COPY data (`COPY … TO STDOUT`).
    CopyOut {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        options: CopyOptions,
    },
    /// A subscription's rows go to the client as COPY data until it cancels.
    Subscribe(Box<Subscription>),
    /// A write's RETURNING rows; the tag (`INSERT 0`, `UPDATE`) takes their count.
    Returned {
        tag: &'static str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
}

/// PostgreSQL's warning for COMMIT or ROLLBACK outside a transaction block.
fn no_transaction() -> Notice {
    Notice::warning("25P01", "there is no transaction in progress".into())
}

/// How many times an autocommit statement is run again when another commit
/// changed the rows it decided on.
pub(crate) const RETRIES_MAX: usize = 16;

/// How long to wait before running a statement (or a query string) again
/// the `attempt`th time: a random part of a span that doubles with each
/// attempt, so that writers that collided do not collide again in step.
pub(crate) fn retry_backoff(attempt: usize) -> std::time::Duration {
    use std::hash::BuildHasher;
    let span_micros = (100u64 << attempt.min(9)).min(50_000);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    std::time::Duration::from_micros(random % (span_micros + 1))
}

pub struct Session {
    db: Arc<Inner>,
    transaction: Option<Arc<Mutex<Transaction>>>,
    settings: BTreeMap<String, String>,
    /// Open cursors (`DECLARE … CURSOR FOR SUBSCRIBE | query`), by name.
    cursors: HashMap<String, cursor::Cursor>,
    /// Transaction blocks begun, numbering the current one (for its cursors).
    blocks_begun: u64,
    /// Warnings and notices for the client, sent before the statement's result.
    notices: Vec<Notice>,
    /// Settings changed by SET or RESET that clients track, as (reported
    /// name, value): sent to the client as ParameterStatus, as PostgreSQL does.
    reports: Vec<(&'static str, String)>,
    /// The SET expressions of this session's UPDATEs by key, compiled.
    compiled_sets: CompiledSets,
    /// The TimeZone as Arrow spells it (`settings` keeps it as written).
    zone: String,
    /// The zone the client asked for at startup, as written and for Arrow:
    /// what RESET returns to.
    startup_zone: Option<(String, String)>,
    /// Other settings the client's startup packet gave (`application_name`):
    /// their values until SET, and what RESET returns to.
    startup_settings: BTreeMap<String, String>,
    /// The open transaction block's record of the settings, to undo its SETs.
    block_settings: Option<settings::BlockSettings>,
}

/// Session parameters reported by SHOW, with PostgreSQL's spelling.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    (read_only::DEFAULT_READ_ONLY, "off"),
    // Every transaction reads one snapshot, whatever level it asks for.
    ("default_transaction_isolation", "repeatable read"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    // No JIT here; asyncpg turns it off before reading array types.
    ("jit", "off"),
    ("intervalstyle", "postgres"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "repeatable read"),
];

/// Settings PostgreSQL reports to the client whenever they change
/// (`GUC_REPORT`), by lower-case name, with the name reported.
/// Only those Strata follows: a DateStyle or client_encoding reported
/// would make clients read output Strata does not write that way.
const REPORTED_SETTINGS: &[(&str, &str)] = &[("application_name", "application_name"), ("timezone", "TimeZone")];

/// A session parameter's value before any SET, by its lower-case name.
pub fn default_setting(name: &str) -> Option<&'static str> {
    DEFAULT_SETTINGS.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

impl Session {
    pub(crate) fn new(db: Arc<Inner>) -> Session {
        let settings = DEFAULT_SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Session {
            db,
            transaction: None,
            settings,
            cursors: HashMap::new(),
            blocks_begun: 0,
            notices: Vec::new(),
            reports: Vec::new(),
            compiled_sets: CompiledSets::default(),
            zone: time_zone::DEFAULT_ZONE.to_string(),
            startup_zone: None,
            startup_settings: BTreeMap::new(),
            block_settings: None,
        }
    }

    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// The warnings and notices of the statements run since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The tracked settings changed since the last call, with their values.
    pub fn take_reports(&mut self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.reports)
    }

    /// Runs every statement and returns the rows of the last (collected).
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut last = Vec::new();
        for command in parse(sql)? {
            last = match self.execute(command, None).await? {
                Outcome::Rows { mut stream, schema } => {
                    let mut batches = Vec::new();
                    while let Some(batch) = stream.next().await {
                        batches.push(batch.map_err(Error::from_datafusion)?);
                    }
                    shown(&schema, batches)?
                }
                Outcome::CopyIn(_) | Outcome::CopyOut { .. } => {
                    return Err(Error::FeatureNotSupported("COPY FROM STDIN and TO STDOUT need a client".into()));
                }
                Outcome::Subscribe(_) => {
                    return Err(Error::FeatureNotSupported("SUBSCRIBE needs a client to stream to".into()));
                }
                Outcome::Returned { schema, batches, .. } => shown(&schema, batches)?,
                _ => Vec::new(),
            };
        }
        Ok(last)
    }

    /// Runs one command. A failure inside a transaction block marks it failed.
    pub async fn execute(&mut self, command: Command, params: Option<&ParamValues>) -> Result<Outcome> {
        let result = self.execute_inner(command, params).await.map(|outcome| self.in_time_zone(outcome));
        let result = result.map(|outcome| self.failing_block(outcome));
        if result.is_err()
            && let Some(transaction) = &self.transaction
        {
            transaction.lock().expect("transaction lock").failed = true;
        }
        result
    }

    /// Rows computed as they are sent fail the open transaction block if
    /// computing them fails (`SELECT 1/0` inside BEGIN), as an error
    /// returned by `execute` does.
    fn failing_block(&self, outcome: Outcome) -> Outcome {
        let Some(transaction) = self.transaction.clone() else { return outcome };
        let failing = move |stream: SendableRecordBatchStream| -> SendableRecordBatchStream {
            let schema = stream.schema();
            let stream = stream.inspect(move |batch| {
                if batch.is_err() {
                    transaction.lock().expect("transaction lock").failed = true;
                }
            });
            Box::pin(RecordBatchStreamAdapter::new(schema, stream))
        };
        match outcome {
            Outcome::Rows { schema, stream } => Outcome::Rows { schema, stream: failing(stream) },
            Outcome::CopyOut { schema, stream, options } => {
                Outcome::CopyOut { schema, stream: failing(stream), options }
            }
            other => other,
        }
    }

    async fn execute_inner(&mut self, command: Command, params: Option<&ParamValues>) -> Result<Outcome> {
        if self.transaction_failed()
            && !matches!(command, Command::Rollback | Command::Commit | Command::RollbackToSavepoint { .. })
        {
            return Err(Error::TransactionAborted);
        }
        self.refuse_write_if_read_only(&command)?;
        match command {
            Command::CreateRelation {
                kind,
                name,
                columns,
                primary_key,
                checks,
                uniques,
                foreign_keys,
                retention,
                if_not_exists,
            } => {
                let tag = format!("CREATE {}", kind.noun().to_uppercase());
                crate::query::defaults::check_defaults(&columns).await?;
                let table = foreign_keys::NewTable {
                    name: &name,
                    columns: &columns,
                    primary_key: &primary_key,
                    checks: &checks,
                    uniques: &uniques,
                };
                let foreign_keys = match if_not_exists && self.relation(&name).is_some() {
                    true => Vec::new(), // Nothing is created.
                    false => self.foreign_keys(&table, foreign_keys)?,
                };
                let change = Change::CreateRelation {
                    name,
                    kind,
                    columns,
                    primary_key,
                    checks,
                    uniques,
                    foreign_keys,
                    retention,
                    if_not_exists,
                    provisional: None,
                };
                if self.transaction.is_some() {
                    return self.create_in_block(change, &tag);
                }
                self.db.log.commit(vec![change]).await?;
                Ok(done(&tag))
            }
            Command::RenameRelation { kind, name, new_name, if_exists } => {
                self.alter(kind, Change::RenameRelation { name, kind, new_name, if_exists }).await
            }
            Command::AlterColumns { kind, name, if_exists, mut change } => {
                if let ColumnChange::Add { column, .. } = &mut change {
                    self.prepare_added_column(&name, column).await?;
                }
                self.alter(kind, Change::AlterColumns { name, kind, if_exists, change }).await
            }
            Command::SetRetention { kind, name, retention, if_exists } => {
                self.alter(kind, Change::SetRetention { name, kind, retention, if_exists }).await
            }
            Command::AlterIndexes { changes, tag } => {
                let changes: Vec<Change> = changes.into_iter().map(Change::AlterIndexes).collect();
                if self.transaction.is_none() {
                    self.db.log.commit(changes).await?;
                    return Ok(done(tag));
                }
                for change in changes {
                    self.alter_in_block(change, tag)?;
                }
                Ok(done(tag))
            }
            Command::DropRelation { kind, view, names, if_exists, cascade } => {
                let noun = if view { "materialized view" } else { kind.noun() };
                let tag = format!("DROP {}", noun.to_uppercase());
                if view {
                    self.refuse_in_transaction(&tag)?;
                }
                for name in &names {
                    if let Some(def) = self.relation(name)
                        && def.noun() != noun
                    {
                        return Err(Error::WrongObjectType(format!(
                            "\"{name}\" is not a {noun}; use DROP {}",
                            def.noun().to_uppercase()
                        )));
                    }
                }
                if self.transaction.is_some() {
                    return self.drop_in_block(names, if_exists, cascade, &tag);
                }
                let changes =
                    names.into_iter().map(|name| Change::DropRelation { name, if_exists, cascade }).collect::<Vec<_>>();
                self.db.log.commit(changes).await?;
                Ok(done(&tag))
            }
            Command::Subscribe(spec) => {
                self.refuse_in_transaction("SUBSCRIBE")?;
                let session = self.with_time_zone(Session::new(self.db.clone()));
                Ok(Outcome::Subscribe(Box::new(Subscription::start(session, &spec, None)?)))
            }
            Command::DeclareCursor { cursor, spec } => {
                if self.cursors.contains_key(&cursor) {
                    return Err(Error::DuplicateCursor(cursor));
                }
                let subscription =
                    Subscription::start(self.with_time_zone(Session::new(self.db.clone())), &spec, Some(&cursor))?;
                self.cursors
                    .insert(cursor, cursor::Cursor::Subscription(Box::new(subscribe::Cursor::new(subscription))));
                Ok(done("DECLARE CURSOR"))
            }
            Command::DeclareQueryCursor { cursor, query, hold } => {
                if self.transaction.is_none() && !hold {
                    return Err(Error::NoActiveTransaction("DECLARE CURSOR"));
                }
                if self.cursors.contains_key(&cursor) {
                    return Err(Error::DuplicateCursor(cursor));
                }
                let Outcome::Rows { schema, stream } = self.run_query(*query, params).await? else {
                    return Err(Error::FeatureNotSupported("a cursor is declared for a query (SELECT)".into()));
                };
                let declared_in = self.transaction.as_ref().map(|transaction| cursor::DeclaredIn {
                    block: self.blocks_begun,
                    savepoints: transaction.lock().expect("transaction lock").savepoints.len(),
                });
                let query_cursor = cursor::QueryCursor::new(schema, stream, hold, declared_in);
                self.cursors.insert(cursor, cursor::Cursor::Query(query_cursor));
                Ok(done("DECLARE CURSOR"))
            }
            Command::Fetch { cursor, count, timeout } => {
                let open = self.cursors.get_mut(&cursor).ok_or_else(|| Error::UndefinedCursor(cursor.clone()))?;
                let batch = open.fetch(count, timeout).await;
                self.notices.extend(open.take_notices());
                let batch = batch?;
                Ok(rows_outcome_batch(batch))
            }
            Command::CloseCursor { cursor: None } => {
                self.cursors.clear();
                Ok(done("CLOSE CURSOR ALL"))
            }
            Command::CloseCursor { cursor: Some(cursor) } => {
                self.cursors.remove(&cursor).ok_or(Error::UndefinedCursor(cursor))?;
                Ok(done("CLOSE CURSOR"))
            }
            Command::CreateView { name, columns, query, if_not_exists, or_replace } => {
                self.create_view(name, columns, query, if_not_exists, or_replace).await
            }
            Command::Deallocate { name } => Ok(done(if name.is_some() { "DEALLOCATE" } else { "DEALLOCATE ALL" })),
            // The server keeps prepared statements with its connection's.
            Command::Prepare { .. } | Command::Execute { .. } => {
                Err(Error::FeatureNotSupported("PREPARE and EXECUTE need a client connection".into()))
            }
            Command::Checkpoint => {
                self.refuse_in_transaction("CHECKPOINT")?;
                self.db.log.seal().await?;
                Ok(done("CHECKPOINT"))
            }
            Command::Begin { read_only } => {
                if self.transaction.is_some() {
                    self.notices.push(Notice::warning("25001", "there is already a transaction in progress".into()));
                } else {
                    self.blocks_begun += 1;
                    let read_only = read_only.unwrap_or_else(|| self.read_only_by_default());
                    self.transaction = Some(Arc::new(Mutex::new(Transaction { read_only, ..Transaction::default() })));
                    self.begin_block_settings();
                }
                Ok(Outcome::TransactionStarted)
            }
            Command::Savepoint { name } => self.savepoint(name),
            Command::ReleaseSavepoint { name } => self.release_savepoint(name),
            Command::RollbackToSavepoint { name } => self.roll_back_to_savepoint(name),
            Command::SetTransaction { read_only } => self.set_transaction(read_only),
            Command::Commit => {
                let outcome = self.commit().await;
                let committed = matches!(outcome, Ok(Outcome::TransactionEnded { tag: "COMMIT" }));
                self.close_cursors(committed, None);
                self.end_block_settings(committed);
                outcome
            }
            Command::Rollback => {
                if !self.roll_back_block() {
                    self.notices.push(no_transaction());
                }
                Ok(Outcome::TransactionEnded { tag: "ROLLBACK" })
            }
            Command::Set { name, value, local } => self.set(&name, value, local),
            Command::Reset { name, local } => self.reset(&name, local),
            Command::Show { name } => self.show(&name),
            Command::CopyFrom { relation, columns, mut options } => {
                options.time_zone = self.time_zone().to_string();
                let def = self.relation(&relation).ok_or(Error::UndefinedRelation(relation))?;
                refuse_view_write(&def)?;
                let targets = if columns.is_empty() {
                    def.visible_positions()
                } else {
                    columns
                        .iter()
                        .map(|c| {
                            def.columns.iter().position(|d| &d.name == c).ok_or_else(|| {
                                Error::InvalidParameterValue(format!(
                                    "column \"{c}\" of relation \"{}\" does not exist",
                                    def.name
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?
                };
                let serials = self.serial_counters(&def).await?;
                let copy = CopyIn::new(def, targets, options, Limits::from(&self.db.config))?.with_serials(serials);
                Ok(Outcome::CopyIn(Box::new(copy)))
            }
            Command::Modify { relation, verb, statement } => match self.relation(&relation) {
                Some(def) if def.view.is_some() => Err(refuse_view_write(&def).unwrap_err()),
                Some(def) if def.kind == RelationKind::Table => {
                    let mut statement = statement;
                    if crate::sql::default_keyword::sets_default(&statement) {
                        crate::sql::default_keyword::fill_set_defaults(&mut statement, &def);
                    }
                    let (rows, returned) = self.modify_table(&def, &statement, params).await?;
                    let tag = verb.split(' ').next().unwrap_or(verb);
                    Ok(match returned {
                        Some(returned) => Outcome::Returned { tag, schema: returned.schema, batches: returned.batches },
                        None => Outcome::Done { tag: tag.to_string(), rows: tag_counts(tag).then_some(rows) },
                    })
                }
                Some(def) => Err(Error::WrongObjectType(format!(
                    "cannot {verb} \"{}\": it is a {}, and {}s are append-only",
                    def.name,
                    def.kind.noun(),
                    def.kind.noun()
                ))),
                None => Err(Error::UndefinedRelation(relation)),
            },
            Command::Query(statement) => self.run_query(*statement, params).await,
            Command::CopyTo { query, options } => match self.run_query(*query, params).await? {
                Outcome::Rows { schema, stream } => Ok(Outcome::CopyOut { schema, stream, options }),
                _ => Err(Error::Internal("COPY's query returned no rows".into())),
            },
        }
    }

    /// Commits one `ALTER TABLE|STREAM` (outside a transaction, like all DDL).
    async fn alter(&mut self, kind: RelationKind, change: Change) -> Result<Outcome> {
        let tag = format!("ALTER {}", kind.noun().to_uppercase());
        if self.transaction.is_some() {
            return self.alter_in_block(change, &tag);
        }
        self.db.log.commit(vec![change]).await?;
        Ok(done(&tag))
    }

    /// Checks a column `ALTER … ADD COLUMN` adds to `relation` and evaluates
    /// its DEFAULT once: rows written before it read that value (PostgreSQL
    /// does the same). NOT NULL without a DEFAULT needs a relation with no rows.
    async fn prepare_added_column(&self, relation: &str, column: &mut ColumnDef) -> Result<()> {
        crate::query::defaults::check_defaults(std::slice::from_ref(column)).await?;
        if column.default.is_some() {
            if matches!(column.sql_type, SqlType::Bytea | SqlType::Interval) {
                return Err(Error::FeatureNotSupported(format!(
                    "ADD COLUMN of type {} with a DEFAULT is not supported yet",
                    column.sql_type.sql_name()
                )));
            }
            let value = crate::query::defaults::default_value(column)?;
            if !value.is_null() {
                let array = value.to_array().map_err(Error::from_datafusion)?;
                // An array as PostgreSQL's array text, which `missing_array` reads back.
                column.missing = Some(match crate::pg_text::as_text(&array)? {
                    Some(text) if matches!(column.sql_type, SqlType::Array(_)) => text.value(0).to_string(),
                    _ => datafusion::arrow::util::display::array_value_to_string(&array, 0)?,
                });
            }
        }
        let def = self.relation(relation);
        let has_rows = def.is_some_and(|def| {
            let read = self.db.log.read(def.id, self.db.log.visible_offset());
            !read.segments.is_empty() || !read.batches.is_empty() || !read.states.is_empty()
        });
        if !column.nullable && column.missing.is_none() && has_rows {
            return Err(Error::NotNullViolation { relation: relation.to_string(), column: column.name.clone() });
        }
        Ok(())
    }

    /// Plans a statement as it would run now, for Describe in the extended protocol.
    pub async fn plan(&self, statement: Statement) -> Result<LogicalPlan> {
        let (state, statement) = self.prepare(statement, true).await?;
        plan_statement(&state, statement, None).await
    }

    /// The plan (its parameters' types are read from it), and the same plan
    /// as it will run, after the analyzer rules, which may change result
    /// types (an integer literal becomes an INT): Describe reports what
    /// Execute sends. A plan the rules refuse is its own second half; the
    /// error comes at Execute.
    pub async fn plan_described(&self, statement: Statement) -> Result<(LogicalPlan, LogicalPlan)> {
        let (state, statement) = self.prepare(statement, true).await?;
        let plan = plan_statement(&state, statement, None).await?;
        let analyzed = state.analyzer().execute_and_check(plan.clone(), state.config_options(), |_, _| {});
        Ok((plan.clone(), analyzed.unwrap_or(plan)))
    }

    /// What the next statement reads: the transaction's view (fixed by its
    /// first statement), or the latest commit.
    fn read_view(&self) -> ReadView {
        match &self.transaction {
            Some(transaction) => {
                let mut transaction = transaction.lock().expect("transaction lock");
                transaction.view.get_or_insert_with(|| self.db.log.snapshot()).clone()
            }
            None => self.db.log.snapshot(),
        }
    }

    /// Fixes the statement's view, rewrites it for Strata (point in time,
    /// system columns, …) and gives it a DataFusion state that reads that view.
    /// `system_time` applies the session's `SET system_time` (not to writes).
    async fn prepare(
        &self,
        statement: Statement,
        system_time: bool,
    ) -> Result<(datafusion::execution::SessionState, Statement)> {
        self.prepare_at(statement, system_time, self.read_view()).await
    }

    /// [`Session::prepare`] reading `view`.
    async fn prepare_at(
        &self,
        mut statement: Statement,
        system_time: bool,
        view: ReadView,
    ) -> Result<(datafusion::execution::SessionState, Statement)> {
        crate::sql::windows::rewrite_windows(&mut statement)?;
        let mut versions = HashMap::new();
        for offset in version_offsets(&mut statement)? {
            versions.insert(offset.0, self.version_bound(offset).await?);
        }
        if let Statement::Insert(insert) = &statement
            && let Some(def) = view.catalog.get(&crate::sql::parse::object_name(&insert.table.to_string()))
        {
            crate::sql::insert_columns::check_widths(def, insert)?;
        }
        let ctes = cte_names(&mut statement);
        let system_time = if system_time { self.settings.get(SYSTEM_TIME).map(String::as_str) } else { None };
        let zone = self.time_zone().to_string();
        let point_in_time = rewrite_as_of(&mut statement, &view.catalog, &ctes, &versions, system_time, &zone)?;
        rewrite(&mut statement, &view.catalog, view.offset, &point_in_time);
        if let Some(message) = crate::sql::jsonb_sets::lateral_refusal(&statement) {
            return Err(Error::FeatureNotSupported(message));
        }
        let mut state = self.db.base_state.clone();
        // now() is the statement's start, not the server's.
        state.mark_start_execution();
        // A TIMESTAMPTZ written without an offset is a time in the session's
        // zone: DataFusion reads `'…'::timestamptz` there (table functions'
        // arguments too), `text_casts` the rest.
        state.config_mut().options_mut().execution.time_zone = Some(self.time_zone().to_string());
        if let Some(options) = state.config_mut().options_mut().extensions.get_mut::<time_zone::StrataOptions>() {
            options.time_zone = self.time_zone().to_string();
            options.settings = crate::query::pg_settings::encode(&self.settings);
        }
        if let Some((created, dropped)) = self.block_catalog_changes(&view) {
            let catalogs = state.catalog_list().clone();
            let log = self.db.log.clone();
            state.register_catalog_list(crate::query::schema::with_block_changes(catalogs, log, created, dropped));
        }
        let scope =
            StatementScope { read_offset: view.offset, tables: view.tables, transaction: self.transaction.clone() };
        state.config_mut().set_extension(Arc::new(scope));
        Ok((state, statement))
    }

    /// Rows with their TIMESTAMPTZ columns in the session's zone, so they
    /// print as times there (`2026-11-24 13:00:00+01`).
    fn in_time_zone(&self, outcome: Outcome) -> Outcome {
        let zone = self.time_zone();
        if time_zone::is_utc(zone) {
            return outcome;
        }
        let zoned = |schema: &SchemaRef, stream: SendableRecordBatchStream| {
            let shown = time_zone::schema_in(schema, zone);
            let target = shown.clone();
            let stream = stream.map(move |batch| {
                batch.and_then(|b| time_zone::batch_in(b, &target).map_err(datafusion::error::DataFusionError::from))
            });
            let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(shown.clone(), stream));
            (shown, stream)
        };
        match outcome {
            Outcome::Rows { schema, stream } => {
                let (schema, stream) = zoned(&schema, stream);
                Outcome::Rows { schema, stream }
            }
            Outcome::CopyOut { schema, stream, options } => {
                let (schema, stream) = zoned(&schema, stream);
                Outcome::CopyOut { schema, stream, options }
            }
            Outcome::Returned { tag, schema, batches } => {
                let shown = time_zone::schema_in(&schema, zone);
                // A change of zone is a cast of metadata, which does not fail.
                let batches =
                    batches.into_iter().map(|b| time_zone::batch_in(b, &shown).expect("a zone change casts")).collect();
                Outcome::Returned { tag, schema: shown, batches }
            }
            other => other,
        }
    }

    /// Sets the zone the client asked for at startup, if `zone` names one.
    pub fn set_time_zone(&mut self, zone: &str) -> bool {
        let Some(arrow) = time_zone::setting(zone) else { return false };
        self.startup_zone = Some((time_zone::shown(zone), time_zone::arrow_zone(&arrow).to_string()));
        self.reset_time_zone();
        true
    }

    /// Back to the startup zone, or UTC.
    /// `session` (a subscription's own) in this session's zone.
    fn with_time_zone(&self, mut session: Session) -> Session {
        if let Some(shown) = self.settings.get("timezone") {
            session.settings.insert("timezone".into(), shown.clone());
        }
        session.zone = self.zone.clone();
        session
    }

    /// The session's TimeZone as Arrow reads it (`+00:00` for UTC).
    pub fn time_zone(&self) -> &str {
        &self.zone
    }

    /// `VERSION AS OF offset` stops before a commit that continues past `offset`.
    async fn version_bound(&self, offset: Offset) -> Result<VersionBound> {
        let straddling = match self.db.log.commit_ts_at(&[offset, offset.next()]).await?[..] {
            [Some(at), Some(next)] if at == next => Some(at),
            _ => None,
        };
        Ok(VersionBound { offset, straddling })
    }

    async fn run_query(&mut self, statement: Statement, params: Option<&ParamValues>) -> Result<Outcome> {
        if let Statement::Insert(insert) = &statement
            && let Some(def) = self.relation(&crate::sql::parse::object_name(&insert.table.to_string()))
        {
            refuse_view_write(&def)?;
        }
        let statement = match statement {
            Statement::Insert(insert) if insert::has_clauses(&insert) => {
                return self.insert_with_clauses(insert, params).await;
            }
            Statement::Insert(insert) => {
                let relation = crate::sql::parse::object_name(&insert.table.to_string());
                let def = self.relation(&relation);
                if let Some(def) = def
                    && let Some(rows) = values_rows(&def, &insert, params, self.time_zone())
                {
                    let count = rows.num_rows();
                    self.write_rows(&def, rows).await?;
                    return Ok(Outcome::Done { tag: "INSERT".into(), rows: Some(count) });
                }
                Statement::Insert(insert)
            }
            other => other,
        };
        let (mut state, statement) = self.prepare(statement, true).await?;
        let insert_target = insert_target(&statement);
        if let Some((relation, _)) = &insert_target
            && let Some(def) = self.relation(relation)
        {
            let counters = self.serial_counters(&def).await?;
            if !counters.is_empty() {
                state.config_mut().set_extension(Arc::new(crate::write::serial::StatementCounters(counters)));
            }
        }
        let plan = plan_statement(&state, statement, params).await?;
        let frame = DataFrame::new(state, plan);
        if let Some((relation, columns)) = insert_target {
            let batches = frame
                .collect()
                .await
                .map_err(|e| not_null_from_values(Error::from_datafusion(e), &relation, &columns))?;
            let rows = batches
                .first()
                .and_then(|b| b.column(0).as_any().downcast_ref::<datafusion::arrow::array::UInt64Array>())
                .map(|counts| counts.value(0) as usize)
                .unwrap_or(0);
            return Ok(Outcome::Done { tag: "INSERT".into(), rows: Some(rows) });
        }
        // The rows' own schema: analyzer rules may change a type the
        // statement's plan shows (an integer literal becomes an INT).
        let stream = frame.execute_stream().await.map_err(Error::from_datafusion)?;
        let schema: SchemaRef = stream.schema();
        Ok(Outcome::Rows { schema, stream })
    }

    /// Runs UPDATE, DELETE or TRUNCATE on a table; returns the rows it changed.
    /// Outside a transaction a statement whose rows changed under it (another
    /// commit got there first) is run again on the new state, as PostgreSQL
    /// re-reads rows in READ COMMITTED; inside one it fails with 40001.
    async fn modify_table(
        &mut self,
        def: &Arc<RelationDef>,
        statement: &Statement,
        params: Option<&ParamValues>,
    ) -> Result<(usize, Option<Returned>)> {
        let keyed = KeyedUpdate::of(def, statement);
        // The general path's query, built when first needed.
        let mut query = None;
        let mut attempt = 1;
        loop {
            let result = match &keyed {
                Some(keyed) => self.update_by_key(def, keyed, params).await,
                None => Ok(None),
            };
            let result = match result {
                Ok(Some(rows)) => Ok((rows, None)),
                Ok(None) => {
                    if query.is_none() {
                        query = Some(select_targets(def, statement)?);
                    }
                    let query = query.as_ref().expect("built above");
                    self.modify_once(def, query, params).await
                }
                Err(error) => Err(error),
            };
            match result {
                Err(Error::Storage(crate::log::Error::Conflict))
                    if self.transaction.is_none() && attempt < RETRIES_MAX =>
                {
                    tokio::time::sleep(retry_backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// An UPDATE of one row by its key, without planning a query; `None`
    /// when the statement needs the general path.
    async fn update_by_key(
        &mut self,
        def: &Arc<RelationDef>,
        keyed: &KeyedUpdate,
        params: Option<&ParamValues>,
    ) -> Result<Option<usize>> {
        // Its compiled SET expressions read times in UTC: another zone's
        // session plans the statement.
        if !time_zone::is_utc(self.time_zone()) {
            return Ok(None);
        }
        let view = self.read_view();
        let Some(table) = view.tables.get(def.id) else { return Ok(None) };
        let write = match keyed.write(&self.db.base_state, table, def, params, &mut self.compiled_sets)? {
            Keyed::Fallback => return Ok(None),
            Keyed::NoRow => return Ok(Some(0)),
            Keyed::Write(write) => write,
        };
        let scope = StatementScope {
            read_offset: view.offset,
            tables: view.tables.clone(),
            transaction: self.transaction.clone(),
        };
        commit_or_buffer(&self.db.log, Some(&scope), def, write, &Limits::from(&self.db.config)).await?;
        Ok(Some(1))
    }

    /// Plans the query a table modification runs (for its parameter types),
    /// and its RETURNING clause (with `returning_params`, as for an INSERT's
    /// in `describe_insert`).
    pub async fn plan_modify(
        &self,
        relation: &str,
        statement: &Statement,
        returning_params: Option<&ParamValues>,
    ) -> Result<Option<(LogicalPlan, Option<Returned>)>> {
        let Some(def) = self.relation(relation).filter(|d| d.kind == RelationKind::Table) else {
            return Ok(None);
        };
        let query = select_targets(&def, statement)?;
        let statement = parse_query(&query.sql)?;
        let (state, statement) = self.prepare(statement, false).await?;
        let plan = plan_statement(&state, statement, None).await?;
        let empty = RecordBatch::new_empty(def.user_schema());
        let returned = match &query.returning {
            Some((items, qualifier)) => {
                Some(returning(&state, &self.read_view(), &def, items, qualifier, &empty, returning_params).await?)
            }
            None => None,
        };
        Ok(Some((plan, returned)))
    }

    async fn modify_once(
        &mut self,
        def: &Arc<RelationDef>,
        query: &DmlQuery,
        params: Option<&ParamValues>,
    ) -> Result<(usize, Option<Returned>)> {
        let statement = parse_query(&query.sql)?;
        let (state, statement) = self.prepare(statement, false).await?;
        let scope = StatementScope::from_config(state.config());
        let plan = plan_statement(&state, statement, params).await?;
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let batches = DataFrame::new(state.clone(), plan).collect().await.map_err(Error::from_datafusion)?;
        let found = concat_batches(&schema, &batches)?;
        let user_count = def.columns.len();
        let codec = TableCodec::new(def.clone())?;
        let deletes = RecordBatch::try_new(def.user_schema(), found.columns()[..user_count].to_vec())?;
        // A row matched twice (through a join in FROM or USING) changes once.
        let mut seen = std::collections::HashSet::new();
        let first: Vec<u32> = codec
            .keys(&deletes)?
            .into_iter()
            .enumerate()
            .filter(|(_, key)| seen.insert(key.clone()))
            .map(|(index, _)| index as u32)
            .collect();
        let found = take_record_batch(&found, &UInt32Array::from(first))?;
        let Found { deletes, expected, updated: inserts } = split_found(def, &found, &query.assigned)?;
        let rows = deletes.num_rows();
        // RETURNING sees the new versions of updated rows, the old of deleted ones.
        let returned = match &query.returning {
            Some((items, qualifier)) => {
                let written = if query.assigned.is_empty() { &deletes } else { &inserts };
                Some(returning(&state, &self.read_view(), def, items, qualifier, written, params).await?)
            }
            None => None,
        };
        let write = TableWrite { relation: def.id, deletes, expected, inserts };
        commit_or_buffer(&self.db.log, scope.as_deref(), def, write, &Limits::from(&self.db.config)).await?;
        Ok((rows, returned))
    }

    /// Appends the rows of a finished COPY, or buffers them in the open transaction.
    pub async fn finish_copy(&mut self, copy: CopyIn) -> Result<usize> {
        let (def, batches, rows) = copy.finish()?;
        if rows == 0 {
            return Ok(0);
        }
        let rows_batch = concat_batches(&def.user_schema(), &batches)?;
        self.write_rows(&def, rows_batch).await?;
        Ok(rows)
    }

    /// Checks rows (user columns) and appends them to a stream, or inserts
    /// them into a table; as one commit, or buffered in the open transaction.
    async fn write_rows(&mut self, def: &RelationDef, rows: RecordBatch) -> Result<()> {
        let counters = self.serial_counters(def).await?;
        let rows = crate::write::serial::fill(def, rows, &counters)?;
        let rows = check_rows(def, rows)?;
        let rows = RecordBatch::try_new(def.user_schema(), rows.columns().to_vec())?;
        let limits = Limits::from(&self.db.config);
        limits.check_statement(rows.num_rows(), rows.get_array_memory_size())?;
        if def.kind == RelationKind::Table {
            let deletes = RecordBatch::new_empty(def.user_schema());
            let write = TableWrite { relation: def.id, deletes, expected: Vec::new(), inserts: rows };
            // A transaction's view is fixed by its first statement, this one included.
            self.read_view();
            let scope = StatementScope {
                read_offset: Offset::ZERO,
                tables: Default::default(),
                transaction: self.transaction.clone(),
            };
            return commit_or_buffer(&self.db.log, Some(&scope), def, write, &limits).await;
        }
        append_or_buffer(&self.db.log, self.transaction.as_ref(), def, rows, &limits).await
    }

    /// The rows `FETCH` from `cursor` returns.
    pub fn cursor_schema(&self, cursor: &str) -> Result<SchemaRef> {
        let open = self.cursors.get(cursor).ok_or_else(|| Error::UndefinedCursor(cursor.to_string()))?;
        Ok(open.schema())
    }

    /// Ends the open transaction block undoing it: its writes, its SETs,
    /// its cursors. Returns whether there was one.
    pub fn roll_back_block(&mut self) -> bool {
        self.close_cursors(false, None);
        self.end_block_settings(false);
        self.transaction.take().is_some()
    }

    /// The open transaction block: `None` outside one, else whether it failed.
    pub fn block_failed(&self) -> Option<bool> {
        self.transaction.as_ref().map(|t| t.lock().expect("transaction lock").failed)
    }

    /// What fails the open transaction block later, from outside the
    /// session (an error while its rows are encoded and sent); `None`
    /// outside a block.
    pub fn block_failure(&self) -> Option<impl Fn() + Send + Sync + 'static> {
        let transaction = self.transaction.clone()?;
        Some(move || transaction.lock().expect("transaction lock").failed = true)
    }

    /// Marks the open transaction failed (a COPY or protocol error outside `execute`).
    pub fn fail_transaction(&self) {
        if let Some(transaction) = &self.transaction {
            transaction.lock().expect("transaction lock").failed = true;
        }
    }

    async fn commit(&mut self) -> Result<Outcome> {
        let Some(block) = self.transaction.clone() else {
            self.notices.push(no_transaction());
            return Ok(Outcome::TransactionEnded { tag: "COMMIT" });
        };
        let transaction = std::mem::take(&mut *block.lock().expect("transaction lock"));
        // The block stays open (emptied) until the log answers: a cancel
        // before the commit is handed over drops this future, and the
        // server then fails or rolls back the block (see `query_string.rs`).
        let committed = match transaction.failed || transaction.changes.is_empty() {
            true => Ok(None),
            false => self.db.log.commit(transaction.changes).await,
        };
        self.transaction = None;
        committed?;
        Ok(Outcome::TransactionEnded { tag: if transaction.failed { "ROLLBACK" } else { "COMMIT" } })
    }

    fn transaction_failed(&self) -> bool {
        self.block_failed() == Some(true)
    }

    fn refuse_in_transaction(&self, what: &str) -> Result<()> {
        if self.transaction.is_some() {
            return Err(Error::InvalidTransactionState(format!("{what} cannot run inside a transaction block")));
        }
        Ok(())
    }
}

/// Views are written only by their query.
fn refuse_view_write(def: &RelationDef) -> Result<()> {
    match def.view {
        Some(_) => Err(Error::WrongObjectType(format!("cannot change materialized view \"{}\"", def.name))),
        None => Ok(()),
    }
}

/// The relation and column list of an INSERT (after rewriting, the list is explicit).
fn insert_target(statement: &Statement) -> Option<(String, Vec<String>)> {
    let Statement::Insert(insert) = statement else {
        return None;
    };
    let relation = crate::sql::parse::object_name(&insert.table.to_string());
    let columns = insert.columns.iter().map(|c| crate::sql::parse::object_name(&c.to_string())).collect();
    Some((relation, columns))
}

/// DataFusion refuses a NULL for a NOT NULL column while building the VALUES
/// rows, naming the VALUES column (`column2`); say it as PostgreSQL does.
fn not_null_from_values(error: Error, relation: &str, columns: &[String]) -> Error {
    let Error::DataFusion(inner) = &error else {
        return error;
    };
    let message = inner.find_root().to_string();
    let Some(rest) = message.split("Column '").nth(1) else {
        return error;
    };
    if !message.contains("non-nullable but contains null") {
        return error;
    }
    let named = rest.split('\'').next().unwrap_or_default();
    let column = match named.strip_prefix("column").and_then(|n| n.parse::<usize>().ok()) {
        Some(position) => columns.get(position.wrapping_sub(1)).cloned(),
        None => columns.iter().find(|c| c.as_str() == named).cloned(),
    };
    match column {
        Some(column) => Error::NotNullViolation { relation: relation.to_string(), column },
        None => error,
    }
}

/// Plans a prepared statement and fills in its parameters.
async fn plan_statement(
    state: &datafusion::execution::SessionState,
    statement: Statement,
    params: Option<&ParamValues>,
) -> Result<LogicalPlan> {
    plan_statement_with(state, statement, params, IntegerLiterals::Integer).await
}

/// How a statement's integer literals are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntegerLiterals {
    /// INTEGER where they fit, as in PostgreSQL.
    Integer,
    /// BIGINT, as in continuous views created before Strata typed them as
    /// PostgreSQL does (their arithmetic must not start to overflow).
    Bigint,
}

async fn plan_statement_with(
    state: &datafusion::execution::SessionState,
    statement: Statement,
    params: Option<&ParamValues>,
    literals: IntegerLiterals,
) -> Result<LogicalPlan> {
    let plan =
        state.statement_to_plan(DfStatement::Statement(Box::new(statement))).await.map_err(Error::from_datafusion)?;
    let plan = match literals {
        IntegerLiterals::Integer => {
            crate::query::pg_literals::narrow_integer_literals(plan).map_err(Error::from_datafusion)?
        }
        IntegerLiterals::Bigint => plan,
    };
    match params {
        Some(params) => plan.replace_params_with_values(params).map_err(Error::from_datafusion),
        None => Ok(plan),
    }
}

/// The one query in SQL Strata generated itself.
fn parse_query(sql: &str) -> Result<Statement> {
    match parse(sql)?.pop() {
        Some(Command::Query(statement)) => Ok(*statement),
        _ => Err(Error::Internal(format!("not a query: {sql}"))),
    }
}

/// The session setting that makes every read a point-in-time read.
const SYSTEM_TIME: &str = "system_time";

/// Whether PostgreSQL's command tag for `tag` carries a row count.
fn tag_counts(tag: &str) -> bool {
    matches!(tag, "UPDATE" | "DELETE" | "INSERT")
}

/// Result batches with their columns named as the client sees them.
fn shown(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let shown = display_schema(schema);
    if Arc::ptr_eq(&shown, schema) {
        return Ok(batches);
    }
    Ok(batches
        .into_iter()
        .map(|b| RecordBatch::try_new(shown.clone(), b.columns().to_vec()))
        .collect::<Result<_, _>>()?)
}

fn done(tag: &str) -> Outcome {
    Outcome::Done { tag: tag.into(), rows: None }
}

fn rows_outcome_batch(batch: RecordBatch) -> Outcome {
    let schema = batch.schema();
    let stream = RecordBatchStreamAdapter::new(schema.clone(), futures::stream::once(async move { Ok(batch) }));
    Outcome::Rows { schema, stream: Box::pin(stream) }
}

fn rows_outcome(schema: Schema, columns: Vec<datafusion::arrow::array::ArrayRef>) -> Outcome {
    let schema = Arc::new(schema);
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("columns match schema");
    let stream = RecordBatchStreamAdapter::new(schema.clone(), futures::stream::once(async move { Ok(batch) }));
    Outcome::Rows { schema, stream: Box::pin(stream) }
}
