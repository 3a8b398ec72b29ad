//! Chunked module upload, modelled on the management canister's `upload_chunk` /
//! `install_chunked_code`: modules larger than the 2 MiB ingress limit arrive as chunks of at most
//! 1 MiB, each addressed by its sha256 and owned by its uploader; installing names the chunks in
//! order and the sha256 of the whole module.
//!
//! Stable layout (one `StableBTreeMap`): key = 1 byte principal length, 29 bytes principal (zero
//! padded), 32 bytes chunk sha256; value = the chunk's bytes.

use std::borrow::Cow;

use candid::Principal;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};
use plugin_host_api::ChunkError;
use sha2::{Digest, Sha256};

/// Largest chunk accepted, as on the management canister.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Most chunks one uploader may keep stored at once.
pub const MAX_CHUNKS_PER_UPLOADER: usize = 16;

/// Chunks stored per uploader.
pub struct ChunkStore<M: Memory> {
    chunks: StableBTreeMap<ChunkKey, Vec<u8>, M>,
}

impl<M: Memory> ChunkStore<M> {
    /// Opens the store kept in `memory` (empty on first use).
    pub fn init(memory: M) -> Self {
        Self {
            chunks: StableBTreeMap::init(memory),
        }
    }

    /// Stores a chunk for `uploader` and returns its sha256. Storing the same chunk twice is a no-op.
    pub fn upload(&mut self, uploader: Principal, chunk: &[u8]) -> Result<[u8; 32], ChunkError> {
        if chunk.len() > MAX_CHUNK_BYTES {
            return Err(ChunkError::ChunkTooLarge {
                size: chunk.len() as u64,
                max: MAX_CHUNK_BYTES as u64,
            });
        }
        let sha256: [u8; 32] = Sha256::digest(chunk).into();
        let key = ChunkKey::new(uploader, sha256);
        if self.chunks.contains_key(&key) {
            return Ok(sha256);
        }
        if self.stored(uploader).len() >= MAX_CHUNKS_PER_UPLOADER {
            return Err(ChunkError::StoreFull {
                max: MAX_CHUNKS_PER_UPLOADER as u32,
            });
        }
        self.chunks.insert(key, chunk.to_vec());
        Ok(sha256)
    }

    /// The hashes of the chunks `uploader` has stored.
    pub fn stored(&self, uploader: Principal) -> Vec<[u8; 32]> {
        let start = ChunkKey::new(uploader, [0; 32]);
        let end = ChunkKey::new(uploader, [0xff; 32]);
        self.chunks
            .range(start..=end)
            .map(|entry| entry.key().sha256())
            .collect()
    }

    /// Concatenates `uploader`'s chunks in the given order and checks the whole module's hash.
    pub fn assemble(
        &self,
        uploader: Principal,
        chunk_hashes: &[[u8; 32]],
        expected_sha256: &[u8; 32],
    ) -> Result<Vec<u8>, ChunkError> {
        let mut wasm = Vec::new();
        for sha256 in chunk_hashes {
            let chunk = self
                .chunks
                .get(&ChunkKey::new(uploader, *sha256))
                .ok_or_else(|| ChunkError::MissingChunk {
                    sha256: sha256.to_vec(),
                })?;
            wasm.extend_from_slice(&chunk);
        }
        let actual: [u8; 32] = Sha256::digest(&wasm).into();
        if &actual != expected_sha256 {
            return Err(ChunkError::HashMismatch {
                expected: expected_sha256.to_vec(),
                actual: actual.to_vec(),
            });
        }
        Ok(wasm)
    }

    /// Deletes every chunk `uploader` stored.
    pub fn clear(&mut self, uploader: Principal) {
        for sha256 in self.stored(uploader) {
            self.chunks.remove(&ChunkKey::new(uploader, sha256));
        }
    }
}

/// Key of a stored chunk: its uploader, then its hash (so one uploader's chunks are one range).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ChunkKey([u8; 62]);

impl ChunkKey {
    fn new(uploader: Principal, sha256: [u8; 32]) -> Self {
        let principal = uploader.as_slice();
        let mut key = [0u8; 62];
        key[0] = principal.len() as u8;
        key[1..1 + principal.len()].copy_from_slice(principal);
        key[30..].copy_from_slice(&sha256);
        Self(key)
    }

    fn sha256(&self) -> [u8; 32] {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&self.0[30..]);
        sha256
    }
}

impl Storable for ChunkKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut key = [0u8; 62];
        key.copy_from_slice(&bytes);
        Self(key)
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 62,
        is_fixed_size: true,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    fn store() -> ChunkStore<VectorMemory> {
        ChunkStore::init(VectorMemory::default())
    }

    fn alice() -> Principal {
        Principal::from_slice(&[1; 29])
    }

    fn bob() -> Principal {
        Principal::from_slice(&[2])
    }

    #[test]
    fn assembles_chunks_in_order_and_checks_the_hash() {
        let mut store = store();
        let a = store.upload(alice(), b"hello ").expect("upload");
        let b = store.upload(alice(), b"world").expect("upload");
        let whole: [u8; 32] = Sha256::digest(b"hello world").into();
        assert_eq!(
            store.assemble(alice(), &[a, b], &whole).expect("assemble"),
            b"hello world"
        );
        assert!(matches!(
            store.assemble(alice(), &[b, a], &whole),
            Err(ChunkError::HashMismatch { .. })
        ));
    }

    #[test]
    fn chunks_belong_to_their_uploader_and_clear_removes_them() {
        let mut store = store();
        let a = store.upload(alice(), b"mine").expect("upload");
        store.upload(bob(), b"his").expect("upload");
        let whole: [u8; 32] = Sha256::digest(b"mine").into();
        assert_eq!(
            store.assemble(bob(), &[a], &whole),
            Err(ChunkError::MissingChunk { sha256: a.to_vec() })
        );
        store.clear(alice());
        assert!(store.stored(alice()).is_empty());
        assert_eq!(store.stored(bob()).len(), 1);
    }

    #[test]
    fn refuses_oversized_chunks_and_a_full_store() {
        let mut store = store();
        assert!(matches!(
            store.upload(alice(), &vec![0; MAX_CHUNK_BYTES + 1]),
            Err(ChunkError::ChunkTooLarge { .. })
        ));
        for i in 0..MAX_CHUNKS_PER_UPLOADER {
            store.upload(alice(), &i.to_le_bytes()).expect("upload");
        }
        assert_eq!(
            store.upload(alice(), b"one too many"),
            Err(ChunkError::StoreFull {
                max: MAX_CHUNKS_PER_UPLOADER as u32
            })
        );
        // Re-uploading a stored chunk is not a new chunk.
        assert!(store.upload(alice(), &0usize.to_le_bytes()).is_ok());
    }
}
