//! Continuous views (`CREATE MATERIALIZED VIEW`): a query kept current by
//! incremental operators, run by the log writer inside every commit that
//! changes what the view reads. The view's change is appended to that same
//! commit, so a view is always exactly as current as its inputs, is durable
//! with them, and is a log like any relation (history, time travel,
//! `changes()` need nothing of their own).
//!
//! Data flow: [`compile`] turns DataFusion's plan into a [`dataflow::Node`]
//! tree; each commit its inputs' changes ([`delta::Delta`]: rows with ±
//! multiplicities) pass through it, and the [`sink`] turns the result's
//! change into rows of the view's relation.

pub mod aggregate;
pub mod checkpoint;
pub mod compile;
pub mod dataflow;
pub mod delta;
pub mod join;
pub mod sink;
pub mod top_n;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

use crate::catalog::{Catalog, ColumnDef, RelationDef, RelationKind, SqlType, UTC};
use crate::log::{CommitTs, Entry, Offset, RelationId};
use dataflow::{Node, SourceChanges};
use delta::Delta;
use sink::{Sink, SinkWrite};

pub type Result<T, E = ViewError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0} is not supported in a materialized view yet")]
    Unsupported(String),
    #[error("{0} out of range")]
    Overflow(String),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error("internal error in view maintenance: {0}")]
    Internal(String),
}

impl From<ViewError> for crate::error::Error {
    fn from(error: ViewError) -> crate::error::Error {
        match error {
            ViewError::Unsupported(_) => crate::error::Error::FeatureNotSupported(error.to_string()),
            ViewError::DataFusion(error) => crate::error::Error::DataFusion(error),
            ViewError::Arrow(error) => crate::error::Error::DataFusion(error.into()),
            other => crate::error::Error::Internal(other.to_string()),
        }
    }
}

impl ViewError {
    pub fn internal(message: &str) -> ViewError {
        ViewError::Internal(message.to_string())
    }
}

/// Views being backfilled, by name: what `strata.views` shows while a
/// `CREATE MATERIALIZED VIEW` reads its inputs.
pub type Backfills = Arc<std::sync::Mutex<BTreeMap<String, BackfillProgress>>>;

#[derive(Debug, Clone)]
pub struct BackfillProgress {
    pub query: String,
    pub rows_read: u64,
}

/// A view's compiled query and where its result goes.
#[derive(Debug, Clone)]
pub struct ViewRuntime {
    pub root: Node,
    pub inputs: BTreeSet<RelationId>,
    pub sink: Option<Sink>,
}

/// Every view the writer maintains, by id (a view is created after the
/// views it reads, so id order runs inputs before their readers).
#[derive(Debug, Clone, Default)]
pub struct Views {
    by_id: BTreeMap<RelationId, ViewRuntime>,
}

impl Views {
    pub fn install(&mut self, def: Arc<RelationDef>, mut runtime: ViewRuntime) -> Result<()> {
        runtime.sink.get_or_insert(Sink::new(def.clone())?);
        self.by_id.insert(def.id, runtime);
        Ok(())
    }

    /// Logs the first result of view `id` (its backfill).
    pub fn write(&mut self, id: RelationId, delta: Delta, first: Offset) -> Result<Option<SinkWrite>> {
        let runtime = self.by_id.get_mut(&id).ok_or_else(|| ViewError::internal("no such view"))?;
        runtime.sink.as_mut().expect("installed views have a sink").write(delta, first)
    }

