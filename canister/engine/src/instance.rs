//! A live instance of a plugin and the state it had at its last commit: calls, commit, rollback,
//! and restoring a fresh instance from stable memory.
//!
//! The instance keeps a *shadow* copy of its memory as of the last commit. Which 1 KiB spans a
//! call wrote comes from wasmi's marks (`vendor/wasmi/PATCH.md`); a commit compares those with the
//! shadow and writes the bytes that differ, chunk by chunk; a rollback copies them back from it.

use std::rc::Rc;

use ic_stable_structures::Memory;
use plugin_host_api::{InvokeError, InvokeFailure, LogEntry};
use wasmi::{Global, Instance, Linker, Module, ResourceLimiter, Val};

use crate::Writes;
use crate::abi::wasi::WasiCall;
use crate::abi::{CallContext, HostState};
use crate::budget::{self, CallBudget, InstructionMeter};
use crate::limits::WASM_PAGE_BYTES;
use crate::store::{CHUNK_BYTES, PluginRecord, PluginStore, SavedGlobal};
use crate::validate;

/// A compiled module and what the engine needs to run, save and restore its instances.
pub struct CompiledModule {
    /// The module (its start function moved to an export, its mutable globals all exported).
    pub module: Module,
    /// Export names of all mutable globals, in index order.
    pub globals: Vec<String>,
    /// Whether the module has a start function (exported as `export_globals::START_EXPORT`).
    pub has_start: bool,
    /// Size of the stored module, for the heap estimate.
    pub wasm_bytes: u64,
    /// Whether the module imports WASI (its calls then set up the shim's state).
    pub wasi: bool,
    /// Whether the module is a script runtime (`validate::LIST_FUNCTIONS`).
    pub script_runtime: bool,
}

/// What a finished call produced.
pub struct CallResult {
    /// Its output, or why it failed.
    pub outcome: Result<Vec<u8>, InvokeError>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Log lines kept.
    pub logs: Vec<LogEntry>,
}

impl CallResult {
    /// The failure, if the call failed.
    pub fn into_failure(self) -> Result<(Vec<u8>, u64, Vec<LogEntry>), InvokeFailure> {
        match self.outcome {
            Ok(output) => Ok((output, self.fuel_used, self.logs)),
            Err(error) => Err(InvokeFailure {
                error,
                fuel_used: self.fuel_used,
                logs: self.logs,
            }),
        }
    }
}

/// The spans of [`MARK_BYTES`] a call wrote, in ascending order, known before the commit writes
/// them (to reserve stable memory).
pub struct PendingCommit {
    dirty: Vec<usize>,
}

/// Bytes of the spans wasmi marks as written.
const MARK_BYTES: usize = wasmi::dirty::CHUNK_BYTES;
/// Marked spans per stored chunk.
const MARKS_PER_CHUNK: usize = CHUNK_BYTES / MARK_BYTES;
const _: () = assert!(CHUNK_BYTES.is_multiple_of(MARK_BYTES));

impl PendingCommit {
    /// The written spans grouped by the chunk they are in: (chunk index, its spans' indices).
    fn by_chunk(&self) -> impl Iterator<Item = (usize, &[usize])> {
        self.dirty
            .chunk_by(|a, b| a / MARKS_PER_CHUNK == b / MARKS_PER_CHUNK)
            .map(|spans| (spans[0] / MARKS_PER_CHUNK, spans))
    }

    /// An upper bound of what the commit writes.
    pub fn writes(&self, instance: &LiveInstance) -> Writes {
        let host = instance.store.data();
        let vars: u64 = host
            .vars_journal
            .keys()
            .map(|key| (key.len() + host.vars.get(key).map_or(0, Vec::len)) as u64)
            .sum();
        Writes {
            chunks: self.by_chunk().count() as u64,
            vars,
            globals: instance.globals_bytes(),
            ..Writes::default()
        }
    }
}

/// A live instance of a plugin.
pub struct LiveInstance {
    store: wasmi::Store<HostState>,
    instance: Instance,
    memory: Option<wasmi::Memory>,
    globals: Vec<Global>,
    saved_globals: Vec<SavedGlobal>,
    shadow: Vec<u8>,
    wasi: bool,
    script_runtime: bool,
    /// When it was last used (the engine's clock), for eviction.
    pub last_used: u64,
}

