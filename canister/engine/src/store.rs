//! Everything the engine keeps, in stable structures over `ic_stable_structures::Memory`.
//!
//! Stable layout (layout version [`LAYOUT_VERSION`]), one virtual memory per structure:
//!
//! ```text
//! meta        StableCell  "PLGE" | layout version u32 LE | next plugin id u64 LE
//! plugins     BTreeMap    name (String)            -> PluginInfo (see `encode_record`)
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
//! pages       BTreeMap    layout 1's chunks, (plugin id u64, chunk u32) -> 4 KiB: moved to
//!                         chunk_slots/chunk_data when a layout-1 store is opened, then empty
//!
//! PluginInfo: version u8 (=1) | id u64 | name str | owner bytes | code sha256 [32] |
//!   code size u64 | functions: u32 n, n × str | memory pages u32 | max pages: u8 flag, u32 |
//!   fuel limit u64 | calls u64 | fuel used total u64 | installed at u64 | updated at u64 |
//!   invoke policy: u8 tag (0 public, 1 owner only, 2 allow-list: u32 n, n × bytes) |
//!   config: u32 n, n × (str, str)
//! where str / bytes = u32 LE length, then the bytes; all integers little-endian.
//! ```

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, StableCell, Storable};

use crate::InvokePolicy;

/// Version of the stable layout described above.
pub const LAYOUT_VERSION: u32 = 2;
const MAGIC: &[u8; 4] = b"PLGE";
/// Most records kept on the heap (about 300 bytes each).
const RECORD_CACHE_ENTRIES: usize = 20_000;
/// Bytes of one plugin's usage entry.
const USAGE_BYTES: u64 = 24;
/// Size of the chunks in which plugin memory is stored and compared.
pub const CHUNK_BYTES: usize = 4096;

/// The stable memories the engine uses: one per structure, each from a fixed, never reused id.
pub struct StableMemories<M> {
    /// Layout magic, version and id counter.
    pub meta: M,
    /// Plugin records by name.
    pub plugins: M,
    /// Module bytes by sha256.
    pub code: M,
    /// Reference counts of module bytes.
    pub code_refs: M,
    /// Layout 1's plugin memory chunks (emptied by the move to layout 2).
    pub pages: M,
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
            pages,
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
            pages,
            chunk_slots,
            chunk_data,
            usage,
            globals,
            vars,
        }
    }
}

/// Everything the engine keeps about an installed plugin (its state aside), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Internal id, never reused; keys the plugin's memory, globals and vars.
    pub id: u64,
    /// The plugin's name.
    pub name: String,
    /// The installer's principal bytes.
    pub owner: Vec<u8>,
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

/// The engine's stable structures.
pub struct Store<M: Memory> {
    meta: StableCell<Meta, M>,
    plugins: StableBTreeMap<String, PluginInfo, M>,
    /// Heap copies of records read or written since the canister started (at most
    /// [`RECORD_CACHE_ENTRIES`]): a B-tree read costs more the more plugins there are.
    cached_records: RefCell<BTreeMap<String, PluginInfo>>,
    usage: M,
    code: StableBTreeMap<[u8; 32], Vec<u8>, M>,
    code_refs: StableBTreeMap<[u8; 32], u64, M>,
    chunk_slots: StableBTreeMap<(u64, u32), u64, M>,
    chunk_data: ChunkData<M>,
    globals: StableBTreeMap<u64, Vec<u8>, M>,
    vars: StableBTreeMap<VarKey, Vec<u8>, M>,
}

impl<M: Memory> Store<M> {
    /// Opens the structures (empty on first use). Panics on a foreign or newer layout: that is a
    /// broken deployment, not user input.
    pub fn init(memories: StableMemories<M>) -> Self {
        let meta = StableCell::init(
            memories.meta,
            Meta {
                version: LAYOUT_VERSION,
                next_id: 0,
            },
        );
        let layout_1 = meta.get().version == 1;
        let mut store = Self {
            meta,
            plugins: StableBTreeMap::init(memories.plugins),
            cached_records: RefCell::new(BTreeMap::new()),
            usage: memories.usage,
            code: StableBTreeMap::init(memories.code),
            code_refs: StableBTreeMap::init(memories.code_refs),
            chunk_slots: StableBTreeMap::init(memories.chunk_slots),
            chunk_data: ChunkData::init(memories.chunk_data),
            globals: StableBTreeMap::init(memories.globals),
            vars: StableBTreeMap::init(memories.vars),
        };
        if layout_1 {
            store.move_layout_1_chunks(StableBTreeMap::init(memories.pages));
        }
        store
    }

