//! The pgwire handlers: simple and extended query, COPY FROM STDIN, startup
//! (no authentication on this listener) and cancel requests. Each connection
//! keeps its [`Session`] in pgwire's per-connection extensions.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::into_pg_type;
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::extendedquery::{Bind, Close, Describe, Execute, Flush, Parse, Sync as PgSync};
use pgwire::messages::response::ReadyForQuery;
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use super::copy_text::{copy_lines, copy_text, header_line};
use super::encode::{fields, query_response};
use super::pipeline::Next;
use super::query_string::{Ran, Running, failing_block};
use super::sqlstate::to_pgwire;
use crate::database::Database;
use crate::error::{Error, Notice};
use crate::log::cancel_gate::CancelGate;
use crate::session::Subscription;
use crate::session::{Outcome, Session, has_clauses};
use crate::sql::parse::{Command, parse};
use crate::write::copy::{CopyIn, CopyOptions};
use crate::write::returning::Returned;
use pgwire::messages::copy::CopyOutResponse;

pub struct Handlers {
    service: Arc<Service>,
    startup: Arc<Startup>,
    cancel: Arc<Cancel>,
}

impl Handlers {
    pub fn new(db: Database) -> Handlers {
        let connections = Arc::new(ConnectionManager::new());
        let gates = Gates::default();
        let service =
            Arc::new(Service { parser: Arc::new(StatementParser { db: db.clone() }), db, gates: gates.clone() });
        Handlers {
            service,
            startup: Arc::new(Startup { connections: connections.clone() }),
            cancel: Arc::new(Cancel { connections, gates }),
        }
    }
}

/// Each connection's cancel gate, by the process id its cancel requests name.
#[derive(Debug, Clone, Default)]
struct Gates(Arc<std::sync::Mutex<HashMap<i32, CancelGate>>>);

impl Gates {
    fn register(&self, pid: i32, gate: CancelGate) {
        let mut gates = self.0.lock().expect("gates lock");
        gates.retain(|_, gate| !gate.is_orphan());
        gates.insert(pid, gate);
    }

    fn get(&self, pid: i32) -> Option<CancelGate> {
        self.0.lock().expect("gates lock").get(&pid).cloned()
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.service.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

pub struct Startup {
    connections: Arc<ConnectionManager>,
}

/// The parameters PostgreSQL reports at startup that pgwire reports with
/// values of its own (`server_version` 16.6-pgwire, `DateStyle` `ISO YMD`,
/// `TimeZone` `Etc/UTC`), as (reported name, setting): drivers read the
/// version from here and psql prints it, so it must agree with `version()`
/// and `SHOW`.
const STARTUP_PARAMETERS: &[(&str, &str)] =
    &[("server_version", "server_version"), ("DateStyle", "datestyle"), ("TimeZone", "timezone")];

#[async_trait]
impl NoopStartupHandler for Startup {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.connections.clone())
    }

    /// Runs after pgwire's own ParameterStatus messages: a later one for the
    /// same name replaces the earlier in every client, as when PostgreSQL
    /// reports a changed setting.
    async fn post_startup<C>(&self, client: &mut C, _: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The zone the client asked for, if Strata knows it (see `session_of`).
        let zone = startup_zone(client.metadata()).and_then(|v| crate::session::time_zone::setting(&v));
        for (reported, setting) in STARTUP_PARAMETERS {
            let value = match (*setting, &zone) {
                ("timezone", Some(zone)) => zone.as_str(),
                _ => crate::session::default_setting(setting).unwrap_or_default(),
            };
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    reported.to_string(),
                    value.to_string(),
                )))
                .await?;
        }
        Ok(())
    }
}

pub struct Cancel {
    connections: Arc<ConnectionManager>,
    gates: Gates,
}

#[async_trait]
impl CancelHandler for Cancel {
    /// Stops the connection's running query, unless it is committing.
    async fn on_cancel_request(&self, request: CancelRequest) {
        let cancel = self.connections.cancel(request.pid, &request.secret_key);
        match self.gates.get(request.pid) {
            Some(gate) => {
                gate.cancel(cancel).await;
            }
            None => {
                cancel.await;
            }
        }
    }
}

