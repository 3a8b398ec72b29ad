//! The plugin ABI: the Extism guest ABI (`extism:host/env`), implemented natively, and our IC
//! functions (`extism:host/user`), all from one table ([`functions`]), which generates the list
//! of imports install checks modules against ([`IMPORTS`]), the linker ([`link`]) and the
//! reference in `plugins/README.md`; and WASI preview 1 (`wasi_snapshot_preview1`), a table of
//! its own made by the same macro ([`wasi`]: [`WASI_IMPORTS`], [`link_wasi`]).
//!
//! The Extism functions never touch a plugin's linear memory: the host keeps a byte arena per call
//! ([`arena`]); the guest moves bytes in and out with `load_*`/`store_*`. The host primitives
//! (`sha256`, `compare`) are the exception: they work on the plugin's own memory (exported as
//! `memory`) at native speed, and what they write is marked for the commit like a guest store.
//!
//! Every host function charges its whole cost before doing its work, against the call's whole
//! remaining fuel (not just the current slice), and one whose work is large first checks that the
//! message's instruction counter leaves room for it. Misuse (a bad handle, a range outside a block
//! or outside memory, a key that is not UTF-8) stops the call with a typed error; nothing a guest
//! passes reaches an index or an unchecked addition.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

/// A Rust type that stands for a wasm value type in a table.
trait AbiValue {
    const TYPE: wasmparser::ValType;
}

impl AbiValue for u32 {
    const TYPE: wasmparser::ValType = wasmparser::ValType::I32;
}

impl AbiValue for i32 {
    const TYPE: wasmparser::ValType = wasmparser::ValType::I32;
}

impl AbiValue for u64 {
    const TYPE: wasmparser::ValType = wasmparser::ValType::I64;
}

/// A table of host functions: generates the list install checks imports against (`$imports`)
/// and the function that defines them all in a linker (`$link`), from one entry per function.
macro_rules! host_functions {
    (
        imports: $imports:ident, link: $link:ident;
        $(
            $(#[doc = $doc:literal])*
            $module:ident fn $name:ident($c:ident $(, $arg:ident : $ty:ty)* $(,)?) $(-> $ret:ty)? $body:block
        )*
    ) => {
        /// The functions of this table, as plugins import them: install checks imports against
        /// this list.
        pub const $imports: &[$crate::abi::HostFunction] = &[$(
            $crate::abi::HostFunction {
                module: host_functions!(@module $module),
                name: stringify!($name),
                param_names: &[$(stringify!($arg)),*],
                params: &[$(<$ty as $crate::abi::AbiValue>::TYPE),*],
                results: &[$(<$ret as $crate::abi::AbiValue>::TYPE)?],
                doc: concat!($($doc, "\n"),*),
            },
        )*];

        /// Defines every function of this table in `linker`.
        pub fn $link(
            linker: &mut wasmi::Linker<$crate::abi::HostState>,
        ) -> Result<(), wasmi::Error> {
            $(
                linker.func_wrap(
                    host_functions!(@module $module),
                    stringify!($name),
                    |mut $c: wasmi::Caller<'_, $crate::abi::HostState> $(, $arg: $ty)*|
                        -> Result<host_functions!(@result $($ret)?), wasmi::Error> { $body },
                )?;
            )*
            Ok(())
        }
    };
    (@module env) => { $crate::abi::ENV };
    (@module user) => { $crate::abi::USER };
    (@module wasi) => { $crate::abi::WASI };
    (@result) => { () };
    (@result $ret:ty) => { $ret };
}

pub mod arena;
mod functions;
pub mod wasi;

use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use plugin_host_api::{LimitExceeded, LogEntry, LogLevel};
use sha2::{Digest, Sha256};
use wasmi::Caller;

use self::arena::{Arena, ArenaError};
pub use self::functions::{IMPORTS, link};
pub use self::wasi::{WASI_IMPORTS, link_wasi};
use crate::budget::{FuelAccount, InstructionMeter};
use crate::limits::{LOG_LINE_OVERHEAD, Limits};

/// Import module of the Extism kernel functions.
pub const ENV: &str = "extism:host/env";
/// Import module of our IC functions and host primitives.
pub const USER: &str = "extism:host/user";
/// Import module of WASI preview 1 ([`wasi`]).
pub const WASI: &str = "wasi_snapshot_preview1";

/// Every function a plugin may import: the Extism and IC table, then the WASI one.
pub fn all_imports() -> impl Iterator<Item = &'static HostFunction> {
    IMPORTS.iter().chain(WASI_IMPORTS)
}

