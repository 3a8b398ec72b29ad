//! The one table of host functions. Each entry is documented as Extism documents its kernel:
//! parameters, result, who owns each handle, what it charges and how it fails. The table
//! generates [`IMPORTS`] (what install accepts), [`link`] (the linker) and the reference in
//! `plugins/README.md` (`abi::reference`; a test keeps it current). Handles are offsets into the
//! call's arena; handle 0 is the empty block (an empty key, message or value). "Traps" means the
//! call stops with a typed error and its state rolls back.

use sha2::{Digest, Sha256};
use wasmi::Caller;

use super::{HostState, HostTrap, arena_trap, charge, trap};
use crate::validate::FUNCTION_KEY;
use plugin_host_api::{LimitExceeded, LogLevel};

host_functions! {
    imports: IMPORTS, link: link;

    /// Allocates a zeroed block of `len` bytes. Returns its handle (0 for `len` 0).
    /// Owner: the plugin, until `free` or the end of the call (freed space is reused).
    /// Charges: `len` fuel.
    /// Fails: `LimitExceeded` "arena bytes" (the arena spans at most 64 MiB) or "arena blocks".
    env fn alloc(c, len: u64) -> u64 {
        c.data().call.arena.fits(len).map_err(|e| trap(arena_trap("alloc", e)))?;
        charge(&mut c, "alloc", len, len)?;
        c.data_mut().call.arena.alloc(len).map_err(|e| trap(arena_trap("alloc", e)))
    }

    /// Frees the block at `handle`. Handle 0, unknown handles and the input block (which stays
    /// readable for the whole call) are left alone.
    /// Charges: nothing more.
    env fn free(c, handle: u64) {
        charge(&mut c, "free", 0, 0)?;
        let call = &mut c.data_mut().call;
        if handle != call.input.0 {
            call.arena.free(handle);
        }
        Ok(())
    }

    /// The length of the block at `handle`; 0 for handle 0 and for anything that is not the
    /// start of a live block.
    env fn length(c, handle: u64) -> u64 {
        charge(&mut c, "length", 0, 0)?;
        Ok(c.data().call.arena.length(handle))
    }

    /// The same as `length` (Extism's unchecked variant; checking costs nothing here).
    env fn length_unsafe(c, handle: u64) -> u64 {
        charge(&mut c, "length_unsafe", 0, 0)?;
        Ok(c.data().call.arena.length(handle))
    }

    /// The byte at `offset`. Fails: traps unless `offset` lies in a live block.
    env fn load_u8(c, offset: u64) -> u32 {
        charge(&mut c, "load_u8", 0, 0)?;
        let bytes = c.data().call.arena.read(offset, 1).map_err(|e| trap(arena_trap("load_u8", e)))?;
        Ok(bytes.first().copied().map_or(0, u32::from))
    }

    /// The 8 bytes at `offset`, little-endian. Fails: traps unless they lie in one live block.
    env fn load_u64(c, offset: u64) -> u64 {
        charge(&mut c, "load_u64", 0, 0)?;
        let bytes = c.data().call.arena.read(offset, 8).map_err(|e| trap(arena_trap("load_u64", e)))?;
        Ok(u64_le(bytes))
    }

    /// Writes the low byte of `value` at `offset`. Fails: traps unless `offset` lies in a live
    /// block.
    env fn store_u8(c, offset: u64, value: u32) {
        charge(&mut c, "store_u8", 0, 0)?;
        let byte = value.to_le_bytes()[0];
        c.data_mut().call.arena.write(offset, &[byte]).map_err(|e| trap(arena_trap("store_u8", e)))
    }

    /// Writes `value` little-endian at `offset`. Fails: traps unless the 8 bytes lie in one live
    /// block.
    env fn store_u64(c, offset: u64, value: u64) {
        charge(&mut c, "store_u64", 0, 0)?;
        c.data_mut().call.arena.write(offset, &value.to_le_bytes()).map_err(|e| trap(arena_trap("store_u64", e)))
    }

    /// The length of the call's input.
    env fn input_length(c) -> u64 {
        charge(&mut c, "input_length", 0, 0)?;
        Ok(c.data().call.input.1)
    }

    /// The handle of the input block (0 for an empty input). Owner: the host; the plugin may read
    /// and write it; `free` leaves it.
    env fn input_offset(c) -> u64 {
        charge(&mut c, "input_offset", 0, 0)?;
        Ok(c.data().call.input.0)
    }

    /// The input byte at `offset`; 0 past the end of the input (as in Extism).
    env fn input_load_u8(c, offset: u64) -> u32 {
        charge(&mut c, "input_load_u8", 0, 0)?;
        let bytes = input_bytes(c.data(), offset, 1)?;
        Ok(bytes.first().copied().map_or(0, u32::from))
    }

    /// The 8 input bytes at `offset`, little-endian. Fewer than 8 left are zero-padded; past the
    /// end of the input, 0. (Extism returns 0 whenever fewer than 8 bytes are left; both never
    /// return other data.)
    env fn input_load_u64(c, offset: u64) -> u64 {
        charge(&mut c, "input_load_u64", 0, 0)?;
        let bytes = input_bytes(c.data(), offset, 8)?;
        Ok(u64_le(bytes))
    }

    /// Sets the call's output to `len` bytes at `offset`, read when the function returns (so
    /// the plugin may write them after). `len` 0 sets an empty output, whatever `offset` is.
    /// Charges: `len` fuel.
    /// Fails: `LimitExceeded` "output bytes" (1.8 MB); traps unless the bytes lie in one live
    /// block.
    env fn output_set(c, offset: u64, len: u64) {
        // Checked before charging: a length over the cap is that error, not out of fuel.
        let state = c.data();
        if len > state.limits.output_bytes {
            return Err(trap(HostTrap::Limit(LimitExceeded {
                limit: "output bytes".into(),
                requested: len,
                max: state.limits.output_bytes,
            })));
        }
        state.call.arena.read(offset, len).map_err(|e| trap(arena_trap("output_set", e)))?;
        charge(&mut c, "output_set", len, len)?;
        c.data_mut().call.output = if len == 0 { (0, 0) } else { (offset, len) };
        Ok(())
    }

    /// Sets the call's error message to the block at `handle`; handle 0 clears it. When the
    /// function returns, a message whose block is still live fails the call (cut to 16 KiB), even
    /// with return code 0, as in Extism.
    /// Fails: traps unless `handle` is 0 or a live block.
    env fn error_set(c, handle: u64) {
        charge(&mut c, "error_set", 0, 0)?;
        let state = c.data_mut();
        if handle != 0 && !state.call.arena.is_block(handle) {
            return Err(trap(HostTrap::OutOfBounds { function: "error_set", offset: handle, len: 0 }));
        }
        state.call.error = handle;
        Ok(())
    }

    /// The handle last given to `error_set` (0 if none).
    env fn error_get(c) -> u64 {
        charge(&mut c, "error_get", 0, 0)?;
        Ok(c.data().call.error)
    }

    /// The config value of the key in the block at `key`, as a new block; 0 if the key is not
    /// set. During a script runtime's `__plugin_call`, `plugin_host.function` is the name of the
    /// script function to run. Owner of the result: the plugin.
    /// Charges: key and value length in fuel.
    /// Fails: traps unless `key` is 0 (the empty key) or a live block
    /// holding UTF-8; arena limits.
    env fn config_get(c, key: u64) -> u64 {
        lookup(&mut c, "config_get", key, |state, key| match key {
            FUNCTION_KEY => state.script_function.as_deref().map(str::as_bytes),
            _ => state.config.get(key).map(|v| v.as_bytes()),
        })
    }

    /// The var of the key in the block at `key`, as a new block; 0 if it is not set. Owner of the
    /// result: the plugin.
    /// Charges: key and value length in fuel.
    /// Fails: traps unless `key` is 0 (the empty key) or a live block
    /// holding UTF-8; arena limits.
    env fn var_get(c, key: u64) -> u64 {
        lookup(&mut c, "var_get", key, |state, key| state.vars.get(key).map(Vec::as_slice))
    }

    /// Sets the var of the key in the block at `key` to the block at `value`; `value` 0 deletes
    /// it. Vars persist when the call succeeds and roll back when it fails.
    /// Charges: key and value length in fuel.
    /// Fails: `LimitExceeded` "var bytes" (keys and values of one plugin: 1 MiB); traps unless
    /// `key` is 0 (the empty key) or a live block holding UTF-8, and `value` is 0 or a live
    /// block.
    env fn var_set(c, key: u64, value: u64) {
        let state = c.data();
        let cost = state.call.arena.length(key).saturating_add(state.call.arena.length(value));
        charge(&mut c, "var_set", cost, cost)?;
        let state = c.data_mut();
        let key = state.key("var_set", key).map_err(trap)?;
        let value = match value {
            0 => None,
            handle => Some(state.block("var_set", handle).map_err(trap)?.to_vec()),
        };
        state.set_var(key, value).map_err(trap)
    }

    /// Not available: plugin_host makes no HTTP requests (an HTTPS outcall would make every call
    /// asynchronous). Fails: always traps, saying so.
    env fn http_request(c, request: u64, body: u64) -> u64 {
        charge(&mut c, "http_request", 0, 0)?;
        let _ = (request, body);
        Err(trap(HostTrap::Unavailable("http_request")))
    }

    /// 0: no HTTP request was made.
    env fn http_status_code(c) -> i32 {
        charge(&mut c, "http_status_code", 0, 0)?;
        Ok(0)
    }

    /// 0: no HTTP response headers.
    env fn http_headers(c) -> u64 {
        charge(&mut c, "http_headers", 0, 0)?;
        Ok(0)
    }

    /// Logs the block at `handle` (0: an empty line) at level trace. Lines are kept when the
    /// caller asked for logs, up to 64 KiB per call (each line counts 16 bytes more); later lines
    /// are dropped. Charges: the block's length in fuel. Fails: traps unless `handle` is 0 or a
    /// live block.
    env fn log_trace(c, handle: u64) {
        log(&mut c, "log_trace", LogLevel::Trace, handle)
    }

    /// As `log_trace`, at level debug.
    env fn log_debug(c, handle: u64) {
        log(&mut c, "log_debug", LogLevel::Debug, handle)
    }

    /// As `log_trace`, at level info.
    env fn log_info(c, handle: u64) {
        log(&mut c, "log_info", LogLevel::Info, handle)
    }

    /// As `log_trace`, at level warn.
    env fn log_warn(c, handle: u64) {
        log(&mut c, "log_warn", LogLevel::Warn, handle)
    }

    /// As `log_trace`, at level error.
    env fn log_error(c, handle: u64) {
        log(&mut c, "log_error", LogLevel::Error, handle)
    }

    /// The lowest level kept: 0 (trace) when the caller asked for logs, `i32::MAX` (off)
    /// otherwise.
    env fn get_log_level(c) -> i32 {
        charge(&mut c, "get_log_level", 0, 0)?;
        Ok(if c.data().call.collect_logs { 0 } else { i32::MAX })
    }

    /// The caller's principal bytes, as a new block. Owner: the plugin.
    /// Charges: 29 fuel. Fails: arena limits.
    user fn ic_caller(c) -> u64 {
        charge(&mut c, "ic_caller", 29, 29)?;
        let caller = c.data().call.caller;
        new_block(&mut c, "ic_caller", Some(caller.as_slice().to_vec()))
    }

    /// The IC time of the message, in nanoseconds since the epoch.
    user fn ic_time(c) -> u64 {
        charge(&mut c, "ic_time", 0, 0)?;
        Ok(c.data().call.time_ns)
    }

    /// 32 bytes derived from the plugin, its call count, the time and the caller, as a new block:
    /// deterministic and public (anyone can compute it), so never a secret. Owner: the plugin.
    /// Charges: 32 fuel. Fails: arena limits.
    user fn ic_seed(c) -> u64 {
        charge(&mut c, "ic_seed", 32, 32)?;
        let seed = c.data().call.seed.bytes();
        new_block(&mut c, "ic_seed", Some(seed.to_vec()))
    }

    /// Writes the sha256 of the plugin's memory `[ptr, ptr + len)` to `[out, out + 32)`, natively.
    /// Charges: 13 fuel per byte (hashing costs the canister about 126 IC instructions per byte,
    /// and a fuel unit of guest code 9 to 31); a large `len` is checked against the message's
    /// instruction limit first.
    /// Fails: traps if a range is outside the plugin's memory, or the plugin exports no `memory`.
    user fn sha256(c, ptr: u32, len: u32, out: u32) {
        // Checked before charging: a range outside memory is that error, whatever its length.
        let memory = own_memory(&c, "sha256")?;
        guest_range(memory.data(&c), "sha256", ptr, len)?;
        guest_range(memory.data(&c), "sha256", out, 32)?;
        let len64 = u64::from(len);
        charge(&mut c, "sha256", len64.saturating_mul(SHA256_FUEL_PER_BYTE), len64.saturating_mul(SHA256_INSTRUCTIONS_PER_BYTE))?;
        let data = memory.data_mut(&mut c);
        let digest: [u8; 32] = Sha256::digest(guest_bytes(data, "sha256", ptr, len)?).into();
        let out_range = guest_range(data, "sha256", out, 32)?;
        if let Some(target) = data.get_mut(out_range.clone()) {
            target.copy_from_slice(&digest);
        }
        wasmi::dirty::mark(out_range.start, 32);
        Ok(())
    }

    /// Compares the plugin's memory `[a, a + len)` with `[b, b + len)` like `memcmp`: -1, 0 or 1.
    /// Charges: `len / 8` fuel. Fails: traps if a range is outside the plugin's memory, or the
    /// plugin exports no `memory`.
    user fn compare(c, a: u32, b: u32, len: u32) -> i32 {
        // Checked before charging, as in `sha256`.
        let memory = own_memory(&c, "compare")?;
        guest_range(memory.data(&c), "compare", a, len)?;
        guest_range(memory.data(&c), "compare", b, len)?;
        charge(&mut c, "compare", u64::from(len) / 8, len.into())?;
        let data = memory.data(&c);
        let ordering = guest_bytes(data, "compare", a, len)?.cmp(guest_bytes(data, "compare", b, len)?);
        Ok(ordering as i32)
    }
}

