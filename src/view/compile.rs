//! Turns a view's planned query (DataFusion's optimized logical plan) into
//! incremental operators, or refuses it naming the operator that cannot be
//! maintained incrementally.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, JoinType};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Distinct, Expr, ExprSchemable, LogicalPlan, Volatility};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, cast};

use super::aggregate::{AggKind, AggSpec, Aggregate};
use super::dataflow::{Node, Source};
use super::join::Join;
use super::top_n::TopN;
use super::{Result, ViewError};
use crate::catalog::{Catalog, OFFSET_COLUMN, RelationDef, RelationKind, TS_COLUMN};
use crate::log::RelationId;
use datafusion::arrow::row::SortField;
use datafusion::logical_expr::{FetchType, SkipType};

/// A compiled view query.
pub struct Compiled {
    pub root: Node,
    /// The relations it reads.
    pub inputs: BTreeSet<RelationId>,
    /// Whether its result only ever grows (filters, projections and joins of
    /// streams), so it is kept as a stream rather than as keyed state.
    pub append_only: bool,
}

/// Refuses functions whose result is not fixed by their arguments: a view
/// of `now()` or `random()` would change without any commit.
pub fn check_deterministic(plan: &LogicalPlan) -> Result<()> {
    let mut found: Option<String> = None;
    plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    found = Some(format!("{}()", f.func.name()));
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if found.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    match found {
        Some(function) => Err(ViewError::Unsupported(format!(
            "function {function} (its result changes without a commit, so it cannot be maintained)"
        ))),
        None => Ok(()),
    }
}

pub fn compile(plan: &LogicalPlan, catalog: &Catalog, state: &SessionState) -> Result<Compiled> {
    let mut compiler = Compiler { catalog, state, inputs: BTreeSet::new() };
    let (root, append_only) = compiler.node(plan)?;
    Ok(Compiled { root, inputs: compiler.inputs, append_only })
}

struct Compiler<'a> {
    catalog: &'a Catalog,
    state: &'a SessionState,
    inputs: BTreeSet<RelationId>,
}

