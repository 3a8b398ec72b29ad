//! Builds the example canisters (`examples/`) for wasm32, so they are compiled for the real
//! target on every build; the PocketIC tests deploy them.
//!
//! Output: `target/dist/dao_canister.wasm`, as compiled (an example: no shrinking, no metadata).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{ensure_wasm_target, run};

/// Builds `examples/dao_canister` into `target/dist/dao_canister.wasm`.
pub fn build(root: &Path) -> Result<(), String> {
    ensure_wasm_target(root)?;
    eprintln!("xtask: building the example DAO canister (wasm32, profile `canister`)");
    run(Command::new("cargo").current_dir(root).args([
        "build",
        "--quiet",
        "--package",
        "dao_canister",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "canister",
    ]))?;
    let raw = root.join("target/wasm32-unknown-unknown/canister/dao_canister.wasm");
    let out_dir = root.join("target/dist");
    fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {out_dir:?}: {e}"))?;
    let wasm = out_dir.join("dao_canister.wasm");
    fs::copy(&raw, &wasm).map_err(|e| format!("cannot copy {raw:?} to {wasm:?}: {e}"))?;
    eprintln!(
        "xtask: DAO canister {} bytes -> {}",
        fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0),
        wasm.display()
    );
    Ok(())
}
