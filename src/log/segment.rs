//! Sealed segments: a relation's rows for an offset range as one Parquet
//! file (user columns, then `_offset`, `_ts`), and the manifest listing them.
//!
//! Layout in the store:
//! - `manifest.json` — the catalog, every segment and every state snapshot
//!   as of `sealed_through`;
//! - `segments/<relation id>/<first offset>-<last offset>.parquet`;
//! - `snapshots/<relation id>/<through offset>.parquet` (see [`super::snapshot`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::snapshot::SnapshotMeta;
use super::store::SegmentStore;
use super::{CommitTs, Error, Offset, RelationId, Result};
use crate::catalog::{HistoryStart, OFFSET_COLUMN, RelationDef, SYSTEM_COLUMNS, TS_COLUMN};

pub const MANIFEST_PATH: &str = "manifest.json";
pub const SEGMENTS_PREFIX: &str = "segments";
const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub relation: RelationId,
    pub path: String,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub min_ts: CommitTs,
    pub max_ts: CommitTs,
    pub rows: u64,
    pub bytes: u64,
    pub crc32c: u32,
    /// The offset as of which the file was written: its columns are the
    /// relation's columns at that offset (see [`super::layout`]).
    #[serde(default)]
    pub written_at: Offset,
    /// Whether this process has checked the file against `crc32c`.
    #[serde(skip)]
    pub verified: AtomicBool,
}

impl SegmentMeta {
    /// Reads the file once per process and checks its checksum.
    pub async fn verify(&self, store: &SegmentStore) -> Result<()> {
        if !self.verified.load(Ordering::Acquire) {
            fetch_checked(store, &self.path, self.bytes, self.crc32c, &self.verified).await?;
        }
        Ok(())
    }

    /// `columns` (positions in `def`'s current log schema) of the segment's
    /// rows, laid out as [`super::layout`] says; with `offsets = (after,
    /// upto)`, row groups whose offsets all lie outside `(after, upto]` are
    /// skipped (rows of the groups read are not filtered).
    pub async fn read(
        &self,
        store: &SegmentStore,
        def: &RelationDef,
        columns: &[usize],
        offsets: Option<(Offset, Offset)>,
    ) -> Result<Vec<RecordBatch>> {
        let bytes = fetch_checked(store, &self.path, self.bytes, self.crc32c, &self.verified).await?;
        decode(&self.path, bytes, def, columns, self.written_at, offsets)
    }

    /// `_offset` and `_ts` of the row groups holding offsets in `(after,
    /// upto]`, reading only the footer and those two columns' chunks (once
    /// the whole file has been checked in this process): finding a commit's
    /// time costs a few small reads, not the file.
    pub async fn read_offsets_and_times(
        &self,
        store: &SegmentStore,
        after: Offset,
        upto: Offset,
    ) -> Result<Vec<RecordBatch>> {
        use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
        use datafusion::parquet::arrow::ProjectionMask;
        use futures::TryStreamExt;
        self.verify(store).await?;
        let corrupt = |e: &dyn std::fmt::Display| Error::corrupt(std::path::Path::new(&self.path), 0, &e.to_string());
        let reader = RangeReader { objects: store.objects.clone(), path: self.path.as_str().into(), size: self.bytes };
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| corrupt(&e))?;
        let stored = builder.schema().clone();
        let (Ok(offset_column), Ok(ts_column)) = (stored.index_of(OFFSET_COLUMN), stored.index_of(TS_COLUMN)) else {
            return Err(corrupt(&"the file has no _offset or _ts column"));
        };
        let range = OffsetRange { column: offset_column, after: after.0 as i64, upto: upto.0 as i64 };
        let groups: Vec<usize> = (0..builder.metadata().num_row_groups())
            .filter(|i| range.overlaps(builder.metadata().row_group(*i)))
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), [offset_column, ts_column]);
        let stream = builder.with_projection(mask).with_row_groups(groups).build().map_err(|e| corrupt(&e))?;
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| corrupt(&e))?;
        // The projected columns come in file order.
        let order = if offset_column < ts_column { [0, 1] } else { [1, 0] };
        batches.iter().map(|b| b.project(&order).map_err(|e| corrupt(&e))).collect()
    }
}

/// Byte ranges of one sealed file, fetched from the store as Parquet asks.
struct RangeReader {
    objects: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    size: u64,
}

