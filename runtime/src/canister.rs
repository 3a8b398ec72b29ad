//! One canister: its code, heap, stable memory and system state, and how messages run on them.
//!
//! Every message runs on a wasmtime instance holding the committed heap (memory bytes and every
//! mutable global), with a copy-on-write overlay over stable memory. On success the instance's
//! heap and the overlay become the committed state; on a trap, an instruction-limit overrun or a
//! query (called as a query, or as an update: a replicated query), both are dropped.
//!
//! The instance is kept from one message to the next ([`Warm`]) when the module cannot change
//! anything of an instance but its memory and globals (no start function, no table mutation, no
//! segment drop: [`Code::reusable`]). Then the committed heap is kept twice, in the instance and
//! in [`Heap`]: a message that commits copies the instance's memory over the committed copy, one
//! that does not (trap, limit, query, inspect_message) copies the committed copy back over the
//! instance, or drops the instance when its memory grew (wasm memory cannot shrink). Either way
//! a message costs one copy of the heap into memory already mapped, instead of instantiating and
//! copying the heap in and out (page faults and all). Other modules get a fresh instance per
//! message, loaded from the committed heap.
//!
//! Invariant: `Canister`'s fields change only when a message commits (and `advance_time`), except
//! the cycle balance, which a message that ran pays whether it commits or not (see
//! [`crate::cycles`]), and `deposit_cycles` adds to, and the time and canister version, which a
//! replicated query moves on as any replicated message does.

use std::path::Path;
use std::sync::{Arc, Mutex};

use wasmtime::{
    Config, Engine, Extern, ExternType, FuncType, Instance, Linker, Memory, Module, Store, Val,
    ValType,
};

use crate::code_cache::CodeCache;
use crate::cost::{
    self, INSPECT_MESSAGE_LIMIT, INSTALL_LIMIT, MAX_INGRESS_PAYLOAD, QUERY_LIMIT, UPDATE_LIMIT,
};
use crate::cycles;
use crate::error::{Execution, Outcome, RuntimeError};
use crate::profile::{self, Profile, Recorder};
use crate::stable::{Overlay, StableMemory};
use crate::system_api::{self, Context, HostTrap, MessageState, SystemState};
use crate::top_up;

/// Time of the first message: 2026-01-01T00:00:00Z, in nanoseconds since the Unix epoch.
pub const GENESIS_TIME: u64 = 1_767_225_600_000_000_000;
/// How far time moves after each install, upgrade, update or timer (one second, about a round).
pub const TIME_STEP: u64 = 1_000_000_000;
/// The canister's own principal: `lxzze-o7777-77777-aaaaa-cai`.
pub const CANISTER_ID: [u8; 10] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xe0, 0x00, 0x00, 0x01, 0x01];
/// [`CANISTER_ID`] as text.
pub const CANISTER_ID_TEXT: &str = "lxzze-o7777-77777-aaaaa-cai";
/// The cycle balance a canister is installed with by default (100 T, the replica's
/// `default_provisional_cycles_balance`); messages spend it (see [`crate::cycles`]).
pub const CYCLE_BALANCE: u128 = 100_000_000_000_000;

/// Value of one mutable global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalValue {
    I32(i32),
    I64(i64),
    /// Bits of an f32.
    F32(u32),
    /// Bits of an f64.
    F64(u64),
    V128(u128),
}

/// The wasm heap the replica keeps between messages: linear memory and every mutable global.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Heap {
    pub(crate) memory: Vec<u8>,
    /// By export name (see `export_globals`), in the module's global order.
    pub(crate) globals: Vec<(String, GlobalValue)>,
}

/// A compiled canister module.
#[derive(Clone)]
pub(crate) struct Code {
    /// The module as installed, gunzipped (before the globals rewrite).
    pub(crate) wasm: Vec<u8>,
    module: Module,
    /// Export names of the mutable globals.
    globals: Vec<String>,
    /// Export name of the linear memory, if the module has one.
    memory: Option<String>,
    /// Export name of the counter of instructions charged on top of fuel (`top_up.rs`), if the
    /// module has operators that need it. Not part of the heap: zeroed by every message.
    top_up: Option<String>,
    /// Whether an instance can be kept from one message to the next: nothing of it but its memory
    /// and mutable globals can change (no start function, which a fresh instance would run again;
    /// no `table.set/grow/fill/copy/init`, `elem.drop` or `data.drop`, whose effects a fresh
    /// instance would not have).
    reusable: bool,
    /// Function names by index, when the module was compiled with profile probes.
    names: Option<Arc<Vec<String>>>,
}

impl Code {
    /// Export names of the module's mutable globals, in order.
    pub(crate) fn global_names(&self) -> Vec<&str> {
        self.globals.iter().map(String::as_str).collect()
    }
}

/// How many compiled modules a [`Runtime`] keeps for reuse.
const COMPILED_CACHE: usize = 4;

/// Compiles canister modules and runs their messages: a wasmtime engine with the replica's cost
/// table, the `ic0` linker, and the last few compiled modules.
///
/// Compiling a large canister takes seconds; every canister installed or loaded through the same
/// `Runtime` (or a clone: clones share everything) compiles a given module only once per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    linker: Linker<MessageState>,
    /// Recently compiled modules, most recent last; looked up by their (gunzipped) bytes.
    compiled: Mutex<Vec<Code>>,
    /// Compiled modules on disk, shared with other processes.
    code_cache: Option<CodeCache>,
    /// Whether modules are compiled with profile probes (`profile.rs`).
    profiling: bool,
    /// The profile of the last message, on a profiling runtime.
    last_profile: Mutex<Option<Profile>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

fn host_error(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Host(e.to_string())
}

impl Runtime {
    /// A runtime with an empty module cache.
    pub fn new() -> Result<Self, RuntimeError> {
        Self::build(None, false)
    }

    /// A runtime that also keeps the machine code it compiles in `dir`, and loads it from there
    /// instead of compiling a module again (for the CLI: one process per command). An entry that
    /// does not check out is compiled again (`code_cache.rs` says how entries are checked).
    pub fn with_code_cache(dir: &Path) -> Result<Self, RuntimeError> {
        Self::build(Some(CodeCache::new(dir)), false)
    }

    /// A runtime that profiles every message by function (`profile.rs`): read each with
    /// [`Runtime::take_profile`]. Its counts are the same as an unprofiled runtime's; it is slower.
    pub fn profiling() -> Result<Self, RuntimeError> {
        Self::build(None, true)
    }

