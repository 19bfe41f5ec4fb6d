//! CREATE TABLE and CREATE STREAM inside a transaction block, as
//! PostgreSQL's DDL is transactional (SQLAlchemy's `create_all`, migration
//! tools): the relation is the block's own until COMMIT creates it in the
//! same commit as the block's writes to it; ROLLBACK, or a failure, leaves
//! no trace of it, and other sessions do not see it before. Until then it
//! goes by a provisional id, which the log writer replaces (see
//! [`PROVISIONAL_RELATION_IDS`]).

use std::sync::Arc;

use super::{Outcome, Session, done};
use crate::catalog::{RelationDef, RelationKind};
use crate::error::{Error, Result};
use crate::log::{Change, Offset, PROVISIONAL_RELATION_IDS, ReadView, RelationId};
use crate::table::state::TableState;

impl Session {
    /// Adds the relation `change` creates to the open block.
    pub(super) fn create_in_block(&mut self, mut change: Change, tag: &str) -> Result<Outcome> {
        let Change::CreateRelation { name, if_not_exists, provisional, .. } = &mut change else {
            return Err(Error::Internal("not a relation's creation".into()));
        };
        // The block's view is fixed now if no statement fixed it yet.
        let view = self.read_view();
        if view.catalog.get(name).is_some() || self.db.log.relation(name).is_some() {
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

    /// A relation by name as this session's statements see it: one the open
    /// block created, else the log's.
    pub(super) fn relation(&self, name: &str) -> Option<Arc<RelationDef>> {
        let created = self.transaction.as_ref().and_then(|transaction| {
            let transaction = transaction.lock().expect("transaction lock");
            transaction.view.as_ref()?.catalog.get(name).filter(|def| def.id.is_provisional()).cloned()
        });
        created.or_else(|| self.db.log.relation(name))
    }
}

/// The relations an open block created, as its view holds them.
pub(super) fn created_in(view: &ReadView) -> Vec<Arc<RelationDef>> {
    view.catalog.relations().filter(|def| def.id.is_provisional()).cloned().collect()
}
