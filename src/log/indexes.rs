//! `CREATE [UNIQUE] INDEX`, `DROP INDEX` and `ALTER TABLE … ADD CONSTRAINT …
//! UNIQUE`: a table's definition with the index added or removed. The rows
//! are indexed anew when the table's state is laid out for it (where a new
//! UNIQUE index's values are checked).

use super::{Error, IndexChange, NewIndex};
use crate::catalog::{Catalog, IndexDef, RelationDef, RelationKind, UniqueDef, free_name};

/// A table can hold this many indexes and UNIQUE constraints (beside its
/// primary key); the emulated catalog numbers them in that room.
pub const INDEXES_MAX: usize = 31;

/// The definition of the table `change` alters, or `None` when there is
/// nothing to do (`IF NOT EXISTS` / `IF EXISTS`).
pub fn altered(catalog: &Catalog, change: &IndexChange) -> Result<Option<RelationDef>, Error> {
    match change {
        IndexChange::Create { table, index, if_not_exists } => {
            let def = match catalog.get(table) {
                Some(def) if def.kind == RelationKind::Table && def.view.is_none() => def,
                Some(def) => {
                    return Err(Error::WrongObjectType(format!(
                        "cannot create index on {} \"{table}\": only tables have indexes (a stream's _offset and \
                         _ts ranges skip segments)",
                        def.noun()
                    )));
                }
                None => return Err(Error::UndefinedRelation(table.clone())),
            };
            let name = match &index.name {
                Some(name) if taken(catalog, name) || def.has_index_or_constraint(name) => {
                    return match if_not_exists {
                        true => Ok(None),
                        false => Err(Error::DuplicateRelation(name.clone())),
                    };
                }
                Some(name) => name.clone(),
                None => {
                    let suffix = if index.constraint { "key" } else { "idx" };
                    let generated = format!("{}_{}_{suffix}", def.name, index.columns.join("_"));
                    free_name(&generated, |name| taken(catalog, name) || def.has_index_or_constraint(name))
                }
            };
            if def.uniques.len() + def.indexes.len() >= INDEXES_MAX {
                return Err(Error::LimitExceeded(format!(
                    "table \"{table}\" has {INDEXES_MAX} indexes and UNIQUE constraints, as many as it can have"
                )));
            }
            let columns = positions(def, index)?;
            let mut altered = RelationDef::clone(def);
            match index.unique {
                true => altered.uniques.push(UniqueDef {
                    name,
                    columns,
                    nulls_not_distinct: index.nulls_not_distinct,
                    index_only: !index.constraint,
                    generated_name: false,
                }),
                false => altered.indexes.push(IndexDef { name, columns }),
            }
            Ok(Some(altered))
        }
        IndexChange::Drop { name, if_exists } => {
            let holder = catalog
                .relations()
                .find(|def| def.indexes.iter().any(|i| &i.name == name) || def.uniques.iter().any(|u| &u.name == name));
            let Some(def) = holder else {
                if let Some(def) = catalog.relations().find(|def| def.has_index(name)) {
                    return Err(Error::DependentObjects(format!(
                        "cannot drop index {name} because constraint {name} on table {} requires it (a table's \
                         primary key is its rows' identity in Strata)",
                        def.name
                    )));
                }
                return match if_exists {
                    true => Ok(None),
                    false => Err(Error::UndefinedIndex(name.clone())),
                };
            };
            crate::table::foreign_key::refuse_if_unique_referenced(catalog, def, name, &format!("drop index {name}"))?;
            if def.uniques.iter().any(|u| &u.name == name && !u.index_only) {
                return Err(Error::DependentObjects(format!(
                    "cannot drop index {name} because constraint {name} on table {} requires it (drop the \
                     constraint instead)",
                    def.name
                )));
            }
            let mut altered = RelationDef::clone(def);
            altered.indexes.retain(|i| &i.name != name);
            altered.uniques.retain(|u| &u.name != name);
            Ok(Some(altered))
        }
        IndexChange::DropConstraint { table, name, if_exists } => {
            let def = catalog
                .get(table)
                .filter(|def| def.kind == RelationKind::Table && def.view.is_none())
                .ok_or_else(|| Error::UndefinedRelation(table.clone()))?;
            if def.row_id().is_none() && name == &def.primary_key_name() {
                return Err(Error::Unsupported(format!(
                    "cannot drop constraint {name}: a table's primary key is its rows' identity in Strata"
                )));
            }
            let what = format!("drop constraint {name} on table {table}");
            crate::table::foreign_key::refuse_if_unique_referenced(catalog, def, name, &what)?;
            let mut altered = RelationDef::clone(def);
            altered.uniques.retain(|u| &u.name != name || u.index_only);
            altered.checks.retain(|c| &c.name != name);
            altered.foreign_keys.retain(|f| &f.name != name);
            match (altered == **def, if_exists) {
                (false, _) => Ok(Some(altered)),
                (true, true) => Ok(None),
                (true, false) => Err(Error::UndefinedConstraint { relation: table.clone(), name: name.clone() }),
            }
        }
    }
}

/// Whether `name` is a relation's or an index's (every index is a relation
/// in PostgreSQL).
pub fn taken(catalog: &Catalog, name: &str) -> bool {
    catalog.get(name).is_some() || catalog.relations().any(|def| def.has_index(name))
}

fn positions(def: &RelationDef, index: &NewIndex) -> Result<Vec<usize>, Error> {
    let mut positions = Vec::with_capacity(index.columns.len());
    for name in &index.columns {
        let position = def
            .columns
            .iter()
            .position(|c| &c.name == name)
            .filter(|p| Some(*p) != def.row_id())
            .ok_or_else(|| Error::UndefinedColumn { relation: def.name.clone(), column: name.clone() })?;
        if positions.contains(&position) {
            return Err(Error::DuplicateColumn { relation: def.name.clone(), column: name.clone() });
        }
        positions.push(position);
    }
    Ok(positions)
}
