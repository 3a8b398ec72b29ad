//! The benchmark kernels as a plugin through the real canister: each computes exactly what the
//! same source computes natively (the benchmark's correctness check, at test sizes), with its own
//! primitives and with the host's.

#![allow(missing_docs)]

mod support;

use plugin_host_api::InvokeError;
use support::*;

#[test]
fn every_kernel_under_wasmi_agrees_with_its_native_build() {
    let mut host = host();
    let info = install(&mut host, alice(), "kernels", plugin("kernels"));
    for (kernel, _, _) in bench_kernels::KERNELS {
        assert!(info.functions.iter().any(|f| f == kernel), "{kernel}");
        for n in [0, 1, 1000] {
            let native = bench_kernels::run(kernel, n).expect("a known kernel");
            assert_eq!(
                ok(&mut host, "kernels", kernel, &n.to_string()),
                native,
                "{kernel}({n})"
            );
        }
    }
    // The same kernels with the host's native primitives (sha256, compare) compute the same.
    for kernel in bench_kernels::KERNELS_WITH_PRIMITIVES {
        for n in [0, 1, 1000, 5000] {
            let native = bench_kernels::run(kernel, n).expect("a known kernel");
            let function = format!("{kernel}_host");
            assert_eq!(
                ok(&mut host, "kernels", &function, &n.to_string()),
                native,
                "{function}({n})"
            );
        }
    }
    assert_eq!(ok(&mut host, "kernels", "noop", ""), "");
    match err(&mut host, "kernels", "sort", "many") {
        InvokeError::PluginError { message, .. } => {
            assert!(message.contains("not a size"), "{message}")
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }
}
