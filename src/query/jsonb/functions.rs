//! JSONB functions evaluated on parsed values: the input cast
//! (`'…'::jsonb`), containment (`@>`, `<@`), key existence (`?`, `?|`,
//! `?&`), `jsonb_typeof`, `jsonb_array_length` and `jsonb_extract_path[_text]`.
//! `->`, `->>`, `#>` and `#>>` use `datafusion-functions-json`, which reads
//! a path without building the whole value (see `operators.rs`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::value::Json;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Text to JSONB, as a cast does: checked and normalized.
    In,
    Contains,
    Exists,
    ExistsAny,
    ExistsAll,
    TypeOf,
    ArrayLength,
    ExtractPath,
    ExtractPathText,
    /// `->` and `->>` by a key that is text but not a literal name: a key
    /// of an object only (`datafusion-functions-json` takes `'1'` as an
    /// index into an array, which PostgreSQL's `->` does not).
    ObjectField,
    ObjectFieldText,
    /// `||` with a JSONB operand.
    Concat,
    /// `-` of a JSONB value: by a key (text), keys (text[]) or an index (integer).
    Delete,
}

const ALL: [Kind; 13] = [
    Kind::In,
    Kind::Contains,
    Kind::Exists,
    Kind::ExistsAny,
    Kind::ExistsAll,
    Kind::TypeOf,
    Kind::ArrayLength,
    Kind::ExtractPath,
    Kind::ExtractPathText,
    Kind::ObjectField,
    Kind::ObjectFieldText,
    Kind::Concat,
    Kind::Delete,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::In => "jsonb_in",
            Kind::Contains => "jsonb_contains",
            Kind::Exists => "jsonb_exists",
            Kind::ExistsAny => "jsonb_exists_any",
            Kind::ExistsAll => "jsonb_exists_all",
            Kind::TypeOf => "jsonb_typeof",
            Kind::ArrayLength => "jsonb_array_length",
            Kind::ExtractPath => "jsonb_extract_path",
            Kind::ExtractPathText => "jsonb_extract_path_text",
            Kind::ObjectField => "jsonb_object_field",
            Kind::ObjectFieldText => "jsonb_object_field_text",
            Kind::Concat => "jsonb_concat",
            Kind::Delete => "jsonb_delete",
        }
    }

    fn output(self) -> DataType {
        match self {
            Kind::Contains | Kind::Exists | Kind::ExistsAny | Kind::ExistsAll => DataType::Boolean,
            Kind::ArrayLength => DataType::Int32,
            Kind::In
            | Kind::TypeOf
            | Kind::ExtractPath
            | Kind::ExtractPathText
            | Kind::ObjectField
            | Kind::ObjectFieldText
            | Kind::Concat
            | Kind::Delete => DataType::Utf8,
        }
    }

    fn signature(self) -> Signature {
        match self {
            Kind::In | Kind::TypeOf | Kind::ArrayLength => Signature::any(1, Volatility::Immutable),
            Kind::Contains
            | Kind::Exists
            | Kind::ExistsAny
            | Kind::ExistsAll
            | Kind::ObjectField
            | Kind::ObjectFieldText
            | Kind::Concat
            | Kind::Delete => Signature::any(2, Volatility::Immutable),
            Kind::ExtractPath | Kind::ExtractPathText => Signature::variadic_any(Volatility::Immutable),
        }
    }
}