    /// The profile of the last message run on this runtime (or a clone), if it profiles.
    pub fn take_profile(&self) -> Option<Profile> {
        self.inner
            .last_profile
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn build(code_cache: Option<CodeCache>, profiling: bool) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.operator_cost(cost::operator_cost());
        config.wasm_relaxed_simd(false);
        config.cranelift_nan_canonicalization(true);
        let engine = Engine::new(&config).map_err(host_error)?;
        let linker = if profiling {
            system_api::profiling_linker(&engine)
        } else {
            system_api::linker(&engine)
        }
        .map_err(host_error)?;
        Ok(Runtime {
            inner: Arc::new(Shared {
                engine,
                linker,
                compiled: Mutex::new(Vec::new()),
                code_cache,
                profiling,
                last_profile: Mutex::new(None),
            }),
        })
    }

    /// Imports of `module` the linker does not provide with the right type, as `module.name`.
    fn unsupported(&self, module: &Module) -> Vec<String> {
        let mut store = Store::new(
            &self.inner.engine,
            MessageState::new(Context::Query, Overlay::default(), SystemState::default()),
        );
        module
            .imports()
            .filter(|import| {
                let provided = self
                    .inner
                    .linker
                    .get(&mut store, import.module(), import.name());
                !matches!((provided, import.ty()), (Ok(Extern::Func(f)), ExternType::Func(want))
                    if FuncType::eq(&f.ty(&store), &want))
            })
            .map(|import| format!("{}.{}", import.module(), import.name()))
            .collect()
    }

    /// Compiles `wasm` (raw or gzip-compressed), or reuses the module compiled from the same bytes.
    pub(crate) fn compile(&self, wasm: &[u8]) -> Result<Code, RuntimeError> {
        let wasm = decompress(wasm)?;
        let mut compiled = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = compiled.iter().position(|c| c.wasm == wasm) {
            let code = compiled.remove(at);
            compiled.push(code.clone());
            return Ok(code);
        }
        drop(compiled);
        let code = self.compile_new(wasm)?;
        let mut compiled = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if compiled.len() >= COMPILED_CACHE {
            compiled.remove(0);
        }
        compiled.push(code.clone());
        Ok(code)
    }

    fn compile_new(&self, wasm: Vec<u8>) -> Result<Code, RuntimeError> {
        let instrumented =
            top_up::instrument(&wasm).map_err(|e| RuntimeError::InvalidModule(e.to_string()))?;
        let (probed, names) = if self.inner.profiling {
            let probed = profile::instrument(&instrumented.wasm)
                .map_err(|e| RuntimeError::InvalidModule(e.to_string()))?;
            (probed.wasm, Some(Arc::new(probed.names)))
        } else {
            (instrumented.wasm, None)
        };
        let rewritten = export_globals::export_mutable_globals(&probed)
            .map_err(|e| RuntimeError::InvalidModule(e.to_string()))?;
        let top_up = instrumented.counter.and_then(|index| {
            rewritten
                .globals
                .iter()
                .find(|g| g.index == index)
                .map(|g| g.export.clone())
        });
        let engine = &self.inner.engine;
        let cache = self.inner.code_cache.as_ref();
        let module = match cache.and_then(|cache| cache.load(engine, &rewritten.wasm)) {
            Some(module) => module,
            None => {
                let module = Module::new(engine, &rewritten.wasm)
                    .map_err(|e| RuntimeError::InvalidModule(format!("{e:#}")))?;
                if let Some(cache) = cache {
                    cache.store(engine, &rewritten.wasm, &module);
                }
                module
            }
        };
        let unsupported = self.unsupported(&module);
        if !unsupported.is_empty() {
            return Err(RuntimeError::UnsupportedImport(unsupported.join(", ")));
        }
        let globals: Vec<String> = rewritten
            .globals
            .into_iter()
            .map(|g| g.export)
            .filter(|name| Some(name) != top_up.as_ref())
            .collect();
        for name in &globals {
            if let Some(ExternType::Global(g)) = module.get_export(name)
                && !matches!(
                    g.content(),
                    ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 | ValType::V128
                )
            {
                return Err(RuntimeError::InvalidModule(format!(
                    "mutable reference-typed global `{name}` cannot be saved"
                )));
            }
        }
        let mut methods = std::collections::BTreeSet::new();
        for export in module.exports() {
            let name = export.name();
            let method = name
                .strip_prefix("canister_update ")
                .or_else(|| name.strip_prefix("canister_query "))
                .or_else(|| name.strip_prefix("canister_composite_query "));
            if let Some(method) = method
                && !methods.insert(method)
            {
                return Err(RuntimeError::InvalidModule(format!(
                    "method `{method}` is exported more than once (as update and query)"
                )));
            }
        }
        let memory = module
            .exports()
            .find(|e| matches!(e.ty(), ExternType::Memory(_)))
            .map(|e| e.name().to_string());
        let reusable = reusable(&rewritten.wasm)?;
        Ok(Code {
            wasm,
            module,
            globals,
            memory,
            top_up,
            reusable,
            names,
        })
    }

