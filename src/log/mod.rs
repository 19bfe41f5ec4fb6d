//! The one storage interface. Everything above this module appends commits
//! and reads relations at an offset through [`Log`]; WAL files, segments and
//! the object store stay behind it.
//!
//! Write path: a commit request goes to the writer thread, which assigns the
//! commit its offsets and time, frames it into the WAL, shares one fsync with
//! every other commit waiting (group commit), and only then makes the commit
//! visible and acknowledges it. Sealing moves the in-memory tail into Parquet
//! segments, records them in the manifest, and deletes the WAL they cover.
//! Read path: a reader fixes a visible offset and gets a relation's segments
//! and tail batches up to it; commits are never split.

pub mod cancel_gate;
mod coalesce;
mod indexes;
pub mod layout;
mod position;
pub mod record;
pub mod segment;
pub mod snapshot;
pub mod store;
mod tail;
pub mod view_state;
pub mod wal;
mod writer;
pub(crate) use writer::{Alteration, alteration};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::error::ArrowError;
use tokio::sync::{Notify, mpsc, oneshot};

pub use position::{CommitInfo, CommitTs, Offset, PROVISIONAL_RELATION_IDS, RelationId};
pub use record::{CommitRecord, Entry};
pub use segment::SegmentMeta;
pub use snapshot::SnapshotMeta;
pub use store::{STORE_URL, SegmentStore};
pub use tail::RelationSnapshot;

use crate::catalog::{
    Catalog, CheckDef, ColumnDef, ForeignKeyDef, HistoryStart, RelationDef, RelationKind, Retention, UniqueDef,
};
use crate::config::Config;
use crate::table::TableWrite;
use crate::table::state::{TableState, TableStates, split_log_batch};
use segment::Manifest;
use tail::Tails;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("corrupt log: {file} at byte {position}: {reason}")]
    Corrupt { file: PathBuf, position: u64, reason: String },
    #[error("object store: {0}")]
    Store(String),
    #[error("cannot encode commit: {0}")]
    Encode(String),
    #[error("cannot decode record: {0}")]
    Decode(String),
    #[error("the log refuses writes after a failed fsync; restart the server")]
    Poisoned,
    #[error("the log is shut down")]
    Closed,
    #[error("relation \"{0}\" already exists")]
    DuplicateRelation(String),
    #[error("relation \"{0}\" does not exist")]
    UndefinedRelation(String),
    #[error("{0}")]
    WrongObjectType(String),
    #[error("column \"{column}\" of relation \"{relation}\" already exists")]
    DuplicateColumn { relation: String, column: String },
    #[error("column \"{column}\" of relation \"{relation}\" does not exist")]
    UndefinedColumn { relation: String, column: String },
    #[error("{0}")]
    DependentObjects(String),
    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    UniqueViolation { table: String, constraint: String, detail: String },
    /// CREATE UNIQUE INDEX or ADD CONSTRAINT … UNIQUE over rows that repeat a value.
    #[error("could not create unique index \"{index}\"")]
    UniqueIndexBlocked { table: String, index: String, detail: String },
    /// Something PostgreSQL does that Strata does not (yet): 0A000.
    #[error("{0}")]
    Unsupported(String),
    /// More of something than Strata keeps (54000).
    #[error("{0}")]
    LimitExceeded(String),
    #[error("index \"{0}\" does not exist")]
    UndefinedIndex(String),
    #[error("constraint \"{name}\" of relation \"{relation}\" does not exist")]
    UndefinedConstraint { relation: String, name: String },
    /// A row names a key its referenced table lacks, or a deleted key is
    /// still named; `message` is PostgreSQL's, which says which.
    #[error("{message}")]
    ForeignKeyViolation { table: String, constraint: String, message: String, detail: String },
    /// A row the commit retracts changed since the statement read it.
    #[error("could not serialize access due to concurrent update")]
    Conflict,
    /// Maintaining a view failed on this commit's changes (e.g. a division by zero in its query).
    #[error("materialized view \"{view}\": {source}")]
    View { view: String, source: crate::view::ViewError },
    /// A view's backfill read its inputs before a commit that changed them.
    #[error("the inputs of a new view changed while it was built")]
    ViewBehind,
    #[error("commit of {bytes} bytes exceeds wal_record_bytes_max ({max} bytes)")]
    CommitTooLarge { bytes: u64, max: u64 },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn corrupt(file: &std::path::Path, position: u64, reason: &str) -> Error {
        Error::Corrupt { file: file.to_path_buf(), position, reason: reason.to_string() }
    }
}

impl Change {
    /// The definition a `CreateRelation` change gives a relation, as `id`
    /// created at `created_at`.
    pub fn created_relation(&self, id: RelationId, created_at: Offset) -> Option<RelationDef> {
        let Change::CreateRelation {
            name, kind, columns, primary_key, checks, uniques, foreign_keys, retention, ..
        } = self
        else {
            return None;
        };
        let mut foreign_keys = foreign_keys.clone();
        for key in &mut foreign_keys {
            if key.parent == ForeignKeyDef::THIS_TABLE {
                key.parent = id;
            }
        }
        Some(RelationDef {
            id,
            name: name.clone(),
            kind: *kind,
            columns: columns.clone(),
            created_at,
            primary_key: primary_key.clone(),
            checks: checks.clone(),
            uniques: uniques.clone(),
            indexes: Vec::new(),
            foreign_keys,
            retention: retention.clone(),
            view: None,
            schemas: Default::default(),
        })
    }
}

