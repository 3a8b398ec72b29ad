//! WASI preview 1 (`wasi_snapshot_preview1`), deterministic and sandboxed: the table of all 46
//! functions. It generates [`WASI_IMPORTS`] (what install accepts from that module, each with its
//! exact signature), [`link_wasi`] and its part of the reference in `plugins/README.md`.
//!
//! What a WASI plugin gets: stdin is the call's input; stdout and stderr become log lines at info
//! and warn (one per line, capped like logs), or stdout is the call's output (for `_start`, or
//! when the plugin's config sets `wasi.stdout` to `output`); args are the words of the config
//! value `wasi.args` and the environment the config entries `wasi.env.NAME` (both empty by
//! default); the realtime and monotonic clocks read the message's IC time (so neither goes
//! backwards, within a call or across calls); `random_get` reads a stream derived from the call's
//! public seed (deterministic: never a secret). There is no filesystem (no preopens) and no
//! socket: those functions answer the errno such a sandbox gives (`EBADF`, `ENOTDIR`, `ESPIPE`,
//! `ENOTSOCK`, `ENOTSUP`, `ENOSYS`).
//!
//! Every function charges [`HOST_CALL_FUEL`](super::HOST_CALL_FUEL) plus the bytes it moves
//! before moving them, and checks every range of the plugin's memory it reads or writes: a range
//! outside it answers `EFAULT` and nothing is written. Only `proc_exit` stops the call (success
//! for code 0, the plugin's error with that code otherwise), and a cap (the output) or the fuel
//! stops it with a typed error. What the shim writes to the plugin's memory is marked for the
//! commit like a guest store.

use std::collections::BTreeMap;

use plugin_host_api::{LimitExceeded, LogLevel};
use wasmi::Caller;

use super::{HostState, HostTrap, charge, trap};
use crate::limits::LOG_LINE_OVERHEAD;

/// A WASI errno.
pub type Errno = u32;

/// The errno values the shim answers.
pub mod errno {
    use super::Errno;

    /// No error.
    pub const SUCCESS: Errno = 0;
    /// Bad file descriptor.
    pub const BADF: Errno = 8;
    /// Bad address: a range outside the plugin's memory.
    pub const FAULT: Errno = 21;
    /// Invalid argument.
    pub const INVAL: Errno = 28;
    /// Function not supported.
    pub const NOSYS: Errno = 52;
    /// Not a directory.
    pub const NOTDIR: Errno = 54;
    /// Not a socket.
    pub const NOTSOCK: Errno = 57;
    /// Not supported.
    pub const NOTSUP: Errno = 58;
    /// Invalid seek (stdio streams are pipes).
    pub const SPIPE: Errno = 70;
}

use errno::{BADF, FAULT, INVAL, NOSYS, NOTDIR, NOTSOCK, NOTSUP, SPIPE, SUCCESS};

/// Fuel per iovec read, on top of the bytes moved.
const ENTRY_FUEL: u64 = 8;

/// Most iovecs in one `fd_read` or `fd_write` and most subscriptions in one `poll_oneoff` (POSIX's
/// `IOV_MAX`, wasi-libc's too): more answer `EINVAL`. It bounds the host's heap for the copy it
/// keeps of them.
pub const MAX_ENTRIES: u32 = 1024;

/// The config key whose words are the plugin's arguments.
pub const ARGS_KEY: &str = "wasi.args";
/// The prefix of the config keys that make the plugin's environment (`wasi.env.NAME` = value).
pub const ENV_PREFIX: &str = "wasi.env.";
/// The config key that makes stdout the call's output when set to `output`.
pub const STDOUT_KEY: &str = "wasi.stdout";

/// What the shim keeps for one call of a plugin that imports WASI.
#[derive(Debug, Default)]
pub struct WasiCall {
    /// Whether stdout is the call's output (else log lines at info).
    stdout_is_output: bool,
    /// stdout's bytes (the output), or its unfinished line.
    stdout: Vec<u8>,
    /// stderr's unfinished line.
    stderr: Vec<u8>,
    /// Input bytes read from stdin.
    stdin_read: u64,
    /// The state of the random stream.
    random: u64,
}

impl WasiCall {
    /// The state of a call of `function`, with the call's `seed`.
    pub fn new(function: &str, config: &BTreeMap<String, String>, seed: &[u8; 32]) -> Self {
        let mut word = [0u8; 8];
        for (to, from) in word.iter_mut().zip(seed) {
            *to = *from;
        }
        Self {
            stdout_is_output: function == "_start"
                || config.get(STDOUT_KEY).is_some_and(|v| v == "output"),
            random: u64::from_le_bytes(word),
            ..Self::default()
        }
    }