    /// Layout 1 kept chunk bytes as B-tree values, and a B-tree rewrites every value of a node
    /// when one changes (~110 k instructions per 4 KiB chunk written); layout 2 writes a chunk's
    /// bytes in place. Moves every chunk, then empties the old map.
    fn move_layout_1_chunks(&mut self, mut pages: StableBTreeMap<(u64, u32), Vec<u8>, M>) {
        for entry in pages.iter() {
            let (id, index) = *entry.key();
            self.put_chunk(id, index, &entry.value());
        }
        pages.clear_new();
        let next_id = self.meta.get().next_id;
        self.meta.set(Meta {
            version: LAYOUT_VERSION,
            next_id,
        });
    }

    /// A fresh plugin id.
    pub fn next_id(&mut self) -> u64 {
        let id = self.meta.get().next_id;
        self.meta.set(Meta {
            version: LAYOUT_VERSION,
            next_id: id + 1,
        });
        id
    }

    /// A plugin's record, with its current usage.
    pub fn record(&self, name: &str) -> Option<PluginInfo> {
        if let Some(record) = self.cached_records.borrow().get(name) {
            return Some(record.clone());
        }
        let record = self.with_usage(self.plugins.get(&name.to_owned())?);
        self.cache(&record);
        Some(record)
    }

    fn cache(&self, record: &PluginInfo) {
        let mut cached = self.cached_records.borrow_mut();
        if cached.len() < RECORD_CACHE_ENTRIES || cached.contains_key(&record.name) {
            cached.insert(record.name.clone(), record.clone());
        }
    }

    /// Whether a plugin of this name is installed.
    pub fn has_record(&self, name: &str) -> bool {
        self.plugins.contains_key(&name.to_owned())
    }

