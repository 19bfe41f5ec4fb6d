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
    rows: imbl::OrdMap<(RowKey, RowKey), i64>,
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

    /// The rows at positions `skip..skip+fetch`, each once per copy.
    fn window(&self) -> Vec<RowKey> {
        let mut out = Vec::new();
        let mut position = 0usize;
        for ((_, row), count) in &self.rows {
            for _ in 0..(*count).max(0) {
                if position >= self.skip + self.fetch {
                    return out;
                }
                if position >= self.skip {
                    out.push(row.clone());
                }
                position += 1;
            }
        }
        out
    }

    pub fn step(&mut self, input: &Delta) -> Result<Option<Delta>> {
        let before = self.window();
        let keys: Vec<ArrayRef> = self.sort_exprs.iter().map(|e| evaluate(e, &input.rows)).collect::<Result<_>>()?;
        let keys = self.sort_codec.convert_columns(&keys)?;
        let rows = self.rows_codec.convert_columns(input.rows.columns())?;
        for index in 0..input.len() {
            let entry: (RowKey, RowKey) = (Arc::from(keys.row(index).data()), Arc::from(rows.row(index).data()));
            let count = self.rows.get(&entry).copied().unwrap_or(0) + input.diffs.value(index);
            if count == 0 {
                self.rows.remove(&entry);
            } else {
                self.rows.insert(entry, count);
            }
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

    /// Drops rows past the window (they can never come back into it when
    /// nothing is ever retracted).
    fn trim(&mut self) {
        let keep = self.skip + self.fetch;
        let mut seen = 0i64;
        let mut cut = None;
        for (entry, count) in &self.rows {
            if seen >= keep as i64 {
                cut = Some(entry.clone());
                break;
            }
            seen += *count;
        }
        if let Some(cut) = cut {
            let (kept, _, _) = self.rows.split_lookup(&cut);
            self.rows = kept;
        }
    }

    pub fn state_size(&self) -> (u64, u64) {
        (self.rows.len() as u64, self.rows.keys().map(|(k, r)| (k.len() + r.len() + 8) as u64).sum())
    }

    pub fn save(&self, out: &mut super::checkpoint::Encoder) {
        out.u64(self.rows.len() as u64);
        for ((key, row), count) in &self.rows {
            out.bytes(key);
            out.bytes(row);
            out.i64(*count);
        }
    }

    pub fn load(&mut self, input: &mut super::checkpoint::Decoder) -> Result<()> {
        let mut rows = imbl::OrdMap::new();
        for _ in 0..input.count()? {
            let key = input.bytes()?;
            let row = input.bytes()?;
            rows.insert((key, row), input.i64()?);
        }
        self.rows = rows;
        Ok(())
    }
}

impl ViewError {
    pub fn limit_without_order() -> ViewError {
        ViewError::Unsupported("LIMIT without ORDER BY (its rows are not defined)".into())
    }
}