impl Compiler<'_> {
    fn physical(&self, expr: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(self.state.create_physical_expr(expr.clone(), schema)?)
    }

    /// The operator for `plan` and whether its output only grows.
    fn node(&mut self, plan: &LogicalPlan) -> Result<(Node, bool)> {
        Ok(match plan {
            LogicalPlan::Projection(projection) => {
                let (input, append_only) = self.node(&projection.input)?;
                let exprs = projection
                    .expr
                    .iter()
                    .map(|e| self.physical(e, projection.input.schema()))
                    .collect::<Result<_>>()?;
                (
                    Node::Project { input: Box::new(input), exprs, schema: nullable(projection.schema.as_arrow()) },
                    append_only,
                )
            }
            LogicalPlan::Filter(filter) if self.group_top_n(filter)?.is_some() => {
                self.group_top_n(filter)?.expect("checked").build(self)?
            }
            LogicalPlan::Filter(filter) => {
                let (input, append_only) = self.node(&filter.input)?;
                let predicate = self.physical(&filter.predicate, filter.input.schema())?;
                (Node::Filter { input: Box::new(input), predicate }, append_only)
            }
            LogicalPlan::SubqueryAlias(alias) => self.node(&alias.input)?,
            LogicalPlan::Sort(sort) => {
                let (input, append_only) = self.node(&sort.input)?;
                let Some(fetch) = sort.fetch else {
                    // Order alone means nothing to a relation.
                    return Ok((input, append_only));
                };
                let schema = sort.input.schema();
                let mut exprs = Vec::new();
                let mut fields = Vec::new();
                for sort_expr in &sort.expr {
                    exprs.push(self.physical(&sort_expr.expr, schema)?);
                    let options = datafusion::arrow::compute::SortOptions {
                        descending: !sort_expr.asc,
                        nulls_first: sort_expr.nulls_first,
                    };
                    fields.push(SortField::new_with_options(sort_expr.expr.get_type(schema)?, options));
                }
                let op = TopN::new(exprs, fields, input.schema(), 0, fetch, append_only)?;
                (Node::TopN { input: Box::new(input), op }, false)
            }
            LogicalPlan::Limit(limit) => {
                let (skip, fetch) = match (limit.get_skip_type()?, limit.get_fetch_type()?) {
                    (SkipType::Literal(skip), FetchType::Literal(fetch)) => (skip, fetch),
                    _ => return Err(ViewError::Unsupported("LIMIT or OFFSET that is not a constant".into())),
                };
                match self.node(&limit.input)? {
                    (Node::TopN { input, mut op }, _) => {
                        let fetch = fetch.unwrap_or(usize::MAX).min(op.fetch.saturating_sub(skip));
                        op.skip += skip;
                        op.fetch = fetch;
                        (Node::TopN { input, op }, false)
                    }
                    _ => return Err(ViewError::limit_without_order()),
                }
            }
            LogicalPlan::TableScan(scan) => {
                if scan.fetch.is_some() {
                    return Err(ViewError::limit_without_order());
                }
                let name = scan.table_name.table();
                if scan.table_name.schema().is_some_and(|schema| schema != crate::database::SCHEMA_NAME) {
                    return Err(ViewError::Unsupported(format!("reading {} (a system relation)", scan.table_name)));
                }
                let def = self.catalog.get(name).ok_or_else(|| {
                    ViewError::Unsupported(format!("reading \"{name}\" (not a stream, table or view)"))
                })?;
                let full = scan.source.schema();
                let projection: Vec<usize> =
                    scan.projection.clone().unwrap_or_else(|| (0..full.fields().len()).collect());
                let keyed = def.kind == RelationKind::Table;
                if keyed
                    && projection.iter().any(|p| [OFFSET_COLUMN, TS_COLUMN].contains(&full.field(*p).name().as_str()))
                {
                    return Err(ViewError::Unsupported(format!(
                        "_offset and _ts of {} \"{name}\" (only a stream's can be read by a view)",
                        def.noun()
                    )));
                }
                let qualified = DFSchema::try_from_qualified_schema(scan.table_name.clone(), &full)?;
                let filters = scan.filters.iter().map(|f| self.physical(f, &qualified)).collect::<Result<_>>()?;
                self.inputs.insert(def.id);
                let source = Source {
                    relation: def.id,
                    scanned: full.fields().iter().map(|f| f.name().clone()).collect(),
                    scanned_schema: nullable(&full),
                    filters,
                    projection,
                    schema: nullable(scan.projected_schema.as_arrow()),
                };
                (Node::Source(source), !keyed)
            }
            LogicalPlan::Aggregate(aggregate) => {
                let (input, append_only) = self.node(&aggregate.input)?;
                let input_schema = aggregate.input.schema();
                let mut group_exprs = Vec::new();
                let mut group_types = Vec::new();
                for expr in &aggregate.group_expr {
                    if matches!(expr, Expr::GroupingSet(_)) {
                        return Err(ViewError::Unsupported("GROUPING SETS, ROLLUP and CUBE".into()));
                    }
                    group_exprs.push(self.physical(expr, input_schema)?);
                    group_types.push(expr.get_type(input_schema)?);
                }
                let output = aggregate.schema.as_arrow();
                let mut aggs = Vec::new();
                for (index, expr) in aggregate.aggr_expr.iter().enumerate() {
                    let output_type = output.field(group_exprs.len() + index).data_type().clone();
                    aggs.push(self.aggregate(expr, input_schema, output_type)?);
                }
                let op = Aggregate::new(group_exprs, group_types, aggs, nullable(output), append_only)?;
                (Node::Aggregate { input: Box::new(input), op }, false)
            }
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let (node, _) = self.node(input)?;
                let schema = nullable(input.schema().as_arrow());
                let group_exprs: Vec<Arc<dyn PhysicalExpr>> = schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
                    .collect();
                let types = schema.fields().iter().map(|f| f.data_type().clone()).collect();
                let op = Aggregate::new(group_exprs, types, Vec::new(), schema, false)?;
                (Node::Aggregate { input: Box::new(node), op }, false)
            }
            // Rewritten as a per-group top-1 before planning reaches here.
            LogicalPlan::Distinct(Distinct::On(_)) => return Err(ViewError::Unsupported("DISTINCT ON".into())),
            LogicalPlan::Join(join) => {
                use super::join::JoinOutput;
                let (output, swapped) = match join.join_type {
                    JoinType::Inner => (JoinOutput::Pairs { pad_left: false, pad_right: false }, false),
                    JoinType::Left => (JoinOutput::Pairs { pad_left: true, pad_right: false }, false),
                    JoinType::Right => (JoinOutput::Pairs { pad_left: false, pad_right: true }, false),
                    JoinType::Full => (JoinOutput::Pairs { pad_left: true, pad_right: true }, false),
                    JoinType::LeftSemi => (JoinOutput::Semi, false),
                    JoinType::RightSemi => (JoinOutput::Semi, true),
                    JoinType::LeftAnti => (JoinOutput::Anti, false),
                    JoinType::RightAnti => (JoinOutput::Anti, true),
                    JoinType::LeftMark | JoinType::RightMark => {
                        return Err(ViewError::join_type("mark (a subquery in an OR)"));
                    }
                };
                let outer = output != JoinOutput::Pairs { pad_left: false, pad_right: false };
                if outer && join.filter.is_some() {
                    return Err(ViewError::Unsupported(format!(
                        "{} JOIN with conditions other than equalities",
                        join.join_type.to_string().to_uppercase()
                    )));
                }
                if join.null_aware {
                    return Err(ViewError::Unsupported("NOT IN (subquery) (use NOT EXISTS)".into()));
                }
                let (left_plan, right_plan) =
                    if swapped { (&join.right, &join.left) } else { (&join.left, &join.right) };
                let (left, left_append_only) = self.node(left_plan)?;
                let (right, right_append_only) = self.node(right_plan)?;
                let mut left_keys = Vec::new();
                let mut right_keys = Vec::new();
                let mut key_types = Vec::new();
                for (l, r) in &join.on {
                    let (l, r) = if swapped { (r, l) } else { (l, r) };
                    let left_type = l.get_type(left_plan.schema())?;
                    let right_type = r.get_type(right_plan.schema())?;
                    left_keys.push(self.physical(l, left_plan.schema())?);
                    let mut right_key = r.clone();
                    if right_type != left_type {
                        right_key = right_key.cast_to(&left_type, right_plan.schema())?;
                    }
                    right_keys.push(self.physical(&right_key, right_plan.schema())?);
                    key_types.push(left_type);
                }
                let filter = join.filter.as_ref().map(|f| self.physical(f, &join.schema)).transpose()?;
                let op = Join::new(
                    output,
                    join.null_equality == datafusion::common::NullEquality::NullEqualsNull,
                    left_keys,
                    right_keys,
                    key_types,
                    filter,
                    &left.schema(),
                    &right.schema(),
                    nullable(join.schema.as_arrow()),
                )?;
                let grows = left_append_only && right_append_only && !outer;
                (Node::Join { left: Box::new(left), right: Box::new(right), op }, grows)
            }
            LogicalPlan::Union(union) => {
                let mut inputs = Vec::new();
                let mut append_only = true;
                for input in &union.inputs {
                    let (node, grows) = self.node(input)?;
                    inputs.push(node);
                    append_only &= grows;
                }
                (Node::Union { inputs, schema: nullable(union.schema.as_arrow()) }, append_only)
            }
            LogicalPlan::Window(_) => return Err(ViewError::Unsupported("window functions".into())),
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                return Err(ViewError::Unsupported("a query without a FROM relation".into()));
            }
            LogicalPlan::RecursiveQuery(_) => return Err(ViewError::Unsupported("WITH RECURSIVE".into())),
            LogicalPlan::Unnest(_) => return Err(ViewError::Unsupported("unnest".into())),
            other => {
                let name = other.display().to_string();
                let name = name.split(':').next().unwrap_or("this operator").to_string();
                return Err(ViewError::Unsupported(name));
            }
        })
    }

    /// `row_number() OVER (PARTITION BY … ORDER BY …) <= n` (or `< n`)
    /// filtering a window of that one function: per-group top-N.
    fn group_top_n<'p>(&self, filter: &'p datafusion::logical_expr::Filter) -> Result<Option<GroupTopNPlan<'p>>> {
        use datafusion::logical_expr::{BinaryExpr, Operator, WindowFunctionDefinition};
        let LogicalPlan::Window(window) = filter.input.as_ref() else { return Ok(None) };
        let [window_expr] = window.window_expr.as_slice() else { return Ok(None) };
        let window_expr = match window_expr {
            Expr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        let Expr::WindowFunction(function) = window_expr else { return Ok(None) };
        let WindowFunctionDefinition::WindowUDF(udf) = &function.fun else { return Ok(None) };
        if udf.name() != "row_number" {
            return Ok(None);
        }
        // The row-number bound, and any other conditions the optimizer
        // merged into the same filter (they apply to the rows kept).
        let number_field = window.schema.fields().len() - 1;
        let number_name = window.schema.field(number_field).name();
        let mut rest: Vec<Expr> =
            datafusion::logical_expr::utils::split_conjunction(&filter.predicate).into_iter().cloned().collect();
        let is_bound = |expr: &Expr| match expr {
            Expr::BinaryExpr(BinaryExpr { left, right, .. }) => {
                matches!((left.as_ref(), right.as_ref()), (Expr::Column(c), Expr::Literal(..)) if c.name == *number_name)
            }
            _ => false,
        };
        let Some(at) = rest.iter().position(is_bound) else { return Ok(None) };
        let Expr::BinaryExpr(BinaryExpr { op, right, .. }) = rest.remove(at) else { return Ok(None) };
        let Expr::Literal(limit, _) = *right else { return Ok(None) };
        let limit = match limit.cast_to(&datafusion::arrow::datatypes::DataType::Int64)? {
            datafusion::common::ScalarValue::Int64(Some(n)) if n >= 0 => n as usize,
            _ => return Ok(None),
        };
        let fetch = match op {
            Operator::LtEq => limit,
            Operator::Lt => limit.saturating_sub(1),
            _ => return Ok(None),
        };
        Ok(Some(GroupTopNPlan { window, params: &function.params, fetch, rest }))
    }

    fn aggregate(
        &self,
        expr: &Expr,
        input: &DFSchema,
        output_type: datafusion::arrow::datatypes::DataType,
    ) -> Result<AggSpec> {
        let expr = match expr {
            Expr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(function) = expr else {
            return Err(ViewError::internal("an aggregate expression that is not a function"));
        };
        let name = function.func.name().to_lowercase();
        let params = &function.params;
        // string_agg and array_agg list values in value order, so an ORDER
        // BY of the aggregated value itself is what they do anyway (NULLs
        // where PostgreSQL puts them by default: last ascending).
        let descending = match params.order_by.as_slice() {
            [] => false,
            [sort]
                if matches!(name.as_str(), "string_agg" | "array_agg") && params.args.first() == Some(&sort.expr) =>
            {
                if sort.nulls_first == sort.asc {
                    return Err(ViewError::Unsupported(format!(
                        "{name}(… ORDER BY … NULLS FIRST/LAST) against the default"
                    )));
                }
                !sort.asc
            }
            _ => return Err(ViewError::Unsupported(format!("{name}(… ORDER BY …) by other than its value"))),
        };
        let kind = match (name.as_str(), params.distinct) {
            ("count", false) => AggKind::Count,
            ("count", true) => AggKind::CountDistinct,
            ("sum", false) => AggKind::Sum,
            ("avg" | "mean", false) => AggKind::Avg,
            ("min" | "bool_and", _) => AggKind::Min,
            ("max" | "bool_or", _) => AggKind::Max,
            ("string_agg", false) => AggKind::StringAgg,
            ("array_agg", false) => AggKind::ArrayAgg,
            (_, true) => return Err(ViewError::Unsupported(format!("{name}(DISTINCT …)"))),
            _ => return Err(ViewError::Unsupported(format!("aggregate function {name}"))),
        };
        let mut separator = String::new();
        let arg = match params.args.as_slice() {
            [] => None,
            [arg] => Some(arg),
            [arg, Expr::Literal(value, _)] if kind == AggKind::StringAgg => {
                separator = match value {
                    datafusion::common::ScalarValue::Utf8(Some(s))
                    | datafusion::common::ScalarValue::LargeUtf8(Some(s))
                    | datafusion::common::ScalarValue::Utf8View(Some(s)) => s.clone(),
                    _ => String::new(),
                };
                Some(arg)
            }
            _ => return Err(ViewError::Unsupported(format!("{name} with these arguments"))),
        };
        let input_type = match arg {
            Some(arg) => arg.get_type(input)?,
            None => datafusion::arrow::datatypes::DataType::Int64,
        };
        let arg = arg.map(|a| self.physical(a, input)).transpose()?;
        let filter = params.filter.as_ref().map(|f| self.physical(f, input)).transpose()?;
        let mut spec = AggSpec::new(kind, arg, filter, input_type, output_type)?;
        spec.separator = separator;
        spec.descending = descending;
        Ok(spec)
    }
}

