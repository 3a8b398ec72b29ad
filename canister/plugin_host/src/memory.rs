//! The one registry of stable-memory ids. An id is never reused: retired ids stay listed.
//!
//! Stable memory is managed by one `MemoryManager` (`plugin_engine::StableSpace`); each structure
//! below gets its own virtual memory. The engine's structures and their layout are documented in
//! `plugin_engine::store`.

use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::StableMemories;

/// Version of the canister's own stable layout (the settings cell records it).
/// 1: settings were admins and install policy; chunk keys had no length.
/// 2: settings add quotas and the cycles reserve; chunk keys end with the chunk's length.
pub const LAYOUT_VERSION: u32 = 2;

/// Canister settings: a `StableCell`.
pub const SETTINGS: MemoryId = MemoryId::new(0);
/// Uploaded module chunks: a `StableBTreeMap` (see `chunks`).
pub const CHUNKS: MemoryId = MemoryId::new(1);
/// The engine's memories (ids 2 to 11).
pub const ENGINE: StableMemories<MemoryId> = StableMemories {
    meta: MemoryId::new(2),
    plugins: MemoryId::new(3),
    code: MemoryId::new(4),
    code_refs: MemoryId::new(5),
    // Engine layout 1's memory chunks, moved to chunk slots as plugins are next written.
    layout_1_chunks: MemoryId::new(6),
    globals: MemoryId::new(7),
    vars: MemoryId::new(8),
    chunk_slots: MemoryId::new(9),
    chunk_data: MemoryId::new(10),
    usage: MemoryId::new(11),
};
