//! Target `differential`: a wasm-smith module without imports (NaNs canonicalised, every global
//! exported) runs in the plugin engine, through a real install and committing invokes (the
//! engine's wasmi configuration, fuel metering, the dirty-chunk marks and the commit path), and
//! natively in wasmtime. After the install and after every call:
//!
//! - the outcomes agree: returned the same value (0 is the engine's success, any other value its
//!   `PluginError { code }`), or trapped the same way, or ran into the memory cap; fuel running
//!   out on either side, or the call stack (whose depth differs by design), makes the call
//!   inconclusive (counted apart);
//! - the state agrees: what the engine stored (its stable memory, read through the store after a
//!   reopen: memory chunks and mutable globals) equals wasmtime's memory and globals after a
//!   call the engine committed; after one it rolled back, wasmtime is put back to the last
//!   committed state (the engine's rollback is then checked by the calls that follow).
//!
//! Between calls the engine is at times reopened over the same stable memory, so that the next
//! call runs on an instance restored from it.

use std::rc::Rc;
use std::sync::OnceLock;

use plugin_engine::{
    Engine, InstallError, InstallRequest, InvokeError, InvokePolicy, InvokeRequest, Limits,
    WASM_PAGE_BYTES,
};
use wasmparser::ValType;
use wasmtime::{Instance, Store, Val};

use crate::engine::{Capped, Meter, open, open_store};
use crate::wasm::{self, Generated};
use crate::{Case, Verdict};

/// How a call (or the install: instantiation and start function) ended, comparably.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Finished with this return value (0 for `() -> ()` and for a finished install).
    Returned(i32),
    /// Trapped.
    Trap(TrapKind),
    /// Refused to grow memory past the cap, then trapped.
    Limit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TrapKind {
    Unreachable,
    MemoryOutOfBounds,
    TableOutOfBounds,
    IndirectCallToNull,
    DivideByZero,
    IntegerOverflow,
    BadConversion,
    BadSignature,
    NullReference,
    Other(String),
}

/// Why a call is not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inconclusive {
    Fuel,
    Stack,
}

type Ended = Result<Outcome, Inconclusive>;

/// A trap by its message: wasmi and wasmtime describe traps with the same texts.
fn classify(message: &str) -> Ended {
    let kinds = [
        ("all fuel consumed", Err(Inconclusive::Fuel)),
        ("call stack exhausted", Err(Inconclusive::Stack)),
        ("unreachable", Ok(TrapKind::Unreachable)),
        (
            "out of bounds memory access",
            Ok(TrapKind::MemoryOutOfBounds),
        ),
        ("out of bounds table access", Ok(TrapKind::TableOutOfBounds)),
        ("uninitialized element", Ok(TrapKind::IndirectCallToNull)),
        ("integer divide by zero", Ok(TrapKind::DivideByZero)),
        ("integer overflow", Ok(TrapKind::IntegerOverflow)),
        ("invalid conversion to integer", Ok(TrapKind::BadConversion)),
        ("indirect call type mismatch", Ok(TrapKind::BadSignature)),
        ("null reference", Ok(TrapKind::NullReference)),
    ];
    for (text, kind) in kinds {
        if message.contains(text) {
            return kind.map(Outcome::Trap);
        }
    }
    Ok(Outcome::Trap(TrapKind::Other(message.to_owned())))
}

/// The engine's answer to an invoke (or a start function), comparably; `Err(String)` for an
/// answer that has no place in a run without imports.
fn engine_outcome(error: Option<&InvokeError>) -> Result<Ended, String> {
    Ok(match error {
        None => Ok(Outcome::Returned(0)),
        Some(InvokeError::PluginError { code, message }) if message.is_empty() => {
            Ok(Outcome::Returned(*code))
        }
        Some(InvokeError::Trap { message }) => classify(message),
        Some(InvokeError::LimitExceeded(limit)) if limit.limit == "memory pages" => {
            Ok(Outcome::Limit)
        }
        Some(InvokeError::OutOfFuel { .. } | InvokeError::InstructionLimit { .. }) => {
            Err(Inconclusive::Fuel)
        }
        Some(other) => return Err(format!("unexpected engine error: {other:?}")),
    })
}