/// A per-group top-N found in a plan, to compile.
struct GroupTopNPlan<'p> {
    window: &'p datafusion::logical_expr::Window,
    params: &'p datafusion::logical_expr::expr::WindowFunctionParams,
    fetch: usize,
    /// Other conditions of the same filter, over the window's rows.
    rest: Vec<Expr>,
}

impl GroupTopNPlan<'_> {
    fn build(self, compiler: &mut Compiler) -> Result<(Node, bool)> {
        let (input, append_only) = compiler.node(&self.window.input)?;
        let schema = self.window.input.schema();
        let mut partition_exprs = Vec::new();
        let mut partition_fields = Vec::new();
        for expr in &self.params.partition_by {
            partition_exprs.push(compiler.physical(expr, schema)?);
            partition_fields.push(SortField::new(expr.get_type(schema)?));
        }
        let mut sort_exprs = Vec::new();
        let mut sort_fields = Vec::new();
        for sort in &self.params.order_by {
            sort_exprs.push(compiler.physical(&sort.expr, schema)?);
            let options =
                datafusion::arrow::compute::SortOptions { descending: !sort.asc, nulls_first: sort.nulls_first };
            sort_fields.push(SortField::new_with_options(sort.expr.get_type(schema)?, options));
        }
        let op = super::top_n::GroupTopN::new(
            partition_exprs,
            partition_fields,
            sort_exprs,
            sort_fields,
            &input.schema(),
            self.fetch,
            append_only,
            nullable(self.window.schema.as_arrow()),
        )?;
        let mut node = Node::GroupTopN { input: Box::new(input), op };
        if let Some(rest) = datafusion::logical_expr::utils::conjunction(self.rest) {
            let predicate = compiler.physical(&rest, &self.window.schema)?;
            node = Node::Filter { input: Box::new(node), predicate };
        }
        Ok((node, false))
    }
}

