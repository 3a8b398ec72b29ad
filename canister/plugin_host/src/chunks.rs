//! Chunked module upload, modelled on the management canister's `upload_chunk` /
//! `install_chunked_code`: modules larger than the 2 MiB ingress limit arrive as chunks of at most
//! 1 MiB, each addressed by its sha256 and owned by its uploader; installing names the chunks in
//! order and the sha256 of the whole module.
//!
//! Only callers with the install right upload (the endpoint checks). The store as a whole holds
//! at most [`MAX_STORE_BYTES`] in at most [`MAX_STORE_CHUNKS`] chunks, each uploader at most
//! [`MAX_CHUNKS_PER_UPLOADER`], and a chunk not installed within [`CHUNK_TTL_NS`] expires: it is
//! dropped by the next upload that needs room, and never assembled.
//!
//! Stable layout (one `StableBTreeMap`, canister layout 2): key = 1 byte principal length, 29
//! bytes principal (zero padded), 32 bytes chunk sha256, 4 bytes chunk length (u32 BE); value =
//! the chunk's bytes. Upload times are kept on the heap only: after an upgrade, chunks count as
//! uploaded when the index is rebuilt (by the first message that needs it).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use candid::Principal;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};
use plugin_host_api::ChunkError;
use sha2::{Digest, Sha256};

/// Largest chunk accepted, as on the management canister.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Most chunks one uploader may keep stored at once.
pub const MAX_CHUNKS_PER_UPLOADER: usize = 16;
/// Most bytes of chunks stored, all uploaders together.
pub const MAX_STORE_BYTES: u64 = 128 * 1024 * 1024;
/// Most chunks stored, all uploaders together.
pub const MAX_STORE_CHUNKS: usize = 1024;
/// How long an uploaded chunk is kept if it is not installed: one hour.
pub const CHUNK_TTL_NS: u64 = 3_600_000_000_000;

/// Chunks stored per uploader.
pub struct ChunkStore<M: Memory> {
    chunks: StableBTreeMap<ChunkKey, Vec<u8>, M>,
    index: RefCell<Option<Index>>,
}

/// Upload times and sizes of the stored chunks (heap only).
#[derive(Default)]
struct Index {
    by_time: BTreeSet<(u64, ChunkKey)>,
    uploaded_at: BTreeMap<ChunkKey, u64>,
    bytes: u64,
}

impl<M: Memory> ChunkStore<M> {
    /// Opens the store kept in `memory` (empty on first use).
    pub fn init(memory: M) -> Self {
        Self {
            chunks: StableBTreeMap::init(memory),
            index: RefCell::default(),
        }
    }

    /// Drops every chunk (when the stored layout is older than this code's).
    pub fn clear(&mut self) {
        self.chunks.clear_new();
        self.index = RefCell::default();
    }

    /// Stores a chunk for `uploader` at `now_ns` and returns its sha256. Storing a chunk the
    /// uploader holds already is a no-op.
    pub fn upload(
        &mut self,
        uploader: Principal,
        chunk: &[u8],
        now_ns: u64,
    ) -> Result<[u8; 32], ChunkError> {
        if chunk.len() > MAX_CHUNK_BYTES {
            return Err(ChunkError::ChunkTooLarge {
                size: chunk.len() as u64,
                max: MAX_CHUNK_BYTES as u64,
            });
        }
        let sha256: [u8; 32] = Sha256::digest(chunk).into();
        let key = ChunkKey::new(uploader, sha256, chunk.len() as u32);
        self.expire(now_ns);
        if self.chunks.contains_key(&key) {
            return Ok(sha256);
        }
        if self.stored(uploader, now_ns).len() >= MAX_CHUNKS_PER_UPLOADER {
            return Err(ChunkError::StoreFull {
                max: MAX_CHUNKS_PER_UPLOADER as u32,
            });
        }
        let (count, bytes) = self.with_index(now_ns, |i| (i.uploaded_at.len(), i.bytes));
        let total = bytes + chunk.len() as u64;
        if count >= MAX_STORE_CHUNKS || total > MAX_STORE_BYTES {
            return Err(ChunkError::StoreBytesFull {
                stored_bytes: bytes,
                max_bytes: MAX_STORE_BYTES,
            });
        }
        self.chunks.insert(key, chunk.to_vec());
        self.with_index(now_ns, |i| i.add(key, now_ns));
        Ok(sha256)
    }

    /// The hashes of the chunks `uploader` has stored (expired ones excepted).
    pub fn stored(&self, uploader: Principal, now_ns: u64) -> Vec<[u8; 32]> {
        self.keys_of(uploader)
            .into_iter()
            .filter(|key| !self.with_index(now_ns, |i| i.expired(key, now_ns)))
            .map(|key| key.sha256())
            .collect()
    }

    /// Bytes stored, all uploaders.
    pub fn stored_bytes(&self, now_ns: u64) -> u64 {
        self.with_index(now_ns, |i| i.bytes)
    }