/// The COPY in progress on a connection; the first error is kept and
/// reported at CopyDone, and later data is ignored.
#[derive(Default)]
struct CopySlot {
    copy: Option<CopyIn>,
    error: Option<Error>,
}

pub struct Service {
    pub(super) db: Database,
    parser: Arc<StatementParser>,
    gates: Gates,
}

/// The zone a client's startup packet asks for: a `TimeZone` parameter
/// (JDBC), or `-c timezone=…` in `options` (libpq's PGTZ, psycopg's
/// `options`).
fn startup_zone(metadata: &std::collections::HashMap<String, String>) -> Option<String> {
    if let Some((_, zone)) = metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case("timezone")) {
        return Some(zone.clone());
    }
    let options = metadata.get("options")?;
    let words: Vec<&str> = options.split_whitespace().collect();
    words.iter().enumerate().find_map(|(i, word)| {
        let setting = match word.strip_prefix("--") {
            Some(setting) => setting,
            None if *word == "-c" => words.get(i + 1)?,
            None => word.strip_prefix("-c")?,
        };
        let (name, value) = setting.split_once('=')?;
        name.eq_ignore_ascii_case("timezone").then(|| value.to_string())
    })
}

pub(super) fn session_of<C: ClientInfo + ?Sized>(client: &C, db: &Database) -> Arc<Mutex<Session>> {
    client.session_extensions().get_or_insert_with(|| {
        let mut session = db.session();
        // A driver's zone from its startup packet (JDBC sends the JVM's);
        // one Strata does not know leaves the session in UTC.
        if let Some(zone) = startup_zone(client.metadata()) {
            session.set_time_zone(&zone);
        }
        if let Some(name) = client.metadata().get(pgwire::api::METADATA_APPLICATION_NAME) {
            session.set_startup_setting("application_name", name);
        }
        Mutex::new(session)
    })
}

/// The connection's cancel gate, registered for its cancel requests.
fn gate_of<C: ClientInfo + ?Sized>(client: &C, gates: &Gates) -> Arc<CancelGate> {
    client.session_extensions().get_or_insert_with(|| {
        let gate = CancelGate::default();
        gates.register(client.pid_and_secret_key().0, gate.clone());
        gate
    })
}

fn described_of<C: ClientInfo + ?Sized>(client: &C) -> Arc<std::sync::Mutex<Described>> {
    client.session_extensions().get_or_insert_with(|| std::sync::Mutex::new(Described::default()))
}

fn copy_slot_of<C: ClientInfo + ?Sized>(client: &C) -> Arc<std::sync::Mutex<CopySlot>> {
    client.session_extensions().get_or_insert_with(|| std::sync::Mutex::new(CopySlot::default()))
}

impl Service {
    /// The connection's cancel gate.
    pub(super) fn gate<C: ClientInfo + ?Sized>(&self, client: &C) -> Arc<CancelGate> {
        gate_of(client, &self.gates)
    }