/// IC instructions the canister spends per byte hashed, rounded up (measured in the local runtime:
/// 126, hashing 64 MiB in `tests/hostile.rs`'s `sha256_bomb`).
const SHA256_INSTRUCTIONS_PER_BYTE: u64 = 130;
/// Fuel per byte hashed: the instructions at 10 per fuel unit.
const SHA256_FUEL_PER_BYTE: u64 = SHA256_INSTRUCTIONS_PER_BYTE / 10;

/// Up to `len` input bytes from `offset`: fewer if the input ends first, none past its end.
fn input_bytes(state: &HostState, offset: u64, len: u64) -> Result<&[u8], wasmi::Error> {
    let (handle, input_len) = state.call.input;
    let len = len.min(input_len.saturating_sub(offset));
    if len == 0 {
        return Ok(&[]);
    }
    // `offset < input_len`, and the input block lies in the arena.
    let start = handle.saturating_add(offset);
    state
        .call
        .arena
        .read(start, len)
        .map_err(|e| trap(arena_trap("input_load", e)))
}

/// Little-endian value of up to 8 bytes, zero-padded.
fn u64_le(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    for (to, from) in word.iter_mut().zip(bytes) {
        *to = *from;
    }
    u64::from_le_bytes(word)
}

/// `config_get` and `var_get`: charges for the key, reads it, looks it up with `find`, charges for
/// the value, then copies it into a new block (0 if absent). Nothing is copied before it is paid.
fn lookup(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    key: u64,
    find: impl for<'a> Fn(&'a HostState, &str) -> Option<&'a [u8]>,
) -> Result<u64, wasmi::Error> {
    let key_len = c.data().call.arena.length(key);
    charge(c, function, key_len, key_len)?;
    let key = c.data().key(function, key).map_err(trap)?;
    let value_len = find(c.data(), &key).map_or(0, |v| v.len() as u64);
    charge(c, function, value_len, value_len)?;
    let value = find(c.data(), &key).map(<[u8]>::to_vec);
    new_block(c, function, value)
}