fn wasmtime_engine() -> &'static wasmtime::Engine {
    static ENGINE: OnceLock<wasmtime::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config
            .consume_fuel(true)
            .wasm_simd(false)
            .wasm_relaxed_simd(false)
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .wasm_wide_arithmetic(false)
            .wasm_custom_page_sizes(false)
            .wasm_tail_call(true)
            .wasm_bulk_memory(true)
            .wasm_multi_value(true)
            .wasm_extended_const(true)
            .cranelift_nan_canonicalization(true);
        wasmtime::Engine::new(&config).expect("the wasmtime configuration is valid")
    })
}

/// wasmtime's resource limiter: the engine's memory cap, and whether it refused.
struct Limiter {
    max_bytes: usize,
    hit: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Beyond the module's own maximum wasmi refuses before asking the limiter: not the cap.
        if desired > self.max_bytes && maximum.is_none_or(|max| desired <= max) {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The module in wasmtime.
struct Native {
    module: wasmtime::Module,
    store: Store<Limiter>,
    instance: Instance,
    fuel: u64,
}

fn native_error(error: &wasmtime::Error, hit: bool) -> Ended {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => Err(Inconclusive::Fuel),
        _ if hit => Ok(Outcome::Limit),
        Some(wasmtime::Trap::StackOverflow) => Err(Inconclusive::Stack),
        Some(trap) => classify(&trap.to_string()),
        None => classify(&format!("{error:#}")),
    }
}

impl Native {
    /// Instantiates (running the start function) with `fuel`.
    fn instantiate(
        module: &wasmtime::Module,
        max_pages: u32,
        fuel: u64,
    ) -> Result<Self, (Ended, String)> {
        let mut store = Store::new(
            wasmtime_engine(),
            Limiter {
                max_bytes: max_pages as usize * WASM_PAGE_BYTES as usize,
                hit: false,
            },
        );
        store.limiter(|limiter| limiter);
        store.set_fuel(fuel).map_err(|e| {
            (
                Ok(Outcome::Trap(TrapKind::Other(e.to_string()))),
                e.to_string(),
            )
        })?;
        match Instance::new(&mut store, module, &[]) {
            Ok(instance) => Ok(Self {
                module: module.clone(),
                store,
                instance,
                fuel,
            }),
            Err(e) => Err((native_error(&e, store.data().hit), format!("{e:#}"))),
        }
    }

    fn call(&mut self, name: &str) -> Result<Ended, String> {
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| format!("wasmtime: no function {name}"))?;
        self.store.data_mut().hit = false;
        self.store.set_fuel(self.fuel).map_err(|e| e.to_string())?;
        let mut results = vec![Val::I32(0); func.ty(&self.store).results().len()];
        Ok(match func.call(&mut self.store, &[], &mut results) {
            Ok(()) => Ok(Outcome::Returned(match results.first() {
                Some(Val::I32(v)) => *v,
                _ => 0,
            })),
            Err(e) => native_error(&e, self.store.data().hit),
        })
    }

    fn memory(&mut self) -> Vec<u8> {
        match self.instance.get_memory(&mut self.store, "memory") {
            Some(memory) => memory.data(&self.store).to_vec(),
            None => Vec::new(),
        }
    }

    /// Every mutable global's (tag, bits) in index order, as the engine saves them; `None` if one
    /// is not exported (wasmtime cannot read it).
    fn globals(&mut self, module: &Generated) -> Option<Vec<(u8, u64)>> {
        let mut out = Vec::new();
        for global in module.globals.iter().filter(|g| g.mutable) {
            let name = global.export.as_ref()?;
            let value = self
                .instance
                .get_global(&mut self.store, name)?
                .get(&mut self.store);
            out.push(match value {
                Val::I32(v) => (0, u64::from(v as u32)),
                Val::I64(v) => (1, v as u64),
                Val::F32(bits) => (2, u64::from(bits)),
                Val::F64(bits) => (3, bits),
                _ => return None,
            });
        }
        Some(out)
    }

