//! P8's JSON round trip as a plugin function: input a proposal document (JSON), output what
//! `bench_kernels::round_trip::round_trip` answers, exactly as the native build in the bench
//! canister computes it.

use extism_pdk::*;

/// Parses the input into typed structs and serializes it back.
#[plugin_fn]
pub fn round_trip(input: Vec<u8>) -> FnResult<String> {
    Ok(bench_kernels::round_trip::round_trip(&input))
}
