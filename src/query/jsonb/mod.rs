//! JSONB: stored as text in PostgreSQL's normalized form ([`value`]),
//! marked on every field that holds it (Arrow's canonical `arrow.json`
//! extension) so results go to clients as `jsonb` and `pg_typeof` names it,
//! with PostgreSQL's operators ([`operators`]) and functions ([`functions`]).

mod build;
mod functions;
mod operators;
mod sets;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::Field;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;

pub use functions::Kind as JsonbFunction;
pub use sets::SetFunction;
pub use value::{Json, normalize, written_out};

/// Arrow's name for a text field holding JSON; `datafusion-functions-json`
/// marks what `->` returns with it too.
const EXTENSION_NAME: &str = "arrow.json";
const EXTENSION_KEY: &str = "ARROW:extension:name";
const EXTENSION_METADATA_KEY: &str = "ARROW:extension:metadata";

/// `field` marked as holding JSONB.
pub fn tag(field: Field) -> Field {
    let mut metadata: HashMap<String, String> = field.metadata().clone();
    metadata.insert(EXTENSION_KEY.into(), EXTENSION_NAME.into());
    metadata.insert(EXTENSION_METADATA_KEY.into(), "{}".into());
    field.with_metadata(metadata)
}

pub fn is_jsonb(field: &Field) -> bool {
    field.metadata().get(EXTENSION_KEY).is_some_and(|name| name == EXTENSION_NAME)
}

/// Registers the functions and the operators in a session.
pub fn register(context: &mut SessionContext) -> datafusion::common::Result<()> {
    let functions = functions::functions();
    context.register_expr_planner(Arc::new(operators::JsonbOperators::new(&functions)))?;
    for function in functions.into_iter().chain(build::functions()).chain(sets::functions()) {
        context.register_udf(Arc::new(function))?;
    }
    Ok(())
}
