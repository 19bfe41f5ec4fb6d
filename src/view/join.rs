//! Incremental inner equi-join. Both inputs are kept as multisets of rows
//! by join key; a change joins the other side's rows with the same key:
//! Δ(L ⋈ R) = ΔL ⋈ R + L ⋈ ΔR + ΔL ⋈ ΔR (with L and R before the change).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::aggregate::RowKey;
use super::delta::{Delta, evaluate};
use super::{Result, ViewError};

/// One side's rows: join key → row (all its columns) → multiplicity.
type Side = imbl::HashMap<RowKey, imbl::HashMap<RowKey, i64>>;

#[derive(Debug, Clone)]
pub struct Join {
    left_keys: Vec<Arc<dyn PhysicalExpr>>,
    right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Extra conditions of ON, over the joined row.
    filter: Option<Arc<dyn PhysicalExpr>>,
    keys_codec: Arc<RowConverter>,
    left_codec: Arc<RowConverter>,
    right_codec: Arc<RowConverter>,
    left: Side,
    right: Side,
    schema: SchemaRef,
}

/// A side's change, encoded: (join key, row, diff); rows with a NULL key
/// join nothing and are left out.
type Encoded = Vec<(RowKey, RowKey, i64)>;

impl Join {
    pub fn new(
        left_keys: Vec<Arc<dyn PhysicalExpr>>,
        right_keys: Vec<Arc<dyn PhysicalExpr>>,
        key_types: Vec<DataType>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        left_schema: &SchemaRef,
        right_schema: &SchemaRef,
        schema: SchemaRef,
    ) -> Result<Join> {
        let codec = |schema: &SchemaRef| -> Result<Arc<RowConverter>> {
            let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
            Ok(Arc::new(RowConverter::new(fields)?))
        };
        Ok(Join {
            left_keys,
            right_keys,
            filter,
            keys_codec: Arc::new(RowConverter::new(key_types.into_iter().map(SortField::new).collect())?),
            left_codec: codec(left_schema)?,
            right_codec: codec(right_schema)?,
            left: Side::new(),
            right: Side::new(),
            schema,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn save(&self, out: &mut super::checkpoint::Encoder) {
        for side in [&self.left, &self.right] {
            out.u64(side.len() as u64);
            for (key, rows) in side {
                out.bytes(key);
                out.u64(rows.len() as u64);
                for (row, count) in rows {
                    out.bytes(row);
                    out.i64(*count);
                }
            }
        }
    }

    pub fn load(&mut self, input: &mut super::checkpoint::Decoder) -> Result<()> {
        for side in [&mut self.left, &mut self.right] {
            let mut loaded = Side::new();
            for _ in 0..input.count()? {
                let key = input.bytes()?;
                let mut rows = imbl::HashMap::new();
                for _ in 0..input.count()? {
                    let row = input.bytes()?;
                    rows.insert(row, input.i64()?);
                }
                loaded.insert(key, rows);
            }
            *side = loaded;
        }
        Ok(())
    }

    pub fn step(&mut self, left: Option<&Delta>, right: Option<&Delta>) -> Result<Option<Delta>> {
        let dl = left.map(|d| encode(d, &self.left_keys, &self.keys_codec, &self.left_codec)).transpose()?;
        let dr = right.map(|d| encode(d, &self.right_keys, &self.keys_codec, &self.right_codec)).transpose()?;
        let mut out: Vec<(RowKey, RowKey, i64)> = Vec::new();
        if let Some(dl) = &dl {
            for (key, row, diff) in dl {
                if let Some(matches) = self.right.get(key) {
                    out.extend(matches.iter().map(|(r, m)| (row.clone(), r.clone(), diff * m)));
                }
            }
        }
        if let Some(dr) = &dr {
            for (key, row, diff) in dr {
                if let Some(matches) = self.left.get(key) {
                    out.extend(matches.iter().map(|(l, m)| (l.clone(), row.clone(), m * diff)));
                }
            }
        }
        if let (Some(dl), Some(dr)) = (&dl, &dr) {
            let mut by_key: HashMap<&RowKey, Vec<(&RowKey, i64)>> = HashMap::new();
            for (key, row, diff) in dr {
                by_key.entry(key).or_default().push((row, *diff));
            }
            for (key, l, dl) in dl {
                for (r, dr) in by_key.get(key).into_iter().flatten() {
                    out.push((l.clone(), (*r).clone(), dl * dr));
                }
            }
        }
        if let Some(dl) = dl {
            add(&mut self.left, dl);
        }
        if let Some(dr) = dr {
            add(&mut self.right, dr);
        }
        out.retain(|(_, _, diff)| *diff != 0);
        if out.is_empty() {
            return Ok(None);
        }
        let left_parser = self.left_codec.parser();
        let right_parser = self.right_codec.parser();
        let mut columns: Vec<ArrayRef> =
            self.left_codec.convert_rows(out.iter().map(|(l, _, _)| left_parser.parse(l)))?;
        columns.extend(self.right_codec.convert_rows(out.iter().map(|(_, r, _)| right_parser.parse(r)))?);
        let rows = RecordBatch::try_new(self.schema.clone(), columns)?;
        let delta = Delta::new(rows, Int64Array::from_iter_values(out.iter().map(|(_, _, d)| *d)));
        match &self.filter {
            Some(filter) => Ok(Some(delta.filter(filter)?).filter(|d| !d.is_empty())),
            None => Ok(Some(delta)),
        }
    }
}

fn encode(
    delta: &Delta,
    key_exprs: &[Arc<dyn PhysicalExpr>],
    keys_codec: &RowConverter,
    rows_codec: &RowConverter,
) -> Result<Encoded> {
    let key_columns: Vec<ArrayRef> = key_exprs.iter().map(|e| evaluate(e, &delta.rows)).collect::<Result<_>>()?;
    let keys: Rows = keys_codec.convert_columns(&key_columns)?;
    let rows = rows_codec.convert_columns(delta.rows.columns())?;
    let mut encoded = Vec::with_capacity(delta.len());
    for index in 0..delta.len() {
        if key_columns.iter().any(|c| c.is_null(index)) {
            continue;
        }
        encoded.push((Arc::from(keys.row(index).data()), Arc::from(rows.row(index).data()), delta.diffs.value(index)));
    }
    Ok(encoded)
}

fn add(side: &mut Side, changes: Encoded) {
    for (key, row, diff) in changes {
        let rows = side.entry(key.clone()).or_default();
        let count = rows.get(&row).copied().unwrap_or(0) + diff;
        if count == 0 {
            rows.remove(&row);
        } else {
            rows.insert(row, count);
        }
        if rows.is_empty() {
            side.remove(&key);
        }
    }
}

impl ViewError {
    pub fn join_type(kind: &str) -> ViewError {
        ViewError::Unsupported(format!("{kind} JOIN"))
    }
}
