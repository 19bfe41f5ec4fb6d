//! INSERT with the clauses DataFusion does not plan: `ON CONFLICT` (tables),
//! `RETURNING` and a target alias. DataFusion plans the INSERT without them,
//! which fills defaults and converts types; its input yields the proposed
//! rows, and Strata decides what becomes of each.

use std::sync::Arc;

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use datafusion::sql::sqlparser::ast::{Insert, OnConflictAction, OnInsert, SelectItem, Statement};

use super::{Outcome, RETRIES_MAX, Session, insert_target, not_null_from_values, plan_statement};
use crate::catalog::{RelationDef, RelationKind};
use crate::error::{Error, Result};
use crate::query::scope::StatementScope;
use crate::sql::parse::object_name;
use crate::table::upsert::{Arbiter, ConflictAction, arbiter, conflict_action, resolve};
use crate::table::write::commit_or_buffer;
use crate::write::returning::{Returned, returning};
use crate::write::serial::Counters;
use crate::write::{Limits, check_rows, user_columns};

/// The clauses taken off an INSERT before DataFusion plans it.
struct Clauses {
    def: Arc<RelationDef>,
    /// How the statement names its target: the alias, else the relation.
    qualifier: String,
    action: Option<(Arbiter, ConflictAction)>,
    returning: Option<Vec<SelectItem>>,
}

impl Clauses {
    /// Whether an ON CONFLICT statement that failed with `error` is to be
    /// decided again on the newer state: a row it read changed, or a value
    /// its arbiter covers was taken since its view was fixed (not a value
    /// of another constraint, which PostgreSQL reports too).
    fn may_retry(&self, error: &crate::log::Error) -> bool {
        let Some((arbiter, _)) = &self.action else { return false };
        match error {
            crate::log::Error::Conflict => true,
            crate::log::Error::UniqueViolation { constraint, .. } => arbiter.decides(&self.def, constraint),
            _ => false,
        }
    }
}

/// Whether the INSERT needs Strata's own path.
pub fn has_clauses(insert: &Insert) -> bool {
    insert.on.is_some() || insert.returning.is_some() || insert.table_alias.is_some()
}