impl datafusion::parquet::arrow::async_reader::AsyncFileReader for RangeReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        use futures::FutureExt;
        async move {
            let bytes = object_store::ObjectStoreExt::get_range(&self.objects, &self.path, range).await;
            bytes.map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        use futures::FutureExt;
        async move {
            let size = self.size;
            let reader = ParquetMetaDataReader::new().with_arrow_reader_options(options);
            Ok(Arc::new(reader.load_and_finish(self, size).await?))
        }
        .boxed()
    }
}

/// Row groups to read: those whose `_offset` statistics overlap `(after, upto]`.
struct OffsetRange {
    column: usize,
    after: i64,
    upto: i64,
}

impl OffsetRange {
    fn overlaps(&self, group: &datafusion::parquet::file::metadata::RowGroupMetaData) -> bool {
        use datafusion::parquet::file::statistics::Statistics;
        match group.column(self.column).statistics() {
            Some(Statistics::Int64(stats)) => match (stats.min_opt(), stats.max_opt()) {
                (Some(min), Some(max)) => *max > self.after && *min <= self.upto,
                _ => true,
            },
            _ => true,
        }
    }
}

/// A sealed file's bytes, checked against the length and checksum the
/// manifest recorded (once per process: `verified` remembers it passed).
pub(super) async fn fetch_checked(
    store: &SegmentStore,
    path: &str,
    length: u64,
    crc32c: u32,
    verified: &AtomicBool,
) -> Result<Bytes> {
    let bytes = store.get(path).await?.ok_or_else(|| Error::Store(format!("{path} is missing")))?;
    if verified.load(Ordering::Acquire) {
        return Ok(bytes);
    }
    if bytes.len() as u64 != length || crc32c::crc32c(&bytes) != crc32c {
        return Err(Error::Corrupt { file: path.into(), position: 0, reason: "checksum mismatch".into() });
    }
    verified.store(true, Ordering::Release);
    Ok(bytes)
}

/// `columns` of `def`'s log schema from a Parquet file of its rows stored
/// through `written_through`; with `offsets = (after, upto)`, only the row
/// groups whose `_offset` statistics overlap `(after, upto]`. Row groups are
/// decoded on up to `DECODE_THREADS_MAX` threads side by side (a
/// point-in-time read often waits on one big file), batches kept in order.
pub(super) fn decode(
    path: &str,
    bytes: Bytes,
    def: &RelationDef,
    columns: &[usize],
    written_through: Offset,
    offsets: Option<(Offset, Offset)>,
) -> Result<Vec<RecordBatch>> {
    use datafusion::parquet::arrow::ProjectionMask;
    use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let corrupt = |e: &dyn std::fmt::Display| Error::corrupt(std::path::Path::new(path), 0, &e.to_string());
    let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::default()).map_err(|e| corrupt(&e))?;
    let stored = metadata.schema().clone();
    let sources = super::layout::sources(def, &stored, written_through, columns);
    let mut read: Vec<usize> = sources.iter().flatten().copied().collect();
    read.sort_unstable();
    read.dedup();
    let mask = ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), read.iter().copied());
    let mut groups: Vec<usize> = (0..metadata.metadata().num_row_groups()).collect();
    if let (Some((after, upto)), Ok(offset_column)) = (offsets, stored.index_of(OFFSET_COLUMN)) {
        let range = OffsetRange { column: offset_column, after: after.0 as i64, upto: upto.0 as i64 };
        groups.retain(|i| range.overlaps(metadata.metadata().row_group(*i)));
    }
    // The projected batches hold the read columns in file order.
    let sources: Vec<Option<usize>> =
        sources.iter().map(|s| s.map(|i| read.binary_search(&i).expect("read column"))).collect();
    let decode_groups = |groups: &[usize]| -> Result<Vec<RecordBatch>> {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), metadata.clone())
            .with_batch_size(64 * 1024)
            .with_projection(mask.clone())
            .with_row_groups(groups.to_vec())
            .build()
            .map_err(|e| corrupt(&e))?;
        let mut batches = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(&e))?;
            batches.push(super::layout::arrange(def, &batch, &sources, columns)?);
        }
        Ok(batches)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(DECODE_THREADS_MAX);
    if groups.len() < 2 || threads < 2 {
        return decode_groups(&groups);
    }
    let parts: Vec<&[usize]> = groups.chunks(groups.len().div_ceil(threads)).collect();
    std::thread::scope(|scope| {
        let (first, rest) = parts.split_first().expect("two parts or more");
        let others: Vec<_> = rest.iter().map(|part| scope.spawn(|| decode_groups(part))).collect();
        let mut batches = decode_groups(first)?;
        for other in others {
            batches.extend(other.join().map_err(|_| Error::Store(format!("decoding {path} panicked")))??);
        }
        Ok(batches)
    })
}

