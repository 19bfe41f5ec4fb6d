//! Where sealed history lives: an `object_store` (a local directory by
//! default). On the local store a put is also fsynced, file and directory,
//! because the WAL it replaces is deleted once the put returns.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{Error, Result};

/// The URL DataFusion resolves segment files through.
pub const STORE_URL: &str = "strata://store/";

#[derive(Debug, Clone)]
pub struct SegmentStore {
    pub objects: Arc<dyn ObjectStore>,
    /// Set for the local directory store, whose writes need an fsync.
    local_root: Option<PathBuf>,
}

impl SegmentStore {
    pub fn local(root: PathBuf) -> Result<SegmentStore> {
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let objects = LocalFileSystem::new_with_prefix(&root).map_err(|e| Error::Store(e.to_string()))?;
        Ok(SegmentStore { objects: Arc::new(objects), local_root: Some(root) })
    }

    /// A store in memory, for tests: nothing survives the process.
    pub fn in_memory() -> SegmentStore {
        SegmentStore { objects: Arc::new(object_store::memory::InMemory::new()), local_root: None }
    }

    /// Stores `bytes` at `path`, durably, replacing any object there atomically.
    pub async fn put(&self, path: &str, bytes: Bytes) -> Result<()> {
        let location = StorePath::from(path);
        self.objects
            .put(&location, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| Error::Store(format!("{path}: {e}")))?;
        if let Some(root) = &self.local_root {
            // The file, then every directory from its own up to the root: a
            // directory the put created is durable only once its parent is synced.
            let file = root.join(path);
            let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
            sync(&file).map_err(|e| Error::io(&file, e))?;
            for dir in file.ancestors().skip(1) {
                sync(dir).map_err(|e| Error::io(dir, e))?;
                if dir == root {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Paths of every object under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        use futures::TryStreamExt;
        let objects: Vec<_> = self
            .objects
            .list(Some(&StorePath::from(prefix)))
            .try_collect()
            .await
            .map_err(|e| Error::Store(format!("{prefix}: {e}")))?;
        Ok(objects.into_iter().map(|o| o.location.to_string()).collect())
    }

    /// The object at `path`, or `None` if there is none.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        match self.objects.get(&StorePath::from(path)).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(|e| Error::Store(format!("{path}: {e}")))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Store(format!("{path}: {e}"))),
        }
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        match self.objects.delete(&StorePath::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::Store(format!("{path}: {e}"))),
        }
    }
}
