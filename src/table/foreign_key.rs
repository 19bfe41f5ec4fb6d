//! FOREIGN KEY constraints, checked on a table write once it is applied to
//! the state it commits on: every row added must name a key its referenced
//! table has, and every key a write removes must be named by no row. The
//! log writer checks each write in commit order, so a concurrent commit
//! cannot delete a key a committed row names; a transaction block checks
//! its own writes as it makes them, so its statement fails, as in
//! PostgreSQL, rather than its COMMIT.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

use super::state::{Key, TableState, TableStates};
use crate::catalog::{Catalog, ForeignKeyDef, RelationDef};
use crate::log::{Error, RelationId};

/// Checks the write of `deletes` and `inserts` (user columns) to table
/// `relation`, already applied to `tables`.
pub fn check_write(
    catalog: &Catalog,
    tables: &TableStates,
    relation: RelationId,
    deletes: &RecordBatch,
    inserts: &RecordBatch,
) -> Result<(), Error> {
    let Some(table) = tables.get(relation) else { return Ok(()) };
    let def = &table.codec.def;
    if inserts.num_rows() > 0 {
        for (number, foreign) in def.foreign_keys.iter().enumerate() {
            let parent = tables
                .get(foreign.parent)
                .ok_or_else(|| Error::UndefinedRelation(parent_name(catalog, foreign.parent)))?;
            let parent_unique = foreign.parent_unique(&parent.codec.def);
            for (row, key) in table.codec.referenced_keys(number, inserts)?.into_iter().enumerate() {
                if key.is_some_and(|key| !holds(parent, parent_unique, &key)) {
                    return Err(Error::ForeignKeyViolation {
                        table: def.name.clone(),
                        constraint: foreign.name.clone(),
                        message: format!(
                            "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                            def.name, foreign.name
                        ),
                        detail: format!(
                            "{} is not present in table \"{}\".",
                            table.codec.describe_reference(number, inserts, row),
                            parent.codec.def.name
                        ),
                    });
                }
            }
        }
    }
    if deletes.num_rows() == 0 {
        return Ok(());
    }
    for (child, number, foreign) in references_to(catalog, relation) {
        let Some(state) = tables.get(child.id) else { continue };
        // The values the deleted rows held in the key the foreign key names.
        let parent_unique = foreign.parent_unique(def);
        let keys = match parent_unique {
            Some(unique) => table.codec.unique_values(unique, deletes)?,
            None => table.codec.keys(deletes)?.into_iter().map(Some).collect(),
        };
        for (row, key) in keys.into_iter().enumerate() {
            // Held again (an update that kept the value), or never named (a NULL).
            let Some(key) = key.filter(|key| !holds(table, parent_unique, key)) else { continue };
            if state.references_to(number, &key) > 0 {
                let described = match parent_unique {
                    Some(unique) => table.codec.describe_unique(unique, deletes, row),
                    None => table.codec.describe_key(deletes, row),
                };
                return Err(Error::ForeignKeyViolation {
                    table: child.name.clone(),
                    constraint: foreign.name.clone(),
                    message: format!(
                        "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                        def.name, foreign.name, child.name
                    ),
                    detail: format!("{described} is still referenced from table \"{}\".", child.name),
                });
            }
        }
    }
    Ok(())
}

/// Whether a row of `table` holds `key` in its primary key, or in UNIQUE
/// constraint `unique`.
fn holds(table: &TableState, unique: Option<usize>, key: &Key) -> bool {
    match unique {
        Some(unique) => table.uniques[unique].contains_key(key),
        None => table.rows.contains_key(key),
    }
}

fn parent_name(catalog: &Catalog, id: RelationId) -> String {
    catalog.by_id(id).map_or_else(|| format!("with id {}", id.0), |def| def.name.clone())
}

/// Every foreign key that references `relation`: its table, number and definition.
fn references_to(
    catalog: &Catalog,
    relation: RelationId,
) -> impl Iterator<Item = (&Arc<RelationDef>, usize, &ForeignKeyDef)> {
    catalog.relations().flat_map(move |child| {
        child
            .foreign_keys
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.parent == relation)
            .map(move |(n, f)| (child, n, f))
    })
}

/// Tables whose foreign keys reference `relation` (other than itself), with
/// the constraint's name.
pub fn referencing(catalog: &Catalog, relation: RelationId) -> Vec<(String, String)> {
    references_to(catalog, relation)
        .filter(|(child, ..)| child.id != relation)
        .map(|(child, _, f)| (child.name.clone(), f.name.clone()))
        .collect()
}

/// Refuses to drop UNIQUE constraint or index `unique` of table `def` (by
/// `what`: `DROP INDEX`, a column it is on) while a foreign key names it,
/// as PostgreSQL refuses (2BP01).
pub fn refuse_if_unique_referenced(
    catalog: &Catalog,
    def: &RelationDef,
    unique: &str,
    what: &str,
) -> Result<(), Error> {
    let named = references_to(catalog, def.id).find(|(_, _, f)| f.parent_unique.as_deref() == Some(unique));
    match named {
        Some((child, _, foreign)) => Err(Error::DependentObjects(format!(
            "cannot {what} because constraint {} on table {} depends on index {unique}",
            foreign.name, child.name
        ))),
        None => Ok(()),
    }
}

/// Why DROP TABLE `table` is refused while `constraint` of table `child`
/// references it (PostgreSQL's DETAIL and HINT in the message).
pub fn drop_refused(table: &str, constraint: &str, child: &str) -> Error {
    Error::DependentObjects(format!(
        "cannot drop table {table} because other objects depend on it: constraint {constraint} on table {child} \
         depends on it (use DROP … CASCADE to drop the constraint too)"
    ))
}
