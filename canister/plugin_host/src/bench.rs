//! The bench build's extra endpoint (feature `bench`, never deployed): runs a benchmark kernel
//! natively inside the canister, the baseline the same kernel under wasmi is compared with.

use candid::CandidType;
use plugin_host_api::ByteBuf;

/// What a native kernel run answers.
#[derive(CandidType)]
pub struct NativeRun {
    /// The kernel's result (the same text the `kernels` plugin returns).
    pub output: ByteBuf,
    /// IC instructions the kernel used, measured around it with `performance_counter`.
    pub instructions: u64,
}

/// Runs `kernel` at size `n` natively and measures it.
#[ic_cdk::update]
fn bench_native(kernel: String, n: u64) -> Option<NativeRun> {
    let start = ic_cdk::api::performance_counter(0);
    let output = bench_kernels::run(&kernel, n)?;
    let instructions = ic_cdk::api::performance_counter(0) - start;
    Some(NativeRun {
        output: ByteBuf::from(output.into_bytes()),
        instructions,
    })
}
