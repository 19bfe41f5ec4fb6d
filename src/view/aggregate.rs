//! Incremental GROUP BY: per group, the number of input rows and a small
//! state per aggregate, updated by each change's rows with their diffs, so
//! a commit costs the rows it changes, not the group's history. A group
//! whose output changed emits its old row (−1) and its new one (+1).
//!
//! count and sum keep a running total (also under retractions); min, max,
//! bool_and, bool_or and count(DISTINCT) keep the multiset of values
//! (ordered by Arrow's row format), so deleting the current extreme finds
//! the next one. Over an append-only input min and max keep only the extreme.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;

use super::delta::{Delta, evaluate};
use super::{Result, ViewError};

pub type RowKey = Arc<[u8]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// `string_agg(x, separator)`: the values in order, NULLs left out.
    StringAgg,
    /// `array_agg(x)`: the values in order, NULLs included.
    ArrayAgg,
}

/// One aggregate of the GROUP BY, compiled.
#[derive(Debug, Clone)]
pub struct AggSpec {
    pub kind: AggKind,
    /// `None` for `count(*)`.
    pub arg: Option<Arc<dyn PhysicalExpr>>,
    /// `FILTER (WHERE …)`.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub input_type: DataType,
    pub output_type: DataType,
    /// Encodes values for the multiset kinds (order-preserving).
    values: Option<Arc<RowConverter>>,
    /// string_agg's separator.
    pub separator: String,
    /// string_agg and array_agg: values in descending order.
    pub descending: bool,
}

impl AggSpec {
    pub fn new(
        kind: AggKind,
        arg: Option<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        input_type: DataType,
        output_type: DataType,
    ) -> Result<AggSpec> {
        let values = match kind {
            AggKind::Min | AggKind::Max | AggKind::CountDistinct | AggKind::StringAgg | AggKind::ArrayAgg => {
                Some(Arc::new(RowConverter::new(vec![SortField::new(input_type.clone())])?))
            }
            _ => None,
        };
        if matches!(kind, AggKind::Sum | AggKind::Avg) && !summable(&input_type) {
            return Err(ViewError::Unsupported(format!("sum/avg over {input_type}")));
        }
        let (separator, descending) = (String::new(), false);
        Ok(AggSpec { kind, arg, filter, input_type, output_type, values, separator, descending })
    }

    fn empty(&self) -> Acc {
        match self.kind {
            AggKind::Count => Acc::Count(0),
            AggKind::Sum | AggKind::Avg => Acc::Sum { sum: Num::zero(&self.input_type), n: 0 },
            AggKind::Min | AggKind::Max | AggKind::CountDistinct | AggKind::StringAgg | AggKind::ArrayAgg => {
                Acc::Values { values: imbl::OrdMap::new(), positive: 0 }
            }
        }
    }
}

fn summable(data_type: &DataType) -> bool {
    data_type.is_integer() || data_type.is_floating() || matches!(data_type, DataType::Decimal128(..))
}

#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn zero(data_type: &DataType) -> Num {
        if data_type.is_floating() { Num::Float(0.0) } else { Num::Int(0) }
    }
}

#[derive(Debug, Clone)]
enum Acc {
    Count(i64),
    Sum {
        sum: Num,
        n: i64,
    },
    /// Value → multiplicity; `positive` counts values with multiplicity > 0
    /// (multiplicities can dip below zero inside one change).
    Values {
        values: imbl::OrdMap<RowKey, i64>,
        positive: i64,
    },
}

#[derive(Debug, Clone)]
struct Group {
    rows: i64,
    accs: Vec<Acc>,
}

#[derive(Debug, Clone)]
pub struct Aggregate {
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    groups_codec: Arc<RowConverter>,
    aggs: Vec<AggSpec>,
    groups: imbl::HashMap<RowKey, Group>,
    schema: SchemaRef,
    /// Whether the input never retracts (min/max then keep one value).
    append_only_input: bool,
    /// A global aggregate (no GROUP BY) has its one row from the start.
    global_emitted: bool,
}

impl Aggregate {
    pub fn new(
        group_exprs: Vec<Arc<dyn PhysicalExpr>>,
        group_types: Vec<DataType>,
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
        append_only_input: bool,
    ) -> Result<Aggregate> {
        let groups_codec = Arc::new(RowConverter::new(group_types.into_iter().map(SortField::new).collect())?);
        Ok(Aggregate {
            group_exprs,
            groups_codec,
            aggs,
            groups: imbl::HashMap::new(),
            schema,
            append_only_input,
            global_emitted: false,
        })
    }

