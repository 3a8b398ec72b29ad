//! Run the `plugin_host` canister on this machine: the real canister `.wasm` in the local canister
//! runtime (`ic-local-runtime`), driven through typed Candid calls. Used by the `plugin-host` CLI,
//! the end-to-end tests and the benchmarks.

pub mod candid_text;
pub mod client;
pub mod identity;
