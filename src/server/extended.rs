//! Parse, Bind and Describe of the extended query protocol, answered as
//! pgwire's defaults answer them but queued instead of flushed. A client
//! sends them together with an Execute and a Sync (or a Flush), and those
//! flush; PostgreSQL too writes nothing before. Flushing each answer made
//! it a TCP segment and a wake-up of its own for the client: four per
//! prepared INSERT or UPDATE instead of one.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::{Sink, SinkExt};
use pgwire::api::portal::Portal;
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{DescribePortalResponse, DescribeResponse, DescribeStatementResponse};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Parse, ParseComplete, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};

pub async fn parse<H, C>(handler: &H, client: &mut C, message: Parse) -> PgWireResult<()>
where
    H: ExtendedQueryHandler + ?Sized,
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = H::Statement>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let name = message.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned());
    match StoredStatement::parse(client, &message, handler.query_parser()).await? {
        Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
        None => client.portal_store().put_empty_statement(&name),
    }
    if name != DEFAULT_NAME {
        keep_name(client, &name);
    }
    client.feed(PgWireBackendMessage::ParseComplete(ParseComplete::new())).await?;
    Ok(())
}

/// Notes the name of a statement kept in the connection's store, for
/// `DEALLOCATE ALL`.
pub fn keep_name<C>(client: &C, name: &str)
where
    C: ClientInfo + ClientPortalStore,
    C::PortalStore: PortalStore,
{
    let names = named_statements(client);
    let mut names = names.lock().expect("statement names lock");
    // Statements closed by the protocol's Close leave their names here:
    // forgotten now and then, so a long connection's list stays short.
    if names.len() >= NAMES_KEPT_MAX {
        names.retain(|name| client.portal_store().get_statement(name).is_some());
    }
    names.insert(name.to_string());
}

/// How many statement names a connection keeps before dropping those of
/// closed statements.
const NAMES_KEPT_MAX: usize = 1024;

/// The names of the connection's prepared statements, for `DEALLOCATE ALL`
/// (pgwire's store cannot list them).
fn named_statements<C: ClientInfo + ?Sized>(client: &C) -> Arc<Mutex<HashSet<String>>> {
    client.session_extensions().get_or_insert_with(|| Mutex::new(HashSet::<String>::new()))
}

/// `DEALLOCATE name` or (`None`) `DEALLOCATE ALL`: the statements are
/// dropped, as PostgreSQL drops them; an unknown name is 26000.
pub fn deallocate<C>(client: &C, name: Option<&str>) -> Result<(), crate::error::Error>
where
    C: ClientInfo + ClientPortalStore,
    C::PortalStore: PortalStore,
{
    let prepared_in_sql = super::sql_prepare::deallocate(client, name);
    let names = named_statements(client);
    let mut names = names.lock().expect("statement names lock");
    match name {
        Some(_) if prepared_in_sql => {}
        Some(name) => {
            if !names.remove(name) || client.portal_store().get_statement(name).is_none() {
                return Err(crate::error::Error::UndefinedPreparedStatement(name.to_string()));
            }
            client.portal_store().rm_statement(name);
        }
        None => names.drain().for_each(|name| client.portal_store().rm_statement(&name)),
    }
    Ok(())
}

pub async fn bind<S, C>(client: &mut C, message: Bind) -> PgWireResult<()>
where
    S: Clone + Send + Sync + 'static,
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = S>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
    let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
    match client.portal_store().get_statement(statement_name) {
        Some(Entry::Value(statement)) => {
            let portal = Portal::try_new(&message, statement)?;
            client.portal_store().put_portal(Arc::new(portal));
        }
        Some(Entry::Empty) => {
            if !message.parameters.is_empty() {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".to_owned(),
                    "08P01".to_owned(),
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires 0",
                        message.parameters.len()
                    ),
                ))));
            }
            client.portal_store().put_empty_portal(portal_name);
        }
        None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
    }
    client.feed(PgWireBackendMessage::BindComplete(BindComplete::new())).await?;
    Ok(())
}

pub async fn describe<H, C>(handler: &H, client: &mut C, message: Describe) -> PgWireResult<()>
where
    H: ExtendedQueryHandler + ?Sized,
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = H::Statement>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
    match message.target_type {
        TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
            Some(Entry::Value(statement)) => {
                let response = handler.do_describe_statement(client, &statement).await?;
                queue_description(client, &response).await
            }
            Some(Entry::Empty) => queue_description(client, &DescribeStatementResponse::no_data()).await,
            None => Err(PgWireError::StatementNotFound(name.to_owned())),
        },
        TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => {
                let response = handler.do_describe_portal(client, &portal).await?;
                queue_description(client, &response).await
            }
            Some(Entry::Empty) => queue_description(client, &DescribePortalResponse::no_data()).await,
            None => Err(PgWireError::PortalNotFound(name.to_owned())),
        },
        other => Err(PgWireError::InvalidTargetType(other)),
    }
}

async fn queue_description<C, R>(client: &mut C, response: &R) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    R: DescribeResponse,
{
    if let Some(types) = response.parameters() {
        let oids = types.iter().map(|t| t.oid()).collect();
        client.feed(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
    }
    let message = if response.is_no_data() {
        PgWireBackendMessage::NoData(NoData::new())
    } else {
        PgWireBackendMessage::RowDescription(RowDescription::new(response.fields().iter().map(Into::into).collect()))
    };
    client.feed(message).await?;
    Ok(())
}

/// Close of a statement or portal, answered as pgwire answers it, queued.
pub async fn close<C>(client: &mut C, message: Close) -> PgWireResult<()>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
    match message.target_type {
        TARGET_TYPE_BYTE_STATEMENT => client.portal_store().rm_statement(name),
        TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
        _ => {}
    }
    client.feed(PgWireBackendMessage::CloseComplete(CloseComplete::new())).await?;
    Ok(())
}