impl LiveInstance {
    /// Instantiates `compiled`. Runs no guest code: the start function is an export.
    pub fn new(
        wasmi: &wasmi::Engine,
        linker: &Linker<HostState>,
        compiled: &CompiledModule,
        host: HostState,
    ) -> Result<Self, String> {
        let (mut live, _) = Self::instantiate(wasmi, linker, compiled, host)?;
        live.shadow = live.memory_data().to_vec();
        Ok(live)
    }

    /// Instantiates `compiled` and replaces its state with the plugin's stored state (after a
    /// canister upgrade or an eviction).
    pub fn restore(
        wasmi: &wasmi::Engine,
        linker: &Linker<HostState>,
        compiled: &CompiledModule,
        host: HostState,
        store: &PluginStore<impl Memory>,
        record: &PluginRecord,
    ) -> Result<Self, String> {
        let (mut live, initialized) = Self::instantiate(wasmi, linker, compiled, host)?;
        if let Some(memory) = live.memory {
            let current = memory.size(&live.store);
            let wanted = u64::from(record.memory_pages);
            if wanted > current {
                memory
                    .grow(&mut live.store, wanted - current)
                    .map_err(|e| e.to_string())?;
            }
            let data = memory.data_mut(&mut live.store);
            // A new instance's memory is zero but for the spans its data segments wrote (wasmi
            // marks them); the stored state has zeros wherever no chunk is stored.
            let len = data.len();
            for span in initialized {
                data[span_range(span, len)].fill(0);
            }
            for (index, chunk) in store.chunks(record.id) {
                let start = index as usize * CHUNK_BYTES;
                data.get_mut(start..start + chunk.len())
                    .ok_or("a stored chunk lies outside the plugin's memory")?
                    .copy_from_slice(&chunk);
            }
        }
        let globals = store.globals(record.id);
        live.write_globals(&globals)?;
        live.saved_globals = globals;
        live.take_dirty();
        live.shadow = live.memory_data().to_vec();
        Ok(live)
    }

