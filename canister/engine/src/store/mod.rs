//! Everything the engine keeps, in stable structures over `ic_stable_structures::Memory`.
//!
//! Stable layout (layout version [`LAYOUT_VERSION`]), one virtual memory per structure:
//!
//! ```text
//! meta        StableCell  "PLGE" | layout version u32 LE | next plugin id u64 LE
//! plugins     BTreeMap    name (String)            -> PluginRecord (see below)
//! code        BTreeMap    sha256 [u8; 32]          -> module bytes, as uploaded
//! code_refs   BTreeMap    sha256 [u8; 32]          -> number of plugins using the code (u64)
//! chunk_slots BTreeMap    (plugin id u64, chunk u32) -> slot u64 in chunk_data (absent = zeros)
//! chunk_data  raw memory  header: slots in use u64 LE | first free slot + 1 u64 LE (0 = none);
//!                         slot s: 4 KiB of linear memory at (s + 1) × 4 KiB; a free slot's first
//!                         8 bytes: the next free slot + 1
//! usage       raw memory  plugin id × 24: calls u64 LE | fuel used total u64 LE | memory pages
//!                         u32 LE | 1 u32 LE; where that last word is 0, the record's own figures
//!                         hold (the record keeps them as of its last full write)
//! globals     BTreeMap    plugin id u64            -> u32 count | per global: tag u8, bits u64 LE
//! vars        BTreeMap    plugin id u64 BE ++ key (utf-8) -> value bytes
//! layout_1_chunks BTreeMap layout 1's chunks, (plugin id u64, chunk u32) -> 4 KiB; a plugin's are
//!                         moved to chunk_slots/chunk_data when it is next written (see below)
//!
//! PluginRecord: version u8 (=1) | id u64 | name str | owner bytes | code sha256 [32] |
//!   code size u64 | functions: u32 n, n × str | memory pages u32 | max pages: u8 flag, u32 |
//!   fuel limit u64 | calls u64 | fuel used total u64 | installed at u64 | updated at u64 |
//!   invoke policy: u8 tag (0 public, 1 owner only, 2 allow-list: u32 n, n × bytes) |
//!   config: u32 n, n × (str, str)
//! where str / bytes = u32 LE length, then the bytes; all integers little-endian.
//! ```
//!
//! Layout 1 kept memory chunks as B-tree values (`layout_1_chunks`); layout 2 keeps them in slots
//! written in place. Opening a layout-1 store moves nothing (an upgrade must not do work that
//! grows with the state): a plugin's old chunks are read where they are and moved when the
//! plugin's memory is next written or deleted; the meta says layout 2 once `layout_1_chunks` is
//! empty.

mod chunks;
pub mod codec;

use std::cell::RefCell;
use std::collections::BTreeMap;

use candid::Principal;
use ic_stable_structures::{Memory, StableBTreeMap, StableCell};
use plugin_host_api::InvokePolicy;

use self::chunks::ChunkData;
pub use self::codec::SavedGlobal;
use self::codec::{Meta, Reader, VarKey, Writer, decode_globals, encode_globals, encode_record};

/// Version of the stable layout described above.
pub const LAYOUT_VERSION: u32 = 2;
/// Heap bytes of records kept in the record cache at most.
const RECORD_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Chunk slots kept in the slot cache at most (the slots of 128 MiB of plugin memory).
const SLOT_CACHE_ENTRIES: usize = 32 * 1024;
/// Heap bytes the slot cache may take at most (an entry and its share of a B-tree node).
const SLOT_CACHE_BYTES: u64 = SLOT_CACHE_ENTRIES as u64 * 64;
/// Heap bytes the store's caches (records, chunk slots) take at most.
pub const STORE_CACHE_BYTES: u64 = RECORD_CACHE_BYTES + SLOT_CACHE_BYTES;
/// Bytes of one plugin's usage entry.
const USAGE_BYTES: u64 = 24;
/// Size of the chunks in which plugin memory is stored and compared.
pub const CHUNK_BYTES: usize = 4096;

/// The stable memories the engine uses: one per structure, each from a fixed, never reused id.
#[derive(Debug, Clone, Copy)]
pub struct StableMemories<M> {
    /// Layout magic, version and id counter.
    pub meta: M,
    /// Plugin records by name.
    pub plugins: M,
    /// Module bytes by sha256.
    pub code: M,
    /// Reference counts of module bytes.
    pub code_refs: M,
    /// Layout 1's plugin memory chunks (emptied as plugins are moved to layout 2).
    pub layout_1_chunks: M,
    /// Where each stored memory chunk is in `chunk_data`.
    pub chunk_slots: M,
    /// Memory chunk contents, one 4 KiB slot each.
    pub chunk_data: M,
    /// Each plugin's call counters and memory size, written in place per call.
    pub usage: M,
    /// Plugin mutable globals.
    pub globals: M,
    /// Plugin vars.
    pub vars: M,
}