/// One change a commit asks for, before the writer resolves it.
#[derive(Debug, Clone)]
pub enum Change {
    CreateRelation {
        name: String,
        kind: RelationKind,
        columns: Vec<ColumnDef>,
        primary_key: Vec<usize>,
        checks: Vec<CheckDef>,
        uniques: Vec<UniqueDef>,
        foreign_keys: Vec<ForeignKeyDef>,
        retention: Option<Retention>,
        if_not_exists: bool,
        /// The id a transaction block's own statements knew it by; later
        /// changes of the same commit name it so (see
        /// [`PROVISIONAL_RELATION_IDS`]).
        provisional: Option<RelationId>,
    },
    /// An index made or dropped.
    AlterIndexes(IndexChange),
    /// A column added to or dropped from a relation.
    AlterColumns {
        name: String,
        kind: RelationKind,
        if_exists: bool,
        change: ColumnChange,
    },
    /// A new retention for a relation (`None`: keep all history).
    SetRetention {
        name: String,
        kind: RelationKind,
        retention: Option<Retention>,
        if_exists: bool,
    },
    DropRelation {
        name: String,
        if_exists: bool,
        /// Also drop the views that read it (else they forbid the drop).
        cascade: bool,
    },
    /// A continuous view, compiled and backfilled through `through`, with
    /// its result so far; or (`restore`) an existing view's operators,
    /// rebuilt at start.
    CreateView {
        def: Box<RelationDef>,
        runtime: Box<crate::view::ViewRuntime>,
        through: Offset,
        output: Option<crate::view::delta::Delta>,
        restore: bool,
        if_not_exists: bool,
        /// `CREATE OR REPLACE`: a view of that name is dropped in the same commit.
        replace: bool,
    },
    RenameRelation {
        name: String,
        kind: RelationKind,
        new_name: String,
        if_exists: bool,
    },
    /// Rows for a stream, already checked against its user schema.
    Append {
        relation: RelationId,
        rows: datafusion::arrow::record_batch::RecordBatch,
    },
    /// Rows retracted from and added to a table; keys are checked at commit.
    TableWrite(TableWrite),
}

/// What `CREATE [UNIQUE] INDEX`, `DROP INDEX` and `ALTER TABLE … ADD
/// CONSTRAINT … UNIQUE` ask for.
#[derive(Debug, Clone)]
pub enum IndexChange {
    Create {
        table: String,
        index: NewIndex,
        if_not_exists: bool,
    },
    Drop {
        name: String,
        if_exists: bool,
    },
    /// `ALTER TABLE table DROP CONSTRAINT name` (a UNIQUE constraint).
    DropConstraint {
        table: String,
        name: String,
        if_exists: bool,
    },
}

/// An index or UNIQUE constraint as written: its columns by name.
#[derive(Debug, Clone)]
pub struct NewIndex {
    /// `None`: named as PostgreSQL names it (`t_a_idx`, a constraint `t_a_key`).
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub unique: bool,
    pub nulls_not_distinct: bool,
    /// A UNIQUE constraint (`ADD CONSTRAINT`), not only an index.
    pub constraint: bool,
}

/// What `ALTER … ADD COLUMN` / `DROP COLUMN` asks for.
#[derive(Debug, Clone)]
pub enum ColumnChange {
    /// The column, its missing value already evaluated.
    Add {
        column: ColumnDef,
        if_not_exists: bool,
    },
    Drop {
        name: String,
        if_exists: bool,
    },
    Rename {
        from: String,
        to: String,
    },
}

struct CommitRequest {
    changes: Vec<Change>,
    reply: oneshot::Sender<Result<Option<CommitInfo>>>,
}

enum WriterMessage {
    Commit(CommitRequest),
    Shutdown,
}

/// The catalog and table states together with the offset they are current
/// at; replaced as one.
struct Published {
    catalog: Arc<Catalog>,
    tables: Arc<TableStates>,
    visible: Offset,
}

/// What a statement reads: catalog, table states and offset, all of one moment.
#[derive(Debug, Clone)]
pub struct ReadView {
    pub catalog: Arc<Catalog>,
    pub tables: Arc<TableStates>,
    pub offset: Offset,
}

/// State shared by the writer thread, the sealer and readers.
struct Shared {
    published: RwLock<Published>,
    /// `published.visible`, readable without the lock.
    visible: AtomicU64,
    tails: Tails,
    poisoned: AtomicBool,
    /// Woken when a seal frees tail memory (writers may be waiting on it).
    tail_freed: Notify,
    /// The visible offset, for subscribers waiting for new commits.
    committed: tokio::sync::watch::Sender<u64>,
    /// The views' operators as of an offset, published by the writer after
    /// each group, for the sealer to checkpoint.
    views_at: Mutex<Option<(Offset, crate::view::Views)>>,
}

