//! `array_length(a, 1)` of an empty array is NULL in PostgreSQL (an empty
//! array has no dimensions) and 0 in DataFusion: DataFusion's function,
//! with 0 read as NULL. `cardinality` stays 0, as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue, cast::as_uint64_array};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature};

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgArrayLength {
    inner: Arc<ScalarUDF>,
}

pub fn array_length() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgArrayLength { inner: datafusion::functions_nested::length::array_length_udf() })
}

impl ScalarUDFImpl for PgArrayLength {
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

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(match self.inner.invoke_with_args(args)? {
            ColumnarValue::Scalar(ScalarValue::UInt64(Some(0))) => ColumnarValue::Scalar(ScalarValue::UInt64(None)),
            ColumnarValue::Array(lengths) if lengths.data_type() == &DataType::UInt64 => {
                let lengths: UInt64Array = as_uint64_array(&lengths)?.iter().map(|n| n.filter(|n| *n > 0)).collect();
                ColumnarValue::Array(Arc::new(lengths) as ArrayRef)
            }
            other => other,
        })
    }
}
