//! A primary key in Arrow's row format, whose byte order is key order. The
//! key index compares keys at every level of every lookup, so a short key —
//! most are: a BIGINT key is 9 bytes — is kept inline, where comparing it
//! reads no other memory and copying an index node copies it without
//! touching a reference count. Longer keys are shared on the heap.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// Bytes a key holds inline: the enum stays 24 bytes.
const INLINE_MAX: usize = 22;

#[derive(Clone)]
pub enum Key {
    Inline { len: u8, bytes: [u8; INLINE_MAX] },
    Shared(Arc<[u8]>),
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE_MAX {
            let mut inline = [0; INLINE_MAX];
            inline[..bytes.len()].copy_from_slice(bytes);
            Key::Inline { len: bytes.len() as u8, bytes: inline }
        } else {
            Key::Shared(Arc::from(bytes))
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..*len as usize],
            Key::Shared(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:02x?})", &**self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_equality_and_hash_follow_the_bytes_whatever_the_storage() {
        let samples: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![1; INLINE_MAX],
            vec![1; INLINE_MAX + 1],
            vec![1; INLINE_MAX - 1],
            vec![2],
            vec![1; 100],
            vec![255; INLINE_MAX + 5],
        ];
        let hash = |key: &Key| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut hasher);
            hasher.finish()
        };
        for a in &samples {
            let key_a = Key::from(a.as_slice());
            assert_eq!(&*key_a, a.as_slice());
            assert_eq!(matches!(key_a, Key::Inline { .. }), a.len() <= INLINE_MAX);
            for b in &samples {
                let key_b = Key::from(b.as_slice());
                assert_eq!(key_a.cmp(&key_b), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(key_a == key_b, a == b);
                if a == b {
                    assert_eq!(hash(&key_a), hash(&key_b));
                }
            }
        }
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }
}
