//! The bench build's extra endpoints (feature `bench`, never deployed): run benchmark code natively
//! inside the canister, the baseline the same code under wasmi is compared with.

use candid::CandidType;
use plugin_host_api::ByteBuf;

/// The NFT plugin's creature (`plugins/nft`), the very file the plugin compiles.
#[path = "../../../plugins/nft/src/creature.rs"]
#[allow(dead_code, reason = "the benchmark mints; the rest is the plugin's")]
mod creature;

/// What a native run answers.
#[derive(CandidType)]
pub struct NativeRun {
    /// The result (the same bytes the plugin returns).
    pub output: ByteBuf,
    /// IC instructions the run used, measured around it with `performance_counter`.
    pub instructions: u64,
}

/// Runs `work` and measures it; `None` if it answers nothing.
fn measure(work: impl FnOnce() -> Option<String>) -> Option<NativeRun> {
    let start = ic_cdk::api::performance_counter(0);
    let output = work()?;
    let instructions = ic_cdk::api::performance_counter(0) - start;
    Some(NativeRun {
        output: ByteBuf::from(output.into_bytes()),
        instructions,
    })
}

/// Runs `kernel` at size `n` natively and measures it (P1); `None` for an unknown kernel.
#[ic_cdk::update]
fn bench_native(kernel: String, n: u64) -> Option<NativeRun> {
    measure(|| bench_kernels::run(&kernel, n))
}

/// Runs a real workload natively on `input` and measures it (P8); `None` for an unknown workload,
/// a malformed `input` or a failed run (the plugin's error). The workloads, each what the plugin
/// function of the same name computes:
/// - `dao_voting.decide`: `input` is the ballots (JSON); counts them under the plugin's default
///   rule (`token_weighted`) and answers the decision as JSON;
/// - `nft.mint`: `input` is the call's facts, the 32-byte seed, the time (8 bytes, little-endian)
///   and the owner (hex text); mints the creature and answers it as JSON;
/// - `json_round_trip.round_trip`: `input` is a proposal document (JSON); parses it into typed
///   structs, serializes it back and answers whether the bytes came back unchanged.
#[ic_cdk::update]
fn bench_native_workload(workload: String, input: ByteBuf) -> Option<NativeRun> {
    let input = input.into_vec();
    match workload.as_str() {
        "dao_voting.decide" => measure(|| {
            let rule = dao_voting::rules::Rule::TokenWeighted;
            let decision = dao_voting::rules::decide(&input, &rule).ok()?;
            serde_json::to_string(&decision).ok()
        }),
        "nft.mint" => {
            let (seed, rest) = input.split_first_chunk::<32>()?;
            let (time, owner) = rest.split_first_chunk::<8>()?;
            let now_ns = u64::from_le_bytes(*time);
            let owner = String::from_utf8(owner.to_vec()).ok()?;
            measure(|| serde_json::to_string(&creature::Creature::mint(seed, owner, now_ns)).ok())
        }
        "json_round_trip.round_trip" => {
            measure(|| Some(bench_kernels::round_trip::round_trip(&input)))
        }
        _ => None,
    }
}