    /// Concatenates `uploader`'s chunks in the given order and checks the whole module's hash.
    /// Checks sizes first: nothing is read if the module would exceed `max_bytes`.
    pub fn assemble(
        &self,
        uploader: Principal,
        chunk_hashes: &[[u8; 32]],
        expected_sha256: &[u8; 32],
        max_bytes: u64,
        now_ns: u64,
    ) -> Result<Vec<u8>, AssembleError> {
        let mut keys = Vec::with_capacity(chunk_hashes.len());
        let mut size = 0u64;
        for sha256 in chunk_hashes {
            let key = self
                .find(uploader, sha256)
                .filter(|key| !self.with_index(now_ns, |i| i.expired(key, now_ns)))
                .ok_or_else(|| {
                    AssembleError::Chunk(ChunkError::MissingChunk {
                        sha256: sha256.to_vec(),
                    })
                })?;
            size += u64::from(key.len());
            keys.push(key);
        }
        if size > max_bytes {
            return Err(AssembleError::TooLarge {
                size,
                max: max_bytes,
            });
        }
        let mut wasm = Vec::with_capacity(size as usize);
        for key in keys {
            wasm.extend_from_slice(&self.chunks.get(&key).unwrap_or_default());
        }
        let actual: [u8; 32] = Sha256::digest(&wasm).into();
        if &actual != expected_sha256 {
            return Err(AssembleError::Chunk(ChunkError::HashMismatch {
                expected: expected_sha256.to_vec(),
                actual: actual.to_vec(),
            }));
        }
        Ok(wasm)
    }

    /// Deletes every chunk `uploader` stored.
    pub fn clear_uploader(&mut self, uploader: Principal) {
        for key in self.keys_of(uploader) {
            self.remove(&key);
        }
    }

    /// Drops chunks older than [`CHUNK_TTL_NS`] (at most a few per call: uploads are bounded).
    fn expire(&mut self, now_ns: u64) {
        let expired: Vec<ChunkKey> = self.with_index(now_ns, |i| {
            i.by_time
                .iter()
                .take_while(|(at, _)| at.saturating_add(CHUNK_TTL_NS) <= now_ns)
                .take(MAX_CHUNKS_PER_UPLOADER)
                .map(|(_, key)| *key)
                .collect()
        });
        for key in expired {
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &ChunkKey) {
        self.chunks.remove(key);
        if let Some(index) = self.index.get_mut() {
            index.remove(key);
        }
    }

    fn find(&self, uploader: Principal, sha256: &[u8; 32]) -> Option<ChunkKey> {
        let start = ChunkKey::new(uploader, *sha256, 0);
        let end = ChunkKey::new(uploader, *sha256, u32::MAX);
        self.chunks.range(start..=end).next().map(|e| *e.key())
    }

    fn keys_of(&self, uploader: Principal) -> Vec<ChunkKey> {
        let start = ChunkKey::new(uploader, [0; 32], 0);
        let end = ChunkKey::new(uploader, [0xff; 32], u32::MAX);
        self.chunks.range(start..=end).map(|e| *e.key()).collect()
    }

    fn with_index<R>(&self, now_ns: u64, f: impl FnOnce(&mut Index) -> R) -> R {
        let mut index = self.index.borrow_mut();
        let index = index.get_or_insert_with(|| {
            let mut index = Index::default();
            for entry in self.chunks.iter() {
                index.add(*entry.key(), now_ns);
            }
            index
        });
        f(index)
    }
}

impl Index {
    fn add(&mut self, key: ChunkKey, now_ns: u64) {
        if self.uploaded_at.insert(key, now_ns).is_none() {
            self.bytes += u64::from(key.len());
        }
        self.by_time.insert((now_ns, key));
    }

    fn remove(&mut self, key: &ChunkKey) {
        if let Some(at) = self.uploaded_at.remove(key) {
            self.by_time.remove(&(at, *key));
            self.bytes -= u64::from(key.len());
        }
    }

    fn expired(&self, key: &ChunkKey, now_ns: u64) -> bool {
        self.uploaded_at
            .get(key)
            .is_some_and(|at| at.saturating_add(CHUNK_TTL_NS) <= now_ns)
    }
}

/// Why chunks could not be assembled into a module.
#[derive(Debug, PartialEq, Eq)]
pub enum AssembleError {
    /// A chunk is missing or the hash does not match.
    Chunk(ChunkError),
    /// The chunks add up to more than a module may have.
    TooLarge {
        /// Their total size.
        size: u64,
        /// The module size cap.
        max: u64,
    },
}

/// Key of a stored chunk: its uploader, its hash, its length (one uploader's chunks are one range).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct ChunkKey([u8; 66]);

impl ChunkKey {
    fn new(uploader: Principal, sha256: [u8; 32], len: u32) -> Self {
        let principal = uploader.as_slice();
        let mut key = [0u8; 66];
        key[0] = principal.len() as u8;
        key[1..1 + principal.len()].copy_from_slice(principal);
        key[30..62].copy_from_slice(&sha256);
        key[62..].copy_from_slice(&len.to_be_bytes());
        Self(key)
    }