    /// Instantiates `compiled`, with no shadow yet; returns it and the spans its data segments
    /// wrote (wasmi's marks).
    fn instantiate(
        wasmi: &wasmi::Engine,
        linker: &Linker<HostState>,
        compiled: &CompiledModule,
        host: HostState,
    ) -> Result<(Self, Vec<usize>), String> {
        let mut store = wasmi::Store::new(wasmi, host);
        store.limiter(|state| state as &mut dyn ResourceLimiter);
        // Instantiation runs no guest code, but wasmi charges fuel for what it initialises.
        store.set_fuel(u64::MAX).map_err(|e| e.to_string())?;
        let instance = linker
            .instantiate_and_start(&mut store, &compiled.module)
            .map_err(|e| match &store.data().limit_hit {
                Some(limit) => format!("{} limit exceeded", limit.limit),
                None => e.to_string(),
            })?;
        let memory = instance
            .exports(&store)
            .find_map(|export| export.into_memory());
        let globals = compiled
            .globals
            .iter()
            .map(|name| {
                instance
                    .get_global(&store, name)
                    .ok_or_else(|| format!("the rewrite did not export the global {name}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut live = Self {
            store,
            instance,
            memory,
            globals,
            saved_globals: Vec::new(),
            shadow: Vec::new(),
            wasi: compiled.wasi,
            script_runtime: compiled.script_runtime,
            last_used: 0,
        };
        live.saved_globals = live.read_globals();
        let initialized = live.take_dirty();
        Ok((live, initialized))
    }

    /// The host state (config, vars, the running call).
    pub fn host(&self) -> &HostState {
        self.store.data()
    }

    /// The host state, to change config.
    pub fn host_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Runs the module's start function, then `initializer`, once (at install and upgrade).
    /// Their effects become the plugin's initial state.
    pub fn initialize(
        &mut self,
        compiled: &CompiledModule,
        initializer: Option<&str>,
        context: CallContext,
        budget: CallBudget,
        meter: &Rc<dyn InstructionMeter>,
    ) -> Result<(), InvokeFailure> {
        let start = compiled.has_start.then_some(export_globals::START_EXPORT);
        for function in start.into_iter().chain(initializer) {
            self.run_once(function, context.clone(), budget, meter)?;
        }
        self.adopt_current_state();
        Ok(())
    }

    /// Runs `function` on no input as part of setting the instance up (start, initialiser, a
    /// script runtime's listing); its effects become the state rollbacks return to. Returns its
    /// output.
    pub fn run_once(
        &mut self,
        function: &str,
        context: CallContext,
        budget: CallBudget,
        meter: &Rc<dyn InstructionMeter>,
    ) -> Result<Vec<u8>, InvokeFailure> {
        let (output, _, _) = self
            .call(function, &[], context, budget, meter)
            .into_failure()?;
        self.adopt_current_state();
        Ok(output)
    }

    /// Runs plugin function `function`: the module's own export of that name if it has one of
    /// a plugin function's type, else (a script runtime) the script's function through
    /// `__plugin_call`.
    pub fn call_plugin_function(
        &mut self,
        function: &str,
        input: &[u8],
        context: CallContext,
        budget: CallBudget,
        meter: &Rc<dyn InstructionMeter>,
    ) -> CallResult {
        if !self.script_runtime || self.exports_plugin_function(function) {
            return self.call(function, input, context, budget, meter);
        }
        self.store.data_mut().script_function = Some(function.to_owned());
        let result = self.call(validate::DISPATCH, input, context, budget, meter);
        self.store.data_mut().script_function = None;
        result
    }

    /// Whether the module is a script runtime (`validate::LIST_FUNCTIONS`).
    pub fn is_script_runtime(&self) -> bool {
        self.script_runtime
    }

    /// Whether the module exports `name` as a function of a plugin function's type.
    pub fn exports_plugin_function(&self, name: &str) -> bool {
        self.instance
            .get_func(&self.store, name)
            .is_some_and(|func| {
                let ty = func.ty(&self.store);
                ty.params().is_empty() && matches!(ty.results(), [] | [wasmi::ValType::I32])
            })
    }

    /// Makes the instance's current memory, globals and vars the state rollbacks return to.
    fn adopt_current_state(&mut self) {
        self.take_dirty();
        self.shadow = self.memory_data().to_vec();
        self.saved_globals = self.read_globals();
        self.store.data_mut().vars_journal.clear();
    }

    /// Runs `function` on `input`. Nothing is committed or rolled back yet.
    pub fn call(
        &mut self,
        function: &str,
        input: &[u8],
        context: CallContext,
        budget: CallBudget,
        meter: &Rc<dyn InstructionMeter>,
    ) -> CallResult {
        let not_run = |error| CallResult {
            outcome: Err(error),
            fuel_used: 0,
            logs: Vec::new(),
        };
        let Some(func) = self.instance.get_func(&self.store, function) else {
            return not_run(InvokeError::Trap {
                message: format!("`{function}` is not a function of the module"),
            });
        };
        if let Err(trap) =
            self.store
                .data_mut()
                .begin_call(context, input, budget.instruction_limit)
        {
            return not_run(budget::host_trap_error(trap, 0, budget.fuel_limit));
        }
        if self.wasi {
            let host = self.store.data_mut();
            let seed = host.call.seed.bytes();
            host.call.wasi = Some(WasiCall::new(function, &host.config, &seed));
        }
        let run = budget::run(&mut self.store, func, budget, meter.as_ref());
        let fuel_used = run.fuel_used;
        let host = self.store.data_mut();
        // Plugins without WASI imports never touch the shim's state.
        let stdout = match self.wasi {
            true => host.call.wasi.take().and_then(|wasi| wasi.finish(host)),
            false => None,
        };
        let outcome = run
            .outcome(host, budget.fuel_limit)
            .and_then(|()| match stdout {
                // stdout is the output unless the plugin set one with `output_set`.
                Some(stdout) if host.call.output == (0, 0) => Ok(stdout),
                _ => host
                    .output()
                    .map_err(|trap| budget::host_trap_error(trap, fuel_used, budget.fuel_limit)),
            });
        let logs = std::mem::take(&mut host.call.logs);
        host.end_call();
        CallResult {
            outcome,
            fuel_used,
            logs,
        }
    }

    /// Size of its memory in wasm pages.
    pub fn memory_pages(&self) -> u32 {
        (self.memory_data().len() as u64 / WASM_PAGE_BYTES) as u32
    }

    /// Heap bytes it holds: live memory, shadow and host state.
    pub fn heap_bytes(&self) -> u64 {
        (self.memory_data().len() + self.shadow.capacity()) as u64 + self.host().heap_bytes()
    }

    /// The spans the last call wrote (taking wasmi's marks), to commit or roll back.
    pub fn pending(&mut self) -> PendingCommit {
        PendingCommit {
            dirty: self.take_dirty(),
        }
    }

    /// Persists what the call changed: the written chunks that differ from the shadow, changed
    /// globals, the vars it set to a new value.
    pub fn commit(
        &mut self,
        pending: PendingCommit,
        store: &mut PluginStore<impl Memory>,
        id: u64,
    ) {
        if let Some(memory) = self.memory {
            let live = memory.data(&self.store);
            // Pages the call grew are zero in the shadow as in wasm; what it wrote there is marked.
            self.shadow.resize(live.len(), 0);
            for (index, spans) in pending.by_chunk() {
                let chunk = chunk_range(index, live.len());
                let (now, before) = (&live[chunk.clone()], &mut self.shadow[chunk]);
                // Bytes outside the marked spans are as in the shadow: the call did not write them.
                let changed = spans
                    .iter()
                    .filter_map(|span| {
                        let at = span % MARKS_PER_CHUNK * MARK_BYTES;
                        let span = at..(at + MARK_BYTES).min(now.len());
                        let changed = changed_bytes(&now[span.clone()], &before[span])?;
                        Some(at + changed.start..at + changed.end)
                    })
                    .reduce(|a, b| a.start.min(b.start)..a.end.max(b.end));
                if let Some(changed) = changed {
                    store.put_chunk_change(id, index as u32, now, changed.clone());
                    before[changed.clone()].copy_from_slice(&now[changed]);
                }
            }
        }
        let globals = self.read_globals();
        if globals != self.saved_globals {
            store.put_globals(id, &globals);
            self.saved_globals = globals;
        }
        let host = self.store.data_mut();
        for (key, before) in std::mem::take(&mut host.vars_journal) {
            let now = host.vars.get(key.as_str()).map(Vec::as_slice);
            // A var set back to the value it had when the call began is stored as it is.
            if now != before.as_deref() {
                store.put_var(id, &key, now);
            }
        }
    }

    /// Restores the state of the last commit. Returns false if the instance must be dropped
    /// instead (its memory grew, and wasm memory cannot shrink).
    pub fn rollback(&mut self, pending: PendingCommit) -> bool {
        self.store.data_mut().rollback_vars();
        if let Some(memory) = self.memory {
            let live = memory.data_mut(&mut self.store);
            if live.len() != self.shadow.len() {
                return false;
            }
            for span in pending.dirty {
                let bytes = span_range(span, live.len());
                live[bytes.clone()].copy_from_slice(&self.shadow[bytes]);
            }
        }
        let saved = self.saved_globals.clone();
        self.write_globals(&saved).is_ok()
    }

    /// Writes the instance's whole current state (memory, globals, vars: after a migration, what
    /// it left) as the plugin's initial state, over a plugin id with no state stored, and makes it
    /// the state rollbacks return to.
    pub fn save_initial(&mut self, store: &mut PluginStore<impl Memory>, id: u64) {
        self.adopt_current_state();
        for (index, chunk) in self.memory_data().chunks(CHUNK_BYTES).enumerate() {
            store.put_chunk(id, index as u32, chunk);
        }
        store.put_globals(id, &self.saved_globals);
        for (key, value) in &self.store.data().vars {
            store.put_var(id, key, Some(value));
        }
    }

    /// An upper bound of what [`LiveInstance::save_initial`] writes.
    pub fn initial_writes(&self) -> Writes {
        Writes {
            chunks: self.memory_data().len().div_ceil(CHUNK_BYTES) as u64,
            vars: self.host().var_bytes,
            globals: self.globals_bytes(),
            ..Writes::default()
        }
    }

    /// Bytes of its saved globals.
    fn globals_bytes(&self) -> u64 {
        4 + 9 * self.globals.len() as u64
    }

    fn memory_data(&self) -> &[u8] {
        match self.memory {
            Some(memory) => memory.data(&self.store),
            None => &[],
        }
    }

    /// Takes wasmi's marks of the spans written since the last take.
    fn take_dirty(&self) -> Vec<usize> {
        let mut dirty = Vec::new();
        wasmi::dirty::drain(self.memory_data().len(), |index| dirty.push(index));
        dirty
    }

    fn read_globals(&self) -> Vec<SavedGlobal> {
        self.globals
            .iter()
            .map(|g| SavedGlobal::from_val(g.get(&self.store)))
            .collect()
    }

    fn write_globals(&mut self, values: &[SavedGlobal]) -> Result<(), String> {
        if values.len() != self.globals.len() {
            return Err("stored globals do not match the module".into());
        }
        for (global, value) in self.globals.iter().zip(values) {
            let value: Val = value
                .to_val()
                .ok_or("a stored global has an unknown type")?;
            global
                .set(&mut self.store, value)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The bytes of chunk `index` in a memory of `len` bytes.
fn chunk_range(index: usize, len: usize) -> std::ops::Range<usize> {
    index * CHUNK_BYTES..((index + 1) * CHUNK_BYTES).min(len)
}

/// The bytes of marked span `index` ([`MARK_BYTES`] each) in a memory of `len` bytes.
fn span_range(index: usize, len: usize) -> std::ops::Range<usize> {
    index * MARK_BYTES..((index + 1) * MARK_BYTES).min(len)
}

/// Where two memory chunks of equal length differ, to the [`SPAN_BYTES`]: from the first differing
/// span to the last (None if they are equal), so a commit writes and copies only that. Scans from
/// each end: on wasm32 `memcmp` goes byte by byte (about 26 IC instructions per byte, measured).
/// Compiled with wasm SIMD (which the IC accepts), comparing a whole chunk costs about 1.4
/// instructions per byte.
#[cfg_attr(target_family = "wasm", target_feature(enable = "simd128"))]
fn changed_bytes(a: &[u8], b: &[u8]) -> Option<std::ops::Range<usize>> {
    let (a_spans, a_rest) = a.as_chunks::<SPAN_BYTES>();
    let (b_spans, b_rest) = b.as_chunks::<SPAN_BYTES>();
    let differs = |i: &usize| span_differs(&a_spans[*i], &b_spans[*i]);
    let first = (0..a_spans.len()).find(differs);
    let start = first.map_or(a_spans.len() * SPAN_BYTES, |first| first * SPAN_BYTES);
    let end = if a_rest != b_rest {
        a.len()
    } else {
        let last = (first? + 1..a_spans.len()).rev().find(differs);
        (last.or(first)? + 1) * SPAN_BYTES
    };
    (start < end).then_some(start..end)
}

/// The granularity of [`changed_bytes`].
const SPAN_BYTES: usize = 64;

/// Whether two spans differ: one fold over their words, which the compiler vectorises.
#[cfg_attr(target_family = "wasm", target_feature(enable = "simd128"))]
fn span_differs(a: &[u8; SPAN_BYTES], b: &[u8; SPAN_BYTES]) -> bool {
    let (a_words, _) = a.as_chunks::<8>();
    let (b_words, _) = b.as_chunks::<8>();
    a_words.iter().zip(b_words).fold(0, |acc, (x, y)| {
        acc | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    }) != 0
}

#[cfg(test)]
mod tests {
    use super::changed_bytes;

    #[test]
    fn the_changed_bytes_run_from_the_first_to_the_last_differing_span() {
        let before = vec![7u8; 4096];
        assert_eq!(changed_bytes(&before, &before), None);
        let changed = |at: &[usize]| {
            let mut now = before.clone();
            for i in at {
                now[*i] ^= 1;
            }
            changed_bytes(&now, &before)
        };
        assert_eq!(changed(&[0]), Some(0..64));
        assert_eq!(changed(&[65]), Some(64..128));
        assert_eq!(changed(&[4095]), Some(4032..4096));
        assert_eq!(changed(&[5, 3000]), Some(0..3008));
        assert_eq!(changed(&[0, 4095]), Some(0..4096));
        // A length that is not a multiple of the span: the tail is compared as well.
        let (short, mut short_now) = (vec![1u8; 70], vec![1u8; 70]);
        short_now[69] = 2;
        assert_eq!(changed_bytes(&short_now, &short), Some(64..70));
        short_now[3] = 2;
        assert_eq!(changed_bytes(&short_now, &short), Some(0..70));
    }
}
