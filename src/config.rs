//! Every setting and limit, with units in the name. `Config::default()` is the
//! embedded default: a local data directory and loopback listener.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding the WAL, the manifest and (by default) the segment store.
    pub data_dir: PathBuf,
    /// Where sealed history goes: `s3://bucket/prefix` (connection settings
    /// from the `AWS_*` environment variables) or `file:///directory`;
    /// `None` is `<data_dir>/store`. The WAL stays in `data_dir` either way.
    pub store_url: Option<String>,
    /// Address the PostgreSQL wire protocol listens on.
    pub listen: String,
    /// Concurrent client connections; further connections are refused.
    pub connections_max: usize,
    /// Commit requests waiting for the log writer; writers wait when it is full.
    pub commit_queue_depth_max: usize,
    /// Commits written before one shared fsync (group commit).
    pub group_commit_commits_max: usize,
    /// A WAL file is closed and a new one started past this size.
    pub wal_file_bytes_max: u64,
    /// One WAL record (one commit) may not exceed this; a bigger write is refused.
    pub wal_record_bytes_max: u64,
    /// Unsealed rows in memory past which the tail is sealed into a segment.
    pub seal_bytes_max: usize,
    /// Age of the oldest unsealed commit past which the tail is sealed.
    pub seal_age_ms_max: u64,
    /// How often the sealer checks the thresholds above.
    pub seal_check_ms: u64,
    /// A seal writes a table's state snapshot once the changes since its last
    /// one reach the table's row count and this many.
    pub snapshot_changes_min: u64,
    /// Tables with at least this many rows are scanned from the rows the
    /// previous scan produced plus the changes since (see `table::scan_cache`).
    pub scan_cache_rows_min: usize,
    /// Memory for those rows, over all tables.
    pub scan_cache_bytes_max: usize,
    /// Unsealed rows in memory past which new commits wait for a seal.
    pub tail_bytes_max: usize,
    /// Rows buffered by one statement (INSERT … SELECT, COPY) before it is refused.
    pub statement_rows_max: usize,
    /// Bytes buffered by one statement or transaction before it is refused.
    pub statement_bytes_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("strata-data"),
            store_url: None,
            listen: "127.0.0.1:6543".to_string(),
            connections_max: 256,
            commit_queue_depth_max: 4096,
            group_commit_commits_max: 1024,
            wal_file_bytes_max: 64 << 20,
            wal_record_bytes_max: 1 << 30,
            seal_bytes_max: 64 << 20,
            seal_age_ms_max: 60_000,
            seal_check_ms: 250,
            snapshot_changes_min: 100_000,
            scan_cache_rows_min: 10_000,
            scan_cache_bytes_max: 1 << 30,
            tail_bytes_max: 512 << 20,
            statement_rows_max: 50_000_000,
            statement_bytes_max: 2 << 30,
        }
    }
}

impl Config {
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.data_dir = data_dir.into();
        self
    }

    pub fn with_listen(mut self, listen: impl Into<String>) -> Self {
        self.listen = listen.into();
        self
    }
}
