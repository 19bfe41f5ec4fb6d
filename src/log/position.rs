//! Newtypes for positions in the one database-wide log, so an offset is never
//! confused with a row count or a timestamp.

use serde::{Deserialize, Serialize};

/// Position of one event in the database-wide log. The first event is 1;
/// `Offset(0)` means "before any event".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Offset(pub u64);

impl Offset {
    pub const ZERO: Offset = Offset(0);

    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Commit time in microseconds since the Unix epoch (UTC). Never decreases
/// across commits, even when the wall clock does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommitTs(pub i64);

impl CommitTs {
    /// The commit time for a commit after one stamped `previous`: the wall
    /// clock, unless it went backwards, then one microsecond after `previous`.
    pub fn after(previous: CommitTs) -> CommitTs {
        let wall = chrono::Utc::now().timestamp_micros();
        CommitTs(wall.max(previous.0 + 1))
    }
}

/// Stable identity of a relation; names can be reused after DROP, ids never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RelationId(pub u64);

/// Ids from here on are provisional: a relation created inside an open
/// transaction block goes by one until its COMMIT gives it its own (the
/// log's ids are given out in commit order). None is ever written.
pub const PROVISIONAL_RELATION_IDS: u64 = 1 << 62;

impl RelationId {
    pub fn is_provisional(self) -> bool {
        self.0 >= PROVISIONAL_RELATION_IDS
    }
}

/// What one commit occupies in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub ts: CommitTs,
}
