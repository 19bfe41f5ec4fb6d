//! `current_setting(name [, missing_ok])`: a session parameter's value as
//! SHOW gives it, which tools read (`server_version_num`, `search_path`,
//! `TimeZone`). An unknown name is 42704, as in PostgreSQL (asyncpg asks
//! for `jit` and goes on without it on that error), or NULL with
//! `missing_ok`. The session hands its settings to each statement in
//! [`StrataOptions`](crate::session::time_zone::StrataOptions).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use crate::error::Error;

pub fn current_setting() -> ScalarUDF {
    ScalarUDF::new_from_impl(CurrentSetting {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Stable,
        ),
    })
}

/// The session's settings as one text, for [`StrataOptions`]
/// (its fields are text).
///
/// [`StrataOptions`]: crate::session::time_zone::StrataOptions
pub fn encode(settings: &BTreeMap<String, String>) -> String {
    serde_json::to_string(settings).unwrap_or_default()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let encoded = args
            .config_options
            .extensions
            .get::<crate::session::time_zone::StrataOptions>()
            .map(|o| o.settings.clone())
            .unwrap_or_default();
        let settings: BTreeMap<String, String> = serde_json::from_str(&encoded).unwrap_or_default();
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let names = args.args[0].to_array(args.number_rows)?;
        let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let missing_ok = match args.args.get(1) {
            Some(flag) => Some(flag.to_array(args.number_rows)?),
            None => None,
        };
        let mut values = Vec::with_capacity(names.len());
        for row in 0..names.len() {
            if names.is_null(row) {
                values.push(None);
                continue;
            }
            let name = names.value(row).to_lowercase();
            let name = if name == "time zone" { "timezone".to_string() } else { name };
            match settings.get(&name) {
                Some(value) => values.push(Some(value.clone())),
                None if missing_ok
                    .as_ref()
                    .is_some_and(|m| m.as_boolean().is_valid(row) && m.as_boolean().value(row)) =>
                {
                    values.push(None)
                }
                None => {
                    let message = format!("unrecognized configuration parameter \"{}\"", names.value(row));
                    return Err(Error::UndefinedObject(message).into_datafusion());
                }
            }
        }
        let values: StringArray = values.into_iter().collect();
        match scalar {
            true => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&values, 0)?)),
            false => Ok(ColumnarValue::Array(Arc::new(values))),
        }
    }
}