    /// Runs one entry point of `code` from `start` over `stable`; then, as `request.after` says,
    /// writes the instance's heap into the committed [`Heap`] (if the message succeeded), or
    /// restores the instance from it. Returns the overlay for the caller to commit or roll back,
    /// the instructions used whatever the result (at most the limit), to charge cycles for, and
    /// the instance if it holds the committed heap and may be kept for the next message.
    fn execute(
        &self,
        code: &Code,
        start: Start<'_>,
        stable: Overlay,
        system: SystemState,
        request: Request<'_>,
    ) -> Executed {
        let mut state = MessageState::new(request.context, stable, system);
        state.method = request.method.to_string();
        state.arg = request.arg.to_vec();
        state.caller = request.caller.to_vec();
        state.self_id = CANISTER_ID.to_vec();
        state.freezing_threshold = request.freezing_threshold;
        state.fuel_start = request.limit;
        state.profile = code.names.is_some().then(Recorder::default);
        let (heap, warm, loaded) = match start {
            Start::Initial(heap) => (heap, None, false),
            Start::Committed(heap, warm) => (heap, warm, true),
        };
        let (mut store, instance) = match warm {
            Some(Warm {
                mut store,
                instance,
                memory,
            }) => {
                state.memory = memory;
                *store.data_mut() = state;
                let fuel = store.set_fuel(request.limit).map_err(host_error);
                let counter = fuel.and_then(|()| start_top_up(&mut store, code, instance));
                (store, counter.map(|()| (instance, memory)))
            }
            None => {
                let mut store = Store::new(&self.inner.engine, state);
                store.limiter(|s| &mut s.limiter);
                let from = loaded.then_some(&*heap);
                let instance = self.instantiate(&mut store, code, from, request.limit);
                (store, instance)
            }
        };
        let mut result = match &instance {
            Ok((instance, _)) => self.call(&mut store, *instance, &request),
            Err(e) => Err(e.clone()),
        };
        let instructions = match &result {
            Ok((_, instructions)) => *instructions,
            Err(RuntimeError::InstructionLimit { .. }) => request.limit,
            Err(_) => used(&mut store).min(request.limit),
        };
        if let (Some(recorder), Some(names)) = (store.data_mut().profile.take(), &code.names) {
            let profile = recorder.finish(used(&mut store), names);
            *self
                .inner
                .last_profile
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(profile);
        }
        let mut live = instance.ok();
        match (&result, request.after) {
            (Ok(_), After::Commit) => {
                if let Some((instance, memory)) = live
                    && let Err(e) = save(&mut store, code, instance, memory, heap)
                {
                    result = Err(e);
                    live = None;
                }
            }
            // Back to the committed heap it was loaded from, if the instance may be kept.
            (_, After::Commit | After::Rollback) if loaded && code.reusable => {
                live = live.filter(|&(instance, memory)| {
                    restore(&mut store, instance, memory, heap).is_ok()
                });
            }
            _ => live = None,
        }
        if !code.reusable {
            live = None;
        }
        let state = std::mem::replace(store.data_mut(), idle_state());
        let result = result.map(|(outcome, instructions)| Ran {
            outcome,
            system: state.system,
            instructions,
            accepted: state.accepted,
            debug_prints: state.debug_prints,
        });
        Executed {
            stable: state.stable,
            instructions,
            result,
            warm: live.map(|(instance, memory)| Warm {
                store,
                instance,
                memory,
            }),
        }
    }

    /// Instantiates `code` in `store` and loads `heap` into it (`None`: the module's initial heap);
    /// sets the store's fuel to `limit` for the message to start from.
    fn instantiate(
        &self,
        store: &mut Store<MessageState>,
        code: &Code,
        heap: Option<&Heap>,
        limit: u64,
    ) -> Result<(Instance, Option<Memory>), RuntimeError> {
        store.set_fuel(limit).map_err(host_error)?;
        let instance = self
            .inner
            .linker
            .instantiate(&mut *store, &code.module)
            .map_err(|e| classify(store, e, limit))?;
        let memory = code
            .memory
            .as_ref()
            .and_then(|name| instance.get_memory(&mut *store, name));
        store.data_mut().memory = memory;
        store.data_mut().top_up = code
            .top_up
            .as_ref()
            .and_then(|name| instance.get_global(&mut *store, name));
        if let Some(heap) = heap {
            if let Some(memory) = memory {
                let have = memory.data_size(&*store);
                if heap.memory.len() < have {
                    return Err(host_error("saved heap is smaller than the module's memory"));
                }
                let pages = (heap.memory.len() - have) as u64 / cost::WASM_PAGE;
                memory.grow(&mut *store, pages).map_err(host_error)?;
                memory.data_mut(&mut *store).copy_from_slice(&heap.memory);
            }
            set_globals(store, instance, heap)?;
            // Re-instantiating is not part of the message: start it with a full budget.
            store.set_fuel(limit).map_err(host_error)?;
            start_top_up(store, code, instance)?;
        }
        Ok((instance, memory))
    }

    /// Runs the request's export on `instance`, whose store holds the message's state and its
    /// fuel.
    fn call(
        &self,
        store: &mut Store<MessageState>,
        instance: Instance,
        request: &Request<'_>,
    ) -> Result<(Option<Outcome>, u64), RuntimeError> {
        if let Some(func) = instance.get_func(&mut *store, request.export) {
            let func = func
                .typed::<(), ()>(&*store)
                .map_err(|_| RuntimeError::Trap {
                    message: format!("Canister export `{}` has the wrong type", request.export),
                    instructions: 0,
                    debug_prints: Vec::new(),
                })?;
            func.call(&mut *store, ())
                .map_err(|e| classify(store, e, request.limit))?;
        }
        let instructions = used(store);
        if instructions > request.limit {
            return Err(RuntimeError::InstructionLimit {
                limit: request.limit,
                debug_prints: store.data().debug_prints.clone(),
            });
        }
        let outcome = store.data_mut().outcome.take();
        Ok((outcome, instructions))
    }
}

/// Points the message's top-up counter at `instance`'s and zeroes it: what the message is
/// charged on top of fuel starts from nothing.
fn start_top_up(
    store: &mut Store<MessageState>,
    code: &Code,
    instance: Instance,
) -> Result<(), RuntimeError> {
    let counter = code
        .top_up
        .as_ref()
        .and_then(|name| instance.get_global(&mut *store, name));
    if let Some(counter) = counter {
        counter.set(&mut *store, Val::I64(0)).map_err(host_error)?;
    }
    store.data_mut().top_up = counter;
    Ok(())
}

/// What a store holds between messages.
fn idle_state() -> MessageState {
    MessageState::new(Context::Query, Overlay::default(), SystemState::default())
}

/// Writes the instance's memory and mutable globals into `heap` (the committed heap).
fn save(
    store: &mut Store<MessageState>,
    code: &Code,
    instance: Instance,
    memory: Option<Memory>,
    heap: &mut Heap,
) -> Result<(), RuntimeError> {
    let mut globals = Vec::with_capacity(code.globals.len());
    for name in &code.globals {
        let global = instance
            .get_global(&mut *store, name)
            .ok_or_else(|| host_error(format!("global `{name}` is missing")))?;
        let value = from_val(global.get(&mut *store))
            .ok_or_else(|| host_error(format!("global `{name}` cannot be saved")))?;
        globals.push((name.clone(), value));
    }
    heap.globals = globals;
    let data = memory.map(|m| m.data(&*store)).unwrap_or_default();
    heap.memory.resize(data.len(), 0);
    heap.memory.copy_from_slice(data);
    Ok(())
}

/// Puts the instance back to `heap`; fails if its memory no longer has the heap's size (it grew:
/// wasm memory cannot shrink).
fn restore(
    store: &mut Store<MessageState>,
    instance: Instance,
    memory: Option<Memory>,
    heap: &Heap,
) -> Result<(), RuntimeError> {
    if let Some(memory) = memory {
        let data = memory.data_mut(&mut *store);
        if data.len() != heap.memory.len() {
            return Err(host_error("the instance's memory grew"));
        }
        data.copy_from_slice(&heap.memory);
    }
    set_globals(store, instance, heap)
}

