//! Target `engine`: wasm-smith plugins that import the plugin ABI, installed, invoked (committing
//! and dry runs), upgraded, configured, uninstalled and reopened in random order, with random
//! inputs, fuel, instruction limits and small caps, over a stable memory that may refuse to grow.
//!
//! What is observed, and how:
//! - the plugin's live state (memory and globals): the *reader* added to every module
//!   ([`crate::wasm::READER`]) returns a hash of it, asked for in a dry run before and after
//!   each operation;
//! - its stored state: a [`PluginStore`] opened over the same stable memory (read only) gives
//!   every plugin's record, chunks, globals and vars ([`Dump`]);
//! - what a commit kept: a second engine opened over the same stable memory (cold: it restores
//!   from stable memory) must read the same hash as the live one.
//!
//! Invariants: no panic; a call that fails (or a dry run) leaves live and stored state as before,
//! and the next call works (the reader answers); a refused install, upgrade, uninstall or
//! setting leaves the store as before (no record, code, chunk, global or var left behind); a
//! successful operation changes only its own plugin; nothing is stored for ids without a record;
//! reopening the engine changes nothing a plugin can observe.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::Memory;
use ic_stable_structures::memory_manager::{MemoryId, VirtualMemory};
use plugin_engine::store::{PluginStore, SavedGlobal};
use plugin_engine::{
    Engine, InstallError, InstallRequest, InstructionMeter, InvokeError, InvokePolicy,
    InvokeRequest, Limits, PluginRecord, StableMemories, StableSpace, UpgradePluginRequest,
    WASM_PAGE_BYTES,
};

use crate::rng::Rng;
use crate::wasm::{self, Generated, READER};
use crate::{Case, Verdict};

/// A stable memory that refuses to grow past `cap` pages (none: unbounded). Clones share it.
/// Sparse: only 4 KiB blocks ever written take room (the memory manager grows each virtual
/// memory by 8 MiB at once; zeroing those dominated a case).
#[derive(Clone, Default)]
pub struct Capped {
    pages: Rc<Cell<u64>>,
    blocks: Rc<RefCell<HashMap<u64, Box<[u8; BLOCK]>>>>,
    cap: Rc<Cell<Option<u64>>>,
}

/// Bytes per block of [`Capped`].
const BLOCK: usize = 4096;

impl Capped {
    /// An empty memory with this cap.
    pub fn new(cap: Option<u64>) -> Self {
        let memory = Self::default();
        memory.cap.set(cap);
        memory
    }

    /// The blocks `len` bytes from `offset` touch, each as (block index, start in the block,
    /// start in the caller's buffer, length).
    fn spans(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
        let mut done = 0;
        std::iter::from_fn(move || {
            (done < len).then(|| {
                let at = offset + done as u64;
                let start = (at % BLOCK as u64) as usize;
                let n = (BLOCK - start).min(len - done);
                let span = (at / BLOCK as u64, start, done, n);
                done += n;
                span
            })
        })
    }

    fn check_bounds(&self, offset: u64, len: usize) {
        let end = offset.checked_add(len as u64);
        assert!(
            end.is_some_and(|end| end <= self.size() * WASM_PAGE_BYTES),
            "access of {len} bytes at {offset} out of bounds"
        );
    }
}

impl Memory for Capped {
    fn size(&self) -> u64 {
        self.pages.get()
    }
    fn grow(&self, pages: u64) -> i64 {
        let size = self.size();
        if self.cap.get().is_some_and(|cap| size + pages > cap) {
            return -1;
        }
        self.pages.set(size + pages);
        size as i64
    }
    fn read(&self, offset: u64, dst: &mut [u8]) {
        self.check_bounds(offset, dst.len());
        let blocks = self.blocks.borrow();
        for (block, start, at, n) in Self::spans(offset, dst.len()) {
            let dst = &mut dst[at..at + n];
            match blocks.get(&block) {
                Some(bytes) => dst.copy_from_slice(&bytes[start..start + n]),
                None => dst.fill(0),
            }
        }
    }
    fn write(&self, offset: u64, src: &[u8]) {
        self.check_bounds(offset, src.len());
        let mut blocks = self.blocks.borrow_mut();
        for (block, start, at, n) in Self::spans(offset, src.len()) {
            let bytes = blocks.entry(block).or_insert_with(|| Box::new([0; BLOCK]));
            bytes[start..start + n].copy_from_slice(&src[at..at + n]);
        }
    }
}

