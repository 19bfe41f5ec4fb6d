//! The extended protocol's messages up to a Sync run as one implicit block
//! outside a transaction block, as in PostgreSQL: a driver's batch of
//! several Executes before one Sync (asyncpg's `executemany`, a JDBC batch,
//! psycopg's pipeline) commits whole, or not at all when one of them fails.
//!
//! A write's Execute outside a block is held until the next message comes
//! (PostgreSQL too sends nothing before a Sync or Flush). Is that the Sync,
//! the write runs alone, as a single statement: one that loses a race to a
//! concurrent commit runs again there, and an upsert decides again. Is it
//! another message of the batch, the implicit block opens and the write runs
//! in it first; the block commits at the Sync. Its results are sent by then,
//! so a commit that loses a race cannot run again and fails with 40001.
//! A statement that cannot run in a block (DDL, COPY, BEGIN) commits the
//! implicit block before it runs, and runs alone.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use datafusion::sql::sqlparser::ast::Statement;
use futures::future::Either;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, send_execution_response};
use pgwire::api::results::{Response, Tag};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle, DEFAULT_NAME};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Execute, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;

use super::handler::{Prepared, Service, session_of};
use super::query_string::fits_implicit_block;
use super::sqlstate::to_pgwire;
use crate::sql::parse::Command;

/// The connection's batch since its last Sync.
#[derive(Default)]
pub(super) struct Pipeline {
    /// The Execute of a write outside a block, not run yet.
    held: Option<Held>,
    /// The implicit block is open.
    implicit: bool,
}

/// A write's Execute: its portal and the most rows it sends.
struct Held {
    portal: Arc<Portal<Prepared>>,
    max_rows: usize,
}

fn pipeline_of<C: ClientInfo + ?Sized>(client: &C) -> Arc<Mutex<Pipeline>> {
    client.session_extensions().get_or_insert_with(|| Mutex::new(Pipeline::default()))
}

/// What the batch's next message does with a held write and the implicit
/// block.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Next {
    /// Another message of the batch: the write runs in the implicit block.
    Joins,
    /// The Sync, or a statement that runs alone: the write runs alone too,
    /// and an open implicit block commits.
    Ends,
}