pub struct Log {
    shared: Arc<Shared>,
    commits: mpsc::Sender<WriterMessage>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    store: SegmentStore,
    wal_dir: PathBuf,
    /// One seal at a time holds this lock.
    seal_state: tokio::sync::Mutex<SealState>,
    tail_bytes_max: usize,
    snapshot_changes_min: u64,
    scan_cache: crate::table::scan_cache::ScanCache,
    scan_cache_rows_min: usize,
    segment_bytes_target: u64,
    /// The next row identity for a keyless table's new row.
    next_row_id: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("visible_offset", &self.visible_offset()).finish()
    }
}

struct SealState {
    /// The last manifest written.
    manifest: Manifest,
    /// Files no manifest lists any more, kept until no plan reads them.
    retired: Vec<Retired>,
}

/// A file of a dropped relation, of history retention removed or of merged
/// segments; deleted once no reader holds its metadata (`held`, a segment's
/// or snapshot's, whose count readers raise while they use the file).
struct Retired {
    path: String,
    held: Arc<dyn std::any::Any + Send + Sync>,
}

impl Retired {
    fn segment(segment: Arc<SegmentMeta>) -> Retired {
        Retired { path: segment.path.clone(), held: segment }
    }

    fn snapshot(snapshot: Arc<SnapshotMeta>) -> Retired {
        Retired { path: snapshot.path.clone(), held: snapshot }
    }

    fn view_state(state: Arc<view_state::ViewStateMeta>) -> Retired {
        Retired { path: state.path.clone(), held: state }
    }

    fn unread(&self) -> bool {
        Arc::strong_count(&self.held) == 1
    }
}

/// What recovery found, for the startup log line.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryReport {
    pub sealed_through: Offset,
    pub segments: usize,
    pub replayed_commits: u64,
    /// Table changes read from segments after the state snapshots.
    pub state_rows_replayed: u64,
    pub last_offset: Offset,
    pub torn_bytes: u64,
}

/// What one pass of retention removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionReport {
    pub segments_dropped: usize,
    pub snapshots_dropped: usize,
}

/// What one seal did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SealReport {
    pub sealed_through: Offset,
    pub segments_written: usize,
    pub snapshots_written: usize,
    pub rows: u64,
    pub wal_files_removed: usize,
}

impl Log {
    /// Opens (or creates) the log under `config.data_dir`: loads the
    /// manifest, then replays the WAL after what it seals.
    pub async fn open(config: &Config) -> Result<(Log, RecoveryReport)> {
        let wal_dir = config.data_dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| Error::io(&wal_dir, e))?;
        let store = SegmentStore::open(config)?;
        let manifest = Manifest::load_or_create(&store).await?;
        SegmentStore::record_pairing(config)?;
        remove_unlisted_segments(&store, &manifest).await;

        let mut catalog = Catalog::default();
        catalog.reserve_ids_through(manifest.next_relation_id);
        for relation in &manifest.relations {
            catalog.insert(relation.clone());
        }
        let tails = Tails::default();
        for segment in &manifest.segments {
            tails.add_segment(segment.clone());
        }
        for snapshot in &manifest.snapshots {
            tails.add_snapshot(snapshot.clone());
        }
        for (relation, start) in &manifest.history_starts {
            tails.trim(*relation, *start, &[], &[]);
        }
        let (tables, state_rows_replayed) = load_table_states(&store, &catalog, &manifest).await?;
        let sealed_through = manifest.sealed_through;
        let mut next_offset = sealed_through.next();
        let mut last_ts = manifest.last_ts;
        let mut replayed_commits = 0;
        let mut state = writer::State { catalog, tables };
        let mut next_row_id = manifest.next_row_id;
        let end = wal::scan(&wal_dir, |payload| {
            let record = CommitRecord::decode(payload)?;
            if record.last_offset() <= sealed_through {
                return Ok(());
            }
            next_row_id = next_row_id.max(max_row_id(&state.catalog, &record) + 1);
            if record.first_offset != next_offset {
                return Err(Error::Decode(format!(
                    "commit starts at offset {} but {} was expected",
                    record.first_offset, next_offset
                )));
            }
            writer::apply(&mut state, &tails, &record)?;
            next_offset = record.last_offset().next();
            last_ts = record.ts;
            replayed_commits += 1;
            Ok(())
        })?;

