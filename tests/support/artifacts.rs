//! What the build made (`cargo xtask build`), read only if it is newer than every source it is
//! made from: a test never runs against a stale canister or plugin. Shared by the end-to-end
//! tests (`tests/support`), the engine's tests of the example plugins and the PocketIC tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The repository root.
pub fn repo() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    while !dir.join("rust-toolchain.toml").exists() {
        assert!(dir.pop(), "the repository root has rust-toolchain.toml");
    }
    dir
}

/// What the canister is built from (its tests and documents aside).
const CANISTER_SOURCES: &[&str] = &[
    "canister/api/src",
    "canister/api/Cargo.toml",
    "canister/engine/src",
    "canister/engine/Cargo.toml",
    "export-globals/src",
    "export-globals/Cargo.toml",
    "canister/plugin_host/src",
    "canister/plugin_host/Cargo.toml",
    "canister/plugin_host/plugin_host.did",
    "vendor/wasmi/src",
    "Cargo.lock",
    "xtask/src/canister.rs",
];

/// The canister module as deployed: shrunk, with its Candid metadata, gzipped.
pub fn canister_wasm() -> Vec<u8> {
    fresh(
        "target/dist/plugin_host.wasm.gz",
        CANISTER_SOURCES,
        "cargo xtask build-canister",
    )
}

/// The example DAO canister (`examples/dao_canister`).
pub fn dao_canister_wasm() -> Vec<u8> {
    fresh(
        "target/dist/dao_canister.wasm",
        &[
            "examples/dao_canister/src",
            "examples/dao_canister/Cargo.toml",
            "canister/api/src",
            "canister/client/src",
            "Cargo.lock",
        ],
        "cargo xtask build",
    )
}

/// An example plugin, by the name `cargo xtask build-plugins` gives it.
pub fn plugin(name: &str) -> Vec<u8> {
    let own = match name {
        "c_vowels" => "plugins/c".to_owned(),
        "zig_tally" => "plugins/zig".to_owned(),
        "go_tally" => "plugins/go".to_owned(),
        "c_tally" | "c_wasi_suite" => "plugins/c_libc".to_owned(),
        "as_words" => "plugins/assemblyscript/assembly".to_owned(),
        "kernels" => "benches/kernels/src".to_owned(),
        rust => format!("plugins/{rust}/src"),
    };
    fresh(
        &format!("target/plugins/{name}.wasm"),
        &[
            &own,
            "plugins/kernels/src",
            "plugins/kit/src",
            "plugins/Cargo.toml",
            "plugins/Cargo.lock",
            "plugins/.cargo",
            "plugins/assemblyscript/package-lock.json",
        ],
        "cargo xtask build-plugins",
    )
}

/// The bytes of `artifact` (relative to the repository root), if it is newer than every file
/// under `sources`; else the test fails saying which source is newer and what to run.
fn fresh(artifact: &str, sources: &[&str], command: &str) -> Vec<u8> {
    let root = repo();
    let path = root.join(artifact);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!("{artifact} is missing ({e}): run `{command}` (`cargo xtask test` does)")
        });
    for source in sources {
        if let Some((changed, file)) = newest(&root.join(source))
            && changed > built
        {
            panic!(
                "{artifact} is older than {}: run `{command}` (`cargo xtask test` does)",
                file.strip_prefix(&root).unwrap_or(&file).display()
            );
        }
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{artifact}: {e}"))
}

/// The most recently modified file under `path` (build output and packages skipped).
fn newest(path: &Path) -> Option<(SystemTime, PathBuf)> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some((meta.modified().ok()?, path.to_path_buf()));
    }
    let skip = ["target", "node_modules", ".git"];
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| !skip.iter().any(|s| entry.file_name() == *s))
        .filter_map(|entry| newest(&entry.path()))
        .max_by_key(|(time, _)| *time)
}