    /// An error in a protocol message (Parse, Bind, Describe) fails the open
    /// block, as any error in a block does.
    pub(super) async fn fail_block_on_error<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        result: PgWireResult<()>,
    ) -> PgWireResult<()> {
        if result.is_err() {
            session_of(client, &self.db).lock().await.fail_transaction();
        }
        result
    }

    /// Turns a command's outcome into a wire response. Rows `sent_later`
    /// are computed as they are sent, after pgwire's own cancel window
    /// closed: they keep listening for a cancel request meanwhile. Rows
    /// encoded now must not (their listener would replace pgwire's, which
    /// takes that for a cancel).
    pub(super) async fn respond<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        outcome: Outcome,
        format: &Format,
        sent_later: bool,
    ) -> PgWireResult<Response> {
        Ok(match outcome {
            Outcome::Rows { schema, stream } => {
                let cancel = match sent_later {
                    true => client.session_extensions().get::<Arc<ConnectionHandle>>().map(|h| (*h).clone()),
                    false => None,
                };
                Response::Query(query_response(&schema, stream, format, cancel)?)
            }
            Outcome::Done { tag, rows } => {
                let mut wire_tag = Tag::new(&tag);
                if tag == "INSERT" {
                    wire_tag = wire_tag.with_oid(0);
                }
                if let Some(rows) = rows {
                    wire_tag = wire_tag.with_rows(rows);
                }
                Response::Execution(wire_tag)
            }
            Outcome::Returned { tag, schema, batches } => {
                let stream = futures::stream::iter(batches.into_iter().map(Ok));
                let stream = RecordBatchStreamAdapter::new(schema.clone(), stream);
                let mut response = query_response(&schema, Box::pin(stream), format, None)?;
                response.set_command_tag(tag);
                Response::Query(response)
            }
            Outcome::TransactionStarted => Response::TransactionStart(Tag::new("BEGIN")),
            Outcome::TransactionEnded { tag } => Response::TransactionEnd(Tag::new(tag)),
            Outcome::Subscribe(_) | Outcome::CopyOut { .. } => {
                return Err(to_pgwire(Error::Internal("COPY data is streamed by its handler".into())));
            }
            Outcome::CopyIn(copy) => {
                let columns = copy.column_count();
                let format = if copy.is_binary() { 1 } else { 0 };
                let slot = copy_slot_of(client);
                *slot.lock().expect("copy slot lock") = CopySlot { copy: Some(*copy), error: None };
                Response::CopyIn(CopyResponse::new(format, columns, futures::stream::empty()))
            }
        })
    }
}

#[async_trait]
impl SimpleQueryHandler for Service {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        super::query_string::on_query(self, client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let gate = gate_of(client, &self.gates);
        gate.scope(self.query_string(client, query)).await
    }
}

/// Runs `command` in `session`; SQL PREPARE and EXECUTE use the
/// connection's statements. Their errors fail an open transaction block,
/// as those `execute` returns do.
pub(super) async fn run<C>(
    client: &C,
    session: &mut Session,
    command: Command,
    params: Option<&ParamValues>,
) -> crate::Result<Outcome>
where
    C: ClientInfo + ClientPortalStore + Unpin + Send + Sync,
    C::PortalStore: PortalStore,
{
    let outcome = match command {
        Command::Prepare { name, types, statement } => {
            super::sql_prepare::prepare(client, session, &name, &types, &statement)
                .await
                .map(|()| Outcome::Done { tag: "PREPARE".into(), rows: None })
        }
        Command::Execute { name, arguments } => {
            match super::sql_prepare::bind(client, session, &name, &arguments).await {
                Ok((command, params)) => return session.execute(command, Some(&params)).await,
                Err(error) => Err(error),
            }
        }
        command => return session.execute(command, params).await,
    };
    if outcome.is_err() {
        session.fail_transaction();
    }
    outcome
}

/// What a DEALLOCATE drops (`Some(None)`: every statement); `None` for
/// other commands.
pub(super) fn deallocated(command: &Command) -> Option<Option<String>> {
    match command {
        Command::Deallocate { name } => Some(name.clone()),
        _ => None,
    }
}

/// Streams a subscription as COPY data, each read flushed as it is sent,
/// until the client cancels (57014, as PostgreSQL ends a cancelled COPY),
/// disconnects, or the subscription fails.
pub(super) async fn stream_subscription<C>(
    client: &mut C,
    mut subscription: Box<Subscription>,
) -> PgWireResult<Response>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let columns = subscription.column_count();
    let response = CopyOutResponse::new(0, columns as i16, vec![0; columns]);
    client.send(PgWireBackendMessage::CopyOutResponse(response)).await?;
    // A cancel request is pgwire's to handle while this handler runs: it
    // drops this future and answers 57014.
    loop {
        let next = subscription.next().await;
        feed_notices(client, subscription.take_notices()).await?;
        let mut data = Vec::new();
        for batch in next.map_err(to_pgwire)? {
            copy_text(batch, &mut data).map_err(|e| to_pgwire(e.into()))?;
        }
        client.send(PgWireBackendMessage::CopyData(CopyData::new(bytes::Bytes::from(data)))).await?;
    }
}