/// `schema` with every field nullable: operators build their own batches
/// and need not prove what the planner knew about NULLs.
pub fn nullable(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    Arc::new(Schema::new(fields))
}

/// `root` with its output cast to the column types of `def`, where they
/// differ: a view created by an earlier version was planned with other
/// types (`1.1` was DOUBLE PRECISION before it was NUMERIC), and its stored
/// rows and history keep the types it was created with.
pub fn keep_created_types(root: Node, def: &RelationDef) -> Result<Node> {
    let schema = root.schema();
    let targets: Vec<DataType> =
        schema.fields().iter().zip(&def.columns).map(|(_, column)| column.sql_type.arrow_type()).collect();
    if targets.len() != schema.fields().len() || schema.fields().iter().zip(&targets).all(|(f, t)| f.data_type() == t) {
        return Ok(root);
    }
    let mut exprs = Vec::with_capacity(targets.len());
    let mut fields = Vec::with_capacity(targets.len());
    for (position, (field, target)) in schema.fields().iter().zip(targets).enumerate() {
        let column = Arc::new(Column::new(field.name(), position));
        exprs.push(cast(column, &schema, target.clone())?);
        fields.push(field.as_ref().clone().with_data_type(target));
    }
    Ok(Node::Project { input: Box::new(root), exprs, schema: nullable(&Schema::new(fields)) })
}