/// One function of the plugin ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFunction {
    /// Import module ([`ENV`], [`USER`] or [`WASI`]).
    pub module: &'static str,
    /// Import name.
    pub name: &'static str,
    /// Parameter names (as the documentation calls them).
    pub param_names: &'static [&'static str],
    /// Parameter types.
    pub params: &'static [wasmparser::ValType],
    /// Result types.
    pub results: &'static [wasmparser::ValType],
    /// What it does, its parameters and result, who owns each handle, what it charges and how
    /// it fails.
    pub doc: &'static str,
}

/// The plugin author's reference of the ABI, generated from the table: per import module, each
/// function with its wasm signature and documentation (`plugins/README.md` holds it; a test keeps
/// it current).
pub fn reference() -> String {
    let mut out = String::new();
    let mut module = "";
    for f in all_imports() {
        if f.module != module {
            module = f.module;
            out.push_str(&format!("\n### `{module}`\n\n"));
        }
        let params: Vec<String> = f
            .param_names
            .iter()
            .zip(f.params)
            .map(|(name, ty)| format!("{name}: {ty}"))
            .collect();
        let results = match f.results {
            [] => String::new(),
            [ty] => format!(" -> {ty}"),
            types => format!(" -> {types:?}"),
        };
        let doc: Vec<&str> = f.doc.lines().map(str::trim).collect();
        out.push_str(&format!(
            "- `{}({}){results}`: {}\n",
            f.name,
            params.join(", "),
            doc.join(" ")
        ));
    }
    out
}

/// Fuel every host call costs, on top of what it charges per byte.
pub const HOST_CALL_FUEL: u64 = 10;

/// Above this estimate of a host call's IC instructions, it reads the instruction counter before
/// doing its work (a reading costs about 200 instructions, too many for every `load_u8`; fuel
/// slices bound the small calls).
const METERED_WORK: u64 = 1_000_000;

/// The ABI's caps (from [`Limits`]).
#[derive(Debug, Clone, Copy)]
pub struct AbiLimits {
    /// Bytes of an output.
    pub output_bytes: u64,
    /// Bytes of an error message.
    pub error_bytes: u64,
    /// Bytes of all vars (keys + values) of one plugin.
    pub var_bytes: u64,
    /// Bytes of log lines kept per call.
    pub log_bytes: u64,
    /// Most 64 KiB pages of linear memory (the resource limiter's cap).
    pub memory_pages: u32,
    /// Most table elements (the resource limiter's cap).
    pub table_elements: u32,
    /// Bytes the arena may span.
    pub arena_bytes: u64,
    /// Live blocks the arena may hold.
    pub arena_blocks: usize,
}

impl From<&Limits> for AbiLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            output_bytes: limits.max_output_bytes,
            error_bytes: limits.max_error_bytes,
            var_bytes: limits.max_var_bytes,
            log_bytes: limits.max_log_bytes,
            memory_pages: limits.max_memory_pages,
            table_elements: limits.max_table_elements,
            arena_bytes: limits.max_arena_bytes,
            arena_blocks: limits.max_arena_blocks,
        }
    }
}

