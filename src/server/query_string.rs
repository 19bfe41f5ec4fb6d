//! The simple query protocol: a query string's statements run in order,
//! up to the first error. Several of them outside a transaction block run
//! as PostgreSQL runs them, as one implicit block, so a failure undoes the
//! statements before it and `SET LOCAL` lasts to the string's end.
//!
//! The block must end however the string ends. [`Running`] holds the
//! session while the string (or a protocol Execute) runs; dropped before it
//! finished (a cancel request drops the running query, an error reading
//! parameters or sending a response returns early) it rolls an implicit
//! block back, since not all of its statements ran, and fails an explicit
//! one, as PostgreSQL does.

use std::fmt::Debug;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::copy::{send_copy_both_response, send_copy_in_response, send_copy_out_response};
use pgwire::api::portal::Format;
use pgwire::api::query::{SimpleQueryHandler, send_execution_response, send_query_response, send_ready_for_query};
use pgwire::api::results::{CopyResponse, Response};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use tokio::sync::OwnedMutexGuard;

use super::handler::{
    Service, copy_out, copy_response, deallocated, feed_notices, feed_reports, run, session_of, stream_subscription,
};
use super::sqlstate::{error_info, to_pgwire};
use crate::error::{Error, Result};
use crate::session::{Outcome, RETRIES_MAX, Session, retry_backoff};
use crate::sql::parse::{Command, parse};

/// A simple Query message: pgwire's own handling, but for the transaction
/// status sent with ReadyForQuery, which is the session's as it stands
/// after the responses went out. pgwire works it out from the kinds of the
/// responses, which cannot say that `ROLLBACK TO` ended a failure or that a
/// failed COMMIT left no block.
pub(super) async fn on_query<C>(service: &Service, client: &mut C, query: Query) -> PgWireResult<()>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
        return Err(PgWireError::NotReadyForQuery);
    }
    // A batch of the extended protocol that did not end with a Sync ends
    // before the query runs. If it fails, the query is skipped as every
    // message is up to the Sync, which then answers ReadyForQuery.
    if let Err(error) = service.settle_batch(client, super::pipeline::Next::Ends).await {
        let info: pgwire::error::ErrorInfo = error.into();
        client.feed(PgWireBackendMessage::ErrorResponse(info.into())).await?;
        client.set_state(PgWireConnectionState::AwaitingSync);
        return Ok(());
    }
    client.set_state(PgWireConnectionState::QueryInProgress);
    if query.query.chars().all(|c| c == ';' || c.is_whitespace()) {
        client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
    } else {
        let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) => Some(handle.start_query().await),
            None => None,
        };
        let responses = match cancel {
            Some(cancel) => {
                match futures::future::select(Box::pin(service.do_query(client, &query.query)), cancel).await {
                    futures::future::Either::Left((responses, _)) => responses,
                    futures::future::Either::Right(_) => Err(PgWireError::QueryCanceled),
                }
            }
            None => service.do_query(client, &query.query).await,
        }?;
        // Only comments: PostgreSQL answers as for an empty string.
        if responses.is_empty() {
            client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
        }
        for response in responses {
            match response {
                Response::EmptyQuery => {
                    client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
                }
                Response::Query(rows) => send_query_response(client, rows, true).await?,
                Response::Execution(tag) | Response::TransactionStart(tag) | Response::TransactionEnd(tag) => {
                    send_execution_response(client, tag).await?;
                }
                Response::Error(error) => client.feed(PgWireBackendMessage::ErrorResponse((*error).into())).await?,
                Response::CopyIn(copy) => {
                    send_copy_in_response(client, copy).await?;
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                }
                Response::CopyOut(copy) => send_copy_out_response(client, copy).await?,
                Response::CopyBoth(copy) => {
                    send_copy_both_response(client, copy).await?;
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                }
            }
        }
    }
    // A COPY FROM STDIN now in progress gets its ReadyForQuery when it ends.
    if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
        client.set_state(PgWireConnectionState::ReadyForQuery);
        let status = session_status(client, &service.db).await;
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await?;
    }
    Ok(())
}

/// The transaction status of the connection's session, for ReadyForQuery.
pub(super) async fn session_status<C: ClientInfo + ?Sized>(
    client: &C,
    db: &crate::database::Database,
) -> TransactionStatus {
    status_of(false, session_of(client, db).lock().await.block_failed())
}