fn set_globals(
    store: &mut Store<MessageState>,
    instance: Instance,
    heap: &Heap,
) -> Result<(), RuntimeError> {
    for (name, value) in &heap.globals {
        let global = instance
            .get_global(&mut *store, name)
            .ok_or_else(|| host_error(format!("saved global `{name}` is missing")))?;
        global
            .set(&mut *store, to_val(*value))
            .map_err(host_error)?;
    }
    Ok(())
}

/// Whether instances of `wasm` may be kept between messages (see [`Code::reusable`]).
fn reusable(wasm: &[u8]) -> Result<bool, RuntimeError> {
    use wasmtime::wasmparser::{BinaryReaderError, Operator, Parser, Payload};
    let invalid = |e: BinaryReaderError| RuntimeError::InvalidModule(e.to_string());
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::StartSection { .. } => return Ok(false),
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().map_err(invalid)?;
                while !ops.eof() {
                    if matches!(
                        ops.read().map_err(invalid)?,
                        Operator::TableSet { .. }
                            | Operator::TableGrow { .. }
                            | Operator::TableFill { .. }
                            | Operator::TableCopy { .. }
                            | Operator::TableInit { .. }
                            | Operator::ElemDrop { .. }
                            | Operator::DataDrop { .. }
                    ) {
                        return Ok(false);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(true)
}

/// A wasmtime instance of a canister's code kept between messages: its memory and mutable globals
/// are the committed heap.
pub(crate) struct Warm {
    store: Store<MessageState>,
    instance: Instance,
    memory: Option<Memory>,
}

/// What a message starts from.
enum Start<'a> {
    /// The module's initial heap (install, post_upgrade); a commit writes the heap here.
    Initial(&'a mut Heap),
    /// The committed heap, and the instance that holds it if one was kept.
    Committed(&'a mut Heap, Option<Warm>),
}

/// What becomes of the heap after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Committed if the message succeeds, else rolled back.
    Commit,
    /// Rolled back whatever happens (queries, inspect_message).
    Rollback,
    /// Neither: the instance is dropped (pre_upgrade: the new module's heap replaces it, and
    /// the committed heap stays if the upgrade fails).
    Discard,
}

/// Largest module after decompression (the replica's limit on an uncompressed module).
pub const MAX_MODULE_BYTES: u64 = 100 * 1024 * 1024;

/// The module itself, gunzipped if it is gzip-compressed (as `install_code` accepts it).
pub fn decompress(wasm: &[u8]) -> Result<Vec<u8>, RuntimeError> {
    use std::io::Read;
    if !wasm.starts_with(&[0x1f, 0x8b]) {
        return Ok(wasm.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(wasm)
        .take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| RuntimeError::InvalidModule(format!("bad gzip stream: {e}")))?;
    if out.len() as u64 > MAX_MODULE_BYTES {
        return Err(RuntimeError::InvalidModule(format!(
            "module is larger than {MAX_MODULE_BYTES} bytes uncompressed"
        )));
    }
    Ok(out)
}

fn used(store: &mut Store<MessageState>) -> u64 {
    system_api::instructions_used(store)
}

/// Turns a wasmtime error into the replica's view of it.
fn classify(store: &mut Store<MessageState>, e: wasmtime::Error, limit: u64) -> RuntimeError {
    let debug_prints = store.data().debug_prints.clone();
    let instructions = used(store);
    let trap = |message: String| RuntimeError::Trap {
        message,
        instructions,
        debug_prints: debug_prints.clone(),
    };
    if let Some(host) = e.downcast_ref::<HostTrap>() {
        return match host {
            HostTrap::Trap(message) => trap(message.clone()),
            HostTrap::InstructionLimit => RuntimeError::InstructionLimit {
                limit,
                debug_prints,
            },
            HostTrap::ReplyTooLarge { size, limit } => RuntimeError::ReplyTooLarge {
                size: *size,
                limit: *limit,
            },
        };
    }
    if let Some(t) = e.downcast_ref::<wasmtime::Trap>() {
        let what = match t {
            wasmtime::Trap::OutOfFuel => {
                return RuntimeError::InstructionLimit {
                    limit,
                    debug_prints,
                };
            }
            wasmtime::Trap::UnreachableCodeReached => "unreachable".to_string(),
            wasmtime::Trap::MemoryOutOfBounds => "heap out of bounds".to_string(),
            wasmtime::Trap::IntegerDivisionByZero => "integer division by 0".to_string(),
            wasmtime::Trap::IntegerOverflow => "integer overflow".to_string(),
            wasmtime::Trap::StackOverflow => "stack overflow".to_string(),
            wasmtime::Trap::TableOutOfBounds => "table out of bounds".to_string(),
            wasmtime::Trap::IndirectCallToNull => "indirect call to null".to_string(),
            wasmtime::Trap::BadSignature => "indirect call type mismatch".to_string(),
            other => other.to_string(),
        };
        return trap(format!("Canister trapped: {what}"));
    }
    host_error(format!("{e:#}"))
}

fn to_val(v: GlobalValue) -> Val {
    match v {
        GlobalValue::I32(x) => Val::I32(x),
        GlobalValue::I64(x) => Val::I64(x),
        GlobalValue::F32(x) => Val::F32(x),
        GlobalValue::F64(x) => Val::F64(x),
        GlobalValue::V128(x) => Val::V128(x.into()),
    }
}

fn from_val(v: Val) -> Option<GlobalValue> {
    Some(match v {
        Val::I32(x) => GlobalValue::I32(x),
        Val::I64(x) => GlobalValue::I64(x),
        Val::F32(x) => GlobalValue::F32(x),
        Val::F64(x) => GlobalValue::F64(x),
        Val::V128(x) => GlobalValue::V128(x.as_u128()),
        _ => return None,
    })
}

struct Request<'a> {
    context: Context,
    export: &'a str,
    method: &'a str,
    arg: &'a [u8],
    caller: &'a [u8],
    limit: u64,
    /// The canister's freezing threshold as the message starts.
    freezing_threshold: u128,
    /// What becomes of the heap.
    after: After,
}

/// What [`Runtime::execute`] returns.
struct Executed {
    /// Stable memory with the message's writes, to commit or roll back.
    stable: Overlay,
    /// Instructions used, whatever the result (the limit when it was hit).
    instructions: u64,
    result: Result<Ran, RuntimeError>,
    /// The instance, if it holds the committed heap and may be kept.
    warm: Option<Warm>,
}

struct Ran {
    outcome: Option<Outcome>,
    system: SystemState,
    instructions: u64,
    /// Whether `canister_inspect_message` called `ic0.accept_message`.
    accepted: bool,
    debug_prints: Vec<String>,
}

fn check_payload(arg: &[u8]) -> Result<(), RuntimeError> {
    if arg.len() > MAX_INGRESS_PAYLOAD {
        return Err(RuntimeError::PayloadTooLarge {
            size: arg.len(),
            limit: MAX_INGRESS_PAYLOAD,
        });
    }
    Ok(())
}

/// Who sent a message: what it is charged for, and whether `canister_inspect_message` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A user, through the ingress path.
    Ingress,
    /// Another canister (an inter-canister call).
    Canister,
    /// The system (the global timer).
    System,
}

/// One canister: module, heap (memory and globals), stable memory, controllers, time.
pub struct Canister {
    pub(crate) runtime: Runtime,
    pub(crate) code: Code,
    /// The committed heap.
    pub(crate) heap: Heap,
    /// An instance of `code` holding `heap`, kept from the last message (see [`Warm`]).
    pub(crate) warm: Option<Warm>,
    pub(crate) stable: StableMemory,
    pub(crate) system: SystemState,
}

impl std::fmt::Debug for Canister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canister")
            .field("module_bytes", &self.code.wasm.len())
            .field("heap_bytes", &self.heap.memory.len())
            .field("stable_pages", &self.stable.size_pages())
            .field("system", &self.system)
            .finish()
    }
}

