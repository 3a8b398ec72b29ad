//! The plugin engine: runs untrusted Extism-ABI plugins under wasmi with budgets, isolated durable
//! state and exact rollback. Pure library: no `ic-cdk`; caller, time and the instruction counter
//! come in as values, stable memory as `ic_stable_structures::Memory`.
//!
//! # State and rollback
//!
//! Stable memory is the source of truth ([`store`]): a plugin's linear memory is kept as 4 KiB
//! chunks, its mutable globals (all of them: install rewrites the module to export private ones,
//! see `export-globals`) and its vars next to it. The heap holds caches only: compiled modules and
//! warm instances, each warm instance with a *shadow* copy of its memory as of the last commit.
//!
//! - A call that succeeds (and commits) compares the chunks it wrote with the shadow and writes
//!   those that differ to stable memory and to the shadow; changed globals and the vars it set are
//!   written too.
//! - A call that fails (trap, out of fuel, a limit, a non-zero return) or does not commit (a query)
//!   copies the chunks it changed back from the shadow and restores globals and vars from their
//!   saved values. If it grew memory, the instance is dropped instead (wasm memory cannot shrink)
//!   and the next call restores it from stable memory.
//! - After a canister upgrade (cold caches) an instance is rebuilt from the stored module and the
//!   stored chunks, globals and vars, and continues identically.
//!
//! Which chunks a call wrote comes from wasmi itself: the vendored wasmi carries a patch of ours
//! (`vendor/wasmi/PATCH.md`) that marks the 4 KiB chunks each store, `memory.copy`, `memory.fill`
//! and `memory.init` writes. So the cost of a commit or a rollback follows the chunks a call
//! wrote, not the size of the plugin's memory (benchmark P5). Marks are a superset: a stale mark
//! left by another instance only costs a comparison.
//!
//! Modules are validated in full at install; the engine compiles lazily, so reloading a stored
//! module (after a canister upgrade or an eviction) only parses it, and each function is
//! validated and translated when a call first reaches it.

mod abi;
mod error;
pub mod store;
mod validate;

use std::collections::BTreeMap;
use std::convert::Infallible;

use ic_stable_structures::Memory;
use sha2::{Digest, Sha256};
use wasmi::{
    CompilationMode, Config, Func, Global, Instance, Linker, Module, ResourceLimiter,
    ResumableCall, Val,
};

use crate::abi::{AbiLimits, CallState, HostState, HostTrap};
pub use crate::abi::{ENV, IMPORTS, USER};
pub use crate::error::{InstallError, InvokeError, InvokeFailure, LimitExceeded, ManageError};
use crate::store::{CHUNK_BYTES, SavedGlobal, Store};

// The chunks wasmi marks are the chunks the store keeps.
const _: () = assert!(CHUNK_BYTES == wasmi::dirty::CHUNK_BYTES);
pub use crate::store::{LAYOUT_VERSION, PluginInfo, StableMemories};

/// IC instructions used so far by the current message (`ic0.performance_counter(0)`).
pub trait InstructionMeter {
    /// The counter's current value.
    fn instructions(&self) -> u64;
}

/// The host's caps. Every one is enforced with a typed error.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest module accepted.
    pub max_module_bytes: u64,
    /// Most 64 KiB pages of linear memory a plugin may have.
    pub max_memory_pages: u32,
    /// Most elements a plugin's table may have.
    pub max_table_elements: u32,
    /// Largest output of a call.
    pub max_output_bytes: u64,
    /// Most bytes the per-call arena may hold (input included).
    pub max_arena_bytes: u64,
    /// Most bytes of vars (keys and values) per plugin.
    pub max_var_bytes: u64,
    /// Most bytes of log messages kept per call.
    pub max_log_bytes: u64,
    /// Fuel per call when neither the caller nor the plugin sets one.
    pub default_fuel: u64,
    /// Most fuel any call may get.
    pub max_fuel: u64,
    /// Fuel per slice: between slices the engine reads the instruction meter.
    pub fuel_slice: u64,
    /// IC instructions a committing call may use (the update limit is 40 B; keep room for the rest
    /// of the message).
    pub update_instruction_budget: u64,
    /// IC instructions a non-committing call may use (the query limit is 5 B).
    pub query_instruction_budget: u64,
    /// Fuel for instantiation, start function and initialiser at install.
    pub install_fuel: u64,
    /// Heap bytes the warm-instance cache may hold (live memory + shadow per instance).
    pub warm_cache_bytes: u64,
    /// Most compiled modules kept in the heap.
    pub module_cache_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_module_bytes: 8 * 1024 * 1024,
            max_memory_pages: 1024,
            max_table_elements: 100_000,
            max_output_bytes: 1_800_000,
            max_arena_bytes: 64 * 1024 * 1024,
            max_var_bytes: 1024 * 1024,
            max_log_bytes: 64 * 1024,
            default_fuel: 100_000_000,
            max_fuel: 1_000_000_000,
            fuel_slice: 5_000_000,
            update_instruction_budget: 30_000_000_000,
            query_instruction_budget: 4_000_000_000,
            install_fuel: 50_000_000,
            warm_cache_bytes: 1024 * 1024 * 1024,
            module_cache_entries: 64,
        }
    }
}

