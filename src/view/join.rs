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
    left_codec_types: Vec<DataType>,
    right_codec_types: Vec<DataType>,
    left: Side,
    right: Side,
    output: JoinOutput,
    /// NULL keys match each other (INTERSECT, EXCEPT) instead of nothing.
    nulls_match: bool,
    schema: SchemaRef,
}

/// What a join returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutput {
    /// Matched pairs; with `pad_left` (LEFT, FULL) left rows without a match
    /// padded with NULLs, with `pad_right` (RIGHT, FULL) right rows.
    Pairs { pad_left: bool, pad_right: bool },
    /// Left rows with at least one match (IN, EXISTS, INTERSECT).
    Semi,
    /// Left rows without a match (NOT EXISTS, EXCEPT).
    Anti,
}

/// A side's change, encoded: (join key, row, diff); rows with a NULL key
/// join nothing and are left out.
type Encoded = Vec<(RowKey, RowKey, i64)>;

impl Join {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        output: JoinOutput,
        nulls_match: bool,
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
            left_codec_types: left_schema.fields().iter().map(|f| f.data_type().clone()).collect(),
            right_codec_types: right_schema.fields().iter().map(|f| f.data_type().clone()).collect(),
            left: Side::new(),
            right: Side::new(),
            output,
            nulls_match,
            schema,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn state_size(&self) -> (u64, u64) {
        let mut size = (0, 0);
        for side in [&self.left, &self.right] {
            for (key, rows) in side {
                size.0 += rows.len() as u64;
                size.1 += key.len() as u64 + rows.keys().map(|r| r.len() as u64 + 8).sum::<u64>();
            }
        }
        size
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
        let (dl, left_unkeyed) = match left {
            Some(d) => encode(d, &self.left_keys, &self.keys_codec, &self.left_codec, self.nulls_match)?,
            None => Default::default(),
        };
        let (dr, right_unkeyed) = match right {
            Some(d) => encode(d, &self.right_keys, &self.keys_codec, &self.right_codec, self.nulls_match)?,
            None => Default::default(),
        };
        if matches!(self.output, JoinOutput::Semi | JoinOutput::Anti) {
            return self.step_filtering(dl, left_unkeyed, dr);
        }
        let (pad_left, pad_right) = match self.output {
            JoinOutput::Pairs { pad_left, pad_right } => (pad_left, pad_right),
            _ => (false, false),
        };
        let mut matched: Vec<(RowKey, RowKey, i64)> = Vec::new();
        for (key, row, diff) in &dl {
            if let Some(matches) = self.right.get(key) {
                matched.extend(matches.iter().map(|(r, m)| (row.clone(), r.clone(), diff * m)));
            }
        }
        for (key, row, diff) in &dr {
            if let Some(matches) = self.left.get(key) {
                matched.extend(matches.iter().map(|(l, m)| (l.clone(), row.clone(), m * diff)));
            }
        }
        let dl_by_key = by_key(&dl);
        let dr_by_key = by_key(&dr);
        for (key, l, dl) in &dl {
            for (r, dr) in dr_by_key.get(key).into_iter().flatten() {
                matched.push((l.clone(), (*r).clone(), dl * dr));
            }
        }
        // Rows of an outer side with no match appear once, padded with NULLs:
        // a key's padded rows change when its other side empties or fills.
        let mut padded_left: Vec<(RowKey, i64)> = if pad_left { left_unkeyed } else { Vec::new() };
        let mut padded_right: Vec<(RowKey, i64)> = if pad_right { right_unkeyed } else { Vec::new() };
        let mut before = Vec::new();
        if pad_left || pad_right {
            let keys: std::collections::HashSet<&RowKey> = dl_by_key.keys().chain(dr_by_key.keys()).copied().collect();
            for key in keys {
                before.push((key.clone(), self.left.get(key).cloned(), self.right.get(key).cloned()));
            }
        }
        add(&mut self.left, &dl);
        add(&mut self.right, &dr);
        for (key, left_old, right_old) in before {
            if pad_left {
                let change = dl_by_key.get(&key).map(Vec::as_slice).unwrap_or_default();
                pad(
                    &mut padded_left,
                    left_old.as_ref(),
                    self.left.get(&key),
                    total(right_old.as_ref()),
                    total(self.right.get(&key)),
                    change,
                );
            }
            if pad_right {
                let change = dr_by_key.get(&key).map(Vec::as_slice).unwrap_or_default();
                pad(
                    &mut padded_right,
                    right_old.as_ref(),
                    self.right.get(&key),
                    total(left_old.as_ref()),
                    total(self.left.get(&key)),
                    change,
                );
            }
        }
        matched.retain(|(_, _, diff)| *diff != 0);
        padded_left.retain(|(_, diff)| *diff != 0);
        padded_right.retain(|(_, diff)| *diff != 0);
        if matched.is_empty() && padded_left.is_empty() && padded_right.is_empty() {
            return Ok(None);
        }
        let mut parts = Vec::new();
        if !matched.is_empty() {
            let left_rows = self.decode(&self.left_codec, matched.iter().map(|(l, _, _)| l))?;
            let right_rows = self.decode(&self.right_codec, matched.iter().map(|(_, r, _)| r))?;
            let diffs = Int64Array::from_iter_values(matched.iter().map(|(_, _, d)| *d));
            parts.push(self.joined(left_rows, right_rows, diffs)?);
        }
        if !padded_left.is_empty() {
            let left_rows = self.decode(&self.left_codec, padded_left.iter().map(|(l, _)| l))?;
            let right_rows = nulls(&self.right_codec_types, padded_left.len());
            let diffs = Int64Array::from_iter_values(padded_left.iter().map(|(_, d)| *d));
            parts.push(self.joined(left_rows, right_rows, diffs)?);
        }
        if !padded_right.is_empty() {
            let left_rows = nulls(&self.left_codec_types, padded_right.len());
            let right_rows = self.decode(&self.right_codec, padded_right.iter().map(|(r, _)| r))?;
            let diffs = Int64Array::from_iter_values(padded_right.iter().map(|(_, d)| *d));
            parts.push(self.joined(left_rows, right_rows, diffs)?);
        }
        let delta = Delta::concat(parts, &self.schema)?;
        match &self.filter {
            Some(filter) => Ok(Some(delta.filter(filter)?).filter(|d| !d.is_empty())),
            None => Ok(Some(delta)),
        }
    }

