//! Saving a canister to a directory and loading it back, in another process if need be.
//!
//! Layout of the state directory (format version 1):
//!
//! ```text
//! module.wasm    the module as installed (gunzipped)
//! heap.bin       the wasm linear memory, raw (its length is a multiple of 64 KiB)
//! stable.bin     "ICLRSTB1" | size in 64 KiB pages: u64 LE | page count: u64 LE
//!                | count x (page index: u64 LE | 4096 bytes)      (only written 4 KiB pages)
//! canister.txt   one "key value" per line, written last:
//!                  ic-local-runtime-state 1
//!                  time <u64 ns>            global_timer <u64 ns>     canister_version <u64>
//!                  cycles <u128>            (absent in older states: read as CYCLE_BALANCE)
//!                  certified_data <hex|->   controller <hex|->  (one line per controller)
//!                  heap_bytes <u64>         stable_pages <u64>
//!                  stable_memory_limit <u64 bytes>  (only when set: absent means no cap)
//!                  global <hex export name> <i32|i64|f32|f64|v128> <value: decimal, or hex bits>
//! ```
//!
//! A state directory saved before the runtime kept a cycle balance has no `cycles` line; its
//! canister had the fixed [`crate::CYCLE_BALANCE`], and loads with that balance.
//!
//! Each file is written to `<name>.tmp` and renamed into place; `canister.txt` goes last and its
//! sizes are checked against the other files on load, so a torn save is detected, not loaded.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::canister::{CYCLE_BALANCE, Canister, GlobalValue, Heap, Runtime};
use crate::error::LoadError;
use crate::stable::{PAGE, StableMemory};
use crate::system_api::SystemState;

const MAGIC_STABLE: &[u8; 8] = b"ICLRSTB1";
const HEADER: &str = "ic-local-runtime-state 1";

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return Some(Vec::new());
    }
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes `bytes` to `dir/name` atomically (a temporary file synced, then renamed), unless the
/// file holds exactly these bytes already: most messages leave the module and often stable
/// memory as they were, and comparing costs a read, where writing costs a write and a sync.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(name);
    let unchanged = fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
        && fs::read(&path).is_ok_and(|old| old == bytes);
    if unchanged {
        return Ok(());
    }
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

