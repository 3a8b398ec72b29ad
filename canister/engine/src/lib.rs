//! The plugin engine: runs untrusted Extism-ABI plugins under wasmi with budgets, isolated durable
//! state and exact rollback. Pure library: no `ic-cdk`; caller, time and the instruction counter
//! come in as values, stable memory as `ic_stable_structures::Memory`.
//!
//! # Rooms
//!
//! - [`abi`]: the plugin ABI, one table of host functions, and the per-call arena.
//! - [`budget`]: fuel slices and the message's instruction limit.
//! - `install`, `call`, `manage`: the operations (installing code; running plugin functions;
//!   changing installed plugins).
//! - `instance`: a live instance, its commit, rollback and restore.
//! - `cache`: compiled modules and live instances within the heap budget.
//! - [`store`]: everything kept in stable memory, and its layout; [`stable`]: reserving stable
//!   memory before writing.
//! - `validate`: what install checks before wasmi sees a module.
//!
//! # State and rollback
//!
//! Stable memory is the source of truth ([`store`]): a plugin's linear memory is kept as 4 KiB
//! chunks, its mutable globals (all of them: install rewrites the module to export private ones,
//! see `export-globals`) and its vars next to it. The heap holds caches only: compiled modules and
//! live instances, each with a *shadow* copy of its memory as of the last commit.
//!
//! - A call that succeeds (and commits) writes the bytes it wrote that differ from the shadow
//!   (from the first to the last changed 64 bytes of each chunk), its changed globals and the vars
//!   it set, after reserving stable memory for them.
//! - A call that fails (trap, out of fuel, a limit, an error) or does not commit (a query)
//!   copies the 1 KiB spans it wrote back from the shadow and restores globals and vars. If it grew
//!   memory, the instance is dropped instead (wasm memory cannot shrink).
//! - After a canister upgrade or an eviction, an instance is rebuilt from the stored module and
//!   the stored chunks, globals and vars, and continues identically. Start functions and
//!   initialisers ran once, at install: their effects are in the stored state.
//!
//! Which spans a call wrote comes from wasmi itself (`vendor/wasmi/PATCH.md`), so the cost of a
//! commit or a rollback follows what a call wrote, not the size of the plugin's memory.
//!
//! Modules are validated in full at install; the engine compiles lazily, so reloading a stored
//! module only parses it, and each function is translated when a call first reaches it.

pub mod abi;
pub mod budget;
mod cache;
mod call;
mod install;
mod instance;
mod limits;
mod manage;
mod request;
mod script;
pub mod stable;
pub mod store;
mod validate;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::Memory;
use ic_stable_structures::memory_manager::{MemoryId, VirtualMemory};
use wasmi::{CompilationMode, Config, CustomFuelCosts, Linker};

use crate::abi::{AbiLimits, HostState};
pub use crate::abi::{ENV, HostFunction, IMPORTS, USER, WASI, WASI_IMPORTS};
pub use crate::budget::InstructionMeter;
use crate::cache::Caches;
pub use crate::cache::MODULE_HEAP_PER_WASM_BYTE;
pub use crate::limits::{Limits, WASM_PAGE_BYTES};
pub use crate::request::{InstallRequest, InvokeOutcome, InvokeRequest, UpgradePluginRequest};
pub use crate::stable::StableSpace;
use crate::store::{CHUNK_BYTES, PluginStore};
pub use crate::store::{LAYOUT_VERSION, PluginRecord, StableMemories};
pub use plugin_host_api::{
    InstallError, InvokeError, InvokeFailure, InvokePolicy, LimitExceeded, LogEntry, LogLevel,
    ManageError, StorageFull,
};

/// Bytes reserved in a B-tree on top of twice what an operation writes there: room for the nodes
/// its inserts may split.
const B_TREE_MARGIN: u64 = 64 * 1024;

/// Longest text echoed back from a caller's or plugin's input in an error.
const ECHO_BYTES: usize = 256;

