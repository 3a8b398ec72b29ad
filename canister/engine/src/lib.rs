//! The plugin engine: runs untrusted Extism-ABI plugins under wasmi with budgets, isolated durable
//! state and exact rollback. Pure library: no `ic-cdk`; caller, time and the instruction counter
//! come in as values, stable memory as `ic_stable_structures::Memory`.
//!
//! # Rooms
//!
//! - [`abi`]: the plugin ABI, one table of host functions, and the per-call arena.
//! - [`budget`]: fuel slices and the message's instruction limit.
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
//! - A call that succeeds (and commits) writes the chunks it wrote that differ from the shadow,
//!   its changed globals and the vars it set, after reserving stable memory for them.
//! - A call that fails (trap, out of fuel, a limit, an error) or does not commit (a query)
//!   copies the chunks it wrote back from the shadow and restores globals and vars. If it grew
//!   memory, the instance is dropped instead (wasm memory cannot shrink).
//! - After a canister upgrade or an eviction, an instance is rebuilt from the stored module and
//!   the stored chunks, globals and vars, and continues identically. Start functions and
//!   initialisers ran once, at install: their effects are in the stored state.
//!
//! Which chunks a call wrote comes from wasmi itself (`vendor/wasmi/PATCH.md`), so the cost of a
//! commit or a rollback follows what a call wrote, not the size of the plugin's memory.
//!
//! Modules are validated in full at install; the engine compiles lazily, so reloading a stored
//! module only parses it, and each function is translated when a call first reaches it.

pub mod abi;
pub mod budget;
mod cache;
mod instance;
mod limits;
mod request;
pub mod stable;
pub mod store;
mod validate;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::Memory;
use ic_stable_structures::memory_manager::{MemoryId, VirtualMemory};
use sha2::{Digest, Sha256};
use wasmi::{CompilationMode, Config, Linker, Module};

use crate::abi::{AbiLimits, CallContext, HostState};
pub use crate::abi::{ENV, HostFunction, IMPORTS, USER};
pub use crate::budget::InstructionMeter;
use crate::budget::{CallBudget, limit};
use crate::cache::Caches;
pub use crate::cache::MODULE_HEAP_PER_WASM_BYTE;
use crate::instance::{CompiledModule, LiveInstance};
pub use crate::limits::{Limits, WASM_PAGE_BYTES};
pub use crate::request::{InstallRequest, InvokeOutcome, InvokeRequest, UpgradePluginRequest};
pub use crate::stable::StableSpace;
use crate::store::{CHUNK_BYTES, PluginStore, RECORD_CACHE_BYTES};
pub use crate::store::{LAYOUT_VERSION, PluginRecord, StableMemories};
pub use plugin_host_api::{
    InstallError, InvokeError, InvokeFailure, InvokePolicy, LimitExceeded, LogEntry, LogLevel,
    ManageError, StorageFull,
};

// The chunks wasmi marks are the chunks the store keeps.
const _: () = assert!(CHUNK_BYTES == wasmi::dirty::CHUNK_BYTES);

/// Bytes reserved on top of twice what an operation writes: room for the B-tree nodes its
/// inserts may split.
const RESERVE_MARGIN: u64 = 256 * 1024;

/// Longest text echoed back from a caller's or plugin's input in an error.
const ECHO_BYTES: usize = 256;

/// The engine: installed plugins, their code and state.
pub struct Engine<M: Memory + Clone> {
    wasmi: wasmi::Engine,
    linker: Linker<HostState>,
    store: PluginStore<VirtualMemory<M>>,
    space: Rc<StableSpace<M>>,
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

/// Whether `Engine::compile` validates every function body up front.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Validate {
    /// New bytes from a user: an invalid module must be refused at install.
    Yes,
    /// Bytes from stable memory, validated in full when they were installed.
    No,
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
            store: PluginStore::init(StableMemories::from_array(memories)),
            space,
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

