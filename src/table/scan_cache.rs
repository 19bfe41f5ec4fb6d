//! The current state of big tables as Arrow rows, kept from one full scan to
//! the next. The key index (see [`super::state`]) is the truth, but walking
//! it row by row gets slower as updates scatter its rows through memory; a
//! scan instead starts from the rows the previous scan produced and replays
//! the changes committed since ([`super::replay`]), usually few. Bounded by
//! `scan_cache_bytes_max`: a table that does not fit is not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;

use crate::log::{Offset, RelationId};

/// A table's rows (full schema) as of `offset`.
#[derive(Debug)]
pub struct CachedRows {
    pub offset: Offset,
    pub batches: Vec<RecordBatch>,
    bytes: usize,
}

#[derive(Debug)]
pub struct ScanCache {
    bytes_max: usize,
    entries: Mutex<HashMap<RelationId, Arc<CachedRows>>>,
}

impl ScanCache {
    pub fn new(bytes_max: usize) -> ScanCache {
        ScanCache { bytes_max, entries: Mutex::new(HashMap::new()) }
    }

    /// The latest rows kept for `relation` at or before `offset`.
    pub fn get(&self, relation: RelationId, offset: Offset) -> Option<Arc<CachedRows>> {
        let entries = self.entries.lock().expect("scan cache lock");
        entries.get(&relation).filter(|rows| rows.offset <= offset).cloned()
    }

    /// Keeps `batches` as `relation`'s rows at `offset`, unless newer rows
    /// are kept already; other tables make room, oldest offsets first.
    pub fn put(&self, relation: RelationId, offset: Offset, batches: Vec<RecordBatch>) {
        let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        if bytes > self.bytes_max {
            return;
        }
        let mut entries = self.entries.lock().expect("scan cache lock");
        if entries.get(&relation).is_some_and(|rows| rows.offset >= offset) {
            return;
        }
        entries.remove(&relation);
        while entries.values().map(|r| r.bytes).sum::<usize>() + bytes > self.bytes_max {
            let oldest = entries.iter().min_by_key(|(_, r)| r.offset).map(|(id, _)| *id);
            match oldest {
                Some(id) => entries.remove(&id),
                None => break,
            };
        }
        entries.insert(relation, Arc::new(CachedRows { offset, batches, bytes }));
    }

    /// Forgets every table `keep` rejects (dropped ones).
    pub fn retain(&self, keep: impl Fn(RelationId) -> bool) {
        self.entries.lock().expect("scan cache lock").retain(|id, _| keep(*id));
    }
}