    fn is_global(&self) -> bool {
        self.group_exprs.is_empty()
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Whether the operator must run even without an input change (a global
    /// aggregate's first row).
    pub fn needs_first_step(&self) -> bool {
        self.is_global() && !self.global_emitted
    }

    pub fn step(&mut self, input: Option<&Delta>) -> Result<Option<Delta>> {
        let mut touched = Touched::default();
        if self.needs_first_step() {
            let key = global_key();
            let group = self.groups.get(&key).cloned().unwrap_or_else(|| self.new_group());
            touched.index.insert(key.clone(), 0);
            touched.slots.push((key, None, group));
        }
        if let Some(input) = input.filter(|d| !d.is_empty()) {
            self.apply(input, &mut touched)?;
        }
        self.global_emitted = true;
        let mut old_rows: Vec<(RowKey, Vec<ScalarValue>)> = Vec::new();
        let mut new_rows: Vec<(RowKey, Vec<ScalarValue>)> = Vec::new();
        for (key, old, group) in touched.slots {
            let new = (group.rows > 0 || self.is_global()).then(|| self.output(&group)).transpose()?;
            if group.rows == 0 && !self.is_global() {
                self.groups.remove(&key);
            } else {
                self.groups.insert(key.clone(), group);
            }
            if old == new {
                continue;
            }
            if let Some(old) = old {
                old_rows.push((key.clone(), old));
            }
            if let Some(new) = new {
                new_rows.push((key, new));
            }
        }
        if old_rows.is_empty() && new_rows.is_empty() {
            return Ok(None);
        }
        let diffs: Vec<i64> =
            std::iter::repeat_n(-1, old_rows.len()).chain(std::iter::repeat_n(1, new_rows.len())).collect();
        let rows: Vec<(RowKey, Vec<ScalarValue>)> = old_rows.into_iter().chain(new_rows).collect();
        let batch = self.output_batch(&rows)?;
        Ok(Some(Delta::new(batch, Int64Array::from(diffs))))
    }

    pub fn state_size(&self) -> (u64, u64) {
        let mut size = (0, 0);
        for (key, group) in &self.groups {
            size.0 += 1;
            size.1 += key.len() as u64 + 8 + 24 * group.accs.len() as u64;
            for acc in &group.accs {
                if let Acc::Values { values, .. } = acc {
                    size.0 += values.len() as u64;
                    size.1 += values.keys().map(|v| v.len() as u64 + 8).sum::<u64>();
                }
            }
        }
        size
    }

    pub fn save(&self, out: &mut super::checkpoint::Encoder) {
        out.u64(self.global_emitted as u64);
        out.u64(self.groups.len() as u64);
        for (key, group) in &self.groups {
            out.bytes(key);
            out.i64(group.rows);
            for acc in &group.accs {
                match acc {
                    Acc::Count(n) => out.i64(*n),
                    Acc::Sum { sum: Num::Int(sum), n } => {
                        out.i128(*sum);
                        out.i64(*n);
                    }
                    Acc::Sum { sum: Num::Float(sum), n } => {
                        out.f64(*sum);
                        out.i64(*n);
                    }
                    Acc::Values { values, positive } => {
                        out.i64(*positive);
                        out.u64(values.len() as u64);
                        for (value, count) in values {
                            out.bytes(value);
                            out.i64(*count);
                        }
                    }
                }
            }
        }
    }

    pub fn load(&mut self, input: &mut super::checkpoint::Decoder) -> Result<()> {
        self.global_emitted = input.u64()? != 0;
        let mut groups = imbl::HashMap::new();
        for _ in 0..input.count()? {
            let key = input.bytes()?;
            let rows = input.i64()?;
            let mut accs = Vec::with_capacity(self.aggs.len());
            for spec in &self.aggs {
                accs.push(match spec.empty() {
                    Acc::Count(_) => Acc::Count(input.i64()?),
                    Acc::Sum { sum: Num::Int(_), .. } => Acc::Sum { sum: Num::Int(input.i128()?), n: input.i64()? },
                    Acc::Sum { sum: Num::Float(_), .. } => Acc::Sum { sum: Num::Float(input.f64()?), n: input.i64()? },
                    Acc::Values { .. } => {
                        let positive = input.i64()?;
                        let mut values = imbl::OrdMap::new();
                        for _ in 0..input.count()? {
                            let value = input.bytes()?;
                            values.insert(value, input.i64()?);
                        }
                        Acc::Values { values, positive }
                    }
                });
            }
            groups.insert(key, Group { rows, accs });
        }
        self.groups = groups;
        Ok(())
    }

    fn new_group(&self) -> Group {
        Group { rows: 0, accs: self.aggs.iter().map(AggSpec::empty).collect() }
    }

    fn apply(&self, input: &Delta, touched: &mut Touched) -> Result<()> {
        let rows = &input.rows;
        let group_columns: Vec<ArrayRef> = self.group_exprs.iter().map(|e| evaluate(e, rows)).collect::<Result<_>>()?;
        let keys = if self.is_global() { None } else { Some(self.groups_codec.convert_columns(&group_columns)?) };
        let args: Vec<Option<ArrayRef>> =
            self.aggs.iter().map(|a| a.arg.as_ref().map(|e| evaluate(e, rows)).transpose()).collect::<Result<_>>()?;
        let filters: Vec<Option<ArrayRef>> = self
            .aggs
            .iter()
            .map(|a| a.filter.as_ref().map(|e| evaluate(e, rows)).transpose())
            .collect::<Result<_>>()?;
        let values: Vec<ArgValues> =
            self.aggs.iter().zip(&args).map(|(spec, arg)| ArgValues::of(spec, arg.as_ref())).collect::<Result<_>>()?;
        let global = global_key();
        for row in 0..rows.num_rows() {
            let diff = input.diffs.value(row);
            let key: &[u8] = match &keys {
                Some(keys) => keys.row(row).data(),
                None => &global,
            };
            let slot = match touched.index.get(key) {
                Some(slot) => *slot,
                None => {
                    let key: RowKey = Arc::from(key);
                    let group = self.groups.get(&key).cloned();
                    let old = match &group {
                        Some(group) if group.rows > 0 || (self.is_global() && self.global_emitted) => {
                            Some(self.output(group)?)
                        }
                        _ => None,
                    };
                    touched.index.insert(key.clone(), touched.slots.len());
                    touched.slots.push((key, old, group.unwrap_or_else(|| self.new_group())));
                    touched.slots.len() - 1
                }
            };
            let group = &mut touched.slots[slot].2;
            group.rows += diff;
            for (index, spec) in self.aggs.iter().enumerate() {
                if let Some(filter) = &filters[index]
                    && !(filter.as_boolean().is_valid(row) && filter.as_boolean().value(row))
                {
                    continue;
                }
                // Aggregates skip NULLs, except array_agg, which lists them.
                if spec.kind != AggKind::ArrayAgg && args[index].as_ref().is_some_and(|a| a.is_null(row)) {
                    continue;
                }
                match (&mut group.accs[index], &values[index]) {
                    (Acc::Count(n), _) => *n += diff,
                    (Acc::Sum { sum, n }, arg) => {
                        *n += diff;
                        arg.add_to(sum, row, diff)?;
                    }
                    (Acc::Values { values, positive }, ArgValues::Encoded(encoded)) => {
                        // Over an append-only input min and max keep only the
                        // extreme: a value that does not beat it changes nothing.
                        if self.append_only_input {
                            let bytes = encoded.row(row).data();
                            let beaten = match spec.kind {
                                AggKind::Min => values.get_min().is_some_and(|(min, _)| bytes >= min.as_ref()),
                                AggKind::Max => values.get_max().is_some_and(|(max, _)| bytes <= max.as_ref()),
                                _ => false,
                            };
                            if beaten {
                                continue;
                            }
                        }
                        let value: RowKey = Arc::from(encoded.row(row).data());
                        let before = values.get(&value).copied().unwrap_or(0);
                        let after = before + diff;
                        if before <= 0 && after > 0 {
                            *positive += 1;
                        } else if before > 0 && after <= 0 {
                            *positive -= 1;
                        }
                        if after == 0 {
                            values.remove(&value);
                        } else {
                            values.insert(value, after);
                        }
                        if self.append_only_input && values.len() > 1 {
                            let keep = match spec.kind {
                                AggKind::Min => values.get_min().cloned(),
                                AggKind::Max => values.get_max().cloned(),
                                _ => None,
                            };
                            if let Some((value, count)) = keep {
                                *values = imbl::OrdMap::unit(value, count);
                                *positive = 1;
                            }
                        }
                    }
                    _ => return Err(ViewError::internal("aggregate state does not match its argument")),
                }
            }
        }
        Ok(())
    }

    /// The aggregate values of `group`, one per aggregate.
    fn output(&self, group: &Group) -> Result<Vec<ScalarValue>> {
        self.aggs.iter().zip(&group.accs).map(|(spec, acc)| value(spec, acc)).collect()
    }

    fn output_batch(&self, rows: &[(RowKey, Vec<ScalarValue>)]) -> Result<RecordBatch> {
        let parser = self.groups_codec.parser();
        let mut columns: Vec<ArrayRef> = if self.is_global() {
            Vec::new()
        } else {
            self.groups_codec.convert_rows(rows.iter().map(|(key, _)| parser.parse(key)))?
        };
        for (index, spec) in self.aggs.iter().enumerate() {
            let values = rows.iter().map(|(_, values)| values[index].clone());
            let array = if rows.is_empty() {
                datafusion::arrow::array::new_empty_array(&spec.output_type)
            } else {
                ScalarValue::iter_to_array(values)?
            };
            columns.push(cast_to(array, &spec.output_type)?);
        }
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| cast_to(c, f.data_type()))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The one group of an aggregate without GROUP BY.
fn global_key() -> RowKey {
    Arc::from(&[][..])
}

fn cast_to(array: ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    if array.data_type() == data_type {
        return Ok(array);
    }
    Ok(datafusion::arrow::compute::cast(&array, data_type)?)
}

/// The groups one step touched, in first-touched order, with each one's
/// output before the step.
#[derive(Default)]
struct Touched {
    index: HashMap<RowKey, usize>,
    slots: Vec<(RowKey, Option<Vec<ScalarValue>>, Group)>,
}

/// An aggregate's argument over one change, in the form its state takes.
enum ArgValues {
    None,
    Int(datafusion::arrow::array::Int64Array),
    Decimal(datafusion::arrow::array::Decimal128Array),
    Float(datafusion::arrow::array::Float64Array),
    /// Order-preserving encodings (min, max, count(DISTINCT)).
    Encoded(datafusion::arrow::row::Rows),
}

impl ArgValues {
    fn of(spec: &AggSpec, arg: Option<&ArrayRef>) -> Result<ArgValues> {
        let Some(arg) = arg else { return Ok(ArgValues::None) };
        if let Some(codec) = &spec.values {
            return Ok(ArgValues::Encoded(codec.convert_columns(std::slice::from_ref(arg))?));
        }
        if spec.kind == AggKind::Count {
            return Ok(ArgValues::None);
        }
        Ok(match arg.data_type() {
            DataType::Decimal128(..) => ArgValues::Decimal(arg.as_primitive().clone()),
            DataType::UInt64 => {
                let cast = datafusion::arrow::compute::cast(arg, &DataType::Decimal128(38, 0))?;
                ArgValues::Decimal(cast.as_primitive().clone())
            }
            t if t.is_floating() => {
                ArgValues::Float(datafusion::arrow::compute::cast(arg, &DataType::Float64)?.as_primitive().clone())
            }
            _ => ArgValues::Int(datafusion::arrow::compute::cast(arg, &DataType::Int64)?.as_primitive().clone()),
        })
    }

    fn add_to(&self, sum: &mut Num, row: usize, diff: i64) -> Result<()> {
        match (sum, self) {
            (Num::Int(total), ArgValues::Int(values)) => {
                let add = (values.value(row) as i128) * diff as i128;
                *total = total.checked_add(add).ok_or_else(|| ViewError::Overflow("sum".into()))?;
            }
            (Num::Int(total), ArgValues::Decimal(values)) => {
                *total = values
                    .value(row)
                    .checked_mul(diff as i128)
                    .and_then(|add| total.checked_add(add))
                    .ok_or_else(|| ViewError::Overflow("sum".into()))?;
            }
            (Num::Float(total), ArgValues::Float(values)) => *total += values.value(row) * diff as f64,
            _ => return Err(ViewError::internal("sum over an argument of another type")),
        }
        Ok(())
    }
}

/// The multiset's order puts NULLs first (the codec's order, kept because
/// checkpoints hold values in it); PostgreSQL orders them last ascending and
/// first descending, so ascending NULLs move to the end and descending (the
/// reversed order, NULLs last) to the front.
fn nulls_as_postgresql_orders_them(array: ArrayRef, descending: bool) -> Result<ArrayRef> {
    let (n, nulls) = (array.len() as u32, array.null_count() as u32);
    if nulls == 0 || nulls == n {
        return Ok(array);
    }
    let order: Vec<u32> = match descending {
        false => (nulls..n).chain(0..nulls).collect(),
        true => (n - nulls..n).chain(0..n - nulls).collect(),
    };
    Ok(datafusion::arrow::compute::take(&array, &datafusion::arrow::array::UInt32Array::from(order), None)?)
}

fn value(spec: &AggSpec, acc: &Acc) -> Result<ScalarValue> {
    let null = || ScalarValue::try_from(&spec.output_type);
    Ok(match (spec.kind, acc) {
        (AggKind::Count, Acc::Count(n)) => ScalarValue::Int64(Some(*n)),
        (AggKind::CountDistinct, Acc::Values { positive, .. }) => ScalarValue::Int64(Some(*positive)),
        (AggKind::Sum, Acc::Sum { n: 0, .. }) | (AggKind::Avg, Acc::Sum { n: 0, .. }) => null()?,
        (AggKind::Sum, Acc::Sum { sum, .. }) => match (sum, &spec.output_type) {
            (Num::Float(v), _) => ScalarValue::Float64(Some(*v)),
            (Num::Int(v), DataType::Decimal128(p, s)) => ScalarValue::Decimal128(Some(*v), *p, *s),
            (Num::Int(v), DataType::UInt64) => ScalarValue::UInt64(Some(*v as u64)),
            (Num::Int(v), _) => {
                ScalarValue::Int64(Some(i64::try_from(*v).map_err(|_| ViewError::Overflow("sum".into()))?))
            }
        },
        (AggKind::Avg, Acc::Sum { sum, n }) => match (sum, &spec.output_type, &spec.input_type) {
            (Num::Float(v), _, _) => ScalarValue::Float64(Some(*v / *n as f64)),
            (Num::Int(v), DataType::Decimal128(p, s), DataType::Decimal128(_, input_scale)) => {
                let shift = 10i128.pow((*s - *input_scale).max(0) as u32);
                let scaled = v.checked_mul(shift).ok_or_else(|| ViewError::Overflow("avg".into()))?;
                ScalarValue::Decimal128(Some(scaled / *n as i128), *p, *s)
            }
            // Integers: NUMERIC, as the query's `avg` gives it.
            (Num::Int(v), DataType::Decimal128(p, s), input) if input.is_integer() => {
                let average = crate::query::pg_avg::integer_average(*v, *n);
                ScalarValue::Decimal128(Some(average.ok_or_else(|| ViewError::Overflow("avg".into()))?), *p, *s)
            }
            (Num::Int(v), _, _) => ScalarValue::Float64(Some(*v as f64 / *n as f64)),
        },
        (AggKind::Min | AggKind::Max, Acc::Values { values, .. }) => {
            let mut positive = values.iter().filter(|(_, count)| **count > 0);
            let found = if spec.kind == AggKind::Min { positive.next() } else { positive.next_back() };
            match found {
                None => null()?,
                Some((value, _)) => {
                    let codec = spec.values.as_ref().expect("values codec");
                    let parser = codec.parser();
                    let array = codec.convert_rows([parser.parse(value)])?;
                    ScalarValue::try_from_array(&array[0], 0)?
                }
            }
        }
        (AggKind::StringAgg | AggKind::ArrayAgg, Acc::Values { values, .. }) => {
            // Every value as many times as it occurs, in order.
            let mut rows: Vec<&RowKey> = Vec::new();
            for (value, count) in values.iter().filter(|(_, count)| **count > 0) {
                rows.extend(std::iter::repeat_n(value, *count as usize));
            }
            if spec.descending {
                rows.reverse();
            }
            if rows.is_empty() {
                return Ok(null()?);
            }
            let codec = spec.values.as_ref().expect("values codec");
            let parser = codec.parser();
            let array = codec.convert_rows(rows.into_iter().map(|r| parser.parse(r)))?.remove(0);
            if spec.kind == AggKind::ArrayAgg {
                let array = nulls_as_postgresql_orders_them(array, spec.descending)?;
                let list = datafusion::common::utils::SingleRowListArrayBuilder::new(array).build_list_scalar();
                return Ok(list.cast_to(&spec.output_type)?);
            }
            let text = datafusion::arrow::compute::cast(&array, &DataType::Utf8)?;
            let parts: Vec<&str> = text.as_string::<i32>().iter().flatten().collect();
            ScalarValue::Utf8(Some(parts.join(&spec.separator))).cast_to(&spec.output_type)?
        }
        _ => return Err(ViewError::internal("aggregate state does not match its kind")),
    })
}