/// Sends a query's rows as COPY data (see [`copy_response`]) and answers
/// `COPY n`. An error while the rows are computed ends the COPY with an
/// ErrorResponse, as in PostgreSQL.
pub(super) async fn copy_out<C>(
    client: &mut C,
    schema: &SchemaRef,
    stream: datafusion::execution::SendableRecordBatchStream,
    options: CopyOptions,
) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let header = options.header;
    let CopyResponse { columns, mut data_stream, .. } = copy_response(schema, stream, options);
    let response = CopyOutResponse::new(0, columns as i16, vec![0; columns]);
    client.send(PgWireBackendMessage::CopyOutResponse(response)).await?;
    let mut messages = 0;
    while let Some(data) = futures::StreamExt::next(&mut data_stream).await {
        client.feed(PgWireBackendMessage::CopyData(data?)).await?;
        messages += 1;
    }
    client.send(PgWireBackendMessage::CopyDone(CopyDone::new())).await?;
    Ok(Response::Execution(Tag::new("COPY").with_rows(messages - usize::from(header))))
}

/// A query's rows as COPY data: the header line if asked, then a CopyData
/// per row, as PostgreSQL sends them (pgwire streams it as it is, or
/// [`copy_out`] does).
pub(super) fn copy_response(
    schema: &SchemaRef,
    stream: datafusion::execution::SendableRecordBatchStream,
    options: CopyOptions,
) -> CopyResponse {
    let header = options.header.then(|| Ok(CopyData::new(bytes::Bytes::from(header_line(schema, &options)))));
    let lines = futures::StreamExt::flat_map(stream, move |batch| {
        let mut lines = Vec::new();
        let encoded = batch.map_err(|e| to_pgwire(Error::from_datafusion(e))).and_then(|batch| {
            copy_lines(batch, &options, |line| lines.push(Ok(CopyData::new(bytes::Bytes::copy_from_slice(line)))))
                .map_err(|e| to_pgwire(e.into()))
        });
        if let Err(error) = encoded {
            lines.push(Err(error));
        }
        futures::stream::iter(lines)
    });
    let data = futures::StreamExt::chain(futures::stream::iter(header), lines);
    CopyResponse::new(0, schema.fields().len(), data)
}

/// Queues `notices` for the client, ahead of what the statement sends next.
pub(super) async fn feed_notices<C>(client: &mut C, notices: Vec<Notice>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for notice in notices {
        let info = ErrorInfo::new(notice.severity.to_string(), notice.code.to_string(), notice.message);
        client.feed(PgWireBackendMessage::NoticeResponse(info.into())).await?;
    }
    Ok(())
}

/// Queues a ParameterStatus for each setting in `reports`, as PostgreSQL
/// reports a changed `TimeZone` (drivers such as pgjdbc read times by it).
pub(super) async fn feed_reports<C>(client: &mut C, reports: Vec<(&'static str, String)>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in reports {
        client.feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name.to_string(), value))).await?;
    }
    Ok(())
}

/// The statements a connection described, by SQL text, each valid for one
/// catalog generation (a DDL commit may change their types). Bounded: past
/// `DESCRIBED_MAX` texts the cache starts over.
#[derive(Default)]
struct Described {
    by_sql: HashMap<String, (u64, Prepared)>,
}

const DESCRIBED_MAX: usize = 256;
/// Longer texts (a big VALUES list) are described each time rather than kept.
const DESCRIBED_SQL_BYTES_MAX: usize = 4096;

impl Described {
    fn get(&self, sql: &str, generation: u64) -> Option<Prepared> {
        self.by_sql.get(sql).filter(|(at, _)| *at == generation).map(|(_, prepared)| prepared.clone())
    }

    fn put(&mut self, sql: &str, generation: u64, prepared: Prepared) {
        if self.by_sql.len() >= DESCRIBED_MAX {
            self.by_sql.clear();
        }
        self.by_sql.insert(sql.to_string(), (generation, prepared));
    }
}

