//! `avg` as PostgreSQL types it: the average of integers is NUMERIC
//! (DataFusion's is DOUBLE PRECISION: `avg(id)` of 1 and 2 was `1.5`,
//! PostgreSQL's `1.5000000000000000`, and a driver read a float where it
//! reads a decimal). Other arguments are DataFusion's as they are.
//!
//! Integers are summed exactly (128 bits hold any sum of BIGINTs a table
//! could have) and divided at the end to 16 places, rounded half away from
//! zero, as NUMERIC division is (see `pg_arithmetic.rs`; PostgreSQL varies
//! the places with the quotient's size, an Arrow column has one scale). A
//! continuous view averages them with [`integer_average`] too.
//! `avg(DISTINCT …)` of integers too.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, i256};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue, plan_err};
use datafusion::functions_aggregate::average::avg_udaf;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF, Signature,
    Volatility,
};

/// The places of an average of integers.
const SCALE: i8 = 16;

/// The type of an average of integers of type `argument`: NUMERIC with
/// [`SCALE`] places and the argument's whole digits (an average lies
/// between its values), so products of averages keep their places.
fn average_type(argument: &DataType) -> DataType {
    let whole_digits = match argument {
        DataType::Int8 | DataType::UInt8 => 3,
        DataType::Int16 | DataType::UInt16 => 5,
        DataType::Int32 | DataType::UInt32 => 10,
        _ => 19,
    };
    DataType::Decimal128(whole_digits + SCALE as u8, SCALE)
}

