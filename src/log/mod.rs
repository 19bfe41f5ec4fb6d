//! The one storage interface. Everything above this module appends commits
//! and reads relations at an offset through [`Log`]; WAL files, framing and
//! buffers stay behind it.
//!
//! Write path: a commit request goes to the writer thread, which assigns the
//! commit its offsets and time, frames it into the WAL, shares one fsync with
//! every other commit waiting (group commit), and only then makes the commit
//! visible and acknowledges it. Read path: a reader fixes a visible offset and
//! gets the batches of a relation up to it; commits are never split.

mod position;
pub mod record;
mod tail;
pub mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, oneshot};

pub use position::{CommitInfo, CommitTs, Offset, RelationId};
pub use record::{CommitRecord, Entry};

use crate::catalog::{Catalog, ColumnDef, RelationDef, RelationKind};
use crate::config::Config;
use tail::Tails;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt log: {file} at byte {position}: {reason}")]
    Corrupt {
        file: PathBuf,
        position: u64,
        reason: String,
    },
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
    #[error("commit of {bytes} bytes exceeds wal_record_bytes_max ({max} bytes)")]
    CommitTooLarge { bytes: u64, max: u64 },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &Path, position: u64, reason: &str) -> Error {
        Error::Corrupt {
            file: file.to_path_buf(),
            position,
            reason: reason.to_string(),
        }
    }
}

/// One change a commit asks for, before the writer resolves it.
#[derive(Debug, Clone)]
pub enum Change {
    CreateRelation {
        name: String,
        kind: RelationKind,
        columns: Vec<ColumnDef>,
        if_not_exists: bool,
    },
    DropRelation {
        name: String,
        if_exists: bool,
    },
    /// Rows already checked against the relation's user schema.
    Append {
        relation: RelationId,
        rows: RecordBatch,
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

/// State shared by the writer thread and readers.
struct Shared {
    catalog: RwLock<Arc<Catalog>>,
    tails: Tails,
    /// Last offset of the newest durable, visible commit.
    visible: AtomicU64,
    poisoned: AtomicBool,
}

pub struct Log {
    shared: Arc<Shared>,
    commits: mpsc::Sender<WriterMessage>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What recovery found, for the startup log line.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryReport {
    pub commits: u64,
    pub last_offset: Offset,
    pub torn_bytes: u64,
}

impl Log {
    /// Opens (or creates) the log under `config.data_dir`, replaying the WAL.
    pub fn open(config: &Config) -> Result<(Log, RecoveryReport)> {
        let wal_dir = config.data_dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| Error::io(&wal_dir, e))?;

        let mut catalog = Catalog::default();
        let tails = Tails::default();
        let mut next_offset = Offset(1);
        let mut last_ts = CommitTs(0);
        let mut commits = 0;
        let end = wal::scan(&wal_dir, config.wal_record_bytes_max, |payload| {
            let record = CommitRecord::decode(payload)?;
            if record.first_offset != next_offset {
                return Err(Error::Decode(format!(
                    "commit starts at offset {} but {} was expected",
                    record.first_offset, next_offset
                )));
            }
            writer::apply(&mut catalog, &tails, &record)?;
            next_offset = record.last_offset().next();
            last_ts = record.ts;
            commits += 1;
            Ok(())
        })?;

        let last_offset = Offset(next_offset.0 - 1);
        let shared = Arc::new(Shared {
            catalog: RwLock::new(Arc::new(catalog)),
            tails,
            visible: AtomicU64::new(last_offset.0),
            poisoned: AtomicBool::new(false),
        });
        let wal = wal::WalWriter::open(&wal_dir, end.resume, config.wal_file_bytes_max)?;
        let (sender, receiver) = mpsc::channel(config.commit_queue_depth_max);
        let writer = writer::Writer {
            shared: shared.clone(),
            wal,
            receiver,
            next_offset,
            last_ts,
            group_commits_max: config.group_commit_commits_max,
            record_bytes_max: config.wal_record_bytes_max,
        };
        let handle = std::thread::Builder::new()
            .name("strata-log-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::io(&wal_dir, e))?;
        let log = Log {
            shared,
            commits: sender,
            writer_thread: Mutex::new(Some(handle)),
        };
        Ok((
            log,
            RecoveryReport {
                commits,
                last_offset,
                torn_bytes: end.torn_bytes,
            },
        ))
    }

    /// Appends one atomic commit and waits until it is durable and visible.
    /// Returns `None` when the changes amount to nothing (no event appended).
    pub async fn commit(&self, changes: Vec<Change>) -> Result<Option<CommitInfo>> {
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let (reply, response) = oneshot::channel();
        self.commits
            .send(WriterMessage::Commit(CommitRequest { changes, reply }))
            .await
            .map_err(|_| Error::Closed)?;
        response.await.map_err(|_| Error::Closed)?
    }

    /// Offset of the last visible commit: a read at this offset sees whole commits.
    pub fn visible_offset(&self) -> Offset {
        Offset(self.shared.visible.load(Ordering::Acquire))
    }

    /// The catalog as of the latest visible commit.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.shared.catalog.read().expect("catalog lock").clone()
    }

    pub fn relation(&self, name: &str) -> Option<Arc<RelationDef>> {
        self.catalog().get(name).cloned()
    }

    /// A relation's rows (user columns, then `_offset`, `_ts`) with offsets up to `upto`.
    pub fn read(&self, relation: RelationId, upto: Offset) -> Vec<RecordBatch> {
        self.shared.tails.read(relation, upto)
    }

    /// Stops the writer after the commits already queued; later commits fail
    /// with [`Error::Closed`].
    pub async fn shutdown(&self) {
        let _ = self.commits.send(WriterMessage::Shutdown).await;
        let handle = self
            .writer_thread
            .lock()
            .expect("writer handle lock")
            .take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}
