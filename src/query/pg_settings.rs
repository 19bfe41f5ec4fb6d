//! `current_setting(name [, missing_ok])`: a session parameter's value as
//! SHOW gives it, which tools read (`server_version_num`, `search_path`,
//! `TimeZone`). An unknown name is 42704, as in PostgreSQL (asyncpg asks
//! for `jit` and goes on without it on that error), or NULL with
//! `missing_ok`. The session hands its settings to each statement in
//! [`StrataOptions`](crate::session::time_zone::StrataOptions).
//!
//! `set_config(name, value, is_local)` takes a value a parameter already
//! has (tools set `search_path` to what it is); changing one is SET's
//! (0A000 here: a function cannot reach the session), and an unknown name
//! is 42704.
//!
//! Calls with constant arguments are answered as the statement is analyzed
//! ([`SessionSettings`]): the settings reach analyzer rules, and not every
//! place a function runs later (a name read from a column is 0A000).

use std::cell::LazyCell;
use std::collections::BTreeMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

use crate::error::Error;

pub fn current_setting() -> ScalarUDF {
    let signature = Signature::one_of(
        vec![TypeSignature::Exact(vec![DataType::Utf8]), TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean])],
        Volatility::Stable,
    );
    ScalarUDF::new_from_impl(SettingFunction { name: "current_setting", signature })
}

pub fn set_config() -> ScalarUDF {
    let signature = Signature::exact(vec![DataType::Utf8, DataType::Utf8, DataType::Boolean], Volatility::Stable);
    ScalarUDF::new_from_impl(SettingFunction { name: "set_config", signature })
}

/// The session's settings as one text, for [`StrataOptions`]
/// (its fields are text).
///
/// [`StrataOptions`]: crate::session::time_zone::StrataOptions
pub fn encode(settings: &BTreeMap<String, String>) -> String {
    serde_json::to_string(settings).unwrap_or_default()
}

fn unrecognized(name: &str) -> datafusion::error::DataFusionError {
    Error::UndefinedObject(format!("unrecognized configuration parameter \"{name}\"")).into_datafusion()
}

/// The functions as planning sees them. [`SessionSettings`] answers every
/// call of a constant name; one it leaves (a name read from a column) is
/// refused when it runs, where the settings are out of reach.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SettingFunction {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for SettingFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let message = format!("{}() takes a constant parameter name and value", self.name);
        Err(Error::FeatureNotSupported(message).into_datafusion())
    }
}

/// Answers `current_setting` and `set_config` calls of constant arguments
/// from the statement's settings (an unknown name fails the statement).
#[derive(Debug, Default)]
pub struct SessionSettings;

impl datafusion::optimizer::AnalyzerRule for SessionSettings {
    fn name(&self) -> &str {
        "session_settings"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        // Read only by a statement that calls one of the functions.
        let settings = LazyCell::new(|| settings_in(config));
        plan.transform_up_with_subqueries(|plan| {
            let preserver = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = preserver.save(&expr);
                expr.transform_up(|e| answer(e, &settings)).map(|t| t.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }
}

/// The same for an expression compiled outside a plan (an UPDATE's SET).
pub fn answered(expr: Expr, config: &ConfigOptions) -> DfResult<Expr> {
    let settings = LazyCell::new(|| settings_in(config));
    expr.transform_up(|e| answer(e, &settings)).map(|t| t.data)
}

fn settings_in(config: &ConfigOptions) -> BTreeMap<String, String> {
    let encoded = config
        .extensions
        .get::<crate::session::time_zone::StrataOptions>()
        .map(|o| o.settings.clone())
        .unwrap_or_default();
    serde_json::from_str(&encoded).unwrap_or_default()
}

/// A constant argument's value (`'TimeZone'`, `'Time' || 'Zone'`,
/// `lower($1)` is none): `Some(None)` for NULL.
fn constant_text(arg: &Expr) -> Option<Option<String>> {
    if !arg.column_refs().is_empty() || arg.is_volatile() {
        return None;
    }
    let simplifier = ExprSimplifier::new(SimplifyContext::builder().build());
    let text = Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(arg.clone()), DataType::Utf8));
    match simplifier.simplify(text).ok()? {
        Expr::Literal(ScalarValue::Utf8(text), _) => Some(text),
        _ => None,
    }
}

fn answer<F: FnOnce() -> BTreeMap<String, String>>(
    expr: Expr,
    settings: &LazyCell<BTreeMap<String, String>, F>,
) -> DfResult<Transformed<Expr>> {
    let Expr::ScalarFunction(call) = &expr else { return Ok(Transformed::no(expr)) };
    let name = call.func.name();
    if name != "current_setting" && name != "set_config" {
        return Ok(Transformed::no(expr));
    }
    let Some(setting) = call.args.first().and_then(constant_text) else { return Ok(Transformed::no(expr)) };
    // NULL in, NULL out, as PostgreSQL's strict functions give.
    let Some(setting) = setting else { return Ok(Transformed::yes(Expr::Literal(ScalarValue::Utf8(None), None))) };
    let missing_ok = || matches!(call.args.get(1).and_then(constant_text), Some(Some(flag)) if flag == "true");
    let value = match (name, settings.get(&crate::session::canonical_setting(&setting))) {
        ("current_setting", Some(value)) => Some(value.clone()),
        ("current_setting", None) if missing_ok() => None,
        (_, None) => return Err(unrecognized(&setting)),
        (_, Some(current)) => match call.args.get(1).and_then(constant_text) {
            Some(Some(wanted)) if wanted == *current => Some(wanted),
            Some(_) => {
                let message = format!("set_config cannot change \"{setting}\"; use SET {setting} = …");
                return Err(Error::FeatureNotSupported(message).into_datafusion());
            }
            None => return Ok(Transformed::no(expr)),
        },
    };
    Ok(Transformed::yes(Expr::Literal(ScalarValue::Utf8(value), None)))
}