    /// A semi- or anti-join: left rows whose key has (or has no) rows on the
    /// right; a key's rows come or go when the right side fills or empties.
    fn step_filtering(&mut self, dl: Encoded, left_unkeyed: Vec<(RowKey, i64)>, dr: Encoded) -> Result<Option<Delta>> {
        let semi = self.output == JoinOutput::Semi;
        // A row with a NULL key matches nothing: never in a semi-join, always in an anti-join.
        let mut out: Vec<(RowKey, i64)> = if semi { Vec::new() } else { left_unkeyed };
        let dl_by_key = by_key(&dl);
        let dr_by_key = by_key(&dr);
        let keys: std::collections::HashSet<&RowKey> = dl_by_key.keys().chain(dr_by_key.keys()).copied().collect();
        let before: Vec<_> =
            keys.into_iter().map(|k| (k.clone(), self.left.get(k).cloned(), total(self.right.get(k)))).collect();
        add(&mut self.left, &dl);
        add(&mut self.right, &dr);
        for (key, left_old, right_old) in before {
            let change = dl_by_key.get(&key).map(Vec::as_slice).unwrap_or_default();
            let right_new = total(self.right.get(&key));
            if semi {
                // The complement of an anti-join's change: swap empty and non-empty.
                let (old, new) = (i64::from(right_old == 0), i64::from(right_new == 0));
                pad(&mut out, left_old.as_ref(), self.left.get(&key), old, new, change);
            } else {
                pad(&mut out, left_old.as_ref(), self.left.get(&key), right_old, right_new, change);
            }
        }
        out.retain(|(_, diff)| *diff != 0);
        if out.is_empty() {
            return Ok(None);
        }
        let rows = self.decode(&self.left_codec, out.iter().map(|(l, _)| l))?;
        let diffs = Int64Array::from_iter_values(out.iter().map(|(_, d)| *d));
        Ok(Some(Delta::new(RecordBatch::try_new(self.schema.clone(), rows)?, diffs)))
    }

