//! The payload of one WAL record: one whole commit. DDL entries are JSON,
//! appended rows are an Arrow IPC stream of the relation's user columns.
//! Offsets are not stored per row: a commit's events take the contiguous range
//! starting at `first_offset`, in entry order (one offset per DDL entry, one
//! per appended row).

use std::io::Cursor;

use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;

use super::{CommitTs, Error, Offset, RelationId, Result};
use crate::catalog::RelationDef;

const RECORD_KIND_COMMIT: u8 = 1;
const ENTRY_CREATE_RELATION: u8 = 1;
const ENTRY_DROP_RELATION: u8 = 2;
const ENTRY_APPEND: u8 = 3;
const ENTRY_RENAME_RELATION: u8 = 4;
const ENTRY_ALTER_RELATION: u8 = 5;

/// One change inside a commit.
#[derive(Debug, Clone)]
pub enum Entry {
    CreateRelation(RelationDef),
    DropRelation(RelationId),
    RenameRelation {
        relation: RelationId,
        name: String,
    },
    /// A relation's new definition (same id and name), e.g. a new retention.
    AlterRelation(RelationDef),
    /// Rows for a relation, in its user schema (no system columns).
    Append {
        relation: RelationId,
        rows: RecordBatch,
    },
}

impl Entry {
    /// How many offsets the entry occupies.
    pub fn event_count(&self) -> u64 {
        match self {
            Entry::CreateRelation(_)
            | Entry::DropRelation(_)
            | Entry::RenameRelation { .. }
            | Entry::AlterRelation(_) => 1,
            Entry::Append { rows, .. } => rows.num_rows() as u64,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CommitRecord {
    pub first_offset: Offset,
    pub ts: CommitTs,
    pub entries: Vec<Entry>,
}

impl CommitRecord {
    pub fn event_count(&self) -> u64 {
        self.entries.iter().map(Entry::event_count).sum()
    }

    pub fn last_offset(&self) -> Offset {
        Offset(self.first_offset.0 + self.event_count() - 1)
    }

    /// About how many bytes [`CommitRecord::encode`] writes, to reserve them at once.
    pub fn encoded_bytes_estimate(&self) -> usize {
        let rows = |entry: &Entry| match entry {
            Entry::Append { rows, .. } => rows.get_array_memory_size(),
            _ => 0,
        };
        64 + self.entries.iter().map(|entry| 64 + rows(entry)).sum::<usize>()
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(RECORD_KIND_COMMIT);
        out.extend_from_slice(&self.first_offset.0.to_le_bytes());
        out.extend_from_slice(&self.ts.0.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for entry in &self.entries {
            match entry {
                Entry::CreateRelation(def) => {
                    out.push(ENTRY_CREATE_RELATION);
                    let json = serde_json::to_vec(def).map_err(|e| Error::Encode(e.to_string()))?;
                    put_bytes(out, &json);
                }
                Entry::AlterRelation(def) => {
                    out.push(ENTRY_ALTER_RELATION);
                    let json = serde_json::to_vec(def).map_err(|e| Error::Encode(e.to_string()))?;
                    put_bytes(out, &json);
                }
                Entry::DropRelation(id) => {
                    out.push(ENTRY_DROP_RELATION);
                    out.extend_from_slice(&id.0.to_le_bytes());
                }
                Entry::RenameRelation { relation, name } => {
                    out.push(ENTRY_RENAME_RELATION);
                    out.extend_from_slice(&relation.0.to_le_bytes());
                    put_bytes(out, name.as_bytes());
                }
                Entry::Append { relation, rows } => {
                    out.push(ENTRY_APPEND);
                    out.extend_from_slice(&relation.0.to_le_bytes());
                    encode_batch(rows, out)?;
                }
            }
        }
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<CommitRecord> {
        let mut reader = ByteReader { bytes: payload, position: 0 };
        let kind = reader.u8()?;
        if kind != RECORD_KIND_COMMIT {
            return Err(Error::Decode(format!("unknown record kind {kind}")));
        }
        let first_offset = Offset(reader.u64()?);
        let ts = CommitTs(reader.u64()? as i64);
        let entry_count = reader.u32()?;
        let mut entries = Vec::with_capacity(entry_count.min(1024) as usize);
        for _ in 0..entry_count {
            let entry = match reader.u8()? {
                ENTRY_CREATE_RELATION => {
                    let json = reader.bytes()?;
                    let def = serde_json::from_slice(json).map_err(|e| Error::Decode(e.to_string()))?;
                    Entry::CreateRelation(def)
                }
                ENTRY_ALTER_RELATION => {
                    let json = reader.bytes()?;
                    let def = serde_json::from_slice(json).map_err(|e| Error::Decode(e.to_string()))?;
                    Entry::AlterRelation(def)
                }
                ENTRY_DROP_RELATION => Entry::DropRelation(RelationId(reader.u64()?)),
                ENTRY_RENAME_RELATION => {
                    let relation = RelationId(reader.u64()?);
                    let name = std::str::from_utf8(reader.bytes()?)
                        .map_err(|e| Error::Decode(format!("relation name: {e}")))?
                        .to_string();
                    Entry::RenameRelation { relation, name }
                }
                ENTRY_APPEND => {
                    let relation = RelationId(reader.u64()?);
                    let rows = decode_batch(reader.bytes()?)?;
                    Entry::Append { relation, rows }
                }
                other => return Err(Error::Decode(format!("unknown entry tag {other}"))),
            };
            entries.push(entry);
        }
        if reader.position != payload.len() {
            return Err(Error::Decode("trailing bytes after commit record".into()));
        }
        Ok(CommitRecord { first_offset, ts, entries })
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the batch as a length-prefixed Arrow IPC stream (as `put_bytes`
/// would), written in place.
fn encode_batch(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
    let len_at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut writer = StreamWriter::try_new(&mut *out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    let len = (out.len() - len_at - 8) as u64;
    out[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn decode_batch(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(batch?);
    }
    match batches.len() {
        1 => Ok(batches.remove(0)),
        n => Err(Error::Decode(format!("expected one batch in an append entry, found {n}"))),
    }
}

struct ByteReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.position.checked_add(n).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| Error::Decode("record shorter than its contents".into()))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u64()?;
        let len = usize::try_from(len).map_err(|_| Error::Decode("length overflow".into()))?;
        self.take(len)
    }
}
