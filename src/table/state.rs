//! A table's current state: the latest version of every row, by primary key.
//! The map is persistent (structurally shared), so a snapshot costs O(1):
//! the log writer publishes one with every commit, and each statement and
//! transaction keeps the one it started with while writers go on.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use datafusion::common::ScalarValue;

use crate::catalog::{RelationDef, UTC};
use crate::log::{CommitTs, Offset, RelationId};

pub use super::key::Key;

/// One row as it is now, and the change that produced it. Rows written by an
/// open transaction have no offset or time yet.
#[derive(Debug, Clone)]
pub struct RowVersion {
    pub offset: Option<Offset>,
    pub ts: Option<CommitTs>,
    pub row: OwnedRow,
}

/// Converts between a table's Arrow columns and its keys and stored rows.
#[derive(Debug)]
pub struct TableCodec {
    pub def: Arc<RelationDef>,
    keys: RowConverter,
    /// Shared by a renamed table's codec: the stored rows are readable
    /// only by the converter that made them.
    rows: Arc<RowConverter>,
    /// Per foreign key: its columns encoded as the referenced table's key.
    references: Vec<RowConverter>,
    /// Per UNIQUE constraint: its columns.
    uniques: Vec<RowConverter>,
    /// Per index: its columns then the key's (an entry per row), and its
    /// columns alone (what a lookup gives).
    indexes: Vec<(RowConverter, RowConverter)>,
}

impl TableCodec {
    pub fn new(def: Arc<RelationDef>) -> Result<TableCodec, ArrowError> {
        let fields = |indices: &mut dyn Iterator<Item = usize>| -> Vec<SortField> {
            indices.map(|i| SortField::new(def.columns[i].sql_type.arrow_type())).collect()
        };
        let keys = RowConverter::new(fields(&mut def.primary_key.iter().copied()))?;
        let rows = Arc::new(RowConverter::new(fields(&mut (0..def.columns.len())))?);
        let references = def
            .foreign_keys
            .iter()
            .map(|key| RowConverter::new(key.key_types.iter().map(|t| SortField::new(t.arrow_type())).collect()))
            .collect::<Result<_, _>>()?;
        let uniques = def
            .uniques
            .iter()
            .map(|unique| RowConverter::new(fields(&mut unique.columns.iter().copied())))
            .collect::<Result<_, _>>()?;
        let indexes = def
            .indexes
            .iter()
            .map(|index| {
                let entry = fields(&mut index.columns.iter().chain(&def.primary_key).copied());
                Ok((RowConverter::new(entry)?, RowConverter::new(fields(&mut index.columns.iter().copied()))?))
            })
            .collect::<Result<_, ArrowError>>()?;
        Ok(TableCodec { def, keys, rows, references, uniques, indexes })
    }

    /// Each row's entry in index `number`: its values there, then its key.
    fn index_entries(&self, number: usize, batch: &RecordBatch) -> Result<Vec<Key>, ArrowError> {
        let index = &self.def.indexes[number];
        let columns: Vec<ArrayRef> =
            index.columns.iter().chain(&self.def.primary_key).map(|p| batch.column(*p).clone()).collect();
        let entries = encode(&self.indexes[number].0, columns)?;
        Ok(entries.iter().map(|r| Key::from(r.as_ref())).collect())
    }

    /// `values` (one per column, in order) as the leading part of the
    /// entries of index `number` (`Unique(n)`: as its values), each
    /// converted to its column's type; `None` when one is NULL, which equals
    /// no value. A value that does not convert is an error.
    pub fn lookup_values(&self, index: Lookup, values: &[ScalarValue]) -> Result<Option<Key>, ArrowError> {
        match index {
            Lookup::Unique(n) => self.encode_values(&self.def.uniques[n].columns, &self.uniques[n], values),
            Lookup::Index(n) => self.encode_values(&self.def.indexes[n].columns, &self.indexes[n].1, values),
        }
    }