impl Canister {
    /// Creates the canister from `wasm` (raw or gzip-compressed) with a balance of
    /// [`CYCLE_BALANCE`] and runs `canister_init(arg)` (if exported) under the install limit.
    /// `sender` becomes the only controller. A trap creates nothing.
    pub fn install(
        wasm: &[u8],
        arg: &[u8],
        sender: &[u8],
    ) -> Result<(Self, Execution), RuntimeError> {
        Self::install_on(&Runtime::new()?, wasm, arg, sender)
    }

    /// [`Canister::install`] on a shared [`Runtime`], which compiles each module once.
    pub fn install_on(
        runtime: &Runtime,
        wasm: &[u8],
        arg: &[u8],
        sender: &[u8],
    ) -> Result<(Self, Execution), RuntimeError> {
        Self::install_with_cycles_on(runtime, wasm, arg, sender, CYCLE_BALANCE)
    }

    /// [`Canister::install_on`] with a balance of `cycles` instead of [`CYCLE_BALANCE`]. The
    /// install's execution is paid from it (prepaid for the install limit, 300 B instructions, the
    /// unused part refunded), so `cycles` must cover at least [`cycles::execution_cost`] of
    /// [`INSTALL_LIMIT`], or nothing is created ([`RuntimeError::OutOfCycles`]).
    pub fn install_with_cycles_on(
        runtime: &Runtime,
        wasm: &[u8],
        arg: &[u8],
        sender: &[u8],
        cycles: u128,
    ) -> Result<(Self, Execution), RuntimeError> {
        check_payload(arg)?;
        let runtime = runtime.clone();
        let code = runtime.compile(wasm)?;
        // The canister has no memory before its module is installed: no freezing threshold.
        let prepaid = cycles::execution_cost(INSTALL_LIMIT);
        if cycles < prepaid {
            return Err(RuntimeError::OutOfCycles {
                balance: cycles,
                needed: prepaid,
            });
        }
        let system = SystemState {
            time: GENESIS_TIME,
            controllers: vec![sender.to_vec()],
            certified_data: Vec::new(),
            global_timer: 0,
            canister_version: 0,
            cycles: cycles - prepaid,
            stable_memory_limit: None,
        };
        let request = Request {
            context: Context::Init,
            export: "canister_init",
            method: "",
            arg,
            caller: sender,
            limit: INSTALL_LIMIT,
            freezing_threshold: 0,
            after: After::Commit,
        };
        let mut heap = Heap::default();
        let executed = runtime.execute(
            &code,
            Start::Initial(&mut heap),
            Overlay::new(StableMemory::default()),
            system,
            request,
        );
        let ran = executed.result?;
        let refund = cycles::execution_refund(INSTALL_LIMIT - ran.instructions, prepaid);
        let mut system = ran.system;
        system.cycles += refund;
        system.canister_version += 1;
        system.time = system.time.saturating_add(TIME_STEP);
        let canister = Canister {
            runtime,
            code,
            heap,
            warm: executed.warm,
            stable: executed.stable.commit(),
            system,
        };
        let execution = Execution {
            outcome: Outcome::Done,
            instructions: ran.instructions,
            cycles: prepaid - refund,
            inspect_instructions: 0,
            debug_prints: ran.debug_prints,
        };
        Ok((canister, execution))
    }

    /// Upgrades to `wasm`: `canister_pre_upgrade` on the old module, then a fresh heap of the new
    /// module, stable memory kept, `canister_post_upgrade(arg)`; both hooks share the install limit
    /// and one execution fee (prepaid for the install limit, the unused part refunded).
    /// Only a controller may upgrade. Any failure leaves the canister as it was, except the cycles
    /// the hooks used.
    pub fn upgrade(
        &mut self,
        wasm: &[u8],
        arg: &[u8],
        sender: &[u8],
    ) -> Result<Execution, RuntimeError> {
        check_payload(arg)?;
        if !self.system.controllers.iter().any(|c| c == sender) {
            return Err(RuntimeError::NotController);
        }
        let code = self.runtime.compile(wasm)?;
        let freezing_threshold = self.freezing_threshold();
        let prepaid = cycles::execution_cost(INSTALL_LIMIT);
        self.withdraw(prepaid, freezing_threshold)?;
        let balance = self.system.cycles;
        let mut overlay = Overlay::new(std::mem::take(&mut self.stable));
        let mut system = self.system.clone();
        let mut instructions = 0;
        let mut debug_prints = Vec::new();
        if self
            .code
            .module
            .get_export("canister_pre_upgrade")
            .is_some()
        {
            let request = Request {
                context: Context::PreUpgrade,
                export: "canister_pre_upgrade",
                method: "",
                arg: &[],
                caller: sender,
                limit: INSTALL_LIMIT,
                freezing_threshold,
                after: After::Discard,
            };
            let start = Start::Committed(&mut self.heap, self.warm.take());
            let executed = self
                .runtime
                .execute(&self.code, start, overlay, system, request);
            match executed.result {
                Ok(ran) => {
                    overlay = executed.stable;
                    system = ran.system;
                    instructions = ran.instructions;
                    debug_prints = ran.debug_prints;
                }
                Err(e) => {
                    self.stable = executed.stable.rollback();
                    self.system.cycles = balance
                        + cycles::execution_refund(INSTALL_LIMIT - executed.instructions, prepaid);
                    return Err(e);
                }
            }
        }
        let request = Request {
            context: Context::PostUpgrade,
            export: "canister_post_upgrade",
            method: "",
            arg,
            caller: sender,
            limit: INSTALL_LIMIT - instructions,
            freezing_threshold,
            after: After::Commit,
        };
        // The old module's instance goes whatever happens (pre_upgrade ran on it).
        self.warm = None;
        let mut heap = Heap::default();
        let executed =
            self.runtime
                .execute(&code, Start::Initial(&mut heap), overlay, system, request);
        let refund = cycles::execution_refund(
            INSTALL_LIMIT - instructions - executed.instructions,
            prepaid,
        );
        self.system.cycles = balance + refund;
        let ran = match executed.result {
            Ok(ran) => ran,
            Err(mut e) => {
                self.stable = executed.stable.rollback();
                if let RuntimeError::Trap {
                    instructions: i,
                    debug_prints: d,
                    ..
                } = &mut e
                {
                    *i += instructions;
                    d.splice(0..0, debug_prints);
                }
                if let RuntimeError::InstructionLimit { limit, .. } = &mut e {
                    *limit = INSTALL_LIMIT;
                }
                return Err(e);
            }
        };
        debug_prints.extend(ran.debug_prints);
        self.stable = executed.stable.commit();
        self.code = code;
        self.heap = heap;
        self.warm = executed.warm;
        self.system = ran.system;
        self.system.cycles = balance + refund;
        self.system.canister_version += 1;
        self.system.time = self.system.time.saturating_add(TIME_STEP);
        Ok(Execution {
            outcome: Outcome::Done,
            instructions: instructions + ran.instructions,
            cycles: prepaid - refund,
            inspect_instructions: 0,
            debug_prints,
        })
    }