    fn sha256(&self) -> [u8; 32] {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&self.0[30..62]);
        sha256
    }

    fn len(&self) -> u32 {
        let mut len = [0u8; 4];
        len.copy_from_slice(&self.0[62..]);
        u32::from_be_bytes(len)
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
        let mut key = [0u8; 66];
        key.copy_from_slice(&bytes);
        Self(key)
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 66,
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

    fn assemble(
        store: &ChunkStore<VectorMemory>,
        who: Principal,
        chunks: &[[u8; 32]],
        whole: &[u8],
    ) -> Result<Vec<u8>, AssembleError> {
        let sha: [u8; 32] = Sha256::digest(whole).into();
        store.assemble(who, chunks, &sha, 1 << 20, 1)
    }

    #[test]
    fn assembles_chunks_in_order_and_checks_the_hash() {
        let mut store = store();
        let a = store.upload(alice(), b"hello ", 0).expect("upload");
        let b = store.upload(alice(), b"world", 0).expect("upload");
        assert_eq!(
            assemble(&store, alice(), &[a, b], b"hello world"),
            Ok(b"hello world".to_vec())
        );
        assert!(matches!(
            assemble(&store, alice(), &[b, a], b"hello world"),
            Err(AssembleError::Chunk(ChunkError::HashMismatch { .. }))
        ));
        assert_eq!(
            store.assemble(alice(), &[a, b], &[0; 32], 10, 1),
            Err(AssembleError::TooLarge { size: 11, max: 10 }),
            "sizes are checked before anything is read"
        );
    }

    #[test]
    fn chunks_belong_to_their_uploader_and_clear_removes_them() {
        let mut store = store();
        let a = store.upload(alice(), b"mine", 0).expect("upload");
        store.upload(bob(), b"his", 0).expect("upload");
        assert_eq!(
            assemble(&store, bob(), &[a], b"mine"),
            Err(AssembleError::Chunk(ChunkError::MissingChunk {
                sha256: a.to_vec()
            }))
        );
        store.clear_uploader(alice());
        assert!(store.stored(alice(), 0).is_empty());
        assert_eq!(store.stored(bob(), 0).len(), 1);
        assert_eq!(store.stored_bytes(0), 3);
    }

    #[test]
    fn refuses_oversized_chunks_and_full_stores() {
        let mut store = store();
        assert!(matches!(
            store.upload(alice(), &vec![0; MAX_CHUNK_BYTES + 1], 0),
            Err(ChunkError::ChunkTooLarge { .. })
        ));
        for i in 0..MAX_CHUNKS_PER_UPLOADER {
            store.upload(alice(), &i.to_le_bytes(), 0).expect("upload");
        }
        assert_eq!(
            store.upload(alice(), b"one too many", 0),
            Err(ChunkError::StoreFull {
                max: MAX_CHUNKS_PER_UPLOADER as u32
            })
        );
        // Re-uploading a stored chunk is not a new chunk.
        assert!(store.upload(alice(), &0usize.to_le_bytes(), 0).is_ok());
        // The store as a whole: many uploaders of full chunks.
        let full = vec![7u8; MAX_CHUNK_BYTES];
        let mut refused = None;
        for n in 0..=(MAX_STORE_BYTES / MAX_CHUNK_BYTES as u64) {
            let uploader = Principal::from_slice(&n.to_le_bytes());
            let mut chunk = full.clone();
            chunk[..8].copy_from_slice(&n.to_le_bytes());
            if let Err(e) = store.upload(uploader, &chunk, 0) {
                refused = Some(e);
                break;
            }
        }
        assert!(
            matches!(refused, Some(ChunkError::StoreBytesFull { max_bytes, .. }) if max_bytes == MAX_STORE_BYTES)
        );
    }

    #[test]
    fn chunks_expire_and_make_room() {
        let mut store = store();
        let a = store.upload(alice(), b"old", 0).expect("upload");
        assert_eq!(store.stored(alice(), CHUNK_TTL_NS - 1), vec![a]);
        assert!(store.stored(alice(), CHUNK_TTL_NS).is_empty(), "expired");
        assert!(
            assemble(&store, alice(), &[a], b"old").is_ok(),
            "not expired at 1 ns"
        );
        assert!(matches!(
            store.assemble(
                alice(),
                &[a],
                &Sha256::digest(b"old").into(),
                10,
                CHUNK_TTL_NS
            ),
            Err(AssembleError::Chunk(ChunkError::MissingChunk { .. }))
        ));
        // The next upload drops it.
        store.upload(bob(), b"new", CHUNK_TTL_NS).expect("upload");
        assert_eq!(store.stored_bytes(CHUNK_TTL_NS), 3);
        // After a reopen (an upgrade), chunks count as uploaded when the index is rebuilt.
        let memory = VectorMemory::default();
        let mut before = ChunkStore::init(memory.clone());
        before.upload(alice(), b"kept", 5).expect("upload");
        let after = ChunkStore::init(memory);
        assert_eq!(after.stored(alice(), CHUNK_TTL_NS + 10).len(), 1);
    }
}
