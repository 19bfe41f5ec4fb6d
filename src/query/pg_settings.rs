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

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

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

/// A parameter's name as the session keeps it.
fn canonical(name: &str) -> String {
    let name = name.to_lowercase();
    if name == "time zone" { "timezone".to_string() } else { name }
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

    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        config: &datafusion::common::config::ConfigOptions,
    ) -> DfResult<datafusion::logical_expr::LogicalPlan> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::logical_expr::Expr;
        let encoded = config
            .extensions
            .get::<crate::session::time_zone::StrataOptions>()
            .map(|o| o.settings.clone())
            .unwrap_or_default();
        let settings: BTreeMap<String, String> = serde_json::from_str(&encoded).unwrap_or_default();
        let text = |e: &Expr| match e {
            Expr::Literal(ScalarValue::Utf8(Some(t)) | ScalarValue::Utf8View(Some(t)), _) => Some(t.clone()),
            _ => None,
        };
        let answer = |expr: Expr| -> DfResult<Transformed<Expr>> {
            let Expr::ScalarFunction(call) = &expr else { return Ok(Transformed::no(expr)) };
            let name = call.func.name();
            if name != "current_setting" && name != "set_config" {
                return Ok(Transformed::no(expr));
            }
            let Some(setting) = call.args.first().and_then(text) else { return Ok(Transformed::no(expr)) };
            let value = match (name, settings.get(&canonical(&setting))) {
                ("current_setting", Some(value)) => Some(value.clone()),
                ("current_setting", None)
                    if matches!(call.args.get(1), Some(Expr::Literal(ScalarValue::Boolean(Some(true)), _))) =>
                {
                    None
                }
                (_, None) => return Err(unrecognized(&setting)),
                (_, Some(current)) => match call.args.get(1).and_then(text) {
                    Some(wanted) if wanted == *current => Some(wanted),
                    Some(_) => {
                        let message = format!("set_config cannot change \"{setting}\"; use SET {setting} = …");
                        return Err(Error::FeatureNotSupported(message).into_datafusion());
                    }
                    None => return Ok(Transformed::no(expr)),
                },
            };
            Ok(Transformed::yes(Expr::Literal(ScalarValue::Utf8(value), None)))
        };
        let names = |plan: &datafusion::logical_expr::LogicalPlan| {
            datafusion::logical_expr::expr_rewriter::NamePreserver::new(plan)
        };
        plan.transform_up_with_subqueries(|plan| {
            let preserver = names(&plan);
            plan.map_expressions(|expr| {
                let name = preserver.save(&expr);
                expr.transform_up(answer).map(|t| t.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }
}
