//! The `strata` schema: Strata's own system relations. `strata.views` lists
//! continuous views (definition, inputs, how they are stored, the offset
//! they reflect, their rows and operator state) and views being backfilled
//! with how many input rows they have read so far. `strata.subscriptions`
//! lists open subscriptions with how far behind the log each one is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use crate::catalog::RelationKind;
use crate::log::Log;
use crate::view::Backfills;

/// The schema's name, as in `SELECT * FROM strata.views`.
pub const SYSTEM_SCHEMA: &str = "strata";
const VIEWS: &str = "views";
const SUBSCRIPTIONS: &str = "subscriptions";

/// What the system relations show that the log does not know: views being
/// backfilled and open subscriptions.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub backfills: Backfills,
    pub subscriptions: Subscriptions,
}

/// Open subscriptions (COPY and cursors), by id.
pub type Subscriptions = Arc<Mutex<BTreeMap<u64, SubscriptionProgress>>>;

#[derive(Debug, Clone)]
pub struct SubscriptionProgress {
    pub relation: String,
    /// The cursor reading it; none for `COPY (SUBSCRIBE …)`.
    pub cursor: Option<String>,
    /// Microseconds since the Unix epoch.
    pub started_at: i64,
    /// Every change up to this offset has been read for the subscriber.
    pub read_through: u64,
    pub rows_read: u64,
}

#[derive(Debug)]
pub struct SystemSchema {
    log: Arc<Log>,
    activity: Activity,
}

impl SystemSchema {
    pub fn new(log: Arc<Log>, activity: Activity) -> SystemSchema {
        SystemSchema { log, activity }
    }

    fn subscriptions(&self) -> DfResult<RecordBatch> {
        let visible = self.log.snapshot().offset.0;
        let subscriptions = self.activity.subscriptions.lock().expect("subscriptions lock");
        let rows: Vec<(&u64, &SubscriptionProgress)> = subscriptions.iter().collect();
        let number = |f: &dyn Fn(u64, &SubscriptionProgress) -> i64| -> ArrayRef {
            Arc::new(rows.iter().map(|(id, p)| f(**id, p)).collect::<Int64Array>())
        };
        let columns: Vec<ArrayRef> = vec![
            number(&|id, _| id as i64),
            Arc::new(rows.iter().map(|(_, p)| Some(p.relation.as_str())).collect::<StringArray>()),
            Arc::new(rows.iter().map(|(_, p)| p.cursor.as_deref()).collect::<StringArray>()),
            Arc::new(
                rows.iter()
                    .map(|(_, p)| Some(p.started_at))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
            number(&|_, p| p.read_through as i64),
            number(&|_, p| visible.saturating_sub(p.read_through) as i64),
            number(&|_, p| p.rows_read as i64),
        ];
        Ok(RecordBatch::try_new(subscriptions_schema(), columns)?)
    }

    fn views(&self) -> DfResult<RecordBatch> {
        let view = self.log.snapshot();
        let mut defs: Vec<_> = view.catalog.relations().filter(|d| d.view.is_some()).cloned().collect();
        defs.sort_by_key(|d| d.id);
        let mut rows = ViewRows::default();
        for def in defs {
            let query = def.view.as_ref().expect("a view");
            let inputs: Vec<String> =
                query.inputs.iter().filter_map(|i| view.catalog.by_id(*i)).map(|d| d.name.clone()).collect();
            let stored = match def.kind {
                RelationKind::Table => view.tables.get(def.id).map(|t| t.len() as i64).unwrap_or(0),
                RelationKind::Stream => {
                    let read = self.log.read(def.id, view.offset);
                    let sealed: u64 = read.segments.iter().map(|s| s.rows).sum();
                    sealed as i64 + read.batches.iter().map(|b| b.num_rows() as i64).sum::<i64>()
                }
            };
            let (entries, bytes) = self.log.view_state_size(def.id);
            rows.push(
                &def.name,
                "current",
                &query.query,
                &inputs.join(", "),
                if def.kind == RelationKind::Table { "keyed" } else { "stream" },
                Some(view.offset.0 as i64),
                Some(stored),
                Some(entries as i64),
                Some(bytes as i64),
                None,
            );
        }
        for (name, progress) in self.activity.backfills.lock().expect("backfills lock").iter() {
            rows.push(
                name,
                "backfilling",
                &progress.query,
                "",
                "",
                None,
                None,
                None,
                None,
                Some(progress.rows_read as i64),
            );
        }
        rows.batch()
    }
}

#[derive(Default)]
struct ViewRows {
    text: [Vec<String>; 5],
    numbers: [Vec<Option<i64>>; 5],
    backfill: Vec<Option<i64>>,
}

impl ViewRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &str,
        status: &str,
        definition: &str,
        inputs: &str,
        storage: &str,
        offset: Option<i64>,
        rows: Option<i64>,
        state_entries: Option<i64>,
        state_bytes: Option<i64>,
        backfill_rows_read: Option<i64>,
    ) {
        for (column, value) in self.text.iter_mut().zip([name, status, definition, inputs, storage]) {
            column.push(value.to_string());
        }
        // Maintained inside each commit: a view always reflects the last one.
        let lag = offset.map(|_| 0);
        for (column, value) in self.numbers.iter_mut().zip([offset, lag, rows, state_entries, state_bytes]) {
            column.push(value);
        }
        self.backfill.push(backfill_rows_read);
    }

    fn batch(self) -> DfResult<RecordBatch> {
        let mut columns: Vec<ArrayRef> = self.text.into_iter().map(|c| Arc::new(StringArray::from(c)) as _).collect();
        columns.extend(self.numbers.into_iter().map(|c| Arc::new(Int64Array::from(c)) as ArrayRef));
        columns.push(Arc::new(Int64Array::from(self.backfill)));
        Ok(RecordBatch::try_new(views_schema(), columns)?)
    }
}

fn views_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let number = |name: &str| Field::new(name, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        text("name"),
        text("status"),
        text("definition"),
        text("inputs"),
        text("storage"),
        number("offset_reached"),
        number("lag"),
        number("rows"),
        number("state_entries"),
        number("state_bytes"),
        number("backfill_rows_read"),
    ]))
}

fn subscriptions_schema() -> SchemaRef {
    let number = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        number("id"),
        Field::new("relation", DataType::Utf8, false),
        Field::new("cursor", DataType::Utf8, true),
        Field::new("started_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        number("read_through"),
        number("behind"),
        number("rows_read"),
    ]))
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        vec![VIEWS.to_string(), SUBSCRIPTIONS.to_string()]
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let batch = match name {
            VIEWS => self.views()?,
            SUBSCRIPTIONS => self.subscriptions()?,
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        name == VIEWS || name == SUBSCRIPTIONS
    }
}
