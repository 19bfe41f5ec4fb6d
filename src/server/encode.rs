//! Arrow batches to wire rows (text or binary per column), via `arrow-pg`.

use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::{StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::error::PgWireResult;

use super::sqlstate::to_pgwire;
use crate::error::Error;

pub fn fields(schema: &SchemaRef, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    arrow_schema_to_pg_fields(schema, format, None)
}

pub fn query_response(
    schema: &SchemaRef,
    rows: SendableRecordBatchStream,
    format: &Format,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields(schema, format)?);
    let row_fields = fields.clone();
    let data_rows = rows
        .map(move |batch| match batch {
            Ok(batch) => stream::iter(encode_recordbatch(row_fields.clone(), batch).collect::<Vec<_>>()),
            Err(error) => stream::iter(vec![Err(to_pgwire(Error::from_datafusion(error)))]),
        })
        .flatten();
    Ok(QueryResponse::new(fields, data_rows))
}
