//! The benchmark kernels as plugin functions: input is the size `n` (decimal text), output the
//! kernel's result, exactly as the native build in the bench canister computes it.

use extism_pdk::*;

fn run(kernel: &str, input: &str) -> FnResult<String> {
    let n = input
        .trim()
        .parse::<u64>()
        .map_err(|e| Error::msg(format!("not a size: {input:?}: {e}")))?;
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

kernels!(int_loop, fibonacci, sort, sha256, mem_copy_compare, json_parse);

/// Does nothing: the fixed cost of a call (P2).
#[plugin_fn]
pub fn noop() -> FnResult<()> {
    Ok(())
}