/// The status a client is told: an implicit block is not the client's.
fn status_of(implicit: bool, block_failed: Option<bool>) -> TransactionStatus {
    match (implicit, block_failed) {
        (true, _) | (false, None) => TransactionStatus::Idle,
        (false, Some(false)) => TransactionStatus::Transaction,
        (false, Some(true)) => TransactionStatus::Error,
    }
}

/// The session, held while one query string or Execute runs.
pub struct Running {
    session: OwnedMutexGuard<Session>,
    /// The implicit block this string opened, while it is open.
    implicit: bool,
    finished: bool,
}

impl Running {
    pub fn new(session: OwnedMutexGuard<Session>) -> Running {
        Running { session, implicit: false, finished: false }
    }

    /// Opens the implicit block of `commands` if they need one: several
    /// statements, outside a block, that can all run in one, and one of
    /// them with something to undo (a write, a SET). A string of reads
    /// needs none, and its last rows are then streamed, not held.
    pub async fn begin_implicit(&mut self, commands: &[Command]) -> Result<bool> {
        let needed = commands.len() > 1
            && !self.session.in_transaction()
            && commands.iter().all(fits_implicit_block)
            && commands.iter().any(undoable);
        if needed {
            self.session.execute(Command::Begin { read_only: None }, None).await?;
            self.implicit = true;
        }
        Ok(needed)
    }

    /// Ends the implicit block: commits it, or rolls it back when a
    /// statement `failed`.
    pub async fn end_implicit(&mut self, failed: bool) -> Result<()> {
        let ended = match failed {
            true => {
                self.session.roll_back_block();
                Ok(())
            }
            // Dropped while it commits (a cancel before the commit was
            // handed over), the block is still open and `Drop` rolls it back.
            false => self.session.execute(Command::Commit, None).await.map(|_| ()),
        };
        self.implicit = false;
        ended
    }

    /// Tells `client` the session's transaction status, as it stands after
    /// each statement. pgwire works the status out from the responses, but
    /// when a query is cancelled, or a response fails while it is sent, it
    /// sends the last status it was told (`BEGIN; SELECT 1/0` said idle). An
    /// implicit block is not the client's: idle.
    pub fn report_status<C: ClientInfo + ?Sized>(&self, client: &mut C) {
        client.set_transaction_status(status_of(self.implicit, self.session.block_failed()));
    }

    /// The string or Execute ran to its end.
    pub fn finish<C: ClientInfo + ?Sized>(mut self, client: &mut C) {
        self.report_status(client);
        self.finished = true;
    }
}

/// What a statement run alone left for its answer.
pub struct Ran {
    pub outcome: Result<Outcome>,
    pub notices: Vec<crate::error::Notice>,
    pub reports: Vec<(&'static str, String)>,
    /// What fails the open block if its rows fail while they are sent.
    pub fail: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Running {
    /// The Execute ran to its end with `outcome`: what its answer needs.
    pub fn ran<C: ClientInfo + ?Sized>(mut self, client: &mut C, outcome: Result<Outcome>) -> Ran {
        let ran = Ran {
            outcome,
            notices: self.take_notices(),
            reports: self.take_reports(),
            fail: self.block_failure().map(|fail| Box::new(fail) as Box<dyn Fn() + Send + Sync>),
        };
        self.finish(client);
        ran
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.implicit {
            self.session.roll_back_block();
        } else if !self.finished {
            self.session.fail_transaction();
        }
    }
}

impl Deref for Running {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

/// A response's rows encoded now, as they will be sent: an implicit block
/// commits only once nothing of it can fail anymore. The error if one does.
pub async fn encoded_now(response: Response) -> Result<Response, PgWireError> {
    let Response::Query(mut query) = response else { return Ok(response) };
    query.data_rows = made_now(query.data_rows).await?;
    Ok(Response::Query(query))
}

/// A COPY TO STDOUT's data made now, as it will be sent; the error if
/// making it fails.
pub async fn copied_now(mut copy: CopyResponse) -> Result<CopyResponse, PgWireError> {
    copy.data_stream = made_now(copy.data_stream).await?;
    Ok(copy)
}

/// Every item of `stream` made now, as a stream of them again; the first
/// error instead, if one fails.
async fn made_now<T: Send + 'static>(
    mut stream: std::pin::Pin<Box<dyn futures::Stream<Item = PgWireResult<T>> + Send>>,
) -> PgWireResult<std::pin::Pin<Box<dyn futures::Stream<Item = PgWireResult<T>> + Send>>> {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item?);
    }
    Ok(Box::pin(futures::stream::iter(items.into_iter().map(Ok))))
}

