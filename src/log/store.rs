//! Where sealed history lives: an `object_store`, a local directory by
//! default or an S3-compatible bucket by configuration. On the local store a
//! put is also fsynced, file and directory, because the WAL it replaces is
//! deleted once the put returns; an S3 PUT is durable once it is answered.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};

use super::{Error, Result};
use crate::config::Config;

/// The file in the data directory naming the store its WAL goes with.
const STORE_MARK_FILE: &str = "store_url";
/// What that file holds for the data directory's own `store/` directory
/// (relative, so the directory can move).
const LOCAL_STORE_MARK: &str = "local";

/// The URL DataFusion resolves segment files through.
pub const STORE_URL: &str = "strata://store/";

#[derive(Debug, Clone)]
pub struct SegmentStore {
    pub objects: Arc<dyn ObjectStore>,
    /// Set for the local directory store, whose writes need an fsync.
    local_root: Option<PathBuf>,
}

impl SegmentStore {
    /// The store `config` names: `store_url` if set, else `<data_dir>/store`.
    /// A data directory stays paired with the store it was first opened
    /// with: its WAL continues the history sealed there, so opening it with
    /// another store is refused rather than read as an empty history.
    pub fn open(config: &Config) -> Result<SegmentStore> {
        check_store_mark(&config.data_dir, store_name(config))?;
        match &config.store_url {
            None => SegmentStore::local(config.data_dir.join("store")),
            Some(url) => SegmentStore::from_url(url),
        }
    }

    /// Records the pairing [`SegmentStore::open`] checks, once the store has
    /// shown it works (its manifest read or written): a start that failed on
    /// a mistyped bucket leaves the directory free for the right one.
    pub fn record_pairing(config: &Config) -> Result<()> {
        let mark = config.data_dir.join(STORE_MARK_FILE);
        if mark.exists() {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&mark)?;
            std::io::Write::write_all(&mut file, format!("{}\n", store_name(config)).as_bytes())?;
            file.sync_all()?;
            std::fs::File::open(&config.data_dir)?.sync_all()
        };
        write().map_err(|e| Error::io(&mark, e))
    }

    /// `s3://bucket[/prefix]` (connection settings from the standard `AWS_*`
    /// environment variables) or `file:///directory`.
    pub fn from_url(url: &str) -> Result<SegmentStore> {
        let unsupported =
            || Error::Store(format!("unsupported store URL \"{url}\": use s3://bucket/prefix or file:///directory"));
        let parsed = url::Url::parse(url).map_err(|_| unsupported())?;
        let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|_| unsupported())?;
        match scheme {
            ObjectStoreScheme::Local => SegmentStore::local(parsed.to_file_path().map_err(|_| unsupported())?),
            ObjectStoreScheme::AmazonS3 => {
                let bucket = AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| Error::Store(format!("{url}: {e}")))?;
                let objects: Arc<dyn ObjectStore> = match prefix.as_ref() {
                    "" => Arc::new(bucket),
                    _ => Arc::new(PrefixStore::new(bucket, prefix)),
                };
                Ok(SegmentStore { objects, local_root: None })
            }
            _ => Err(unsupported()),
        }
    }

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

/// How the data directory's mark file names the store `config` opens.
fn store_name(config: &Config) -> &str {
    config.store_url.as_deref().map_or(LOCAL_STORE_MARK, |url| url.trim_end_matches('/'))
}

/// Refuses a store other than the one the data directory's mark names.
fn check_store_mark(data_dir: &std::path::Path, name: &str) -> Result<()> {
    let mark = data_dir.join(STORE_MARK_FILE);
    let recorded = match std::fs::read_to_string(&mark) {
        Ok(recorded) => recorded.trim().to_string(),
        // Directories from before the mark existed used their own store.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && data_dir.join("store/manifest.json").exists() => {
            LOCAL_STORE_MARK.to_string()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => name.to_string(),
        Err(e) => return Err(Error::io(&mark, e)),
    };
    if recorded != name {
        let describe = |name: &str| match name {
            LOCAL_STORE_MARK => format!("its own directory {}", data_dir.join("store").display()),
            url => url.to_string(),
        };
        return Err(Error::Store(format!(
            "the data directory {} goes with the store {} (see {}), not {}: \
             start with that store, or edit the file if the store's objects moved",
            data_dir.display(),
            describe(&recorded),
            mark.display(),
            describe(name)
        )));
    }
    Ok(())
}
