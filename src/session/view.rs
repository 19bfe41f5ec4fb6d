//! `CREATE MATERIALIZED VIEW`: plans and compiles the query, backfills the
//! operators from the inputs as of one offset, then hands them to the log
//! writer, which maintains the view from the next commit on. Commits that
//! land while the backfill runs are caught up from `changes()` before the
//! view is installed, so writers never wait for a backfill.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use datafusion::sql::sqlparser::ast::Query;
use futures::StreamExt;

use super::{IntegerLiterals, Outcome, Session, parse_query, plan_statement, plan_statement_with};
use crate::catalog::{RelationDef, RelationKind, ViewDef};
use crate::error::{Error, Result};
use crate::log::{Change, Offset, ReadView, RelationId};
use crate::sql::as_of::quote;
use crate::sql::column_names::{display_name, repeated_name};
use crate::view::compile::{check_deterministic, compile, keep_created_types};
use crate::view::dataflow::SourceChanges;
use crate::view::delta::Delta;
use crate::view::sink::Sink;
use crate::view::{ViewError, ViewRuntime, view_columns};

/// How many times a backfill catches up with commits that landed meanwhile
/// before giving up (each round reads only the commits of the round before).
const CATCH_UP_ROUNDS_MAX: usize = 64;

/// A backfill sums up the changes of its result once they reach this many rows.
const BACKFILL_CONSOLIDATE_ROWS: usize = 1 << 20;