/// Who may invoke a plugin. Stored with the plugin; the canister enforces it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InvokePolicy {
    /// Anyone.
    #[default]
    Public,
    /// Only the owner (and admins).
    OwnerOnly,
    /// The owner, admins and these principals (bytes).
    AllowList(Vec<Vec<u8>>),
}

/// Log severity (Extism levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `log_trace`
    Trace,
    /// `log_debug`
    Debug,
    /// `log_info`
    Info,
    /// `log_warn`
    Warn,
    /// `log_error`
    Error,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Severity.
    pub level: LogLevel,
    /// Message.
    pub message: String,
}

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallRequest<'a> {
    /// Plugin id: `[a-z0-9_-]{1,64}`.
    pub name: &'a str,
    /// Module bytes.
    pub wasm: &'a [u8],
    /// Read-only config.
    pub config: BTreeMap<String, String>,
    /// Owner's principal bytes.
    pub owner: Vec<u8>,
    /// Who may invoke.
    pub invoke_policy: InvokePolicy,
    /// Default fuel per call (capped by [`Limits::max_fuel`]).
    pub fuel_limit: Option<u64>,
}

/// What to call.
#[derive(Debug, Clone)]
pub struct InvokeRequest<'a> {
    /// Plugin name.
    pub plugin: &'a str,
    /// Function name.
    pub function: &'a str,
    /// Input bytes.
    pub input: &'a [u8],
    /// Fuel for this call (default: the plugin's; capped by [`Limits::max_fuel`]).
    pub fuel: Option<u64>,
    /// Caller principal bytes.
    pub caller: &'a [u8],
    /// IC time, ns.
    pub now_ns: u64,
    /// Persist state if the call succeeds (`false`: a dry run, as in a query).
    pub commit: bool,
    /// Collect log lines (else `get_log_level` tells the plugin logging is off).
    pub logs: bool,
}

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeOutcome {
    /// Output bytes.
    pub output: Vec<u8>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Log lines.
    pub logs: Vec<LogEntry>,
}

/// New code for an installed plugin.
#[derive(Debug, Clone)]
pub struct UpgradePluginRequest<'a> {
    /// Plugin name.
    pub name: &'a str,
    /// New module bytes.
    pub wasm: &'a [u8],
    /// A function of the new module to run once after the swap.
    pub migration: Option<&'a str>,
}

/// A compiled module and what the engine needs to save and restore its instances.
struct CompiledModule {
    module: Module,
    /// Export names of all mutable globals, in index order.
    globals: Vec<String>,
    last_used: u64,
}

/// A live instance and the state it had at its last commit.
struct Warm {
    store: wasmi::Store<HostState>,
    instance: Instance,
    memory: Option<wasmi::Memory>,
    globals: Vec<Global>,
    saved_globals: Vec<SavedGlobal>,
    shadow: Vec<u8>,
    last_used: u64,
}

/// The engine: installed plugins, their code and state.
pub struct Engine<M: Memory> {
    wasmi: wasmi::Engine,
    linker: Linker<HostState>,
    store: Store<M>,
    limits: Limits,
    modules: BTreeMap<[u8; 32], CompiledModule>,
    warm: BTreeMap<String, Warm>,
    clock: u64,
}

/// Whether `Engine::compile` validates every function body up front (the engine compiles
/// lazily: otherwise each body is validated when first called).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Validate {
    /// New bytes from a user: an invalid module must be refused at install.
    Yes,
    /// Bytes from stable memory, validated in full when they were installed.
    No,
}

/// How a guest call ended, before mapping to a public error.
enum RunError {
    Wasm(wasmi::Error),
    OutOfFuel,
    InstructionLimit { instructions: u64, limit: u64 },
}

