//! The Go plugin (`plugins/go`: unmodified Go for `GOOS=wasip1 GOARCH=wasm`, a reactor) over the
//! real canister. A Go module is 2.5 MB, above the ingress limit: it is installed in chunks.
//! Where `cargo xtask build-plugins` found no Go toolchain it skipped the plugin, and these tests
//! say so and check nothing.

#![allow(missing_docs)]

mod support;

use plugin_host_api::{ByteBuf, InstallChunkedArgs, InvokeError};
use plugin_host_local::client::PluginHost;
use sha2::Digest;
use support::*;

/// The built Go plugin, or `None` (printed) when the build skipped it.
fn go_plugin() -> Option<Vec<u8>> {
    if !repo().join("target/plugins/go_tally.wasm").exists() {
        eprintln!("skipped: target/plugins/go_tally.wasm was not built (no Go toolchain)");
        return None;
    }
    Some(plugin("go_tally"))
}

fn install_in_chunks(host: &mut PluginHost, name: &str, wasm: &[u8]) {
    let args = InstallChunkedArgs {
        name: name.to_owned(),
        chunk_hashes: upload_chunks(host, alice(), wasm),
        wasm_sha256: ByteBuf::from(sha2::Sha256::digest(wasm).to_vec()),
        config: None,
        invoke_policy: None,
        fuel_limit: None,
    };
    let info = host
        .install_chunked(alice(), args)
        .expect("message")
        .expect("chunked install");
    assert_eq!(info.functions, ["add", "add_then_fail", "count", "now"]);
}

#[test]
fn go_keeps_its_heap_across_calls_and_an_upgrade_and_rolls_back_a_failed_call() {
    let Some(wasm) = go_plugin() else { return };
    assert!(
        wasm.len() > 2 * 1024 * 1024,
        "a Go module is above the ingress limit"
    );
    let mut host = host();
    install_in_chunks(&mut host, "go", &wasm);
    assert_eq!(
        ok(&mut host, "go", "add", "hello go hello"),
        r#"{"added":3,"distinct":2,"total":3}"#
    );
    match err(&mut host, "go", "add_then_fail", "go again") {
        InvokeError::PluginError { message, .. } => {
            assert!(message.contains("failing on purpose"), "{message}")
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }
    assert_eq!(
        ok(&mut host, "go", "count", "go"),
        "1",
        "the failed call's tally is undone"
    );
    upgrade_to_other_build(&mut host);
    assert_eq!(ok(&mut host, "go", "count", "hello"), "2");
    assert_eq!(
        ok(&mut host, "go", "add", "go"),
        r#"{"added":1,"distinct":2,"total":4}"#
    );
    let before_ms = host.canister().time() / 1_000_000;
    let now: u64 = ok(&mut host, "go", "now", "").parse().expect("a number");
    let after_ms = host.canister().time() / 1_000_000;
    assert!(
        (before_ms..=after_ms).contains(&now),
        "{before_ms} <= {now} <= {after_ms}"
    );
}
