//! `COPY (SUBSCRIBE x …) TO STDOUT`: a relation's rows as of a start point
//! (the snapshot, each row with its own `_offset` and `_ts`), then every
//! change after it as commits make them visible, in offset order, with
//! `_offset`, `_ts`, `_diff` first. A subscription reads the log itself, so
//! a slow subscriber holds no buffer that writers fill: it reads at its own
//! pace, at most `SUBSCRIBE_OFFSETS_MAX` offsets at a time, and fails
//! clearly if retention drops history it has not read yet. Resuming with
//! `VERSION AS OF` the last `_offset` received delivers every later change
//! exactly once. A subscriber that finds more than its `behind_warning`
//! offsets waiting gets a WARNING (again after it has caught up and fallen
//! behind anew), and `strata.subscriptions` shows how far behind each is.

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::DataFrame;
use futures::StreamExt;

use super::{Session, parse_query, plan_statement};
use crate::catalog::RelationDef;
use crate::error::{Error, Notice, Result};
use crate::log::Offset;
use crate::query::{SubscriptionProgress, Subscriptions};
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
    /// The snapshot still to start: the relation as the start point saw it
    /// (the log as of the start, or `VERSION AS OF` the offset asked for).
    snapshot: Option<Snapshot>,
    /// The snapshot's rows being sent, a batch per `next`: memory holds
    /// what the scan has in flight, not the relation. (In a mutex only to
    /// make the subscription `Sync`; `&mut self` reaches it without locking.)
    snapshot_rows: Option<std::sync::Mutex<datafusion::execution::SendableRecordBatchStream>>,
    /// Every change up to this offset has been sent.
    after: Offset,
    commits: tokio::sync::watch::Receiver<u64>,
    /// More offsets than this waiting at a read is falling behind.
    behind_warning: u64,
    /// Told it is behind, and not caught up since.
    warned: bool,
    notices: Vec<Notice>,
    listing: Listing,
}

/// The subscription's row in `strata.subscriptions`, removed with it.
struct Listing {
    subscriptions: Subscriptions,
    id: u64,
}

impl Listing {
    fn update(&self, read_through: Offset, rows: usize) {
        let mut subscriptions = self.subscriptions.lock().expect("subscriptions lock");
        if let Some(progress) = subscriptions.get_mut(&self.id) {
            progress.read_through = read_through.0;
            progress.rows_read += rows as u64;
        }
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        self.subscriptions.lock().expect("subscriptions lock").remove(&self.id);
    }
}

