//! The one registry of stable-memory ids. An id is never reused: retired ids stay listed.
//!
//! Stable memory is managed by one `MemoryManager`; each structure below gets its own virtual
//! memory. The engine's structures and their layout are documented in `plugin_engine::store`.

use ic_stable_structures::memory_manager::MemoryId;

/// Version of the canister's own stable layout (the settings cell records it).
pub const LAYOUT_VERSION: u32 = 1;

/// Canister settings (admins, install policy): a `StableCell`.
pub const SETTINGS: MemoryId = MemoryId::new(0);
/// Uploaded module chunks: a `StableBTreeMap` (see `chunks`).
pub const CHUNKS: MemoryId = MemoryId::new(1);
/// Engine: layout magic, version, id counter.
pub const ENGINE_META: MemoryId = MemoryId::new(2);
/// Engine: plugin records.
pub const ENGINE_PLUGINS: MemoryId = MemoryId::new(3);
/// Engine: content-addressed module bytes.
pub const ENGINE_CODE: MemoryId = MemoryId::new(4);
/// Engine: module reference counts.
pub const ENGINE_CODE_REFS: MemoryId = MemoryId::new(5);
/// Engine: plugin memory chunks of engine layout 1 (emptied when a layout-1 store is opened).
pub const ENGINE_PAGES: MemoryId = MemoryId::new(6);
/// Engine: plugin globals.
pub const ENGINE_GLOBALS: MemoryId = MemoryId::new(7);
/// Engine: plugin vars.
pub const ENGINE_VARS: MemoryId = MemoryId::new(8);
/// Engine: where each plugin memory chunk is stored.
pub const ENGINE_CHUNK_SLOTS: MemoryId = MemoryId::new(9);
/// Engine: plugin memory chunk contents.
pub const ENGINE_CHUNK_DATA: MemoryId = MemoryId::new(10);
/// Engine: each plugin's call counters and memory size.
pub const ENGINE_USAGE: MemoryId = MemoryId::new(11);
