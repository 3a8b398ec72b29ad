//! Builds the example plugins from source into `target/plugins/<name>.wasm`.
//!
//! The Rust plugins are a cargo workspace of their own (`plugins/`, target wasm32 set in its
//! `.cargo/config.toml`). The hostile plugins are WAT text that the tests parse directly.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{ensure_wasm_target, run};

/// The Rust plugins: the crate names in `plugins/Cargo.toml`, one `.wasm` each.
const RUST_PLUGINS: &[&str] = &["counter", "dao_voting", "dao_voting_v2", "nft"];

/// Builds every plugin into `target/plugins/`.
pub fn build(root: &Path) -> Result<(), String> {
    ensure_wasm_target(root)?;
    let out = root.join("target/plugins");
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {out:?}: {e}"))?;

    eprintln!(
        "xtask: building the Rust plugins ({})",
        RUST_PLUGINS.join(", ")
    );
    let plugins = root.join("plugins");
    run(Command::new("cargo").current_dir(&plugins).args([
        "build",
        "--quiet",
        "--release",
        "--locked",
    ]))?;
    for name in RUST_PLUGINS {
        let built = plugins.join(format!("target/wasm32-unknown-unknown/release/{name}.wasm"));
        let target = out.join(format!("{name}.wasm"));
        fs::copy(&built, &target).map_err(|e| format!("cannot copy {built:?}: {e}"))?;
        let size = fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "xtask: plugin {name:<14} {size:>7} bytes -> {}",
            target.display()
        );
    }
    Ok(())
}