    /// Runs an ingress update call of `canister_update <method>`, as a user's message arrives on
    /// the IC:
    ///
    /// 1. refused ([`RuntimeError::OutOfCycles`], nothing charged) if the balance cannot pay the
    ///    ingress induction fee above the freezing threshold;
    /// 2. `canister_inspect_message`, if exported, must accept it (`ic0.accept_message`), else
    ///    [`RuntimeError::NotAccepted`]; it runs free, non-replicated, and nothing it does is kept;
    /// 3. the induction fee is charged, then the execution prepaid for the update limit
    ///    ([`RuntimeError::OutOfCycles`] if that cannot be paid: the induction fee is kept);
    /// 4. the method runs: committed if it replies or rejects, rolled back if it traps or runs out
    ///    of instructions; either way the unused part of the prepaid execution is refunded.
    ///
    /// **A query method called as an update.** When the canister exports no
    /// `canister_update <method>` but exports `canister_query <method>`, that runs as a
    /// *replicated query*, as on the IC; with neither, [`RuntimeError::MissingMethod`] (kind
    /// "update"). A replicated query is an ingress message like any other (steps 1 to 3:
    /// inspect_message, induction fee, prepaid execution) but:
    ///
    /// - it runs replicated (`ic0.in_replicated_execution` is 1) with the System API of the
    ///   replica's `ApiType::ReplicatedQuery`: no timer, no certified data, replies of at most
    ///   2 MiB;
    /// - its instruction limit is a query's, [`QUERY_LIMIT`] (5 B), and so is the execution it
    ///   prepays: [`cycles::execution_cost`] of 5 B, the unused part refunded, so it pays
    ///   5 M + 1 per instruction used, as an update does;
    /// - nothing it does is kept, whatever its outcome: heap, globals and stable memory are
    ///   rolled back as after a query; only the cycles it paid are gone, and the canister
    ///   version is bumped if it did not trap (time moves on, as after any replicated message).
    ///
    /// As the replica has it (`dfinity/ic`):
    /// `rs/execution_environment/src/execution/replicated_query.rs` at
    /// `60b08a9ebd232653917a9c0d420849bb1059aa68` (`execute_replicated_query`: prepay the
    /// execution for the message limit, run on clones of the execution and system state, refund
    /// the unused instructions, return the canister as it was; a composite query is refused), and
    /// its successor, `rs/execution_environment/src/execution/call_or_task.rs` at
    /// `0180e76cfba8893e84ef08386bf95d1d06449801` (`CanisterCallOrTask::Query`: only the system
    /// state modifications are applied, heap delta 0);
    /// `rs/execution_environment/src/execution_environment.rs` (`execute_canister_input` at
    /// `00439e1d2ccf1537bcbd5830958a044ee27965fc`: a query method gets
    /// `max_instructions_per_query_message`, 5 B in `rs/config/src/subnet_config.rs`; before,
    /// `max_instructions_per_message_without_dts`, also 5 B at
    /// `002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe`);
    /// `rs/embedders/src/wasmtime_embedder/system_api.rs` at
    /// `0180e76cfba8893e84ef08386bf95d1d06449801` (`ApiType::ReplicatedQuery`: what it may
    /// call, `in_replicated_execution` 1, `max_reply_size` of an inter-canister payload; its
    /// `take_system_state_modifications` keeps only cycles and logs, and bumps the canister
    /// version when it did not trap); `rs/execution_environment/src/execution/inspect_message.rs`
    /// (inspect_message runs for every ingress message, whatever the method's kind).
    pub fn update(
        &mut self,
        method: &str,
        arg: &[u8],
        caller: &[u8],
    ) -> Result<Execution, RuntimeError> {
        self.message(Context::Update, Origin::Ingress, method, arg, caller)
    }

    /// Runs `canister_update <method>` as a call from another canister `caller`: no
    /// `canister_inspect_message` (it only filters ingress messages) and no ingress induction fee
    /// (the calling canister pays for sending); the execution is paid as in
    /// [`Canister::update`]. The call carries no cycles. Inter-canister calls are always
    /// replicated: a query method (`canister_query <method>`, no `canister_update <method>`) runs
    /// as a replicated query, as in [`Canister::update`].
    pub fn update_from_canister(
        &mut self,
        method: &str,
        arg: &[u8],
        caller: &[u8],
    ) -> Result<Execution, RuntimeError> {
        self.message(Context::Update, Origin::Canister, method, arg, caller)
    }

    /// Runs `canister_query <method>` as a query call; nothing it does is kept, and it is free (a
    /// non-replicated query: `ic0.in_replicated_execution` is 0). To call it as an update (a
    /// replicated query), use [`Canister::update`] or [`Canister::update_from_canister`].
    pub fn query(
        &mut self,
        method: &str,
        arg: &[u8],
        caller: &[u8],
    ) -> Result<Execution, RuntimeError> {
        self.message(Context::Query, Origin::Ingress, method, arg, caller)
    }