/// A statement prepared with Parse: its command, and what Describe reports.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub(super) command: Option<Command>,
    pub(super) parameter_types: Vec<Option<DataType>>,
    /// Parameters described as an oid type rather than their planned INTEGER.
    pub(super) oid_parameters: std::collections::BTreeMap<usize, Type>,
    /// Parameters (`$n`, 1-based) the plan leaves untyped: described as text.
    pub(super) untyped_parameters: Vec<usize>,
    pub(super) result_schema: Option<SchemaRef>,
}

pub struct StatementParser {
    db: Database,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        // Drivers send Parse again for each execution of an unnamed
        // statement; describing it plans it, which would double the work.
        // Inside a transaction statements see the catalog as of its start,
        // which may be older than the generation: no cache there.
        let generation = self.db.catalog_generation();
        let cacheable =
            sql.len() <= DESCRIBED_SQL_BYTES_MAX && !session_of(client, &self.db).lock().await.in_transaction();
        let described = described_of(client);
        let cached = if cacheable { described.lock().expect("described lock").get(sql, generation) } else { None };
        let prepared = match cached {
            Some(prepared) => prepared,
            None => {
                let prepared = self.describe(client, sql).await.map_err(to_pgwire)?;
                let kind =
                    prepared.command.as_ref().is_some_and(|c| matches!(c, Command::Query(_) | Command::Modify { .. }));
                if cacheable && kind {
                    described.lock().expect("described lock").put(sql, generation, prepared.clone());
                }
                prepared
            }
        };
        // Described again, and not kept, for the types this Parse gives.
        Ok(Some(self.with_client_types(client, prepared, types).await.map_err(to_pgwire)?))
    }

    fn get_parameter_types(&self, statement: &Prepared) -> PgWireResult<Vec<Type>> {
        statement
            .parameter_types
            .iter()
            .enumerate()
            .map(|(index, t)| match (statement.oid_parameters.get(&(index + 1)), t) {
                (Some(oid_type), _) => Ok(oid_type.clone()),
                (None, Some(data_type)) => into_pg_type(data_type),
                (None, None) => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(&self, statement: &Prepared, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        match &statement.result_schema {
            Some(schema) => fields(schema, format.unwrap_or(&Format::UnifiedText)),
            None => Ok(vec![]),
        }
    }
}

impl StatementParser {
    /// [`describe`] in the client's session.
    async fn describe<C>(&self, client: &C, sql: &str) -> crate::Result<Prepared>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut prepared = describe(&*session_of(client, &self.db).lock().await, sql).await?;
        // EXECUTE returns what the statement it runs returns.
        if let Some(Command::Execute { name, .. }) = &prepared.command {
            prepared.result_schema = super::sql_prepare::described(client, name).and_then(|p| p.result_schema.clone());
        }
        Ok(prepared)
    }

    /// `prepared` described again with the types the client's Parse gave
    /// parameters, where the plan left one untyped or would read a NUMERIC
    /// or float as an integer (`$1 * 3`): PostgreSQL takes the client's type
    /// (psycopg types every parameter).
    async fn with_client_types<C>(
        &self,
        client: &C,
        prepared: Prepared,
        types: &[Option<Type>],
    ) -> crate::Result<Prepared>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let Some(Command::Query(statement)) = &prepared.command else { return Ok(prepared) };
        let retypable =
            super::parameter_types::retypable(&prepared.parameter_types, &prepared.untyped_parameters, types);
        let Some(retyped) = super::parameter_types::with_client_types(statement, &retypable, types) else {
            return Ok(prepared);
        };
        describe_command(&*session_of(client, &self.db).lock().await, Command::Query(Box::new(retyped))).await
    }
}

/// Parses `sql` and finds its parameter types and result columns.
pub(super) async fn describe(session: &Session, sql: &str) -> crate::Result<Prepared> {
    let mut commands = parse(sql)?;
    if commands.len() > 1 {
        return Err(Error::Malformed("cannot insert multiple commands into a prepared statement".into()));
    }
    let Some(command) = commands.pop() else {
        return Ok(Prepared::default());
    };
    describe_command(session, command).await
}

