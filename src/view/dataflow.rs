//! A view's query as a tree of incremental operators. Each commit, the
//! changes of the relations it reads enter at its sources and the tree
//! returns the change of the view's result.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use super::aggregate::Aggregate;
use super::delta::{Delta, evaluate};
use super::join::Join;
use super::{Result, ViewError};
use crate::log::RelationId;

/// The changes of one commit (or one backfill batch), by relation, each in
/// the relation's full schema (its columns, `_offset`, `_ts`).
pub type SourceChanges = HashMap<RelationId, Delta>;

#[derive(Debug, Clone)]
pub enum Node {
    Source(Source),
    Filter { input: Box<Node>, predicate: Arc<dyn PhysicalExpr> },
    Project { input: Box<Node>, exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef },
    Aggregate { input: Box<Node>, op: Aggregate },
    Join { left: Box<Node>, right: Box<Node>, op: Join },
    Union { inputs: Vec<Node>, schema: SchemaRef },
    TopN { input: Box<Node>, op: super::top_n::TopN },
    GroupTopN { input: Box<Node>, op: super::top_n::GroupTopN },
}

/// Where a relation's changes enter: the columns the query reads (by name,
/// so a column added later does not disturb it) and filters pushed into the scan.
#[derive(Debug, Clone)]
pub struct Source {
    pub relation: RelationId,
    /// Names of the relation's full schema when the view was planned.
    pub scanned: Vec<String>,
    pub scanned_schema: SchemaRef,
    /// Over `scanned_schema`.
    pub filters: Vec<Arc<dyn PhysicalExpr>>,
    /// Positions in `scanned` the scan returns.
    pub projection: Vec<usize>,
    pub schema: SchemaRef,
}