    /// Runs `canister_global_timer` if the timer is set and due (time >= deadline); the timer is
    /// deactivated first, as on the IC. Returns `None` when nothing was due. When the balance cannot
    /// prepay the execution, returns [`RuntimeError::OutOfCycles`] and the timer stays set.
    pub fn run_timer(&mut self) -> Result<Option<Execution>, RuntimeError> {
        let due = self.system.global_timer;
        if due == 0 || due > self.system.time {
            return Ok(None);
        }
        if self
            .code
            .module
            .get_export("canister_global_timer")
            .is_none()
        {
            self.system.global_timer = 0;
            return Ok(None);
        }
        self.message(Context::Timer, Origin::System, "", &[], &CANISTER_ID)
            .map(Some)
    }

    /// Whether the balance can pay `amount` and keep `freezing_threshold`.
    fn can_pay(&self, amount: u128, freezing_threshold: u128) -> Result<(), RuntimeError> {
        let needed = amount.saturating_add(freezing_threshold);
        if self.system.cycles < needed {
            return Err(RuntimeError::OutOfCycles {
                balance: self.system.cycles,
                needed,
            });
        }
        Ok(())
    }

    /// Takes `amount` from the balance if that leaves at least `freezing_threshold`.
    fn withdraw(&mut self, amount: u128, freezing_threshold: u128) -> Result<(), RuntimeError> {
        self.can_pay(amount, freezing_threshold)?;
        self.system.cycles -= amount;
        Ok(())
    }

    /// Runs `canister_inspect_message` (if exported) for an ingress update, on the committed state,
    /// and drops everything it did. Returns the instructions it used if it accepted the message.
    fn inspect_message(
        &mut self,
        method: &str,
        arg: &[u8],
        caller: &[u8],
        freezing_threshold: u128,
    ) -> Result<u64, RuntimeError> {
        const EXPORT: &str = "canister_inspect_message";
        if self.code.module.get_export(EXPORT).is_none() {
            return Ok(0);
        }
        let request = Request {
            context: Context::InspectMessage,
            export: EXPORT,
            method,
            arg,
            caller,
            limit: INSPECT_MESSAGE_LIMIT,
            freezing_threshold,
            after: After::Rollback,
        };
        let overlay = Overlay::new(std::mem::take(&mut self.stable));
        let start = Start::Committed(&mut self.heap, self.warm.take());
        let executed =
            self.runtime
                .execute(&self.code, start, overlay, self.system.clone(), request);
        self.warm = executed.warm;
        self.stable = executed.stable.rollback();
        let refused = |reason: String, debug_prints: Vec<String>| RuntimeError::NotAccepted {
            method: method.to_string(),
            reason,
            instructions: executed.instructions,
            debug_prints,
        };
        match executed.result {
            Ok(ran) if ran.accepted => Ok(executed.instructions),
            Ok(ran) => Err(refused(
                format!("Canister {CANISTER_ID_TEXT} rejected the message"),
                ran.debug_prints,
            )),
            Err(RuntimeError::Trap {
                message,
                debug_prints,
                ..
            }) => Err(refused(message, debug_prints)),
            Err(e @ RuntimeError::InstructionLimit { .. }) => {
                let reason = e.to_string();
                let RuntimeError::InstructionLimit { debug_prints, .. } = e else {
                    unreachable!("matched above")
                };
                Err(refused(reason, debug_prints))
            }
            Err(e @ RuntimeError::Host(_)) => Err(e),
            Err(e) => Err(refused(e.to_string(), Vec::new())),
        }
    }

    fn message(
        &mut self,
        context: Context,
        origin: Origin,
        method: &str,
        arg: &[u8],
        caller: &[u8],
    ) -> Result<Execution, RuntimeError> {
        check_payload(arg)?;
        let (context, export, limit) = self.entry_point(context, method)?;
        // Everything but a query call runs replicated and pays; updates and timers commit.
        let replicated = context != Context::Query;
        let commits = matches!(context, Context::Update | Context::Timer);
        let freezing_threshold = self.freezing_threshold();
        let before = self.system.cycles;
        let mut induction = 0;
        let mut inspect_instructions = 0;
        if replicated && origin == Origin::Ingress {
            // The replica refuses an ingress message whose induction the canister cannot pay before
            // asking inspect_message, then charges the fee when it inducts the message.
            induction = cycles::ingress_induction_cost(method, arg);
            self.can_pay(induction, freezing_threshold)?;
            inspect_instructions = self.inspect_message(method, arg, caller, freezing_threshold)?;
            self.withdraw(induction, freezing_threshold)?;
        }
        let prepaid = if replicated {
            let cost = cycles::execution_cost(limit);
            self.withdraw(cost, freezing_threshold)?;
            cost
        } else {
            0
        };
        if context == Context::Timer {
            self.system.global_timer = 0;
        }
        // What the canister has while the message runs (fees charged).
        let balance = self.system.cycles;
        let request = Request {
            context,
            export: &export,
            method,
            arg,
            caller,
            limit,
            freezing_threshold,
            after: if commits {
                After::Commit
            } else {
                After::Rollback
            },
        };
        let overlay = Overlay::new(std::mem::take(&mut self.stable));
        let start = Start::Committed(&mut self.heap, self.warm.take());
        let executed =
            self.runtime
                .execute(&self.code, start, overlay, self.system.clone(), request);
        self.warm = executed.warm;
        let refund = cycles::execution_refund(limit - executed.instructions, prepaid);
        if replicated {
            self.system.time = self.system.time.saturating_add(TIME_STEP);
        }
        let ran = match executed.result {
            Ok(ran) => ran,
            Err(e) => {
                self.stable = executed.stable.rollback();
                self.system.cycles = if matches!(e, RuntimeError::Host(_)) {
                    before // not the canister's doing: charge nothing
                } else {
                    balance + refund
                };
                return Err(e);
            }
        };
        if commits {
            self.stable = executed.stable.commit();
            let time = self.system.time;
            self.system = ran.system;
            self.system.time = time;
            self.system.canister_version += 1;
        } else {
            self.stable = executed.stable.rollback();
            // The replica bumps the version after a replicated query that did not trap, and
            // keeps nothing else it did but its cycles.
            if replicated {
                self.system.canister_version += 1;
            }
        }
        self.system.cycles = balance + refund;
        let cycles = induction + prepaid - refund;
        match (ran.outcome, context) {
            (Some(outcome), _) => Ok(Execution {
                outcome,
                instructions: ran.instructions,
                cycles,
                inspect_instructions,
                debug_prints: ran.debug_prints,
            }),
            (None, Context::Timer) => Ok(Execution {
                outcome: Outcome::Done,
                instructions: ran.instructions,
                cycles,
                inspect_instructions,
                debug_prints: ran.debug_prints,
            }),
            (None, _) => Err(RuntimeError::NoReply {
                instructions: ran.instructions,
                debug_prints: ran.debug_prints,
            }),
        }
    }