/// The most threads one file's row groups are decoded on.
const DECODE_THREADS_MAX: usize = 4;

/// `rows` of `def` as a Parquet file: Snappy, row groups of 128Ki rows;
/// `_offset`, `_ts` and the first key column (when an integer)
/// delta-encoded, the rest as Parquet chooses (dictionary, falling back to
/// plain). Offsets and times grow along a file, a snapshot is in key order
/// and a table's changes often are: such values take a few bits each
/// instead of eight bytes, and decode faster than plain values through Snappy.
pub(super) fn parquet_bytes(rows: &RecordBatch, def: &RelationDef) -> Result<Vec<u8>> {
    use datafusion::parquet::basic::Encoding;
    use datafusion::parquet::schema::types::ColumnPath;
    let mut properties =
        WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(128 * 1024));
    let key = def.primary_key.first().map(|k| def.columns[*k].name.as_str());
    for name in SYSTEM_COLUMNS.iter().copied().chain(key) {
        let Ok(field) = rows.schema().field_with_name(name).cloned() else { continue };
        if matches!(field.data_type(), DataType::Int64 | DataType::Int32 | DataType::Timestamp(_, _)) {
            let path = ColumnPath::from(field.name().as_str());
            properties = properties
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
    }
    let rows = &parquet_storable(rows)?;
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, rows.schema(), Some(properties.build()))
        .map_err(|e| Error::Encode(e.to_string()))?;
    writer.write(rows).map_err(|e| Error::Encode(e.to_string()))?;
    writer.close().map_err(|e| Error::Encode(e.to_string()))?;
    Ok(buffer)
}

/// `rows` with every column Parquet can store as it is: INTERVAL
/// (months, days and nanoseconds) has no Parquet type that keeps all three,
/// so it is stored as its text (`1 mons 2 days 3.500000000 secs`), which
/// reads back exactly (reads cast it back: [`super::layout::arrange`], and
/// DataFusion's scan to the relation's schema).
fn parquet_storable(rows: &RecordBatch) -> Result<RecordBatch> {
    let interval = |t: &DataType| matches!(t, DataType::Interval(_));
    if !rows.schema().fields().iter().any(|f| interval(f.data_type())) {
        return Ok(rows.clone());
    }
    let fields: Vec<_> = rows
        .schema()
        .fields()
        .iter()
        .map(|f| match interval(f.data_type()) {
            true => f.as_ref().clone().with_data_type(DataType::Utf8),
            false => f.as_ref().clone(),
        })
        .collect();
    let schema =
        Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(fields, rows.schema().metadata().clone()));
    crate::query::read_types::conform(rows, &schema).map_err(|e| Error::Encode(e.to_string()))
}

/// Encodes rows (full schema, ascending `_offset`), laid out in `def`'s
/// columns as of offset `written_at`, as one Parquet segment.
pub fn encode(def: &RelationDef, rows: &RecordBatch, written_at: Offset) -> Result<(SegmentMeta, Bytes)> {
    let offsets = rows.column(def.columns.len()).as_primitive::<Int64Type>();
    let stamps = rows.column(def.columns.len() + 1).as_primitive::<TimestampMicrosecondType>();
    let (first, last) = (min(offsets).unwrap_or(0) as u64, max(offsets).unwrap_or(0) as u64);
    let buffer = parquet_bytes(rows, def)?;
    let meta = SegmentMeta {
        relation: def.id,
        path: format!("{SEGMENTS_PREFIX}/{}/{first:020}-{last:020}.parquet", def.id.0),
        first_offset: Offset(first),
        last_offset: Offset(last),
        min_ts: CommitTs(min(stamps).unwrap_or(0)),
        max_ts: CommitTs(max(stamps).unwrap_or(0)),
        rows: rows.num_rows() as u64,
        bytes: buffer.len() as u64,
        crc32c: crc32c::crc32c(&buffer),
        written_at,
        verified: AtomicBool::new(true),
    };
    Ok((meta, Bytes::from(buffer)))
}

