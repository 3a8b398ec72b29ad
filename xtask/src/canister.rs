//! Builds the `plugin_host` canister: compile to wasm32 with the `canister` profile, embed the
//! Candid interface as `candid:service` metadata, shrink with ic-wasm, gzip.
//!
//! Outputs in `target/dist/`: `plugin_host.raw.wasm` (as compiled), `plugin_host.wasm` (shrunk,
//! with metadata) and `plugin_host.wasm.gz` (what gets deployed); the bench build likewise as
//! `plugin_host_bench.*`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ensure_wasm_target, run};

/// The ic-wasm release used: the prebuilt binary shipped in this npm package.
const IC_WASM_PACKAGE: &str = "@icp-sdk/ic-wasm-linux-x64@0.11.1";
/// The icp-cli release `icp.yaml` is checked with (the prebuilt binary in this npm package).
const ICP_CLI_PACKAGE: &str = "@icp-sdk/icp-cli-linux-x64@1.5.0";

/// Exports of the canister that are not Candid methods (checked by `ic-wasm check-endpoints`).
const HIDDEN_ENDPOINTS: &str =
    "canister_init\ncanister_post_upgrade\ncanister_inspect_message\nget_candid_pointer\n";

/// Builds the canister and returns the path of the gzipped module.
pub fn build(root: &Path) -> Result<PathBuf, String> {
    let raw = compile(root, &[])?;
    let out_dir = root.join("target/dist");
    let wasm = out_dir.join("plugin_host.wasm");
    let did = root.join("canister/plugin_host/plugin_host.did");

    let ic_wasm = shrink(root, &raw, &wasm)?;
    run(Command::new(&ic_wasm)
        .arg(&wasm)
        .arg("-o")
        .arg(&wasm)
        .args([
            "metadata",
            "candid:service",
            "--visibility",
            "public",
            "--file",
        ])
        .arg(&did))?;
    let hidden = out_dir.join("hidden-endpoints.txt");
    fs::write(&hidden, HIDDEN_ENDPOINTS).map_err(|e| format!("cannot write {hidden:?}: {e}"))?;
    run(Command::new(&ic_wasm)
        .arg(&wasm)
        .arg("check-endpoints")
        .arg("--candid")
        .arg(&did)
        .arg("--hidden")
        .arg(&hidden))?;

    gzip(&raw, &wasm)
}

/// Builds the bench build of the canister (feature `bench`: the native kernels of benchmark P1)
/// into `target/dist/plugin_host_bench.wasm.gz`. Never deployed, so it carries no Candid metadata.
pub fn build_bench(root: &Path) -> Result<PathBuf, String> {
    let raw = compile(root, &["--features", "bench"])?;
    let wasm = root.join("target/dist/plugin_host_bench.wasm");
    shrink(root, &raw, &wasm)?;
    gzip(&raw, &wasm)
}

/// Compiles the canister crate to wasm32 with the `canister` profile; returns the raw module,
/// copied out of cargo's directory (builds with other features write the same file).
fn compile(root: &Path, features: &[&str]) -> Result<PathBuf, String> {
    ensure_wasm_target(root)?;
    eprintln!("xtask: building the plugin_host canister (wasm32, profile `canister`) {features:?}");
    run(Command::new("cargo")
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--package",
            "plugin_host",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "canister",
        ])
        .args(features))?;
    let built = root.join("target/wasm32-unknown-unknown/canister/plugin_host.wasm");
    let out_dir = root.join("target/dist");
    fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {out_dir:?}: {e}"))?;
    let name = if features.is_empty() {
        "plugin_host"
    } else {
        "plugin_host_bench"
    };
    let raw = out_dir.join(format!("{name}.raw.wasm"));
    fs::copy(&built, &raw).map_err(|e| format!("cannot copy {built:?}: {e}"))?;
    Ok(raw)
}

/// Shrinks `raw` into `wasm` with ic-wasm; returns the ic-wasm binary for further steps.
fn shrink(root: &Path, raw: &Path, wasm: &Path) -> Result<PathBuf, String> {
    let ic_wasm = ic_wasm(root)?;
    run(Command::new(&ic_wasm)
        .arg(raw)
        .arg("-o")
        .arg(wasm)
        .arg("shrink"))?;
    Ok(ic_wasm)
}

/// Gzips `wasm` next to itself (`.wasm.gz`), reports the three sizes, returns the gzipped path.
fn gzip(raw: &Path, wasm: &Path) -> Result<PathBuf, String> {
    let gz = wasm.with_extension("wasm.gz");
    let gz_file = fs::File::create(&gz).map_err(|e| format!("cannot create {gz:?}: {e}"))?;
    run(Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .arg(wasm)
        .stdout(gz_file))?;
    eprintln!(
        "xtask: canister {} bytes raw, {} shrunk, {} gzipped -> {}",
        size(raw),
        size(wasm),
        size(&gz),
        gz.display()
    );
    Ok(gz)
}

/// Checks `icp.yaml`: icp-cli builds the canister with it, with no network, into the very module
/// `cargo xtask build-canister` makes.
pub fn check_icp_build(root: &Path) -> Result<(), String> {
    let icp = npm_tool(root, ICP_CLI_PACKAGE, "bin/icp")?;
    eprintln!("xtask: icp build (icp.yaml)");
    run(Command::new(icp)
        .current_dir(root)
        .env("DO_NOT_TRACK", "1")
        .arg("build"))?;
    let built = root.join(".icp/cache/artifacts/plugin_host");
    let ours = root.join("target/dist/plugin_host.wasm.gz");
    let same = fs::read(&built)
        .ok()
        .is_some_and(|icp| fs::read(&ours).ok() == Some(icp));
    if same {
        Ok(())
    } else {
        Err(format!("`icp build` made {built:?}, which is not {ours:?}"))
    }
}

/// Installs ic-wasm from npm (once) and returns the binary's path.
fn ic_wasm(root: &Path) -> Result<PathBuf, String> {
    npm_tool(root, IC_WASM_PACKAGE, "bin/ic-wasm")
}

/// Installs `package` (`@scope/name@version`) from npm into `target/tools/name` (once: a prefix
/// of its own, as npm prunes what it did not install itself) and returns the path of its
/// `binary`.
fn npm_tool(root: &Path, package: &str, binary: &str) -> Result<PathBuf, String> {
    let name = package.rsplit_once('@').map_or(package, |(name, _)| name);
    let prefix = root
        .join("target/tools")
        .join(name.rsplit('/').next().unwrap_or(name));
    let path = prefix.join("node_modules").join(name).join(binary);
    if !path.exists() {
        eprintln!("xtask: installing {package} from npm");
        run(Command::new("npm")
            .args(["install", "--no-save", "--silent", "--prefix"])
            .arg(&prefix)
            .arg(package))?;
    }
    Ok(path)
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
