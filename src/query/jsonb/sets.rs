//! What PostgreSQL's JSONB aggregates and set-returning functions become
//! here (the rewrite is `sql/jsonb_sets.rs`):
//!
//! - `jsonb_agg(x)` is `jsonb_agg_finish(array_agg(to_jsonb(x)))`, and
//!   `jsonb_object_agg(k, v)` is `jsonb_object_agg_finish(array_agg(
//!   jsonb_build_object(k, v)))`: DataFusion's `array_agg` does the
//!   grouping, ORDER BY, DISTINCT and FILTER (and continuous views keep it
//!   up to date); these functions turn its list into one JSONB value.
//! - `jsonb_array_elements(j)`, `jsonb_array_elements_text(j)` and
//!   `jsonb_object_keys(j)` are `unnest` of the list the `*_list` function
//!   here returns; `jsonb_each(j)` is two of them unnested side by side,
//!   keys and values.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::functions::parse;
use super::value::Json;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetFunction {
    /// A list of JSONB texts as one JSONB array; or of `{value, its JSONB}`
    /// structs, of their second fields (for `jsonb_agg(DISTINCT x)`, whose
    /// DISTINCT and order are the values', not their JSON texts').
    AggFinish,
    /// A list of JSONB objects merged into one (a later key wins).
    ObjectAggFinish,
    /// An array's elements, as JSONB.
    Elements,
    /// An array's elements, as text (`->>` of each).
    ElementsText,
    /// An object's keys.
    Keys,
    /// An object's keys for `jsonb_each` and `jsonb_each_text` (as
    /// [`SetFunction::Keys`], but their error names them).
    EachKeys,
    EachTextKeys,
    /// An object's values, as JSONB (beside [`SetFunction::Keys`] for `jsonb_each`).
    Values,
    /// An object's values, as text (for `jsonb_each_text`).
    ValuesText,
    /// Its argument, marked as JSONB: `unnest` does not keep the mark of a
    /// list's items.
    Mark,
}

const ALL: [SetFunction; 10] = [
    SetFunction::AggFinish,
    SetFunction::ObjectAggFinish,
    SetFunction::Elements,
    SetFunction::ElementsText,
    SetFunction::Keys,
    SetFunction::Values,
    SetFunction::ValuesText,
    SetFunction::EachKeys,
    SetFunction::EachTextKeys,
    SetFunction::Mark,
];

impl SetFunction {
    pub fn name(self) -> &'static str {
        match self {
            SetFunction::AggFinish => "jsonb_agg_finish",
            SetFunction::ObjectAggFinish => "jsonb_object_agg_finish",
            SetFunction::Elements => "jsonb_array_elements_list",
            SetFunction::ElementsText => "jsonb_array_elements_text_list",
            SetFunction::Keys => "jsonb_object_keys_list",
            SetFunction::Values => "jsonb_object_values_list",
            SetFunction::ValuesText => "jsonb_object_values_text_list",
            SetFunction::EachKeys => "jsonb_each_keys_list",
            SetFunction::EachTextKeys => "jsonb_each_text_keys_list",
            SetFunction::Mark => "jsonb_mark",
        }
    }

    /// Whether it returns one JSONB value (else a list to unnest).
    fn finishes(self) -> bool {
        matches!(self, SetFunction::AggFinish | SetFunction::ObjectAggFinish | SetFunction::Mark)
    }

    /// Whether its values (or the list's items) are JSONB.
    fn jsonb_out(self) -> bool {
        matches!(
            self,
            SetFunction::AggFinish | SetFunction::ObjectAggFinish | SetFunction::Elements | SetFunction::Values
        )
    }
}