    /// Puts memory and globals back to `snapshot` (instantiating anew if memory grew since).
    fn restore(&mut self, snapshot: &Snapshot, max_pages: u32) -> Result<(), String> {
        let size = self.memory().len();
        if size != snapshot.memory.len() {
            *self = Self::instantiate(&self.module.clone(), max_pages, self.fuel)
                .map_err(|(_, e)| format!("wasmtime: instantiating again failed: {e}"))?;
            if let Some(memory) = self.instance.get_memory(&mut self.store, "memory") {
                let now = memory.data_size(&self.store) as u64;
                let wanted = snapshot.memory.len() as u64;
                if wanted > now {
                    memory
                        .grow(&mut self.store, (wanted - now) / WASM_PAGE_BYTES)
                        .map_err(|e| format!("wasmtime: growing memory back failed: {e}"))?;
                }
            }
        }
        if let Some(memory) = self.instance.get_memory(&mut self.store, "memory") {
            let data = memory.data_mut(&mut self.store);
            if data.len() != snapshot.memory.len() {
                return Err("wasmtime: memory size differs from the snapshot".into());
            }
            data.copy_from_slice(&snapshot.memory);
        }
        for (name, value) in &snapshot.globals {
            let global = self
                .instance
                .get_global(&mut self.store, name)
                .ok_or("wasmtime: a global went missing")?;
            global
                .set(&mut self.store, *value)
                .map_err(|e| format!("wasmtime: setting {name}: {e}"))?;
        }
        Ok(())
    }

    fn snapshot(&mut self, module: &Generated) -> Snapshot {
        let mut globals = Vec::new();
        for global in module.globals.iter().filter(|g| g.mutable) {
            if let Some(name) = &global.export
                && let Some(g) = self.instance.get_global(&mut self.store, name)
            {
                globals.push((name.clone(), g.get(&mut self.store)));
            }
        }
        Snapshot {
            memory: self.memory(),
            globals,
        }
    }
}

/// wasmtime's state as of the engine's last commit.
struct Snapshot {
    memory: Vec<u8>,
    globals: Vec<(String, Val)>,
}

const NAME: &str = "diff";

/// Compares the engine's stored state with wasmtime's live state.
fn compare_state(
    engine: &Engine<Capped>,
    memory: &Capped,
    native: &mut Native,
    module: &Generated,
    case: &mut Case,
) -> Verdict {
    let record = engine.get(NAME).ok_or("the plugin is gone")?;
    let store = open_store(memory);
    let mut image = vec![0u8; record.memory_pages as usize * WASM_PAGE_BYTES as usize];
    for (index, chunk) in store.chunks(record.id) {
        let start = index as usize * chunk.len();
        image
            .get_mut(start..start + chunk.len())
            .ok_or_else(|| format!("stored chunk {index} lies outside the plugin's memory"))?
            .copy_from_slice(&chunk);
    }
    let live = native.memory();
    if image != live {
        let first = image.iter().zip(&live).position(|(a, b)| a != b);
        return Err(format!(
            "memory differs: the engine stored {} bytes, wasmtime has {}; first difference at {first:?}",
            image.len(),
            live.len()
        ));
    }
    match native.globals(module) {
        Some(globals) => {
            let stored: Vec<(u8, u64)> = store
                .globals(record.id)
                .iter()
                .map(|g| (g.tag, g.bits))
                .collect();
            if stored != globals {
                return Err(format!(
                    "mutable globals differ: the engine stored {stored:?}, wasmtime has {globals:?}"
                ));
            }
        }
        None => case.note("globals not compared (one is not exported)"),
    }
    Ok(())
}

