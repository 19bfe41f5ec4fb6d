//! `COPY (SUBSCRIBE x …) TO STDOUT`: a relation's rows as of a start point
//! (the snapshot, each row with its own `_offset` and `_ts`), then every
//! change after it as commits make them visible, in offset order, with
//! `_offset`, `_ts`, `_diff` first. A subscription reads the log itself, so
//! a slow subscriber holds no buffer that writers fill: it reads at its own
//! pace, at most `SUBSCRIBE_OFFSETS_MAX` offsets at a time, and fails
//! clearly if retention drops history it has not read yet. Resuming with
//! `VERSION AS OF` the last `_offset` received delivers every later change
//! exactly once.

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::DataFrame;
use futures::StreamExt;

use super::{Session, parse_query, plan_statement};
use crate::catalog::RelationDef;
use crate::error::{Error, Result};
use crate::log::Offset;
use crate::sql::as_of::quote;
use crate::sql::subscribe::SubscribeSpec;

/// The most offsets one read of a subscription covers, which bounds its memory.
const SUBSCRIBE_OFFSETS_MAX: u64 = 100_000;

/// Where a subscription's snapshot reads.
enum Snapshot {
    /// The log as it was when the subscription started.
    At(crate::log::ReadView),
    VersionAsOf(Offset),
}

pub struct Subscription {
    session: Session,
    def: std::sync::Arc<RelationDef>,
    /// The snapshot still to send: the relation as the start point saw it
    /// (the log as of the start, or `VERSION AS OF` the offset asked for).
    snapshot: Option<Snapshot>,
    /// Every change up to this offset has been sent.
    after: Offset,
    commits: tokio::sync::watch::Receiver<u64>,
}

impl Subscription {
    pub(super) fn start(session: Session, spec: &SubscribeSpec) -> Result<Subscription> {
        let relation = &spec.relation;
        let def = session.db.log.relation(relation).ok_or_else(|| Error::UndefinedRelation(relation.to_string()))?;
        let commits = session.db.log.watch_commits();
        // Changes start right after the snapshot's offset: nothing twice, nothing missed.
        let (after, snapshot) = match spec.as_of {
            Some(offset) => (Offset(offset), Snapshot::VersionAsOf(Offset(offset))),
            None => {
                let view = session.db.log.snapshot();
                (view.offset, Snapshot::At(view))
            }
        };
        let snapshot = spec.snapshot.then_some(snapshot);
        Ok(Subscription { session, def, snapshot, after, commits })
    }

    /// The columns sent: `_offset`, `_ts`, `_diff`, then the relation's.
    pub fn column_count(&self) -> usize {
        3 + self.def.visible_positions().len()
    }

    /// The schema of the rows `next` returns.
    pub fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        let mut fields: Vec<datafusion::arrow::datatypes::Field> = crate::catalog::system_fields().to_vec();
        fields.push(crate::catalog::diff_field());
        fields.extend(self.def.visible_positions().iter().map(|p| self.def.columns[*p].field()));
        std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
    }

    /// The next rows to send, waiting for commits when there are none.
    pub async fn next(&mut self) -> Result<Vec<RecordBatch>> {
        let columns: Vec<String> =
            self.def.visible_positions().iter().map(|p| quote(&self.def.columns[*p].name)).collect();
        let name = quote(&self.def.name);
        // Taken only once sent: a cancelled `next` leaves it to send again.
        if let Some(snapshot) = &self.snapshot {
            let (version, view) = match snapshot {
                Snapshot::VersionAsOf(offset) => {
                    (format!(" VERSION AS OF {}", offset.0), self.session.db.log.snapshot())
                }
                Snapshot::At(view) => (String::new(), view.clone()),
            };
            let sql = format!(
                "SELECT _offset, _ts, CAST(1 AS BIGINT) AS _diff, {} FROM {name}{version} ORDER BY _offset",
                columns.join(", ")
            );
            let batches = self.run(&sql, view).await?;
            self.snapshot = None;
            if batches.iter().any(|b| b.num_rows() > 0) {
                return Ok(batches);
            }
        }
        loop {
            let visible = *self.commits.borrow_and_update();
            if visible > self.after.0 {
                let upto = visible.min(self.after.0 + SUBSCRIBE_OFFSETS_MAX);
                let sql = format!(
                    "SELECT _offset, _ts, _diff, {} FROM changes('{}', {}, {upto}) ORDER BY _offset",
                    columns.join(", "),
                    self.def.name.replace('\'', "''"),
                    self.after.0
                );
                let batches = self.run(&sql, self.session.db.log.snapshot()).await?;
                self.after = Offset(upto);
                if batches.iter().any(|b| b.num_rows() > 0) {
                    return Ok(batches);
                }
                continue;
            }
            if self.commits.changed().await.is_err() {
                return Err(Error::Storage(crate::log::Error::Closed));
            }
        }
    }

    /// Runs `sql` reading `view`.
    async fn run(&self, sql: &str, view: crate::log::ReadView) -> Result<Vec<RecordBatch>> {
        let (state, statement) = self.session.prepare_at(parse_query(sql)?, false, view).await?;
        let plan = plan_statement(&state, statement, None).await?;
        let mut stream = DataFrame::new(state, plan).execute_stream().await.map_err(Error::from_datafusion)?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch.map_err(Error::from_datafusion)?);
        }
        Ok(batches)
    }
}

/// A `DECLARE … CURSOR FOR SUBSCRIBE` cursor: its subscription and the rows
/// read from it but not fetched yet.
pub struct Cursor {
    subscription: Subscription,
    pending: Option<RecordBatch>,
}

impl Cursor {
    pub fn new(subscription: Subscription) -> Cursor {
        Cursor { subscription, pending: None }
    }

    pub fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.subscription.schema()
    }

    /// Up to `count` rows (all there are with `None`), waiting up to
    /// `timeout` (forever without one) for the first; none when it passes.
    pub async fn fetch(&mut self, count: Option<u64>, timeout: Option<std::time::Duration>) -> Result<RecordBatch> {
        if self.pending.as_ref().is_none_or(|b| b.num_rows() == 0) {
            let next = match timeout {
                Some(timeout) => match tokio::time::timeout(timeout, self.subscription.next()).await {
                    Ok(next) => Some(next?),
                    Err(_) => None,
                },
                None => Some(self.subscription.next().await?),
            };
            if let Some(batches) = next {
                let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| self.subscription.schema());
                self.pending = Some(datafusion::arrow::compute::concat_batches(&schema, &batches)?);
            }
        }
        let Some(pending) = self.pending.take() else { return Ok(RecordBatch::new_empty(self.subscription.schema())) };
        let take = count.map(|c| (c as usize).min(pending.num_rows())).unwrap_or(pending.num_rows());
        let rest = pending.slice(take, pending.num_rows() - take);
        self.pending = (rest.num_rows() > 0).then_some(rest);
        Ok(pending.slice(0, take))
    }
}