impl Node {
    pub fn step(&mut self, changes: &SourceChanges) -> Result<Option<Delta>> {
        match self {
            Node::Source(source) => source.step(changes),
            Node::Filter { input, predicate } => {
                let Some(delta) = input.step(changes)? else { return Ok(None) };
                Ok(Some(delta.filter(predicate)?).filter(|d| !d.is_empty()))
            }
            Node::Project { input, exprs, schema } => {
                let Some(delta) = input.step(changes)? else { return Ok(None) };
                let columns: Vec<ArrayRef> = exprs.iter().map(|e| evaluate(e, &delta.rows)).collect::<Result<_>>()?;
                let rows = batch(schema, columns, delta.len())?;
                Ok(Some(Delta::new(rows, delta.diffs)))
            }
            Node::Aggregate { input, op } => {
                let delta = input.step(changes)?;
                if delta.is_none() && !op.needs_first_step() {
                    return Ok(None);
                }
                op.step(delta.as_ref())
            }
            Node::Join { left, right, op } => {
                let left = left.step(changes)?;
                let right = right.step(changes)?;
                if left.is_none() && right.is_none() {
                    return Ok(None);
                }
                op.step(left.as_ref(), right.as_ref())
            }
            Node::TopN { input, op } => {
                let Some(delta) = input.step(changes)? else { return Ok(None) };
                op.step(&delta)
            }
            Node::GroupTopN { input, op } => {
                let Some(delta) = input.step(changes)? else { return Ok(None) };
                op.step(&delta)
            }
            Node::Union { inputs, schema } => {
                let mut parts = Vec::new();
                for input in inputs {
                    if let Some(delta) = input.step(changes)? {
                        let rows = batch(schema, delta.rows.columns().to_vec(), delta.len())?;
                        parts.push(Delta::new(rows, delta.diffs));
                    }
                }
                if parts.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Delta::concat(parts, schema)?))
            }
        }
    }

    /// The operators this one reads, left to right.
    fn children(&self) -> Vec<&Node> {
        match self {
            Node::Source(_) => Vec::new(),
            Node::Filter { input, .. }
            | Node::Project { input, .. }
            | Node::Aggregate { input, .. }
            | Node::TopN { input, .. }
            | Node::GroupTopN { input, .. } => vec![input],
            Node::Join { left, right, .. } => vec![left, right],
            Node::Union { inputs, .. } => inputs.iter().collect(),
        }
    }

    fn children_mut(&mut self) -> Vec<&mut Node> {
        match self {
            Node::Source(_) => Vec::new(),
            Node::Filter { input, .. }
            | Node::Project { input, .. }
            | Node::Aggregate { input, .. }
            | Node::TopN { input, .. }
            | Node::GroupTopN { input, .. } => vec![input],
            Node::Join { left, right, .. } => vec![left, right],
            Node::Union { inputs, .. } => inputs.iter_mut().collect(),
        }
    }

    /// Calls `f` on every operator, parents before children, left to right.
    pub fn visit(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        self.children().into_iter().for_each(|child| child.visit(f));
    }

    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        f(self);
        self.children_mut().into_iter().for_each(|child| child.visit_mut(f));
    }

    /// Entries and approximate bytes of this operator's own state.
    pub fn state_size(&self) -> (u64, u64) {
        match self {
            Node::Aggregate { op, .. } => op.state_size(),
            Node::Join { op, .. } => op.state_size(),
            Node::TopN { op, .. } => op.state_size(),
            Node::GroupTopN { op, .. } => op.state_size(),
            _ => (0, 0),
        }
    }

    /// Writes this operator's own state (not its inputs').
    pub fn save_state(&self, out: &mut super::checkpoint::Encoder) {
        match self {
            Node::Aggregate { op, .. } => op.save(out),
            Node::Join { op, .. } => op.save(out),
            Node::TopN { op, .. } => op.save(out),
            Node::GroupTopN { op, .. } => op.save(out),
            _ => {}
        }
    }

    pub fn load_state(&mut self, input: &mut super::checkpoint::Decoder) -> Result<()> {
        match self {
            Node::Aggregate { op, .. } => op.load(input),
            Node::Join { op, .. } => op.load(input),
            Node::TopN { op, .. } => op.load(input),
            Node::GroupTopN { op, .. } => op.load(input),
            _ => Ok(()),
        }
    }

    /// Whether a step must run even when no input changed (a global
    /// aggregate's first row).
    pub fn needs_first_step(&self) -> bool {
        let own = matches!(self, Node::Aggregate { op, .. } if op.needs_first_step());
        own || self.children().into_iter().any(Node::needs_first_step)
    }

    pub fn schema(&self) -> SchemaRef {
        match self {
            Node::Source(source) => source.schema.clone(),
            Node::Filter { input, .. } => input.schema(),
            Node::Project { schema, .. } | Node::Union { schema, .. } => schema.clone(),
            Node::Aggregate { op, .. } => op.schema().clone(),
            Node::Join { op, .. } => op.schema().clone(),
            Node::TopN { op, .. } => op.schema().clone(),
            Node::GroupTopN { op, .. } => op.schema().clone(),
        }
    }
}

impl Source {
    fn step(&self, changes: &SourceChanges) -> Result<Option<Delta>> {
        let Some(delta) = changes.get(&self.relation) else { return Ok(None) };
        let schema = delta.rows.schema();
        let columns: Vec<ArrayRef> = self
            .scanned
            .iter()
            .map(|name| {
                schema.index_of(name).map(|i| delta.rows.column(i).clone()).map_err(|_| {
                    ViewError::internal(&format!("column \"{name}\" is missing from the changes of a view's input"))
                })
            })
            .collect::<Result<_>>()?;
        let mut scanned = Delta::new(batch(&self.scanned_schema, columns, delta.len())?, delta.diffs.clone());
        for filter in &self.filters {
            scanned = scanned.filter(filter)?;
        }
        if scanned.is_empty() {
            return Ok(None);
        }
        let columns = self.projection.iter().map(|p| scanned.rows.column(*p).clone()).collect();
        Ok(Some(Delta::new(batch(&self.schema, columns, scanned.len())?, scanned.diffs)))
    }
}

/// A batch of `columns` under `schema` (names and nullability from the plan;
/// a column of another type is cast).
pub fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    if columns.len() != schema.fields().len() {
        return Err(ViewError::internal(&format!(
            "{} columns where the view's plan has {}",
            columns.len(),
            schema.fields().len()
        )));
    }
    Ok(crate::query::read_types::cast_columns(schema, columns, rows)?)
}
