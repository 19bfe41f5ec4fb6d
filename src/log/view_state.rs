//! Checkpoints of continuous views' operator state: the bytes of
//! [`crate::view::checkpoint`] as of an offset, one file per view
//! (`views/<relation id>/<offset>.state`), listed in the manifest with a
//! checksum. A restart loads the latest and replays only later changes.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Error, Offset, RelationId, Result, SegmentStore};

pub const VIEW_STATES_PREFIX: &str = "views";

#[derive(Debug, Serialize, Deserialize)]
pub struct ViewStateMeta {
    pub relation: RelationId,
    pub path: String,
    /// The view's operators after every commit through this offset.
    pub through: Offset,
    pub bytes: u64,
    pub crc32c: u32,
}

pub fn encode(relation: RelationId, through: Offset, state: Vec<u8>) -> (ViewStateMeta, Bytes) {
    let meta = ViewStateMeta {
        relation,
        path: format!("{VIEW_STATES_PREFIX}/{}/{:020}.state", relation.0, through.0),
        through,
        bytes: state.len() as u64,
        crc32c: crc32c::crc32c(&state),
    };
    (meta, Bytes::from(state))
}

/// The checkpoint's bytes, checked against the manifest's length and checksum.
pub async fn read(store: &SegmentStore, meta: &Arc<ViewStateMeta>) -> Result<Bytes> {
    let path = std::path::Path::new(&meta.path);
    let bytes = store.get(&meta.path).await?.ok_or_else(|| Error::corrupt(path, 0, "view checkpoint is missing"))?;
    if bytes.len() as u64 != meta.bytes || crc32c::crc32c(&bytes) != meta.crc32c {
        return Err(Error::corrupt(path, 0, "view checkpoint fails its checksum"));
    }
    Ok(bytes)
}
