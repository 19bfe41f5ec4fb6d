//! The keys a run of changes touches, and which change is each key's last.
//! Integer keys in a range at most `DENSE_BITS_PER_KEY` times their count
//! (ids, the common case) are kept as one bit per value of the range: a
//! million keys' bits fit in a core's cache, where a hash map of them is a
//! cache miss per insert and probe. Other keys go in a hash set. Either way
//! the changes are walked newest first, so a key's first sighting is its
//! last change.

use datafusion::arrow::array::{Array, BooleanArray, Int64Array};
use datafusion::arrow::row::{Row, Rows};
use datafusion::common::HashSet;

/// Bits of range per touched change a dense set may take (8 bytes each:
/// never more memory than a hash set's entry).
const DENSE_BITS_PER_KEY: u128 = 64;

pub struct Touched<'a> {
    keys: Keys<'a>,
    /// For each change, in order: whether it is the last change of its key.
    pub last: Vec<bool>,
}

enum Keys<'a> {
    /// Integer keys as bits of the range from `min`.
    Dense {
        min: i64,
        bits: Vec<u64>,
    },
    Sparse(HashSet<i64>),
    Rows(HashSet<Row<'a>>),
}

impl<'a> Touched<'a> {
    /// The integer keys of the changes `columns` (in order).
    pub fn ints(columns: &[Int64Array]) -> Touched<'a> {
        let total: usize = columns.iter().map(Array::len).sum();
        let values = || columns.iter().rev().flat_map(|c| c.values().iter().rev().copied());
        let (min, max) = values().fold((i64::MAX, i64::MIN), |(lo, hi), k| (lo.min(k), hi.max(k)));
        let range = if total == 0 { 0 } else { (max as i128 - min as i128 + 1) as u128 };
        let mut last = vec![false; total];
        let keys = if range <= DENSE_BITS_PER_KEY * total as u128 {
            let mut bits = vec![0u64; (range as usize).div_ceil(64)];
            for (slot, key) in last.iter_mut().rev().zip(values()) {
                let at = (key - min) as usize;
                let (word, bit) = (at / 64, 1u64 << (at % 64));
                *slot = bits[word] & bit == 0;
                bits[word] |= bit;
            }
            Keys::Dense { min, bits }
        } else {
            let mut seen = HashSet::with_capacity(total);
            for (slot, key) in last.iter_mut().rev().zip(values()) {
                *slot = seen.insert(key);
            }
            Keys::Sparse(seen)
        };
        Touched { keys, last }
    }

    /// The keys of the changes `keys` (in order), in Arrow's row format.
    pub fn rows(keys: &'a [Rows]) -> Touched<'a> {
        let total: usize = keys.iter().map(Rows::num_rows).sum();
        let mut last = vec![false; total];
        let mut seen = HashSet::with_capacity(total);
        let newest_first = keys.iter().rev().flat_map(|rows| (0..rows.num_rows()).rev().map(|i| rows.row(i)));
        for (slot, key) in last.iter_mut().rev().zip(newest_first) {
            *slot = seen.insert(key);
        }
        Touched { keys: Keys::Rows(seen), last }
    }

    /// Which of the integer `keys` no change touched.
    pub fn untouched_ints(&self, keys: &Int64Array) -> BooleanArray {
        let values = keys.values().iter();
        match &self.keys {
            Keys::Dense { min, bits } => values
                .map(|k| {
                    let at = (*k as i128 - *min as i128) as u128;
                    let word = (at / 64) as usize;
                    Some(k < min || word >= bits.len() || bits[word] & (1 << (at % 64)) == 0)
                })
                .collect(),
            Keys::Sparse(seen) => values.map(|k| Some(!seen.contains(k))).collect(),
            Keys::Rows(_) => unreachable!("integer keys probe integer keys"),
        }
    }

    /// Which of the row-format `keys` no change touched.
    pub fn untouched_rows(&self, keys: &Rows) -> BooleanArray {
        let Keys::Rows(seen) = &self.keys else { unreachable!("row keys probe row keys") };
        keys.iter().map(|k| Some(!seen.contains(&k))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain map, for dense and sparse keys.
    #[test]
    fn marks_each_keys_last_change_and_probes_like_a_map() {
        for (count, distinct, spread) in [(1000usize, 300i64, 1i64), (300_000, 70_000, 1), (50_000, 20_000, 1 << 40)] {
            let keys: Vec<i64> = (0..count as i64).map(|i| ((i * 7919) % distinct - distinct / 2) * spread).collect();
            let columns = [Int64Array::from(keys[..count / 3].to_vec()), Int64Array::from(keys[count / 3..].to_vec())];
            let touched = Touched::ints(&columns);
            let mut last: std::collections::HashMap<i64, usize> = Default::default();
            for (position, key) in keys.iter().enumerate() {
                last.insert(*key, position);
            }
            let expected: Vec<bool> = (0..count).map(|p| last[&keys[p]] == p).collect();
            assert_eq!(touched.last, expected);
            let probe: Vec<i64> = (-distinct..distinct).map(|k| k * spread).chain([i64::MIN, i64::MAX]).collect();
            let untouched = touched.untouched_ints(&Int64Array::from(probe.clone()));
            for (i, key) in probe.iter().enumerate() {
                assert_eq!(untouched.value(i), !last.contains_key(key), "key {key}");
            }
        }
    }

    #[test]
    fn row_keys_mark_the_last_change() {
        use datafusion::arrow::array::StringArray;
        use datafusion::arrow::datatypes::DataType;
        use datafusion::arrow::row::{RowConverter, SortField};
        let converter = RowConverter::new(vec![SortField::new(DataType::Utf8)]).unwrap();
        let batch = |keys: &[&str]| converter.convert_columns(&[std::sync::Arc::new(StringArray::from(keys.to_vec()))]);
        let rows = [batch(&["a", "b", "a"]).unwrap(), batch(&["c", "b"]).unwrap()];
        let touched = Touched::rows(&rows);
        assert_eq!(touched.last, [false, false, true, true, true]);
        let untouched = touched.untouched_rows(&batch(&["a", "z"]).unwrap());
        assert_eq!(untouched, BooleanArray::from(vec![false, true]));
    }
}