    /// `values` for the columns at `positions`, each converted to its
    /// column's type, encoded by `converter`; `None` when one is NULL.
    fn encode_values(
        &self,
        positions: &[usize],
        converter: &RowConverter,
        values: &[ScalarValue],
    ) -> Result<Option<Key>, ArrowError> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(values.len());
        for (value, position) in values.iter().zip(positions) {
            let target = self.def.columns[*position].sql_type.arrow_type();
            let value = value.cast_to(&target).map_err(|e| ArrowError::CastError(e.to_string()))?;
            if value.is_null() {
                return Ok(None);
            }
            columns.push(value.to_array().map_err(|e| ArrowError::CastError(e.to_string()))?);
        }
        let rows = encode(converter, columns)?;
        Ok(Some(Key::from(rows.row(0).as_ref())))
    }

    /// The values each row of `batch` (user columns) holds in UNIQUE
    /// constraint `number`; `None` for a row with a NULL in one of them,
    /// which equals no other row's (unless NULLS NOT DISTINCT).
    pub fn unique_values(&self, number: usize, batch: &RecordBatch) -> Result<Vec<Option<Key>>, ArrowError> {
        let unique = &self.def.uniques[number];
        let columns: Vec<ArrayRef> = unique.columns.iter().map(|p| batch.column(*p).clone()).collect();
        let values = encode(&self.uniques[number], columns.clone())?;
        Ok((0..batch.num_rows())
            .map(|row| {
                let distinct_null = !unique.nulls_not_distinct && columns.iter().any(|c| c.is_null(row));
                (!distinct_null).then(|| Key::from(values.row(row).as_ref()))
            })
            .collect())
    }

    /// `Key (email)=(ann@example.com)` for UNIQUE constraint `number` of row `row` of `batch`.
    pub fn describe_unique(&self, number: usize, batch: &RecordBatch, row: usize) -> String {
        describe(&self.def, &self.def.uniques[number].columns, batch, row)
    }

    /// The key of the referenced table each row of `batch` (user columns)
    /// names by foreign key `number`; `None` for a row with a NULL in one of
    /// its columns, which names no row (MATCH SIMPLE).
    pub fn referenced_keys(&self, number: usize, batch: &RecordBatch) -> Result<Vec<Option<Key>>, ArrowError> {
        let foreign = &self.def.foreign_keys[number];
        let given: Vec<&ArrayRef> = foreign.columns.iter().map(|p| batch.column(*p)).collect();
        let columns = given
            .iter()
            .zip(&foreign.key_types)
            .map(|(column, key_type)| datafusion::arrow::compute::cast(column, &key_type.arrow_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = encode(&self.references[number], columns.clone())?;
        Ok((0..batch.num_rows())
            .map(|row| {
                if given.iter().any(|column| column.is_null(row)) {
                    return None;
                }
                // A value out of the key type's range (a BIGINT naming an INT
                // key) casts to NULL: it names a key no row has, and an
                // empty key is none (every encoded column takes a byte).
                match columns.iter().all(|column| column.is_valid(row)) {
                    true => Some(Key::from(keys.row(row).as_ref())),
                    false => Some(Key::from(&[][..])),
                }
            })
            .collect())
    }

    /// `Key (parent_id)=(5)` for foreign key `number` of row `row` of `batch`.
    pub fn describe_reference(&self, number: usize, batch: &RecordBatch, row: usize) -> String {
        describe(&self.def, &self.def.foreign_keys[number].columns, batch, row)
    }

    /// The key of every row of `batch` (user columns).
    pub fn keys(&self, batch: &RecordBatch) -> Result<Vec<Key>, ArrowError> {
        let columns: Vec<ArrayRef> = self.def.primary_key.iter().map(|i| batch.column(*i).clone()).collect();
        let rows = encode(&self.keys, columns)?;
        Ok(rows.iter().map(|r| Key::from(r.as_ref())).collect())
    }

    pub fn rows(&self, batch: &RecordBatch) -> Result<Vec<OwnedRow>, ArrowError> {
        let rows = self.rows.convert_columns(batch.columns())?;
        Ok(rows.iter().map(|r| r.owned()).collect())
    }

    /// The key made of `values` (one per key column, in key order), each
    /// converted to its column's type; `None` when one is NULL, which no
    /// row's key can be. A value that does not convert is an error.
    pub fn key_of(&self, values: &[ScalarValue]) -> Result<Option<Key>, ArrowError> {
        self.encode_values(&self.def.primary_key, &self.keys, values)
    }

    /// `Key (id)=(1)`, as PostgreSQL names a key in a uniqueness error.
    pub fn describe_key(&self, batch: &RecordBatch, row: usize) -> String {
        describe(&self.def, &self.def.primary_key, batch, row)
    }
}

/// `columns` as keys (of a primary key, UNIQUE constraint, index or
/// foreign key), which compare by their bytes: a float's -0 is encoded as
/// 0, which it equals (the row keeps its -0).
fn encode(converter: &RowConverter, columns: Vec<ArrayRef>) -> Result<Rows, ArrowError> {
    fn unsigned_zero(column: ArrayRef) -> ArrayRef {
        match column.data_type() {
            DataType::Float64 => Arc::new(
                column.as_primitive::<Float64Type>().unary::<_, Float64Type>(|v| if v == 0.0 { 0.0 } else { v }),
            ),
            DataType::Float32 => Arc::new(
                column.as_primitive::<Float32Type>().unary::<_, Float32Type>(|v| if v == 0.0 { 0.0 } else { v }),
            ),
            _ => column,
        }
    }
    converter.convert_columns(&columns.into_iter().map(unsigned_zero).collect::<Vec<_>>())
}

/// Frees `value` in a UNIQUE constraint's index if the row keyed `key` holds it.
fn free(index: &mut imbl::OrdMap<Key, Key>, value: Option<Key>, key: &Key) {
    if let Some(value) = value
        && index.get(&value) == Some(key)
    {
        index.remove(&value);
    }
}

/// `Key (a, b)=(1, null)`: the values of row `row` in columns `positions`.
fn describe(def: &RelationDef, positions: &[usize], batch: &RecordBatch, row: usize) -> String {
    let names: Vec<&str> = positions.iter().map(|i| def.columns[*i].name.as_str()).collect();
    let values: Vec<String> = positions
        .iter()
        .map(|i| match batch.column(*i).is_null(row) {
            true => "null".into(),
            false => datafusion::arrow::util::display::array_value_to_string(batch.column(*i), row)
                .unwrap_or_else(|_| "?".into()),
        })
        .collect();
    format!("Key ({})=({})", names.join(", "), values.join(", "))
}

/// A UNIQUE constraint or an index a lookup goes through.
#[derive(Debug, Clone, Copy)]
pub enum Lookup {
    Unique(usize),
    Index(usize),
}

/// One table's rows now.
#[derive(Debug, Clone)]
pub struct TableState {
    pub codec: Arc<TableCodec>,
    pub rows: imbl::OrdMap<Key, Arc<RowVersion>>,
    /// Per foreign key: how many rows name each key of the referenced
    /// table, so deleting one finds at once whether a row still names it.
    pub references: Vec<imbl::OrdMap<Key, u64>>,
    /// Per UNIQUE constraint: the key of the row holding each value.
    pub uniques: Vec<imbl::OrdMap<Key, Key>>,
    /// Per index: an entry per row, its values then its key.
    pub indexes: Vec<imbl::OrdSet<Key>>,
}

impl TableState {
    pub fn new(def: Arc<RelationDef>) -> Result<TableState, ArrowError> {
        let references = vec![imbl::OrdMap::new(); def.foreign_keys.len()];
        let uniques = vec![imbl::OrdMap::new(); def.uniques.len()];
        let indexes = vec![imbl::OrdSet::new(); def.indexes.len()];
        let codec = Arc::new(TableCodec::new(def)?);
        Ok(TableState { codec, rows: imbl::OrdMap::new(), references, uniques, indexes })
    }

    /// The keys of the rows whose values in `index` are `values` (as
    /// [`TableCodec::lookup_values`] made them), in key order.
    pub fn look_up(&self, index: Lookup, values: &Key) -> Vec<Key> {
        match index {
            Lookup::Unique(n) => self.uniques[n].get(values).cloned().into_iter().collect(),
            // Every column's encoding ends where it ends (no value's is the
            // beginning of another's), so the entries for `values` are
            // those that begin with it, and the key is what follows.
            Lookup::Index(n) => self.indexes[n]
                .range(values.clone()..)
                .take_while(|entry| entry.as_ref().starts_with(values.as_ref()))
                .map(|entry| Key::from(&entry.as_ref()[values.as_ref().len()..]))
                .collect(),
        }
    }

    /// Adds the index entries of `batch`'s rows, or removes them where `removed`.
    pub fn index_rows(&mut self, batch: &RecordBatch, removed: impl Fn(usize) -> bool) -> Result<(), ArrowError> {
        for number in 0..self.indexes.len() {
            let entries = self.codec.index_entries(number, batch)?;
            let index = &mut self.indexes[number];
            for (row, entry) in entries.into_iter().enumerate() {
                match removed(row) {
                    true => drop(index.remove(&entry)),
                    false => drop(index.insert(entry)),
                }
            }
        }
        Ok(())
    }

    /// Takes `def`, the definition after a RENAME (the same columns and
    /// keys), as the one its errors name.
    pub fn rename(&mut self, def: Arc<RelationDef>) -> Result<(), ArrowError> {
        let mut codec = TableCodec::new(def)?;
        codec.rows = self.codec.rows.clone();
        self.codec = Arc::new(codec);
        Ok(())
    }

    /// Takes the unique values of a write's rows (each batch with its rows'
    /// keys): the deleted rows' are freed, then the inserted rows' taken; a value another row holds is a violation (23505). Checked once
    /// the statement's rows are all in, so an update may pass a value from
    /// one row to another.
    pub fn take_unique_values(
        &mut self,
        deletes: (&RecordBatch, &[Key]),
        inserts: (&RecordBatch, &[Key]),
    ) -> Result<(), crate::log::Error> {
        for number in 0..self.uniques.len() {
            let freed = self.codec.unique_values(number, deletes.0)?;
            let taken = self.codec.unique_values(number, inserts.0)?;
            let index = &mut self.uniques[number];
            for (value, key) in freed.into_iter().zip(deletes.1) {
                free(index, value, key);
            }
            for (row, (value, key)) in taken.into_iter().zip(inserts.1).enumerate() {
                let Some(value) = value else { continue };
                if index.insert(value, key.clone()).is_some() {
                    let unique = &self.codec.def.uniques[number];
                    return Err(crate::log::Error::UniqueViolation {
                        table: self.codec.def.name.clone(),
                        constraint: unique.name.clone(),
                        detail: format!("{} already exists.", self.codec.describe_unique(number, inserts.0, row)),
                    });
                }
            }
        }
        Ok(())
    }

    /// Indexes every row's unique values anew. Changes replayed with a
    /// definition newer than they are may predate a UNIQUE index, and two
    /// rows then held a value: the one deleted freed it from the other.
    pub fn reindex_unique_values(&mut self) -> Result<(), ArrowError> {
        if self.uniques.is_empty() {
            return Ok(());
        }
        let rows = self.to_batch(&self.codec.def.full_schema(), None)?;
        let user = rows.project(&(0..self.codec.def.columns.len()).collect::<Vec<_>>())?;
        let keys = self.codec.keys(&user)?;
        self.uniques.iter_mut().for_each(|index| *index = imbl::OrdMap::new());
        self.index_unique_values(&user, &keys, |_| false)
    }

    /// Indexes the unique values of committed changes, in order (`removed`
    /// rows free theirs); they were checked when they committed.
    fn index_unique_values(
        &mut self,
        batch: &RecordBatch,
        keys: &[Key],
        removed: impl Fn(usize) -> bool,
    ) -> Result<(), ArrowError> {
        for number in 0..self.uniques.len() {
            let values = self.codec.unique_values(number, batch)?;
            let index = &mut self.uniques[number];
            for (row, (value, key)) in values.into_iter().zip(keys).enumerate() {
                match removed(row) {
                    true => free(index, value, key),
                    false => drop(value.map(|value| index.insert(value, key.clone()))),
                }
            }
        }
        Ok(())
    }

    /// Counts the rows of `batch` (user columns) as naming the keys their
    /// foreign keys name, or as no longer naming them where `removed`.
    pub fn count_references(&mut self, batch: &RecordBatch, removed: impl Fn(usize) -> bool) -> Result<(), ArrowError> {
        for number in 0..self.references.len() {
            let keys = self.codec.referenced_keys(number, batch)?;
            let counts = &mut self.references[number];
            for (row, key) in keys.into_iter().enumerate() {
                let Some(key) = key else { continue };
                let count = counts.get(&key).copied().unwrap_or(0);
                match (removed(row), count) {
                    (false, _) => drop(counts.insert(key, count + 1)),
                    (true, 0 | 1) => drop(counts.remove(&key)),
                    (true, _) => drop(counts.insert(key, count - 1)),
                }
            }
        }
        Ok(())
    }

    /// How many rows name `key` of the referenced table by foreign key `number`.
    pub fn references_to(&self, number: usize, key: &Key) -> u64 {
        self.references[number].get(key).copied().unwrap_or(0)
    }

    /// The same rows laid out in `def`'s columns after the `ALTER … ADD / DROP
    /// / RENAME COLUMN` at `at`: an added column takes its missing value, a
    /// dropped one goes, a renamed one is found under its former name; and
    /// indexed for `def`'s constraints and indexes, where the rows must not
    /// repeat a value of a UNIQUE index it adds.
    pub fn reshaped(&self, def: Arc<RelationDef>, at: Offset) -> Result<TableState, crate::log::Error> {
        let old = &self.codec.def;
        let rows = self.to_batch(&old.full_schema(), None)?;
        let columns: Vec<usize> = (0..def.full_schema().fields().len()).collect();
        // The rows are laid out as before the ALTER at `at`.
        let before = Offset(at.0.saturating_sub(1));
        let rows = crate::log::layout::adapt(&def, &rows, before, &columns)
            .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
        let mut table = TableState::new(def.clone())?;
        table.load_versions(&rows)?;
        for (number, unique) in def.uniques.iter().enumerate() {
            if !old.uniques.iter().any(|u| u.name == unique.name) {
                table.refuse_repeated_values(number, &rows)?;
            }
        }
        Ok(table)
    }

    /// Fails when two of `rows` (this table's) hold the same values in
    /// UNIQUE constraint `number`: its index took one row per value.
    fn refuse_repeated_values(&self, number: usize, rows: &RecordBatch) -> Result<(), crate::log::Error> {
        let user = rows.project(&(0..self.codec.def.columns.len()).collect::<Vec<_>>())?;
        let values = self.codec.unique_values(number, &user)?;
        if values.iter().flatten().count() == self.uniques[number].len() {
            return Ok(());
        }
        let mut seen = std::collections::HashSet::new();
        let repeated = values.iter().position(|v| v.as_ref().is_some_and(|v| !seen.insert(v.clone())));
        let detail = repeated.map(|row| self.codec.describe_unique(number, &user, row)).unwrap_or_default();
        Err(crate::log::Error::UniqueIndexBlocked {
            table: self.codec.def.name.clone(),
            index: self.codec.def.uniques[number].name.clone(),
            detail: format!("{detail} is duplicated."),
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Applies changes in order: `rows` are user columns, `diffs` ±1 each;
    /// `offsets`/`ts` are the events' (None while in an open transaction).
    pub fn apply(
        &mut self,
        rows: &RecordBatch,
        diffs: &[i64],
        offsets: Option<&[i64]>,
        ts: &[Option<CommitTs>],
    ) -> Result<(), ArrowError> {
        self.count_references(rows, |row| diffs[row] < 0)?;
        self.index_rows(rows, |row| diffs[row] < 0)?;
        let keys = self.codec.keys(rows)?;
        self.index_unique_values(rows, &keys, |row| diffs[row] < 0)?;
        let owned = self.codec.rows(rows)?;
        for (index, (key, row)) in keys.into_iter().zip(owned).enumerate() {
            if diffs[index] < 0 {
                self.rows.remove(&key);
            } else {
                let offset = offsets.map(|o| Offset(o[index] as u64));
                self.rows.insert(key, Arc::new(RowVersion { offset, ts: ts[index], row }));
            }
        }
        Ok(())
    }

    /// Adds the rows of a state snapshot (full schema: user columns, then
    /// `_offset`, `_ts` of each row's version).
    /// A version without an offset (an open block's own row, in its view
    /// laid out anew by its ALTER) keeps none.
    pub fn load_versions(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let n = self.codec.def.columns.len();
        let user = RecordBatch::try_new(self.codec.def.user_schema(), batch.columns()[..n].to_vec())?;
        let offsets = batch.column(n).as_primitive::<Int64Type>();
        let ts = timestamps(batch.column(n + 1));
        self.count_references(&user, |_| false)?;
        self.index_rows(&user, |_| false)?;
        let keys = self.codec.keys(&user)?;
        self.index_unique_values(&user, &keys, |_| false)?;
        let rows = self.codec.rows(&user)?;
        for (index, (key, row)) in keys.into_iter().zip(rows).enumerate() {
            let offset = offsets.is_valid(index).then(|| Offset(offsets.value(index) as u64));
            self.rows.insert(key, Arc::new(RowVersion { offset, ts: ts[index], row }));
        }
        Ok(())
    }

    /// The rows as one batch in `schema` (user columns, `_offset`, `_ts`),
    /// in key order; with `keys`, only those rows.
    pub fn to_batch(&self, schema: &SchemaRef, keys: Option<&[Key]>) -> Result<RecordBatch, ArrowError> {
        let versions: Vec<&Arc<RowVersion>> = match keys {
            Some(keys) => keys.iter().filter_map(|k| self.rows.get(k)).collect(),
            None => self.rows.values().collect(),
        };
        self.versions_batch(schema, &versions)
    }

    /// One row version in the relation's full schema (user columns,
    /// `_offset`, `_ts`).
    pub fn version_batch(&self, version: &Arc<RowVersion>) -> Result<RecordBatch, ArrowError> {
        self.versions_batch(&self.codec.def.full_schema(), &[version])
    }

    fn versions_batch(&self, schema: &SchemaRef, versions: &[&Arc<RowVersion>]) -> Result<RecordBatch, ArrowError> {
        let mut columns = self.codec.rows.convert_rows(versions.iter().map(|v| v.row.row()))?;
        let offsets: Int64Array = versions.iter().map(|v| v.offset.map(|o| o.0 as i64)).collect();
        let stamps: TimestampMicrosecondArray = versions.iter().map(|v| v.ts.map(|t| t.0)).collect();
        columns.push(Arc::new(offsets));
        columns.push(Arc::new(stamps.with_timezone(UTC)));
        RecordBatch::try_new(schema.clone(), columns)
    }
}

/// Every table's current state; cloned per commit and per snapshot (cheap:
/// the maps inside are shared).
#[derive(Debug, Clone, Default)]
pub struct TableStates {
    pub by_relation: HashMap<RelationId, TableState>,
}

impl TableStates {
    pub fn get(&self, id: RelationId) -> Option<&TableState> {
        self.by_relation.get(&id)
    }
}

/// Splits a log batch of a table (user columns, `_offset`, `_ts`, `_diff`)
/// into user rows, diffs, offsets and times.
pub fn split_log_batch(def: &RelationDef, batch: &RecordBatch) -> Result<LogRows, ArrowError> {
    let n = def.columns.len();
    let user = RecordBatch::try_new(def.user_schema(), batch.columns()[..n].to_vec())?;
    let offsets = batch.column(n).as_primitive::<Int64Type>().values().to_vec();
    let ts = timestamps(batch.column(n + 1));
    let diffs = batch.column(n + 2).as_primitive::<Int64Type>().values().to_vec();
    Ok(LogRows { user, diffs, offsets, ts })
}

/// A `_ts` column as commit times.
fn timestamps(column: &ArrayRef) -> Vec<Option<CommitTs>> {
    let stamps = column.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
    (0..stamps.len()).map(|i| (!stamps.is_null(i)).then(|| CommitTs(stamps.value(i)))).collect()
}

pub struct LogRows {
    pub user: RecordBatch,
    pub diffs: Vec<i64>,
    pub offsets: Vec<i64>,
    pub ts: Vec<Option<CommitTs>>,
}