    /// Records in name order within `names`, with their current usage.
    pub fn records(
        &self,
        names: impl std::ops::RangeBounds<String>,
    ) -> impl Iterator<Item = PluginInfo> + '_ {
        self.plugins
            .range(names)
            .map(|entry| self.with_usage(entry.value()))
    }

    /// Writes a whole record, and its usage.
    pub fn put_record(&mut self, record: &PluginInfo) {
        self.plugins.insert(record.name.clone(), record.clone());
        self.put_usage(record);
        self.cache(record);
    }

    /// Removes a record.
    pub fn remove_record(&mut self, name: &str) -> Option<PluginInfo> {
        self.cached_records.get_mut().remove(name);
        self.plugins
            .remove(&name.to_owned())
            .map(|record| self.with_usage(record))
    }

    /// Writes only a record's usage (calls, fuel used, memory pages): what a call changes. A
    /// B-tree rewrites the node a changed record is in; this writes 24 bytes in place.
    pub fn put_usage(&mut self, record: &PluginInfo) {
        let offset = record.id * USAGE_BYTES;
        let needed = (offset + USAGE_BYTES).div_ceil(65536);
        if needed > self.usage.size() {
            let grown = self.usage.grow(needed - self.usage.size());
            assert!(grown >= 0, "stable memory is exhausted");
        }
        let mut usage = [0u8; USAGE_BYTES as usize];
        usage[..8].copy_from_slice(&record.calls.to_le_bytes());
        usage[8..16].copy_from_slice(&record.fuel_used_total.to_le_bytes());
        usage[16..20].copy_from_slice(&record.memory_pages.to_le_bytes());
        usage[20..].copy_from_slice(&1u32.to_le_bytes());
        self.usage.write(offset, &usage);
        if let Some(cached) = self.cached_records.get_mut().get_mut(&record.name) {
            cached.calls = record.calls;
            cached.fuel_used_total = record.fuel_used_total;
            cached.memory_pages = record.memory_pages;
        }
    }

    fn with_usage(&self, mut record: PluginInfo) -> PluginInfo {
        let offset = record.id * USAGE_BYTES;
        if offset + USAGE_BYTES <= self.usage.size() * 65536 {
            let mut usage = [0u8; USAGE_BYTES as usize];
            self.usage.read(offset, &mut usage);
            if usage[20..] == 1u32.to_le_bytes() {
                let word =
                    |at: usize| u64::from_le_bytes(usage[at..at + 8].try_into().expect("8 bytes"));
                record.calls = word(0);
                record.fuel_used_total = word(8);
                record.memory_pages =
                    u32::from_le_bytes(usage[16..20].try_into().expect("4 bytes"));
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

    /// The plugin's stored memory chunks (non-zero ones only).
    pub fn chunks(&self, id: u64) -> impl Iterator<Item = (u32, Vec<u8>)> + '_ {
        self.chunk_slots
            .range((id, 0)..=(id, u32::MAX))
            .map(|entry| (entry.key().1, self.chunk_data.read(entry.value())))
    }

    /// Stores one memory chunk of [`CHUNK_BYTES`]; an all-zero chunk is stored as absent.
    pub fn put_chunk(&mut self, id: u64, index: u32, bytes: &[u8]) {
        let slot = self.chunk_slots.get(&(id, index));
        if bytes.iter().all(|b| *b == 0) {
            if let Some(slot) = slot {
                self.chunk_slots.remove(&(id, index));
                self.chunk_data.free(slot);
            }
        } else {
            let slot = slot.unwrap_or_else(|| {
                let slot = self.chunk_data.allocate();
                self.chunk_slots.insert((id, index), slot);
                slot
            });
            self.chunk_data.write(slot, bytes);
        }
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
        let chunks: Vec<(u32, u64)> = self
            .chunk_slots
            .range((id, 0)..=(id, u32::MAX))
            .map(|entry| (entry.key().1, entry.value()))
            .collect();
        for (index, slot) in chunks {
            self.chunk_slots.remove(&(id, index));
            self.chunk_data.free(slot);
        }
        self.globals.remove(&id);
        for key in self.vars(id).into_keys() {
            self.vars.remove(&VarKey::new(id, &key));
        }
    }
}

/// Memory chunk contents in fixed 4 KiB slots of a raw stable memory, written in place, with a
/// free list threaded through the free slots (layout in the module docs).
struct ChunkData<M: Memory> {
    memory: M,
    /// Slots ever allocated (in use or free).
    slots: u64,
    /// The first free slot + 1 (0: none).
    free: u64,
}

impl<M: Memory> ChunkData<M> {
    fn init(memory: M) -> Self {
        let mut header = [0u8; 16];
        if memory.size() > 0 {
            memory.read(0, &mut header);
        }
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        Self {
            slots: word(0),
            free: word(8),
            memory,
        }
    }

    fn offset(slot: u64) -> u64 {
        (slot + 1) * CHUNK_BYTES as u64
    }

    fn save_header(&self) {
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&self.slots.to_le_bytes());
        header[8..].copy_from_slice(&self.free.to_le_bytes());
        self.memory.write(0, &header);
    }

    fn allocate(&mut self) -> u64 {
        let slot = if self.free > 0 {
            let slot = self.free - 1;
            let mut next = [0u8; 8];
            self.memory.read(Self::offset(slot), &mut next);
            self.free = u64::from_le_bytes(next);
            slot
        } else {
            let slot = self.slots;
            self.slots += 1;
            let needed = Self::offset(slot + 1).div_ceil(65536);
            if needed > self.memory.size() {
                let grown = self.memory.grow(needed - self.memory.size());
                assert!(grown >= 0, "stable memory is exhausted");
            }
            slot
        };
        self.save_header();
        slot
    }

    fn free(&mut self, slot: u64) {
        self.memory
            .write(Self::offset(slot), &self.free.to_le_bytes());
        self.free = slot + 1;
        self.save_header();
    }

    fn write(&self, slot: u64, bytes: &[u8]) {
        assert_eq!(bytes.len(), CHUNK_BYTES, "memory is stored in whole chunks");
        self.memory.write(Self::offset(slot), bytes);
    }

    fn read(&self, slot: u64) -> Vec<u8> {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        self.memory.read(Self::offset(slot), &mut chunk);
        chunk
    }
}

/// Key of a var: the plugin id (big-endian, so byte order is key order), then the var's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct VarKey {
    id: u64,
    key: String,
}

impl VarKey {
    fn new(id: u64, key: &str) -> Self {
        Self {
            id,
            key: key.to_owned(),
        }
    }
}

impl Storable for VarKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut bytes = self.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(self.key.as_bytes());
        Cow::Owned(bytes)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let (id, key) = bytes.split_at(8);
        Self {
            id: u64::from_be_bytes(id.try_into().expect("8 bytes")),
            key: String::from_utf8(key.to_vec()).expect("var keys are utf-8"),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// A mutable global's saved value: its value type tag and raw bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedGlobal {
    /// 0 i32, 1 i64, 2 f32, 3 f64.
    pub tag: u8,
    /// The value's bits.
    pub bits: u64,
}

fn encode_globals(globals: &[SavedGlobal]) -> Vec<u8> {
    let mut out = Writer::default();
    out.u32(globals.len() as u32);
    for g in globals {
        out.u8(g.tag);
        out.u64(g.bits);
    }
    out.0
}

