//! A view's operator state as bytes, so a restart loads it and replays only
//! the changes after it instead of its inputs' whole history. Operators are
//! visited in a fixed order of the tree (the same query compiles to the same
//! tree); each writes its own state with [`Encoder`] and reads it back with
//! [`Decoder`]. The log stores the bytes with a checksum.

use super::dataflow::Node;
use super::{Result, ViewError};

/// Bumped when the encoding changes; an older checkpoint is then ignored
/// and the view rebuilt from its inputs.
pub const CHECKPOINT_VERSION: u32 = 2;

pub fn save(root: &Node) -> Vec<u8> {
    let mut out = Encoder(Vec::new());
    out.u64(CHECKPOINT_VERSION as u64);
    root.visit(&mut |node| node.save_state(&mut out));
    out.0
}

/// Loads state `save` wrote into a freshly compiled tree of the same query;
/// `Ok(false)` when it was written by another version of the encoding.
pub fn load(root: &mut Node, bytes: &[u8]) -> Result<bool> {
    let mut input = Decoder { bytes, at: 0 };
    if input.u64()? != CHECKPOINT_VERSION as u64 {
        return Ok(false);
    }
    let mut failed = None;
    root.visit_mut(&mut |node| {
        if failed.is_none()
            && let Err(error) = node.load_state(&mut input)
        {
            failed = Some(error);
        }
    });
    if let Some(error) = failed {
        return Err(error);
    }
    if input.at != bytes.len() {
        return Err(ViewError::internal("a view checkpoint does not match its query's operators"));
    }
    Ok(true)
}

pub struct Encoder(Vec<u8>);

impl Encoder {
    pub fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn i128(&mut self, value: i128) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn f64(&mut self, value: f64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn bytes(&mut self, value: &[u8]) {
        self.u64(value.len() as u64);
        self.0.extend_from_slice(value);
    }
}

pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| ViewError::internal("a view checkpoint ends early"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub fn i128(&mut self) -> Result<i128> {
        Ok(i128::from_le_bytes(self.take(16)?.try_into().expect("16 bytes")))
    }

    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub fn bytes(&mut self) -> Result<std::sync::Arc<[u8]>> {
        let len = self.u64()? as usize;
        Ok(std::sync::Arc::from(self.take(len)?))
    }

    /// A count of items to follow, checked against what is left.
    pub fn count(&mut self) -> Result<usize> {
        let count = self.u64()? as usize;
        if count > self.bytes.len() - self.at {
            return Err(ViewError::internal("a view checkpoint holds an impossible count"));
        }
        Ok(count)
    }
}