/// The `avg` to register in a session in place of DataFusion's.
pub fn avg() -> AggregateUDF {
    AggregateUDF::new_from_impl(PostgresAvg {
        inner: avg_udaf(),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PostgresAvg {
    inner: Arc<AggregateUDF>,
    /// Types are chosen by [`PostgresAvg::coerce_types`].
    signature: Signature,
}

impl PostgresAvg {
    fn inner(&self) -> &dyn AggregateUDFImpl {
        self.inner.inner().as_ref()
    }
}

/// Integers averaged as NUMERIC.
fn is_integer(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

fn averages_integers(args: &AccumulatorArgs) -> bool {
    args.expr_fields.first().is_some_and(|f| is_integer(f.data_type()))
}

impl AggregateUDFImpl for PostgresAvg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Integers as they are (coercion runs again on a coerced plan, so a
    /// cast added here would be planned twice); the rest as DataFusion
    /// coerces them.
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        match arg_types {
            [argument] if is_integer(argument) => Ok(vec![argument.clone()]),
            // DataFusion's avg coerces by its signature.
            [argument] => {
                let fields = [Arc::new(Field::new("value", argument.clone(), true))];
                let coerced =
                    datafusion::logical_expr::type_coercion::functions::fields_with_udf(&fields, self.inner.as_ref())?;
                Ok(coerced.iter().map(|f| f.data_type().clone()).collect())
            }
            _ => plan_err!("avg takes one argument, not {}", arg_types.len()),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types.first() {
            Some(argument) if is_integer(argument) => Ok(average_type(argument)),
            _ => self.inner().return_type(arg_types),
        }
    }

    fn is_nullable(&self) -> bool {
        self.inner().is_nullable()
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        if !averages_integers(&args) {
            return self.inner().accumulator(args);
        }
        let output = args.return_field.data_type().clone();
        if args.is_distinct {
            return Ok(Box::new(DistinctIntegerAvg { values: HashSet::new(), output }));
        }
        Ok(Box::new(IntegerAvg { sum: 0, count: 0, output }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        if !args.input_fields.first().is_some_and(|f| is_integer(f.data_type())) {
            return self.inner().state_fields(args);
        }
        if args.is_distinct {
            let values = Field::new_list_field(DataType::Int64, true);
            return Ok(vec![Arc::new(Field::new_list(format_state_name(args.name, "avg distinct"), values, false))]);
        }
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "sum"), DataType::Decimal128(38, 0), true)),
            Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, true)),
        ])
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        match averages_integers(&args) {
            true => !args.is_distinct,
            false => self.inner().groups_accumulator_supported(args),
        }
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn GroupsAccumulator>> {
        match averages_integers(&args) {
            true => Ok(Box::new(IntegerGroupsAvg {
                sums: Vec::new(),
                counts: Vec::new(),
                output: args.return_field.data_type().clone(),
            })),
            false => self.inner().create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        match averages_integers(&args) {
            true => self.accumulator(args),
            false => self.inner().create_sliding_accumulator(args),
        }
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
}

/// `sum / count` at [`SCALE`] places, rounded half away from zero; `None`
/// past NUMERIC's 38 digits (no average of integers gets there).
pub fn integer_average(sum: i128, count: i64) -> Option<i128> {
    let scaled = i256::from_i128(sum).checked_mul(i256::from_i128(10i128.pow(SCALE as u32)))?;
    let count = i256::from_i128(count as i128);
    let (quotient, remainder) = (scaled.checked_div(count)?, scaled.checked_rem(count)?);
    let twice = remainder.checked_mul(i256::from_i128(2))?.wrapping_abs();
    let rounded = match twice >= count.wrapping_abs() {
        true if scaled < i256::ZERO => quotient.checked_sub(i256::ONE)?,
        true => quotient.checked_add(i256::ONE)?,
        false => quotient,
    };
    rounded.to_i128()
}

fn overflow() -> DataFusionError {
    DataFusionError::ArrowError(
        Box::new(datafusion::arrow::error::ArrowError::ArithmeticOverflow("numeric field overflow".into())),
        None,
    )
}

/// An integer column as BIGINTs.
fn as_int64(values: &ArrayRef) -> DfResult<Int64Array> {
    Ok(datafusion::arrow::compute::cast(values, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// The average of one group (no grouping, or a window frame).
#[derive(Debug)]
struct IntegerAvg {
    sum: i128,
    count: i64,
    output: DataType,
}

/// An average as a value of `output` (a NUMERIC of [`SCALE`] places).
fn average_value(sum: i128, count: i64, output: &DataType) -> DfResult<ScalarValue> {
    let DataType::Decimal128(precision, scale) = output else { unreachable!("an average's type is NUMERIC") };
    let value = match count {
        0 => None,
        count => Some(integer_average(sum, count).ok_or_else(overflow)?),
    };
    Ok(ScalarValue::Decimal128(value, *precision, *scale))
}

impl Accumulator for IntegerAvg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let values = as_int64(&values[0])?;
        self.sum += values.iter().flatten().map(i128::from).sum::<i128>();
        self.count += (values.len() - values.null_count()) as i64;
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let values = as_int64(&values[0])?;
        self.sum -= values.iter().flatten().map(i128::from).sum::<i128>();
        self.count -= (values.len() - values.null_count()) as i64;
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        average_value(self.sum, self.count, &self.output)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Decimal128(Some(self.sum), 38, 0), ScalarValue::Int64(Some(self.count))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let sums = states[0].as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
        let counts = states[1].as_primitive::<Int64Type>();
        self.sum += sums.iter().flatten().sum::<i128>();
        self.count += counts.iter().flatten().sum::<i64>();
        Ok(())
    }
}

/// Averages by group, for GROUP BY.
#[derive(Debug)]
struct IntegerGroupsAvg {
    sums: Vec<i128>,
    counts: Vec<i64>,
    output: DataType,
}

impl IntegerGroupsAvg {
    fn grow(&mut self, groups: usize) {
        self.sums.resize(groups, 0);
        self.counts.resize(groups, 0);
    }
}

impl GroupsAccumulator for IntegerGroupsAvg {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let values = as_int64(&values[0])?;
        if values.null_count() == 0 && opt_filter.is_none() {
            for (value, group) in values.values().iter().zip(group_indices) {
                self.sums[*group] += *value as i128;
                self.counts[*group] += 1;
            }
            return Ok(());
        }
        for (row, group) in group_indices.iter().enumerate() {
            let included = values.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if included {
                self.sums[*group] += values.value(row) as i128;
                self.counts[*group] += 1;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sums);
        let counts = emit_to.take_needed(&mut self.counts);
        let averages = sums
            .into_iter()
            .zip(counts)
            .map(|(sum, count)| match count {
                0 => Ok(None),
                count => integer_average(sum, count).map(Some).ok_or_else(overflow),
            })
            .collect::<DfResult<Decimal128Array>>()?;
        let DataType::Decimal128(precision, scale) = self.output else { unreachable!("an average's type is NUMERIC") };
        Ok(Arc::new(averages.with_precision_and_scale(precision, scale)?))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let sums = Decimal128Array::from(emit_to.take_needed(&mut self.sums)).with_precision_and_scale(38, 0)?;
        let counts = Int64Array::from(emit_to.take_needed(&mut self.counts));
        Ok(vec![Arc::new(sums), Arc::new(counts)])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        self.grow(total_num_groups);
        let sums = values[0].as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
        let counts = values[1].as_primitive::<Int64Type>();
        for (row, group) in group_indices.iter().enumerate() {
            self.sums[*group] += sums.value(row);
            self.counts[*group] += counts.value(row);
        }
        Ok(())
    }

    /// Each row as a group of its own (an aggregation that finds few rows
    /// per group skips the partial step).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        let values = as_int64(&values[0])?;
        let included = |row: usize| values.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
        let sums: Decimal128Array =
            (0..values.len()).map(|row| Some(if included(row) { values.value(row) as i128 } else { 0 })).collect();
        let counts: Int64Array = (0..values.len()).map(|row| Some(included(row) as i64)).collect();
        Ok(vec![Arc::new(sums.with_precision_and_scale(38, 0)?), Arc::new(counts)])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * 16 + self.counts.capacity() * 8
    }
}

/// `avg(DISTINCT …)` of integers: the distinct values, averaged exactly.
#[derive(Debug)]
struct DistinctIntegerAvg {
    values: HashSet<i64>,
    output: DataType,
}

impl Accumulator for DistinctIntegerAvg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.values.extend(as_int64(&values[0])?.iter().flatten());
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let sum = self.values.iter().map(|v| *v as i128).sum();
        average_value(sum, self.values.len() as i64, &self.output)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.iter().map(|v| ScalarValue::Int64(Some(*v))).collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int64))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.values.extend(as_int64(&list)?.iter().flatten());
        }
        Ok(())
    }
}