    /// Validates and installs a module; runs its start function and initialiser once; stores
    /// its initial state. Nothing is stored unless everything succeeds.
    pub fn install(
        &mut self,
        req: InstallRequest<'_>,
        now_ns: u64,
    ) -> Result<PluginRecord, InstallError> {
        validate_name(req.name)?;
        if self.store.has_record(req.name) {
            return Err(InstallError::NameTaken {
                name: req.name.to_owned(),
            });
        }
        self.check_settings(&req.config, &req.invoke_policy)
            .map_err(InstallError::LimitExceeded)?;
        self.check_plugin_counts(&req.owner)?;
        let facts = validate::inspect(req.wasm, &self.limits)?;
        let sha256: [u8; 32] = Sha256::digest(req.wasm).into();
        if !self.store.has_code(&sha256) {
            self.check_code_bytes(req.wasm.len() as u64)?;
        }
        let host = self.host_state(req.config.clone(), BTreeMap::new());
        let context = self.context(req.owner, now_ns, req.name);
        let mut live = self.new_instance(
            sha256,
            req.wasm,
            host,
            facts.initializer.as_deref(),
            context,
        )?;
        let mut record = PluginRecord {
            id: 0,
            name: req.name.to_owned(),
            owner: req.owner,
            code_sha256: sha256,
            code_size: req.wasm.len() as u64,
            functions: facts.functions,
            memory_pages: live.memory_pages(),
            max_memory_pages: facts.max_memory_pages,
            fuel_limit: req
                .fuel_limit
                .unwrap_or(self.limits.default_fuel)
                .min(self.limits.max_fuel),
            calls: 0,
            fuel_used_total: 0,
            installed_at_ns: now_ns,
            updated_at_ns: now_ns,
            invoke_policy: req.invoke_policy,
            config: req.config,
        };
        let code = if self.store.has_code(&sha256) {
            0
        } else {
            record.code_size
        };
        self.reserve(code + live.initial_bytes() + record.stored_bytes())
            .map_err(InstallError::StorageFull)?;
        record.id = self.store.next_id();
        self.store.add_code_ref(sha256, req.wasm);
        live.save_initial(&mut self.store, record.id);
        self.store.put_record(&record);
        if let Some(totals) = self.totals.get_mut() {
            *totals.plugins_by_owner.entry(record.owner).or_default() += 1;
            totals.code_bytes += code;
        }
        self.caches.insert_instance(record.name.clone(), live);
        self.make_room(None);
        Ok(record)
    }

    /// Runs one plugin function, for anyone.
    pub fn invoke(&mut self, req: InvokeRequest<'_>) -> Result<InvokeOutcome, InvokeFailure> {
        match self.invoke_authorized(req, |_| Ok::<_, Infallible>(None)) {
            Ok(result) => result,
            Err(never) => match never {},
        }
    }

    /// Runs one plugin function if `authorize`, given the plugin's record, admits the call, and
    /// under the instruction limit it may set (the lower of it and the request's); its refusal
    /// is the outer error. The record is read once for both.
    pub fn invoke_authorized<Refusal>(
        &mut self,
        mut req: InvokeRequest<'_>,
        authorize: impl FnOnce(&PluginRecord) -> Result<Option<u64>, Refusal>,
    ) -> Result<Result<InvokeOutcome, InvokeFailure>, Refusal> {
        let Some(record) = self.store.record(req.plugin) else {
            return Ok(Err(not_run(InvokeError::UnknownPlugin {
                name: echo(req.plugin),
            })));
        };
        if let Some(limit) = authorize(&record)? {
            req.instruction_limit = Some(req.instruction_limit.map_or(limit, |l| l.min(limit)));
        }
        Ok(self.call(record, req))
    }