impl Canister {
    /// Saves everything the canister is (module, heap memory and globals, stable memory and its
    /// limit, time, timer, certified data, version, cycle balance, controllers) under `dir`,
    /// creating it if needed.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        write_file(dir, "module.wasm", &self.code.wasm)?;
        write_file(dir, "heap.bin", &self.heap.memory)?;
        let mut stable = Vec::with_capacity(24 + self.stable.pages.len() * (8 + PAGE as usize));
        stable.extend_from_slice(MAGIC_STABLE);
        stable.extend_from_slice(&self.stable.size.to_le_bytes());
        stable.extend_from_slice(&(self.stable.pages.len() as u64).to_le_bytes());
        for (index, page) in &self.stable.pages {
            stable.extend_from_slice(&index.to_le_bytes());
            stable.extend_from_slice(&page[..]);
        }
        write_file(dir, "stable.bin", &stable)?;
        let s = &self.system;
        let mut text = format!(
            "{HEADER}\ntime {}\nglobal_timer {}\ncanister_version {}\ncycles {}\ncertified_data {}\n",
            s.time,
            s.global_timer,
            s.canister_version,
            s.cycles,
            hex(&s.certified_data)
        );
        for c in &s.controllers {
            text.push_str(&format!("controller {}\n", hex(c)));
        }
        text.push_str(&format!(
            "heap_bytes {}\nstable_pages {}\n",
            self.heap.memory.len(),
            self.stable.size
        ));
        if let Some(limit) = s.stable_memory_limit {
            text.push_str(&format!("stable_memory_limit {limit}\n"));
        }
        for (name, value) in &self.heap.globals {
            let (ty, v) = match value {
                GlobalValue::I32(x) => ("i32", x.to_string()),
                GlobalValue::I64(x) => ("i64", x.to_string()),
                GlobalValue::F32(x) => ("f32", format!("{x:08x}")),
                GlobalValue::F64(x) => ("f64", format!("{x:016x}")),
                GlobalValue::V128(x) => ("v128", format!("{x:032x}")),
            };
            text.push_str(&format!("global {} {ty} {v}\n", hex(name.as_bytes())));
        }
        write_file(dir, "canister.txt", text.as_bytes())
    }

    /// Loads a canister saved by [`Canister::save`].
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        Self::load_on(&Runtime::new()?, dir)
    }

    /// [`Canister::load`] on a shared [`Runtime`], which compiles each module once.
    pub fn load_on(runtime: &Runtime, dir: &Path) -> Result<Self, LoadError> {
        let bad = |file: &'static str, reason: String| LoadError::Format { file, reason };
        let text = fs::read_to_string(dir.join("canister.txt"))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(bad("canister.txt", format!("first line is not `{HEADER}`")));
        }
        let mut system = SystemState {
            cycles: CYCLE_BALANCE,
            ..SystemState::default()
        };
        let mut heap_bytes = None;
        let mut stable_pages = None;
        let mut globals = Vec::new();
        for line in lines {
            let mut words = line.split(' ');
            let key = words.next().unwrap_or_default();
            let rest: Vec<&str> = words.collect();
            let num = |i: usize| -> Result<u64, LoadError> {
                rest.get(i)
                    .and_then(|w| w.parse().ok())
                    .ok_or_else(|| bad("canister.txt", format!("bad number in `{line}`")))
            };
            let bytes = |i: usize| -> Result<Vec<u8>, LoadError> {
                rest.get(i)
                    .and_then(|w| unhex(w))
                    .ok_or_else(|| bad("canister.txt", format!("bad hex in `{line}`")))
            };
            match key {
                "time" => system.time = num(0)?,
                "global_timer" => system.global_timer = num(0)?,
                "canister_version" => system.canister_version = num(0)?,
                "cycles" => {
                    system.cycles = rest
                        .first()
                        .and_then(|w| w.parse().ok())
                        .ok_or_else(|| bad("canister.txt", format!("bad number in `{line}`")))?;
                }
                "certified_data" => system.certified_data = bytes(0)?,
                "controller" => system.controllers.push(bytes(0)?),
                "heap_bytes" => heap_bytes = Some(num(0)?),
                "stable_pages" => stable_pages = Some(num(0)?),
                "stable_memory_limit" => system.stable_memory_limit = Some(num(0)?),
                "global" => {
                    let name = String::from_utf8(bytes(0)?)
                        .map_err(|_| bad("canister.txt", format!("bad name in `{line}`")))?;
                    let value = parse_global(rest.get(1).copied(), rest.get(2).copied())
                        .ok_or_else(|| bad("canister.txt", format!("bad global in `{line}`")))?;
                    globals.push((name, value));
                }
                "" => {}
                other => return Err(bad("canister.txt", format!("unknown key `{other}`"))),
            }
        }
        let memory = fs::read(dir.join("heap.bin"))?;
        if heap_bytes != Some(memory.len() as u64) {
            return Err(bad(
                "heap.bin",
                format!("{} bytes, expected {heap_bytes:?}", memory.len()),
            ));
        }
        let stable = read_stable(&fs::read(dir.join("stable.bin"))?)
            .ok_or_else(|| bad("stable.bin", "truncated or bad magic".into()))?;
        if stable_pages != Some(stable.size) {
            return Err(bad(
                "stable.bin",
                format!("{} pages, expected {stable_pages:?}", stable.size),
            ));
        }
        let wasm = fs::read(dir.join("module.wasm"))?;
        let runtime = runtime.clone();
        let code = runtime.compile(&wasm)?;
        let saved: Vec<&str> = globals.iter().map(|(n, _)| n.as_str()).collect();
        if saved != code.global_names() {
            return Err(bad(
                "canister.txt",
                "globals do not match the module's".into(),
            ));
        }
        Ok(Canister {
            runtime,
            code,
            heap: Heap { memory, globals },
            warm: None,
            stable,
            system,
        })
    }
}

fn parse_global(ty: Option<&str>, v: Option<&str>) -> Option<GlobalValue> {
    let v = v?;
    Some(match ty? {
        "i32" => GlobalValue::I32(v.parse().ok()?),
        "i64" => GlobalValue::I64(v.parse().ok()?),
        "f32" => GlobalValue::F32(u32::from_str_radix(v, 16).ok()?),
        "f64" => GlobalValue::F64(u64::from_str_radix(v, 16).ok()?),
        "v128" => GlobalValue::V128(u128::from_str_radix(v, 16).ok()?),
        _ => return None,
    })
}

fn read_stable(bytes: &[u8]) -> Option<StableMemory> {
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    if bytes.get(..8)? != MAGIC_STABLE {
        return None;
    }
    let mut stable = StableMemory {
        size: u64_at(8)?,
        ..StableMemory::default()
    };
    let count = u64_at(16)?;
    let mut at = 24;
    for _ in 0..count {
        let index = u64_at(at)?;
        let page: [u8; PAGE as usize] =
            bytes.get(at + 8..at + 8 + PAGE as usize)?.try_into().ok()?;
        stable.pages.insert(index, Box::new(page));
        at += 8 + PAGE as usize;
    }
    (at == bytes.len()).then_some(stable)
}