pub fn functions() -> Vec<ScalarUDF> {
    ALL.into_iter()
        .map(|kind| {
            let signature = if kind.finishes() {
                Signature::any(1, Volatility::Immutable)
            } else {
                Signature::string(1, Volatility::Immutable)
            };
            ScalarUDF::new_from_impl(JsonbSet { kind, signature })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonbSet {
    kind: SetFunction,
    signature: Signature,
}

impl JsonbSet {
    fn item_field(&self) -> Field {
        let item = Field::new_list_field(DataType::Utf8, true);
        if self.kind.jsonb_out() { super::tag(item) } else { item }
    }
}

impl ScalarUDFImpl for JsonbSet {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind.finishes() {
            true => DataType::Utf8,
            false => DataType::List(Arc::new(self.item_field())),
        })
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(match self.kind.finishes() {
            true => super::tag(Field::new(self.name(), DataType::Utf8, true)),
            false => Field::new(self.name(), DataType::List(Arc::new(self.item_field())), true),
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(match self.kind {
            SetFunction::Mark => input,
            kind if kind.finishes() => self.finish(&input)?,
            _ => self.expand(&input)?,
        }))
    }
}

impl JsonbSet {
    fn finish(&self, lists: &ArrayRef) -> DfResult<ArrayRef> {
        let lists = match lists.data_type() {
            DataType::List(_) => lists.as_list::<i32>(),
            DataType::Null => return Ok(Arc::new(StringArray::new_null(lists.len()))),
            other => return exec_err!("{} of {other}", self.name()),
        };
        let out: StringArray = (0..lists.len())
            .map(|row| {
                if lists.is_null(row) {
                    return Ok(None);
                }
                let items = lists.value(row);
                let items = match items.as_struct_opt() {
                    Some(pairs) => pairs.column(1).clone(),
                    None => items,
                };
                let items = datafusion::arrow::compute::cast(&items, &DataType::Utf8)?;
                let items = items.as_string::<i32>();
                let texts = (0..items.len()).map(|i| if items.is_null(i) { "null" } else { items.value(i) });
                if self.kind == SetFunction::AggFinish {
                    // Each item is `to_jsonb`'s normalized text already: the
                    // array is them joined, as `Json::Array` writes it.
                    return Ok(Some(format!("[{}]", texts.collect::<Vec<_>>().join(", "))));
                }
                let objects = texts.map(parse).collect::<DfResult<Vec<Json>>>()?;
                Ok(Some(merged(objects)?.to_text()))
            })
            .collect::<DfResult<_>>()?;
        Ok(Arc::new(out))
    }

    fn expand(&self, texts: &ArrayRef) -> DfResult<ArrayRef> {
        let texts = datafusion::arrow::compute::cast(texts, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let mut out = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(self.item_field()));
        for row in 0..texts.len() {
            if texts.is_null(row) {
                out.append(false);
                continue;
            }
            let json = parse(texts.value(row))?;
            let items: Vec<Option<String>> = match (self.kind, json) {
                (SetFunction::Elements, Json::Array(items)) => items.iter().map(|i| Some(i.to_text())).collect(),
                (SetFunction::ElementsText, Json::Array(items)) => items.iter().map(Json::as_text).collect(),
                (SetFunction::Keys | SetFunction::EachKeys | SetFunction::EachTextKeys, Json::Object(entries)) => {
                    entries.into_iter().map(|(k, _)| Some(k)).collect()
                }
                (SetFunction::Values, Json::Object(entries)) => {
                    entries.iter().map(|(_, v)| Some(v.to_text())).collect()
                }
                (SetFunction::ValuesText, Json::Object(entries)) => entries.iter().map(|(_, v)| v.as_text()).collect(),
                (SetFunction::Elements | SetFunction::ElementsText, other) => {
                    return Err(wrong_kind(&format!("extract elements from {}", kind_phrase(&other))));
                }
                (SetFunction::Keys, other) => {
                    return Err(wrong_kind(&format!("call jsonb_object_keys on {}", kind_phrase(&other))));
                }
                _ => return Err(wrong_kind(&format!("call {} on a non-object", self.user_name()))),
            };
            for item in items {
                out.values().append_option(item);
            }
            out.append(true);
        }
        Ok(Arc::new(out.finish()))
    }

    /// The PostgreSQL function a values list stands for, for messages.
    fn user_name(&self) -> &'static str {
        match self.kind {
            SetFunction::ValuesText | SetFunction::EachTextKeys => "jsonb_each_text",
            _ => "jsonb_each",
        }
    }
}

/// PostgreSQL's `jsonb_object_agg`: the objects' entries in order, a later
/// value of a key replacing an earlier one.
fn merged(objects: Vec<Json>) -> DfResult<Json> {
    let mut entries = Vec::new();
    for object in objects {
        match object {
            Json::Object(pairs) => entries.extend(pairs),
            Json::Null => {}
            other => return exec_err!("jsonb_object_agg of {}", other.type_name()),
        }
    }
    Ok(Json::object(entries))
}

/// "a scalar", "an object", "an array", as PostgreSQL words it.
fn kind_phrase(json: &Json) -> &'static str {
    match json {
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
        _ => "a scalar",
    }
}

fn wrong_kind(message: &str) -> datafusion::error::DataFusionError {
    Error::InvalidParameterValue(format!("cannot {message}")).into_datafusion()
}