    fn call(
        &mut self,
        mut record: PluginRecord,
        req: InvokeRequest<'_>,
    ) -> Result<InvokeOutcome, InvokeFailure> {
        if !record.functions.iter().any(|f| f == req.function) {
            return Err(not_run(InvokeError::UnknownFunction {
                plugin: record.name,
                function: echo(req.function),
                available: record.functions,
            }));
        }
        let budget = CallBudget {
            fuel_limit: req
                .fuel
                .unwrap_or(record.fuel_limit)
                .min(self.limits.max_fuel),
            fuel_slice: self.limits.fuel_slice,
            instruction_limit: self.instruction_limit(req.commit, req.instruction_limit),
        };
        self.make_room(Some((&record.name, record.code_sha256)));
        self.warm_up(&record)
            .map_err(|reason| not_run(InvokeError::InstantiationFailed { reason }))?;
        let context = CallContext {
            caller: req.caller,
            time_ns: req.now_ns,
            seed: seed(&record, req.caller, req.now_ns),
            collect_logs: req.logs,
        };
        let live = self.caches.instance(&record.name).expect("warmed up above");
        let result = live.call(req.function, req.input, context, budget, &self.meter);
        let pending = live.pending();
        let (fuel_used, logs) = (result.fuel_used, result.logs);
        let failure = |error| InvokeFailure {
            error,
            fuel_used,
            logs: logs.clone(),
        };
        let outcome = match result.outcome {
            Ok(output) if req.commit => {
                let bytes = pending.bytes(live) + self.store.layout_1_bytes(record.id);
                match reserve(&self.space, bytes) {
                    Ok(()) => {
                        live.commit(pending, &mut self.store, record.id);
                        record.calls += 1;
                        record.fuel_used_total += fuel_used;
                        record.memory_pages = live.memory_pages();
                        self.store.put_usage(&record);
                        Ok(output)
                    }
                    Err(full) => {
                        self.rollback(&record.name, pending);
                        Err(failure(InvokeError::StorageFull(full)))
                    }
                }
            }
            Ok(output) => {
                self.rollback(&record.name, pending);
                Ok(output)
            }
            Err(error) => {
                self.rollback(&record.name, pending);
                Err(failure(error))
            }
        };
        self.make_room(Some((&record.name, record.code_sha256)));
        outcome.map(|output| InvokeOutcome {
            output,
            fuel_used,
            logs,
        })
    }

    /// Removes a plugin and all its state; frees its code when no other plugin uses it.
    pub fn uninstall(&mut self, name: &str) -> Result<(), ManageError> {
        let record = self
            .store
            .record(name)
            .ok_or_else(|| ManageError::UnknownPlugin { name: echo(name) })?;
        self.reserve(self.store.layout_1_bytes(record.id))
            .map_err(ManageError::StorageFull)?;
        self.store.remove_record(name);
        self.caches.remove_instance(name);
        self.store.delete_state(record.id);
        let freed = self.store.release_code_ref(record.code_sha256);
        if freed {
            self.caches.remove_module(&record.code_sha256);
        }
        if let Some(totals) = self.totals.get_mut() {
            if let Some(count) = totals.plugins_by_owner.get_mut(&record.owner) {
                *count = count.saturating_sub(1);
            }
            if freed {
                totals.code_bytes = totals.code_bytes.saturating_sub(record.code_size);
            }
        }
        Ok(())
    }

    /// Replaces a plugin's config.
    pub fn set_config(
        &mut self,
        name: &str,
        config: BTreeMap<String, String>,
        now_ns: u64,
    ) -> Result<PluginRecord, ManageError> {
        let policy = self.store.record(name).map(|r| r.invoke_policy);
        if let Some(policy) = &policy {
            self.check_settings(&config, policy)
                .map_err(ManageError::LimitExceeded)?;
        }
        let info = self.update_record(name, now_ns, |r| r.config = config.clone())?;
        if let Some(live) = self.caches.instance(name) {
            live.host_mut().config = config;
        }
        Ok(info)
    }

    /// Replaces a plugin's invoke policy.
    pub fn set_invoke_policy(
        &mut self,
        name: &str,
        policy: InvokePolicy,
        now_ns: u64,
    ) -> Result<PluginRecord, ManageError> {
        self.check_settings(&BTreeMap::new(), &policy)
            .map_err(ManageError::LimitExceeded)?;
        self.update_record(name, now_ns, |r| r.invoke_policy = policy)
    }

