//! The `plugin-host` CLI as a user drives it: separate processes sharing a state directory.

#![allow(missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn plugin_host(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plugin-host"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .expect("plugin-host runs")
}

#[track_caller]
fn succeeds(state: &Path, args: &[&str]) -> String {
    let out = plugin_host(state, args);
    assert!(
        out.status.success(),
        "plugin-host {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn deploy_install_invoke_across_processes() {
    let dir = std::env::temp_dir().join(format!("plugin-host-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    succeeds(
        &dir,
        &[
            "deploy",
            "--argument",
            "(opt record { install_policy = opt variant { AnyAuthenticated } })",
        ],
    );
    succeeds(
        &dir,
        &[
            "--identity",
            "alice",
            "install",
            "counter",
            "target/plugins/counter.wasm",
        ],
    );
    assert_eq!(
        succeeds(&dir, &["invoke", "counter", "increment", "--input", "5"]),
        "5"
    );
    // State persisted in the directory: the next process sees it.
    assert_eq!(succeeds(&dir, &["invoke", "counter", "increment"]), "6");
    assert!(succeeds(&dir, &["list"]).contains("counter"));
    let reply = succeeds(&dir, &["call", "get", r#"("counter")"#]);
    assert!(reply.contains("calls = 2"), "{reply}");

    // Errors go to stderr with a non-zero exit.
    let failed = plugin_host(&dir, &["invoke", "counter", "nope"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("has no function `nope`"));
    let refused = plugin_host(
        &dir,
        &[
            "--identity",
            "anonymous",
            "install",
            "x",
            "target/plugins/counter.wasm",
        ],
    );
    // The canister's inspect_message refuses it before it runs.
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("rejected the message"), "{stderr}");

    succeeds(&dir, &["deploy", "--upgrade"]);
    assert_eq!(succeeds(&dir, &["invoke", "counter", "get"]), "6");
    let _ = std::fs::remove_dir_all(&dir);
}