static NEXT_SUBSCRIPTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Subscription {
    /// Starts `spec`, read by `cursor` (none for COPY).
    pub(super) fn start(session: Session, spec: &SubscribeSpec, cursor: Option<&str>) -> Result<Subscription> {
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
        let subscriptions = session.db.activity.subscriptions.clone();
        let id = NEXT_SUBSCRIPTION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let progress = SubscriptionProgress {
            relation: def.name.clone(),
            cursor: cursor.map(str::to_string),
            started_at: chrono::Utc::now().timestamp_micros(),
            read_through: after.0,
            rows_read: 0,
        };
        subscriptions.lock().expect("subscriptions lock").insert(id, progress);
        let listing = Listing { subscriptions, id };
        let behind_warning = spec.behind_warning;
        Ok(Subscription {
            session,
            def,
            snapshot,
            snapshot_rows: None,
            after,
            commits,
            behind_warning,
            warned: false,
            notices: vec![],
            listing,
        })
    }

    /// Warnings for the subscriber since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Tells the subscriber, once per time it falls behind, that more than
    /// `behind_warning` offsets wait past what it has been sent.
    fn note_waiting(&mut self, visible: u64) {
        let waiting = visible - self.after.0;
        if waiting <= self.behind_warning {
            self.warned = false;
        } else if !self.warned {
            self.warned = true;
            self.notices.push(Notice::warning(
                "01000",
                format!(
                    "subscription to \"{}\" is {waiting} offsets behind the log (sent through offset {}, log at {}); \
                     it catches up reading up to {SUBSCRIBE_OFFSETS_MAX} offsets at a time, as fast as the client \
                     takes them",
                    self.def.name, self.after.0, visible
                ),
            ));
        }
    }

    /// The columns sent: `_offset`, `_ts`, `_diff`, then the relation's.
    pub fn column_count(&self) -> usize {
        3 + self.def.visible_positions().len()
    }

    /// The schema of the rows `next` returns.
    /// The rows' layout, TIMESTAMPTZ columns in the subscribing session's zone.
    pub fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        let mut fields: Vec<datafusion::arrow::datatypes::Field> = crate::catalog::system_fields().to_vec();
        fields.push(crate::catalog::diff_field());
        fields.extend(self.def.visible_positions().iter().map(|p| self.def.columns[*p].field()));
        let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        super::time_zone::schema_in(&schema, self.session.time_zone())
    }

    /// The next rows to send, waiting for commits when there are none.
    pub async fn next(&mut self) -> Result<Vec<RecordBatch>> {
        let batches = self.next_rows().await?;
        let schema = self.schema();
        Ok(batches.into_iter().map(|b| super::time_zone::batch_in(b, &schema)).collect::<Result<_, _>>()?)
    }

    async fn next_rows(&mut self) -> Result<Vec<RecordBatch>> {
        let columns: Vec<String> =
            self.def.visible_positions().iter().map(|p| quote(&self.def.columns[*p].name)).collect();
        let name = quote(&self.def.name);
        // Taken only once its scan has started: a cancelled `next` leaves
        // it to start again (and a batch being read stays in the scan).
        if self.snapshot_rows.is_none()
            && let Some(snapshot) = &self.snapshot
        {
            let (version, view) = match snapshot {
                Snapshot::VersionAsOf(offset) => {
                    (format!(" VERSION AS OF {}", offset.0), self.session.db.log.snapshot())
                }
                Snapshot::At(view) => (String::new(), view.clone()),
            };
            // In scan order: sorting by `_offset` would hold every row at once.
            let sql =
                format!("SELECT _offset, _ts, CAST(1 AS BIGINT) AS _diff, {} FROM {name}{version}", columns.join(", "));
            self.snapshot_rows = Some(std::sync::Mutex::new(self.stream(&sql, view).await?));
            self.snapshot = None;
        }
        if let Some(rows) = &mut self.snapshot_rows {
            let rows = rows.get_mut().expect("snapshot rows lock");
            while let Some(batch) = rows.next().await {
                let batch = batch.map_err(Error::from_datafusion)?;
                if batch.num_rows() > 0 {
                    self.listing.update(self.after, batch.num_rows());
                    return Ok(vec![batch]);
                }
            }
            self.snapshot_rows = None;
        }
        loop {
            let visible = *self.commits.borrow_and_update();
            if visible > self.after.0 {
                self.note_waiting(visible);
                let upto = visible.min(self.after.0 + SUBSCRIBE_OFFSETS_MAX);
                let sql = format!(
                    "SELECT _offset, _ts, _diff, {} FROM changes('{}', {}, {upto}) ORDER BY _offset",
                    columns.join(", "),
                    self.def.name.replace('\'', "''"),
                    self.after.0
                );
                let batches = self.run(&sql, self.session.db.log.snapshot()).await?;
                self.after = Offset(upto);
                self.listing.update(self.after, batches.iter().map(RecordBatch::num_rows).sum());
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

    /// The rows of `sql` reading `view`, as they are produced.
    async fn stream(
        &self,
        sql: &str,
        view: crate::log::ReadView,
    ) -> Result<datafusion::execution::SendableRecordBatchStream> {
        let (state, statement) = self.session.prepare_at(parse_query(sql)?, false, view).await?;
        let plan = plan_statement(&state, statement, None).await?;
        DataFrame::new(state, plan).execute_stream().await.map_err(Error::from_datafusion)
    }

    /// Runs `sql` reading `view`.
    async fn run(&self, sql: &str, view: crate::log::ReadView) -> Result<Vec<RecordBatch>> {
        let mut stream = self.stream(sql, view).await?;
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

    pub fn take_notices(&mut self) -> Vec<Notice> {
        self.subscription.take_notices()
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
