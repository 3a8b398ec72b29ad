//! The IC host functions `plugin_host` offers plugins in module `extism:host/user`, wrapped for
//! Rust plugins written with `extism-pdk`.

use extism_pdk::Memory;

#[link(wasm_import_module = "extism:host/user")]
unsafe extern "C" {
    fn ic_caller() -> u64;
    fn ic_time() -> u64;
    fn ic_seed() -> u64;
}

/// The principal (raw bytes) that called `invoke`: a user, or a canister such as a DAO.
pub fn caller() -> Vec<u8> {
    // SAFETY: a host function without arguments; it returns a handle the host allocated.
    let handle = unsafe { ic_caller() };
    Memory::find(handle).map(|m| m.to_vec()).unwrap_or_default()
}

/// IC time of the call, in nanoseconds since 1970.
pub fn time_ns() -> u64 {
    // SAFETY: a host function without arguments returning a plain value.
    unsafe { ic_time() }
}

/// A 32-byte seed that differs per call. Deterministic and NOT secret: anyone can compute it from
/// public facts (plugin name, call count, time, caller). Fine for game randomness, not for keys.
pub fn seed() -> [u8; 32] {
    // SAFETY: a host function without arguments; it returns a handle of a 32-byte block.
    let handle = unsafe { ic_seed() };
    let mut seed = [0u8; 32];
    if let Some(memory) = Memory::find(handle) {
        let bytes = memory.to_vec();
        seed.copy_from_slice(&bytes[..32]);
    }
    seed
}

/// Lowercase hex of some bytes (e.g. a caller), for display.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