    /// Replaces a plugin's code. Its vars and config are kept; its linear memory and globals start
    /// from the new module (a new build lays memory out differently, so old memory cannot be
    /// reused safely). The optional migration runs once on the new instance with the old vars; if
    /// it fails, nothing changes.
    pub fn upgrade_plugin(
        &mut self,
        req: UpgradePluginRequest<'_>,
        now_ns: u64,
    ) -> Result<PluginRecord, InstallError> {
        let mut record =
            self.store
                .record(req.name)
                .ok_or_else(|| InstallError::UnknownPlugin {
                    name: echo(req.name),
                })?;
        let facts = validate::inspect(req.wasm, &self.limits)?;
        if let Some(migration) = req.migration
            && !facts.functions.iter().any(|f| f == migration)
        {
            return Err(InstallError::MigrationFailed(Box::new(not_run(
                InvokeError::UnknownFunction {
                    plugin: record.name,
                    function: echo(migration),
                    available: facts.functions,
                },
            ))));
        }
        let sha256: [u8; 32] = Sha256::digest(req.wasm).into();
        if sha256 != record.code_sha256 && !self.store.has_code(&sha256) {
            self.check_code_bytes(req.wasm.len() as u64)?;
        }
        let host = self.host_state(record.config.clone(), self.store.vars(record.id));
        let context = self.context(record.owner, now_ns, req.name);
        let mut live = self.new_instance(
            sha256,
            req.wasm,
            host,
            facts.initializer.as_deref(),
            context,
        )?;
        let mut migration_fuel = 0;
        if let Some(migration) = req.migration {
            let budget = self.budget(record.fuel_limit, true);
            let result = live.call(migration, &[], context, budget, &self.meter);
            migration_fuel = result.fuel_used;
            result
                .into_failure()
                .map_err(|failure| InstallError::MigrationFailed(Box::new(failure)))?;
        }
        let old_sha = record.code_sha256;
        let code = if self.store.has_code(&sha256) {
            0
        } else {
            req.wasm.len() as u64
        };
        self.reserve(
            code + live.initial_bytes()
                + record.stored_bytes()
                + self.store.layout_1_bytes(record.id),
        )
        .map_err(InstallError::StorageFull)?;
        // Commit: new code, the new instance's memory and globals, vars as the migration left them.
        self.store.add_code_ref(sha256, req.wasm);
        let freed = self.store.release_code_ref(old_sha);
        if freed {
            self.caches.remove_module(&old_sha);
        }
        if let Some(totals) = self.totals.get_mut() {
            totals.code_bytes += code;
            if freed {
                totals.code_bytes = totals.code_bytes.saturating_sub(record.code_size);
            }
        }
        self.store.delete_state(record.id);
        live.save_initial(&mut self.store, record.id);
        record.code_sha256 = sha256;
        record.code_size = req.wasm.len() as u64;
        record.functions = facts.functions;
        record.max_memory_pages = facts.max_memory_pages;
        record.memory_pages = live.memory_pages();
        record.updated_at_ns = now_ns;
        record.fuel_used_total += migration_fuel;
        self.store.put_record(&record);
        self.caches.remove_instance(req.name);
        self.caches.insert_instance(record.name.clone(), live);
        self.make_room(None);
        Ok(record)
    }

    fn update_record(
        &mut self,
        name: &str,
        now_ns: u64,
        change: impl FnOnce(&mut PluginRecord),
    ) -> Result<PluginRecord, ManageError> {
        let mut record = self
            .store
            .record(name)
            .ok_or_else(|| ManageError::UnknownPlugin { name: echo(name) })?;
        change(&mut record);
        record.updated_at_ns = now_ns;
        self.reserve(record.stored_bytes())
            .map_err(ManageError::StorageFull)?;
        self.store.put_record(&record);
        Ok(record)
    }