impl<M> StableMemories<M> {
    /// The memories in the order of the fields above: for hosts and tests that hand memories out
    /// by position.
    pub fn from_array(
        [
            meta,
            plugins,
            code,
            code_refs,
            layout_1_chunks,
            chunk_slots,
            chunk_data,
            usage,
            globals,
            vars,
        ]: [M; 10],
    ) -> Self {
        Self {
            meta,
            plugins,
            code,
            code_refs,
            layout_1_chunks,
            chunk_slots,
            chunk_data,
            usage,
            globals,
            vars,
        }
    }

    /// The memories in the order of [`StableMemories::from_array`].
    pub fn into_array(self) -> [M; 10] {
        [
            self.meta,
            self.plugins,
            self.code,
            self.code_refs,
            self.layout_1_chunks,
            self.chunk_slots,
            self.chunk_data,
            self.usage,
            self.globals,
            self.vars,
        ]
    }
}

/// Everything the engine keeps about an installed plugin (its state aside), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRecord {
    /// Internal id, never reused; keys the plugin's memory, globals and vars.
    pub id: u64,
    /// The plugin's name.
    pub name: String,
    /// The installer.
    pub owner: Principal,
    /// sha256 of the module.
    pub code_sha256: [u8; 32],
    /// Module size in bytes.
    pub code_size: u64,
    /// Plugin functions, sorted.
    pub functions: Vec<String>,
    /// Current memory size in 64 KiB pages.
    pub memory_pages: u32,
    /// Declared maximum, if any.
    pub max_memory_pages: Option<u32>,
    /// Default fuel per call.
    pub fuel_limit: u64,
    /// Successful committed calls.
    pub calls: u64,
    /// Fuel used by committed calls.
    pub fuel_used_total: u64,
    /// Install time (ns).
    pub installed_at_ns: u64,
    /// Last change of code, config or policy (ns).
    pub updated_at_ns: u64,
    /// Who may invoke (enforced by the canister).
    pub invoke_policy: InvokePolicy,
    /// Read-only config.
    pub config: BTreeMap<String, String>,
}

/// What a call changes in a plugin's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Successful committed calls.
    pub calls: u64,
    /// Fuel used by committed calls.
    pub fuel_used_total: u64,
    /// Current memory size in 64 KiB pages.
    pub memory_pages: u32,
}

impl PluginRecord {
    /// Its usage fields.
    pub fn usage(&self) -> Usage {
        Usage {
            calls: self.calls,
            fuel_used_total: self.fuel_used_total,
            memory_pages: self.memory_pages,
        }
    }

    /// About how many heap bytes the record takes (for the record cache's budget).
    pub fn heap_bytes(&self) -> u64 {
        let functions: usize = self.functions.iter().map(|f| f.len() + 24).sum();
        let config: usize = self
            .config
            .iter()
            .map(|(k, v)| k.len() + v.len() + 64)
            .sum();
        let policy = match &self.invoke_policy {
            InvokePolicy::AllowList(list) => list.len() * 32,
            _ => 0,
        };
        (256 + self.name.len() + functions + config + policy) as u64
    }

    /// The bytes of its stable encoding.
    pub fn stored_bytes(&self) -> u64 {
        encode_record(self).len() as u64
    }
}

/// The engine's stable structures.
pub struct PluginStore<M: Memory> {
    meta: StableCell<Meta, M>,
    plugins: StableBTreeMap<String, PluginRecord, M>,
    /// Heap copies of records read or written since the canister started (at most
    /// [`RECORD_CACHE_BYTES`]): a B-tree read costs more the more plugins there are.
    cached_records: RefCell<RecordCache>,
    usage: M,
    code: StableBTreeMap<[u8; 32], Vec<u8>, M>,
    code_refs: StableBTreeMap<[u8; 32], u64, M>,
    chunk_slots: StableBTreeMap<(u64, u32), u64, M>,
    /// Heap copies of `chunk_slots` entries written or looked up since the canister started (at
    /// most [`SLOT_CACHE_ENTRIES`]): a B-tree lookup costs ~6 k instructions per written chunk.
    cached_slots: BTreeMap<(u64, u32), u64>,
    chunk_data: ChunkData<M>,
    globals: StableBTreeMap<u64, Vec<u8>, M>,
    vars: StableBTreeMap<VarKey, Vec<u8>, M>,
    layout_1_chunks: StableBTreeMap<(u64, u32), Vec<u8>, M>,
}