impl Session {
    pub(super) async fn create_view(
        &mut self,
        name: String,
        columns: Vec<String>,
        query: Box<Query>,
        if_not_exists: bool,
        or_replace: bool,
    ) -> Result<Outcome> {
        self.refuse_in_transaction("CREATE MATERIALIZED VIEW")?;
        if !or_replace && self.db.log.relation(&name).is_some() {
            if if_not_exists {
                return Ok(super::done("CREATE MATERIALIZED VIEW"));
            }
            return Err(Error::DuplicateRelation(name));
        }
        let sql = query.to_string();
        let read = self.db.log.snapshot();
        let (mut runtime, def) = self.compile_view(&name, &columns, &sql, &read, IntegerLiterals::Integer).await?;
        let _progress = Progress::start(&self.db.activity.backfills, &name, &sql);
        let mut output = self.backfill(&name, &mut runtime, &read).await?;
        let mut through = read.offset;
        for _ in 0..CATCH_UP_ROUNDS_MAX {
            let change = Change::CreateView {
                def: Box::new(def.clone()),
                runtime: Box::new(runtime.clone()),
                through,
                output: Some(output.clone()),
                restore: false,
                if_not_exists,
                replace: or_replace,
            };
            match self.db.log.commit(vec![change]).await {
                Ok(_) => {
                    let rows = output.diffs.values().iter().sum::<i64>().max(0) as usize;
                    return Ok(Outcome::Done { tag: "SELECT".into(), rows: Some(rows) });
                }
                Err(crate::log::Error::ViewBehind) => {
                    let now = self.db.log.snapshot();
                    let caught_up = self.catch_up(&name, &mut runtime, through, &now).await?;
                    output = Delta::concat(vec![output, caught_up], &output_schema(&runtime))?.consolidate()?;
                    through = now.offset;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(Error::Internal(format!("view \"{name}\" could not catch up with its inputs' commits")))
    }

    /// Rebuilds the operators of existing view `def` at start: its latest
    /// checkpoint plus the changes after it, or else backfilled from its
    /// inputs as they are now; its sink loaded from its rows.
    pub(crate) async fn restore_view(&mut self, def: Arc<RelationDef>) -> Result<()> {
        let view = def.view.as_ref().expect("a view");
        let query = &view.query;
        let literals = if view.bigint_literals { IntegerLiterals::Bigint } else { IntegerLiterals::Integer };
        let read = self.db.log.snapshot();
        let visible: Vec<String> = def.visible_positions().iter().map(|p| def.columns[*p].name.clone()).collect();
        let (mut runtime, _) = self.compile_view(&def.name, &visible, query, &read, literals).await?;
        runtime.root = keep_created_types(runtime.root, &def).map_err(view_error(&def.name))?;
        let mut restored = false;
        if let Some(meta) = self.db.log.view_state(def.id).await {
            // A damaged file stops the start (its checksum); a checkpoint of
            // another shape (say, written by another version) is rebuilt.
            let bytes = self.db.log.read_view_state(&meta).await?;
            match crate::view::checkpoint::load(&mut runtime.root, &bytes) {
                Ok(true) => {
                    self.catch_up(&def.name, &mut runtime, meta.through, &read).await?;
                    restored = true;
                    tracing::info!(view = %def.name, checkpoint = meta.through.0, "view operators loaded from checkpoint");
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(view = %def.name, path = %meta.path, %error, "view checkpoint unusable; rebuilding");
                    runtime = self.compile_view(&def.name, &visible, query, &read, literals).await?.0;
                    runtime.root = keep_created_types(runtime.root, &def).map_err(view_error(&def.name))?;
                }
            }
        }
        let mut correction = None;
        if !restored {
            let result = self.backfill(&def.name, &mut runtime, &read).await?;
            if def.row_id().is_some() {
                correction = self.correction(&def, result, &read).await?;
            }
        }
        let mut sink = Sink::new(def.clone()).map_err(view_error(&def.name))?;
        if def.row_id().is_some() {
            let mut rows = self.read_rows(&def, &read, None).await?;
            while let Some(batch) = rows.next().await {
                sink.load(&batch?).map_err(view_error(&def.name))?;
            }
        }
        runtime.sink = Some(sink);
        let change = Change::CreateView {
            def: Box::new(RelationDef::clone(&def)),
            runtime: Box::new(runtime),
            through: read.offset,
            output: correction,
            restore: true,
            if_not_exists: false,
            replace: false,
        };
        self.db.log.commit(vec![change]).await?;
        Ok(())
    }

    /// What turns a keyed view's stored rows into `result`, its query
    /// recomputed at start; `None` when they agree. They differ only when
    /// the recomputation cannot see what the maintenance saw: float sums
    /// added in another order, or input history retention removed.
    async fn correction(&self, def: &RelationDef, result: Delta, read: &ReadView) -> Result<Option<Delta>> {
        let visible = def.visible_positions();
        let schema = result.rows.schema();
        let mut parts = vec![result];
        let mut stored = self.read_rows(def, read, None).await?;
        while let Some(batch) = stored.next().await {
            let batch = batch?;
            let columns = visible.iter().map(|p| batch.column(*p).clone()).collect();
            let rows =
                crate::view::dataflow::batch(&schema, columns, batch.num_rows()).map_err(view_error(&def.name))?;
            let minus = datafusion::arrow::array::Int64Array::from(vec![-1; rows.num_rows()]);
            parts.push(Delta::new(rows, minus));
        }
        let difference = Delta::concat(parts, &schema)?.consolidate()?;
        if difference.is_empty() {
            return Ok(None);
        }
        tracing::warn!(
            view = %def.name,
            rows = difference.len(),
            "the view's stored rows differ from its query recomputed at start; logging the correction"
        );
        Ok(Some(difference))
    }

    /// Plans `sql` as of `read` and compiles it; the definition of the view
    /// (id and offset are the writer's to give).
    async fn compile_view(
        &self,
        name: &str,
        names: &[String],
        sql: &str,
        read: &ReadView,
        literals: IntegerLiterals,
    ) -> Result<(ViewRuntime, RelationDef)> {
        let statement = parse_query(sql)?;
        let (mut state, statement) = self.prepare_at(statement, false, read.clone()).await?;
        // A view is kept outside any session, and rebuilt at a restart by
        // none: it reads times in UTC, whatever zone created it.
        state.config_mut().options_mut().execution.time_zone = Some(crate::catalog::UTC.into());
        if let Some(options) =
            state.config_mut().options_mut().extensions.get_mut::<crate::session::time_zone::StrataOptions>()
        {
            options.time_zone = crate::catalog::UTC.into();
        }
        let plan = plan_statement_with(&state, statement, None, literals).await?;
        check_deterministic(&plan).map_err(view_error(name))?;
        let plan = distinct_on_as_top_one(plan).map_err(view_error(name))?;
        let optimized = state.optimize(&plan).map_err(Error::from_datafusion)?;
        let compiled = compile(&optimized, &read.catalog, &state).map_err(view_error(name))?;
        // Types as analyzed (PostgreSQL's arithmetic changes some, see
        // `query::pg_arithmetic`); names as the query gave them.
        let planned = plan.schema().as_arrow();
        let analyzed = optimized.schema().as_arrow();
        if names.len() > planned.fields().len() {
            return Err(Error::Malformed("CREATE MATERIALIZED VIEW specifies too many column names".into()));
        }
        // Named by the column list, else as the query's result shows them.
        let fields: Vec<_> = planned
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let data_type = analyzed.fields().get(i).map_or(f.data_type(), |a| a.data_type());
                f.as_ref()
                    .clone()
                    .with_data_type(data_type.clone())
                    .with_name(names.get(i).map_or(display_name(f.name()), String::as_str))
            })
            .collect();
        // A view is a relation: its columns need names of their own.
        if let Some(name) = repeated_name(fields.iter().map(|f| f.name().as_str())) {
            return Err(Error::DuplicateColumn(name.to_string()));
        }
        let schema = datafusion::arrow::datatypes::Schema::new(fields);
        let columns = view_columns(&schema, compiled.append_only)?;
        let def = RelationDef {
            id: RelationId(0),
            name: name.to_string(),
            kind: if compiled.append_only { RelationKind::Stream } else { RelationKind::Table },
            primary_key: if compiled.append_only { Vec::new() } else { vec![columns.len() - 1] },
            columns,
            created_at: Offset::ZERO,
            checks: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            retention: None,
            view: Some(ViewDef {
                query: sql.to_string(),
                inputs: compiled.inputs.iter().copied().collect(),
                selects_all: crate::sql::rewrite::selects_all(sql),
                bigint_literals: literals == IntegerLiterals::Bigint,
            }),
            schemas: Default::default(),
        };
        let runtime = ViewRuntime { root: compiled.root, inputs: compiled.inputs, sink: None };
        Ok((runtime, def))
    }

    /// Feeds every input's rows as of `read` (a stream's history, a
    /// table's or view's current rows) through the operators; returns the
    /// view's result.
    async fn backfill(&self, name: &str, runtime: &mut ViewRuntime, read: &ReadView) -> Result<Delta> {
        let mut outputs = Vec::new();
        let mut pending_rows = 0;
        let inputs: Vec<RelationId> = runtime.inputs.iter().copied().collect();
        for id in inputs {
            let def =
                read.catalog.by_id(id).cloned().ok_or_else(|| Error::UndefinedRelation(format!("id {}", id.0)))?;
            let mut rows = self.read_rows(&def, read, None).await?;
            while let Some(batch) = rows.next().await {
                let batch = batch?;
                if let Some(progress) = self.db.activity.backfills.lock().expect("backfills lock").get_mut(name) {
                    progress.rows_read += batch.num_rows() as u64;
                }
                let changes = SourceChanges::from([(id, Delta::inserts(batch))]);
                if let Some(out) = runtime.root.step(&changes).map_err(view_error(name))? {
                    pending_rows += out.len();
                    outputs.push(out);
                }
                // Changes of the same rows cancel out: keep the result compact.
                if pending_rows > BACKFILL_CONSOLIDATE_ROWS {
                    let merged = Delta::concat(std::mem::take(&mut outputs), &output_schema(runtime))?.consolidate()?;
                    pending_rows = merged.len();
                    outputs.push(merged);
                }
            }
        }
        if runtime.root.needs_first_step()
            && let Some(out) = runtime.root.step(&SourceChanges::new()).map_err(view_error(name))?
        {
            outputs.push(out);
        }
        Ok(Delta::concat(outputs, &output_schema(runtime))?.consolidate()?)
    }

    /// Feeds the changes to the inputs after `after` through `read`'s
    /// offset; returns the change of the view's result.
    async fn catch_up(&self, name: &str, runtime: &mut ViewRuntime, after: Offset, read: &ReadView) -> Result<Delta> {
        let mut changes = SourceChanges::new();
        for id in runtime.inputs.iter().copied() {
            let def =
                read.catalog.by_id(id).cloned().ok_or_else(|| Error::UndefinedRelation(format!("id {}", id.0)))?;
            let mut batches = self.read_rows(&def, read, Some(after)).await?;
            let mut parts = Vec::new();
            while let Some(batch) = batches.next().await {
                let batch = batch?;
                let n = batch.num_columns() - 1;
                let diffs = batch.column(n).as_primitive::<Int64Type>().clone();
                let rows = RecordBatch::try_new(def.full_schema(), batch.columns()[..n].to_vec())?;
                parts.push(Delta::new(rows, diffs));
            }
            if !parts.is_empty() {
                changes.insert(id, Delta::concat(parts, &def.full_schema())?);
            }
        }
        let out = runtime.root.step(&changes).map_err(view_error(name))?;
        Ok(out.unwrap_or_else(|| Delta::empty(output_schema(runtime))))
    }

    /// A relation's rows in its full schema as of `read`, as they are
    /// read; with `after`, its changes after that offset instead, with
    /// `_diff` last.
    async fn read_rows(
        &self,
        def: &RelationDef,
        read: &ReadView,
        after: Option<Offset>,
    ) -> Result<impl futures::Stream<Item = Result<RecordBatch>> + use<>> {
        let mut columns: Vec<String> = def.full_schema().fields().iter().map(|f| quote(f.name())).collect();
        let source = match after {
            Some(after) => {
                columns.push("_diff".into());
                format!("changes('{}', {}, {})", def.name.replace('\'', "''"), after.0, read.offset.0)
            }
            None => quote(&def.name),
        };
        let sql = format!("SELECT {} FROM {source}", columns.join(", "));
        let (state, statement) = self.prepare_at(parse_query(&sql)?, false, read.clone()).await?;
        let plan = plan_statement(&state, statement, None).await?;
        let stream = DataFrame::new(state, plan).execute_stream().await.map_err(Error::from_datafusion)?;
        let schema = match after {
            Some(_) => def.changes_schema(),
            None => def.full_schema(),
        };
        Ok(stream.map(move |batch| {
            let batch = batch.map_err(Error::from_datafusion)?;
            Ok(crate::query::read_types::conform(&batch, &schema)?)
        }))
    }
}

/// A backfill listed in `strata.views` while it runs.
struct Progress<'a> {
    backfills: &'a crate::view::Backfills,
    name: String,
}

