//! `sum` as PostgreSQL types it: the sum of BIGINTs is NUMERIC, so it never
//! overflows (DataFusion's is a BIGINT that wraps around silently:
//! `sum` of `i64::MAX` and 1 was `-9223372036854775808`). Sums of smaller
//! integers stay BIGINT and of NUMERIC NUMERIC, as in PostgreSQL; of
//! floats DOUBLE PRECISION (PostgreSQL's sum of REAL is REAL).
//!
//! DataFusion's own `sum` does the work, with its argument cast as it
//! goes: a BIGINT is summed as `NUMERIC(29,0)` (DataFusion gives a decimal
//! sum ten more digits than its argument's nineteen), a smaller integer as
//! BIGINT. Arguments are not coerced in the plan: coercion runs again on a
//! coerced plan, and an INT coerced to BIGINT would then be summed as
//! NUMERIC. A continuous view sums them as it sums NUMERIC.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue, plan_err};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature, Volatility,
};

/// The type of a sum of BIGINTs: every BIGINT's 19 digits and ten more,
/// as DataFusion types a decimal sum.
const SUM_OF_BIGINT: DataType = DataType::Decimal128(29, 0);

/// The `sum` to register in a session in place of DataFusion's.
pub fn sum() -> AggregateUDF {
    AggregateUDF::new_from_impl(PostgresSum {
        inner: sum_udaf(),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PostgresSum {
    inner: Arc<AggregateUDF>,
    /// Types are chosen by [`PostgresSum::coerce_types`].
    signature: Signature,
}

impl PostgresSum {
    fn inner(&self) -> &dyn AggregateUDFImpl {
        self.inner.inner().as_ref()
    }
}

/// What an integer argument is cast to as it is summed: the sum's type.
fn summed_as(argument: &DataType) -> Option<DataType> {
    match argument {
        DataType::Int64 => Some(SUM_OF_BIGINT),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Some(DataType::Int64),
        _ => None,
    }
}

impl AggregateUDFImpl for PostgresSum {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// DataFusion's coercions for unsigned integers and floats; signed
    /// integers as they are (see [`summed_as`]).
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let [argument] = arg_types else {
            return plan_err!("sum takes one argument, not {}", arg_types.len());
        };
        let coerced = match argument {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => argument.clone(),
            DataType::Null => DataType::Int64,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => DataType::UInt64,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
            | DataType::Duration(_)
            | DataType::Interval(_) => argument.clone(),
            other => return plan_err!("function sum({other}) does not exist"),
        };
        Ok(vec![coerced])
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types.first().and_then(summed_as) {
            Some(summed) => Ok(summed),
            None => self.inner().return_type(arg_types),
        }
    }

    fn is_nullable(&self) -> bool {
        self.inner().is_nullable()
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let cast = cast_to(&args);
        Ok(CastingAccumulator::around(self.inner().accumulator(args)?, cast))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        self.inner().state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn GroupsAccumulator>> {
        let cast = cast_to(&args);
        let inner = self.inner().create_groups_accumulator(args)?;
        Ok(match cast {
            Some(to) => Box::new(CastingGroupsAccumulator { inner, to }),
            None => inner,
        })
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let cast = cast_to(&args);
        Ok(CastingAccumulator::around(self.inner().create_sliding_accumulator(args)?, cast))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner().order_sensitivity()
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner().reverse_expr()
    }

    fn default_value(&self, data_type: &DataType) -> DfResult<ScalarValue> {
        self.inner().default_value(data_type)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner().documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner().set_monotonicity(data_type)
    }
}

/// The type the argument is cast to on its way into DataFusion's
/// accumulator, which is built for the sum's type.
fn cast_to(args: &AccumulatorArgs) -> Option<DataType> {
    args.expr_fields.first().and_then(|field| summed_as(field.data_type()))
}

fn cast_first(values: &[ArrayRef], to: &DataType) -> DfResult<Vec<ArrayRef>> {
    let mut values = values.to_vec();
    if let Some(first) = values.first_mut() {
        *first = widened(first, to)?;
    }
    Ok(values)
}

/// An integer column as the sum's type. Every integer fits, so BIGINT to
/// NUMERIC is a plain widening (Arrow's cast would check each value
/// against the precision).
fn widened(values: &ArrayRef, to: &DataType) -> DfResult<ArrayRef> {
    use datafusion::arrow::datatypes::{Decimal128Type, Int64Type};
    match (values.data_type(), to) {
        (DataType::Int64, DataType::Decimal128(precision, scale)) => {
            let wide = values.as_primitive::<Int64Type>().unary::<_, Decimal128Type>(i128::from);
            Ok(Arc::new(wide.with_precision_and_scale(*precision, *scale)?))
        }
        _ => Ok(datafusion::arrow::compute::cast(values, to)?),
    }
}

#[derive(Debug)]
struct CastingAccumulator {
    inner: Box<dyn Accumulator>,
    to: DataType,
}

impl CastingAccumulator {
    /// `inner`, casting its argument to `cast` if there is one.
    fn around(inner: Box<dyn Accumulator>, cast: Option<DataType>) -> Box<dyn Accumulator> {
        match cast {
            Some(to) => Box::new(CastingAccumulator { inner, to }),
            None => inner,
        }
    }
}

impl Accumulator for CastingAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.inner.update_batch(&cast_first(values, &self.to)?)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.inner.retract_batch(&cast_first(values, &self.to)?)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        self.inner.evaluate()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        self.inner.state()
    }

    /// States are of the sum's type already.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        self.inner.merge_batch(states)
    }
}

struct CastingGroupsAccumulator {
    inner: Box<dyn GroupsAccumulator>,
    to: DataType,
}

impl GroupsAccumulator for CastingGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.inner.update_batch(&cast_first(values, &self.to)?, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        self.inner.evaluate(emit_to)
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        self.inner.merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        self.inner.convert_to_state(&cast_first(values, &self.to)?, opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}