    /// Config and invoke policy within the caps.
    fn check_settings(
        &self,
        config: &BTreeMap<String, String>,
        policy: &InvokePolicy,
    ) -> Result<(), LimitExceeded> {
        let limits = &self.limits;
        if config.len() > limits.max_config_entries {
            return Err(limit(
                "config entries",
                config.len() as u64,
                limits.max_config_entries as u64,
            ));
        }
        let bytes: usize = config.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes as u64 > limits.max_config_bytes {
            return Err(limit("config bytes", bytes as u64, limits.max_config_bytes));
        }
        if let InvokePolicy::AllowList(list) = policy
            && list.len() > limits.max_allow_list
        {
            return Err(limit(
                "allow-list principals",
                list.len() as u64,
                limits.max_allow_list as u64,
            ));
        }
        Ok(())
    }

    /// The caps on plugins: in all, and per owner.
    fn check_plugin_counts(&self, owner: &Principal) -> Result<(), InstallError> {
        let (max_plugins, per_owner) = (self.limits.max_plugins, self.limits.max_plugins_per_owner);
        let count = self.store.record_count();
        if count >= max_plugins {
            return Err(InstallError::LimitExceeded(limit(
                "plugins",
                count + 1,
                max_plugins,
            )));
        }
        let owned = self.plugins_of(owner);
        if owned >= per_owner {
            return Err(InstallError::LimitExceeded(limit(
                "plugins per owner",
                owned + 1,
                per_owner,
            )));
        }
        Ok(())
    }