/// An instruction meter the harness sets per message: each reading returns the count, then adds
/// `step`. It also counts its readings: past `max_readings` it answers `u64::MAX` (the message's
/// instruction limit), so that an engine that keeps retrying a call ends, and the harness can
/// tell (see [`Meter::readings`]).
#[derive(Default)]
pub struct Meter {
    now: Cell<u64>,
    step: Cell<u64>,
    readings: Cell<u64>,
    max_readings: Cell<u64>,
}

impl Meter {
    /// A new message that counts `step` instructions per reading (no bound on readings).
    pub fn message(&self, step: u64) {
        self.bounded_message(step, u64::MAX);
    }

    /// A new message that counts `step` instructions per reading and reads at most
    /// `max_readings` times before it says the instruction limit is reached.
    pub fn bounded_message(&self, step: u64, max_readings: u64) {
        self.now.set(0);
        self.step.set(step);
        self.readings.set(0);
        self.max_readings.set(max_readings);
    }

    /// Readings since the message began.
    pub fn readings(&self) -> u64 {
        self.readings.get()
    }
}

impl InstructionMeter for Meter {
    fn instructions(&self) -> u64 {
        let readings = self.readings.get() + 1;
        self.readings.set(readings);
        if readings > self.max_readings.get() {
            return u64::MAX;
        }
        let now = self.now.get();
        self.now.set(now.saturating_add(self.step.get()));
        now
    }
}

/// Readings of the instruction counter one call may need: one per fuel slice, and a margin for
/// host functions that read it before large work.
fn max_readings(fuel: u64, slice: u64) -> u64 {
    fuel / slice.max(1) + 1_000
}

fn ids() -> StableMemories<MemoryId> {
    StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)))
}

/// Opens an engine over `memory` (as the canister's `post_upgrade` does).
pub fn open(memory: &Capped, limits: Limits, meter: Rc<Meter>) -> Engine<Capped> {
    let space = Rc::new(StableSpace::init(memory.clone()));
    Engine::init(space, ids(), limits, meter)
}

/// Opens the engine's store over `memory`, to read it.
pub fn open_store(memory: &Capped) -> PluginStore<VirtualMemory<Capped>> {
    let space = StableSpace::init(memory.clone());
    let memories = ids().into_array().map(|id| space.get(id));
    PluginStore::init(StableMemories::from_array(memories))
}

/// One plugin's stored state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// Non-zero memory chunks.
    pub chunks: Vec<(u32, Vec<u8>)>,
    /// Mutable globals.
    pub globals: Vec<SavedGlobal>,
    /// Vars.
    pub vars: BTreeMap<String, Vec<u8>>,
}

/// Everything stored, as the store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// Records by name.
    pub records: BTreeMap<String, PluginRecord>,
    /// Stored state by plugin id (ids up to the highest seen, empty states left out).
    pub states: BTreeMap<u64, State>,
    /// Distinct modules stored.
    pub modules: u64,
    /// Chunk slots in use.
    pub stored_chunks: u64,
}

/// Reads everything stored for ids below `ids`, and checks the store's own consistency: no state
/// without a record, every record's code present, no code without a record, chunk slots counted
/// right.
pub fn dump(memory: &Capped, ids: u64) -> Result<Dump, String> {
    let store = open_store(memory);
    let records: BTreeMap<String, PluginRecord> =
        store.records(..).map(|r| (r.name.clone(), r)).collect();
    let mut states = BTreeMap::new();
    let mut chunks = 0;
    for id in 0..ids {
        let state = State {
            chunks: store.chunks(id).collect(),
            globals: store.globals(id),
            vars: store.vars(id),
        };
        chunks += state.chunks.len() as u64;
        if state != State::default() {
            if !records.values().any(|r| r.id == id) {
                return Err(format!(
                    "state stored for id {id}, which has no record: {state:?}"
                ));
            }
            states.insert(id, state);
        }
    }
    let mut codes = std::collections::BTreeSet::new();
    for record in records.values() {
        if !store.has_code(&record.code_sha256) || store.code(&record.code_sha256).is_none() {
            return Err(format!("the code of {} is not stored", record.name));
        }
        codes.insert(record.code_sha256);
    }
    if store.code_count() != codes.len() as u64 {
        return Err(format!(
            "{} modules stored for {} distinct modules of the records",
            store.code_count(),
            codes.len()
        ));
    }
    if store.stored_chunks() != chunks {
        return Err(format!(
            "{} chunk slots in use for {chunks} chunks of the plugins",
            store.stored_chunks()
        ));
    }
    Ok(Dump {
        records,
        states,
        modules: store.code_count(),
        stored_chunks: chunks,
    })
}

