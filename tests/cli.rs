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

/// A fresh state directory with the canister deployed and the counter installed by its deployer.
fn deployed_with_counter(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-host-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    succeeds(&dir, &["deploy"]);
    succeeds(&dir, &["install", "counter", "target/plugins/counter.wasm"]);
    dir
}

fn json(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).expect("stdout is one JSON document")
}

#[test]
fn exit_codes_tell_plugin_failures_usage_and_canister_errors_apart() {
    let dir = deployed_with_counter("exit-codes");
    let code = |args: &[&str]| plugin_host(&dir, args).status.code();
    // 1: the plugin or the operation failed (a typed error).
    assert_eq!(
        code(&["invoke", "counter", "increment", "--input", "x"]),
        Some(1)
    );
    assert_eq!(code(&["invoke", "counter", "nope"]), Some(1));
    assert_eq!(code(&["invoke", "nobody", "get"]), Some(1));
    assert_eq!(code(&["info", "nobody"]), Some(1));
    assert_eq!(code(&["uninstall", "nobody"]), Some(1));
    succeeds(&dir, &["install", "trap", "plugins/hostile/trap.wat"]);
    assert_eq!(code(&["invoke", "trap", "run"]), Some(1));
    // 2: usage: bad arguments, unreadable files, no canister.
    assert_eq!(code(&["invoke"]), Some(2));
    assert_eq!(code(&["install", "x", "no/such/file.wasm"]), Some(2));
    assert_eq!(code(&["call", "get", "(not candid"]), Some(2));
    assert_eq!(
        code(&[
            "install",
            "x",
            "target/plugins/counter.wasm",
            "--owner-only",
            "--allow",
            "aaaaa-aa"
        ]),
        Some(2)
    );
    let empty = std::env::temp_dir().join(format!("plugin-host-cli-none-{}", std::process::id()));
    let out = plugin_host(&empty, &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `plugin-host deploy` first"));
    // 3: the canister rejected the message (inspect_message refuses the anonymous installer).
    assert_eq!(
        code(&[
            "--identity",
            "anonymous",
            "install",
            "x",
            "target/plugins/counter.wasm"
        ]),
        Some(3)
    );
    // None of it changed the counter.
    assert_eq!(succeeds(&dir, &["invoke", "counter", "get"]), "0");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_output_carries_what_a_script_needs() {
    let dir = deployed_with_counter("json");
    let ok = json(
        succeeds(
            &dir,
            &["invoke", "counter", "increment", "--input", "7", "--json"],
        )
        .as_bytes(),
    );
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["output"], "7");
    assert_eq!(ok["output_base64"], "Nw==");
    assert!(ok["fuel_used"].as_u64().is_some_and(|fuel| fuel > 0));
    assert!(ok["instructions"].as_u64().is_some_and(|n| n > 1_000));
    assert_eq!(ok["logs"], serde_json::json!([]));

    // A failed call: the typed error on stdout as JSON, exit code 1, nothing on stderr but the
    // instruction report.
    let failed = plugin_host(
        &dir,
        &["invoke", "counter", "increment", "--input", "x", "--json"],
    );
    assert_eq!(failed.status.code(), Some(1));
    let failed_json = json(&failed.stdout);
    assert_eq!(failed_json["ok"], false);
    assert_eq!(failed_json["error"]["kind"], "plugin_error");
    // extism-pdk's return code for an `Err` without one of its own.
    assert_eq!(failed_json["error"]["code"], -1);
    assert!(
        failed_json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a number"))
    );
    assert!(!String::from_utf8_lossy(&failed.stderr).contains("error:"));

    succeeds(&dir, &["install", "trap", "plugins/hostile/trap.wat"]);
    let trapped = json(&plugin_host(&dir, &["invoke", "trap", "run", "--json"]).stdout);
    assert_eq!(trapped["error"]["kind"], "trap");

    let info = json(succeeds(&dir, &["info", "counter", "--json"]).as_bytes());
    assert_eq!(info["name"], "counter");
    assert_eq!(info["calls"], 1);
    assert_eq!(info["invoke_policy"]["kind"], "public");
    assert_eq!(info["code_sha256"].as_str().map(str::len), Some(64));
    assert!(
        info["functions"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "increment"))
    );

    let list = json(succeeds(&dir, &["list", "--json"]).as_bytes());
    let names: Vec<&str> = list
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|plugin| plugin["name"].as_str())
        .collect();
    assert_eq!(names, ["counter", "trap"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_to_a_pipe_has_no_progress_drawing() {
    let dir = deployed_with_counter("quiet");
    let out = plugin_host(&dir, &["invoke", "counter", "increment"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    assert!(!stderr.contains("calling counter"), "{stderr:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wasi_plugins_arguments_and_environment_come_from_the_command_line() {
    let dir = deployed_with_counter("wasi");
    succeeds(
        &dir,
        &[
            "install",
            "std",
            "target/plugins/wasi_std.wasm",
            "--wasi-arg",
            "wasi_std",
            "--wasi-arg",
            "-v",
            "--wasi-env",
            "GREETING=hi",
        ],
    );
    assert_eq!(
        succeeds(&dir, &["invoke", "std", "env"]),
        r#"{"args":["wasi_std","-v"],"vars":[["GREETING","hi"]]}"#
    );
    let bad = plugin_host(
        &dir,
        &[
            "install",
            "x",
            "target/plugins/wasi_std.wasm",
            "--wasi-env",
            "NOEQUALS",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