/// Why a host function stopped the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostTrap {
    /// The guest passed a handle or range outside any live block.
    #[error("{function}: handle/offset {offset} (+{len}) is outside any live block")]
    OutOfBounds {
        /// The host function.
        function: &'static str,
        /// The offset passed.
        offset: u64,
        /// Bytes it wanted.
        len: u64,
    },
    /// The guest passed a range outside its own linear memory.
    #[error("{function}: linear memory {offset} (+{len}) is out of bounds")]
    OutsideMemory {
        /// The host function.
        function: &'static str,
        /// The address passed.
        offset: u32,
        /// Bytes it wanted.
        len: u32,
    },
    /// A host primitive called by a plugin that exports no memory named `memory`.
    #[error("{0}: the plugin exports no memory named `memory`")]
    NoMemory(&'static str),
    /// A host limit.
    #[error(transparent)]
    Limit(LimitExceeded),
    /// A function the host does not offer.
    #[error("{0} is not available in plugin_host")]
    Unavailable(&'static str),
    /// A key that is not UTF-8.
    #[error("{0}: the key is not valid UTF-8")]
    NotUtf8(&'static str),
    /// The output's block was freed (and given back) before the call returned.
    #[error("output_set: the output ({offset} +{len}) was freed before the function returned")]
    OutputFreed {
        /// The output's offset.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// The call's fuel cannot pay for the host call.
    #[error("{function}: out of fuel ({cost} needed)")]
    OutOfFuel {
        /// The host function.
        function: &'static str,
        /// Its cost.
        cost: u64,
    },
    /// The host call's work would push the message past its instruction limit.
    #[error("{function}: {instructions} instructions used, {estimate} more would pass {limit}")]
    InstructionLimit {
        /// The host function.
        function: &'static str,
        /// The message's instruction counter.
        instructions: u64,
        /// What the host call would cost.
        estimate: u64,
        /// The limit.
        limit: u64,
    },
    /// The plugin called WASI's `proc_exit`.
    #[error("proc_exit({code})")]
    Exit {
        /// The exit code.
        code: i32,
    },
}

impl wasmi::errors::HostError for HostTrap {}

/// Per-plugin host state: the plugin's config and vars (with a journal so that a failed call can
/// be undone) and the state of the running call.
#[derive(Debug)]
pub struct HostState {
    /// Caps.
    pub limits: AbiLimits,
    /// Read-only config.
    pub config: BTreeMap<String, String>,
    /// The plugin's vars as of now (the stored vars plus this call's changes).
    pub vars: BTreeMap<String, Vec<u8>>,
    /// Old values of vars changed by this call (`None`: did not exist).
    pub vars_journal: BTreeMap<String, Option<Vec<u8>>>,
    /// Total bytes of `vars` (keys and values).
    pub var_bytes: u64,
    /// The running call.
    pub call: CallState,
    /// A cap the resource limiter refused (memory or table growth).
    pub limit_hit: Option<LimitExceeded>,
    /// The script function a script runtime's `__plugin_call` is running, which `config_get`
    /// gives as `plugin_host.function` (see `validate::LIST_FUNCTIONS`).
    pub script_function: Option<String>,
}

/// What lives for one call only.
pub struct CallState {
    /// The arena.
    pub arena: Arena,
    /// Handle and length of the input block (pinned: `free` leaves it).
    pub input: (u64, u64),
    /// Offset and length of the output, read when the call returns (as Extism does: a plugin
    /// may set its output before writing it).
    pub output: (u64, u64),
    /// The error block's handle; its bytes are the message if it is still live at return.
    pub error: u64,
    /// Log lines kept.
    pub logs: Vec<LogEntry>,
    /// What the kept lines cost against the log cap.
    pub log_bytes: u64,
    /// Whether logs are kept (else `get_log_level` says "off").
    pub collect_logs: bool,
    /// The caller.
    pub caller: Principal,
    /// IC time, ns.
    pub time_ns: u64,
    /// Per-call seed.
    pub seed: Seed,
    /// The call's fuel.
    pub fuel: FuelAccount,
    /// The message's instruction counter.
    pub meter: Rc<dyn InstructionMeter>,
    /// The counter value at which the call must stop.
    pub instruction_limit: u64,
    /// The WASI shim's state, for plugins that import WASI.
    pub wasi: Option<wasi::WasiCall>,
}

impl std::fmt::Debug for CallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallState")
            .field("input", &self.input)
            .field("output", &self.output)
            .field("fuel", &self.fuel)
            .field("instruction_limit", &self.instruction_limit)
            .finish_non_exhaustive()
    }
}

/// The per-call seed: the sha256 of public facts about the call, hashed only if the plugin asks
/// for it (`ic_seed`). Hashing up front cost every call ~6 k IC instructions (`cargo xtask
/// profile P2.noop_rust`).
#[derive(Debug, Clone, Default)]
pub struct Seed {
    /// What is hashed: the facts, one after the other.
    facts: Vec<u8>,
}

impl Seed {
    /// The seed of `facts`, hashed in this order.
    pub fn of(facts: &[&[u8]]) -> Self {
        Self {
            facts: facts.concat(),
        }
    }

    /// The 32 bytes of the seed.
    pub fn bytes(&self) -> [u8; 32] {
        Sha256::digest(&self.facts).into()
    }
}

/// Who calls and when: what the IC functions tell a plugin.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The caller.
    pub caller: Principal,
    /// IC time, ns.
    pub time_ns: u64,
    /// Per-call seed.
    pub seed: Seed,
    /// Whether logs are kept.
    pub collect_logs: bool,
}

