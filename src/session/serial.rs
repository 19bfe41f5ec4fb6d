//! Starting the counters of a relation's SERIAL columns (see `write::serial`).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::sql::sqlparser::ast::Ident;

use super::Session;
use crate::catalog::RelationDef;
use crate::error::Result;
use crate::write::serial::{Counters, serial_positions};

impl Session {
    /// The counters of `def`'s SERIAL columns, each started (once per
    /// server run) after the largest value its column holds.
    pub(super) async fn serial_counters(&mut self, def: &RelationDef) -> Result<Counters> {
        let mut counters = Vec::new();
        for position in serial_positions(def) {
            let counter = match self.db.serials.started(def, position) {
                Some(counter) => counter,
                None => {
                    let largest = self.largest_value(def, position).await?;
                    self.db.serials.start(def, position, largest)
                }
            };
            counters.push((position, counter));
        }
        Ok(counters)
    }

    /// The largest value of `def`'s column at `position` that committed
    /// (whatever this session's block sees; a relation the block created
    /// holds only the block's rows), 0 for none.
    async fn largest_value(&mut self, def: &RelationDef, position: usize) -> Result<i64> {
        let column = Ident::with_quote('"', &def.columns[position].name);
        let sql = format!("SELECT CAST(max({column}) AS BIGINT) FROM {}", Ident::with_quote('"', &def.name));
        let batches = match def.id.is_provisional() {
            true => Box::pin(self.query(&sql)).await?,
            false => Box::pin(Session::new(self.db.clone()).query(&sql)).await?,
        };
        let largest = batches.first().filter(|batch| batch.num_rows() > 0).and_then(|batch| {
            let values = batch.column(0).as_primitive::<Int64Type>();
            values.is_valid(0).then(|| values.value(0))
        });
        Ok(largest.unwrap_or(0))
    }
}