    /// Ends the call: logs the unfinished lines; returns stdout's bytes if they are the output.
    pub fn finish(mut self, state: &mut HostState) -> Option<Vec<u8>> {
        if !self.stderr.is_empty() {
            state.log(LogLevel::Warn, &self.stderr);
        }
        if self.stdout_is_output {
            return Some(std::mem::take(&mut self.stdout));
        }
        if !self.stdout.is_empty() {
            state.log(LogLevel::Info, &self.stdout);
        }
        None
    }

    /// The next 8 bytes of the random stream (wyrand: fast, statistically good, not secret).
    fn next_random(&mut self) -> [u8; 8] {
        self.random = self.random.wrapping_add(0xa076_1d64_78bd_642f);
        let product =
            u128::from(self.random).wrapping_mul(u128::from(self.random ^ 0xe703_7ed1_a0b4_28db));
        ((product >> 64) as u64 ^ product as u64).to_le_bytes()
    }
}

/// How a shim function ends: an errno for the plugin, or the call stops.
enum Fail {
    Errno(Errno),
    Stop(wasmi::Error),
}

impl From<wasmi::Error> for Fail {
    fn from(e: wasmi::Error) -> Self {
        Self::Stop(e)
    }
}

type Answer = Result<(), Fail>;

/// The errno of a shim function's work, or the call stops.
fn answer(result: Answer) -> Result<Errno, wasmi::Error> {
    match result {
        Ok(()) => Ok(SUCCESS),
        Err(Fail::Errno(errno)) => Ok(errno),
        Err(Fail::Stop(e)) => Err(e),
    }
}

/// Charges a function that moves nothing and answers `errno`.
fn plain(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    errno: Errno,
) -> Result<Errno, wasmi::Error> {
    charge(c, function, 0, 0)?;
    Ok(errno)
}

/// Charges a function on a file descriptor that the sandbox does not offer: `EBADF` for any fd
/// but stdio, `on_stdio` for stdio.
fn on_fd(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    fd: u32,
    on_stdio: Errno,
) -> Result<Errno, wasmi::Error> {
    plain(c, function, if fd <= 2 { on_stdio } else { BADF })
}

/// The plugin's memory (exported as `memory`), if any.
fn memory(c: &Caller<'_, HostState>) -> Option<wasmi::Memory> {
    c.get_export("memory").and_then(wasmi::Extern::into_memory)
}

/// `[ptr, ptr + len)` of a memory of `size` bytes, or `EFAULT`.
fn range(size: usize, ptr: u32, len: u64) -> Result<std::ops::Range<usize>, Fail> {
    let start = ptr as usize;
    usize::try_from(len)
        .ok()
        .and_then(|len| start.checked_add(len))
        .filter(|end| *end <= size)
        .map(|end| start..end)
        .ok_or(Fail::Errno(FAULT))
}

/// `len` bytes of `data` at `ptr`, or `EFAULT`.
fn read(data: &[u8], ptr: u32, len: u64) -> Result<&[u8], Fail> {
    data.get(range(data.len(), ptr, len)?)
        .ok_or(Fail::Errno(FAULT))
}

/// Writes every `(ptr, bytes)` to the plugin's memory, marking them for the commit, after
/// checking them all: any range outside memory answers `EFAULT` and nothing is written.
fn write(c: &mut Caller<'_, HostState>, writes: &[(u32, &[u8])]) -> Answer {
    let Some(memory) = memory(c) else {
        return match writes.iter().all(|(_, bytes)| bytes.is_empty()) {
            true => Ok(()),
            false => Err(Fail::Errno(FAULT)),
        };
    };
    let data = memory.data_mut(c);
    for (ptr, bytes) in writes {
        range(data.len(), *ptr, bytes.len() as u64)?;
    }
    for (ptr, bytes) in writes {
        let target = range(data.len(), *ptr, bytes.len() as u64)?;
        let start = target.start;
        data.get_mut(target)
            .ok_or(Fail::Errno(FAULT))?
            .copy_from_slice(bytes);
        wasmi::dirty::mark(start, bytes.len());
    }
    Ok(())
}

/// The iovecs (`(ptr, len)` pairs) at `iovs`, each checked against memory; their total length.
/// Charges the entries once their table is known to lie in memory.
fn iovecs(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    iovs: u32,
    count: u32,
) -> Result<(Vec<(u32, u32)>, u64), Fail> {
    if count > MAX_ENTRIES {
        return Err(Fail::Errno(INVAL));
    }
    let memory = memory(c).ok_or(Fail::Errno(FAULT))?;
    let table_len = u64::from(count).saturating_mul(8);
    range(memory.data(&*c).len(), iovs, table_len)?;
    let fuel = u64::from(count).saturating_mul(ENTRY_FUEL);
    charge(c, function, fuel, fuel)?;
    let data = memory.data(&*c);
    let table = read(data, iovs, table_len)?;
    let mut list = Vec::with_capacity(count as usize);
    let mut total = 0u64;
    for entry in table.chunks_exact(8) {
        let (ptr, len) = entry.split_at(4);
        let ptr = u32::from_le_bytes(ptr.try_into().map_err(|_| Fail::Errno(FAULT))?);
        let len = u32::from_le_bytes(len.try_into().map_err(|_| Fail::Errno(FAULT))?);
        range(data.len(), ptr, len.into())?;
        total = total.saturating_add(len.into());
        list.push((ptr, len));
    }
    Ok((list, total))
}