#[derive(Default)]
struct RecordCache {
    records: BTreeMap<String, PluginRecord>,
    bytes: u64,
}

impl<M: Memory> PluginStore<M> {
    /// Opens the structures (empty on first use). Work that does not grow with what is stored:
    /// it runs in every `post_upgrade`. Panics on a foreign or newer layout: that is a broken
    /// deployment, not user input.
    pub fn init(memories: StableMemories<M>) -> Self {
        let meta = StableCell::init(
            memories.meta,
            Meta {
                version: LAYOUT_VERSION,
                next_id: 0,
            },
        );
        Self {
            meta,
            plugins: StableBTreeMap::init(memories.plugins),
            cached_records: RefCell::default(),
            usage: memories.usage,
            code: StableBTreeMap::init(memories.code),
            code_refs: StableBTreeMap::init(memories.code_refs),
            chunk_slots: StableBTreeMap::init(memories.chunk_slots),
            cached_slots: BTreeMap::new(),
            chunk_data: ChunkData::init(memories.chunk_data),
            globals: StableBTreeMap::init(memories.globals),
            vars: StableBTreeMap::init(memories.vars),
            layout_1_chunks: StableBTreeMap::init(memories.layout_1_chunks),
        }
    }

    /// The layout the stored data is in (1 until every layout-1 chunk has moved).
    pub fn layout_version(&self) -> u32 {
        self.meta.get().version
    }

    /// A fresh plugin id.
    pub fn next_id(&mut self) -> u64 {
        let Meta { version, next_id } = *self.meta.get();
        self.meta.set(Meta {
            version,
            next_id: next_id + 1,
        });
        next_id
    }

    /// A plugin's record, with its current usage.
    pub fn record(&self, name: &str) -> Option<PluginRecord> {
        self.with_record(name, PluginRecord::clone)
    }

    /// What `read` makes of a plugin's record (with its current usage), without copying the
    /// record: from the heap cache, else read from stable memory (then cached).
    pub fn with_record<R>(&self, name: &str, read: impl FnOnce(&PluginRecord) -> R) -> Option<R> {
        if let Some(record) = self.cached_records.borrow().records.get(name) {
            return Some(read(record));
        }
        let record = self.with_usage(self.plugins.get(&name.to_owned())?);
        self.cache(&record);
        Some(read(&record))
    }

    fn cache(&self, record: &PluginRecord) {
        let mut cache = self.cached_records.borrow_mut();
        let size = record.heap_bytes();
        let old = cache
            .records
            .get(&record.name)
            .map_or(0, PluginRecord::heap_bytes);
        let bytes = cache.bytes - old + size;
        if bytes <= RECORD_CACHE_BYTES {
            cache.bytes = bytes;
            cache.records.insert(record.name.clone(), record.clone());
        } else if old > 0 {
            cache.bytes -= old;
            cache.records.remove(&record.name);
        }
    }

    /// Whether a plugin of this name is installed.
    pub fn has_record(&self, name: &str) -> bool {
        self.plugins.contains_key(&name.to_owned())
    }

    /// How many plugins are installed.
    pub fn record_count(&self) -> u64 {
        self.plugins.len()
    }

