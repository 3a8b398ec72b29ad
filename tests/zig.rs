//! The Zig plugin (`plugins/zig/tally.zig`: Zig's std on WASI preview 1, no PDK) over the real
//! canister.

#![allow(missing_docs)]

mod support;

use plugin_host_api::InvokeError;
use support::*;

#[track_caller]
fn plugin_error(error: InvokeError) -> String {
    match error {
        InvokeError::PluginError { message, .. } => message,
        other => panic!("expected the plugin's error, got {other:?}"),
    }
}

#[test]
fn zig_std_keeps_its_heap_across_calls_and_an_upgrade_and_rolls_back_a_failed_call() {
    let mut host = host();
    let info = install(&mut host, alice(), "zig", plugin("zig_tally"));
    assert_eq!(info.functions, ["add", "add_then_fail", "count", "now"]);
    assert!(info.code_size < 16 * 1024, "{} bytes", info.code_size);
    assert_eq!(info.memory_pages, 2, "built with 128 KiB of initial memory");
    assert_eq!(
        ok(&mut host, "zig", "add", "hello zig hello"),
        r#"{"added":3,"distinct":2,"total":3}"#
    );
    let failed = plugin_error(err(&mut host, "zig", "add_then_fail", "zig again"));
    assert!(failed.contains("failing on purpose"), "{failed}");
    assert_eq!(
        ok(&mut host, "zig", "count", "zig"),
        "1",
        "the failed call's tally is undone"
    );
    assert_eq!(ok(&mut host, "zig", "count", "again"), "0");
    let empty = plugin_error(err(&mut host, "zig", "add", " \n "));
    assert!(empty.contains("no words"), "{empty}");

    upgrade_to_other_build(&mut host);
    assert_eq!(ok(&mut host, "zig", "count", "hello"), "2");
    assert_eq!(
        ok(&mut host, "zig", "add", "zig"),
        r#"{"added":1,"distinct":2,"total":4}"#
    );
}

#[test]
fn zig_reads_the_ic_time_through_wasi() {
    let mut host = host();
    install(&mut host, alice(), "zig", plugin("zig_tally"));
    let before_ms = host.canister().time() / 1_000_000;
    let now: u64 = ok(&mut host, "zig", "now", "").parse().expect("a number");
    let after_ms = host.canister().time() / 1_000_000;
    assert!(
        (before_ms..=after_ms).contains(&now),
        "{before_ms} <= {now} <= {after_ms}"
    );
}
