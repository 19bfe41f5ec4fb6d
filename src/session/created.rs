//! CREATE, DROP and ALTER of tables and streams inside a transaction
//! block, as PostgreSQL's DDL is transactional (SQLAlchemy's `create_all`
//! and `drop_all`, migration tools): a relation created is the block's own
//! until COMMIT creates it in the same commit as the block's writes to it,
//! one dropped is gone for the block's statements and dropped at COMMIT,
//! and one altered is seen altered by them and altered at COMMIT;
//! ROLLBACK, or a failure, leaves no trace of any, and other sessions see
//! none before. A created relation goes by a provisional id until then,
//! which the log writer replaces (see [`PROVISIONAL_RELATION_IDS`]).

use std::sync::Arc;

use super::{Outcome, Session, done};
use crate::catalog::{RelationDef, RelationKind};
use crate::error::{Error, Result};
use crate::log::{Alteration, Change, ColumnChange, Offset, PROVISIONAL_RELATION_IDS, ReadView, RelationId};
use crate::table::state::TableState;

impl Session {
    /// Adds the relation `change` creates to the open block.
    pub(super) fn create_in_block(&mut self, mut change: Change, tag: &str) -> Result<Outcome> {
        let Change::CreateRelation { name, if_not_exists, provisional, .. } = &mut change else {
            return Err(Error::Internal("not a relation's creation".into()));
        };
        // The block's view is fixed now if no statement fixed it yet.
        let _ = self.read_view();
        if self.relation(name).is_some() {
            return match if_not_exists {
                true => Ok(done(tag)),
                false => Err(Error::DuplicateRelation(name.clone())),
            };
        }
        let transaction = self.transaction.clone().ok_or(Error::NoActiveTransaction("CREATE"))?;
        let mut transaction = transaction.lock().expect("transaction lock");
        // Unique among the block's changes (a rolled-back one is gone).
        let id = RelationId(PROVISIONAL_RELATION_IDS + transaction.changes.len() as u64);
        *provisional = Some(id);
        let def = change.created_relation(id, Offset::ZERO).expect("a relation's creation");
        let view = transaction.view.as_mut().expect("fixed above");
        if def.kind == RelationKind::Table {
            let table = TableState::new(Arc::new(def.clone()))?;
            Arc::make_mut(&mut view.tables).by_relation.insert(id, table);
        }
        Arc::make_mut(&mut view.catalog).insert_provisional(def);
        transaction.changes.push(change);
        Ok(done(tag))
    }

    /// Drops `names` in the open block; a name no relation has is an error
    /// unless `if_exists`.
    pub(super) fn drop_in_block(
        &mut self,
        names: Vec<String>,
        if_exists: bool,
        cascade: bool,
        tag: &str,
    ) -> Result<Outcome> {
        let _ = self.read_view();
        let transaction = self.transaction.clone().ok_or(Error::NoActiveTransaction("DROP"))?;
        for name in names.clone() {
            let Some(def) = self.relation(&name) else {
                match if_exists {
                    true => continue,
                    false => return Err(Error::UndefinedRelation(name)),
                }
            };
            let mut transaction = transaction.lock().expect("transaction lock");
            let view = transaction.view.as_mut().expect("fixed above");
            for (child, constraint) in crate::table::foreign_key::referencing(&view.catalog, def.id) {
                if names.contains(&child) {
                    continue;
                }
                return Err(match cascade {
                    false => Error::Storage(crate::table::foreign_key::drop_refused(&name, &constraint, &child)),
                    true => Error::FeatureNotSupported(format!(
                        "DROP … CASCADE of a table another references (constraint {constraint} on table {child}) \
                         cannot run inside a transaction block yet"
                    )),
                });
            }
            Arc::make_mut(&mut view.catalog).remove(def.id);
            Arc::make_mut(&mut view.tables).by_relation.remove(&def.id);
            transaction.dropped.push(name.clone());
            transaction.changes.push(Change::DropRelation { name, if_exists, cascade });
        }
        Ok(done(tag))
    }

