//! Integer literals typed as PostgreSQL types them: `1` is an INT when it
//! fits in one, a BIGINT only when it does not (DataFusion makes every
//! integer literal a BIGINT). So `SELECT 1` and `int_column + 1` are INT,
//! as drivers expect (node-postgres reads a BIGINT as a string), and INT
//! arithmetic overflows where PostgreSQL's does.
//!
//! An analyzer rule run before type coercion, so coercion widens the
//! literal wherever the other side is wider (`bigint_column + 1` stays
//! BIGINT). LIMIT and OFFSET keep their BIGINT (DataFusion reads only
//! that), and so do VALUES rows (their types are fixed when planned).

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct IntegerLiterals;

impl AnalyzerRule for IntegerLiterals {
    fn name(&self) -> &str {
        "postgres_integer_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            if matches!(plan, LogicalPlan::Limit(_) | LogicalPlan::Values(_)) {
                return Ok(Transformed::no(plan));
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                expr.transform_up(narrowed).map(|t| t.update_data(|e| name.restore(e)))
            })?
            .map_data(|plan| plan.recompute_schema())
        })
        .map(|t| t.data)
    }
}

fn narrowed(expr: Expr) -> DfResult<Transformed<Expr>> {
    match &expr {
        Expr::Literal(ScalarValue::Int64(Some(value)), metadata) => match i32::try_from(*value) {
            Ok(value) => Ok(Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(value)), metadata.clone()))),
            Err(_) => Ok(Transformed::no(expr)),
        },
        _ => Ok(Transformed::no(expr)),
    }
}