/// Everything sealed: the state of the log through `sealed_through`, so
/// recovery replays only the WAL after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub sealed_through: Offset,
    pub last_ts: CommitTs,
    /// The highest relation id ever given out, so ids of dropped relations
    /// are never reused.
    #[serde(default)]
    pub next_relation_id: u64,
    /// Above every row identity given out to a keyless table's row so far.
    #[serde(default)]
    pub next_row_id: i64,
    pub relations: Vec<RelationDef>,
    pub segments: Vec<Arc<SegmentMeta>>,
    /// Tables' state snapshots, oldest first per table.
    #[serde(default)]
    pub snapshots: Vec<Arc<SnapshotMeta>>,
    /// Continuous views' operator checkpoints, the latest per view.
    #[serde(default)]
    pub view_states: Vec<Arc<super::view_state::ViewStateMeta>>,
    /// Relations whose older history their retention dropped or folded.
    #[serde(default)]
    pub history_starts: Vec<(RelationId, HistoryStart)>,
    /// crc32c of this document with this field set to 0.
    pub checksum: u32,
}

impl Manifest {
    pub fn empty() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            sealed_through: Offset::ZERO,
            last_ts: CommitTs(0),
            next_relation_id: 0,
            next_row_id: 0,
            relations: vec![],
            segments: vec![],
            snapshots: vec![],
            view_states: vec![],
            history_starts: vec![],
            checksum: 0,
        }
    }

    /// The store's manifest; in a store without one, an empty manifest is
    /// written first, so a store that takes no writes (a missing bucket,
    /// wrong credentials) fails the start rather than the first seal.
    pub async fn load_or_create(store: &SegmentStore) -> Result<Manifest> {
        let Some(bytes) = store.get(MANIFEST_PATH).await? else {
            let mut manifest = Manifest::empty();
            manifest.store(store).await?;
            return Ok(manifest);
        };
        let corrupt = |reason: String| Error::Corrupt { file: MANIFEST_PATH.into(), position: 0, reason };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if manifest.version != MANIFEST_VERSION {
            return Err(corrupt(format!("unknown manifest version {}", manifest.version)));
        }
        if written_digest(&bytes) != Some(manifest.checksum) {
            return Err(corrupt("manifest checksum mismatch".into()));
        }
        for segment in &manifest.segments {
            segment.verified.store(false, Ordering::Release);
        }
        for snapshot in &manifest.snapshots {
            snapshot.verified.store(false, Ordering::Release);
        }
        Ok(manifest)
    }

    pub async fn store(&mut self, store: &SegmentStore) -> Result<()> {
        self.checksum = 0;
        self.checksum = self.digest()?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Encode(e.to_string()))?;
        store.put(MANIFEST_PATH, Bytes::from(bytes)).await
    }

    fn digest(&self) -> Result<u32> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(crc32c::crc32c(&bytes))
    }
}