    /// A relation by name as this session's statements see it: one the open
    /// block created, none for one it dropped, else the log's.
    pub(super) fn relation(&self, name: &str) -> Option<Arc<RelationDef>> {
        if let Some(transaction) = &self.transaction {
            let transaction = transaction.lock().expect("transaction lock");
            let changed = transaction.view.as_ref().and_then(|view| view.catalog.get(name));
            if let Some(def) = changed.filter(|def| def.id.is_provisional() || transaction.altered.contains(&def.id)) {
                return Some(def.clone());
            }
            if transaction.dropped.iter().any(|dropped| dropped == name) {
                return None;
            }
        }
        self.db.log.relation(name)
    }

    /// What the open block changed of the catalog its statements plan
    /// against: the relations it created or altered, and the names it
    /// dropped.
    pub(super) fn block_catalog_changes(&self, view: &ReadView) -> Option<(Vec<Arc<RelationDef>>, Vec<String>)> {
        let transaction = self.transaction.as_ref()?.lock().expect("transaction lock");
        let changed: Vec<_> = view
            .catalog
            .relations()
            .filter(|def| def.id.is_provisional() || transaction.altered.contains(&def.id))
            .cloned()
            .collect();
        (!changed.is_empty() || !transaction.dropped.is_empty()).then(|| (changed, transaction.dropped.clone()))
    }

    /// Makes ALTER `change` in the open block: its statements see the
    /// relation altered, and COMMIT alters it in the same commit as the
    /// block's writes, checked again on the catalog then.
    pub(super) fn alter_in_block(&mut self, change: Change, tag: &str) -> Result<Outcome> {
        let _ = self.read_view();
        let transaction = self.transaction.clone().ok_or(Error::NoActiveTransaction("ALTER"))?;
        let mut transaction = transaction.lock().expect("transaction lock");
        let view = transaction.view.as_ref().expect("fixed above");
        // After every row the block reads, and after its earlier ALTERs (a
        // column is laid out as of the offset of the ALTER that added it).
        let at = Offset(view.offset.0 + 1 + transaction.altered.len() as u64);
        let Some(alteration) = crate::log::alteration(&view.catalog, &change, at)? else { return Ok(done(tag)) };
        let (relation, former) = match &alteration {
            Alteration::Rename { relation, .. } => (*relation, view.catalog.by_id(*relation).map(|d| d.name.clone())),
            Alteration::Replace(def) => (def.id, None),
        };
        let adds_or_drops =
            matches!(&change, Change::AlterColumns { change, .. } if !matches!(change, ColumnChange::Rename { .. }));
        if adds_or_drops && transaction.wrote(relation) {
            // The block's rows are laid out for the columns before, and the
            // log lays out a commit's rows for the columns after.
            return Err(Error::FeatureNotSupported(format!(
                "{tag} … ADD or DROP COLUMN of a relation this transaction block already wrote to is not \
                 supported yet (alter it before writing to it, or in a block of its own)"
            )));
        }
        let view = transaction.view.as_mut().expect("fixed above");
        match alteration {
            Alteration::Rename { relation, name } => {
                Arc::make_mut(&mut view.catalog).rename(relation, &name);
                let def = view.catalog.by_id(relation).cloned();
                if let (Some(def), Some(table)) = (def, Arc::make_mut(&mut view.tables).by_relation.get_mut(&relation))
                {
                    table.rename(def)?;
                }
            }
            Alteration::Replace(def) => {
                let def = Arc::new(*def);
                if let Some(table) = view.tables.get(def.id) {
                    let reshaped = table.reshaped(def.clone(), at)?;
                    Arc::make_mut(&mut view.tables).by_relation.insert(def.id, reshaped);
                }
                Arc::make_mut(&mut view.catalog).replace(RelationDef::clone(&def));
            }
        }
        transaction.dropped.extend(former);
        transaction.altered.push(relation);
        transaction.changes.push(change);
        Ok(done(tag))
    }
}