impl Session {
    pub(super) async fn insert_with_clauses(
        &mut self,
        mut insert: Insert,
        params: Option<&ParamValues>,
    ) -> Result<Outcome> {
        let clauses = self.take_clauses(&mut insert)?;
        let mut attempt = 1;
        loop {
            // A key taken or a row changed since the statement's view was
            // fixed: outside a transaction, decide again on the new state.
            match self.insert_once(&clauses, &insert, params).await {
                Err(Error::Storage(error))
                    if self.transaction.is_none() && attempt < RETRIES_MAX && clauses.may_retry(&error) =>
                {
                    tokio::time::sleep(super::retry_backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The plan (for parameter types) and RETURNING's columns and plan, for
    /// Describe; RETURNING is planned with `returning_params` (typed NULLs,
    /// once the parameters' types are known) for its columns' types.
    pub async fn describe_insert(
        &self,
        insert: &Insert,
        returning_params: Option<&ParamValues>,
    ) -> Result<(LogicalPlan, Option<Returned>)> {
        let mut insert = insert.clone();
        let clauses = self.take_clauses(&mut insert)?;
        let (state, statement) = self.prepare(Statement::Insert(insert), false).await?;
        let plan = plan_statement(&state, statement, None).await?;
        let returned = match &clauses.returning {
            Some(items) => {
                let empty = RecordBatch::new_empty(clauses.def.user_schema());
                let view = self.read_view();
                Some(returning(&state, &view, &clauses.def, items, &clauses.qualifier, &empty, returning_params).await?)
            }
            None => None,
        };
        Ok((plan, returned))
    }

    fn take_clauses(&self, insert: &mut Insert) -> Result<Clauses> {
        let relation = object_name(&insert.table.to_string());
        let def = self.relation(&relation).ok_or(Error::UndefinedRelation(relation))?;
        let qualifier = match insert.table_alias.take() {
            Some(alias) => object_name(&alias.alias.to_string()),
            None => def.name.clone(),
        };
        crate::sql::default_keyword::fill_conflict_defaults(insert, &def);
        let action = match insert.on.take() {
            None => None,
            Some(OnInsert::OnConflict(_)) if def.kind == RelationKind::Stream => {
                return Err(Error::InvalidColumnReference);
            }
            // A keyless table without UNIQUE constraints: nothing conflicts.
            Some(OnInsert::OnConflict(on))
                if def.row_id().is_some()
                    && def.uniques.is_empty()
                    && on.conflict_target.is_none()
                    && matches!(on.action, OnConflictAction::DoNothing) =>
            {
                None
            }
            Some(OnInsert::OnConflict(on)) => Some((arbiter(&def, &on)?, conflict_action(&def, &on, &qualifier)?)),
            Some(other) => return Err(Error::FeatureNotSupported(format!("{other} is not supported"))),
        };
        Ok(Clauses { def, qualifier, action, returning: insert.returning.take() })
    }

    async fn insert_once(
        &mut self,
        clauses: &Clauses,
        insert: &Insert,
        params: Option<&ParamValues>,
    ) -> Result<Outcome> {
        let def = &clauses.def;
        let (state, statement) = self.prepare(Statement::Insert(insert.clone()), false).await?;
        let scope = StatementScope::from_config(state.config())
            .ok_or_else(|| Error::Internal("a statement without its scope".into()))?;
        let columns = insert_target(&statement).map(|(_, columns)| columns).unwrap_or_default();
        let plan = plan_statement(&state, statement, params).await?;
        let LogicalPlan::Dml(dml) = plan else {
            return Err(Error::Internal("INSERT did not plan as an insert".into()));
        };
        let batches = DataFrame::new(state.clone(), Arc::unwrap_or_clone(dml.input))
            .collect()
            .await
            .map_err(|e| not_null_from_values(Error::from_datafusion(e), &def.name, &columns))?;
        let counters = self.serial_counters(def).await?;
        let proposed = proposed_rows(def, &batches, &counters)?;
        let limits = Limits::from(&self.db.config);
        limits.check_statement(proposed.num_rows(), proposed.get_array_memory_size())?;

        // Only ON CONFLICT decides row by row; other rows are written as they are.
        let (write, written) = match &clauses.action {
            Some((arbiter, action)) => {
                let table = scope.tables.get(def.id).ok_or_else(|| Error::UndefinedRelation(def.name.clone()))?;
                let (write, written) =
                    resolve(&state, table, def, proposed, *arbiter, action, &clauses.qualifier, params).await?;
                (Some(write), written)
            }
            None => (None, proposed),
        };
        let returned = match &clauses.returning {
            Some(items) => {
                Some(returning(&state, &self.read_view(), def, items, &clauses.qualifier, &written, params).await?)
            }
            None => None,
        };
        let rows = written.num_rows();
        match write {
            Some(write) if write.deletes.num_rows() + write.inserts.num_rows() > 0 => {
                commit_or_buffer(&self.db.log, Some(&scope), def, write, &limits).await?;
            }
            None if rows > 0 => self.write_rows(def, written).await?,
            _ => {}
        }
        Ok(match returned {
            Some(returned) => Outcome::Returned { tag: "INSERT 0", schema: returned.schema, batches: returned.batches },
            None => Outcome::Done { tag: "INSERT".into(), rows: Some(rows) },
        })
    }
}

/// The INSERT's rows in the relation's user columns, checked (NOT NULL,
/// lengths, JSON) before any conflict is looked at, as PostgreSQL does;
/// SERIAL columns left NULL take their counters' next values first.
fn proposed_rows(def: &RelationDef, batches: &[RecordBatch], serials: &Counters) -> Result<RecordBatch> {
    let mut rows = Vec::with_capacity(batches.len());
    for batch in batches {
        let user = user_columns(def, batch.clone())?;
        let user = crate::write::serial::fill(def, user, serials)?;
        rows.push(check_rows(def, user)?);
    }
    Ok(concat_batches(&def.user_schema(), &rows)?)
}