/// A response whose rows, if one fails while it is encoded or sent (or a
/// cancel stops them), fail the open block with `fail`, as an error in any
/// statement of a block does.
pub fn failing_block(response: Response, fail: Option<impl Fn() + Send + Sync + 'static>) -> Response {
    match (response, fail) {
        (Response::Query(mut query), Some(fail)) => {
            query.data_rows = Box::pin(query.data_rows.inspect(move |row| {
                if row.is_err() {
                    fail();
                }
            }));
            Response::Query(query)
        }
        (response, _) => response,
    }
}

/// Whether a statement can run in an implicit block: reads, writes,
/// settings, PREPARE, EXECUTE (of what PREPARE takes: reads and writes),
/// DEALLOCATE and query cursors. DDL, COPY, SUBSCRIBE and transaction
/// control keep a string running statement by statement, each committing
/// on its own.
pub(super) fn fits_implicit_block(command: &Command) -> bool {
    match command {
        Command::Query(statement) => {
            matches!(**statement, Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. })
        }
        Command::Modify { .. }
        | Command::Set { .. }
        | Command::Reset { .. }
        | Command::Show { .. }
        | Command::SetTransaction { .. }
        | Command::Prepare { .. }
        | Command::Deallocate { .. }
        | Command::Execute { .. }
        | Command::DeclareQueryCursor { .. }
        | Command::Fetch { .. }
        | Command::CloseCursor { .. } => true,
        _ => false,
    }
}

/// Whether a statement changes what a rollback undoes.
fn undoable(command: &Command) -> bool {
    match command {
        Command::Query(statement) => matches!(**statement, Statement::Insert(_)),
        Command::Show { .. } | Command::Fetch { .. } | Command::CloseCursor { .. } => false,
        _ => true,
    }
}

/// How long a string waits for one running again to end: a string that
/// keeps losing (to single statements, which do not wait) holds the turn
/// through all its runs, and unrelated strings must not stall behind it.
const TURN_WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(200);

/// Whether a string can run again from its start: not if it did what a
/// rollback does not undo (PREPARE, DEALLOCATE, moving or closing a cursor
/// it did not declare, such as one WITH HOLD).
pub fn repeatable(commands: &[Command]) -> bool {
    let mut declared = std::collections::HashSet::new();
    commands.iter().all(|command| match command {
        Command::DeclareQueryCursor { cursor, .. } => {
            declared.insert(cursor.as_str());
            true
        }
        Command::Fetch { cursor, .. } | Command::CloseCursor { cursor: Some(cursor) } => {
            declared.contains(cursor.as_str())
        }
        Command::CloseCursor { cursor: None } | Command::Prepare { .. } | Command::Deallocate { .. } => false,
        _ => true,
    })
}

/// Whether an implicit block whose commit failed with `error` is run again:
/// another commit took a key or changed a row it decided on. Nothing of it
/// reached the client yet, so the string runs again on the new state, as
/// each statement alone would (an upsert decides again).
pub fn run_again(error: &Error) -> bool {
    matches!(error, Error::Storage(crate::log::Error::Conflict | crate::log::Error::UniqueViolation { .. }))
}