impl HostState {
    /// The host state of a plugin with `config` and `vars`, between calls.
    pub fn new(
        limits: AbiLimits,
        config: BTreeMap<String, String>,
        vars: BTreeMap<String, Vec<u8>>,
        meter: Rc<dyn InstructionMeter>,
    ) -> Self {
        let var_bytes = vars
            .iter()
            .map(|(k, v)| (k.len() as u64).saturating_add(v.len() as u64))
            .fold(0u64, u64::saturating_add);
        Self {
            call: CallState {
                arena: Arena::new(limits.arena_bytes, limits.arena_blocks),
                input: (0, 0),
                output: (0, 0),
                error: 0,
                logs: Vec::new(),
                log_bytes: 0,
                collect_logs: false,
                caller: Principal::anonymous(),
                time_ns: 0,
                seed: Seed::default(),
                fuel: FuelAccount::new(0),
                meter,
                instruction_limit: 0,
                wasi: None,
            },
            limits,
            config,
            vars,
            vars_journal: BTreeMap::new(),
            var_bytes,
            limit_hit: None,
            script_function: None,
        }
    }

    /// Starts a call: an empty arena with `input` in it, fresh output, error and logs.
    pub fn begin_call(
        &mut self,
        context: CallContext,
        input: &[u8],
        instruction_limit: u64,
    ) -> Result<(), HostTrap> {
        let call = &mut self.call;
        call.arena.clear();
        call.output = (0, 0);
        call.error = 0;
        call.logs = Vec::new();
        call.log_bytes = 0;
        call.collect_logs = context.collect_logs;
        call.caller = context.caller;
        call.time_ns = context.time_ns;
        call.seed = context.seed;
        call.instruction_limit = instruction_limit;
        self.vars_journal.clear();
        self.limit_hit = None;
        let handle = self
            .call
            .arena
            .alloc_bytes(input)
            .map_err(|e| arena_trap("input", e))?;
        self.call.input = (handle, input.len() as u64);
        Ok(())
    }

    /// Ends a call: gives the arena's heap back (output and logs were taken already).
    pub fn end_call(&mut self) {
        self.call.arena.clear();
        self.call.output = (0, 0);
        self.call.error = 0;
    }

    /// The output the guest set, read now. The guest's own bytes in any case (a block freed
    /// after `output_set` may have been reused, zeroed, by a later block of the same call); if
    /// the block was freed at the top of the arena, the call fails instead.
    pub fn output(&self) -> Result<Vec<u8>, HostTrap> {
        let (offset, len) = self.call.output;
        self.call
            .arena
            .read_spanned(offset, len)
            .map(<[u8]>::to_vec)
            .ok_or(HostTrap::OutputFreed { offset, len })
    }

    /// The error message the guest set, if its block is still live: as in Extism, a message
    /// freed before the function returns does not count. Cut to the error cap.
    pub fn error_message(&self) -> Option<String> {
        let handle = self.call.error;
        if handle == 0 || !self.call.arena.is_block(handle) {
            return None;
        }
        let message = self.call.arena.block(handle).ok()?;
        let cap = usize::try_from(self.limits.error_bytes).unwrap_or(usize::MAX);
        let message = message.get(..cap).unwrap_or(message);
        Some(String::from_utf8_lossy(message).into_owned())
    }

    /// Undoes this call's var changes.
    pub fn rollback_vars(&mut self) {
        for (key, old) in std::mem::take(&mut self.vars_journal) {
            self.set_var_raw(&key, old);
        }
    }

    /// Heap bytes this state holds between calls (vars, config, the kept arena).
    pub fn heap_bytes(&self) -> u64 {
        let config = self
            .config
            .iter()
            .map(|(k, v)| (k.len() as u64).saturating_add(v.len() as u64))
            .fold(0u64, u64::saturating_add);
        self.var_bytes
            .saturating_add(config)
            .saturating_add(self.call.arena.heap_bytes())
    }

    fn set_var_raw(&mut self, key: &str, value: Option<Vec<u8>>) {
        if let Some(old) = self.vars.remove(key) {
            let size = (key.len() as u64).saturating_add(old.len() as u64);
            self.var_bytes = self.var_bytes.saturating_sub(size);
        }
        if let Some(value) = value {
            let size = (key.len() as u64).saturating_add(value.len() as u64);
            self.var_bytes = self.var_bytes.saturating_add(size);
            self.vars.insert(key.to_owned(), value);
        }
    }