        let last_offset = Offset(next_offset.0 - 1);
        // Every identity in sealed rows is below the manifest's mark, every
        // one in the WAL was seen above.
        let next_row_id = next_row_id.max(last_offset.0 as i64 + 1);
        let shared = Arc::new(Shared {
            published: RwLock::new(Published {
                catalog: Arc::new(state.catalog),
                tables: Arc::new(state.tables),
                visible: last_offset,
            }),
            visible: AtomicU64::new(last_offset.0),
            tails,
            poisoned: AtomicBool::new(false),
            tail_freed: Notify::new(),
            committed: tokio::sync::watch::Sender::new(last_offset.0),
            views_at: Mutex::new(None),
        });
        let wal = wal::WalWriter::open(&wal_dir, end.resume, next_offset.0, config.wal_file_bytes_max)?;
        let (sender, receiver) = mpsc::channel(config.commit_queue_depth_max);
        let writer = writer::Writer {
            shared: shared.clone(),
            wal,
            receiver,
            next_offset,
            last_ts,
            group_commits_max: config.group_commit_commits_max,
            record_bytes_max: config.wal_record_bytes_max,
            views: Default::default(),
            changed_at: Default::default(),
        };
        let handle = std::thread::Builder::new()
            .name("strata-log-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::io(&wal_dir, e))?;
        let report = RecoveryReport {
            sealed_through,
            segments: manifest.segments.len(),
            replayed_commits,
            state_rows_replayed,
            last_offset,
            torn_bytes: end.torn_bytes,
        };
        let log = Log {
            shared,
            commits: sender,
            writer_thread: Mutex::new(Some(handle)),
            store,
            wal_dir,
            seal_state: tokio::sync::Mutex::new(SealState { manifest, retired: Vec::new() }),
            tail_bytes_max: config.tail_bytes_max,
            snapshot_changes_min: config.snapshot_changes_min,
            scan_cache: crate::table::scan_cache::ScanCache::new(config.scan_cache_bytes_max),
            scan_cache_rows_min: config.scan_cache_rows_min,
            segment_bytes_target: config.seal_bytes_max as u64,
            next_row_id: std::sync::atomic::AtomicI64::new(next_row_id),
        };
        Ok((log, report))
    }

    /// Appends one atomic commit and waits until it is durable and visible.
    /// Returns `None` when the changes amount to nothing (no event appended).
    /// Waits first while unsealed rows exceed `tail_bytes_max`.
    pub async fn commit(&self, changes: Vec<Change>) -> Result<Option<CommitInfo>> {
        while self.shared.tails.tail_bytes() > self.tail_bytes_max {
            let freed = self.shared.tail_freed.notified();
            if self.shared.tails.tail_bytes() <= self.tail_bytes_max {
                break;
            }
            freed.await;
        }
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let changes = coalesce::coalesced(changes)?;
        // Room in the writer's queue is waited for while a cancel can still
        // stop the statement; the hand-over itself is then immediate.
        let permit = self.commits.reserve().await.map_err(|_| Error::Closed)?;
        let _closed = cancel_gate::close().await;
        let (reply, response) = oneshot::channel();
        permit.send(WriterMessage::Commit(CommitRequest { changes, reply }));
        response.await.map_err(|_| Error::Closed)?
    }

    /// Offset of the last visible commit: a read at this offset sees whole commits.
    /// Follows the visible offset as commits become visible.
    pub fn watch_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    pub fn visible_offset(&self) -> Offset {
        Offset(self.shared.visible.load(Ordering::Acquire))
    }