/// [`describe`] of a parsed command.
async fn describe_command(session: &Session, command: Command) -> crate::Result<Prepared> {
    // Each parameter's type as the plan infers it (`None`: nothing does),
    // for `count` parameters.
    let (inferred, count, result_schema) = match &command {
        Command::Query(statement) => {
            match statement.as_ref() {
                Statement::Insert(insert) if has_clauses(insert) => {
                    let (plan, returned) = session.describe_insert(insert, None).await?;
                    let inferred = inferred_types(&plan, returned.as_ref())?;
                    // Parameters used only in ON CONFLICT … DO UPDATE are
                    // not in the plan: they are text, cast where they are used.
                    let count = placeholder_count(statement).max(inferred.len());
                    let schema = match (returned, typed_nulls(&inferred, count)) {
                        (Some(first), Some(nulls)) => match session.describe_insert(insert, Some(&nulls)).await {
                            Ok((_, Some(typed))) => Some(typed.schema),
                            _ => Some(first.schema),
                        },
                        (returned, _) => returned.map(|r| r.schema),
                    };
                    (inferred, count, schema)
                }
                _ => {
                    let (plan, analyzed) = session.plan_described((**statement).clone()).await?;
                    let inferred = inferred_types(&plan, None)?;
                    (inferred.clone(), inferred.len(), result_schema(&analyzed))
                }
            }
        }
        Command::Modify { relation, statement, .. } => match session.plan_modify(relation, statement, None).await? {
            Some((plan, returned)) => {
                let inferred = inferred_types(&plan, returned.as_ref())?;
                let schema = match (returned, typed_nulls(&inferred, inferred.len())) {
                    (Some(first), Some(nulls)) => match session.plan_modify(relation, statement, Some(&nulls)).await {
                        Ok(Some((_, Some(typed)))) => Some(typed.schema),
                        _ => Some(first.schema),
                    },
                    (returned, _) => returned.map(|r| r.schema),
                };
                let count = inferred.len();
                (inferred, count, schema)
            }
            None => (vec![], 0, None),
        },
        Command::Show { name } => {
            let name = if name == "all" { "setting".to_string() } else { name.clone() };
            (vec![], 0, Some(Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))))
        }
        Command::Fetch { cursor, .. } => {
            let schema = session.cursor_schema(cursor)?;
            (vec![], 0, Some(schema))
        }
        _ => (vec![], 0, None),
    };
    let untyped_parameters = (1..=count).filter(|n| inferred.get(n - 1).is_none_or(Option::is_none)).collect();
    let mut parameter_types = as_described(&inferred);
    parameter_types.resize(count, Some(DataType::Utf8));
    let oid_parameters = match &command {
        Command::Query(statement) => super::parameter_types::oid_typed(statement),
        _ => Default::default(),
    };
    Ok(Prepared { command: Some(command), parameter_types, oid_parameters, untyped_parameters, result_schema })
}

/// Parameter types in `$1, $2, …` order, as DataFusion inferred them, or
/// the type a parameter DataFusion leaves open is cast to (`$1::int`, and
/// the casts table UPDATEs put around SET values); `None` where neither
/// says. A write's RETURNING list is planned apart: its parameters are
/// typed there, where the statement's plan does not.
fn inferred_types(plan: &LogicalPlan, returned: Option<&Returned>) -> crate::Result<Vec<Option<DataType>>> {
    let mut known: std::collections::BTreeMap<usize, Option<DataType>> = Default::default();
    for plan in std::iter::once(plan).chain(returned.map(|r| &r.plan)) {
        let cast_to = super::parameter_types::placeholder_casts(plan).map_err(Error::from_datafusion)?;
        for (name, data_type) in plan.get_parameter_types().map_err(Error::from_datafusion)? {
            let Ok(index) = name.trim_start_matches('$').parse::<usize>() else { continue };
            let slot = known.entry(index).or_default();
            if slot.is_none() {
                *slot = data_type.or_else(|| cast_to.get(&name).cloned());
            }
        }
    }
    let count = known.keys().next_back().copied().unwrap_or(0);
    let mut types = vec![None; count];
    for (index, data_type) in known {
        types[index - 1] = data_type;
    }
    Ok(types)
}