    fn decode<'a>(&self, codec: &RowConverter, rows: impl Iterator<Item = &'a RowKey>) -> Result<Vec<ArrayRef>> {
        let parser = codec.parser();
        Ok(codec.convert_rows(rows.map(|r| parser.parse(r)))?)
    }

    fn joined(&self, mut left: Vec<ArrayRef>, right: Vec<ArrayRef>, diffs: Int64Array) -> Result<Delta> {
        left.extend(right);
        Ok(Delta::new(RecordBatch::try_new(self.schema.clone(), left)?, diffs))
    }
}

/// Multiset size of one key's rows on a side.
fn total(rows: Option<&imbl::HashMap<RowKey, i64>>) -> i64 {
    rows.map(|rows| rows.values().sum()).unwrap_or(0)
}

/// The change of one key's NULL-padded rows of an outer side: `old`/`new`
/// its rows, `other_old`/`other_new` how many rows the other side had.
fn pad(
    out: &mut Vec<(RowKey, i64)>,
    old: Option<&imbl::HashMap<RowKey, i64>>,
    new: Option<&imbl::HashMap<RowKey, i64>>,
    other_old: i64,
    other_new: i64,
    change: &[(&RowKey, i64)],
) {
    match (other_old == 0, other_new == 0) {
        (true, true) => out.extend(change.iter().map(|(row, diff)| ((*row).clone(), *diff))),
        (true, false) => out.extend(old.into_iter().flatten().map(|(row, m)| (row.clone(), -m))),
        (false, true) => out.extend(new.into_iter().flatten().map(|(row, m)| (row.clone(), *m))),
        (false, false) => {}
    }
}

fn by_key(changes: &Encoded) -> HashMap<&RowKey, Vec<(&RowKey, i64)>> {
    let mut grouped: HashMap<&RowKey, Vec<(&RowKey, i64)>> = HashMap::new();
    for (key, row, diff) in changes {
        grouped.entry(key).or_default().push((row, *diff));
    }
    grouped
}

fn nulls(types: &[DataType], rows: usize) -> Vec<ArrayRef> {
    types.iter().map(|t| datafusion::arrow::array::new_null_array(t, rows)).collect()
}

/// A side's change encoded, and its rows whose key has a NULL (they join
/// nothing).
fn encode(
    delta: &Delta,
    key_exprs: &[Arc<dyn PhysicalExpr>],
    keys_codec: &RowConverter,
    rows_codec: &RowConverter,
    nulls_match: bool,
) -> Result<(Encoded, Vec<(RowKey, i64)>)> {
    let key_columns: Vec<ArrayRef> = key_exprs.iter().map(|e| evaluate(e, &delta.rows)).collect::<Result<_>>()?;
    let keys: Rows = keys_codec.convert_columns(&key_columns)?;
    let rows = rows_codec.convert_columns(delta.rows.columns())?;
    let mut encoded = Vec::with_capacity(delta.len());
    let mut unkeyed = Vec::new();
    for index in 0..delta.len() {
        let row: RowKey = Arc::from(rows.row(index).data());
        if !nulls_match && key_columns.iter().any(|c| c.is_null(index)) {
            unkeyed.push((row, delta.diffs.value(index)));
            continue;
        }
        encoded.push((Arc::from(keys.row(index).data()), row, delta.diffs.value(index)));
    }
    Ok((encoded, unkeyed))
}

fn add(side: &mut Side, changes: &Encoded) {
    for (key, row, diff) in changes.iter().cloned() {
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
