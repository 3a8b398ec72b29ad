//! The Extism guest ABI, implemented natively: module `extism:host/env`, plus our IC functions in
//! `extism:host/user`.
//!
//! The Extism functions never touch a plugin's linear memory. The host keeps a separate byte arena
//! per call ("kernel memory"); blocks in it are addressed by `u64` handles (their offset; `0` is
//! null). Every handle and offset a guest passes is bounds-checked against a live block; misuse is
//! a trap with a message, never a host panic. Host functions charge fuel for the bytes they move.
//!
//! The host primitives (`sha256`, `compare`) are the exception: they work on the plugin's own
//! memory (exported as `memory`, as the PDKs do), at native speed, so that a plugin need not copy
//! its data through the arena 8 bytes per host call. What they write is marked for the engine's
//! commit like a store of the guest's.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use wasmi::{Caller, Linker};
use wasmparser::ValType::{self, I32, I64};

use crate::error::LimitExceeded;
use crate::{LogEntry, LogLevel};

/// Import module of the Extism kernel functions.
pub const ENV: &str = "extism:host/env";
/// Import module of our IC functions.
pub const USER: &str = "extism:host/user";

/// Every function a plugin may import: (module, name, params, results). The one table of ABI
/// imports: install checks modules against it, and a test checks the linker defines each entry.
pub const IMPORTS: &[(&str, &str, &[ValType], &[ValType])] = &[
    (ENV, "alloc", &[I64], &[I64]),
    (ENV, "free", &[I64], &[]),
    (ENV, "length", &[I64], &[I64]),
    (ENV, "length_unsafe", &[I64], &[I64]),
    (ENV, "load_u8", &[I64], &[I32]),
    (ENV, "load_u64", &[I64], &[I64]),
    (ENV, "store_u8", &[I64, I32], &[]),
    (ENV, "store_u64", &[I64, I64], &[]),
    (ENV, "input_length", &[], &[I64]),
    (ENV, "input_load_u8", &[I64], &[I32]),
    (ENV, "input_load_u64", &[I64], &[I64]),
    (ENV, "input_offset", &[], &[I64]),
    (ENV, "output_set", &[I64, I64], &[]),
    (ENV, "error_set", &[I64], &[]),
    (ENV, "error_get", &[], &[I64]),
    (ENV, "config_get", &[I64], &[I64]),
    (ENV, "var_get", &[I64], &[I64]),
    (ENV, "var_set", &[I64, I64], &[]),
    (ENV, "http_request", &[I64, I64], &[I64]),
    (ENV, "http_status_code", &[], &[I32]),
    (ENV, "http_headers", &[], &[I64]),
    (ENV, "log_trace", &[I64], &[]),
    (ENV, "log_debug", &[I64], &[]),
    (ENV, "log_info", &[I64], &[]),
    (ENV, "log_warn", &[I64], &[]),
    (ENV, "log_error", &[I64], &[]),
    (ENV, "get_log_level", &[], &[I32]),
    (USER, "ic_caller", &[], &[I64]),
    (USER, "ic_time", &[], &[I64]),
    (USER, "ic_seed", &[], &[I64]),
    (USER, "sha256", &[I32, I32, I32], &[]),
    (USER, "compare", &[I32, I32, I32], &[I32]),
];

/// Fuel charged per host call on top of the bytes it moves.
const HOST_CALL_FUEL: u64 = 10;

/// Caps the ABI enforces within one call.
#[derive(Debug, Clone, Copy)]
pub struct AbiLimits {
    /// Bytes the arena may hold.
    pub arena_bytes: u64,
    /// Bytes the output may have.
    pub output_bytes: u64,
    /// Bytes of all vars (keys + values) of one plugin.
    pub var_bytes: u64,
    /// Bytes of log messages kept per call.
    pub log_bytes: u64,
    /// Most 64 KiB pages of linear memory.
    pub memory_pages: u32,
    /// Most table elements.
    pub table_elements: u32,
}