    /// The catalog as of the latest visible commit.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.shared.published.read().expect("published lock").catalog.clone()
    }

    /// The catalog, table states and visible offset, read together.
    pub fn snapshot(&self) -> ReadView {
        let published = self.shared.published.read().expect("published lock");
        ReadView { catalog: published.catalog.clone(), tables: published.tables.clone(), offset: published.visible }
    }

    /// Commit time of the event at each of `offsets` (none where it is not
    /// a row of a live relation); a segment holding several is read once.
    pub async fn commit_ts_at(&self, offsets: &[Offset]) -> Result<Vec<Option<CommitTs>>> {
        let mut found = vec![None; offsets.len()];
        let catalog = self.catalog();
        for def in catalog.relations() {
            if found.iter().all(Option::is_some) {
                break;
            }
            let snapshot = self.shared.tails.read(def.id, Offset(u64::MAX));
            let n = def.columns.len();
            for batch in &snapshot.batches {
                fill_ts(&mut found, offsets, &batch.project(&[n, n + 1])?);
            }
            for segment in &snapshot.segments {
                let held = |i: usize| {
                    found[i].is_none() && segment.first_offset <= offsets[i] && offsets[i] <= segment.last_offset
                };
                let wanted: Vec<usize> = (0..offsets.len()).filter(|i| held(*i)).collect();
                let held_offsets = || wanted.iter().map(|i| offsets[*i]);
                let (Some(lowest), Some(highest)) = (held_offsets().min(), held_offsets().max()) else { continue };
                if segment.min_ts == segment.max_ts {
                    wanted.iter().for_each(|i| found[*i] = Some(segment.min_ts));
                    continue;
                }
                let before = Offset(lowest.0.saturating_sub(1));
                for batch in segment.read_offsets_and_times(&self.store, before, highest).await? {
                    fill_ts(&mut found, offsets, &batch);
                }
            }
        }
        Ok(found)
    }

    pub fn relation(&self, name: &str) -> Option<Arc<RelationDef>> {
        self.catalog().get(name).cloned()
    }

    /// A relation's segments and tail rows (user columns, then `_offset`,
    /// `_ts`) holding offsets up to `upto`. Segments may also hold later
    /// offsets (sealed after `upto` was fixed); the reader filters those.
    pub fn read(&self, relation: RelationId, upto: Offset) -> RelationSnapshot {
        self.shared.tails.read(relation, upto)
    }

    pub fn store(&self) -> &SegmentStore {
        &self.store
    }

    /// `count` row identities for new rows of keyless tables, never given
    /// out before (also across restarts); returns the first.
    pub fn allocate_row_ids(&self, count: u64) -> i64 {
        self.next_row_id.fetch_add(count as i64, Ordering::AcqRel)
    }

    /// Big tables' rows kept from one full scan to the next.
    pub fn scan_cache(&self) -> &crate::table::scan_cache::ScanCache {
        &self.scan_cache
    }

    /// The row count from which a table's full scans use [`Log::scan_cache`].
    pub fn scan_cache_rows_min(&self) -> usize {
        self.scan_cache_rows_min
    }

    /// Memory held by rows not yet sealed into segments.
    pub fn tail_bytes(&self) -> usize {
        self.shared.tails.tail_bytes()
    }

    /// Seals every committed row into Parquet segments, records them in the
    /// manifest, and deletes the WAL files they make unnecessary.
    pub async fn seal(&self) -> Result<SealReport> {
        let mut state = self.seal_state.lock().await;
        let (catalog, tables, through) = {
            let published = self.shared.published.read().expect("published lock");
            (published.catalog.clone(), published.tables.clone(), published.visible)
        };
        if through <= state.manifest.sealed_through {
            return Ok(SealReport { sealed_through: through, ..SealReport::default() });
        }
        let mut report = SealReport { sealed_through: through, ..SealReport::default() };
        let mut written = Vec::new();
        for def in catalog.relations() {
            let batches = self.shared.tails.unsealed(def.id, through);
            if batches.is_empty() {
                continue;
            }
            let rows = datafusion::arrow::compute::concat_batches(&def.log_schema(), &batches)?;
            let (meta, bytes) = segment::encode(def, &rows, through)?;
            self.store.put(&meta.path, bytes).await?;
            report.rows += meta.rows;
            written.push(Arc::new(meta));
        }
        let mut next = Manifest::empty();
        next.sealed_through = through;
        next.last_ts =
            written.iter().map(|s| s.max_ts).max().unwrap_or(state.manifest.last_ts).max(state.manifest.last_ts);
        next.next_relation_id = catalog.next_relation_id();
        next.next_row_id = self.next_row_id.load(Ordering::Acquire);
        next.relations = catalog.relations().map(|r| (**r).clone()).collect();
        let live = |relation: RelationId, first: Offset| catalog.by_id(relation).is_some_and(|r| r.created_at <= first);
        let (kept, retired): (Vec<_>, Vec<_>) =
            state.manifest.segments.iter().cloned().partition(|s| live(s.relation, s.first_offset));
        next.segments = kept.into_iter().chain(written.iter().cloned()).collect();
        let (kept, retired_snapshots): (Vec<_>, Vec<_>) =
            state.manifest.snapshots.iter().cloned().partition(|s| live(s.relation, s.through));
        next.snapshots = kept;
        next.history_starts =
            state.manifest.history_starts.iter().filter(|(r, _)| catalog.by_id(*r).is_some()).copied().collect();
        let snapshots = self.write_snapshots(&catalog, &tables, &next, through).await?;
        next.snapshots.extend(snapshots.iter().cloned());
        let view_states = self.write_view_states(&catalog, &state.manifest).await?;
        let replaced = |meta: &Arc<view_state::ViewStateMeta>| {
            catalog.by_id(meta.relation).is_none() || view_states.iter().any(|v| v.relation == meta.relation)
        };
        let (retired_view_states, kept): (Vec<_>, Vec<_>) =
            state.manifest.view_states.iter().cloned().partition(|v| replaced(v));
        next.view_states = kept.into_iter().chain(view_states).collect();
        next.store(&self.store).await?;
        state.manifest = next;

        // The manifest is durable: the tail it covers can go, and so can the
        // WAL. Failing to delete a file loses nothing (the next start removes
        // what the manifest does not list), so it is logged, not returned.
        for def in catalog.relations() {
            let segment = written.iter().find(|s| s.relation == def.id).cloned();
            self.shared.tails.seal(def.id, through, segment);
        }
        for snapshot in &snapshots {
            self.shared.tails.add_snapshot(snapshot.clone());
        }
        self.shared.tail_freed.notify_waiters();
        self.scan_cache.retain(|id| catalog.by_id(id).is_some());
        state.retired.extend(retired.into_iter().map(Retired::segment));
        state.retired.extend(retired_snapshots.into_iter().map(Retired::snapshot));
        state.retired.extend(retired_view_states.into_iter().map(Retired::view_state));
        self.delete_unread(&mut state.retired).await;
        report.segments_written = written.len();
        report.snapshots_written = snapshots.len();
        report.wal_files_removed = wal::remove_sealed(&self.wal_dir, through.0).unwrap_or_else(|error| {
            tracing::warn!(%error, "could not delete sealed WAL files; retrying at the next seal");
            0
        });
        Ok(report)
    }

    /// Writes a state snapshot, as of `through`, of every table whose changes
    /// since its last snapshot (in `manifest`'s segments) reach its row count
    /// and `snapshot_changes_min`.
    async fn write_snapshots(
        &self,
        catalog: &Catalog,
        tables: &TableStates,
        manifest: &Manifest,
        through: Offset,
    ) -> Result<Vec<Arc<SnapshotMeta>>> {
        let mut written = Vec::new();
        for def in catalog.relations().filter(|d| d.kind == RelationKind::Table) {
            let Some(table) = tables.get(def.id) else { continue };
            let last = manifest.snapshots.iter().filter(|s| s.relation == def.id).map(|s| s.through).max();
            let after = last.unwrap_or(Offset::ZERO);
            let changes: u64 = manifest
                .segments
                .iter()
                .filter(|s| s.relation == def.id && s.first_offset > after)
                .map(|s| s.rows)
                .sum();
            // A table whose history is trimmed needs snapshots to fold it into.
            let changes_min = if def.retention.is_some() { 1 } else { self.snapshot_changes_min };
            if changes == 0 || changes < changes_min.max(table.len() as u64) {
                continue;
            }
            let rows = table.to_batch(&def.full_schema(), None)?;
            let (meta, bytes) = snapshot::encode(def, &rows, through, manifest.last_ts)?;
            self.store.put(&meta.path, bytes).await?;
            written.push(Arc::new(meta));
        }
        Ok(written)
    }

    /// Checkpoints the operators of every view whose last checkpoint is at
    /// least `snapshot_changes_min` offsets old, as the writer last
    /// published them.
    async fn write_view_states(
        &self,
        catalog: &Catalog,
        manifest: &Manifest,
    ) -> Result<Vec<Arc<view_state::ViewStateMeta>>> {
        let published = self.shared.views_at.lock().expect("views lock").clone();
        let Some((at, views)) = published else { return Ok(Vec::new()) };
        let mut written = Vec::new();
        for (id, runtime) in views.iter() {
            let Some(def) = catalog.by_id(id) else { continue };
            let last = manifest.view_states.iter().find(|v| v.relation == id).map(|v| v.through);
            let since = last.unwrap_or(def.created_at);
            if at <= since || at.0 - since.0 < self.snapshot_changes_min {
                continue;
            }
            let (meta, bytes) = view_state::encode(id, at, crate::view::checkpoint::save(&runtime.root));
            self.store.put(&meta.path, bytes).await?;
            written.push(Arc::new(meta));
        }
        Ok(written)
    }

    /// The bytes `relation` takes: its sealed segments and state snapshots
    /// as stored, its rows not sealed yet as held in memory (their WAL
    /// records are about as large), and a view's operator state.
    pub fn relation_bytes(&self, relation: RelationId) -> u64 {
        let snapshot = self.read(relation, self.visible_offset());
        let stored: u64 = snapshot.segments.iter().map(|s| s.bytes).sum::<u64>()
            + snapshot.states.iter().map(|s| s.bytes).sum::<u64>();
        let unsealed: usize =
            snapshot.batches.iter().map(datafusion::arrow::record_batch::RecordBatch::get_array_memory_size).sum();
        stored + unsealed as u64 + self.view_state_size(relation).1
    }

    /// Entries and approximate bytes of view `relation`'s operator state.
    pub fn view_state_size(&self, relation: RelationId) -> (u64, u64) {
        match self.shared.views_at.lock().expect("views lock").as_ref() {
            Some((_, views)) => views.state_size(relation),
            None => (0, 0),
        }
    }

    /// The latest checkpoint of view `relation`'s operators, if any.
    pub async fn view_state(&self, relation: RelationId) -> Option<Arc<view_state::ViewStateMeta>> {
        self.seal_state.lock().await.manifest.view_states.iter().find(|v| v.relation == relation).cloned()
    }

    /// A checkpoint's bytes, verified.
    pub async fn read_view_state(&self, meta: &Arc<view_state::ViewStateMeta>) -> Result<bytes::Bytes> {
        view_state::read(&self.store, meta).await
    }

    /// Applies every relation's retention as of `now`: a stream's segments
    /// whose events are all older than its retention are dropped; a table's
    /// segments and snapshots before its latest snapshot older than its
    /// retention are dropped, that snapshot becoming the base of its history.
    pub async fn enforce_retention(&self, now: CommitTs) -> Result<RetentionReport> {
        let catalog = self.catalog();
        if catalog.relations().all(|r| r.retention.is_none()) {
            return Ok(RetentionReport::default());
        }
        let mut state = self.seal_state.lock().await;
        let mut next = state.manifest.clone();
        let mut report = RetentionReport::default();
        let mut trimmed = Vec::new();
        for def in catalog.relations() {
            let Some(retention) = &def.retention else { continue };
            let horizon = CommitTs(now.0.saturating_sub(retention.micros));
            let segments = next.segments.iter().filter(|s| s.relation == def.id);
            let (dropped, start): (Vec<Arc<SegmentMeta>>, _) = match def.kind {
                RelationKind::Stream => {
                    let dropped: Vec<_> = segments.filter(|s| s.max_ts < horizon).cloned().collect();
                    let Some(last) = dropped.iter().map(|s| s.last_offset).max() else { continue };
                    let ts = dropped.iter().map(|s| s.max_ts.0).max().unwrap_or(0);
                    (dropped, HistoryStart { offset: last.next(), ts: CommitTs(ts + 1) })
                }
                RelationKind::Table => {
                    let base = next
                        .snapshots
                        .iter()
                        .filter(|s| s.relation == def.id && s.through_ts < horizon)
                        .max_by_key(|s| s.through);
                    let Some(base) = base else { continue };
                    let dropped = segments.filter(|s| s.last_offset <= base.through).cloned().collect();
                    (dropped, HistoryStart { offset: base.through, ts: base.through_ts })
                }
            };
            let snapshots: Vec<Arc<SnapshotMeta>> =
                next.snapshots.iter().filter(|s| s.relation == def.id && s.through < start.offset).cloned().collect();
            if dropped.is_empty() && snapshots.is_empty() {
                continue;
            }
            next.segments.retain(|s| !dropped.iter().any(|d| Arc::ptr_eq(d, s)));
            next.snapshots.retain(|s| !snapshots.iter().any(|d| Arc::ptr_eq(d, s)));
            next.history_starts.retain(|(r, _)| *r != def.id);
            next.history_starts.push((def.id, start));
            report.segments_dropped += dropped.len();
            report.snapshots_dropped += snapshots.len();
            trimmed.push((def.id, start, dropped, snapshots));
        }
        if trimmed.is_empty() {
            return Ok(report);
        }
        next.store(&self.store).await?;
        state.manifest = next;
        for (relation, start, segments, snapshots) in trimmed {
            self.shared.tails.trim(relation, start, &segments, &snapshots);
            state.retired.extend(segments.into_iter().map(Retired::segment));
            state.retired.extend(snapshots.into_iter().map(Retired::snapshot));
        }
        self.delete_unread(&mut state.retired).await;
        Ok(report)
    }

    /// Merges runs of small segments of a relation (each under a quarter of
    /// `segment_bytes_target`, at least four in a row) into one segment of at
    /// most about that size, so a slowly written relation does not become
    /// thousands of tiny files. The rows and their offsets stay as they were.
    pub async fn merge_small_segments(&self) -> Result<usize> {
        let mut state = self.seal_state.lock().await;
        // The merged rows take the columns of this catalog, as of this offset.
        let (catalog, written_at) = {
            let published = self.shared.published.read().expect("published lock");
            (published.catalog.clone(), published.visible)
        };
        let small = |s: &Arc<SegmentMeta>| s.bytes < self.segment_bytes_target / 4;
        let mut merged = 0;
        for def in catalog.relations() {
            let mut segments: Vec<Arc<SegmentMeta>> =
                state.manifest.segments.iter().filter(|s| s.relation == def.id).cloned().collect();
            segments.sort_by_key(|s| s.first_offset);
            // A table's runs stop at its snapshots, so retention can still
            // drop whole segments before a snapshot it folds history into.
            let throughs: Vec<Offset> =
                state.manifest.snapshots.iter().filter(|s| s.relation == def.id).map(|s| s.through).collect();
            let apart =
                |a: &SegmentMeta, b: &SegmentMeta| throughs.iter().any(|t| a.last_offset <= *t && *t < b.first_offset);
            let Some(run) = small_run(&segments, small, apart, self.segment_bytes_target) else { continue };
            let columns: Vec<usize> = (0..def.log_schema().fields().len()).collect();
            let mut batches = Vec::new();
            for segment in &run {
                batches.extend(segment.read(&self.store, def, &columns, None).await?);
            }
            let rows = datafusion::arrow::compute::concat_batches(&def.log_schema(), &batches)?;
            let (meta, bytes) = segment::encode(def, &rows, written_at)?;
            self.store.put(&meta.path, bytes).await?;
            let meta = Arc::new(meta);
            let mut next = state.manifest.clone();
            next.segments.retain(|s| !run.iter().any(|r| Arc::ptr_eq(r, s)));
            next.segments.push(meta.clone());
            next.store(&self.store).await?;
            state.manifest = next;
            self.shared.tails.replace_segments(def.id, &run, meta);
            merged += run.len();
            state.retired.extend(run.into_iter().map(Retired::segment));
        }
        self.delete_unread(&mut state.retired).await;
        Ok(merged)
    }

    /// Where a relation's readable history starts, when retention trimmed it.
    pub fn history_start(&self, relation: RelationId) -> Option<HistoryStart> {
        self.shared.tails.history_start(relation)
    }

    /// Deletes retired files that no query plan still holds; the rest wait
    /// for a later seal.
    async fn delete_unread(&self, retired: &mut Vec<Retired>) {
        let (unread, held): (Vec<_>, Vec<_>) = retired.drain(..).partition(Retired::unread);
        *retired = held;
        for file in unread {
            if let Err(error) = self.store.delete(&file.path).await {
                tracing::warn!(%error, path = file.path, "could not delete a retired file");
            }
        }
    }

    /// Stops the writer after the commits already queued; later commits fail
    /// with [`Error::Closed`].
    pub async fn shutdown(&self) {
        let _ = self.commits.send(WriterMessage::Shutdown).await;
        let handle = self.writer_thread.lock().expect("writer handle lock").take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Deletes segment files the manifest does not list: written by a seal that
/// crashed before its manifest, or of a relation dropped before a crash.
async fn remove_unlisted_segments(store: &SegmentStore, manifest: &Manifest) {
    let listed: std::collections::HashSet<&str> = manifest
        .segments
        .iter()
        .map(|s| s.path.as_str())
        .chain(manifest.snapshots.iter().map(|s| s.path.as_str()))
        .chain(manifest.view_states.iter().map(|s| s.path.as_str()))
        .collect();
    for prefix in [segment::SEGMENTS_PREFIX, snapshot::SNAPSHOTS_PREFIX, view_state::VIEW_STATES_PREFIX] {
        let found = match store.list(prefix).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, prefix, "could not list files to clean up");
                continue;
            }
        };
        for path in found.iter().filter(|p| !listed.contains(p.as_str())) {
            match store.delete(path).await {
                Ok(()) => tracing::info!(path, "deleted a file no manifest lists"),
                Err(error) => tracing::warn!(%error, path, "could not delete an unlisted file"),
            }
        }
    }
}