/// The plugin's arguments (config `wasi.args`, split on whitespace).
fn wasi_args(state: &HostState) -> Vec<Vec<u8>> {
    state
        .config
        .get(ARGS_KEY)
        .map(|v| {
            v.split_ascii_whitespace()
                .map(|w| w.as_bytes().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

/// The plugin's environment (config `wasi.env.NAME` = value), as `NAME=value`.
fn wasi_environ(state: &HostState) -> Vec<Vec<u8>> {
    state
        .config
        .range(ENV_PREFIX.to_owned()..)
        .take_while(|(k, _)| k.starts_with(ENV_PREFIX))
        .map(|(k, v)| {
            let name = k.get(ENV_PREFIX.len()..).unwrap_or_default();
            format!("{name}={v}").into_bytes()
        })
        .collect()
}

/// `args_sizes_get` and `environ_sizes_get`: the count and the bytes of the strings (with NULs).
fn sizes(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    strings: fn(&HostState) -> Vec<Vec<u8>>,
    count_ptr: u32,
    size_ptr: u32,
) -> Answer {
    charge(c, function, 8, 8)?;
    let strings = strings(c.data());
    let size = strings
        .iter()
        .map(|s| s.len().saturating_add(1))
        .fold(0usize, usize::saturating_add);
    let count = u32::try_from(strings.len()).map_err(|_| Fail::Errno(INVAL))?;
    let size = u32::try_from(size).map_err(|_| Fail::Errno(INVAL))?;
    write(
        c,
        &[
            (count_ptr, &count.to_le_bytes()),
            (size_ptr, &size.to_le_bytes()),
        ],
    )
}

/// `args_get` and `environ_get`: the pointers at `ptrs`, the NUL-terminated strings at `buf`.
fn strings_get(
    c: &mut Caller<'_, HostState>,
    function: &'static str,
    strings: fn(&HostState) -> Vec<Vec<u8>>,
    ptrs: u32,
    buf: u32,
) -> Answer {
    let strings = strings(c.data());
    let bytes = strings
        .iter()
        .map(|s| s.len().saturating_add(5))
        .fold(0usize, usize::saturating_add);
    charge(c, function, bytes as u64, bytes as u64)?;
    let mut table = Vec::new();
    let mut text = Vec::new();
    for s in &strings {
        let at = u32::try_from(text.len())
            .ok()
            .and_then(|off| buf.checked_add(off))
            .ok_or(Fail::Errno(FAULT))?;
        table.extend_from_slice(&at.to_le_bytes());
        text.extend_from_slice(s);
        text.push(0);
    }
    write(c, &[(ptrs, &table), (buf, &text)])
}

/// The time of `clock` (realtime and monotonic: the message's IC time), or `EINVAL`.
fn clock(state: &HostState, clock: u32) -> Result<u64, Fail> {
    match clock {
        0 | 1 => Ok(state.call.time_ns),
        _ => Err(Fail::Errno(INVAL)),
    }
}

/// `fd_write` to stdout (1) or stderr (2).
fn fd_write(
    c: &mut Caller<'_, HostState>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    nwritten: u32,
) -> Answer {
    charge(c, "fd_write", 0, 0)?;
    if !matches!(fd, 1 | 2) {
        return Err(Fail::Errno(BADF));
    }
    let (list, total) = iovecs(c, "fd_write", iovs, iovs_len)?;
    let written = u32::try_from(total).map_err(|_| Fail::Errno(INVAL))?;
    write(c, &[(nwritten, &[0; 4])])?;
    charge(c, "fd_write", total, total)?;
    let memory = memory(c).ok_or(Fail::Errno(FAULT))?;
    let (data, state) = memory.data_and_store_mut(&mut *c);
    for (ptr, len) in list {
        let bytes = read(data, ptr, len.into())?;
        stream(state, fd, bytes).map_err(|t| Fail::Stop(trap(t)))?;
    }
    write(c, &[(nwritten, &written.to_le_bytes())])
}

/// Bytes written to stdout or stderr: the output (within its cap), or log lines.
fn stream(state: &mut HostState, fd: u32, mut bytes: &[u8]) -> Result<(), HostTrap> {
    let max_output = state.limits.output_bytes;
    // A line longer than the log cap could never be kept: it is cut to what fits.
    let max_line = usize::try_from(state.limits.log_bytes.saturating_sub(LOG_LINE_OVERHEAD))
        .unwrap_or(usize::MAX);
    let collect = state.call.collect_logs;
    let Some(wasi) = state.call.wasi.as_mut() else {
        return Ok(());
    };
    if fd == 1 && wasi.stdout_is_output {
        let total = (wasi.stdout.len() as u64).saturating_add(bytes.len() as u64);
        if total > max_output {
            return Err(HostTrap::Limit(LimitExceeded {
                limit: "output bytes".into(),
                requested: total,
                max: max_output,
            }));
        }
        wasi.stdout.extend_from_slice(bytes);
        return Ok(());
    }
    if !collect {
        return Ok(());
    }
    let level = if fd == 1 {
        LogLevel::Info
    } else {
        LogLevel::Warn
    };
    loop {
        let newline = bytes.iter().position(|b| *b == b'\n');
        let (part, rest) = match newline {
            Some(at) => (
                bytes.get(..at).unwrap_or_default(),
                bytes.get(at.saturating_add(1)..).unwrap_or_default(),
            ),
            None => (bytes, &[][..]),
        };
        let Some(wasi) = state.call.wasi.as_mut() else {
            return Ok(());
        };
        let line = if fd == 1 {
            &mut wasi.stdout
        } else {
            &mut wasi.stderr
        };
        let room = max_line.saturating_sub(line.len());
        line.extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        if newline.is_none() {
            return Ok(());
        }
        let line = std::mem::take(line);
        state.log(level, &line);
        bytes = rest;
    }
}

/// `fd_read` from stdin: the call's input.
fn fd_read(c: &mut Caller<'_, HostState>, fd: u32, iovs: u32, iovs_len: u32, nread: u32) -> Answer {
    charge(c, "fd_read", 0, 0)?;
    if fd != 0 {
        return Err(Fail::Errno(BADF));
    }
    let (list, total) = iovecs(c, "fd_read", iovs, iovs_len)?;
    write(c, &[(nread, &[0; 4])])?;
    let state = c.data();
    let (handle, input_len) = state.call.input;
    let read_so_far = state.call.wasi.as_ref().map_or(0, |w| w.stdin_read);
    let left = input_len.saturating_sub(read_so_far);
    let count = total.min(left);
    charge(c, "fd_read", count, count)?;
    let memory = memory(c).ok_or(Fail::Errno(FAULT))?;
    let (data, state) = memory.data_and_store_mut(&mut *c);
    let mut at = handle.saturating_add(read_so_far);
    let mut done = 0u64;
    for (ptr, len) in list {
        let n = u64::from(len).min(count.saturating_sub(done));
        if n == 0 {
            break;
        }
        let bytes = state
            .call
            .arena
            .read(at, n)
            .map_err(|_| Fail::Errno(FAULT))?;
        let target = range(data.len(), ptr, n)?;
        let start = target.start;
        data.get_mut(target)
            .ok_or(Fail::Errno(FAULT))?
            .copy_from_slice(bytes);
        wasmi::dirty::mark(start, bytes.len());
        at = at.saturating_add(n);
        done = done.saturating_add(n);
    }
    if let Some(wasi) = state.call.wasi.as_mut() {
        wasi.stdin_read = wasi.stdin_read.saturating_add(done);
    }
    // `done` is at most the input's length, which lies in the arena (64 MiB).
    let done = u32::try_from(done).map_err(|_| Fail::Errno(INVAL))?;
    write(c, &[(nread, &done.to_le_bytes())])
}

/// `fd_fdstat_get` of stdio: a character device, readable (0) or writable (1, 2).
fn fd_fdstat_get(c: &mut Caller<'_, HostState>, fd: u32, buf: u32) -> Answer {
    charge(c, "fd_fdstat_get", 24, 24)?;
    const CHARACTER_DEVICE: u8 = 2;
    const FD_READ: u64 = 1 << 1;
    const FD_WRITE: u64 = 1 << 6;
    const POLL_FD_READWRITE: u64 = 1 << 27;
    let rights = match fd {
        0 => FD_READ | POLL_FD_READWRITE,
        1 | 2 => FD_WRITE | POLL_FD_READWRITE,
        _ => return Err(Fail::Errno(BADF)),
    };
    let mut stat = [0u8; 24];
    stat[0] = CHARACTER_DEVICE;
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    write(c, &[(buf, &stat)])
}

/// `poll_oneoff`: stdio is always ready, clocks fire at once (nothing sleeps).
fn poll_oneoff(
    c: &mut Caller<'_, HostState>,
    subs: u32,
    events: u32,
    count: u32,
    nevents: u32,
) -> Answer {
    const SUBSCRIPTION: u64 = 48;
    const EVENT: usize = 32;
    /// Reading a subscription and writing its event.
    const FUEL: u64 = 88;
    charge(c, "poll_oneoff", 0, 0)?;
    if count == 0 || count > MAX_ENTRIES {
        return Err(Fail::Errno(INVAL));
    }
    let memory = memory(c).ok_or(Fail::Errno(FAULT))?;
    let size = memory.data(&*c).len();
    range(size, subs, u64::from(count).saturating_mul(SUBSCRIPTION))?;
    range(size, events, u64::from(count).saturating_mul(EVENT as u64))?;
    // Checked before charging: ranges outside memory are that error, whatever their length.
    let fuel = u64::from(count).saturating_mul(FUEL);
    charge(c, "poll_oneoff", fuel, fuel)?;
    let data = memory.data(&*c);
    let table = read(data, subs, u64::from(count).saturating_mul(SUBSCRIPTION))?;
    let state = c.data();
    let input_left = state
        .call
        .input
        .1
        .saturating_sub(state.call.wasi.as_ref().map_or(0, |w| w.stdin_read));
    let mut out = Vec::with_capacity((count as usize).saturating_mul(EVENT));
    for sub in table.chunks_exact(SUBSCRIPTION as usize) {
        let sub: [u8; SUBSCRIPTION as usize] = sub.try_into().map_err(|_| Fail::Errno(FAULT))?;
        let mut event = [0u8; EVENT];
        event[..8].copy_from_slice(&sub[..8]);
        let tag = sub[8];
        let fd = u32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
        let (error, nbytes, flags): (u16, u64, u16) = match (tag, fd) {
            (0, _) => (0, 0, 0),
            (1, 0) => (0, input_left, u16::from(input_left == 0)),
            (2, 1 | 2) => (0, 0, 0),
            (1 | 2, _) => (BADF as u16, 0, 0),
            _ => return Err(Fail::Errno(INVAL)),
        };
        event[8..10].copy_from_slice(&error.to_le_bytes());
        event[10] = tag;
        event[16..24].copy_from_slice(&nbytes.to_le_bytes());
        event[24..26].copy_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&event);
    }
    write(c, &[(events, &out), (nevents, &count.to_le_bytes())])
}

/// `random_get`: `len` bytes of the call's random stream at `buf`.
fn random_get(c: &mut Caller<'_, HostState>, buf: u32, len: u32) -> Answer {
    charge(c, "random_get", 0, 0)?;
    let memory = memory(c).ok_or(Fail::Errno(if len == 0 { SUCCESS } else { FAULT }))?;
    range(memory.data(&*c).len(), buf, len.into())?;
    charge(c, "random_get", len.into(), len.into())?;
    let (data, state) = memory.data_and_store_mut(&mut *c);
    let target = range(data.len(), buf, len.into())?;
    let start = target.start;
    let bytes = data.get_mut(target).ok_or(Fail::Errno(FAULT))?;
    let Some(wasi) = state.call.wasi.as_mut() else {
        return Err(Fail::Errno(NOSYS));
    };
    for chunk in bytes.chunks_mut(8) {
        let word = wasi.next_random();
        chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or_default());
    }
    wasmi::dirty::mark(start, len as usize);
    Ok(())
}

host_functions! {
    imports: WASI_IMPORTS, link: link_wasi;

    /// Writes the argument pointers at `argv` and the NUL-terminated arguments at `argv_buf`.
    /// Arguments: the words of the config value `wasi.args` (none by default).
    /// Charges: the bytes written. Answers: `EFAULT` if a range is outside memory.
    wasi fn args_get(c, argv: u32, argv_buf: u32) -> u32 {
        answer(strings_get(&mut c, "args_get", wasi_args, argv, argv_buf))
    }

    /// Writes the number of arguments at `argc` and the bytes they need (NULs included) at
    /// `argv_buf_size`. Answers: `EFAULT`.
    wasi fn args_sizes_get(c, argc: u32, argv_buf_size: u32) -> u32 {
        answer(sizes(&mut c, "args_sizes_get", wasi_args, argc, argv_buf_size))
    }

    /// Writes the environment's pointers at `environ` and its NUL-terminated `NAME=value` strings
    /// at `environ_buf`: one per config entry `wasi.env.NAME` (none by default).
    /// Charges: the bytes written. Answers: `EFAULT`.
    wasi fn environ_get(c, environ: u32, environ_buf: u32) -> u32 {
        answer(strings_get(&mut c, "environ_get", wasi_environ, environ, environ_buf))
    }

    /// Writes the number of environment strings and the bytes they need. Answers: `EFAULT`.
    wasi fn environ_sizes_get(c, environc: u32, environ_buf_size: u32) -> u32 {
        answer(sizes(&mut c, "environ_sizes_get", wasi_environ, environc, environ_buf_size))
    }

    /// Writes the resolution of `id` (0 realtime, 1 monotonic: 1 ns) at `resolution`.
    /// Answers: `EINVAL` for the CPU-time clocks and unknown ids, `EFAULT`.
    wasi fn clock_res_get(c, id: u32, resolution: u32) -> u32 {
        answer((|| {
            charge(&mut c, "clock_res_get", 8, 8)?;
            clock(c.data(), id)?;
            write(&mut c, &[(resolution, &1u64.to_le_bytes())])
        })())
    }

    /// Writes the time of clock `id` in ns at `time`: realtime and monotonic are both the
    /// message's IC time (constant within a call, never going backwards across calls).
    /// Answers: `EINVAL` for the CPU-time clocks and unknown ids, `EFAULT`.
    wasi fn clock_time_get(c, id: u32, precision: u64, time: u32) -> u32 {
        let _ = precision;
        answer((|| {
            charge(&mut c, "clock_time_get", 8, 8)?;
            let now = clock(c.data(), id)?;
            write(&mut c, &[(time, &now.to_le_bytes())])
        })())
    }

    /// Answers `ESPIPE` on stdio, `EBADF` on any other fd.
    wasi fn fd_advise(c, fd: u32, offset: u64, len: u64, advice: u32) -> u32 {
        let _ = (offset, len, advice);
        on_fd(&mut c, "fd_advise", fd, SPIPE)
    }

    /// Answers `ESPIPE` on stdio, `EBADF` on any other fd.
    wasi fn fd_allocate(c, fd: u32, offset: u64, len: u64) -> u32 {
        let _ = (offset, len);
        on_fd(&mut c, "fd_allocate", fd, SPIPE)
    }

    /// Answers `ENOTSUP` on stdio (it stays open), `EBADF` on any other fd.
    wasi fn fd_close(c, fd: u32) -> u32 {
        on_fd(&mut c, "fd_close", fd, NOTSUP)
    }

    /// Answers `EINVAL` on stdio (nothing to sync), `EBADF` on any other fd.
    wasi fn fd_datasync(c, fd: u32) -> u32 {
        on_fd(&mut c, "fd_datasync", fd, INVAL)
    }

    /// Writes the fdstat (24 bytes) of stdio at `stat`: a character device; fd 0 readable, 1 and
    /// 2 writable. Answers: `EBADF` for any other fd, `EFAULT`.
    wasi fn fd_fdstat_get(c, fd: u32, stat: u32) -> u32 {
        answer(fd_fdstat_get(&mut c, fd, stat))
    }

    /// Accepts any flags on stdio (appending and not blocking are what it does anyway).
    /// Answers: `EINVAL` for unknown flag bits, `EBADF` for any other fd.
    wasi fn fd_fdstat_set_flags(c, fd: u32, flags: u32) -> u32 {
        let errno = match fd {
            0..=2 if flags <= 0x1f => SUCCESS,
            0..=2 => INVAL,
            _ => BADF,
        };
        plain(&mut c, "fd_fdstat_set_flags", errno)
    }

    /// Answers `ENOTSUP` on stdio (its rights are fixed), `EBADF` on any other fd.
    wasi fn fd_fdstat_set_rights(c, fd: u32, rights_base: u64, rights_inheriting: u64) -> u32 {
        let _ = (rights_base, rights_inheriting);
        on_fd(&mut c, "fd_fdstat_set_rights", fd, NOTSUP)
    }

    /// Answers `ENOTSUP` on stdio, `EBADF` on any other fd (there are no files).
    wasi fn fd_filestat_get(c, fd: u32, stat: u32) -> u32 {
        let _ = stat;
        on_fd(&mut c, "fd_filestat_get", fd, NOTSUP)
    }

    /// Answers `EINVAL` on stdio, `EBADF` on any other fd.
    wasi fn fd_filestat_set_size(c, fd: u32, size: u64) -> u32 {
        let _ = size;
        on_fd(&mut c, "fd_filestat_set_size", fd, INVAL)
    }

    /// Answers `ENOTSUP` on stdio, `EBADF` on any other fd.
    wasi fn fd_filestat_set_times(c, fd: u32, atim: u64, mtim: u64, fst_flags: u32) -> u32 {
        let _ = (atim, mtim, fst_flags);
        on_fd(&mut c, "fd_filestat_set_times", fd, NOTSUP)
    }

    /// Answers `ESPIPE` on stdio, `EBADF` on any other fd.
    wasi fn fd_pread(c, fd: u32, iovs: u32, iovs_len: u32, offset: u64, nread: u32) -> u32 {
        let _ = (iovs, iovs_len, offset, nread);
        on_fd(&mut c, "fd_pread", fd, SPIPE)
    }

    /// Answers `EBADF` for every fd: there are no preopened directories.
    wasi fn fd_prestat_get(c, fd: u32, prestat: u32) -> u32 {
        let _ = (fd, prestat);
        plain(&mut c, "fd_prestat_get", BADF)
    }

    /// Answers `EBADF` for every fd: there are no preopened directories.
    wasi fn fd_prestat_dir_name(c, fd: u32, path: u32, path_len: u32) -> u32 {
        let _ = (fd, path, path_len);
        plain(&mut c, "fd_prestat_dir_name", BADF)
    }

    /// Answers `ESPIPE` on stdio, `EBADF` on any other fd.
    wasi fn fd_pwrite(c, fd: u32, iovs: u32, iovs_len: u32, offset: u64, nwritten: u32) -> u32 {
        let _ = (iovs, iovs_len, offset, nwritten);
        on_fd(&mut c, "fd_pwrite", fd, SPIPE)
    }

    /// Reads the call's input from fd 0 into the iovecs (`iovs_len` pairs of pointer and length
    /// at `iovs`) and writes the bytes read at `nread` (0 at the end of the input).
    /// Charges: 8 per iovec and the bytes read. Answers: `EBADF` for any other fd, `EINVAL` for
    /// more than 1,024 iovecs, `EFAULT` if an iovec or `nread` is outside memory (then nothing is
    /// read).
    wasi fn fd_read(c, fd: u32, iovs: u32, iovs_len: u32, nread: u32) -> u32 {
        answer(fd_read(&mut c, fd, iovs, iovs_len, nread))
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn fd_readdir(c, fd: u32, buf: u32, buf_len: u32, cookie: u64, bufused: u32) -> u32 {
        let _ = (buf, buf_len, cookie, bufused);
        on_fd(&mut c, "fd_readdir", fd, NOTDIR)
    }

    /// Answers `ENOTSUP` on stdio, `EBADF` on any other fd.
    wasi fn fd_renumber(c, fd: u32, to: u32) -> u32 {
        let _ = to;
        on_fd(&mut c, "fd_renumber", fd, NOTSUP)
    }

    /// Answers `ESPIPE` on stdio, `EBADF` on any other fd.
    wasi fn fd_seek(c, fd: u32, offset: u64, whence: u32, newoffset: u32) -> u32 {
        let _ = (offset, whence, newoffset);
        on_fd(&mut c, "fd_seek", fd, SPIPE)
    }

    /// Answers `EINVAL` on stdio (nothing to sync), `EBADF` on any other fd.
    wasi fn fd_sync(c, fd: u32) -> u32 {
        on_fd(&mut c, "fd_sync", fd, INVAL)
    }

    /// Answers `ESPIPE` on stdio, `EBADF` on any other fd.
    wasi fn fd_tell(c, fd: u32, offset: u32) -> u32 {
        let _ = offset;
        on_fd(&mut c, "fd_tell", fd, SPIPE)
    }

    /// Writes the iovecs to fd 1 (stdout) or 2 (stderr) and the bytes written at `nwritten`.
    /// stderr and, unless it is the call's output, stdout become log lines (warn and info), one
    /// per line, kept within the call's log cap like `log_*` (an unfinished line is logged when
    /// the call ends). Charges: 8 per iovec and the bytes written.
    /// Fails: `LimitExceeded` "output bytes" when stdout is the output and passes 1.8 MB.
    /// Answers: `EBADF` for any other fd, `EINVAL` for more than 1,024 iovecs or lengths adding up
    /// past 4 GiB, `EFAULT` if an iovec or `nwritten` is outside memory (then nothing is written).
    wasi fn fd_write(c, fd: u32, iovs: u32, iovs_len: u32, nwritten: u32) -> u32 {
        answer(fd_write(&mut c, fd, iovs, iovs_len, nwritten))
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd (there is no filesystem).
    wasi fn path_create_directory(c, fd: u32, path: u32, path_len: u32) -> u32 {
        let _ = (path, path_len);
        on_fd(&mut c, "path_create_directory", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_filestat_get(c, fd: u32, flags: u32, path: u32, path_len: u32, stat: u32) -> u32 {
        let _ = (flags, path, path_len, stat);
        on_fd(&mut c, "path_filestat_get", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_filestat_set_times(c, fd: u32, flags: u32, path: u32, path_len: u32, atim: u64, mtim: u64, fst_flags: u32) -> u32 {
        let _ = (flags, path, path_len, atim, mtim, fst_flags);
        on_fd(&mut c, "path_filestat_set_times", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_link(c, old_fd: u32, old_flags: u32, old_path: u32, old_path_len: u32, new_fd: u32, new_path: u32, new_path_len: u32) -> u32 {
        let _ = (old_flags, old_path, old_path_len, new_fd, new_path, new_path_len);
        on_fd(&mut c, "path_link", old_fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_open(c, fd: u32, dirflags: u32, path: u32, path_len: u32, oflags: u32, fs_rights_base: u64, fs_rights_inheriting: u64, fdflags: u32, opened_fd: u32) -> u32 {
        let _ = (dirflags, path, path_len, oflags, fs_rights_base, fs_rights_inheriting, fdflags, opened_fd);
        on_fd(&mut c, "path_open", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_readlink(c, fd: u32, path: u32, path_len: u32, buf: u32, buf_len: u32, bufused: u32) -> u32 {
        let _ = (path, path_len, buf, buf_len, bufused);
        on_fd(&mut c, "path_readlink", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_remove_directory(c, fd: u32, path: u32, path_len: u32) -> u32 {
        let _ = (path, path_len);
        on_fd(&mut c, "path_remove_directory", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_rename(c, fd: u32, old_path: u32, old_path_len: u32, new_fd: u32, new_path: u32, new_path_len: u32) -> u32 {
        let _ = (old_path, old_path_len, new_fd, new_path, new_path_len);
        on_fd(&mut c, "path_rename", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_symlink(c, old_path: u32, old_path_len: u32, fd: u32, new_path: u32, new_path_len: u32) -> u32 {
        let _ = (old_path, old_path_len, new_path, new_path_len);
        on_fd(&mut c, "path_symlink", fd, NOTDIR)
    }

    /// Answers `ENOTDIR` on stdio, `EBADF` on any other fd.
    wasi fn path_unlink_file(c, fd: u32, path: u32, path_len: u32) -> u32 {
        let _ = (path, path_len);
        on_fd(&mut c, "path_unlink_file", fd, NOTDIR)
    }

    /// Reads `nsubscriptions` subscriptions (48 bytes each) at `subscriptions` and writes one
    /// event (32 bytes) for each at `events`, and their number at `nevents`: clocks fire at
    /// once (nothing sleeps); stdin is readable (the input bytes left; hangup at its end),
    /// stdout and stderr writable; other fds get an event with `EBADF`.
    /// Charges: 88 per subscription. Answers: `EINVAL` for none, more than 1,024 or an unknown
    /// kind, `EFAULT`.
    wasi fn poll_oneoff(c, subscriptions: u32, events: u32, nsubscriptions: u32, nevents: u32) -> u32 {
        answer(poll_oneoff(&mut c, subscriptions, events, nsubscriptions, nevents))
    }

    /// Ends the call: code 0 is success (with the output and logs written so far), any other
    /// code the plugin's error with that code (`PluginError`, its message "exit code N" unless
    /// the plugin set one). In a start function or initialiser, a non-zero code fails install.
    wasi fn proc_exit(c, code: u32) {
        charge(&mut c, "proc_exit", 0, 0)?;
        Err(trap(HostTrap::Exit { code: code as i32 }))
    }

    /// Answers `ENOSYS`: there are no signals.
    wasi fn proc_raise(c, signal: u32) -> u32 {
        let _ = signal;
        plain(&mut c, "proc_raise", NOSYS)
    }

    /// Returns at once (there is one thread).
    wasi fn sched_yield(c) -> u32 {
        plain(&mut c, "sched_yield", SUCCESS)
    }

    /// Fills `[buf, buf + buf_len)` with the call's random stream: derived from the call's
    /// public seed (like `ic_seed`), deterministic and never a secret; later calls of the
    /// function in the same call continue the stream. Charges: `buf_len`. Answers: `EFAULT` if
    /// the range is outside memory (then nothing is charged for the bytes or written).
    wasi fn random_get(c, buf: u32, buf_len: u32) -> u32 {
        answer(random_get(&mut c, buf, buf_len))
    }

    /// Answers `ENOTSOCK` on stdio, `EBADF` on any other fd (there are no sockets).
    wasi fn sock_accept(c, fd: u32, flags: u32, accepted_fd: u32) -> u32 {
        let _ = (flags, accepted_fd);
        on_fd(&mut c, "sock_accept", fd, NOTSOCK)
    }

    /// Answers `ENOTSOCK` on stdio, `EBADF` on any other fd.
    wasi fn sock_recv(c, fd: u32, ri_data: u32, ri_data_len: u32, ri_flags: u32, ro_datalen: u32, ro_flags: u32) -> u32 {
        let _ = (ri_data, ri_data_len, ri_flags, ro_datalen, ro_flags);
        on_fd(&mut c, "sock_recv", fd, NOTSOCK)
    }

    /// Answers `ENOTSOCK` on stdio, `EBADF` on any other fd.
    wasi fn sock_send(c, fd: u32, si_data: u32, si_data_len: u32, si_flags: u32, so_datalen: u32) -> u32 {
        let _ = (si_data, si_data_len, si_flags, so_datalen);
        on_fd(&mut c, "sock_send", fd, NOTSOCK)
    }

    /// Answers `ENOTSOCK` on stdio, `EBADF` on any other fd.
    wasi fn sock_shutdown(c, fd: u32, how: u32) -> u32 {
        let _ = how;
        on_fd(&mut c, "sock_shutdown", fd, NOTSOCK)
    }
}