/// The types parameters are described with: as inferred, else `text`,
/// which is what PostgreSQL assumes for an otherwise unknown parameter.
fn as_described(inferred: &[Option<DataType>]) -> Vec<Option<DataType>> {
    inferred.iter().map(|t| Some(t.clone().unwrap_or(DataType::Utf8))).collect()
}

/// A NULL of each of `count` parameters' type, when every one is known:
/// RETURNING planned with these gives its columns the types a client will
/// bind (`RETURNING $2 + 1` of an INT parameter is an INT, as PostgreSQL
/// types it). One of unknown type is left a placeholder instead (as a
/// text NULL, `round(n, $2)` would not plan).
fn typed_nulls(inferred: &[Option<DataType>], count: usize) -> Option<ParamValues> {
    if inferred.len() < count {
        return None;
    }
    let nulls: Option<Vec<ScalarValue>> =
        inferred.iter().map(|t| t.as_ref().and_then(|t| ScalarValue::try_from(t).ok())).collect();
    nulls.map(ParamValues::from)
}

/// The highest `$n` in a statement.
fn placeholder_count(statement: &Statement) -> usize {
    let mut count = 0;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(statement, |expr| {
        if let datafusion::sql::sqlparser::ast::Expr::Value(value) = expr
            && let datafusion::sql::sqlparser::ast::Value::Placeholder(id) = &value.value
            && let Some(n) = id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
        {
            count = count.max(n);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    count
}

fn result_schema(plan: &LogicalPlan) -> Option<SchemaRef> {
    match plan {
        LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) => None,
        other => Some(Arc::new(other.schema().as_arrow().clone())),
    }
}

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    /// ReadyForQuery with the session's transaction status (see
    /// `query_string::on_query`), then pgwire's own Sync.
    async fn on_sync<C>(&self, client: &mut C, _: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The batch's held write runs now, or its implicit block commits;
        // an error is the batch's last answer before ReadyForQuery.
        if let Err(error) = self.settle_batch(client, Next::Ends).await {
            let info: pgwire::error::ErrorInfo = error.into();
            if info.is_fatal() {
                return Err(PgWireError::UserError(Box::new(info)));
            }
            client.feed(PgWireBackendMessage::ErrorResponse(info.into())).await?;
        }
        let status = super::query_string::session_status(client, &self.db).await;
        client.set_transaction_status(status);
        client.portal_store().rm_portal(pgwire::api::DEFAULT_NAME);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        client.flush().await?;
        Ok(())
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.execute_in_batch(client, message).await
    }

    async fn on_flush<C>(&self, client: &mut C, _: Flush) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A held write is answered now: the client waits for it.
        self.settle_batch(client, Next::Joins).await?;
        client.flush().await?;
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.settle_batch(client, Next::Joins).await?;
        super::extended::close(client, message).await
    }

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.settle_batch(client, Next::Joins).await?;
        let result = super::extended::parse(self, client, message).await;
        self.fail_block_on_error(client, result).await
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.settle_batch(client, Next::Joins).await?;
        let result = super::extended::bind(client, message).await;
        self.fail_block_on_error(client, result).await
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.settle_batch(client, Next::Joins).await?;
        let result = super::extended::describe(self, client, message).await;
        self.fail_block_on_error(client, result).await
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Prepared>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let gate = gate_of(client, &self.gates);
        gate.scope(self.execute_portal(client, portal)).await
    }
}

