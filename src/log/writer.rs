//! The log writer thread: resolves commit requests into records, writes a
//! group of them, shares one fsync, then publishes and acknowledges them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::record::{CommitRecord, Entry};
use super::tail::Tails;
use super::{
    Change, CommitInfo, CommitRequest, CommitTs, Error, Offset, Published, Result, Shared, WriterMessage, wal,
};
use crate::catalog::{Catalog, RelationDef};

pub(super) struct Writer {
    pub shared: Arc<Shared>,
    pub wal: wal::WalWriter,
    pub receiver: mpsc::Receiver<WriterMessage>,
    pub next_offset: Offset,
    pub last_ts: CommitTs,
    pub group_commits_max: usize,
    pub record_bytes_max: u64,
}

struct Accepted {
    request: CommitRequest,
    record: CommitRecord,
}

impl Writer {
    pub fn run(mut self) {
        while let Some(message) = self.receiver.blocking_recv() {
            let WriterMessage::Commit(first) = message else {
                break;
            };
            let mut group = vec![first];
            let mut shutdown = false;
            while group.len() < self.group_commits_max {
                match self.receiver.try_recv() {
                    Ok(WriterMessage::Commit(request)) => group.push(request),
                    Ok(WriterMessage::Shutdown) => {
                        shutdown = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.write_group(group);
            if shutdown {
                break;
            }
        }
    }

    fn write_group(&mut self, group: Vec<CommitRequest>) {
        if self.shared.poisoned.load(Ordering::Acquire) {
            for request in group {
                let _ = request.reply.send(Err(Error::Poisoned));
            }
            return;
        }
        let mut catalog = (*self.shared.published.read().expect("published lock").catalog).clone();
        let mut frames = Vec::new();
        let mut accepted: Vec<Accepted> = Vec::with_capacity(group.len());
        let mut next_offset = self.next_offset;
        let mut last_ts = self.last_ts;
        for request in group {
            let mut trial = catalog.clone();
            let entries = match resolve(&mut trial, next_offset, &request.changes) {
                Ok(entries) if entries.is_empty() => {
                    let _ = request.reply.send(Ok(None));
                    continue;
                }
                Ok(entries) => entries,
                Err(error) => {
                    let _ = request.reply.send(Err(error));
                    continue;
                }
            };
            let ts = CommitTs::after(last_ts);
            let record = CommitRecord { first_offset: next_offset, ts, entries };
            let mut payload = Vec::new();
            if let Err(error) = record.encode(&mut payload) {
                let _ = request.reply.send(Err(error));
                continue;
            }
            if payload.len() as u64 > self.record_bytes_max {
                let bytes = payload.len() as u64;
                let _ = request.reply.send(Err(Error::CommitTooLarge { bytes, max: self.record_bytes_max }));
                continue;
            }
            wal::frame(&payload, &mut frames);
            catalog = trial;
            next_offset = record.last_offset().next();
            last_ts = ts;
            accepted.push(Accepted { request, record });
        }
        if accepted.is_empty() {
            return;
        }
        if let Err(error) = self.wal.write(&frames).and_then(|_| self.wal.sync()) {
            // After a failed write or fsync the file's state is unknown: refuse
            // every later write until a restart replays what is really on disk.
            self.shared.poisoned.store(true, Ordering::Release);
            tracing::error!(%error, "WAL write failed; the log now refuses writes");
            for Accepted { request, .. } in accepted {
                let _ = request.reply.send(Err(Error::Poisoned));
            }
            return;
        }
        self.next_offset = next_offset;
        self.last_ts = last_ts;

        let mut published = Catalog::clone(&self.shared.published.read().expect("published lock").catalog);
        for Accepted { record, .. } in &accepted {
            if let Err(error) = apply(&mut published, &self.shared.tails, record) {
                // Records were validated above, so this is a bug; the WAL stays right.
                tracing::error!(%error, "applying a durable commit failed");
            }
        }
        // Catalog and visible offset change together, so a reader (or a seal)
        // never pairs a catalog with an offset it does not belong to.
        let visible = Offset(next_offset.0 - 1);
        let mut state = self.shared.published.write().expect("published lock");
        *state = Published { catalog: Arc::new(published), visible };
        self.shared.visible.store(visible.0, Ordering::Release);
        drop(state);
        for Accepted { request, record } in accepted {
            let info =
                CommitInfo { first_offset: record.first_offset, last_offset: record.last_offset(), ts: record.ts };
            let _ = request.reply.send(Ok(Some(info)));
        }
        if let Err(error) = self.wal.roll_if_full(next_offset.0) {
            // The commits above are durable; only later ones cannot be written.
            self.shared.poisoned.store(true, Ordering::Release);
            tracing::error!(%error, "starting a new WAL file failed; the log now refuses writes");
        }
    }
}

/// Turns requested changes into log entries against `catalog`, updating it
/// as DDL would. Offsets are those the entries will take from `first_offset`.
fn resolve(catalog: &mut Catalog, first_offset: Offset, changes: &[Change]) -> Result<Vec<Entry>> {
    let mut entries = Vec::with_capacity(changes.len());
    let mut offset = first_offset;
    for change in changes {
        let entry = match change {
            Change::CreateRelation { name, kind, columns, if_not_exists } => {
                if catalog.get(name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(Error::DuplicateRelation(name.clone()));
                }
                let def = RelationDef {
                    id: catalog.allocate_id(),
                    name: name.clone(),
                    kind: *kind,
                    columns: columns.clone(),
                    created_at: offset,
                };
                catalog.insert(def.clone());
                Entry::CreateRelation(def)
            }
            Change::DropRelation { name, if_exists } => match catalog.get(name).map(|r| r.id) {
                Some(id) => {
                    catalog.remove(id);
                    Entry::DropRelation(id)
                }
                None if *if_exists => continue,
                None => return Err(Error::UndefinedRelation(name.clone())),
            },
            Change::Append { relation, rows } => {
                if rows.num_rows() == 0 {
                    continue;
                }
                if catalog.by_id(*relation).is_none() {
                    return Err(Error::UndefinedRelation(format!("with id {}", relation.0)));
                }
                Entry::Append { relation: *relation, rows: rows.clone() }
            }
        };
        offset = Offset(offset.0 + entry.event_count());
        entries.push(entry);
    }
    Ok(entries)
}

/// Applies a durable commit to the catalog and the in-memory tails. Used by
/// the writer after fsync and by recovery for every replayed record.
pub(super) fn apply(catalog: &mut Catalog, tails: &Tails, record: &CommitRecord) -> Result<()> {
    let mut offset = record.first_offset;
    for entry in &record.entries {
        match entry {
            Entry::CreateRelation(def) => catalog.insert(def.clone()),
            Entry::DropRelation(id) => {
                catalog.remove(*id);
                tails.drop_relation(*id);
            }
            Entry::Append { relation, rows } => {
                let def = catalog
                    .by_id(*relation)
                    .ok_or_else(|| Error::Decode(format!("append to unknown relation id {}", relation.0)))?;
                tails.append(def, offset, record.ts, rows)?;
            }
        }
        offset = Offset(offset.0 + entry.event_count());
    }
    Ok(())
}