    /// What a message runs: its context, export and instruction limit. An update call of a
    /// method the canister exports only as `canister_query` runs it as a replicated query.
    fn entry_point(
        &self,
        context: Context,
        method: &str,
    ) -> Result<(Context, String, u64), RuntimeError> {
        let exports = |name: &str| self.code.module.get_export(name).is_some();
        let missing = |kind| RuntimeError::MissingMethod {
            kind,
            method: method.to_string(),
        };
        match context {
            Context::Query => {
                let export = format!("canister_query {method}");
                exports(&export)
                    .then_some((context, export, QUERY_LIMIT))
                    .ok_or_else(|| missing("query"))
            }
            Context::Timer => {
                let export = "canister_global_timer".to_string();
                exports(&export)
                    .then_some((context, export, UPDATE_LIMIT))
                    .ok_or_else(|| missing("timer"))
            }
            _ => {
                let update = format!("canister_update {method}");
                let query = format!("canister_query {method}");
                if exports(&update) {
                    Ok((context, update, UPDATE_LIMIT))
                } else if exports(&query) {
                    Ok((Context::ReplicatedQuery, query, QUERY_LIMIT))
                } else {
                    Err(missing("update"))
                }
            }
        }
    }

    /// The cycle balance (what the next message starts from).
    pub fn cycle_balance(&self) -> u128 {
        self.system.cycles
    }

    /// Adds `amount` cycles to the balance (as `deposit_cycles` of the management canister does;
    /// saturating).
    pub fn deposit_cycles(&mut self, amount: u128) {
        self.system.cycles = self.system.cycles.saturating_add(amount);
    }

    /// The cycles the balance may not go below: 30 days of the storage fee of the canister's
    /// memory ([`cycles::freezing_threshold`]). Its memory here is the heap, stable memory and the
    /// module; the replica also counts globals, custom sections and the canister history (a few
    /// KiB, so a few hundred thousand cycles at most).
    pub fn freezing_threshold(&self) -> u128 {
        let memory = self.heap.memory.len() as u64
            + self.stable.size_pages() * cost::WASM_PAGE
            + self.code.wasm.len() as u64;
        cycles::freezing_threshold(memory)
    }

    /// Moves time forward by `nanos` (time never goes back).
    pub fn advance_time(&mut self, nanos: u64) {
        self.system.time = self.system.time.saturating_add(nanos);
    }

    /// Current time, nanoseconds since the Unix epoch (what the next message sees).
    pub fn time(&self) -> u64 {
        self.system.time
    }

    /// Controllers' principals (raw bytes).
    pub fn controllers(&self) -> &[Vec<u8>] {
        &self.system.controllers
    }

    /// The module as installed, gunzipped if it was compressed.
    pub fn module(&self) -> &[u8] {
        &self.code.wasm
    }

    /// The canister version (bumped by install, upgrade and every committed update).
    pub fn canister_version(&self) -> u64 {
        self.system.canister_version
    }

    /// Last value passed to `ic0.certified_data_set`.
    pub fn certified_data(&self) -> &[u8] {
        &self.system.certified_data
    }

    /// The timer deadline the canister set (0 = none).
    pub fn global_timer(&self) -> u64 {
        self.system.global_timer
    }

    /// Heap (linear memory) size in bytes.
    pub fn heap_size(&self) -> usize {
        self.heap.memory.len()
    }

    /// Stable memory size in wasm pages (64 KiB).
    pub fn stable_size_pages(&self) -> u64 {
        self.stable.size_pages()
    }

    /// Caps the canister's stable memory at `bytes` (`None`: only the replica's 500 GiB), as a
    /// subnet that runs out of memory, or a memory allocation, caps it on the replica: from the
    /// next message on, `ic0.stable64_grow` and `ic0.stable_grow` return -1 (and grow nothing)
    /// when the new size would pass the cap. A cap below the current size keeps what the
    /// canister has and refuses any growth. Kept across upgrades and saved with the canister.
    pub fn set_stable_memory_limit(&mut self, bytes: Option<u64>) {
        self.system.stable_memory_limit = bytes;
    }

    /// Replaces the canister's stable memory with `bytes`, its size rounded up to whole 64 KiB
    /// pages, as loading a canister snapshot whose stable memory was uploaded does on the replica
    /// (`upload_canister_snapshot_data`, `load_canister_snapshot`), but keeping the heap: what
    /// the code keeps on its heap about stable memory is stale until an upgrade (whose
    /// `post_upgrade` opens the new stable memory), so upgrade next. For tests that build a
    /// canister's stable memory natively, with the canister's own code, instead of message by
    /// message. Bumps the canister version. Refused, changing nothing, if the image is larger
    /// than [`Canister::set_stable_memory_limit`] allows or than 500 GiB.
    pub fn set_stable_memory(&mut self, bytes: &[u8]) -> Result<(), RuntimeError> {
        let max = cost::MAX_STABLE_PAGES * cost::WASM_PAGE;
        let limit = self.system.stable_memory_limit.map_or(max, |l| l.min(max));
        let size = (bytes.len() as u64).div_ceil(cost::WASM_PAGE) * cost::WASM_PAGE;
        if size > limit {
            return Err(RuntimeError::StableMemoryTooLarge { bytes: size, limit });
        }
        self.stable = StableMemory::from_bytes(bytes);
        self.system.canister_version += 1;
        Ok(())
    }

    /// The cap set by [`Canister::set_stable_memory_limit`].
    pub fn stable_memory_limit(&self) -> Option<u64> {
        self.system.stable_memory_limit
    }
}

/// The `ic0` (or other) imports of `wasm` this runtime does not provide, as `module.name`.
pub fn unsupported_imports(wasm: &[u8]) -> Result<Vec<String>, RuntimeError> {
    let runtime = Runtime::new()?;
    let module = Module::new(&runtime.inner.engine, wasm)
        .map_err(|e| RuntimeError::InvalidModule(format!("{e:#}")))?;
    Ok(runtime.unsupported(&module))
}