impl Service {
    /// An Execute: a write outside a block is held (see the module's note),
    /// anything else runs now, after what the batch held.
    pub(super) async fn execute_in_batch<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (next, write) = portal_kind(client, &message);
        self.settle_batch(client, next).await?;
        // The write held before may have been this portal's first run (two
        // Executes of one portal): fetched from now, not run again.
        if let Some(portal) = write.filter(|portal| is_fresh(portal)) {
            let pipeline = pipeline_of(client);
            let mut pipeline = pipeline.lock().expect("pipeline lock");
            if !pipeline.implicit {
                pipeline.held = Some(Held { portal, max_rows: message.max_rows as usize });
                return Ok(());
            }
        }
        let result = self._on_execute(client, message).await;
        self.fail_block_on_error(client, result).await
    }

    /// Before the batch's `next` message: runs the held write, in the
    /// implicit block if `next` joins it, else alone; or commits the
    /// implicit block when `next` ends it.
    pub(super) async fn settle_batch<C>(&self, client: &mut C, next: Next) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pipeline = pipeline_of(client);
        let (held, implicit) = {
            let mut pipeline = pipeline.lock().expect("pipeline lock");
            (pipeline.held.take(), pipeline.implicit)
        };
        // Boxed: every message passes here, and the write's future would
        // make each handler's as large as a statement's run.
        match held {
            Some(held) => Box::pin(self.run_held(client, held, next, &pipeline)).await,
            None if implicit && next == Next::Ends => Box::pin(self.end_implicit_block(client, &pipeline)).await,
            None => Ok(()),
        }
    }

    /// Opens the implicit block, unless the write held runs in the client's
    /// own block.
    async fn begin_implicit_block<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        pipeline: &Mutex<Pipeline>,
    ) -> PgWireResult<()> {
        let session = session_of(client, &self.db);
        let mut session = session.lock().await;
        if !session.in_transaction() {
            session.execute(Command::Begin { read_only: None }, None).await.map_err(to_pgwire)?;
            pipeline.lock().expect("pipeline lock").implicit = true;
        }
        Ok(())
    }

    /// Commits the implicit block, or rolls it back if a statement of the
    /// batch failed (the error was sent then).
    async fn end_implicit_block<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        pipeline: &Mutex<Pipeline>,
    ) -> PgWireResult<()> {
        pipeline.lock().expect("pipeline lock").implicit = false;
        let session = session_of(client, &self.db);
        let mut session = session.lock().await;
        match session.block_failed() {
            Some(false) => session.execute(Command::Commit, None).await.map(drop).map_err(to_pgwire),
            Some(true) => {
                session.roll_back_block();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The held write, in the implicit block if the `next` message joins
    /// it, run and answered as pgwire's Execute runs and answers it; its
    /// errors fail an open block.
    async fn run_held<C>(&self, client: &mut C, held: Held, next: Next, pipeline: &Mutex<Pipeline>) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if next == Next::Joins {
            self.begin_implicit_block(client, pipeline).await?;
        }
        let result = self.answer_held(client, held).await;
        self.fail_block_on_error(client, result).await
    }

    async fn answer_held<C>(&self, client: &mut C, held: Held) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Held { portal, max_rows } = held;
        let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) => Some(handle.start_query().await),
            None => None,
        };
        let gate = self.gate(client);
        let run = Box::pin(gate.scope(self.execute_write(client, &portal)));
        let response = match cancel {
            Some(cancel) => match futures::future::select(run, cancel).await {
                Either::Left((response, _)) => response,
                Either::Right(_) => Err(PgWireError::QueryCanceled),
            },
            None => run.await,
        }?;
        match response {
            Response::Execution(tag) => send_execution_response(client, tag).await,
            Response::Query(rows) => {
                portal.start(rows).await;
                send_fetched(client, &portal, max_rows).await
            }
            Response::EmptyQuery => {
                Ok(client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?)
            }
            _ => Err(to_pgwire(crate::error::Error::Internal("a held write answered as no write does".into()))),
        }
    }
}

/// Up to `max_rows` rows of a started portal, then PortalSuspended if more
/// are left, else CommandComplete, as pgwire's Execute sends them.
async fn send_fetched<C>(client: &mut C, portal: &Portal<Prepared>, max_rows: usize) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let fetched = portal.fetch(max_rows).await?;
    let mut response = fetched.response;
    let tag = response.command_tag().to_owned();
    let mut rows = 0;
    while let Some(row) = response.data_rows().next().await {
        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
        rows += 1;
    }
    match fetched.suspended {
        true => client.send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new())).await?,
        false => client.send(PgWireBackendMessage::CommandComplete(Tag::new(&tag).with_rows(rows).into())).await?,
    }
    Ok(())
}

/// Of the statement the portal `message` names: whether it joins the
/// implicit block, and its portal if it is a write. An empty or unknown
/// portal joins (its error, if any, comes from pgwire's Execute).
fn portal_kind<C>(client: &C, message: &Execute) -> (Next, Option<Arc<Portal<Prepared>>>)
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore<Statement = Prepared>,
{
    let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
    let Some(Entry::Value(portal)) = client.portal_store().get_portal(name) else {
        return (Next::Joins, None);
    };
    match &portal.statement.statement.command {
        Some(command) if !fits_implicit_block(command) => (Next::Ends, None),
        Some(command) if is_write(command) => (Next::Joins, Some(portal)),
        _ => (Next::Joins, None),
    }
}

/// Whether the portal has not run yet (a suspended one is fetched from).
fn is_fresh(portal: &Portal<Prepared>) -> bool {
    portal.state().try_lock().is_ok_and(|state| matches!(*state, PortalExecutionState::Initial))
}

/// Whether a statement writes rows (and is held until the next message).
fn is_write(command: &Command) -> bool {
    match command {
        Command::Query(statement) => matches!(**statement, Statement::Insert(_)),
        Command::Modify { .. } => true,
        _ => false,
    }
}
