//! SQL `PREPARE` and `EXECUTE`. A statement prepared in SQL shares its
//! names with those of the protocol's Parse, as in PostgreSQL (a name is
//! taken once; `DEALLOCATE` drops either), and is kept with the
//! connection; `EXECUTE`'s arguments are computed, then bound as a
//! client's text parameters are.

use std::collections::HashMap;
use std::sync::Mutex;

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};

use super::handler::Prepared;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::sql::parse::Command;

/// `PREPARE name (types) AS statement`: planned now (the parse cast each
/// `$n` to its declared type; a declared parameter the statement does not
/// use takes that type here, so EXECUTE still checks its argument), kept
/// under `name`.
pub async fn prepare<C>(client: &C, session: &mut Session, name: &str, types: &[String], statement: &str) -> Result<()>
where
    C: ClientInfo + ClientPortalStore,
    C::PortalStore: PortalStore,
{
    let kept = kept(client);
    if client.portal_store().get_statement(name).is_some() || kept.lock().expect("statements lock").contains_key(name) {
        return Err(Error::DuplicatePreparedStatement(name.to_string()));
    }
    let declared = declared_types(session, types).await?;
    let mut prepared = super::handler::describe(session, statement).await?;
    if prepared.parameter_types.len() < declared.len() {
        prepared.parameter_types.resize(declared.len(), None);
    }
    for (planned, declared) in prepared.parameter_types.iter_mut().zip(declared) {
        if planned.as_ref().is_none_or(|t| *t == DataType::Utf8) {
            *planned = Some(declared);
        }
    }
    let mut kept = kept.lock().expect("statements lock");
    if kept.len() >= KEPT_MAX {
        return Err(Error::ProgramLimitExceeded(format!("a connection keeps at most {KEPT_MAX} prepared statements")));
    }
    kept.insert(name.to_string(), Arc::new(prepared));
    Ok(())
}

/// How many statements PREPARE keeps for one connection.
const KEPT_MAX: usize = 1024;

/// The connection's statements prepared in SQL, by name.
fn kept<C: ClientInfo + ?Sized>(client: &C) -> Arc<Mutex<HashMap<String, Arc<Prepared>>>> {
    client.session_extensions().get_or_insert_with(|| Mutex::new(HashMap::<String, Arc<Prepared>>::new()))
}

/// What Describe says of `EXECUTE name`: the prepared statement's result.
pub fn described<C: ClientInfo + ?Sized>(client: &C, name: &str) -> Option<Arc<Prepared>> {
    kept(client).lock().expect("statements lock").get(name).cloned()
}

/// `DEALLOCATE name` of a statement PREPARE made (true), or (`None`) of all of them.
pub fn deallocate<C: ClientInfo + ?Sized>(client: &C, name: Option<&str>) -> bool {
    let kept = kept(client);
    let mut kept = kept.lock().expect("statements lock");
    match name {
        Some(name) => kept.remove(name).is_some(),
        None => {
            kept.clear();
            true
        }
    }
}

/// The types `PREPARE` declares, as Strata reads them in a cast.
async fn declared_types(session: &mut Session, types: &[String]) -> Result<Vec<DataType>> {
    if types.is_empty() {
        return Ok(Vec::new());
    }
    let casts: Vec<String> = types.iter().map(|t| format!("CAST(NULL AS {t})")).collect();
    let batches = session.query(&format!("SELECT {}", casts.join(", "))).await?;
    let batch = batches.first().ok_or_else(|| Error::Internal("the declared types gave no row".into()))?;
    Ok(batch.schema().fields().iter().map(|f| f.data_type().clone()).collect())
}

/// `EXECUTE name (arguments)`: the prepared command and its parameters.
pub async fn bind<C: ClientInfo>(
    client: &C,
    session: &mut Session,
    name: &str,
    arguments: &[String],
) -> Result<(Command, ParamValues)> {
    let kept = kept(client).lock().expect("statements lock").get(name).cloned();
    let Some(prepared) = kept else { return Err(Error::UndefinedPreparedStatement(name.to_string())) };
    let Some(command) = prepared.command.clone() else {
        return Err(Error::FeatureNotSupported(format!("prepared statement \"{name}\" is empty")));
    };
    let count = prepared.parameter_types.len();
    let stored = Arc::new(StoredStatement::new(name.to_string(), Prepared::clone(&prepared), vec![None; count]));
    let expected = stored.statement.parameter_types.len();
    if arguments.len() != expected {
        return Err(Error::Malformed(format!(
            "wrong number of parameters for prepared statement \"{name}\" (expected {expected}, got {})",
            arguments.len()
        )));
    }
    let mut portal: Portal<Prepared> = Portal::default();
    portal.statement = stored.clone();
    portal.parameter_format = Format::UnifiedText;
    portal.parameters = argument_texts(session, arguments, &prepared.parameter_types).await?;
    // A TIMESTAMPTZ was typed in the zone of the PREPARE; its value is an
    // instant, shown in the zone of each EXECUTE.
    let types: Vec<Option<DataType>> = (stored.statement.parameter_types.iter())
        .map(|t| match t {
            Some(DataType::Timestamp(unit, Some(_))) => {
                Some(DataType::Timestamp(*unit, Some(crate::catalog::UTC.into())))
            }
            other => other.clone(),
        })
        .collect();
    let types: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
    let params = super::parameters::deserialize(&portal, &types, session.time_zone())
        .map_err(|error| Error::InvalidTextRepresentation(pgwire_message(error)))?;
    Ok((command, params))
}

/// Each argument computed, as PostgreSQL's text of its value (NULL: None).
/// It is cast to its parameter's type first, so a value the type does not
/// read is refused as a cast refuses it (22P02, PostgreSQL's words).
async fn argument_texts(
    session: &mut Session,
    arguments: &[String],
    types: &[Option<DataType>],
) -> Result<Vec<Option<Bytes>>> {
    if arguments.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = arguments
        .iter()
        .zip(types)
        .map(|(argument, data_type)| {
            let field = data_type.as_ref().map(|t| datafusion::arrow::datatypes::Field::new("", t.clone(), true));
            match field.as_ref().and_then(crate::view::sql_type_of) {
                Some(sql_type) => format!("CAST(CAST(({argument}) AS {}) AS TEXT)", sql_type.sql_name()),
                None => format!("CAST(({argument}) AS TEXT)"),
            }
        })
        .collect();
    let batches = session.query(&format!("SELECT {}", texts.join(", "))).await?;
    let batch = batches.first().ok_or_else(|| Error::Internal("EXECUTE's arguments gave no row".into()))?;
    Ok(batch
        .columns()
        .iter()
        .map(|column| {
            let column = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
            let text = column.as_string::<i32>();
            Ok((!text.is_null(0)).then(|| Bytes::from(text.value(0).to_string())))
        })
        .collect::<std::result::Result<_, datafusion::arrow::error::ArrowError>>()?)
}

/// A parameter error's message: a value its type does not read (22P02).
fn pgwire_message(error: pgwire::error::PgWireError) -> String {
    match error {
        pgwire::error::PgWireError::UserError(info) => info.message,
        other => other.to_string(),
    }
}
