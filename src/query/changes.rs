//! `changes('x' [, after_offset [, upto_offset]])`: the change log of any
//! relation — `_offset`, `_ts`, `_diff` and its columns — as a table function.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::Expr;

use super::provider::{ChangeRange, RelationTable};
use crate::error::Error;
use crate::log::{Log, Offset};

pub const CHANGES_FUNCTION: &str = "changes";

#[derive(Debug)]
pub struct ChangesFunction {
    pub log: Arc<Log>,
}

impl TableFunctionImpl for ChangesFunction {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let usage = || {
            Error::InvalidParameterValue(
                "changes() takes a relation name and optionally two offsets: changes('x' [, after [, upto]])".into(),
            )
            .into_datafusion()
        };
        let name = match args.first() {
            Some(Expr::Literal(ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)), _)) => {
                crate::sql::parse::object_name(name)
            }
            _ => return Err(usage()),
        };
        let offset = |index: usize| -> DfResult<Option<Offset>> {
            match args.get(index) {
                None | Some(Expr::Literal(ScalarValue::Null, _)) => Ok(None),
                Some(Expr::Literal(value, _)) => match value.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
                    Ok(ScalarValue::Int64(Some(v))) if v >= 0 => Ok(Some(Offset(v as u64))),
                    Ok(ScalarValue::Int64(None)) => Ok(None),
                    _ => Err(usage()),
                },
                Some(_) => Err(usage()),
            }
        };
        if args.len() > 3 {
            return Err(usage());
        }
        let after = offset(1)?;
        let range = ChangeRange { after: after.unwrap_or(Offset::ZERO), upto: offset(2)? };
        let def = self.log.relation(&name).ok_or_else(|| Error::UndefinedRelation(name).into_datafusion())?;
        // Changes after an offset whose successors retention removed would
        // silently miss them (a subscriber resuming, a view catching up).
        if let (Some(after), Some(start)) = (after, self.log.history_start(def.id))
            && after.0 + 1 < start.offset.0
        {
            return Err(Error::InvalidParameterValue(format!(
                "{} \"{}\" keeps no changes before offset {}: older history was removed by its retention, so the \
                 changes after offset {} are incomplete",
                def.noun(),
                def.name,
                start.offset.0,
                after.0
            ))
            .into_datafusion());
        }
        Ok(Arc::new(RelationTable::changes(self.log.clone(), def, range)))
    }
}