/// A new block holding `value` (0 when `None`).
fn new_block(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    value: Option<Vec<u8>>,
) -> Result<u64, wasmi::Error> {
    match value {
        Some(value) => c
            .data_mut()
            .call
            .arena
            .alloc_bytes(&value)
            .map_err(|e| trap(arena_trap(function, e))),
        None => Ok(0),
    }
}

fn log(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    level: LogLevel,
    handle: u64,
) -> Result<(), wasmi::Error> {
    let len = c.data().call.arena.length(handle);
    charge(c, function, len, len)?;
    let state = c.data_mut();
    let message = state.block(function, handle).map_err(trap)?.to_vec();
    state.log(level, &message);
    Ok(())
}

/// The calling plugin's memory, for the host primitives.
fn own_memory(
    c: &Caller<'_, HostState>,
    function: &'static str,
) -> Result<wasmi::Memory, wasmi::Error> {
    c.get_export("memory")
        .and_then(wasmi::Extern::into_memory)
        .ok_or_else(|| trap(HostTrap::NoMemory(function)))
}

/// The range `[ptr, ptr + len)` of guest memory `data`, or a trap.
fn guest_range(
    data: &[u8],
    function: &'static str,
    ptr: u32,
    len: u32,
) -> Result<std::ops::Range<usize>, wasmi::Error> {
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .filter(|end| *end <= data.len());
    end.map(|end| start..end).ok_or_else(|| {
        trap(HostTrap::OutsideMemory {
            function,
            offset: ptr,
            len,
        })
    })
}

/// `len` bytes of guest memory `data` at `ptr`, or a trap.
fn guest_bytes<'a>(
    data: &'a [u8],
    function: &'static str,
    ptr: u32,
    len: u32,
) -> Result<&'a [u8], wasmi::Error> {
    let range = guest_range(data, function, ptr, len)?;
    data.get(range).ok_or_else(|| {
        trap(HostTrap::OutsideMemory {
            function,
            offset: ptr,
            len,
        })
    })
}