/// The digest [`Manifest::store`] computed for a manifest stored as `bytes`:
/// of its compact JSON with its own checksum 0. Taken from the bytes as
/// written, not from the parsed manifest written again, so a manifest
/// written before a field was added (or by a version that knew one more)
/// still checks. `None` if the document does not end in its checksum.
fn written_digest(bytes: &[u8]) -> Option<u32> {
    // Pretty JSON without the whitespace between tokens is the compact JSON.
    let mut compact = Vec::with_capacity(bytes.len());
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (false, _, b'"') => in_string = true,
            (false, _, b' ' | b'\n' | b'\r' | b'\t') => continue,
            _ => {}
        }
        compact.push(byte);
    }
    // The manifest's own checksum is its last field (a segment's is inside).
    const FIELD: &[u8] = b",\"checksum\":";
    let at = compact.windows(FIELD.len()).rposition(|w| w == FIELD)?;
    let value = &compact[at + FIELD.len()..compact.len().checked_sub(1)?];
    if !value.iter().all(u8::is_ascii_digit) || compact.last() != Some(&b'}') {
        return None;
    }
    let mut zeroed = compact[..at + FIELD.len()].to_vec();
    zeroed.extend_from_slice(b"0}");
    Some(crc32c::crc32c(&zeroed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ColumnDef, RelationKind, SqlType, UTC};
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};

    fn relation() -> RelationDef {
        RelationDef {
            id: RelationId(7),
            name: "s".into(),
            kind: RelationKind::Stream,
            columns: vec![ColumnDef::new("note", SqlType::Text, true, None)],
            created_at: Offset(1),
            primary_key: vec![],
            checks: vec![],
            uniques: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            retention: None,
            view: None,
            schemas: Default::default(),
        }
    }

    fn rows(def: &RelationDef) -> RecordBatch {
        RecordBatch::try_new(
            def.full_schema(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Int64Array::from(vec![5, 6, 9])),
                Arc::new(TimestampMicrosecondArray::from(vec![100, 100, 250]).with_timezone(UTC)),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn segment_and_manifest_round_trip_through_the_store() {
        let store = SegmentStore::in_memory();
        let def = relation();
        let (meta, bytes) = encode(&def, &rows(&def), Offset(9)).unwrap();
        assert_eq!((meta.first_offset, meta.last_offset, meta.rows), (Offset(5), Offset(9), 3));
        assert_eq!((meta.min_ts, meta.max_ts), (CommitTs(100), CommitTs(250)));
        store.put(&meta.path, bytes.clone()).await.unwrap();

        let mut manifest = Manifest::empty();
        manifest.sealed_through = Offset(9);
        manifest.relations = vec![def];
        manifest.segments = vec![Arc::new(meta)];
        manifest.store(&store).await.unwrap();
        let loaded = Manifest::load_or_create(&store).await.unwrap();
        assert_eq!(loaded.sealed_through, Offset(9));
        assert_eq!(loaded.segments[0].path, manifest.segments[0].path);
        loaded.segments[0].verify(&store).await.unwrap();

        // A flipped byte in the segment is caught by its checksum.
        let mut damaged = bytes.to_vec();
        damaged[10] ^= 1;
        store.put(&loaded.segments[0].path, Bytes::from(damaged)).await.unwrap();
        let fresh = Manifest::load_or_create(&store).await.unwrap();
        assert!(matches!(fresh.segments[0].verify(&store).await, Err(Error::Corrupt { .. })));
    }

    #[tokio::test]
    async fn a_damaged_manifest_is_refused() {
        let store = SegmentStore::in_memory();
        let mut manifest = Manifest::empty();
        manifest.sealed_through = Offset(3);
        manifest.store(&store).await.unwrap();
        let text = String::from_utf8(store.get(MANIFEST_PATH).await.unwrap().unwrap().to_vec()).unwrap();
        store
            .put(MANIFEST_PATH, Bytes::from(text.replace("\"sealed_through\": 3", "\"sealed_through\": 4")))
            .await
            .unwrap();
        assert!(matches!(Manifest::load_or_create(&store).await, Err(Error::Corrupt { .. })));
    }

    /// A manifest written by a version with a field this one lacks, or
    /// without one this one has (read with its default), still checks: the
    /// digest is of the bytes as written.
    #[tokio::test]
    async fn a_manifest_of_another_version_checks() {
        let store = SegmentStore::in_memory();
        let mut manifest = Manifest::empty();
        manifest.relations = vec![relation()];
        manifest.sealed_through = Offset(3);
        manifest.store(&store).await.unwrap();
        let pretty = String::from_utf8(store.get(MANIFEST_PATH).await.unwrap().unwrap().to_vec()).unwrap();
        // As another version would write it: a field more, one fewer
        // (`next_row_id` has a default). Its checksum is of the compact
        // form, made here from the manifest itself.
        let added = r#""added_later": {"note": "a \"quoted\" value, with spaces"},"#;
        let pretty = pretty.replace("  \"next_row_id\": 0,\n", "").replacen(
            "\"version\": 1,",
            &format!("\"version\": 1,\n  {added}"),
            1,
        );
        manifest.checksum = 0;
        let compact = String::from_utf8(serde_json::to_vec(&manifest).unwrap()).unwrap();
        let compact = compact.replace("\"next_row_id\":0,", "").replacen(
            "\"version\":1,",
            &format!("\"version\":1,{}", added.replace("\": ", "\":")),
            1,
        );
        assert!(compact.ends_with(",\"checksum\":0}"), "{compact}");
        let checksum = crc32c::crc32c(compact.as_bytes());
        let written = pretty.replace(
            &format!("\"checksum\": {}", serde_json::from_str::<serde_json::Value>(&pretty).unwrap()["checksum"]),
            &format!("\"checksum\": {checksum}"),
        );
        store.put(MANIFEST_PATH, Bytes::from(written.clone())).await.unwrap();
        let loaded = Manifest::load_or_create(&store).await.unwrap();
        assert_eq!((loaded.sealed_through, loaded.relations.len()), (Offset(3), 1));

        // A changed byte still fails it.
        store.put(MANIFEST_PATH, Bytes::from(written.replace("with spaces", "with spacez"))).await.unwrap();
        assert!(matches!(Manifest::load_or_create(&store).await, Err(Error::Corrupt { .. })));
    }
}