impl Service {
    async fn execute_portal<C>(&self, client: &mut C, portal: &Portal<Prepared>) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(command) = portal.statement.statement.command.clone() else {
            return Ok(Response::EmptyQuery);
        };
        let session = session_of(client, &self.db);
        let dropped = deallocated(&command);
        let ran = {
            // Its parameters failing to read, or a cancel, fail an open block.
            let mut session = Running::new(session.clone().lock_owned().await);
            let params = portal_params(portal, &session)?;
            let mut outcome = run(client, &mut session, command, Some(&params)).await;
            if let (Some(name), Ok(_)) = (&dropped, &outcome)
                && let Err(error) = super::extended::deallocate(client, name.as_deref())
            {
                session.fail_transaction();
                outcome = Err(error);
            }
            session.ran(client, outcome)
        };
        self.answer(client, &session, ran, &portal.result_column_format).await
    }

    /// A write's portal (INSERT, UPDATE, DELETE: no PREPARE, EXECUTE or
    /// DEALLOCATE, which need the connection's statements), run as
    /// `execute_portal` runs it.
    pub(super) async fn execute_write<C>(&self, client: &mut C, portal: &Portal<Prepared>) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(command) = portal.statement.statement.command.clone() else {
            return Ok(Response::EmptyQuery);
        };
        let session = session_of(client, &self.db);
        let ran = {
            let mut session = Running::new(session.clone().lock_owned().await);
            let params = portal_params(portal, &session)?;
            let outcome = session.execute(command, Some(&params)).await;
            session.ran(client, outcome)
        };
        self.answer(client, &session, ran, &portal.result_column_format).await
    }

    /// A statement's answer: its notices and settings reports, then its
    /// response, or its rows streamed as COPY data.
    async fn answer<C>(
        &self,
        client: &mut C,
        session: &Mutex<Session>,
        ran: Ran,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Ran { outcome, notices, reports, fail } = ran;
        feed_notices(client, notices).await?;
        feed_reports(client, reports).await?;
        let outcome = outcome.map_err(to_pgwire)?;
        match outcome {
            Outcome::Subscribe(subscription) => return stream_subscription(client, subscription).await,
            Outcome::CopyOut { schema, stream, options } => {
                let copied = copy_out(client, &schema, stream, options).await;
                if copied.is_err() {
                    session.lock().await.fail_transaction();
                }
                return copied;
            }
            _ => {}
        }
        Ok(failing_block(self.respond(client, outcome, format, true).await?, fail))
    }
}

/// The portal's parameters, read by their types.
fn portal_params(portal: &Portal<Prepared>, session: &Session) -> PgWireResult<ParamValues> {
    let types: Vec<Option<&DataType>> = portal.statement.statement.parameter_types.iter().map(Option::as_ref).collect();
    super::parameters::deserialize(portal, &types, session.time_zone())
}

#[async_trait]
impl CopyHandler for Service {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cancelled = self.gate(client).take_cancel();
        let slot = copy_slot_of(client);
        let mut slot = slot.lock().expect("copy slot lock");
        let CopySlot { copy, error } = &mut *slot;
        let pushed = match (cancelled, copy.as_mut()) {
            (true, _) => Err(Error::QueryCanceled),
            (false, Some(copy)) if error.is_none() => copy.push(&copy_data.data),
            (false, _) => Ok(()),
        };
        if let Err(failed) = pushed {
            *copy = None;
            error.get_or_insert(failed);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut taken = std::mem::take(&mut *copy_slot_of(client).lock().expect("copy slot lock"));
        if self.gate(client).take_cancel() {
            taken.error.get_or_insert(Error::QueryCanceled);
        }
        let session = session_of(client, &self.db);
        let mut session = session.lock().await;
        let result = match (taken.error, taken.copy) {
            (Some(error), _) => Err(error),
            (None, Some(copy)) => session.finish_copy(copy).await,
            (None, None) => Err(Error::Internal("COPY data without a COPY in progress".into())),
        };
        match result {
            Ok(rows) => {
                let tag = Tag::new("COPY").with_rows(rows);
                client.send(PgWireBackendMessage::CommandComplete(tag.into())).await?;
                Ok(())
            }
            Err(error) => {
                session.fail_transaction();
                Err(to_pgwire(error))
            }
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        *copy_slot_of(client).lock().expect("copy slot lock") = CopySlot::default();
        session_of(client, &self.db).lock().await.fail_transaction();
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "57014".into(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}
