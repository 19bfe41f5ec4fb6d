//! Incremental `ORDER BY … LIMIT n [OFFSET m]`: every input row kept in
//! sort order (by Arrow's row format of the sort keys, then the row, so
//! ties break the same way every time), and after each change the rows at
//! positions `m..m+n` before and after are compared. A change costs its rows
//! plus the `m+n` rows at the front; over an append-only input only those
//! are kept.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::aggregate::RowKey;
use super::delta::{Delta, evaluate};
use super::{Result, ViewError};

#[derive(Debug, Clone)]
pub struct TopN {
    sort_exprs: Vec<Arc<dyn PhysicalExpr>>,
    sort_codec: Arc<RowConverter>,
    rows_codec: Arc<RowConverter>,
    pub skip: usize,
    pub fetch: usize,
    /// (sort key, row) → multiplicity.
    rows: Ordered,
    append_only_input: bool,
    schema: SchemaRef,
}

impl TopN {
    pub fn new(
        sort_exprs: Vec<Arc<dyn PhysicalExpr>>,
        sort_fields: Vec<SortField>,
        schema: SchemaRef,
        skip: usize,
        fetch: usize,
        append_only_input: bool,
    ) -> Result<TopN> {
        let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(TopN {
            sort_exprs,
            sort_codec: Arc::new(RowConverter::new(sort_fields)?),
            rows_codec: Arc::new(RowConverter::new(fields)?),
            skip,
            fetch,
            rows: imbl::OrdMap::new(),
            append_only_input,
            schema,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn window(&self) -> Vec<RowKey> {
        window(&self.rows, self.skip, self.fetch)
    }

    pub fn step(&mut self, input: &Delta) -> Result<Option<Delta>> {
        let before = self.window();
        let keys: Vec<ArrayRef> = self.sort_exprs.iter().map(|e| evaluate(e, &input.rows)).collect::<Result<_>>()?;
        let keys = self.sort_codec.convert_columns(&keys)?;
        let rows = self.rows_codec.convert_columns(input.rows.columns())?;
        for index in 0..input.len() {
            let entry: (RowKey, RowKey) = (Arc::from(keys.row(index).data()), Arc::from(rows.row(index).data()));
            apply(&mut self.rows, entry, input.diffs.value(index));
        }
        if self.append_only_input {
            self.trim();
        }
        let after = self.window();
        if before == after {
            return Ok(None);
        }
        let diffs: Vec<i64> =
            std::iter::repeat_n(-1, before.len()).chain(std::iter::repeat_n(1, after.len())).collect();
        let parser = self.rows_codec.parser();
        let columns = self.rows_codec.convert_rows(before.iter().chain(&after).map(|r| parser.parse(r)))?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        Ok(Some(Delta::new(batch, Int64Array::from(diffs))))
    }

    fn trim(&mut self) {
        trim(&mut self.rows, self.skip + self.fetch);
    }

    pub fn state_size(&self) -> (u64, u64) {
        (self.rows.len() as u64, self.rows.keys().map(|(k, r)| (k.len() + r.len() + 8) as u64).sum())
    }

    pub fn save(&self, out: &mut super::checkpoint::Encoder) {
        save_ordered(&self.rows, out);
    }

    pub fn load(&mut self, input: &mut super::checkpoint::Decoder) -> Result<()> {
        self.rows = load_ordered(input)?;
        Ok(())
    }
}

type Ordered = imbl::OrdMap<(RowKey, RowKey), i64>;

/// The rows at positions `skip..skip+fetch`, each once per copy.
fn window(rows: &Ordered, skip: usize, fetch: usize) -> Vec<RowKey> {
    let mut out = Vec::new();
    let mut position = 0usize;
    for ((_, row), count) in rows {
        for _ in 0..(*count).max(0) {
            if position >= skip.saturating_add(fetch) {
                return out;
            }
            if position >= skip {
                out.push(row.clone());
            }
            position += 1;
        }
    }
    out
}

/// Drops rows past the first `keep` (they can never come back into the
/// window when nothing is ever retracted).
fn trim(rows: &mut Ordered, keep: usize) {
    let mut seen = 0i64;
    let mut cut = None;
    for (entry, count) in rows.iter() {
        if seen >= keep as i64 {
            cut = Some(entry.clone());
            break;
        }
        seen += *count;
    }
    if let Some(cut) = cut {
        let (kept, _, _) = rows.split_lookup(&cut);
        *rows = kept;
    }
}

/// Ordered rows in a checkpoint: a count, then (sort key, row, multiplicity) each.
fn save_ordered(rows: &Ordered, out: &mut super::checkpoint::Encoder) {
    out.u64(rows.len() as u64);
    for ((key, row), count) in rows {
        out.bytes(key);
        out.bytes(row);
        out.i64(*count);
    }
}

fn load_ordered(input: &mut super::checkpoint::Decoder) -> Result<Ordered> {
    let mut rows = Ordered::new();
    for _ in 0..input.count()? {
        let key = input.bytes()?;
        let row = input.bytes()?;
        rows.insert((key, row), input.i64()?);
    }
    Ok(rows)
}

fn apply(rows: &mut Ordered, entry: (RowKey, RowKey), diff: i64) {
    let count = rows.get(&entry).copied().unwrap_or(0) + diff;
    if count == 0 {
        rows.remove(&entry);
    } else {
        rows.insert(entry, count);
    }
}

/// Per-group top-N: `row_number() OVER (PARTITION BY p ORDER BY s) <= n`.
/// Each partition keeps its rows in order; a change to a partition emits
/// the positions of its first `n` rows that changed, with their number.
#[derive(Debug, Clone)]
pub struct GroupTopN {
    partition_exprs: Vec<Arc<dyn PhysicalExpr>>,
    partition_codec: Arc<RowConverter>,
    sort_exprs: Vec<Arc<dyn PhysicalExpr>>,
    sort_codec: Arc<RowConverter>,
    rows_codec: Arc<RowConverter>,
    fetch: usize,
    partitions: imbl::HashMap<RowKey, Ordered>,
    append_only_input: bool,
    /// The input's columns, then the row number.
    schema: SchemaRef,
}

impl GroupTopN {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        partition_exprs: Vec<Arc<dyn PhysicalExpr>>,
        partition_fields: Vec<SortField>,
        sort_exprs: Vec<Arc<dyn PhysicalExpr>>,
        sort_fields: Vec<SortField>,
        input_schema: &SchemaRef,
        fetch: usize,
        append_only_input: bool,
        schema: SchemaRef,
    ) -> Result<GroupTopN> {
        let fields = input_schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(GroupTopN {
            partition_exprs,
            partition_codec: Arc::new(RowConverter::new(partition_fields)?),
            sort_exprs,
            sort_codec: Arc::new(RowConverter::new(sort_fields)?),
            rows_codec: Arc::new(RowConverter::new(fields)?),
            fetch,
            partitions: imbl::HashMap::new(),
            append_only_input,
            schema,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn step(&mut self, input: &Delta) -> Result<Option<Delta>> {
        let columns = |exprs: &[Arc<dyn PhysicalExpr>]| -> Result<Vec<ArrayRef>> {
            exprs.iter().map(|e| evaluate(e, &input.rows)).collect()
        };
        let partitions = self.partition_codec.convert_columns(&columns(&self.partition_exprs)?)?;
        let keys = self.sort_codec.convert_columns(&columns(&self.sort_exprs)?)?;
        let rows = self.rows_codec.convert_columns(input.rows.columns())?;
        let mut before: std::collections::HashMap<RowKey, Vec<RowKey>> = std::collections::HashMap::new();
        for index in 0..input.len() {
            let partition: RowKey = Arc::from(partitions.row(index).data());
            let ordered = self.partitions.entry(partition.clone()).or_default();
            before.entry(partition).or_insert_with(|| window(ordered, 0, self.fetch));
            let entry = (Arc::from(keys.row(index).data()), Arc::from(rows.row(index).data()));
            apply(ordered, entry, input.diffs.value(index));
        }
        let (mut out, mut numbers, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
        for (partition, old) in before {
            let ordered = self.partitions.get_mut(&partition).expect("touched partition");
            if self.append_only_input {
                trim(ordered, self.fetch);
            }
            let new = window(ordered, 0, self.fetch);
            if ordered.is_empty() {
                self.partitions.remove(&partition);
            }
            for position in 0..old.len().max(new.len()) {
                if old.get(position) == new.get(position) {
                    continue;
                }
                for (row, diff) in [(old.get(position), -1), (new.get(position), 1)] {
                    if let Some(row) = row {
                        out.push(row.clone());
                        numbers.push(position as u64 + 1);
                        diffs.push(diff);
                    }
                }
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        let parser = self.rows_codec.parser();
        let mut columns = self.rows_codec.convert_rows(out.iter().map(|r| parser.parse(r)))?;
        columns.push(Arc::new(datafusion::arrow::array::UInt64Array::from(numbers)));
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| Ok(datafusion::arrow::compute::cast(&c, f.data_type())?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Delta::new(RecordBatch::try_new(self.schema.clone(), columns)?, Int64Array::from(diffs))))
    }

    pub fn state_size(&self) -> (u64, u64) {
        let mut size = (0, 0);
        for rows in self.partitions.values() {
            size.0 += rows.len() as u64;
            size.1 += rows.keys().map(|(k, r)| (k.len() + r.len() + 8) as u64).sum::<u64>();
        }
        size
    }

    pub fn save(&self, out: &mut super::checkpoint::Encoder) {
        out.u64(self.partitions.len() as u64);
        for (partition, rows) in &self.partitions {
            out.bytes(partition);
            save_ordered(rows, out);
        }
    }

    pub fn load(&mut self, input: &mut super::checkpoint::Decoder) -> Result<()> {
        let mut partitions = imbl::HashMap::new();
        for _ in 0..input.count()? {
            let partition = input.bytes()?;
            partitions.insert(partition, load_ordered(input)?);
        }
        self.partitions = partitions;
        Ok(())
    }
}

impl ViewError {
    pub fn limit_without_order() -> ViewError {
        ViewError::Unsupported("LIMIT without ORDER BY (its rows are not defined)".into())
    }
}
