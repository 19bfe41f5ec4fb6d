//! The `public` schema: every relation in the log's catalog, resolved by name
//! at planning time so DDL is visible to the next statement.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::RelationTable;
use super::table::TableStateTable;
use crate::catalog::RelationKind;
use crate::log::Log;

#[derive(Debug)]
pub struct RelationSchema {
    log: Arc<Log>,
}

impl RelationSchema {
    pub fn new(log: Arc<Log>) -> RelationSchema {
        RelationSchema { log }
    }
}

#[async_trait]
impl SchemaProvider for RelationSchema {
    fn table_names(&self) -> Vec<String> {
        self.log.catalog().names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self.log.relation(name).map(|def| match def.kind {
            RelationKind::Table => Arc::new(TableStateTable::new(self.log.clone(), def)) as _,
            RelationKind::Stream => Arc::new(RelationTable::new(self.log.clone(), def)) as _,
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.log.relation(name).is_some()
    }
}
