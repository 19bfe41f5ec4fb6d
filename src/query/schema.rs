//! The `public` schema: every relation in the log's catalog, resolved by name
//! at planning time so DDL is visible to the next statement; and, for the
//! statements of a transaction block that created or dropped relations,
//! the catalog as the block changed it.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::RelationTable;
use super::table::TableStateTable;
use crate::catalog::{RelationDef, RelationKind};
use crate::database::{CATALOG_NAME, SCHEMA_NAME};
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
        Ok(self.log.relation(name).map(|def| provider(&self.log, def)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.log.relation(name).is_some()
    }
}

fn provider(log: &Arc<Log>, def: Arc<RelationDef>) -> Arc<dyn TableProvider> {
    match def.kind {
        RelationKind::Table => Arc::new(TableStateTable::new(log.clone(), def)),
        RelationKind::Stream => Arc::new(RelationTable::new(log.clone(), def)),
    }
}

/// `catalogs` with the relations a transaction block created in the
/// database's `public` schema and without those it dropped (see
/// `session/created.rs`), for one of the block's statements.
pub fn with_block_changes(
    catalogs: Arc<dyn CatalogProviderList>,
    log: Arc<Log>,
    created: Vec<Arc<RelationDef>>,
    dropped: Vec<String>,
) -> Arc<dyn CatalogProviderList> {
    Arc::new(Created { inner: catalogs, log, created: created.into(), dropped: dropped.into() })
}

/// A block's own relations in front of `inner` (a catalog list, the
/// database's catalog, or its `public` schema), and those it dropped hidden.
#[derive(Debug)]
struct Created<T: ?Sized> {
    inner: Arc<T>,
    log: Arc<Log>,
    created: Arc<[Arc<RelationDef>]>,
    dropped: Arc<[String]>,
}

impl<T: ?Sized> Created<T> {
    fn over<U: ?Sized>(&self, inner: Arc<U>) -> Created<U> {
        Created { inner, log: self.log.clone(), created: self.created.clone(), dropped: self.dropped.clone() }
    }

    fn find(&self, name: &str) -> Option<&Arc<RelationDef>> {
        self.created.iter().find(|def| def.name == name)
    }

    fn hidden(&self, name: &str) -> bool {
        self.dropped.iter().any(|dropped| dropped == name)
    }
}

impl CatalogProviderList for Created<dyn CatalogProviderList> {
    fn register_catalog(&self, name: String, catalog: Arc<dyn CatalogProvider>) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.inner.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let catalog = self.inner.catalog(name)?;
        Some(if name == CATALOG_NAME { Arc::new(self.over(catalog)) } else { catalog })
    }
}

impl CatalogProvider for Created<dyn CatalogProvider> {
    fn schema_names(&self) -> Vec<String> {
        self.inner.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let schema = self.inner.schema(name)?;
        Some(if name == SCHEMA_NAME { Arc::new(self.over(schema)) } else { schema })
    }
}

#[async_trait]
impl SchemaProvider for Created<dyn SchemaProvider> {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.retain(|name| !self.hidden(name));
        names.extend(self.created.iter().map(|def| def.name.clone()));
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.find(name) {
            Some(def) => Ok(Some(provider(&self.log, def.clone()))),
            None if self.hidden(name) => Ok(None),
            None => self.inner.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.find(name).is_some() || (!self.hidden(name) && self.inner.table_exist(name))
    }
}