/// Fills in the commit times of `offsets` a batch of `_offset`, `_ts` holds.
fn fill_ts(found: &mut [Option<CommitTs>], offsets: &[Offset], batch: &datafusion::arrow::record_batch::RecordBatch) {
    for (slot, offset) in found.iter_mut().zip(offsets) {
        if slot.is_none() {
            *slot = find_ts(batch, *offset);
        }
    }
}

/// The commit time of the row at `offset` in a batch of `_offset`, `_ts`, if it holds it.
fn find_ts(batch: &datafusion::arrow::record_batch::RecordBatch, offset: Offset) -> Option<CommitTs> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
    let offsets = batch.column(0).as_primitive::<Int64Type>();
    let position = offsets.values().binary_search(&(offset.0 as i64)).ok()?;
    Some(CommitTs(batch.column(1).as_primitive::<TimestampMicrosecondType>().value(position)))
}

/// The first run of at least four consecutive `small` segments, none
/// `apart` from the one before it, as many as fit in `bytes_target`.
fn small_run(
    segments: &[Arc<SegmentMeta>],
    small: impl Fn(&Arc<SegmentMeta>) -> bool,
    apart: impl Fn(&SegmentMeta, &SegmentMeta) -> bool,
    bytes_target: u64,
) -> Option<Vec<Arc<SegmentMeta>>> {
    const RUN_MIN: usize = 4;
    let mut run: Vec<Arc<SegmentMeta>> = Vec::new();
    for segment in segments {
        let fits = run.iter().map(|s| s.bytes).sum::<u64>() + segment.bytes <= bytes_target;
        let joins = run.last().is_none_or(|last| !apart(last, segment));
        if small(segment) && fits && joins {
            run.push(segment.clone());
            continue;
        }
        if run.len() >= RUN_MIN {
            return Some(run);
        }
        run.clear();
        if small(segment) {
            run.push(segment.clone());
        }
    }
    (run.len() >= RUN_MIN).then_some(run)
}

