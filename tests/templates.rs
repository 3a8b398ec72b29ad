//! `plugin-host new` as a plugin author uses it: each template is created, built with its
//! language's toolchain, installed into a fresh local canister and called by the project's own
//! `test.sh` (which also checks that a failing call changes nothing and that `upgrade-plugin`
//! keeps the count).

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PLUGIN_HOST: &str = env!("CARGO_BIN_EXE_plugin-host");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-host-new-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn plugin_host(cwd: &Path, args: &[&str]) -> Output {
    Command::new(PLUGIN_HOST)
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("plugin-host runs")
}

/// Creates plugin `name` in `lang` and runs its `test.sh`; returns the project directory.
#[track_caller]
fn create_and_test(lang: &str, name: &str) -> PathBuf {
    let dir = scratch(lang);
    let created = plugin_host(&dir, &["new", name, "--lang", lang]);
    assert!(
        created.status.success(),
        "new --lang {lang}: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let project = dir.join(name);
    let tested = Command::new(project.join("test.sh"))
        .env("PLUGIN_HOST", PLUGIN_HOST)
        // Rust templates reuse the example plugins' compiled dependencies.
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/target"),
        )
        .output()
        .expect("test.sh runs");
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "{lang} template's test.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(stdout.contains(&format!("test.sh: {name} ok")), "{stdout}");
    if lang != "js" {
        let wasm = std::fs::read(project.join("plugin.wasm")).expect("plugin.wasm built");
        assert_eq!(&wasm[..4], b"\0asm");
    }
    project
}

#[test]
fn the_rust_template_builds_installs_and_keeps_its_count() {
    let project = create_and_test("rust", "counter-rs");
    // Its logic's unit tests run natively.
    let tested = Command::new("cargo")
        .current_dir(&project)
        .args(["test", "--release", "--quiet"])
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/templates"),
        )
        .output()
        .expect("cargo test runs");
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(String::from_utf8_lossy(&tested.stdout).contains("2 passed"));
}

#[test]
fn the_c_template_builds_installs_and_keeps_its_count() {
    create_and_test("c", "counter_c");
}

#[test]
fn the_assemblyscript_template_builds_installs_and_keeps_its_count() {
    create_and_test("assemblyscript", "counter-as");
}

#[test]
fn new_refuses_bad_names_and_occupied_directories_as_usage_errors() {
    let dir = scratch("refusals");
    for name in ["Upper", "1digit", "has space", "dot.ted", &"a".repeat(65)] {
        let out = plugin_host(&dir, &["new", name, "--lang", "c"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot name a plugin project"));
        assert!(!dir.join(name).exists(), "{name}");
    }
    std::fs::create_dir_all(dir.join("taken")).expect("dir");
    std::fs::write(dir.join("taken/keep.txt"), "mine").expect("file");
    let out = plugin_host(&dir, &["new", "taken", "--lang", "rust"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    assert_eq!(
        std::fs::read_to_string(dir.join("taken/keep.txt")).expect("kept"),
        "mine"
    );
    assert!(!dir.join("taken/Cargo.toml").exists());
    // No project: a usage error naming what it looked for.
    let out = plugin_host(&dir, &["build", "taken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no plugin project"));
}

#[test]
fn a_plugin_that_does_not_compile_is_exit_code_1_with_the_compilers_message() {
    let dir = scratch("broken");
    assert!(
        plugin_host(&dir, &["new", "broken", "--lang", "c"])
            .status
            .success()
    );
    std::fs::write(dir.join("broken/plugin.c"), "int broken( {").expect("write");
    let out = plugin_host(&dir.join("broken"), &["build"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`clang` failed"), "{stderr}");
    assert!(stderr.contains("error"), "{stderr}");
    assert!(!dir.join("broken/plugin.wasm").exists());
}

#[test]
fn the_javascript_template_installs_with_the_shared_runtime_and_keeps_its_count() {
    create_and_test("js", "counter-js");
}