/// The dump without plugin `name` (its record and state): what an operation on it must not touch.
fn others(dump: &Dump, name: &str) -> Dump {
    let mut rest = dump.clone();
    if let Some(record) = rest.records.remove(name) {
        rest.states.remove(&record.id);
    }
    rest.modules = 0;
    rest.stored_chunks = 0;
    rest
}

/// Small caps, so that calls run into them.
fn limits(rng: &mut Rng) -> Limits {
    let defaults = Limits::default();
    let max_memory_pages = *rng.pick(&[1, 2, 3, 4]);
    Limits {
        max_module_bytes: if rng.chance(1, 10) {
            rng.range(100, 4000)
        } else {
            defaults.max_module_bytes
        },
        max_plugin_functions: if rng.chance(1, 8) {
            rng.range(1, 8)
        } else {
            12
        } as usize,
        max_export_name_bytes: if rng.chance(1, 8) {
            rng.range(4, 16)
        } else {
            64
        } as usize,
        max_memory_pages,
        max_table_elements: *rng.pick(&[100, 1000, 1000]),
        max_output_bytes: *rng.pick(&[0, 1, 8, 100, 4096]),
        max_error_bytes: *rng.pick(&[0, 4, 100]),
        max_arena_bytes: *rng.pick(&[16, 256, 4096, 65_536]),
        max_arena_blocks: *rng.pick(&[1, 2, 8, 100]),
        max_var_bytes: *rng.pick(&[0, 16, 256, 4096]),
        max_log_bytes: *rng.pick(&[0, 16, 256]),
        default_fuel: *rng.pick(&[100, 10_000, 1_000_000, 1_000_000]),
        max_fuel: 5_000_000,
        fuel_slice: *rng.pick(&[50, 1_000, 100_000, 5_000_000]),
        update_instruction_limit: *rng.pick(&[1_000, 1_000_000, 30_000_000_000]),
        query_instruction_limit: *rng.pick(&[1_000, 1_000_000, 4_000_000_000]),
        install_fuel: *rng.pick(&[100, 10_000, 1_000_000]),
        max_config_entries: if rng.chance(1, 8) { 0 } else { 3 },
        max_config_bytes: *rng.pick(&[8, 100, 1000]),
        max_allow_list: if rng.chance(1, 8) { 0 } else { 3 },
        max_plugins: rng.range(1, 5),
        max_plugins_per_owner: rng.range(1, 4),
        max_code_bytes: if rng.chance(1, 4) {
            rng.range(100, 20_000)
        } else {
            defaults.max_code_bytes
        },
        // Small budgets evict modules and instances between calls (rebuilt from stable memory).
        heap_budget_bytes: if rng.chance(1, 3) {
            plugin_engine::store::STORE_CACHE_BYTES
                + 2 * u64::from(max_memory_pages) * WASM_PAGE_BYTES
                + 65_536
                + rng.range(0, 400_000)
        } else {
            defaults.heap_budget_bytes
        },
    }
}

const NAMES: [&str; 4] = ["p0", "p1", "p2", "p3"];

fn principal(rng: &mut Rng) -> Principal {
    *rng.pick(&[
        Principal::from_slice(&[1]),
        Principal::from_slice(&[2]),
        Principal::anonymous(),
    ])
}

fn random_name(rng: &mut Rng) -> String {
    match rng.below(30) {
        0 => String::new(),
        1 => "Bad Name".into(),
        2 => "x".repeat(65),
        _ => (*rng.pick(&NAMES)).to_owned(),
    }
}

fn random_config(rng: &mut Rng) -> BTreeMap<String, String> {
    let entries = if rng.chance(3, 4) { 0 } else { rng.range(1, 3) };
    (0..entries)
        .map(|i| (format!("k{i}"), "v".repeat(rng.below(40) as usize)))
        .collect()
}

fn random_policy(rng: &mut Rng) -> InvokePolicy {
    match rng.below(3) {
        0 => InvokePolicy::Public,
        1 => InvokePolicy::OwnerOnly,
        _ => InvokePolicy::AllowList((0..rng.below(3)).map(|_| principal(rng)).collect()),
    }
}