/// Runs one case.
pub fn run(case: &mut Case) -> Verdict {
    let module = wasm::pure_module(&mut case.rng)?;
    case.artifact("module.wasm", &module.wasm);
    let rng = &mut case.rng;
    let max_pages = rng.range(1, 4) as u32;
    let fuel = *rng.pick(&[10_000, 100_000, 500_000]);
    let native_fuel = 4 * fuel + 1_000_000;
    let calls = rng.range(1, 6);
    let choices: Vec<(u64, bool)> = (0..calls)
        .map(|_| (rng.next_u64(), rng.chance(1, 4)))
        .collect();
    let limits = Limits {
        max_memory_pages: max_pages,
        default_fuel: fuel,
        install_fuel: fuel,
        fuel_slice: *rng.pick(&[1_000, 5_000_000]),
        ..Limits::default()
    };
    if module.globals.iter().any(|g| !is_numeric(g.ty)) {
        case.note("module has reference globals");
    }
    wasm::validate(&module.wasm).map_err(|e| format!("wasm-smith made an invalid module: {e}"))?;

    let memory = Capped::new(None);
    let meter = Rc::new(Meter::default());
    let mut engine = open(&memory, limits.clone(), meter.clone());
    let installed = engine.install(
        InstallRequest {
            name: NAME,
            wasm: &module.wasm,
            config: Default::default(),
            owner: candid::Principal::anonymous(),
            invoke_policy: InvokePolicy::Public,
            fuel_limit: None,
        },
        1,
    );
    let engine_install: Ended = match &installed {
        Ok(_) => Ok(Outcome::Returned(0)),
        Err(InstallError::StartFailed(failure)) => engine_outcome(Some(&failure.error))?,
        Err(InstallError::InstantiationFailed { reason }) => classify(reason),
        Err(
            error @ (InstallError::UnsupportedFeature { .. }
            | InstallError::NoPluginFunctions
            | InstallError::LimitExceeded(_)),
        ) => {
            case.note(format!(
                "inconclusive: install refused ({})",
                format!("{error:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap_or_default()
            ));
            return Ok(());
        }
        Err(other) => return Err(format!("install failed: {other:?}")),
    };
    let compiled = wasmtime::Module::new(wasmtime_engine(), &module.wasm)
        .map_err(|e| format!("wasmtime refused a module the engine validated: {e:#}"))?;
    let native = Native::instantiate(&compiled, max_pages, native_fuel);
    let native_install: Ended = match &native {
        Ok(_) => Ok(Outcome::Returned(0)),
        Err((ended, _)) => ended.clone(),
    };
    match (&engine_install, &native_install) {
        (Err(_), _) | (_, Err(_)) => {
            case.note("inconclusive: install (fuel or stack)");
            return Ok(());
        }
        (Ok(a), Ok(b)) if a != b => {
            return Err(format!(
                "install: the engine {a:?} ({installed:?}), wasmtime {b:?} ({:?})",
                native.as_ref().err().map(|(_, e)| e)
            ));
        }
        (Ok(Outcome::Returned(_)), _) => case.note("install ok"),
        (Ok(outcome), _) => {
            case.note(format!("install failed alike: {outcome:?}"));
            return Ok(());
        }
    }
    let Ok(mut native) = native else {
        return Err("wasmtime failed to instantiate".into());
    };
    compare_state(&engine, &memory, &mut native, &module, case)
        .map_err(|e| format!("after install: {e}"))?;
    let mut snapshot = native.snapshot(&module);
    let functions: Vec<&String> = module.functions.iter().collect();
    for (i, (choice, reopen)) in choices.into_iter().enumerate() {
        if reopen {
            engine = open(&memory, limits.clone(), meter.clone());
        }
        let function = functions[(choice % functions.len() as u64) as usize];
        meter.message(0);
        let result = engine.invoke(InvokeRequest {
            plugin: NAME,
            function,
            input: b"",
            fuel: Some(fuel),
            caller: candid::Principal::anonymous(),
            now_ns: 2 + i as u64,
            commit: true,
            logs: false,
            instruction_limit: None,
        });
        let ours = engine_outcome(result.as_ref().err().map(|f| &f.error))?;
        let theirs = native.call(function)?;
        let committed = ours == Ok(Outcome::Returned(0));
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) if a != b => {
                return Err(format!(
                    "call {i} ({function}): the engine {a:?} ({:?}), wasmtime {b:?}",
                    result.err().map(|f| f.error)
                ));
            }
            (Ok(a), Ok(_)) => case.note(format!("call: {}", short(a))),
            // Both ran out of call stack (at depths that differ by design): a trap alike.
            (Err(Inconclusive::Stack), Err(Inconclusive::Stack)) => {
                case.note("call: trap call stack exhausted")
            }
            (Err(why), _) => case.note(format!("inconclusive call: engine {why:?}")),
            (Ok(_), Err(why)) => {
                case.note(format!("inconclusive call: wasmtime {why:?}"));
                if committed {
                    // The engine kept what wasmtime did not finish: nothing left to compare.
                    return Ok(());
                }
            }
        }
        if committed {
            compare_state(&engine, &memory, &mut native, &module, case)
                .map_err(|e| format!("after call {i} ({function}): {e}"))?;
            snapshot = native.snapshot(&module);
        } else {
            native.restore(&snapshot, max_pages)?;
        }
    }
    Ok(())
}

fn short(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Returned(0) => "returned 0".into(),
        Outcome::Returned(_) => "returned non-zero".into(),
        Outcome::Trap(TrapKind::Other(message)) => format!("trap {message}"),
        Outcome::Trap(kind) => format!("trap {kind:?}"),
        Outcome::Limit => "memory cap".into(),
    }
}

fn is_numeric(ty: ValType) -> bool {
    matches!(
        ty,
        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
    )
}