/// The highest row identity `record` writes to a keyless table (0 if none).
fn max_row_id(catalog: &Catalog, record: &CommitRecord) -> i64 {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let mut max = 0;
    for entry in &record.entries {
        if let Entry::Append { relation, rows } = entry
            && let Some(position) = catalog.by_id(*relation).and_then(|d| d.row_id())
        {
            let ids = rows.column(position).as_primitive::<Int64Type>();
            max = max.max(datafusion::arrow::compute::max(ids).unwrap_or(0));
        }
    }
    max
}

/// Every table's state as of the manifest: its latest state snapshot, then
/// the changes in its segments after that. Returns the states and how many
/// changes were replayed on top of the snapshots.
async fn load_table_states(store: &SegmentStore, catalog: &Catalog, manifest: &Manifest) -> Result<(TableStates, u64)> {
    let mut tables = TableStates::default();
    let mut replayed = 0;
    for def in catalog.relations().filter(|d| d.kind == RelationKind::Table) {
        let mut state = TableState::new(def.clone())?;
        let replayed_before = replayed;
        let latest = manifest.snapshots.iter().filter(|s| s.relation == def.id).max_by_key(|s| s.through);
        let after = latest.map(|s| s.through).unwrap_or(Offset::ZERO);
        if let Some(snapshot) = latest {
            let columns: Vec<usize> = (0..def.full_schema().fields().len()).collect();
            for batch in snapshot.read(store, def, &columns).await? {
                state.load_versions(&batch)?;
            }
        }
        let mut segments: Vec<_> =
            manifest.segments.iter().filter(|s| s.relation == def.id && s.last_offset > after).collect();
        segments.sort_by_key(|s| s.first_offset);
        for segment in segments {
            let columns: Vec<usize> = (0..def.log_schema().fields().len()).collect();
            for batch in segment.read(store, def, &columns, None).await? {
                let rows = split_log_batch(def, &batch)?;
                replayed += rows.diffs.len() as u64;
                state.apply(&rows.user, &rows.diffs, Some(&rows.offsets), &rows.ts)?;
            }
        }
        // Segments replayed with today's definition may predate its UNIQUE
        // indexes (a snapshot holds rows as they are: nothing to redo).
        if replayed > replayed_before {
            state.reindex_unique_values()?;
        }
        tables.by_relation.insert(def.id, state);
    }
    Ok((tables, replayed))
}
