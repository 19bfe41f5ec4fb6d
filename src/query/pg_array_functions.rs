//! DataFusion's array functions where PostgreSQL answers differently, each
//! DataFusion's own with its result corrected:
//! - `array_length(a, 1)` of an empty array is NULL (it has no dimensions;
//!   DataFusion: 0). `cardinality` stays 0, as in PostgreSQL.
//! - `a[i]` with `i` below 1 is NULL (PostgreSQL's arrays start at 1;
//!   DataFusion counts a negative index from the end).
//! - `array_remove(a, NULL)` removes the NULL elements (DataFusion: NULL,
//!   which an UPDATE would have stored).
//! - `array_to_string` writes elements as PostgreSQL prints them (`t`,
//!   `2026-11-24 12:00:00+00`; DataFusion: `true`, `2026-11-24T12:00:00Z`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt64Array};
use datafusion::arrow::compute::kernels::cmp::lt;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue, cast::as_uint64_array};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fix {
    EmptyLengthIsNull,
    IndexFromOne,
    RemoveNulls,
    ElementsAsText,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Corrected {
    inner: Arc<ScalarUDF>,
    fix: Fix,
}

pub fn array_length() -> ScalarUDF {
    corrected(datafusion::functions_nested::length::array_length_udf(), Fix::EmptyLengthIsNull)
}

/// `a[i]`, planned by `pg_array_operators` (the subscript does not go by name).
pub fn array_element() -> Arc<ScalarUDF> {
    static ELEMENT: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    ELEMENT
        .get_or_init(|| {
            Arc::new(corrected(datafusion::functions_nested::extract::array_element_udf(), Fix::IndexFromOne))
        })
        .clone()
}

pub fn array_remove() -> ScalarUDF {
    corrected(datafusion::functions_nested::remove::array_remove_udf(), Fix::RemoveNulls)
}

pub fn array_to_string() -> ScalarUDF {
    corrected(datafusion::functions_nested::string::array_to_string_udf(), Fix::ElementsAsText)
}

fn corrected(inner: Arc<ScalarUDF>, fix: Fix) -> ScalarUDF {
    ScalarUDF::new_from_impl(Corrected { inner, fix })
}

impl ScalarUDFImpl for Corrected {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arguments: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.inner().coerce_types(arguments)
    }

    fn return_type(&self, arguments: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arguments)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        match self.fix {
            Fix::EmptyLengthIsNull => Ok(match self.inner.invoke_with_args(args)? {
                ColumnarValue::Scalar(ScalarValue::UInt64(Some(0))) => ColumnarValue::Scalar(ScalarValue::UInt64(None)),
                ColumnarValue::Array(lengths) if lengths.data_type() == &DataType::UInt64 => {
                    let lengths: UInt64Array =
                        as_uint64_array(&lengths)?.iter().map(|n| n.filter(|n| *n > 0)).collect();
                    ColumnarValue::Array(Arc::new(lengths) as ArrayRef)
                }
                other => other,
            }),
            Fix::IndexFromOne => {
                let rows = args.number_rows;
                let index = datafusion::arrow::compute::cast(&args.args[1].to_array(rows)?, &DataType::Int64)?;
                let below_one: BooleanArray = lt(&index, &ScalarValue::Int64(Some(1)).to_scalar()?)?;
                let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
                let found = self.inner.invoke_with_args(args)?.to_array(rows)?;
                let found = datafusion::arrow::compute::nullif(&found, &below_one)?;
                super::shaped(scalar, found)
            }
            Fix::ElementsAsText => {
                let mut args = args;
                let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
                let lists = args.args[0].to_array(args.number_rows)?;
                if let DataType::List(_) = lists.data_type() {
                    let lists = lists.as_list::<i32>();
                    let texts = crate::pg_text::element_texts(lists.values())?;
                    let field = Arc::new(datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true));
                    let (_, offsets, _, nulls) = lists.clone().into_parts();
                    let texts: ArrayRef =
                        Arc::new(datafusion::arrow::array::ListArray::try_new(field, offsets, Arc::new(texts), nulls)?);
                    args.args[0] = super::shaped(scalar, texts)?;
                    let fields: Vec<FieldRef> = args.arg_fields.clone();
                    args.arg_fields = fields
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| match i {
                            0 => Arc::new(f.as_ref().clone().with_data_type(args.args[0].data_type())),
                            _ => f,
                        })
                        .collect();
                }
                self.inner.invoke_with_args(args)
            }
            Fix::RemoveNulls => match &args.args[1] {
                ColumnarValue::Scalar(element) if element.is_null() => {
                    let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
                    let lists = args.args[0].to_array(args.number_rows)?;
                    super::shaped(scalar, without_nulls(&lists)?)
                }
                _ => self.inner.invoke_with_args(args),
            },
        }
    }
}

/// Each list without its NULL elements.
fn without_nulls(lists: &ArrayRef) -> DfResult<ArrayRef> {
    let DataType::List(_) = lists.data_type() else { return Ok(lists.clone()) };
    let lists = lists.as_list::<i32>();
    let rows: Vec<Option<ArrayRef>> = (0..lists.len())
        .map(|row| {
            lists
                .is_valid(row)
                .then(|| {
                    let values = lists.value(row);
                    let present = datafusion::arrow::compute::is_not_null(&values)?;
                    datafusion::arrow::compute::filter(&values, &present)
                })
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<Option<&dyn Array>> = rows.iter().map(|r| r.as_deref()).collect();
    let field = match lists.data_type() {
        DataType::List(field) => field.clone(),
        _ => unreachable!("a list"),
    };
    let values: Vec<&dyn Array> = refs.iter().flatten().copied().collect();
    let values = match values.is_empty() {
        true => datafusion::arrow::array::new_empty_array(field.data_type()),
        false => datafusion::arrow::compute::concat(&values)?,
    };
    let lengths = rows.iter().map(|r| r.as_ref().map_or(0, |a| a.len()));
    let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths(lengths);
    Ok(Arc::new(datafusion::arrow::array::ListArray::try_new(field, offsets, values, lists.nulls().cloned())?))
}
