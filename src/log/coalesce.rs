//! A transaction's writes, one per statement, joined where that changes
//! nothing: consecutive appends to one stream become one, and so do
//! consecutive writes to one table when the later ones retract nothing
//! (their rows are added after the first's retractions and additions, as
//! they were). A batch of 4,000 single-row INSERTs was 4,000 entries in its
//! commit record, each encoded, checked and applied on its own.

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::record_batch::RecordBatch;

use super::{Change, Result};
use crate::table::TableWrite;

/// `changes` with each run of joinable neighbours made one change.
pub fn coalesced(changes: Vec<Change>) -> Result<Vec<Change>> {
    if changes.len() < 2 {
        return Ok(changes);
    }
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    // The rows of the run `out`'s last change heads, not yet joined.
    let mut run: Vec<RecordBatch> = Vec::new();
    for change in changes {
        if let Some(last) = out.last()
            && let Some(rows) = joinable(last, &change)
        {
            run.push(rows.clone());
            continue;
        }
        join_run(out.last_mut(), &mut run)?;
        out.push(change);
    }
    join_run(out.last_mut(), &mut run)?;
    Ok(out)
}

/// The rows `next` adds after `last`, if the two can be one change.
fn joinable<'a>(last: &Change, next: &'a Change) -> Option<&'a RecordBatch> {
    match (last, next) {
        (Change::Append { relation, rows }, Change::Append { relation: next_relation, rows: next_rows })
            if relation == next_relation && rows.schema() == next_rows.schema() =>
        {
            Some(next_rows)
        }
        (Change::TableWrite(write), Change::TableWrite(next_write))
            if write.relation == next_write.relation
                && next_write.deletes.num_rows() == 0
                && write.inserts.schema() == next_write.inserts.schema() =>
        {
            Some(&next_write.inserts)
        }
        _ => None,
    }
}

/// Adds the rows of `run` to `head`'s (appended or inserted) rows.
fn join_run(head: Option<&mut Change>, run: &mut Vec<RecordBatch>) -> Result<()> {
    if run.is_empty() {
        return Ok(());
    }
    let rows = match head {
        Some(Change::Append { rows, .. }) => rows,
        Some(Change::TableWrite(TableWrite { inserts, .. })) => inserts,
        _ => unreachable!("a run follows an append or a table write"),
    };
    let mut batches = Vec::with_capacity(run.len() + 1);
    batches.push(rows.clone());
    batches.append(run);
    *rows = concat_batches(&rows.schema(), &batches)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::log::RelationId;

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    fn append(relation: u64, values: &[i64]) -> Change {
        Change::Append { relation: RelationId(relation), rows: rows(values) }
    }

    fn write(relation: u64, deletes: &[i64], inserts: &[i64]) -> Change {
        Change::TableWrite(TableWrite {
            relation: RelationId(relation),
            deletes: rows(deletes),
            expected: vec![None; deletes.len()],
            inserts: rows(inserts),
        })
    }

    /// Each change as (relation, deleted keys, added keys).
    fn shape(changes: &[Change]) -> Vec<(u64, Vec<i64>, Vec<i64>)> {
        let keys =
            |batch: &RecordBatch| batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec();
        changes
            .iter()
            .map(|change| match change {
                Change::Append { relation, rows } => (relation.0, vec![], keys(rows)),
                Change::TableWrite(w) => (w.relation.0, keys(&w.deletes), keys(&w.inserts)),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn neighbours_join_where_their_order_of_effects_is_kept() {
        let changes = vec![
            append(1, &[1]),
            append(1, &[2]),
            append(2, &[3]),
            write(3, &[], &[10]),
            write(3, &[], &[11]),
            // Retracts a row: applied after the rows before it, so not joined.
            write(3, &[10], &[12]),
            write(3, &[], &[13]),
            append(1, &[4]),
            write(3, &[], &[14]),
        ];
        assert_eq!(
            shape(&coalesced(changes).unwrap()),
            vec![
                (1, vec![], vec![1, 2]),
                (2, vec![], vec![3]),
                (3, vec![], vec![10, 11]),
                (3, vec![10], vec![12, 13]),
                (1, vec![], vec![4]),
                (3, vec![], vec![14]),
            ]
        );
    }
}