/// The engine: installed plugins, their code and state.
pub struct Engine<M: Memory + Clone> {
    wasmi: wasmi::Engine,
    linker: Linker<HostState>,
    /// The linker with WASI preview 1 too, made when the first module importing WASI is
    /// instantiated: plugins without WASI never meet the shim, nor its allocations.
    wasi_linker: std::cell::OnceCell<Linker<HostState>>,
    store: PluginStore<VirtualMemory<M>>,
    space: Rc<StableSpace<M>>,
    ids: StableMemories<MemoryId>,
    limits: Limits,
    meter: Rc<dyn InstructionMeter>,
    caches: Caches,
    totals: RefCell<Option<Totals>>,
}

/// Counts the caps need, kept on the heap (built from the records when first needed).
#[derive(Default)]
struct Totals {
    plugins_by_owner: BTreeMap<Principal, u64>,
    code_bytes: u64,
}

impl<M: Memory + Clone> Engine<M> {
    /// Opens the engine over the memories `ids` of `space` (empty on first use). Does no work
    /// that grows with what is stored: it runs in every `post_upgrade`. Heap caches start cold.
    pub fn init(
        space: Rc<StableSpace<M>>,
        ids: StableMemories<MemoryId>,
        limits: Limits,
        meter: Rc<dyn InstructionMeter>,
    ) -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            // A call's fuel must not depend on what the heap caches hold: wasmi would charge
            // translating a function to the call that first reaches it, so the same call on the
            // same state would cost more after an upgrade or an eviction. Translation is bounded
            // by the module's size and counted by the message's instruction limit; guest code and
            // copies are charged as wasmi charges them (64 bytes copied per fuel unit).
            .fuel_cost(CustomFuelCosts {
                bytes_copied_per_fuel: 64,
                fuel_per_bytes_translated: 0,
                fuel_per_bytes_validated: 0,
            })
            .compilation_mode(CompilationMode::Lazy)
            .wasm_multi_memory(false)
            .wasm_custom_page_sizes(false)
            .wasm_wide_arithmetic(false);
        let wasmi = wasmi::Engine::new(&config);
        let mut linker = Linker::new(&wasmi);
        abi::link(&mut linker).expect("the ABI table links once");
        let memories = ids.into_array().map(|id| space.get(id));
        Self {
            wasmi,
            linker,
            wasi_linker: std::cell::OnceCell::new(),
            store: PluginStore::init(StableMemories::from_array(memories)),
            space,
            ids,
            limits,
            meter,
            caches: Caches::default(),
            totals: RefCell::default(),
        }
    }

    /// The engine's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// One plugin.
    pub fn get(&self, name: &str) -> Option<PluginRecord> {
        self.store.record(name)
    }

    /// Plugins in name order after `start_after`: at most `limit`, and fewer if their stored
    /// size passes `max_bytes` (at least one); and the name to continue after.
    pub fn list(
        &self,
        start_after: Option<&str>,
        limit: usize,
        max_bytes: u64,
    ) -> (Vec<PluginRecord>, Option<String>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let start = match start_after {
            Some(name) => Excluded(name.to_owned()),
            None => Unbounded,
        };
        let mut page = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for record in self.store.records((start, Unbounded)) {
            bytes += record.stored_bytes();
            if page.len() == limit || (bytes > max_bytes && !page.is_empty()) {
                more = true;
                break;
            }
            page.push(record);
        }
        let next = more.then(|| page.last().map(|p| p.name.clone())).flatten();
        (page, next)
    }

    /// Number of distinct modules stored (shared code is stored once).
    pub fn stored_modules(&self) -> u64 {
        self.store.code_count()
    }

    /// Number of plugins installed.
    pub fn plugin_count(&self) -> u64 {
        self.store.record_count()
    }

    /// Number of plugins `owner` owns.
    pub fn plugins_of(&self, owner: &Principal) -> u64 {
        self.with_totals(|t| t.plugins_by_owner.get(owner).copied().unwrap_or(0))
    }

    /// Bytes of distinct module code stored.
    pub fn code_bytes(&self) -> u64 {
        self.with_totals(|t| t.code_bytes)
    }

    /// Heap bytes the engine's caches hold.
    pub fn cached_heap_bytes(&self) -> u64 {
        self.caches.heap_bytes()
    }

    /// Plugins with a live instance on the heap.
    pub fn live_instances(&self) -> usize {
        self.caches.live_instances()
    }

    /// The layout the stored data is in.
    pub fn layout_version(&self) -> u32 {
        self.store.layout_version()
    }

    /// The counts for the caps, built from the records the first time they are needed after a
    /// canister start (bounded by the plugin cap; never in an upgrade).
    fn with_totals<R>(&self, f: impl FnOnce(&mut Totals) -> R) -> R {
        let mut totals = self.totals.borrow_mut();
        let totals = totals.get_or_insert_with(|| {
            let mut totals = Totals::default();
            let mut seen = std::collections::BTreeSet::new();
            for record in self.store.records(..) {
                *totals.plugins_by_owner.entry(record.owner).or_default() += 1;
                if seen.insert(record.code_sha256) {
                    totals.code_bytes += record.code_size;
                }
            }
            totals
        });
        f(totals)
    }

    fn reserve(&self, writes: Writes) -> Result<(), StorageFull> {
        reserve(&self.space, &self.ids, writes)
    }

    fn host_state(
        &self,
        config: BTreeMap<String, String>,
        vars: BTreeMap<String, Vec<u8>>,
    ) -> HostState {
        HostState::new(
            AbiLimits::from(&self.limits),
            config,
            vars,
            self.meter.clone(),
        )
    }
}