/// The fixture of one case.
struct Harness {
    memory: Capped,
    limits: Limits,
    meter: Rc<Meter>,
    engine: Engine<Capped>,
    /// Ids are below this (one more than the highest id seen).
    ids: u64,
    now: u64,
}

impl Harness {
    /// The plugin's live state hash (a dry run of the reader with all the fuel there is).
    fn read(&mut self, name: &str) -> Result<i32, String> {
        read(&mut self.engine, &self.meter, &self.limits, name, self.now)
    }

    /// The hash a fresh engine over the same stable memory reads (rebuilt from stable memory).
    fn read_cold(&mut self, name: &str) -> Result<i32, String> {
        let mut cold = open(&self.memory, self.limits.clone(), self.meter.clone());
        read(&mut cold, &self.meter, &self.limits, name, self.now)
    }

    fn dump(&self) -> Result<Dump, String> {
        dump(&self.memory, self.ids)
    }

    fn installed(&self) -> Vec<String> {
        let (records, _) = self.engine.list(None, 100, u64::MAX);
        records.into_iter().map(|r| r.name).collect()
    }

    /// Checks the engine's counts against what is stored.
    fn check_counts(&self, dump: &Dump) -> Verdict {
        if self.engine.plugin_count() != dump.records.len() as u64 {
            return Err(format!(
                "plugin_count() {} but {} records",
                self.engine.plugin_count(),
                dump.records.len()
            ));
        }
        if self.engine.stored_modules() != dump.modules {
            return Err(format!(
                "stored_modules() {} but {} modules",
                self.engine.stored_modules(),
                dump.modules
            ));
        }
        let mut code = BTreeMap::new();
        let mut owners: BTreeMap<Principal, u64> = BTreeMap::new();
        for record in dump.records.values() {
            code.insert(record.code_sha256, record.code_size);
            *owners.entry(record.owner).or_default() += 1;
        }
        let code_bytes: u64 = code.values().sum();
        if self.engine.code_bytes() != code_bytes {
            return Err(format!(
                "code_bytes() {} but the records' distinct code is {code_bytes} bytes",
                self.engine.code_bytes()
            ));
        }
        for owner in [
            Principal::from_slice(&[1]),
            Principal::from_slice(&[2]),
            Principal::anonymous(),
        ] {
            let expected = owners.get(&owner).copied().unwrap_or(0);
            if self.engine.plugins_of(&owner) != expected {
                return Err(format!(
                    "plugins_of({owner}) {} but {expected} records",
                    self.engine.plugins_of(&owner)
                ));
            }
        }
        Ok(())
    }
}

/// The reader's answer: the hash (its return code), or why it did not answer.
fn read(
    engine: &mut Engine<Capped>,
    meter: &Meter,
    limits: &Limits,
    name: &str,
    now: u64,
) -> Result<i32, String> {
    meter.bounded_message(0, max_readings(limits.max_fuel, limits.fuel_slice));
    let result = engine.invoke(InvokeRequest {
        plugin: name,
        function: READER,
        input: b"",
        fuel: Some(limits.max_fuel),
        caller: Principal::from_slice(&[1]),
        now_ns: now,
        commit: false,
        logs: false,
        instruction_limit: None,
    });
    match result {
        Ok(_) => Ok(0),
        Err(failure) => match failure.error {
            InvokeError::PluginError { code, .. } => Ok(code),
            other => Err(format!("the reader of {name} failed: {other:?}")),
        },
    }
}

/// Adds a line to the case's log (printed as it happens with `PLUGIN_HOST_FUZZ_TRACE` set).
fn push(log: &mut Vec<String>, line: String) {
    if std::env::var_os("PLUGIN_HOST_FUZZ_TRACE").is_some() {
        eprintln!("{line}");
    }
    log.push(line);
}