    /// Sets (`Some`) or deletes (`None`) a var, journaled, within the var cap.
    fn set_var(&mut self, key: String, value: Option<Vec<u8>>) -> Result<(), HostTrap> {
        let key_len = key.len() as u64;
        let old_size = self
            .vars
            .get(&key)
            .map_or(0, |v| key_len.saturating_add(v.len() as u64));
        let new_size = value
            .as_ref()
            .map_or(0, |v| key_len.saturating_add(v.len() as u64));
        let total = self
            .var_bytes
            .saturating_sub(old_size)
            .saturating_add(new_size);
        if total > self.limits.var_bytes {
            return Err(HostTrap::Limit(LimitExceeded {
                limit: "var bytes".into(),
                requested: total,
                max: self.limits.var_bytes,
            }));
        }
        let old = self.vars.get(&key).cloned();
        self.vars_journal.entry(key.clone()).or_insert(old);
        self.set_var_raw(&key, value);
        Ok(())
    }

    /// Keeps one log line if logs are collected and the cap allows.
    fn log(&mut self, level: LogLevel, message: &[u8]) {
        let cost = (message.len() as u64).saturating_add(LOG_LINE_OVERHEAD);
        let total = self.call.log_bytes.saturating_add(cost);
        if self.call.collect_logs && total <= self.limits.log_bytes {
            self.call.log_bytes = total;
            self.call.logs.push(LogEntry {
                level,
                message: String::from_utf8_lossy(message).into_owned(),
            });
        }
    }

    /// The bytes of the block at `handle` (0: empty), as a `function`'s argument.
    fn block(&self, function: &'static str, handle: u64) -> Result<&[u8], HostTrap> {
        self.call
            .arena
            .block(handle)
            .map_err(|e| arena_trap(function, e))
    }

    /// A UTF-8 key from the block at `handle`.
    fn key(&self, function: &'static str, handle: u64) -> Result<String, HostTrap> {
        String::from_utf8(self.block(function, handle)?.to_vec())
            .map_err(|_| HostTrap::NotUtf8(function))
    }
}

/// The trap for an arena error in `function`.
fn arena_trap(function: &'static str, error: ArenaError) -> HostTrap {
    match error {
        ArenaError::OutOfBounds { offset, len } => HostTrap::OutOfBounds {
            function,
            offset,
            len,
        },
        ArenaError::Limit(limit) => HostTrap::Limit(limit),
    }
}

/// Charges a host call's whole cost before it works: `HOST_CALL_FUEL + fuel` fuel against the
/// call's remaining fuel (taking from later slices when this one holds less), and, when the work
/// is large (`instructions`, an estimate of its IC instructions), checks the message's
/// instruction counter first.
fn charge(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    fuel: u64,
    instructions: u64,
) -> Result<(), wasmi::Error> {
    let cost = HOST_CALL_FUEL.saturating_add(fuel);
    if instructions > METERED_WORK {
        let call = &c.data().call;
        let used = call.meter.instructions();
        if used.saturating_add(instructions) > call.instruction_limit {
            return Err(wasmi::Error::host(HostTrap::InstructionLimit {
                function,
                instructions: used,
                estimate: instructions,
                limit: call.instruction_limit,
            }));
        }
    }
    let in_slice = c.get_fuel()?;
    if let Some(left) = in_slice.checked_sub(cost) {
        return c.set_fuel(left);
    }
    // The slice holds less: take the rest from the call's fuel not yet handed out.
    let rest = cost.saturating_sub(in_slice);
    if !c.data_mut().call.fuel.take(rest) {
        c.data_mut().call.fuel.exhaust();
        c.set_fuel(0)?;
        return Err(wasmi::Error::host(HostTrap::OutOfFuel { function, cost }));
    }
    c.set_fuel(0)
}

fn trap(t: HostTrap) -> wasmi::Error {
    wasmi::Error::host(t)
}

#[cfg(test)]
mod seed_tests {
    use sha2::{Digest, Sha256};

    use super::Seed;

    #[test]
    fn a_seed_is_the_sha256_of_its_facts_in_order() {
        let mut h = Sha256::new();
        h.update(b"counter");
        h.update(7u64.to_le_bytes());
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(Seed::of(&[b"counter", &7u64.to_le_bytes()]).bytes(), want);
        assert_ne!(Seed::of(&[&7u64.to_le_bytes(), b"counter"]).bytes(), want);
    }
}