/// What an operation may write to stable memory, by structure: reserved before it writes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Writes {
    /// Module bytes stored anew.
    pub code: u64,
    /// Bytes of a record written whole.
    pub record: u64,
    /// Memory chunks written (each 4 KiB in a slot, and an entry where the slot is found).
    pub chunks: u64,
    /// Bytes of vars (keys and values).
    pub vars: u64,
    /// Bytes of saved globals.
    pub globals: u64,
}

/// Reserves stable memory for `writes` (see [`StableSpace::reserve`]): in each B-tree twice the
/// bytes plus room for the nodes an insert may split, in chunk slots the chunks and the header.
fn reserve<M: Memory + Clone>(
    space: &StableSpace<M>,
    ids: &StableMemories<MemoryId>,
    writes: Writes,
) -> Result<(), StorageFull> {
    let tree = |bytes: u64| match bytes {
        0 => 0,
        bytes => 2 * bytes + B_TREE_MARGIN,
    };
    let chunk_data = match writes.chunks {
        0 => 0,
        chunks => (chunks + 2) * CHUNK_BYTES as u64,
    };
    space.reserve([
        (ids.code, tree(writes.code)),
        (ids.code_refs, tree(writes.code.min(1) * 40)),
        (ids.plugins, tree(writes.record)),
        (ids.usage, 24),
        (ids.chunk_slots, tree(writes.chunks * 24)),
        (ids.chunk_data, chunk_data),
        (ids.globals, tree(writes.globals)),
        (ids.vars, tree(writes.vars)),
    ])
}

/// Text from a caller or a plugin, cut to [`ECHO_BYTES`] for an error reply.
fn echo(text: &str) -> String {
    if text.len() <= ECHO_BYTES {
        return text.to_owned();
    }
    let mut end = ECHO_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The linker for a module: `linker`, or for one that imports WASI (`wasi`) the one with WASI
/// preview 1 too, made the first time it is needed.
fn linker_for<'a>(
    wasmi: &wasmi::Engine,
    linker: &'a Linker<HostState>,
    wasi_linker: &'a std::cell::OnceCell<Linker<HostState>>,
    wasi: bool,
) -> &'a Linker<HostState> {
    if !wasi {
        return linker;
    }
    wasi_linker.get_or_init(|| {
        let mut linker = Linker::new(wasmi);
        abi::link(&mut linker).expect("the ABI table links once");
        abi::link_wasi(&mut linker).expect("the WASI table links once");
        linker
    })
}