/// Runs one case.
pub fn run(case: &mut Case) -> Verdict {
    let rng = &mut case.rng;
    let limits = limits(rng);
    // Sometimes stable memory may grow by only a few buckets more than opening the engine took:
    // it runs out mid-case.
    let cap = rng.chance(1, 5).then(|| rng.range(0, 4 * 128));
    let mut modules: Vec<Generated> = Vec::new();
    for _ in 0..rng.range(1, 3) {
        modules.push(wasm::plugin_module(rng)?);
    }
    let steps = rng.range(4, 20);
    for (i, module) in modules.iter().enumerate() {
        case.artifact(format!("module{i}.wasm"), &module.wasm);
    }
    case.note(format!("limits: {} memory pages", limits.max_memory_pages));
    let memory = Capped::new(None);
    let meter = Rc::new(Meter::default());
    let engine = open(&memory, limits.clone(), meter.clone());
    if let Some(extra) = cap {
        case.note("stable memory capped");
        memory.cap.set(Some(memory.size() + extra));
    }
    let mut h = Harness {
        memory,
        limits,
        meter,
        engine,
        ids: 0,
        now: 1,
    };
    let mut log = Vec::new();
    for step in 0..steps {
        h.now += 1_000;
        let rng = &mut case.rng;
        let result = step_once(&mut h, rng, &modules, &mut log, case_notes(&mut case.notes));
        if let Err(message) = result {
            return Err(format!(
                "step {step}: {message}\n\nsteps:\n{}",
                log.join("\n")
            ));
        }
        let dump = h.dump()?;
        h.check_counts(&dump)
            .map_err(|e| format!("after step {step}: {e}\n\nsteps:\n{}", log.join("\n")))?;
    }
    Ok(())
}

fn case_notes(notes: &mut BTreeMap<String, u64>) -> impl FnMut(String) + '_ {
    move |what| *notes.entry(what).or_default() += 1
}

/// One random operation and its checks.
fn step_once(
    h: &mut Harness,
    rng: &mut Rng,
    modules: &[Generated],
    log: &mut Vec<String>,
    mut note: impl FnMut(String),
) -> Verdict {
    let installed = h.installed();
    let choice = if installed.is_empty() {
        0
    } else {
        rng.below(10)
    };
    match choice {
        0 | 1 => install(h, rng, modules, log, &mut note),
        2..=5 => invoke(h, rng, &installed, log, &mut note),
        6 => upgrade(h, rng, modules, &installed, log, &mut note),
        7 => manage(h, rng, &installed, log, &mut note),
        _ => reopen(h, rng, &installed, log, &mut note),
    }
}

fn install(
    h: &mut Harness,
    rng: &mut Rng,
    modules: &[Generated],
    log: &mut Vec<String>,
    note: &mut impl FnMut(String),
) -> Verdict {
    let module_index = rng.index(modules.len());
    let module = &modules[module_index];
    let name = random_name(rng);
    let owner = principal(rng);
    let config = random_config(rng);
    let policy = random_policy(rng);
    let fuel_limit = rng.chance(1, 2).then(|| rng.edgy_u64());
    push(
        log,
        format!(
            "install {name:?} module{module_index} owner {owner} config {config:?} {policy:?} fuel {fuel_limit:?}"
        ),
    );
    let before = h.dump()?;
    let (plugins, modules_before) = (h.engine.plugin_count(), h.engine.stored_modules());
    let bound = max_readings(2 * h.limits.install_fuel, h.limits.fuel_slice);
    h.meter.bounded_message(*rng.pick(&[0, 1_000]), bound);
    let result = h.engine.install(
        InstallRequest {
            name: &name,
            wasm: &module.wasm,
            config,
            owner,
            invoke_policy: policy,
            fuel_limit,
        },
        h.now,
    );
    if h.meter.readings() > bound {
        return Err(format!(
            "install read the instruction counter more than {bound} times (install fuel {}, slice \
             {}): it keeps retrying; result {:?}",
            h.limits.install_fuel,
            h.limits.fuel_slice,
            result.as_ref().map(|r| r.id)
        ));
    }
    match result {
        Err(error) => {
            note(format!("install refused: {}", install_error_kind(&error)));
            push(log, format!("  -> {error:?}"));
            if h.engine.plugin_count() != plugins || h.engine.stored_modules() != modules_before {
                return Err(format!(
                    "a refused install changed the counts: plugins {plugins} -> {}, modules {modules_before} -> {}",
                    h.engine.plugin_count(),
                    h.engine.stored_modules()
                ));
            }
            let after = h.dump()?;
            if after != before {
                return Err(format!(
                    "a refused install ({error:?}) changed the store:\nbefore {before:?}\nafter {after:?}"
                ));
            }
            // The other plugins still answer.
            for name in h.installed() {
                h.read(&name)?;
            }
            Ok(())
        }
        Ok(record) => {
            note("install ok".into());
            push(
                log,
                format!(
                    "  -> ok, id {}, functions {:?}",
                    record.id, record.functions
                ),
            );
            h.ids = h.ids.max(record.id + 1);
            let after = h.dump()?;
            if others(&after, &name) != others(&before, &name) {
                return Err("an install changed another plugin's state".into());
            }
            let warm = h.read(&name)?;
            let cold = h.read_cold(&name)?;
            if warm != cold {
                return Err(format!(
                    "after install, the live instance reads {warm:#x}, one restored from stable memory {cold:#x}"
                ));
            }
            Ok(())
        }
    }
}