impl<M: Memory> Engine<M> {
    /// Opens the engine over its stable memories (empty on first use). Heap caches start cold.
    pub fn init(memories: StableMemories<M>, limits: Limits) -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            // Function bodies are validated in full at install (`compile` with `Validate::Yes`);
            // a reload after an upgrade or eviction only parses the module, and wasmi validates
            // and translates each function when a call first reaches it.
            .compilation_mode(CompilationMode::Lazy)
            .wasm_multi_memory(false)
            .wasm_custom_page_sizes(false)
            .wasm_wide_arithmetic(false);
        let wasmi = wasmi::Engine::new(&config);
        let mut linker = Linker::new(&wasmi);
        abi::link(&mut linker).expect("the ABI table links once");
        Self {
            wasmi,
            linker,
            store: Store::init(memories),
            limits,
            modules: BTreeMap::new(),
            warm: BTreeMap::new(),
            clock: 0,
        }
    }

    /// The engine's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// One plugin.
    pub fn get(&self, name: &str) -> Option<PluginInfo> {
        self.store.record(name)
    }

    /// The owner and invoke policy of a plugin (what the canister needs to authorise a call).
    pub fn access(&self, name: &str) -> Option<(Vec<u8>, InvokePolicy)> {
        self.store.record(name).map(|r| (r.owner, r.invoke_policy))
    }

    /// Plugins in name order after `start_after`, at most `limit`, and the name to continue after.
    pub fn list(
        &self,
        start_after: Option<&str>,
        limit: usize,
    ) -> (Vec<PluginInfo>, Option<String>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let start = match start_after {
            Some(name) => Excluded(name.to_owned()),
            None => Unbounded,
        };
        let mut page: Vec<PluginInfo> = self
            .store
            .records((start, Unbounded))
            .take(limit.saturating_add(1))
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|p| p.name.clone())
        } else {
            None
        };
        (page, next)
    }

    /// Number of distinct modules stored (shared code is stored once).
    pub fn stored_modules(&self) -> u64 {
        self.store.code_count()
    }

    /// Validates and installs a module; runs its initialiser once; stores its initial state.
    pub fn install(
        &mut self,
        req: InstallRequest<'_>,
        now_ns: u64,
        _meter: &dyn InstructionMeter,
    ) -> Result<PluginInfo, InstallError> {
        validate_name(req.name)?;
        if self.store.has_record(req.name) {
            return Err(InstallError::NameTaken {
                name: req.name.to_owned(),
            });
        }
        let facts = validate::inspect(req.wasm, &self.limits)?;
        let sha256: [u8; 32] = Sha256::digest(req.wasm).into();
        self.compile(sha256, req.wasm, Validate::Yes)?;
        let state = HostState::new(self.abi_limits(), req.config.clone(), BTreeMap::new());
        let mut warm = self
            .instantiate(&sha256, state, facts.initializer.as_deref())
            .map_err(|reason| InstallError::InstantiationFailed { reason })?;

        let id = self.store.next_id();
        let record = PluginInfo {
            id,
            name: req.name.to_owned(),
            owner: req.owner,
            code_sha256: sha256,
            code_size: req.wasm.len() as u64,
            functions: facts.functions,
            memory_pages: warm.memory_pages(),
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
        self.store.add_code_ref(sha256, req.wasm);
        warm.save_initial(&mut self.store, id);
        self.store.put_record(&record);
        self.insert_warm(record.name.clone(), warm);
        Ok(record)
    }

    /// Runs one plugin function, for anyone.
    pub fn invoke(
        &mut self,
        req: InvokeRequest<'_>,
        meter: &dyn InstructionMeter,
    ) -> Result<InvokeOutcome, InvokeFailure> {
        match self.invoke_authorized(req, meter, |_, _| Ok::<(), Infallible>(())) {
            Ok(result) => result,
            Err(never) => match never {},
        }
    }

    /// Runs one plugin function if `authorize`, given the plugin's owner and invoke policy, admits
    /// the call; its refusal is the outer error. The plugin's record is read once for both.
    pub fn invoke_authorized<Refusal>(
        &mut self,
        req: InvokeRequest<'_>,
        meter: &dyn InstructionMeter,
        authorize: impl FnOnce(&[u8], &InvokePolicy) -> Result<(), Refusal>,
    ) -> Result<Result<InvokeOutcome, InvokeFailure>, Refusal> {
        let Some(record) = self.store.record(req.plugin) else {
            return Ok(Err(not_run(InvokeError::UnknownPlugin {
                name: req.plugin.to_owned(),
            })));
        };
        authorize(&record.owner, &record.invoke_policy)?;
        Ok(self.invoke_record(record, req, meter))
    }

    fn invoke_record(
        &mut self,
        mut record: PluginInfo,
        req: InvokeRequest<'_>,
        meter: &dyn InstructionMeter,
    ) -> Result<InvokeOutcome, InvokeFailure> {
        if !record.functions.iter().any(|f| f == req.function) {
            return Err(not_run(InvokeError::UnknownFunction {
                plugin: record.name.clone(),
                function: req.function.to_owned(),
                available: record.functions.clone(),
            }));
        }
        self.warm_up(&record)
            .map_err(|reason| not_run(InvokeError::InstantiationFailed { reason }))?;
        let fuel_limit = req
            .fuel
            .unwrap_or(record.fuel_limit)
            .min(self.limits.max_fuel);
        let budget = if req.commit {
            self.limits.update_instruction_budget
        } else {
            self.limits.query_instruction_budget
        };
        let fuel_slice = self.limits.fuel_slice;
        let warm = self.warm.get_mut(req.plugin).expect("warmed up above");
        let call = CallState {
            collect_logs: req.logs,
            caller: req.caller.to_vec(),
            time_ns: req.now_ns,
            seed: seed(&record, req.caller, req.now_ns),
            ..CallState::default()
        };
        if let Err(trap) = warm.store.data_mut().begin_call(call, req.input) {
            return Err(not_run(host_trap_error(trap)));
        }
        let func = warm
            .instance
            .get_func(&warm.store, req.function)
            .expect("plugin functions are exports");
        let (result, fuel_used) =
            run_sliced(&mut warm.store, func, fuel_limit, fuel_slice, budget, meter);
        let host = warm.store.data_mut();
        let logs = std::mem::take(&mut host.call.logs);
        let outcome = match result {
            Ok(0) => Ok(host.output()),
            Ok(code) => Err(InvokeError::PluginError {
                code,
                message: host.error_message().unwrap_or_default(),
            }),
            Err(error) => Err(match host.limit_hit.clone() {
                Some(limit) => InvokeError::LimitExceeded(limit),
                None => run_error(error, fuel_used, fuel_limit),
            }),
        };
        match outcome {
            Ok(output) if req.commit => {
                warm.commit(&mut self.store, record.id);
                record.calls += 1;
                record.fuel_used_total += fuel_used;
                record.memory_pages = warm.memory_pages();
                self.store.put_usage(&record);
                Ok(InvokeOutcome {
                    output,
                    fuel_used,
                    logs,
                })
            }
            Ok(output) => {
                self.rollback(req.plugin);
                Ok(InvokeOutcome {
                    output,
                    fuel_used,
                    logs,
                })
            }
            Err(error) => {
                self.rollback(req.plugin);
                Err(InvokeFailure {
                    error,
                    fuel_used,
                    logs,
                })
            }
        }
    }

    /// Removes a plugin and all its state; frees its code when no other plugin uses it.
    pub fn uninstall(&mut self, name: &str) -> Result<(), ManageError> {
        let record = self
            .store
            .remove_record(name)
            .ok_or_else(|| ManageError::UnknownPlugin {
                name: name.to_owned(),
            })?;
        self.warm.remove(name);
        self.store.delete_state(record.id);
        if self.store.release_code_ref(record.code_sha256) {
            self.modules.remove(&record.code_sha256);
        }
        Ok(())
    }

    /// Replaces a plugin's config.
    pub fn set_config(
        &mut self,
        name: &str,
        config: BTreeMap<String, String>,
        now_ns: u64,
    ) -> Result<PluginInfo, ManageError> {
        let info = self.update_record(name, now_ns, |r| r.config = config.clone())?;
        if let Some(warm) = self.warm.get_mut(name) {
            warm.store.data_mut().config = config;
        }
        Ok(info)
    }

    /// Replaces a plugin's invoke policy.
    pub fn set_invoke_policy(
        &mut self,
        name: &str,
        policy: InvokePolicy,
        now_ns: u64,
    ) -> Result<PluginInfo, ManageError> {
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
        meter: &dyn InstructionMeter,
    ) -> Result<PluginInfo, InstallError> {
        let mut record =
            self.store
                .record(req.name)
                .ok_or_else(|| InstallError::UnknownPlugin {
                    name: req.name.to_owned(),
                })?;
        let facts = validate::inspect(req.wasm, &self.limits)?;
        if let Some(migration) = req.migration
            && !facts.functions.iter().any(|f| f == migration)
        {
            return Err(InstallError::MigrationFailed(Box::new(InvokeFailure {
                error: InvokeError::UnknownFunction {
                    plugin: req.name.to_owned(),
                    function: migration.to_owned(),
                    available: facts.functions.clone(),
                },
                fuel_used: 0,
                logs: Vec::new(),
            })));
        }
        let sha256: [u8; 32] = Sha256::digest(req.wasm).into();
        self.compile(sha256, req.wasm, Validate::Yes)?;
        let state = HostState::new(
            self.abi_limits(),
            record.config.clone(),
            self.store.vars(record.id),
        );
        let mut warm = self
            .instantiate(&sha256, state, facts.initializer.as_deref())
            .map_err(|reason| InstallError::InstantiationFailed { reason })?;
        let mut fuel_used_by_migration = 0;
        if let Some(migration) = req.migration {
            let fuel = record.fuel_limit;
            let call = CallState {
                time_ns: now_ns,
                ..CallState::default()
            };
            warm.store.data_mut().begin_call(call, &[]).map_err(|t| {
                InstallError::InstantiationFailed {
                    reason: t.to_string(),
                }
            })?;
            let func = warm
                .instance
                .get_func(&warm.store, migration)
                .expect("checked above");
            let (result, fuel_used) = run_sliced(
                &mut warm.store,
                func,
                fuel,
                self.limits.fuel_slice,
                self.limits.update_instruction_budget,
                meter,
            );
            fuel_used_by_migration = fuel_used;
            let host = warm.store.data_mut();
            let error = match result {
                Ok(0) => None,
                Ok(code) => Some(InvokeError::PluginError {
                    code,
                    message: host.error_message().unwrap_or_default(),
                }),
                Err(e) => Some(match host.limit_hit.clone() {
                    Some(limit) => InvokeError::LimitExceeded(limit),
                    None => run_error(e, fuel_used, fuel),
                }),
            };
            if let Some(error) = error {
                return Err(InstallError::MigrationFailed(Box::new(InvokeFailure {
                    error,
                    fuel_used,
                    logs: std::mem::take(&mut host.call.logs),
                })));
            }
        }
        // Commit: new code, fresh memory and globals, vars as the migration left them.
        let old_sha = record.code_sha256;
        self.store.add_code_ref(sha256, req.wasm);
        if self.store.release_code_ref(old_sha) {
            self.modules.remove(&old_sha);
        }
        let vars = warm.store.data().vars.clone();
        self.store.delete_state(record.id);
        for (key, value) in &vars {
            self.store.put_var(record.id, key, Some(value));
        }
        warm.store.data_mut().vars_journal.clear();
        warm.save_initial(&mut self.store, record.id);
        record.code_sha256 = sha256;
        record.code_size = req.wasm.len() as u64;
        record.functions = facts.functions;
        record.max_memory_pages = facts.max_memory_pages;
        record.memory_pages = warm.memory_pages();
        record.updated_at_ns = now_ns;
        record.fuel_used_total += fuel_used_by_migration;
        self.store.put_record(&record);
        self.warm.remove(req.name);
        self.insert_warm(record.name.clone(), warm);
        Ok(record)
    }

    fn update_record(
        &mut self,
        name: &str,
        now_ns: u64,
        change: impl FnOnce(&mut PluginInfo),
    ) -> Result<PluginInfo, ManageError> {
        let mut record = self
            .store
            .record(name)
            .ok_or_else(|| ManageError::UnknownPlugin {
                name: name.to_owned(),
            })?;
        change(&mut record);
        record.updated_at_ns = now_ns;
        self.store.put_record(&record);
        Ok(record)
    }

    fn abi_limits(&self) -> AbiLimits {
        AbiLimits {
            arena_bytes: self.limits.max_arena_bytes,
            output_bytes: self.limits.max_output_bytes,
            var_bytes: self.limits.max_var_bytes,
            log_bytes: self.limits.max_log_bytes,
            memory_pages: self.limits.max_memory_pages,
            table_elements: self.limits.max_table_elements,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Compiles (or finds in the cache) the module with this hash. Modules from stable memory
    /// were validated when they were installed.
    fn compile(
        &mut self,
        sha256: [u8; 32],
        wasm: &[u8],
        validate: Validate,
    ) -> Result<(), InstallError> {
        let now = self.tick();
        if let Some(cached) = self.modules.get_mut(&sha256) {
            cached.last_used = now;
            return Ok(());
        }
        let rewritten = export_globals::export_mutable_globals(wasm).map_err(|e| {
            InstallError::InvalidWasm {
                reason: e.to_string(),
            }
        })?;
        let invalid = |e: wasmi::Error| InstallError::InvalidWasm {
            reason: e.to_string(),
        };
        if validate == Validate::Yes {
            Module::validate(&self.wasmi, &rewritten.wasm).map_err(invalid)?;
        }
        let module = Module::new(&self.wasmi, &rewritten.wasm).map_err(invalid)?;
        if self.modules.len() >= self.limits.module_cache_entries
            && let Some(oldest) = self
                .modules
                .iter()
                .min_by_key(|(_, m)| m.last_used)
                .map(|(k, _)| *k)
        {
            self.modules.remove(&oldest);
        }
        self.modules.insert(
            sha256,
            CompiledModule {
                module,
                globals: rewritten.globals.into_iter().map(|g| g.export).collect(),
                last_used: now,
            },
        );
        Ok(())
    }

    /// A new instance of a compiled module, with its initialiser run.
    fn instantiate(
        &mut self,
        sha256: &[u8; 32],
        state: HostState,
        initializer: Option<&str>,
    ) -> Result<Warm, String> {
        let now = self.tick();
        let compiled = self.modules.get(sha256).expect("compiled before");
        let mut store = wasmi::Store::new(&self.wasmi, state);
        store.limiter(|state| state as &mut dyn ResourceLimiter);
        store
            .set_fuel(self.limits.install_fuel)
            .map_err(|e| e.to_string())?;
        let instance = self
            .linker
            .instantiate_and_start(&mut store, &compiled.module)
            .map_err(|e| instantiation_message(&store, e))?;
        if let Some(init) = initializer {
            let func = instance
                .get_func(&store, init)
                .ok_or_else(|| format!("initialiser `{init}` is not a function"))?;
            store
                .data_mut()
                .begin_call(CallState::default(), &[])
                .map_err(|t| t.to_string())?;
            let mut results = vec![Val::I32(0); func.ty(&store).results().len()];
            func.call(&mut store, &[], &mut results)
                .map_err(|e| instantiation_message(&store, e))?;
        }
        let memory = instance
            .exports(&store)
            .find_map(|export| export.into_memory());
        let globals = compiled
            .globals
            .iter()
            .map(|name| {
                instance
                    .get_global(&store, name)
                    .expect("the rewrite exported every mutable global")
            })
            .collect::<Vec<_>>();
        let mut warm = Warm {
            store,
            instance,
            memory,
            globals,
            saved_globals: Vec::new(),
            shadow: Vec::new(),
            last_used: now,
        };
        warm.saved_globals = warm.read_globals();
        warm.forget_writes();
        warm.shadow = warm.memory_data().to_vec();
        Ok(warm)
    }

    /// Makes sure the plugin has a live instance, rebuilding it from stable memory if needed.
    fn warm_up(&mut self, record: &PluginInfo) -> Result<(), String> {
        let now = self.tick();
        if let Some(warm) = self.warm.get_mut(&record.name) {
            warm.last_used = now;
            return Ok(());
        }
        if !self.modules.contains_key(&record.code_sha256) {
            let wasm = self
                .store
                .code(&record.code_sha256)
                .expect("installed code is stored");
            self.compile(record.code_sha256, &wasm, Validate::No)
                .map_err(|e| e.to_string())?;
        }
        let state = HostState::new(
            self.abi_limits(),
            record.config.clone(),
            self.store.vars(record.id),
        );
        // Initialisers ran at install; their effects are in the stored state.
        let mut warm = self.instantiate(&record.code_sha256, state, None)?;
        warm.restore(&self.store, record)?;
        self.insert_warm(record.name.clone(), warm);
        Ok(())
    }

    fn insert_warm(&mut self, name: String, warm: Warm) {
        self.warm.insert(name.clone(), warm);
        let mut total: u64 = self.warm.values().map(Warm::heap_bytes).sum();
        while total > self.limits.warm_cache_bytes {
            let Some(oldest) = self
                .warm
                .iter()
                .filter(|(n, _)| **n != name)
                .min_by_key(|(_, w)| w.last_used)
                .map(|(n, _)| n.clone())
            else {
                break;
            };
            if let Some(evicted) = self.warm.remove(&oldest) {
                total -= evicted.heap_bytes();
            }
        }
    }

    /// Undoes the last call of a plugin (or drops its instance when that is not possible).
    fn rollback(&mut self, name: &str) {
        let keep = self.warm.get_mut(name).is_some_and(|warm| warm.rollback());
        if !keep {
            self.warm.remove(name);
        }
    }
}

impl Warm {
    fn memory_data(&self) -> &[u8] {
        match self.memory {
            Some(memory) => memory.data(&self.store),
            None => &[],
        }
    }

    fn memory_pages(&self) -> u32 {
        (self.memory_data().len() / 65536) as u32
    }

    /// Clears wasmi's marks of what this instance wrote: its shadow is about to be taken whole.
    fn forget_writes(&self) {
        wasmi::dirty::drain(self.memory_data().len(), |_| {});
    }

    fn heap_bytes(&self) -> u64 {
        2 * self.shadow.len() as u64
    }

    fn read_globals(&self) -> Vec<SavedGlobal> {
        self.globals
            .iter()
            .map(|g| saved(g.get(&self.store)))
            .collect()
    }

    /// Writes the instance's whole state as the plugin's initial state.
    fn save_initial(&mut self, store: &mut Store<impl Memory>, id: u64) {
        self.forget_writes();
        for (index, chunk) in self.memory_data().chunks(CHUNK_BYTES).enumerate() {
            store.put_chunk(id, index as u32, chunk);
        }
        store.put_globals(id, &self.saved_globals);
        self.shadow = self.memory_data().to_vec();
    }

    /// Persists what the call changed: differing memory chunks, globals, vars.
    fn commit(&mut self, store: &mut Store<impl Memory>, id: u64) {
        if let Some(memory) = self.memory {
            let live = memory.data(&self.store);
            // Pages the call grew are zero in the shadow as in wasm; what it wrote there is marked.
            self.shadow.resize(live.len(), 0);
            let shadow = &mut self.shadow;
            wasmi::dirty::drain(live.len(), |index| {
                let chunk = chunk_range(index, live.len());
                let (now, before) = (&live[chunk.clone()], &mut shadow[chunk]);
                if differ(now, before) {
                    store.put_chunk(id, index as u32, now);
                    before.copy_from_slice(now);
                }
            });
        }
        let globals = self.read_globals();
        if globals != self.saved_globals {
            store.put_globals(id, &globals);
            self.saved_globals = globals;
        }
        let host = self.store.data_mut();
        for key in std::mem::take(&mut host.vars_journal).into_keys() {
            store.put_var(id, &key, host.vars.get(&key).map(Vec::as_slice));
        }
    }

    /// Restores the state of the last commit. Returns false if the instance must be dropped.
    fn rollback(&mut self) -> bool {
        self.store.data_mut().rollback_vars();
        if let Some(memory) = self.memory {
            let live = memory.data_mut(&mut self.store);
            let grown = live.len() != self.shadow.len();
            let shadow = &self.shadow;
            wasmi::dirty::drain(live.len(), |index| {
                if !grown {
                    let chunk = chunk_range(index, live.len());
                    live[chunk.clone()].copy_from_slice(&shadow[chunk]);
                }
            });
            if grown {
                return false;
            }
        }
        let saved = self.saved_globals.clone();
        self.write_globals(&saved).is_ok()
    }

    fn write_globals(&mut self, values: &[SavedGlobal]) -> Result<(), String> {
        if values.len() != self.globals.len() {
            return Err("stored globals do not match the module".into());
        }
        for (global, value) in self.globals.iter().zip(values) {
            global
                .set(&mut self.store, restored(*value))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Replaces a fresh instance's state with the plugin's stored state.
    fn restore(&mut self, store: &Store<impl Memory>, record: &PluginInfo) -> Result<(), String> {
        if let Some(memory) = self.memory {
            let current = memory.size(&self.store);
            let wanted = u64::from(record.memory_pages);
            if wanted > current {
                memory
                    .grow(&mut self.store, wanted - current)
                    .map_err(|e| e.to_string())?;
            }
            let data = memory.data_mut(&mut self.store);
            data.fill(0);
            for (index, chunk) in store.chunks(record.id) {
                let start = index as usize * CHUNK_BYTES;
                data[start..start + chunk.len()].copy_from_slice(&chunk);
            }
        }
        let globals = store.globals(record.id);
        self.write_globals(&globals)?;
        self.saved_globals = globals;
        self.shadow = self.memory_data().to_vec();
        Ok(())
    }
}

/// The bytes of chunk `index` in a memory of `len` bytes.
fn chunk_range(index: usize, len: usize) -> std::ops::Range<usize> {
    index * CHUNK_BYTES..((index + 1) * CHUNK_BYTES).min(len)
}

/// Whether two memory chunks of equal length differ. Compares 8 bytes at a time: on wasm32 `memcmp`
/// goes byte by byte (about 26 IC instructions per byte, measured). Compiled with wasm SIMD (which
/// the IC accepts), comparing costs about 1.4 instructions per byte, 1.8 without.
#[cfg_attr(target_family = "wasm", target_feature(enable = "simd128"))]
fn differ(a: &[u8], b: &[u8]) -> bool {
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    let words = a_words.iter().zip(b_words).fold(0, |acc, (x, y)| {
        acc | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    });
    words != 0 || a_rest != b_rest
}

/// Runs `func` in fuel slices, checking the instruction meter between slices.
fn run_sliced(
    store: &mut wasmi::Store<HostState>,
    func: Func,
    fuel_limit: u64,
    fuel_slice: u64,
    instruction_budget: u64,
    meter: &dyn InstructionMeter,
) -> (Result<i32, RunError>, u64) {
    let start = meter.instructions();
    let mut granted = fuel_slice.min(fuel_limit);
    let used =
        |store: &wasmi::Store<HostState>, granted: u64| granted - store.get_fuel().unwrap_or(0);
    if let Err(e) = store.set_fuel(granted) {
        return (Err(RunError::Wasm(e)), 0);
    }
    let mut results = vec![Val::I32(0); func.ty(&*store).results().len()];
    let mut call = func.call_resumable(&mut *store, &[], &mut results);
    loop {
        match call {
            Ok(ResumableCall::Finished) => {
                let code = match results.first() {
                    Some(Val::I32(code)) => *code,
                    _ => 0,
                };
                return (Ok(code), used(store, granted));
            }
            Ok(ResumableCall::OutOfFuel(out)) => {
                let fuel_used = used(store, granted);
                let remaining = fuel_limit - fuel_used.min(fuel_limit);
                if remaining == 0 || out.required_fuel() > remaining {
                    return (Err(RunError::OutOfFuel), fuel_limit);
                }
                let instructions = meter.instructions().saturating_sub(start);
                if instructions > instruction_budget {
                    return (
                        Err(RunError::InstructionLimit {
                            instructions,
                            limit: instruction_budget,
                        }),
                        fuel_used,
                    );
                }
                let slice = fuel_slice.max(out.required_fuel()).min(remaining);
                let left = store.get_fuel().unwrap_or(0);
                granted += slice;
                if let Err(e) = store.set_fuel(left + slice) {
                    return (Err(RunError::Wasm(e)), fuel_used);
                }
                call = out.resume(&mut *store, &mut results);
            }
            Ok(ResumableCall::HostTrap(trap)) => {
                let fuel_used = used(store, granted);
                return (Err(RunError::Wasm(trap.into_host_error())), fuel_used);
            }
            Err(e) => {
                let fuel_used = used(store, granted);
                return (Err(RunError::Wasm(e)), fuel_used);
            }
        }
    }
}

/// The failure of a call that did not start.
fn not_run(error: InvokeError) -> InvokeFailure {
    InvokeFailure {
        error,
        fuel_used: 0,
        logs: Vec::new(),
    }
}

fn run_error(error: RunError, fuel_used: u64, fuel_limit: u64) -> InvokeError {
    match error {
        RunError::OutOfFuel => InvokeError::OutOfFuel {
            fuel_used,
            fuel_limit,
        },
        RunError::InstructionLimit {
            instructions,
            limit,
        } => InvokeError::InstructionLimit {
            instructions,
            limit,
        },
        RunError::Wasm(e) => {
            if let Some(trap) = e.downcast_ref::<HostTrap>() {
                return host_trap_error(trap.clone());
            }
            if e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
                return InvokeError::OutOfFuel {
                    fuel_used,
                    fuel_limit,
                };
            }
            InvokeError::Trap {
                message: e.to_string(),
            }
        }
    }
}

fn host_trap_error(trap: HostTrap) -> InvokeError {
    match trap {
        HostTrap::Limit(limit) => InvokeError::LimitExceeded(limit),
        other => InvokeError::Trap {
            message: other.to_string(),
        },
    }
}

fn instantiation_message(store: &wasmi::Store<HostState>, e: wasmi::Error) -> String {
    match &store.data().limit_hit {
        Some(limit) => limit.to_string(),
        None if e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) => {
            "out of fuel (the start function or initialiser did not finish)".into()
        }
        None => e.to_string(),
    }
}

/// The deterministic per-call seed: not secret (anyone can compute it from public facts).
fn seed(record: &PluginInfo, caller: &[u8], now_ns: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(record.name.as_bytes());
    h.update(record.calls.to_le_bytes());
    h.update(now_ns.to_le_bytes());
    h.update(caller);
    h.finalize().into()
}

fn saved(value: Val) -> SavedGlobal {
    let (tag, bits) = match value {
        Val::I32(v) => (0, v as u32 as u64),
        Val::I64(v) => (1, v as u64),
        Val::F32(v) => (2, v.to_bits() as u64),
        Val::F64(v) => (3, v.to_bits()),
        // Reference and vector globals are not persisted; they keep their initial value.
        _ => (255, 0),
    };
    SavedGlobal { tag, bits }
}

fn restored(g: SavedGlobal) -> Val {
    match g.tag {
        0 => Val::I32(g.bits as u32 as i32),
        1 => Val::I64(g.bits as i64),
        2 => Val::F32(wasmi::F32::from_bits(g.bits as u32)),
        _ => Val::F64(wasmi::F64::from_bits(g.bits)),
    }
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
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let max = self.limits.memory_pages as usize * 65536;
        if desired > max {
            self.limit_hit = Some(LimitExceeded {
                limit: "memory pages",
                requested: (desired / 65536) as u64,
                max: self.limits.memory_pages.into(),
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if desired > self.limits.table_elements as usize {
            self.limit_hit = Some(LimitExceeded {
                limit: "table elements",
                requested: desired as u64,
                max: self.limits.table_elements.into(),
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}