/// Why a host function stopped the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostTrap {
    /// The guest passed a handle or offset outside any live block.
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
    /// A function the host does not offer yet.
    #[error("{0} is not available in plugin_host")]
    Unavailable(&'static str),
    /// A string argument that is not UTF-8.
    #[error("{0}: the key is not valid UTF-8")]
    NotUtf8(&'static str),
}

impl wasmi::errors::HostError for HostTrap {}

/// Per-plugin host state: the call's arena, input, output, error and logs, and the plugin's config
/// and vars (with a journal so a failed call can be undone).
#[derive(Debug)]
pub struct HostState {
    /// Caps.
    pub limits: AbiLimits,
    /// Read-only config.
    pub config: BTreeMap<String, String>,
    /// The plugin's vars as of now (heap copy of stable memory plus this call's changes).
    pub vars: BTreeMap<String, Vec<u8>>,
    /// Old values of vars changed by this call (`None`: did not exist).
    pub vars_journal: BTreeMap<String, Option<Vec<u8>>>,
    /// Total bytes of `vars`.
    pub var_bytes: u64,
    /// The per-call part.
    pub call: CallState,
    /// Whether wasmi store limits refused a resource (memory/table growth).
    pub limit_hit: Option<LimitExceeded>,
}

/// What lives only for one call.
#[derive(Debug, Default)]
pub struct CallState {
    pub(crate) arena: Vec<u8>,
    pub(crate) blocks: BTreeMap<u64, u64>,
    pub(crate) input: (u64, u64),
    /// (handle, length) of the output block.
    pub output: Option<(u64, u64)>,
    pub(crate) error: u64,
    /// Log lines.
    pub logs: Vec<LogEntry>,
    pub(crate) log_bytes: u64,
    /// Whether logs are collected (else `get_log_level` says "off").
    pub collect_logs: bool,
    /// Caller principal bytes.
    pub caller: Vec<u8>,
    /// IC time, ns.
    pub time_ns: u64,
    /// Per-call seed.
    pub seed: [u8; 32],
}

impl HostState {
    /// A host state for a plugin with `config` and `vars`.
    pub fn new(
        limits: AbiLimits,
        config: BTreeMap<String, String>,
        vars: BTreeMap<String, Vec<u8>>,
    ) -> Self {
        let var_bytes = vars.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        Self {
            limits,
            config,
            vars,
            vars_journal: BTreeMap::new(),
            var_bytes,
            call: CallState::default(),
            limit_hit: None,
        }
    }

    /// Starts a call: empties the arena and places `input` in it.
    pub fn begin_call(&mut self, call: CallState, input: &[u8]) -> Result<(), HostTrap> {
        self.call = call;
        self.vars_journal.clear();
        self.limit_hit = None;
        let handle = self.alloc(input.len() as u64)?;
        if handle != 0 {
            self.write(handle, input);
        }
        self.call.input = (handle, input.len() as u64);
        Ok(())
    }

    /// The output bytes set by the guest.
    pub fn output(&self) -> Vec<u8> {
        match self.call.output {
            Some((handle, len)) => self.read(handle, len).to_vec(),
            None => Vec::new(),
        }
    }

    /// The error message set by the guest, if any.
    pub fn error_message(&self) -> Option<String> {
        let handle = self.call.error;
        let len = *self.call.blocks.get(&handle)?;
        Some(String::from_utf8_lossy(self.read(handle, len)).into_owned())
    }

    /// Undoes this call's var changes.
    pub fn rollback_vars(&mut self) {
        for (key, old) in std::mem::take(&mut self.vars_journal) {
            self.set_var_raw(&key, old);
        }
    }

    fn set_var_raw(&mut self, key: &str, value: Option<Vec<u8>>) {
        if let Some(old) = self.vars.remove(key) {
            self.var_bytes -= (key.len() + old.len()) as u64;
        }
        if let Some(value) = value {
            self.var_bytes += (key.len() + value.len()) as u64;
            self.vars.insert(key.to_owned(), value);
        }
    }

    fn alloc(&mut self, len: u64) -> Result<u64, HostTrap> {
        if len == 0 {
            return Ok(0);
        }
        // Offset 0 is null: the arena starts with one unused byte.
        let start = self.call.arena.len().max(1) as u64;
        let end = start + len;
        if end > self.limits.arena_bytes {
            return Err(HostTrap::Limit(LimitExceeded {
                limit: "arena bytes",
                requested: end,
                max: self.limits.arena_bytes,
            }));
        }
        self.call.arena.resize(end as usize, 0);
        self.call.blocks.insert(start, len);
        Ok(start)
    }

    /// Checks that `[offset, offset + len)` lies in one live block.
    fn check(&self, function: &'static str, offset: u64, len: u64) -> Result<(), HostTrap> {
        let inside = self
            .call
            .blocks
            .range(..=offset)
            .next_back()
            .is_some_and(|(start, size)| {
                offset
                    .checked_add(len)
                    .is_some_and(|end| end <= start + size)
            });
        if inside {
            Ok(())
        } else {
            Err(HostTrap::OutOfBounds {
                function,
                offset,
                len,
            })
        }
    }

    fn read(&self, offset: u64, len: u64) -> &[u8] {
        &self.call.arena[offset as usize..(offset + len) as usize]
    }

    fn write(&mut self, offset: u64, bytes: &[u8]) {
        self.call.arena[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    }

    /// The bytes of the block starting at `handle`.
    fn block(&self, function: &'static str, handle: u64) -> Result<&[u8], HostTrap> {
        match self.call.blocks.get(&handle) {
            Some(len) => Ok(self.read(handle, *len)),
            None => Err(HostTrap::OutOfBounds {
                function,
                offset: handle,
                len: 0,
            }),
        }
    }

    fn block_str(&self, function: &'static str, handle: u64) -> Result<String, HostTrap> {
        String::from_utf8(self.block(function, handle)?.to_vec())
            .map_err(|_| HostTrap::NotUtf8(function))
    }

    fn new_block(&mut self, bytes: &[u8]) -> Result<u64, HostTrap> {
        let handle = self.alloc(bytes.len() as u64)?;
        if handle != 0 {
            self.write(handle, bytes);
        }
        Ok(handle)
    }

    fn log(&mut self, level: LogLevel, handle: u64) -> Result<(), HostTrap> {
        let message = String::from_utf8_lossy(self.block("log", handle)?).into_owned();
        let size = message.len() as u64;
        if self.call.collect_logs && self.call.log_bytes + size <= self.limits.log_bytes {
            self.call.log_bytes += size;
            self.call.logs.push(LogEntry { level, message });
        }
        Ok(())
    }
}

fn trap(t: HostTrap) -> wasmi::Error {
    wasmi::Error::host(t)
}

/// Charges `HOST_CALL_FUEL + bytes` fuel to the running call. When the current fuel slice holds
/// less, it is emptied instead: the next guest instruction then asks the engine for the next slice,
/// so a host call never fails just because it fell at the end of a slice.
fn charge(caller: &mut Caller<'_, HostState>, bytes: u64) -> Result<(), wasmi::Error> {
    let cost = HOST_CALL_FUEL.saturating_add(bytes);
    let fuel = caller.get_fuel()?;
    caller.set_fuel(fuel.saturating_sub(cost))
}

type C<'a> = Caller<'a, HostState>;
type R<T> = Result<T, wasmi::Error>;

/// Defines every import of [`IMPORTS`] in `linker`.
pub fn link(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    linker.func_wrap(ENV, "alloc", |mut c: C, len: i64| -> R<i64> {
        charge(&mut c, len as u64)?;
        c.data_mut()
            .alloc(len as u64)
            .map(|h| h as i64)
            .map_err(trap)
    })?;
    linker.func_wrap(ENV, "free", |mut c: C, handle: i64| -> R<()> {
        charge(&mut c, 0)?;
        c.data_mut().call.blocks.remove(&(handle as u64));
        Ok(())
    })?;
    for name in ["length", "length_unsafe"] {
        linker.func_wrap(ENV, name, |mut c: C, handle: i64| -> R<i64> {
            charge(&mut c, 0)?;
            Ok(c.data()
                .call
                .blocks
                .get(&(handle as u64))
                .copied()
                .unwrap_or(0) as i64)
        })?;
    }
    linker.func_wrap(ENV, "load_u8", |mut c: C, offset: i64| -> R<i32> {
        charge(&mut c, 0)?;
        let s = c.data();
        s.check("load_u8", offset as u64, 1).map_err(trap)?;
        Ok(s.read(offset as u64, 1)[0] as i32)
    })?;
    linker.func_wrap(ENV, "load_u64", |mut c: C, offset: i64| -> R<i64> {
        charge(&mut c, 0)?;
        let s = c.data();
        s.check("load_u64", offset as u64, 8).map_err(trap)?;
        let bytes = s.read(offset as u64, 8);
        Ok(i64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    })?;
    linker.func_wrap(
        ENV,
        "store_u8",
        |mut c: C, offset: i64, value: i32| -> R<()> {
            charge(&mut c, 0)?;
            let s = c.data_mut();
            s.check("store_u8", offset as u64, 1).map_err(trap)?;
            s.write(offset as u64, &[value as u8]);
            Ok(())
        },
    )?;
    linker.func_wrap(
        ENV,
        "store_u64",
        |mut c: C, offset: i64, value: i64| -> R<()> {
            charge(&mut c, 0)?;
            let s = c.data_mut();
            s.check("store_u64", offset as u64, 8).map_err(trap)?;
            s.write(offset as u64, &value.to_le_bytes());
            Ok(())
        },
    )?;
    linker.func_wrap(ENV, "input_length", |mut c: C| -> R<i64> {
        charge(&mut c, 0)?;
        Ok(c.data().call.input.1 as i64)
    })?;
    linker.func_wrap(ENV, "input_offset", |mut c: C| -> R<i64> {
        charge(&mut c, 0)?;
        Ok(c.data().call.input.0 as i64)
    })?;
    linker.func_wrap(ENV, "input_load_u8", |mut c: C, offset: i64| -> R<i32> {
        charge(&mut c, 0)?;
        let s = c.data();
        let (start, len) = s.call.input;
        if (offset as u64) >= len {
            return Err(trap(HostTrap::OutOfBounds {
                function: "input_load_u8",
                offset: offset as u64,
                len: 1,
            }));
        }
        Ok(s.read(start + offset as u64, 1)[0] as i32)
    })?;
    linker.func_wrap(ENV, "input_load_u64", |mut c: C, offset: i64| -> R<i64> {
        charge(&mut c, 0)?;
        let s = c.data();
        let (start, len) = s.call.input;
        if (offset as u64).checked_add(8).is_none_or(|end| end > len) {
            return Err(trap(HostTrap::OutOfBounds {
                function: "input_load_u64",
                offset: offset as u64,
                len: 8,
            }));
        }
        let bytes = s.read(start + offset as u64, 8);
        Ok(i64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    })?;
    linker.func_wrap(
        ENV,
        "output_set",
        |mut c: C, handle: i64, len: i64| -> R<()> {
            charge(&mut c, len as u64)?;
            let s = c.data_mut();
            if len as u64 > s.limits.output_bytes {
                return Err(trap(HostTrap::Limit(LimitExceeded {
                    limit: "output bytes",
                    requested: len as u64,
                    max: s.limits.output_bytes,
                })));
            }
            if len != 0 {
                s.check("output_set", handle as u64, len as u64)
                    .map_err(trap)?;
            }
            s.call.output = Some((handle as u64, len as u64));
            Ok(())
        },
    )?;
    linker.func_wrap(ENV, "error_set", |mut c: C, handle: i64| -> R<()> {
        charge(&mut c, 0)?;
        let s = c.data_mut();
        if handle != 0 {
            s.block("error_set", handle as u64).map_err(trap)?;
        }
        s.call.error = handle as u64;
        Ok(())
    })?;
    linker.func_wrap(ENV, "error_get", |mut c: C| -> R<i64> {
        charge(&mut c, 0)?;
        Ok(c.data().call.error as i64)
    })?;
    linker.func_wrap(ENV, "config_get", |mut c: C, key: i64| -> R<i64> {
        let s = c.data_mut();
        let key = s.block_str("config_get", key as u64).map_err(trap)?;
        let value = s.config.get(&key).cloned();
        let cost = value.as_ref().map_or(0, |v| v.len() as u64) + key.len() as u64;
        charge(&mut c, cost)?;
        match value {
            Some(value) => c.data_mut().new_block(value.as_bytes()).map(|h| h as i64),
            None => Ok(0),
        }
        .map_err(trap)
    })?;
    linker.func_wrap(ENV, "var_get", |mut c: C, key: i64| -> R<i64> {
        let s = c.data_mut();
        let key = s.block_str("var_get", key as u64).map_err(trap)?;
        let value = s.vars.get(&key).cloned();
        let cost = value.as_ref().map_or(0, |v| v.len() as u64) + key.len() as u64;
        charge(&mut c, cost)?;
        match value {
            Some(value) => c.data_mut().new_block(&value).map(|h| h as i64),
            None => Ok(0),
        }
        .map_err(trap)
    })?;
    linker.func_wrap(ENV, "var_set", |mut c: C, key: i64, value: i64| -> R<()> {
        let s = c.data_mut();
        let key = s.block_str("var_set", key as u64).map_err(trap)?;
        let value = match value {
            0 => None,
            handle => Some(s.block("var_set", handle as u64).map_err(trap)?.to_vec()),
        };
        let old_len = s.vars.get(&key).map_or(0, |v| (key.len() + v.len()) as u64);
        let new_len = value.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
        let total = s.var_bytes - old_len + new_len;
        if total > s.limits.var_bytes {
            return Err(trap(HostTrap::Limit(LimitExceeded {
                limit: "var bytes",
                requested: total,
                max: s.limits.var_bytes,
            })));
        }
        let old = s.vars.get(&key).cloned();
        s.vars_journal.entry(key.clone()).or_insert(old);
        s.set_var_raw(&key, value);
        charge(&mut c, new_len)
    })?;
    linker.func_wrap(
        ENV,
        "http_request",
        |_: C, _req: i64, _body: i64| -> R<i64> {
            Err(trap(HostTrap::Unavailable("http_request")))
        },
    )?;
    linker.func_wrap(ENV, "http_status_code", |_: C| -> R<i32> { Ok(0) })?;
    linker.func_wrap(ENV, "http_headers", |_: C| -> R<i64> { Ok(0) })?;
    for (name, level) in [
        ("log_trace", LogLevel::Trace),
        ("log_debug", LogLevel::Debug),
        ("log_info", LogLevel::Info),
        ("log_warn", LogLevel::Warn),
        ("log_error", LogLevel::Error),
    ] {
        linker.func_wrap(ENV, name, move |mut c: C, handle: i64| -> R<()> {
            let len = c
                .data()
                .call
                .blocks
                .get(&(handle as u64))
                .copied()
                .unwrap_or(0);
            charge(&mut c, len)?;
            c.data_mut().log(level, handle as u64).map_err(trap)
        })?;
    }
    linker.func_wrap(ENV, "get_log_level", |c: C| -> R<i32> {
        // Extism levels: 0 trace .. 4 error; i32::MAX is "off".
        Ok(if c.data().call.collect_logs {
            0
        } else {
            i32::MAX
        })
    })?;
    linker.func_wrap(USER, "ic_caller", |mut c: C| -> R<i64> {
        charge(&mut c, 29)?;
        let s = c.data_mut();
        let caller = s.call.caller.clone();
        s.new_block(&caller).map(|h| h as i64).map_err(trap)
    })?;
    linker.func_wrap(USER, "ic_time", |mut c: C| -> R<i64> {
        charge(&mut c, 0)?;
        Ok(c.data().call.time_ns as i64)
    })?;
    linker.func_wrap(USER, "ic_seed", |mut c: C| -> R<i64> {
        charge(&mut c, 32)?;
        let s = c.data_mut();
        let seed = s.call.seed;
        s.new_block(&seed).map(|h| h as i64).map_err(trap)
    })?;
    linker.func_wrap(
        USER,
        "sha256",
        |mut c: C, ptr: u32, len: u32, out: u32| -> R<()> {
            charge(&mut c, len.into())?;
            let memory = own_memory(&c, "sha256")?;
            let data = memory.data_mut(&mut c);
            let digest: [u8; 32] = Sha256::digest(guest_bytes(data, "sha256", ptr, len)?).into();
            let out = out as usize;
            data.get_mut(out..out.saturating_add(32))
                .ok_or_else(|| out_of_bounds("sha256", out as u32, 32))?
                .copy_from_slice(&digest);
            wasmi::dirty::mark(out, 32);
            Ok(())
        },
    )?;
    linker.func_wrap(
        USER,
        "compare",
        |mut c: C, a: u32, b: u32, len: u32| -> R<i32> {
            charge(&mut c, u64::from(len) / 8)?;
            let data = own_memory(&c, "compare")?.data(&c);
            let ordering =
                guest_bytes(data, "compare", a, len)?.cmp(guest_bytes(data, "compare", b, len)?);
            Ok(ordering as i32)
        },
    )?;
    Ok(())
}

/// The calling plugin's memory, for the host primitives.
fn own_memory(c: &C, function: &'static str) -> R<wasmi::Memory> {
    c.get_export("memory")
        .and_then(wasmi::Extern::into_memory)
        .ok_or_else(|| trap(HostTrap::NoMemory(function)))
}

/// `len` bytes of guest memory at `ptr`, or a trap.
fn guest_bytes<'a>(data: &'a [u8], function: &'static str, ptr: u32, len: u32) -> R<&'a [u8]> {
    let start = ptr as usize;
    data.get(start..start.saturating_add(len as usize))
        .ok_or_else(|| out_of_bounds(function, ptr, len))
}

fn out_of_bounds(function: &'static str, ptr: u32, len: u32) -> wasmi::Error {
    trap(HostTrap::OutsideMemory {
        function,
        offset: ptr,
        len,
    })
}
