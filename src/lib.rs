//! Run the `plugin_host` canister on this machine: the real canister `.wasm` in the local canister
//! runtime (`ic-local-runtime`), driven through typed Candid calls. Used by the `plugin-host` CLI,
//! the end-to-end tests and the benchmarks.

pub mod candid_text;
pub mod client;
pub mod identity;

/// `1234567` as `1,234,567`: how instruction counts are printed.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
