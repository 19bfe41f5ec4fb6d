//! Arrow batches to wire rows (text or binary per column), via `arrow-pg`.

use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch, into_pg_type};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use futures::Stream;
use futures::{StreamExt, stream};
use pgwire::api::ConnectionHandle;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

use super::pg_format::postgres_text;
use super::sqlstate::to_pgwire;
use crate::error::Error;
use crate::query::jsonb::is_jsonb;
use crate::sql::column_names::display_schema;

pub fn fields(schema: &SchemaRef, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let fields = arrow_schema_to_pg_fields(&display_schema(schema), format, None)?;
    // arrow-pg knows JSON only as text: a JSONB field is announced as jsonb;
    // and it knows oids, but not in an array, and takes the mark of an oid
    // cast to text (DataFusion keeps a cast's source metadata) as an oid.
    fields
        .into_iter()
        .zip(schema.fields())
        .map(|(info, field)| {
            let (announced, size) = match is_jsonb(field) {
                true => (Type::JSONB, -1),
                false if is_oid_array(field) => (Type::OID_ARRAY, -1),
                false if is_oid(field) && *field.data_type() != DataType::Int32 => {
                    (into_pg_type(field.data_type())?, info.type_size())
                }
                false => return Ok(info),
            };
            Ok(FieldInfo::new(info.name().into(), info.table_id(), info.column_id(), announced, info.format())
                .with_format_options(info.format_options().clone())
                .with_type_size(size))
        })
        .collect()
}

/// A field marked as holding an oid.
fn is_oid(field: &Field) -> bool {
    field.metadata().contains_key(arrow_pg::datatypes::PG_OID_ALIAS_KEY)
}

/// A list of INTEGERs marked as oids (`strata_oid_array`).
fn is_oid_array(field: &Field) -> bool {
    matches!(field.data_type(), DataType::List(element)
        if element.metadata().get(arrow_pg::datatypes::PG_OID_ALIAS_KEY).is_some_and(|kind| kind == "oid"))
}

/// The fields values are encoded by: an array sent as text is written by
/// `postgres_text` whole, and arrow-pg would quote it as one element of
/// the announced array type, so it is encoded as text.
fn encoding_fields(fields: &[FieldInfo]) -> Vec<FieldInfo> {
    fields
        .iter()
        .map(|info| match (info.datatype().kind(), info.format()) {
            (postgres_types::Kind::Array(_), pgwire::api::results::FieldFormat::Text) => {
                FieldInfo::new(info.name().into(), info.table_id(), info.column_id(), Type::TEXT, info.format())
                    .with_format_options(info.format_options().clone())
            }
            _ => info.clone(),
        })
        .collect()
}

pub fn query_response(
    schema: &SchemaRef,
    rows: SendableRecordBatchStream,
    format: &Format,
    cancel: Option<Arc<ConnectionHandle>>,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields(schema, format)?);
    let row_fields = Arc::new(encoding_fields(&fields));
    let jsonb: Vec<bool> = fields.iter().map(|f| *f.datatype() == Type::JSONB).collect();
    let format = format.clone();
    let data_rows = rows
        .map(move |batch| {
            match batch.map_err(Error::from_datafusion).and_then(|b| Ok(postgres_text(b, &format, &jsonb)?)) {
                Ok(batch) => stream::iter(encoded_rows(row_fields.clone(), batch)),
                Err(error) => stream::iter(vec![Err(to_pgwire(error))]),
            }
        })
        .flatten();
    Ok(QueryResponse::new(fields, cancellable(data_rows, cancel)))
}

/// A batch's data rows, ending at the first that fails: arrow-pg's row
/// iterator yields the same error again and again for a column it cannot
/// encode, and collecting it filled memory until the server died.
fn encoded_rows(fields: Arc<Vec<FieldInfo>>, batch: RecordBatch) -> Vec<PgWireResult<DataRow>> {
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in encode_recordbatch(fields, batch) {
        let failed = row.is_err();
        rows.push(row);
        if failed {
            break;
        }
    }
    rows
}

/// Ends `rows` with `57014 query_canceled` when a cancel request arrives.
fn cancellable(
    rows: impl Stream<Item = PgWireResult<DataRow>> + Send + 'static,
    handle: Option<Arc<ConnectionHandle>>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    struct State<S> {
        rows: std::pin::Pin<Box<S>>,
        handle: Option<Arc<ConnectionHandle>>,
        cancel: Option<futures::channel::oneshot::Receiver<()>>,
        done: bool,
    }
    let state = State { rows: Box::pin(rows), handle, cancel: None, done: false };
    stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        if state.cancel.is_none()
            && let Some(handle) = state.handle.take()
        {
            state.cancel = Some(handle.start_query().await);
        }
        let next = match state.cancel.as_mut() {
            Some(cancel) => tokio::select! {
                fired = cancel => match fired {
                    Ok(()) => {
                        state.done = true;
                        return Some((Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                            "ERROR".into(),
                            "57014".into(),
                            "canceling statement due to user request".into(),
                        )))), state));
                    }
                    // Superseded by the next query: no cancel can come for this one.
                    Err(_) => {
                        state.cancel = None;
                        state.rows.next().await
                    }
                },
                row = state.rows.next() => row,
            },
            None => state.rows.next().await,
        };
        next.map(|row| (row, state))
    })
}
