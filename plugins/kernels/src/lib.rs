//! The benchmark kernels as plugin functions: input is the size `n` (decimal text), output the
//! kernel's result, exactly as the native build in the bench canister computes it.

use extism_pdk::*;

fn size(input: &str) -> FnResult<u64> {
    Ok(input
        .trim()
        .parse::<u64>()
        .map_err(|e| Error::msg(format!("not a size: {input:?}: {e}")))?)
}

fn run(kernel: &str, input: &str) -> FnResult<String> {
    let n = size(input)?;
    Ok(bench_kernels::run(kernel, n).ok_or_else(|| Error::msg("unknown kernel"))?)
}

macro_rules! kernels {
    ($($name:ident),*) => {$(
        #[doc = concat!("Runs the `", stringify!($name), "` kernel at the size given as input.")]
        #[plugin_fn]
        pub fn $name(input: String) -> FnResult<String> {
            run(stringify!($name), &input)
        }
    )*};
}

kernels!(
    int_loop,
    fibonacci,
    sort,
    sha256,
    mem_copy_compare,
    json_parse
);

/// The host's primitives, run natively on this plugin's memory (P1b).
const HOST_PRIMITIVES: bench_kernels::Primitives = bench_kernels::Primitives {
    sha256: ic_plugin_kit::sha256,
    equal: |a, b| ic_plugin_kit::compare(a, b).is_eq(),
};

macro_rules! kernels_with_host_primitives {
    ($($name:ident => $kernel:literal),*) => {$(
        #[doc = concat!("Runs the `", $kernel, "` kernel with the host's primitives.")]
        #[plugin_fn]
        pub fn $name(input: String) -> FnResult<String> {
            let n = size(&input)?;
            Ok(bench_kernels::run_with($kernel, n, &HOST_PRIMITIVES)
                .ok_or_else(|| Error::msg("unknown kernel"))?)
        }
    )*};
}

kernels_with_host_primitives!(sha256_host => "sha256", mem_copy_compare_host => "mem_copy_compare");

/// Does nothing: the fixed cost of a call (P2).
#[plugin_fn]
pub fn noop() -> FnResult<()> {
    Ok(())
}