fn decode_globals(bytes: &[u8]) -> Vec<SavedGlobal> {
    let mut r = Reader(bytes);
    let n = r.u32();
    (0..n)
        .map(|_| SavedGlobal {
            tag: r.u8(),
            bits: r.u64(),
        })
        .collect()
}

struct Meta {
    /// The layout the stored data is in (1 until its chunks are moved, see `Store::init`).
    version: u32,
    next_id: u64,
}

impl Storable for Meta {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut w = Writer::default();
        w.0.extend_from_slice(MAGIC);
        w.u32(self.version);
        w.u64(self.next_id);
        Cow::Owned(w.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        assert_eq!(&bytes[..4], MAGIC, "not a plugin engine layout");
        let mut r = Reader(&bytes[4..]);
        let version = r.u32();
        assert!(
            (1..=LAYOUT_VERSION).contains(&version),
            "unsupported engine layout version {version}"
        );
        Meta {
            version,
            next_id: r.u64(),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 16,
        is_fixed_size: true,
    };
}

impl Storable for PluginInfo {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode_record(self))
    }

    fn into_bytes(self) -> Vec<u8> {
        encode_record(&self)
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        decode_record(&bytes)
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// The record's stable encoding (see the module docs).
pub fn encode_record(r: &PluginInfo) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(1);
    w.u64(r.id);
    w.bytes(r.name.as_bytes());
    w.bytes(&r.owner);
    w.0.extend_from_slice(&r.code_sha256);
    w.u64(r.code_size);
    w.u32(r.functions.len() as u32);
    for f in &r.functions {
        w.bytes(f.as_bytes());
    }
    w.u32(r.memory_pages);
    w.u8(r.max_memory_pages.is_some() as u8);
    w.u32(r.max_memory_pages.unwrap_or(0));
    w.u64(r.fuel_limit);
    w.u64(r.calls);
    w.u64(r.fuel_used_total);
    w.u64(r.installed_at_ns);
    w.u64(r.updated_at_ns);
    match &r.invoke_policy {
        InvokePolicy::Public => w.u8(0),
        InvokePolicy::OwnerOnly => w.u8(1),
        InvokePolicy::AllowList(list) => {
            w.u8(2);
            w.u32(list.len() as u32);
            for p in list {
                w.bytes(p);
            }
        }
    }
    w.u32(r.config.len() as u32);
    for (k, v) in &r.config {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
    w.0
}

/// Decodes [`encode_record`]'s output. Panics on bytes it did not write (a broken invariant).
pub fn decode_record(bytes: &[u8]) -> PluginInfo {
    let mut r = Reader(bytes);
    assert_eq!(r.u8(), 1, "unknown plugin record version");
    let id = r.u64();
    let name = r.string();
    let owner = r.bytes().to_vec();
    let mut code_sha256 = [0u8; 32];
    code_sha256.copy_from_slice(r.take(32));
    let code_size = r.u64();
    let functions = (0..r.u32()).map(|_| r.string()).collect();
    let memory_pages = r.u32();
    let has_max = r.u8() == 1;
    let max = r.u32();
    let fuel_limit = r.u64();
    let calls = r.u64();
    let fuel_used_total = r.u64();
    let installed_at_ns = r.u64();
    let updated_at_ns = r.u64();
    let invoke_policy = match r.u8() {
        0 => InvokePolicy::Public,
        1 => InvokePolicy::OwnerOnly,
        _ => InvokePolicy::AllowList((0..r.u32()).map(|_| r.bytes().to_vec()).collect()),
    };
    let config = (0..r.u32()).map(|_| (r.string(), r.string())).collect();
    PluginInfo {
        id,
        name,
        owner,
        code_sha256,
        code_size,
        functions,
        memory_pages,
        max_memory_pages: has_max.then_some(max),
        fuel_limit,
        calls,
        fuel_used_total,
        installed_at_ns,
        updated_at_ns,
        invoke_policy,
        config,
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.take(n)
    }
    fn string(&mut self) -> String {
        String::from_utf8(self.bytes().to_vec()).expect("stored strings are utf-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    /// The store's memories, kept so that a store can be reopened over them.
    #[derive(Clone, Default)]
    struct Memories([VectorMemory; 10]);

    impl Memories {
        fn open(&self) -> Store<VectorMemory> {
            Store::init(StableMemories::from_array(self.0.clone()))
        }
    }

    fn chunk(byte: u8) -> Vec<u8> {
        vec![byte; CHUNK_BYTES]
    }

    #[test]
    fn chunks_are_written_in_place_and_their_slots_reused() {
        let memories = Memories::default();
        let mut store = memories.open();
        store.put_chunk(1, 0, &chunk(1));
        store.put_chunk(1, 7, &chunk(2));
        store.put_chunk(2, 0, &chunk(3));
        store.put_chunk(1, 7, &chunk(4));
        assert_eq!(store.stored_chunks(), 3);
        store.put_chunk(1, 0, &chunk(0));
        let reopened = memories.open();
        assert_eq!(reopened.chunks(1).collect::<Vec<_>>(), vec![(7, chunk(4))]);
        assert_eq!(reopened.chunks(2).collect::<Vec<_>>(), vec![(0, chunk(3))]);

        // Freed slots (a zeroed chunk, a deleted plugin) are used again before new ones.
        let mut store = reopened;
        store.delete_state(1);
        assert_eq!(store.stored_chunks(), 1);
        let before = store.chunk_data.slots;
        store.put_chunk(3, 0, &chunk(5));
        store.put_chunk(3, 1, &chunk(6));
        assert_eq!(store.chunk_data.slots, before);
        store.put_chunk(3, 2, &chunk(7));
        assert_eq!(store.chunk_data.slots, before + 1);
        let reopened = memories.open();
        assert_eq!(
            reopened.chunks(3).collect::<Vec<_>>(),
            vec![(0, chunk(5)), (1, chunk(6)), (2, chunk(7))]
        );
        assert_eq!(reopened.chunks(2).collect::<Vec<_>>(), vec![(0, chunk(3))]);
    }

    fn plugin(id: u64, name: &str) -> PluginInfo {
        PluginInfo {
            id,
            name: name.into(),
            owner: vec![1],
            code_sha256: [0; 32],
            code_size: 1,
            functions: vec!["f".into()],
            memory_pages: 1,
            max_memory_pages: None,
            fuel_limit: 10,
            calls: 0,
            fuel_used_total: 0,
            installed_at_ns: 0,
            updated_at_ns: 0,
            invoke_policy: InvokePolicy::Public,
            config: BTreeMap::new(),
        }
    }

    #[test]
    fn usage_is_written_in_place_and_read_with_the_record() {
        let memories = Memories::default();
        let mut store = memories.open();
        store.put_record(&plugin(3, "b"));
        store.put_record(&plugin(0, "a"));
        assert_eq!(store.record("b"), Some(plugin(3, "b")));
        let mut used = plugin(3, "b");
        (used.calls, used.fuel_used_total, used.memory_pages) = (5, 700, 9);
        store.put_usage(&used);
        assert_eq!(
            store.record("b"),
            Some(used.clone()),
            "the heap copy follows"
        );
        let store = memories.open();
        assert_eq!(store.record("b"), Some(used.clone()));
        assert_eq!(
            store.records(..).collect::<Vec<_>>(),
            vec![plugin(0, "a"), used]
        );

        // A record written before usage was kept apart (layout 1) shows its own figures.
        let mut old = plugin(9, "c");
        old.calls = 4;
        let mut store = store;
        store.plugins.insert("c".into(), old.clone());
        assert_eq!(store.record("c"), Some(old));
        assert_eq!(store.remove_record("b").map(|r| r.calls), Some(5));
        assert!(!store.has_record("b"));
    }

    #[test]
    fn a_layout_1_store_moves_its_chunks_when_opened() {
        let memories = Memories::default();
        {
            // What layout 1 left: its meta, and chunks as B-tree values.
            let [meta, _, _, _, pages, ..] = memories.0.clone();
            StableCell::init(
                meta,
                Meta {
                    version: 1,
                    next_id: 3,
                },
            );
            let mut old: StableBTreeMap<(u64, u32), Vec<u8>, _> = StableBTreeMap::init(pages);
            old.insert((0, 0), chunk(9));
            old.insert((2, 5), chunk(8));
        }
        let mut store = memories.open();
        assert_eq!(store.meta.get().version, LAYOUT_VERSION);
        assert_eq!(store.chunks(0).collect::<Vec<_>>(), vec![(0, chunk(9))]);
        assert_eq!(store.chunks(2).collect::<Vec<_>>(), vec![(5, chunk(8))]);
        assert_eq!(store.next_id(), 3);
        let [.., pages, _, _, _, _, _] = memories.0.clone();
        let old: StableBTreeMap<(u64, u32), Vec<u8>, _> = StableBTreeMap::init(pages);
        assert!(old.is_empty(), "layout 1's chunks are gone once moved");
        // Opening again finds layout 2 and moves nothing.
        assert_eq!(memories.open().chunks(2).count(), 1);
    }
}