fn install_error_kind(error: &InstallError) -> String {
    let debug = format!("{error:?}");
    let kind = debug.split([' ', '(', '{']).next().unwrap_or_default();
    match error {
        InstallError::LimitExceeded(limit) => format!("LimitExceeded {}", limit.limit),
        InstallError::UnsupportedFeature { feature, .. } => format!("UnsupportedFeature {feature}"),
        InstallError::StartFailed(failure) => format!(
            "StartFailed {}",
            format!("{:?}", failure.error)
                .split([' ', '(', '{'])
                .next()
                .unwrap_or_default()
        ),
        _ => kind.to_owned(),
    }
}

fn invoke_error_kind(error: &InvokeError) -> String {
    match error {
        InvokeError::LimitExceeded(limit) => format!("LimitExceeded {}", limit.limit),
        InvokeError::Trap { message } => {
            format!("Trap {}", message.split(':').next().unwrap_or_default())
        }
        other => format!("{other:?}")
            .split([' ', '(', '{'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn invoke(
    h: &mut Harness,
    rng: &mut Rng,
    installed: &[String],
    log: &mut Vec<String>,
    note: &mut impl FnMut(String),
) -> Verdict {
    let name = if rng.chance(1, 20) {
        "nope".to_owned()
    } else {
        rng.pick(installed).clone()
    };
    let record = h.engine.get(&name);
    let function = match &record {
        Some(record) if !rng.chance(1, 20) => {
            // Half the calls go to a wrapper that returns 0 (and so commits when it finishes).
            let wrappers: Vec<&String> = record
                .functions
                .iter()
                .filter(|f| f.starts_with("ok_"))
                .collect();
            if !wrappers.is_empty() && rng.chance(1, 2) {
                (*rng.pick(&wrappers)).clone()
            } else {
                rng.pick(&record.functions).clone()
            }
        }
        _ => "missing".to_owned(),
    };
    let input = match rng.below(4) {
        0 => Vec::new(),
        1 => rng.bytes_in(1, 16),
        2 => rng.bytes_in(1, 300),
        _ => vec![0; rng.range(1, 64) as usize],
    };
    let fuel = match rng.below(4) {
        0 => None,
        1 => Some(rng.range(0, 200)),
        2 => Some(rng.range(0, 100_000)),
        _ => Some(rng.edgy_u64()),
    };
    let commit = rng.chance(3, 4);
    let logs = rng.chance(1, 2);
    let step = *rng.pick(&[0, 1, 1_000, 1_000_000]);
    let instruction_limit = rng.chance(1, 4).then(|| rng.range(0, 10_000));
    push(
        log,
        format!(
            "invoke {name}.{function} input {} bytes fuel {fuel:?} commit {commit} logs {logs} meter step {step} limit {instruction_limit:?}",
            input.len()
        ),
    );
    let hash_before = match &record {
        Some(_) => Some(h.read(&name)?),
        None => None,
    };
    let before = h.dump()?;
    let fuel_limit = fuel
        .unwrap_or(record.as_ref().map_or(0, |r| r.fuel_limit))
        .min(h.limits.max_fuel);
    let bound = max_readings(fuel_limit, h.limits.fuel_slice);
    h.meter.bounded_message(step, bound);
    let result = h.engine.invoke(InvokeRequest {
        plugin: &name,
        function: &function,
        input: &input,
        fuel,
        caller: Principal::from_slice(&[2]),
        now_ns: h.now,
        commit,
        logs,
        instruction_limit,
    });
    if h.meter.readings() > bound {
        return Err(format!(
            "the call read the instruction counter more than {bound} times (fuel {fuel_limit}, \
             slice {}): it keeps retrying instead of ending; result {:?}",
            h.limits.fuel_slice,
            result.as_ref().map(|o| o.fuel_used).map_err(|f| &f.error)
        ));
    }
    let after = h.dump()?;
    let Some(record) = record else {
        if !matches!(&result, Err(f) if matches!(f.error, InvokeError::UnknownPlugin { .. })) {
            return Err(format!("invoking an unknown plugin: {result:?}"));
        }
        return if after == before {
            Ok(())
        } else {
            Err("invoking an unknown plugin changed the store".into())
        };
    };
    let committed = match &result {
        Ok(outcome) => {
            note(format!("invoke ok (commit {commit})"));
            push(
                log,
                format!(
                    "  -> ok, {} bytes, fuel {}",
                    outcome.output.len(),
                    outcome.fuel_used
                ),
            );
            commit
        }
        Err(failure) => {
            note(format!(
                "invoke failed: {}",
                invoke_error_kind(&failure.error)
            ));
            push(log, format!("  -> {:?}", failure.error));
            if let InvokeError::InstantiationFailed { reason } = &failure.error {
                return Err(format!(
                    "an installed plugin could not be instantiated: {reason}"
                ));
            }
            false
        }
    };
    let hash_after = h
        .read(&name)
        .map_err(|e| format!("the next call failed: {e}"))?;
    if !committed {
        if hash_before != Some(hash_after) {
            return Err(format!(
                "a call that did not commit ({:?}) changed the live state: reader {hash_before:x?} -> {hash_after:#x}",
                result.as_ref().err().map(|f| &f.error)
            ));
        }
        if after != before {
            return Err(format!(
                "a call that did not commit changed the store:\nbefore {before:?}\nafter {after:?}"
            ));
        }
        return Ok(());
    }
    if others(&after, &name) != others(&before, &name) {
        return Err("a call changed another plugin's state".into());
    }
    let now = after
        .records
        .get(&name)
        .ok_or("the plugin's record is gone after a call")?;
    if now.calls != record.calls + 1 {
        return Err(format!(
            "calls {} -> {} after a commit",
            record.calls, now.calls
        ));
    }
    let cold = h.read_cold(&name)?;
    if cold != hash_after {
        return Err(format!(
            "after a commit the live instance reads {hash_after:#x}, one restored from stable memory {cold:#x}: the commit lost a change"
        ));
    }
    Ok(())
}

fn upgrade(
    h: &mut Harness,
    rng: &mut Rng,
    modules: &[Generated],
    installed: &[String],
    log: &mut Vec<String>,
    note: &mut impl FnMut(String),
) -> Verdict {
    let name = if rng.chance(1, 20) {
        "nope".to_owned()
    } else {
        rng.pick(installed).clone()
    };
    let module_index = rng.index(modules.len());
    let module = &modules[module_index];
    let migration = match rng.below(3) {
        0 => None,
        1 => Some("missing".to_owned()),
        _ => Some(rng.pick(&module.functions).clone()),
    };
    push(
        log,
        format!("upgrade_plugin {name} to module{module_index} migration {migration:?}"),
    );
    let hash_before = h.engine.get(&name).map(|_| h.read(&name)).transpose()?;
    let before = h.dump()?;
    let bound = max_readings(2 * h.limits.max_fuel, h.limits.fuel_slice);
    h.meter.bounded_message(*rng.pick(&[0, 1_000]), bound);
    let result = h.engine.upgrade_plugin(
        UpgradePluginRequest {
            name: &name,
            wasm: &module.wasm,
            migration: migration.as_deref(),
        },
        h.now,
    );
    if h.meter.readings() > bound {
        return Err(format!(
            "upgrade_plugin read the instruction counter more than {bound} times: it keeps retrying"
        ));
    }
    let after = h.dump()?;
    match result {
        Err(error) => {
            note(format!("upgrade refused: {}", install_error_kind(&error)));
            push(log, format!("  -> {error:?}"));
            if after != before {
                return Err(format!(
                    "a refused upgrade_plugin changed the store:\nbefore {before:?}\nafter {after:?}"
                ));
            }
            if let Some(hash) = hash_before {
                let now = h.read(&name)?;
                if now != hash {
                    return Err(format!(
                        "a refused upgrade_plugin changed the live state: {hash:#x} -> {now:#x}"
                    ));
                }
            }
            Ok(())
        }
        Ok(record) => {
            note("upgrade ok".into());
            push(log, format!("  -> ok, functions {:?}", record.functions));
            if others(&after, &name) != others(&before, &name) {
                return Err("upgrade_plugin changed another plugin's state".into());
            }
            let old = before
                .records
                .get(&name)
                .ok_or("upgraded a plugin that was not there")?;
            if record.id != old.id || record.owner != old.owner || record.config != old.config {
                return Err(format!(
                    "upgrade_plugin changed the record's identity: {old:?} -> {record:?}"
                ));
            }
            if migration.is_none() {
                let vars = |d: &Dump| {
                    d.states
                        .get(&old.id)
                        .map(|s| s.vars.clone())
                        .unwrap_or_default()
                };
                if vars(&after) != vars(&before) {
                    return Err("upgrade_plugin without a migration changed the vars".into());
                }
            }
            let warm = h.read(&name)?;
            let cold = h.read_cold(&name)?;
            if warm != cold {
                return Err(format!(
                    "after upgrade_plugin the live instance reads {warm:#x}, one restored from stable memory {cold:#x}"
                ));
            }
            Ok(())
        }
    }
}

/// Uninstall, set_config or set_invoke_policy.
fn manage(
    h: &mut Harness,
    rng: &mut Rng,
    installed: &[String],
    log: &mut Vec<String>,
    note: &mut impl FnMut(String),
) -> Verdict {
    let name = if rng.chance(1, 20) {
        "nope".to_owned()
    } else {
        rng.pick(installed).clone()
    };
    let hash_before = h.engine.get(&name).map(|_| h.read(&name)).transpose()?;
    let before = h.dump()?;
    let (what, result) = match rng.below(3) {
        0 => ("uninstall", h.engine.uninstall(&name).map(|()| None)),
        1 => {
            let config = random_config(rng);
            push(log, format!("set_config {name} {config:?}"));
            (
                "set_config",
                h.engine.set_config(&name, config, h.now).map(Some),
            )
        }
        _ => {
            let policy = random_policy(rng);
            push(log, format!("set_invoke_policy {name} {policy:?}"));
            (
                "set_invoke_policy",
                h.engine.set_invoke_policy(&name, policy, h.now).map(Some),
            )
        }
    };
    if what == "uninstall" {
        push(log, format!("uninstall {name}"));
    }
    let after = h.dump()?;
    match result {
        Err(error) => {
            note(format!("{what} refused"));
            push(log, format!("  -> {error:?}"));
            if after != before {
                return Err(format!("a refused {what} changed the store"));
            }
        }
        Ok(_) => {
            note(format!("{what} ok"));
            push(log, "  -> ok".into());
            if others(&after, &name) != others(&before, &name) {
                return Err(format!("{what} changed another plugin's state"));
            }
            if what == "uninstall" {
                if after.records.contains_key(&name) {
                    return Err("uninstall left the record".into());
                }
                // `dump` checked that nothing is left for its id.
                return Ok(());
            }
            let (old, new) = (&before.records[&name], &after.records[&name]);
            if old.id != new.id || before.states.get(&old.id) != after.states.get(&new.id) {
                return Err(format!("{what} changed the plugin's state"));
            }
        }
    }
    if let Some(hash) = hash_before
        && after.records.contains_key(&name)
    {
        let now = h.read(&name)?;
        if now != hash {
            return Err(format!(
                "{what} changed the live state: {hash:#x} -> {now:#x}"
            ));
        }
    }
    Ok(())
}

/// Drops the engine and opens a new one over the same stable memory (a canister upgrade).
fn reopen(
    h: &mut Harness,
    rng: &mut Rng,
    installed: &[String],
    log: &mut Vec<String>,
    note: &mut impl FnMut(String),
) -> Verdict {
    push(log, "reopen".into());
    note("reopen".into());
    let mut hashes = BTreeMap::new();
    for name in installed {
        hashes.insert(name.clone(), h.read(name)?);
    }
    let before = h.dump()?;
    h.engine = open(&h.memory, h.limits.clone(), h.meter.clone());
    let after = h.dump()?;
    if after != before {
        return Err("reopening the engine changed the store".into());
    }
    // In a random order: a cold instance per plugin.
    let mut names: Vec<&String> = hashes.keys().collect();
    for i in (1..names.len()).rev() {
        names.swap(i, rng.index(i + 1));
    }
    for name in names {
        let now = h.read(name)?;
        if now != hashes[name] {
            return Err(format!(
                "after reopening, {name} reads {now:#x}, before {:#x}",
                hashes[name]
            ));
        }
    }
    Ok(())
}