    pub fn remove(&mut self, id: RelationId) {
        self.by_id.remove(&id);
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// How many entries (groups, rows, values) view `id`'s operators hold,
    /// and roughly how many bytes their keys and rows take.
    pub fn state_size(&self, id: RelationId) -> (u64, u64) {
        let Some(runtime) = self.by_id.get(&id) else { return (0, 0) };
        let mut size = (0, 0);
        runtime.root.visit(&mut |node| {
            let (entries, bytes) = node.state_size();
            size.0 += entries;
            size.1 += bytes;
        });
        size
    }

    pub fn iter(&self) -> impl Iterator<Item = (RelationId, &ViewRuntime)> {
        self.by_id.iter().map(|(id, runtime)| (*id, runtime))
    }

    /// The views that read `id`.
    pub fn readers(&self, id: RelationId) -> Vec<RelationId> {
        self.by_id.iter().filter(|(_, v)| v.inputs.contains(&id)).map(|(id, _)| *id).collect()
    }

    /// Whether some view reads `id`.
    pub fn reads(&self, id: RelationId) -> bool {
        self.by_id.values().any(|v| v.inputs.contains(&id))
    }

    /// Runs every view whose inputs `changes` touch, in dependency order.
    /// `write` logs a view's change and returns its entry, and where the
    /// next event goes; each view's change also feeds the views over it.
    pub fn maintain(
        &mut self,
        catalog: &Catalog,
        mut changes: SourceChanges,
        mut offset: Offset,
        ts: CommitTs,
        write: &mut dyn FnMut(SinkWrite, Offset) -> crate::log::Result<Entry>,
    ) -> crate::log::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for runtime in self.by_id.values_mut() {
            let touched = runtime.inputs.iter().any(|i| changes.contains_key(i));
            if !touched && !runtime.root.needs_first_step() {
                continue;
            }
            let name = &runtime.sink.as_ref().expect("installed views have a sink").def.name;
            let failed = |source: ViewError| crate::log::Error::View { view: name.clone(), source };
            let delta = runtime.root.step(&changes).map_err(failed)?;
            let Some(delta) = delta else { continue };
            let sink = runtime.sink.as_mut().expect("installed views have a sink");
            let written = sink
                .write(delta, offset)
                .map_err(|source| crate::log::Error::View { view: sink.def.name.clone(), source })?;
            let Some(written) = written else { continue };
            let entry = write(written, offset)?;
            if let Entry::Append { relation, rows } = &entry
                && let Some(def) = catalog.by_id(*relation)
            {
                let delta = source_delta(def, rows, offset, ts)?;
                changes.insert(*relation, delta);
            }
            offset = Offset(offset.0 + entry.event_count());
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// The changes of a commit's entries to relations some view reads, each in
/// its relation's full schema.
pub fn source_changes(
    views: &Views,
    catalog: &Catalog,
    entries: &[Entry],
    first: Offset,
    ts: CommitTs,
) -> crate::log::Result<SourceChanges> {
    let mut parts: HashMap<RelationId, Vec<Delta>> = HashMap::new();
    let mut offset = first;
    for entry in entries {
        if let Entry::Append { relation, rows } = entry
            && views.reads(*relation)
            && let Some(def) = catalog.by_id(*relation)
        {
            parts.entry(*relation).or_default().push(source_delta(def, rows, offset, ts)?);
        }
        offset = Offset(offset.0 + entry.event_count());
    }
    let mut changes = SourceChanges::new();
    for (relation, deltas) in parts {
        let def = catalog.by_id(relation).expect("found above");
        let delta = Delta::concat(deltas, &def.full_schema())
            .map_err(|source| crate::log::Error::View { view: def.name.clone(), source })?;
        changes.insert(relation, delta);
    }
    Ok(changes)
}

/// A relation's logged rows (a stream's columns, or a table's and `_diff`)
/// as a change in its full schema, the first row at `offset`.
fn source_delta(def: &RelationDef, rows: &RecordBatch, offset: Offset, ts: CommitTs) -> crate::log::Result<Delta> {
    let n = def.columns.len();
    let count = rows.num_rows();
    let diffs = match def.kind {
        RelationKind::Stream => Int64Array::from(vec![1; count]),
        RelationKind::Table => rows.column(n).as_primitive::<Int64Type>().clone(),
    };
    let mut columns: Vec<ArrayRef> = rows.columns()[..n].to_vec();
    columns.push(Arc::new(Int64Array::from_iter_values((0..count as i64).map(|i| offset.0 as i64 + i))));
    columns.push(Arc::new(TimestampMicrosecondArray::from(vec![ts.0; count]).with_timezone(UTC)));
    Ok(Delta::new(RecordBatch::try_new(def.full_schema(), columns)?, diffs))
}

/// The columns of a view whose query returns `schema`: PostgreSQL's names,
/// Strata's types. An append-only view is a stream; any other gets the
/// hidden row identity.
pub fn view_columns(
    schema: &datafusion::arrow::datatypes::Schema,
    append_only: bool,
) -> crate::error::Result<Vec<ColumnDef>> {
    use crate::error::Error;
    let mut columns: Vec<ColumnDef> = Vec::new();
    for field in schema.fields() {
        let name = field.name().clone();
        if crate::catalog::CHANGE_COLUMNS.contains(&name.as_str()) || name == crate::catalog::ROW_ID_COLUMN {
            return Err(Error::DuplicateColumn(format!(
                "{name}\" is a system column; give the view's column another name with AS \""
            )));
        }
        if columns.iter().any(|c| c.name == name) {
            return Err(Error::DuplicateColumn(name));
        }
        let sql_type = sql_type_of(field).ok_or_else(|| {
            Error::FeatureNotSupported(format!(
                "column \"{name}\" of type {} in a materialized view is not supported yet; cast it",
                field.data_type()
            ))
        })?;
        columns.push(ColumnDef::new(name, sql_type, true, None));
    }
    if !append_only {
        columns.push(ColumnDef::new(crate::catalog::ROW_ID_COLUMN, SqlType::BigInt, true, None));
    }
    Ok(columns)
}

pub(crate) fn sql_type_of(field: &datafusion::arrow::datatypes::Field) -> Option<SqlType> {
    use datafusion::arrow::datatypes::{IntervalUnit, TimeUnit};
    if crate::query::jsonb::is_jsonb(field) {
        return Some(SqlType::Jsonb);
    }
    Some(match *field.data_type() {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::SmallInt,
        DataType::Int32 | DataType::UInt16 => SqlType::Int,
        DataType::Int64 | DataType::UInt32 => SqlType::BigInt,
        DataType::UInt64 => SqlType::Numeric { precision: 20, scale: 0 },
        DataType::Float16 | DataType::Float32 => SqlType::Real,
        DataType::Float64 => SqlType::Double,
        DataType::Decimal128(p, s) => SqlType::Numeric { precision: p, scale: s },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => SqlType::Text,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytea,
        DataType::Date32 => SqlType::Date,
        DataType::Timestamp(TimeUnit::Microsecond, None) => SqlType::Timestamp,
        DataType::Timestamp(_, None) => SqlType::Timestamp,
        DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz,
        DataType::Interval(IntervalUnit::MonthDayNano) | DataType::Duration(_) => SqlType::Interval,
        DataType::List(ref element) | DataType::LargeList(ref element) | DataType::ListView(ref element) => {
            match sql_type_of(element)? {
                SqlType::Array(_) => return None,
                element => SqlType::Array(Box::new(element)),
            }
        }
        _ => return None,
    })
}