pub fn functions() -> Vec<ScalarUDF> {
    ALL.into_iter().map(|kind| ScalarUDF::new_from_impl(JsonbFunction { kind, signature: kind.signature() })).collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonbFunction {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for JsonbFunction {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.kind.output())
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> DfResult<FieldRef> {
        let field = Field::new(self.name(), self.kind.output(), true);
        Ok(Arc::new(match self.kind {
            Kind::In | Kind::ExtractPath | Kind::ObjectField | Kind::Concat | Kind::Delete => super::tag(field),
            _ => field,
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let Some((first, rest)) = arrays.split_first() else {
            return Err(Error::Syntax(format!("{} needs an argument", self.name())).into_datafusion());
        };
        let documents = text(first)?;
        let documents = documents.as_string::<i32>();
        let result: ArrayRef = match self.kind {
            Kind::In => Arc::new(per_document(documents, |json| json.to_text())?),
            Kind::Contains => with_text(documents, &rest[0], |json, other| Ok(json.contains(&parse(other)?)))?,
            Kind::Exists => with_text(documents, &rest[0], |json, key| Ok(json.has_key(key)))?,
            Kind::ExistsAny | Kind::ExistsAll => {
                let lists = key_lists(&rest[0], rows)?;
                let out: BooleanArray = (0..rows)
                    .map(|row| {
                        let (true, Some(keys)) = (documents.is_valid(row), &lists[row]) else { return Ok(None) };
                        let json = parse(documents.value(row))?;
                        let mut present = keys.iter().flatten().map(|key| json.has_key(key));
                        Ok(Some(if self.kind == Kind::ExistsAny { present.any(|p| p) } else { present.all(|p| p) }))
                    })
                    .collect::<DfResult<_>>()?;
                Arc::new(out)
            }
            Kind::TypeOf => Arc::new(per_document(documents, |json| json.type_name())?),
            Kind::ArrayLength => {
                let out: Int32Array = (0..rows)
                    .map(|row| documents.is_valid(row).then(|| array_length(documents.value(row))).transpose())
                    .collect::<DfResult<_>>()?;
                Arc::new(out)
            }
            Kind::ObjectField | Kind::ObjectFieldText => {
                let keys = text(&rest[0])?;
                let keys = keys.as_string::<i32>();
                let out: StringArray = (0..rows)
                    .map(|row| {
                        if documents.is_null(row) || keys.is_null(row) {
                            return Ok(None);
                        }
                        let json = parse(documents.value(row))?;
                        let found = json.field(keys.value(row));
                        Ok(match self.kind {
                            Kind::ObjectField => found.map(Json::to_text),
                            _ => found.and_then(Json::as_text),
                        })
                    })
                    .collect::<DfResult<_>>()?;
                Arc::new(out)
            }
            Kind::Concat => {
                let others = text(&rest[0])?;
                let others = others.as_string::<i32>();
                let out: StringArray = (0..rows)
                    .map(|row| {
                        if documents.is_null(row) || others.is_null(row) {
                            return Ok(None);
                        }
                        let joined = parse(documents.value(row))?.concat(parse(others.value(row))?);
                        Ok(Some(joined.to_text()))
                    })
                    .collect::<DfResult<_>>()?;
                Arc::new(out)
            }
            Kind::Delete => Arc::new(delete(documents, &rest[0], rows)?),
            Kind::ExtractPath | Kind::ExtractPathText => {
                let steps: Vec<ArrayRef> = rest.iter().map(text).collect::<DfResult<_>>()?;
                let out: StringArray = (0..rows)
                    .map(|row| {
                        let path: Option<Vec<&str>> = steps
                            .iter()
                            .map(|s| {
                                let s = s.as_string::<i32>();
                                s.is_valid(row).then(|| s.value(row))
                            })
                            .collect();
                        let (true, Some(path)) = (documents.is_valid(row), path) else { return Ok(None) };
                        let json = parse(documents.value(row))?;
                        let found = json.at_path(&path);
                        Ok(match self.kind {
                            Kind::ExtractPath => found.map(Json::to_text),
                            _ => found.and_then(Json::as_text),
                        })
                    })
                    .collect::<DfResult<_>>()?;
                Arc::new(out)
            }
        };
        Ok(ColumnarValue::Array(result))
    }
}

/// `f(document)` per row, NULL where the document is.
fn per_document<T: AsRef<str>>(documents: &StringArray, f: impl Fn(Json) -> T) -> DfResult<StringArray> {
    (0..documents.len())
        .map(|row| documents.is_valid(row).then(|| parse(documents.value(row)).map(&f)).transpose())
        .collect::<DfResult<_>>()
}

/// `test(document, argument)` per row, NULL where either is NULL.
fn with_text(
    documents: &StringArray,
    argument: &ArrayRef,
    test: impl Fn(Json, &str) -> DfResult<bool>,
) -> DfResult<ArrayRef> {
    let argument = text(argument)?;
    let argument = argument.as_string::<i32>();
    let out: BooleanArray = (0..documents.len())
        .map(|row| {
            if documents.is_null(row) || argument.is_null(row) {
                return Ok(None);
            }
            test(parse(documents.value(row))?, argument.value(row)).map(Some)
        })
        .collect::<DfResult<_>>()?;
    Ok(Arc::new(out))
}

/// A column of any string type (or NULL) as `Utf8`.
fn text(array: &ArrayRef) -> DfResult<ArrayRef> {
    Ok(datafusion::arrow::compute::cast(array, &DataType::Utf8)?)
}

pub(super) fn parse(text: &str) -> DfResult<Json> {
    Json::parse(text).map_err(|e| Error::from(e).into_datafusion())
}

fn array_length(text: &str) -> DfResult<i32> {
    match parse(text)? {
        Json::Array(items) => Ok(items.len() as i32),
        Json::Object(_) => {
            Err(Error::InvalidParameterValue("cannot get array length of a non-array".into()).into_datafusion())
        }
        _ => Err(Error::InvalidParameterValue("cannot get array length of a scalar".into()).into_datafusion()),
    }
}

/// `documents - what` per row: `what` an integer (an index), a text[]
/// (keys) or text (a key).
fn delete(documents: &StringArray, what: &ArrayRef, rows: usize) -> DfResult<StringArray> {
    let failed = |why: &str| Error::InvalidParameterValue(why.into()).into_datafusion();
    if what.data_type().is_integer() {
        let indexes = datafusion::arrow::compute::cast(what, &DataType::Int64)?;
        let indexes = indexes.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        return (0..rows)
            .map(|row| {
                if documents.is_null(row) || indexes.is_null(row) {
                    return Ok(None);
                }
                let json = parse(documents.value(row))?.without_index(indexes.value(row)).map_err(failed)?;
                Ok(Some(json.to_text()))
            })
            .collect();
    }
    let lists = match what.data_type() {
        DataType::List(_) => key_lists(what, rows)?,
        _ => {
            let keys = text(what)?;
            keys.as_string::<i32>().iter().map(|k| k.map(|k| vec![Some(k.to_string())])).collect()
        }
    };
    (0..rows)
        .map(|row| {
            let (true, Some(keys)) = (documents.is_valid(row), &lists[row]) else { return Ok(None) };
            let keys: Vec<&str> = keys.iter().flatten().map(String::as_str).collect();
            let json = parse(documents.value(row))?.without_keys(&keys).map_err(failed)?;
            Ok(Some(json.to_text()))
        })
        .collect()
}

/// The keys of `?|` and `?&`, per row: a `text[]` (`ARRAY['a', 'b']`).
fn key_lists(array: &ArrayRef, rows: usize) -> DfResult<Vec<Option<Vec<Option<String>>>>> {
    let list = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().clone(),
        DataType::Null => return Ok(vec![None; rows]),
        other => {
            return Err(Error::Syntax(format!("the keys of ?| and ?& are a text[], not {other}")).into_datafusion());
        }
    };
    (0..rows)
        .map(|row| {
            if list.is_null(row) {
                return Ok(None);
            }
            let keys = text(&list.value(row))?;
            Ok(Some(keys.as_string::<i32>().iter().map(|k| k.map(str::to_owned)).collect()))
        })
        .collect()
}