impl<'a> Progress<'a> {
    fn start(backfills: &'a crate::view::Backfills, name: &str, query: &str) -> Progress<'a> {
        let progress = crate::view::BackfillProgress { query: query.to_string(), rows_read: 0 };
        backfills.lock().expect("backfills lock").insert(name.to_string(), progress);
        Progress { backfills, name: name.to_string() }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.backfills.lock().expect("backfills lock").remove(&self.name);
    }
}

fn output_schema(runtime: &ViewRuntime) -> datafusion::arrow::datatypes::SchemaRef {
    runtime.root.schema()
}

fn view_error(name: &str) -> impl Fn(crate::view::ViewError) -> Error + '_ {
    move |source| match source {
        crate::view::ViewError::Unsupported(what) => {
            Error::FeatureNotSupported(format!("{what} is not supported in a materialized view yet"))
        }
        source => Error::Storage(crate::log::Error::View { view: name.to_string(), source }),
    }
}

/// The window column a `DISTINCT ON` becomes.
const DISTINCT_ON_ROW_NUMBER: &str = "__strata_distinct_on_row";

/// `DISTINCT ON (k, …) … ORDER BY …` as the per-group top-1 the view
/// compiler keeps (right again when the first row is deleted):
/// `row_number() OVER (PARTITION BY k, … ORDER BY …) <= 1`, then the select
/// list. Rewritten before DataFusion's optimizer, which would turn it into
/// `first_value(… ORDER BY …)` aggregates. Without ORDER BY the row kept is
/// arbitrary, which a view that must equal its query cannot be.
fn distinct_on_as_top_one(plan: LogicalPlan) -> std::result::Result<LogicalPlan, ViewError> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{Distinct, ExprFunctionExt, LogicalPlanBuilder, col, lit};
    let arbitrary = plan
        .exists(|node| Ok(matches!(node, LogicalPlan::Distinct(Distinct::On(on)) if on.sort_expr.is_none())))
        .unwrap_or(false);
    if arbitrary {
        return Err(ViewError::Unsupported("DISTINCT ON without ORDER BY (it keeps an arbitrary row)".into()));
    }
    plan.transform_up(|node| {
        let LogicalPlan::Distinct(Distinct::On(on)) = node else { return Ok(Transformed::no(node)) };
        let number = datafusion::functions_window::expr_fn::row_number()
            .partition_by(on.on_expr)
            .order_by(on.sort_expr.unwrap_or_default())
            .build()?
            .alias(DISTINCT_ON_ROW_NUMBER);
        let top_one = LogicalPlanBuilder::from(Arc::unwrap_or_clone(on.input))
            .window(vec![number])?
            .filter(col(DISTINCT_ON_ROW_NUMBER).lt_eq(lit(1u64)))?
            .project(on.select_expr)?
            .build()?;
        Ok(Transformed::yes(top_one))
    })
    .map(|t| t.data)
    .map_err(ViewError::from)
}