impl Service {
    pub(super) async fn query_string<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client, &self.db);
        let mut session = Running::new(session.lock_owned().await);
        let commands = match parse(query) {
            Ok(commands) => commands,
            Err(error) => {
                session.fail_transaction();
                return Err(to_pgwire(error));
            }
        };
        // The string would go on after the COPY's data, which pgwire does
        // not allow for: refused before anything runs.
        if let Some(copy) = commands.iter().position(|c| matches!(c, Command::CopyFrom { .. }))
            && copy + 1 < commands.len()
        {
            let error = Error::FeatureNotSupported("statements after COPY FROM STDIN in one query string".into());
            session.fail_transaction();
            return Err(to_pgwire(error));
        }
        let mut attempt = 1;
        let mut _turn = None;
        let responses = loop {
            let implicit = session.begin_implicit(&commands).await.map_err(to_pgwire)?;
            if !implicit {
                break self.run_statements(client, &mut session, commands, false).await?;
            }
            // A string running again has the turn: others wait for it to end
            // rather than collide with it again.
            if _turn.is_none() {
                let _ = tokio::time::timeout(TURN_WAIT_MAX, self.db.retry_turn()).await;
            }
            let mut responses = self.run_statements(client, &mut session, commands.clone(), true).await?;
            let failed = matches!(responses.last(), Some(Response::Error(_)));
            match session.end_implicit(failed).await {
                Ok(()) => {}
                Err(error) if run_again(&error) && repeatable(&commands) && attempt < RETRIES_MAX => {
                    // Nothing was sent: what the failed run said is dropped.
                    session.take_notices();
                    session.take_reports();
                    if _turn.is_none() {
                        _turn = Some(self.db.retry_turn().await);
                    }
                    tokio::time::sleep(retry_backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(error) => {
                    // Lost a race and not run again: a serialization failure,
                    // whatever the commit found (an upsert never says 23505).
                    let error = if run_again(&error) { Error::Storage(crate::log::Error::Conflict) } else { error };
                    responses.push(Response::Error(Box::new(error_info(&error))))
                }
            }
            feed_notices(client, session.take_notices()).await?;
            feed_reports(client, session.take_reports()).await?;
            break responses;
        };
        session.finish(client);
        Ok(responses)
    }

    /// Runs a query string's statements until one fails. In an `implicit`
    /// block every statement's rows are computed before the block commits,
    /// and its notices wait for the end (the string may run again).
    async fn run_statements<C>(
        &self,
        client: &mut C,
        session: &mut Running,
        commands: Vec<Command>,
        implicit: bool,
    ) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut responses = Vec::with_capacity(commands.len());
        let count = commands.len();
        for (index, command) in commands.into_iter().enumerate() {
            let dropped = deallocated(&command);
            let mut outcome = run(client, session, command, None).await;
            // Rows are computed as they are sent, after every statement of
            // the string ran: those of a statement followed by others (or
            // in an implicit block, which commits first) are computed now,
            // so that an error in them stops the string (and fails a block)
            // before the next statement runs, as in PostgreSQL.
            if (index + 1 < count || implicit)
                && let Ok(Outcome::Rows { schema, stream }) = outcome
            {
                outcome = computed(schema, stream).await;
            }
            if let (Some(name), Ok(_)) = (&dropped, &outcome)
                && let Err(error) = super::extended::deallocate(client, name.as_deref())
            {
                session.fail_transaction();
                outcome = Err(error);
            }
            session.report_status(client);
            if !implicit {
                feed_notices(client, session.take_notices()).await?;
                feed_reports(client, session.take_reports()).await?;
            }
            match outcome {
                Ok(Outcome::Subscribe(subscription)) => {
                    responses.push(stream_subscription(client, subscription).await?);
                    break;
                }
                // Streamed here when first, so an error mid-way is an
                // ErrorResponse; behind earlier results of the string (which
                // pgwire sends after this returns) pgwire streams it, in order.
                Ok(Outcome::CopyOut { schema, stream, options }) if responses.is_empty() => {
                    match copy_out(client, &schema, stream, options).await {
                        Ok(response) => responses.push(response),
                        Err(error) => {
                            session.fail_transaction();
                            return Err(error);
                        }
                    }
                }
                // Behind earlier results pgwire streams it, and on an error
                // would send CopyFail (a client's message): copied now.
                Ok(Outcome::CopyOut { schema, stream, options }) => {
                    match copied_now(copy_response(&schema, stream, options)).await {
                        Ok(copy) => responses.push(Response::CopyOut(copy)),
                        Err(error) => {
                            session.fail_transaction();
                            responses.push(Response::Error(Box::new(error.into())));
                            break;
                        }
                    }
                }
                Ok(outcome) => {
                    let is_copy = matches!(outcome, Outcome::CopyIn(_));
                    let response = self.respond(client, outcome, &Format::UnifiedText, !implicit).await?;
                    if !implicit {
                        responses.push(failing_block(response, session.block_failure()));
                    } else {
                        match encoded_now(response).await {
                            Ok(response) => responses.push(response),
                            Err(error) => {
                                session.fail_transaction();
                                responses.push(Response::Error(Box::new(error.into())));
                                break;
                            }
                        }
                    }
                    if is_copy {
                        break;
                    }
                }
                Err(error) => {
                    // Later statements in the same query string are not run.
                    responses.push(Response::Error(Box::new(error_info(&error))));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

/// Rows computed in full, as an outcome to send.
async fn computed(
    schema: SchemaRef,
    stream: datafusion::execution::SendableRecordBatchStream,
) -> crate::Result<Outcome> {
    let batches = datafusion::physical_plan::common::collect(stream).await.map_err(Error::from_datafusion)?;
    let stream = futures::stream::iter(batches.into_iter().map(Ok));
    Ok(Outcome::Rows { schema: schema.clone(), stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)) })
}