    /// The cap on distinct code stored, for `more` bytes of new code.
    fn check_code_bytes(&self, more: u64) -> Result<(), InstallError> {
        let max = self.limits.max_code_bytes;
        let total = self.code_bytes() + more;
        if total > max {
            return Err(InstallError::LimitExceeded(limit("code bytes", total, max)));
        }
        Ok(())
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

    fn reserve(&self, bytes: u64) -> Result<(), StorageFull> {
        reserve(&self.space, bytes)
    }

    fn instruction_limit(&self, commit: bool, requested: Option<u64>) -> u64 {
        let engine = if commit {
            self.limits.update_instruction_limit
        } else {
            self.limits.query_instruction_limit
        };
        requested.map_or(engine, |r| r.min(engine))
    }

    fn budget(&self, fuel_limit: u64, commit: bool) -> CallBudget {
        CallBudget {
            fuel_limit,
            fuel_slice: self.limits.fuel_slice,
            instruction_limit: self.instruction_limit(commit, None),
        }
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

    /// The context of a start function, initialiser or migration: the owner calls at `now_ns`.
    fn context(&self, owner: Principal, now_ns: u64, name: &str) -> CallContext {
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update(now_ns.to_le_bytes());
        CallContext {
            caller: owner,
            time_ns: now_ns,
            seed: h.finalize().into(),
            collect_logs: false,
        }
    }

    /// Compiles `wasm` (validated in full), instantiates it and runs its start function and
    /// initialiser under the install fuel.
    fn new_instance(
        &mut self,
        sha256: [u8; 32],
        wasm: &[u8],
        host: HostState,
        initializer: Option<&str>,
        context: CallContext,
    ) -> Result<LiveInstance, InstallError> {
        self.make_room(None);
        self.compile(sha256, wasm, Validate::Yes)?;
        let budget = self.budget(self.limits.install_fuel, true);
        let compiled = self.caches.module(&sha256).expect("compiled above");
        let mut live =
            LiveInstance::new(&self.wasmi, &self.linker, compiled, host).map_err(|reason| {
                InstallError::InstantiationFailed {
                    reason: echo(&reason),
                }
            })?;
        live.initialize(compiled, initializer, context, budget, &self.meter)
            .map_err(|failure| InstallError::StartFailed(Box::new(failure)))?;
        Ok(live)
    }

    /// Compiles (or finds in the cache) the module with this hash.
    fn compile(
        &mut self,
        sha256: [u8; 32],
        wasm: &[u8],
        validate: Validate,
    ) -> Result<(), InstallError> {
        if self.caches.module(&sha256).is_some() {
            return Ok(());
        }
        let invalid = |reason: String| InstallError::InvalidWasm {
            reason: echo(&reason),
        };
        let rewritten = export_globals::export_mutable_globals_and_start(wasm)
            .map_err(|e| invalid(e.to_string()))?;
        if validate == Validate::Yes {
            Module::validate(&self.wasmi, &rewritten.wasm).map_err(|e| invalid(e.to_string()))?;
        }
        let module =
            Module::new(&self.wasmi, &rewritten.wasm).map_err(|e| invalid(e.to_string()))?;
        self.caches.insert_module(
            sha256,
            CompiledModule {
                module,
                globals: rewritten.globals.into_iter().map(|g| g.export).collect(),
                has_start: rewritten.start_exported,
                wasm_bytes: wasm.len() as u64,
            },
        );
        Ok(())
    }

    /// Makes sure the plugin has a live instance, rebuilding it from stable memory if needed.
    fn warm_up(&mut self, record: &PluginRecord) -> Result<(), String> {
        if self.caches.instance(&record.name).is_some() {
            return Ok(());
        }
        if self.caches.module(&record.code_sha256).is_none() {
            let wasm = self
                .store
                .code(&record.code_sha256)
                .ok_or("the plugin's code is not stored")?;
            self.compile(record.code_sha256, &wasm, Validate::No)
                .map_err(|e| e.to_string())?;
        }
        let host = self.host_state(record.config.clone(), self.store.vars(record.id));
        let compiled = self.caches.module(&record.code_sha256).ok_or("evicted")?;
        let mut live = LiveInstance::new(&self.wasmi, &self.linker, compiled, host)?;
        live.restore(&self.store, record)?;
        self.caches.insert_instance(record.name.clone(), live);
        Ok(())
    }

    /// Keeps the caches within the heap budget, leaving room for one call; `keep` names the
    /// plugin (and its module) about to run or just run.
    fn make_room(&mut self, keep: Option<(&str, [u8; 32])>) {
        let budget = self
            .limits
            .heap_budget_bytes
            .saturating_sub(RECORD_CACHE_BYTES + self.limits.call_heap_bytes());
        self.caches.shrink_to(
            budget,
            keep.map(|(name, _)| name),
            keep.as_ref().map(|(_, sha)| sha),
        );
    }

    /// Undoes the last call of a plugin (or drops its instance when that is not possible).
    fn rollback(&mut self, name: &str, pending: instance::PendingCommit) {
        let kept = self
            .caches
            .instance(name)
            .is_some_and(|live| live.rollback(pending));
        if !kept {
            self.caches.remove_instance(name);
        }
    }
}

/// Reserves stable memory for writing `bytes` (see [`StableSpace::reserve`]).
fn reserve<M: Memory + Clone>(space: &StableSpace<M>, bytes: u64) -> Result<(), StorageFull> {
    space.reserve(2 * bytes + RESERVE_MARGIN)
}

/// The failure of a call that did not start.
fn not_run(error: InvokeError) -> InvokeFailure {
    InvokeFailure {
        error,
        fuel_used: 0,
        logs: Vec::new(),
    }
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

/// The deterministic per-call seed: not secret (anyone can compute it from public facts).
fn seed(record: &PluginRecord, caller: Principal, now_ns: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(record.name.as_bytes());
    h.update(record.calls.to_le_bytes());
    h.update(now_ns.to_le_bytes());
    h.update(caller.as_slice());
    h.finalize().into()
}

fn validate_name(name: &str) -> Result<(), InstallError> {
    let reason = if name.is_empty() || name.len() > 64 {
        Some("must be 1 to 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("only a-z, 0-9, `_` and `-` are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InstallError::InvalidName {
            name: echo(name),
            reason: reason.to_owned(),
        }),
        None => Ok(()),
    }
}
