//! The host functions `plugin_host` offers plugins in module `extism:host/user`, wrapped for Rust
//! plugins written with `extism-pdk`: the IC's caller, time and a seed, and primitives the host
//! runs natively on the plugin's own memory (SHA-256, byte comparison).

use extism_pdk::Memory;

#[link(wasm_import_module = "extism:host/user")]
unsafe extern "C" {
    fn ic_caller() -> u64;
    fn ic_time() -> u64;
    fn ic_seed() -> u64;
    #[link_name = "sha256"]
    fn host_sha256(ptr: *const u8, len: usize, out: *mut u8);
    #[link_name = "compare"]
    fn host_compare(a: *const u8, b: *const u8, len: usize) -> i32;
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

/// SHA-256 of `data`, computed by the host natively (about 40 times cheaper than hashing in the
/// plugin; benchmark P1b).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    // SAFETY: the host reads `data.len()` bytes at `data` and writes 32 bytes at `digest`, both in
    // this plugin's memory, and keeps neither pointer.
    unsafe { host_sha256(data.as_ptr(), data.len(), digest.as_mut_ptr()) };
    digest
}

/// Compares two byte strings as `<[u8]>::cmp` does, natively in the host.
pub fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let common = a.len().min(b.len());
    // SAFETY: the host reads `common` bytes at `a` and at `b`, in this plugin's memory.
    let ordering = unsafe { host_compare(a.as_ptr(), b.as_ptr(), common) };
    ordering.cmp(&0).then(a.len().cmp(&b.len()))
}

/// Lowercase hex of some bytes (e.g. a caller), for display.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