    /// Records in name order within `names`, with their current usage.
    pub fn records(
        &self,
        names: impl std::ops::RangeBounds<String>,
    ) -> impl Iterator<Item = PluginRecord> + '_ {
        self.plugins
            .range(names)
            .map(|entry| self.with_usage(entry.value()))
    }

    /// Writes a whole record, and its usage.
    pub fn put_record(&mut self, record: &PluginRecord) {
        self.plugins.insert(record.name.clone(), record.clone());
        self.put_usage(record.id, &record.name, record.usage());
        self.cache(record);
    }

    /// Removes a record.
    pub fn remove_record(&mut self, name: &str) -> Option<PluginRecord> {
        let cache = self.cached_records.get_mut();
        if let Some(old) = cache.records.remove(name) {
            cache.bytes -= old.heap_bytes();
        }
        self.plugins
            .remove(&name.to_owned())
            .map(|record| self.with_usage(record))
    }

    /// Writes only a record's usage (calls, fuel used, memory pages): what a call changes. A
    /// B-tree rewrites the node a changed record is in; this writes 24 bytes in place.
    pub fn put_usage(&mut self, id: u64, name: &str, usage: Usage) {
        let offset = id * USAGE_BYTES;
        let needed = (offset + USAGE_BYTES).div_ceil(65536);
        if needed > self.usage.size() {
            let grown = self.usage.grow(needed - self.usage.size());
            assert!(grown >= 0, "stable memory was reserved before writing");
        }
        let mut bytes = Writer::default();
        bytes.u64(usage.calls);
        bytes.u64(usage.fuel_used_total);
        bytes.u32(usage.memory_pages);
        bytes.u32(1);
        self.usage.write(offset, &bytes.0);
        if let Some(cached) = self.cached_records.get_mut().records.get_mut(name) {
            cached.calls = usage.calls;
            cached.fuel_used_total = usage.fuel_used_total;
            cached.memory_pages = usage.memory_pages;
        }
    }

    fn with_usage(&self, mut record: PluginRecord) -> PluginRecord {
        let offset = record.id * USAGE_BYTES;
        if offset + USAGE_BYTES <= self.usage.size() * 65536 {
            let mut usage = [0u8; USAGE_BYTES as usize];
            self.usage.read(offset, &mut usage);
            let mut r = Reader(&usage);
            let (calls, fuel_used_total, memory_pages, present) =
                (r.u64(), r.u64(), r.u32(), r.u32());
            if present == 1 {
                record.calls = calls;
                record.fuel_used_total = fuel_used_total;
                record.memory_pages = memory_pages;
            }
        }
        record
    }

    /// Stores module bytes (once per distinct module) and counts one more user.
    pub fn add_code_ref(&mut self, sha256: [u8; 32], wasm: &[u8]) {
        let refs = self.code_refs.get(&sha256).unwrap_or(0);
        if refs == 0 {
            self.code.insert(sha256, wasm.to_vec());
        }
        self.code_refs.insert(sha256, refs + 1);
    }

    /// Whether these module bytes are stored already.
    pub fn has_code(&self, sha256: &[u8; 32]) -> bool {
        self.code_refs.contains_key(sha256)
    }

    /// Counts one user less; frees the bytes when none is left. Returns whether they were freed.
    pub fn release_code_ref(&mut self, sha256: [u8; 32]) -> bool {
        match self.code_refs.get(&sha256).unwrap_or(0) {
            0 | 1 => {
                self.code_refs.remove(&sha256);
                self.code.remove(&sha256);
                true
            }
            refs => {
                self.code_refs.insert(sha256, refs - 1);
                false
            }
        }
    }

    /// Module bytes by hash.
    pub fn code(&self, sha256: &[u8; 32]) -> Option<Vec<u8>> {
        self.code.get(sha256)
    }

    /// How many distinct modules are stored.
    pub fn code_count(&self) -> u64 {
        self.code.len()
    }

    /// The plugin's stored memory chunks (non-zero ones only), in index order.
    pub fn chunks(&self, id: u64) -> impl Iterator<Item = (u32, Vec<u8>)> + '_ {
        let old = self
            .layout_1_chunks
            .range((id, 0)..=(id, u32::MAX))
            .map(|entry| (entry.key().1, entry.value()));
        let slotted = self
            .chunk_slots
            .range((id, 0)..=(id, u32::MAX))
            .map(|entry| (entry.key().1, self.chunk_data.read(entry.value())));
        old.chain(slotted)
    }

    /// Stores one memory chunk of [`CHUNK_BYTES`]; an all-zero chunk is stored as absent.
    pub fn put_chunk(&mut self, id: u64, index: u32, bytes: &[u8]) {
        self.put_chunk_change(id, index, bytes, 0..bytes.len());
    }

    /// Stores one memory chunk of [`CHUNK_BYTES`] of which only the bytes in `changed` differ from
    /// what is stored: only those are written when the chunk already has a slot (stable writes
    /// cost an instruction per byte). An all-zero chunk is stored as absent.
    pub fn put_chunk_change(
        &mut self,
        id: u64,
        index: u32,
        bytes: &[u8],
        changed: std::ops::Range<usize>,
    ) {
        self.move_layout_1_chunks(id);
        let slot = self.slot(id, index);
        // A non-zero byte among those that changed settles it without reading the rest; each
        // byte is read at most once.
        if all_zero(&bytes[changed.clone()])
            && all_zero(&bytes[..changed.start])
            && all_zero(&bytes[changed.end..])
        {
            if let Some(slot) = slot {
                self.chunk_slots.remove(&(id, index));
                self.cached_slots.remove(&(id, index));
                self.chunk_data.free(slot);
            }
        } else if let Some(slot) = slot {
            self.chunk_data
                .write_at(slot, changed.start, &bytes[changed]);
        } else {
            let slot = self.chunk_data.allocate();
            self.chunk_slots.insert((id, index), slot);
            self.cache_slot(id, index, slot);
            self.chunk_data.write(slot, bytes);
        }
    }

    /// The slot of a stored chunk: from the slot cache, else from the B-tree (then cached).
    fn slot(&mut self, id: u64, index: u32) -> Option<u64> {
        if let Some(slot) = self.cached_slots.get(&(id, index)) {
            return Some(*slot);
        }
        let slot = self.chunk_slots.get(&(id, index))?;
        self.cache_slot(id, index, slot);
        Some(slot)
    }

    /// Caches a chunk's slot; a full cache is emptied first.
    fn cache_slot(&mut self, id: u64, index: u32, slot: u64) {
        if self.cached_slots.len() >= SLOT_CACHE_ENTRIES {
            self.cached_slots.clear();
        }
        self.cached_slots.insert((id, index), slot);
    }

    /// Moves a plugin's layout-1 chunks into slots (once; nothing to do in a layout-2 store).
    fn move_layout_1_chunks(&mut self, id: u64) {
        if self.layout_1_chunks.is_empty() {
            return;
        }
        let old: Vec<(u32, Vec<u8>)> = self
            .layout_1_chunks
            .range((id, 0)..=(id, u32::MAX))
            .map(|entry| (entry.key().1, entry.value()))
            .collect();
        for (index, bytes) in old {
            self.layout_1_chunks.remove(&(id, index));
            let slot = self.chunk_data.allocate();
            self.chunk_slots.insert((id, index), slot);
            self.chunk_data.write(slot, &bytes);
        }
        if self.layout_1_chunks.is_empty() {
            let next_id = self.meta.get().next_id;
            self.meta.set(Meta {
                version: LAYOUT_VERSION,
                next_id,
            });
        }
    }

    /// How many layout-1 chunks a plugin has left to move (0 in a layout-2 store).
    pub fn layout_1_chunk_count(&self, id: u64) -> u64 {
        if self.layout_1_chunks.is_empty() {
            return 0;
        }
        self.layout_1_chunks.range((id, 0)..=(id, u32::MAX)).count() as u64
    }

    /// Chunk slots in use (stored non-zero chunks of all plugins).
    pub fn stored_chunks(&self) -> u64 {
        self.chunk_slots.len()
    }

    /// The plugin's saved globals.
    pub fn globals(&self, id: u64) -> Vec<SavedGlobal> {
        self.globals
            .get(&id)
            .map(|bytes| decode_globals(&bytes))
            .unwrap_or_default()
    }

    /// Saves the plugin's globals.
    pub fn put_globals(&mut self, id: u64, globals: &[SavedGlobal]) {
        self.globals.insert(id, encode_globals(globals));
    }

    /// The plugin's vars.
    pub fn vars(&self, id: u64) -> BTreeMap<String, Vec<u8>> {
        self.vars
            .range(VarKey::new(id, "")..)
            .take_while(|entry| entry.key().id == id)
            .map(|entry| (entry.key().key.clone(), entry.value()))
            .collect()
    }

    /// Sets (`Some`) or deletes (`None`) one var.
    pub fn put_var(&mut self, id: u64, key: &str, value: Option<&[u8]>) {
        match value {
            Some(value) => self.vars.insert(VarKey::new(id, key), value.to_vec()),
            None => self.vars.remove(&VarKey::new(id, key)),
        };
    }

    /// Deletes all of a plugin's memory, globals and vars.
    pub fn delete_state(&mut self, id: u64) {
        self.move_layout_1_chunks(id);
        let chunks: Vec<(u32, u64)> = self
            .chunk_slots
            .range((id, 0)..=(id, u32::MAX))
            .map(|entry| (entry.key().1, entry.value()))
            .collect();
        for (index, slot) in chunks {
            self.chunk_slots.remove(&(id, index));
            self.cached_slots.remove(&(id, index));
            self.chunk_data.free(slot);
        }
        self.globals.remove(&id);
        for key in self.vars(id).into_keys() {
            self.vars.remove(&VarKey::new(id, &key));
        }
    }
}

/// Whether every byte of `bytes` is 0: sixteen bytes at a time (wasm SIMD), stopping at the first
/// that is not. Byte by byte (`Iterator::all`), a zero 4 KiB chunk costs ~6 IC instructions per
/// byte (`cargo xtask profile`; benches/README.md).
#[cfg_attr(target_family = "wasm", target_feature(enable = "simd128"))]
fn all_zero(bytes: &[u8]) -> bool {
    let (words, rest) = bytes.as_chunks::<16>();
    words.iter().all(|w| u128::from_ne_bytes(*w) == 0) && rest.iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests;
