//! Project automation (`cargo xtask <command>`): build, demo, test, fuzz, bench.
//!
//! Every command installs what it needs first (the wasm target, the ic-wasm tool, the plugin
//! toolchains), so it works on a fresh machine.

mod canister;
mod examples;
mod plugins;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  build           build the example plugins, the canister (shrunk, gzipped, with its Candid)
                  and the example DAO canister
  build-canister  build only the canister
  build-plugins   build only the example plugins into target/plugins/
  demo            build, deploy the canister locally, install and invoke the example plugins
  test            formatting and clippy, the tests that need no build, then build and run
                  every other test, the fuzz targets' CI budget and the benchmarks against
                  their baseline (the command CI runs)
  fuzz [--cases N] [--seed S] [--target T] [--case K] [--jobs J]
                  run the fuzz targets (engine, differential, candid, store; crate fuzz/)
                  with seeded random cases; --case replays one saved failure
  bench [--save | P1 … P8]
                  build (with the bench build of the canister), then run the instruction
                  benchmarks: all of them (--save writes benches/results.tsv) or those parts;
                  the whole suite ends with the CLI's wall time, warm against cold
  profile SCENARIO [--top N] [--input TEXT]
                  build as bench does, then print where one message's instructions go, by
                  canister function: P1.<kernel>, P1s.<kernel>, P1b.<kernel>, P2.noop_rust,
                  P2.noop_wat, P2.floor, P3.cold, P3.counter, P3.creature, P3.as_words,
                  P5.mem_<pages>p, or <plugin>.<function> of an example plugin
                  (benches/profile.rs)";

fn main() -> ExitCode {
    let root = repo_root();
    let command = std::env::args().nth(1).unwrap_or_default();
    let result = match command.as_str() {
        "build" => build(&root),
        "build-canister" => canister::build(&root).map(drop),
        "build-plugins" => plugins::build(&root),
        "demo" => build(&root).and_then(|()| demo(&root)),
        "test" => check_toolchain().and_then(|()| test(&root)),
        "fuzz" => fuzz(&root, &std::env::args().skip(2).collect::<Vec<_>>()),
        "bench" => check_toolchain()
            .and_then(|()| build(&root))
            .and_then(|()| canister::build_bench(&root))
            .and_then(|_| bench(&root))
            .and_then(|()| bench_cli(&root)),
        "profile" => check_toolchain()
            .and_then(|()| build(&root))
            .and_then(|()| canister::build_bench(&root))
            .and_then(|_| profile(&root)),
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command `{command}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn build(root: &Path) -> Result<(), String> {
    plugins::build(root)?;
    canister::build(root)?;
    examples::build(root)
}

/// Runs everything CI checks, fastest first so that a mistake fails early: formatting and
/// clippy, the tests that need no built canister or plugin (unit tests, the engine's inline-WAT
/// tests, the runtime's), then the build, then every other test, then the fuzz targets with a
/// fixed seed, then the benchmarks against their committed baseline. Tests run in release mode, so wasmtime and wasmi are built once for tests, the CLI
/// and the benchmarks alike. Ends with one line totalling every test binary's results.
fn test(root: &Path) -> Result<(), String> {
    let cargo = |args: &[&str]| {
        let mut command = Command::new("cargo");
        command.current_dir(root).args(args);
        command
    };
    run(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    // The PocketIC package is left to its own build below (checking pocket-ic's dependencies
    // would cost minutes more).
    run(&mut cargo(&[
        "clippy",
        "--release",
        "--workspace",
        "--exclude",
        POCKET_IC_PACKAGE,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut totals = TestTotals::default();
    // Needs nothing built.
    for kind in [&["--lib", "--bins"][..], &["--doc"]] {
        let mut command = cargo(&["test", "--release", "--workspace"]);
        command.args(["--exclude", POCKET_IC_PACKAGE]).args(kind);
        totals.run(&mut command)?;
    }
    let mut engine = cargo(&["test", "--release", "--package", "plugin-engine"]);
    for test in engine_tests(root, ENGINE_TESTS_WITHOUT_BUILD)? {
        engine.args(["--test", test]);
    }
    totals.run(&mut engine)?;
    totals.run(&mut cargo(&[
        "test",
        "--release",
        "--package",
        "ic-local-runtime",
        "--tests",
    ]))?;
    // Needs the plugins and the canister.
    build(root)?;
    canister::check_icp_build(root)?;
    let mut engine = cargo(&["test", "--release", "--package", "plugin-engine"]);
    for test in ENGINE_TESTS_WITH_BUILD {
        engine.args(["--test", test]);
    }
    totals.run(&mut engine)?;
    totals.run(&mut cargo(&[
        "test",
        "--release",
        "--workspace",
        "--exclude",
        "plugin-engine",
        "--exclude",
        "ic-local-runtime",
        "--exclude",
        POCKET_IC_PACKAGE,
        "--test",
        "*",
    ]))?;
    // The plugins' own logic (vote counting), natively.
    totals.run(
        cargo(&[
            "test",
            "--release",
            "--locked",
            "--package",
            "dao_voting",
            "--target",
            HOST_TARGET,
        ])
        .current_dir(root.join("plugins")),
    )?;
    pocket_ic(root, &mut totals)?;
    // The fuzz targets with a fixed seed and each target's default budget (about a minute).
    println!("xtask: fuzzing with seed {CI_FUZZ_SEED}, each target's default budget");
    let fuzzed = fuzz(root, &["--seed".to_owned(), CI_FUZZ_SEED.to_string()]);
    // The benchmarks against benches/results.tsv: a figure more than 5% worse, or a benchmark
    // that no longer runs, fails the tests (the counts are deterministic).
    println!("xtask: benchmarks against benches/results.tsv");
    let benched = canister::build_bench(root).and_then(|_| bench(root));
    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    fuzzed.and(benched)
}

/// The engine's test binaries that need nothing built (inline WAT), and those that read the
/// example plugins. Every file in `canister/engine/tests/` must be in one list.
const ENGINE_TESTS_WITHOUT_BUILD: &[&str] = &[
    "abi",
    "abi_reference",
    "engine",
    "fuzz_regressions",
    "layout",
    "storage",
    "wasi",
];
const ENGINE_TESTS_WITH_BUILD: &[&str] = &["conformance", "heap"];

/// `tests`, after checking that the two lists above name every test file of the engine.
fn engine_tests<'a>(root: &Path, tests: &'a [&'a str]) -> Result<&'a [&'a str], String> {
    let dir = root.join("canister/engine/tests");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(test) = name.strip_suffix(".rs")
            && !ENGINE_TESTS_WITHOUT_BUILD.contains(&test)
            && !ENGINE_TESTS_WITH_BUILD.contains(&test)
        {
            return Err(format!(
                "canister/engine/tests/{name} is in neither list of xtask's `test`: add it"
            ));
        }
    }
    Ok(tests)
}

/// The package of the PocketIC tests (`pocket-ic-tests/`).
const POCKET_IC_PACKAGE: &str = "plugin-host-pocket-ic";

/// Builds the PocketIC tests (so that they keep compiling) and runs them when `POCKET_IC_BIN`
/// names a server; otherwise says they were skipped.
fn pocket_ic(root: &Path, totals: &mut TestTotals) -> Result<(), String> {
    let mut command = Command::new("cargo");
    command
        .current_dir(root)
        .args(["test", "--release", "--package", POCKET_IC_PACKAGE]);
    if std::env::var_os("POCKET_IC_BIN").is_some() {
        return totals.run(&mut command);
    }
    let listed = command
        .args(["--tests", "--quiet", "--", "--list"])
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !listed.status.success() {
        return Err(format!("{command:?} failed with {}", listed.status));
    }
    let compiled = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|line| line.ends_with(": test"))
        .count();
    eprintln!(
        "xtask: PocketIC tests skipped: POCKET_IC_BIN is not set ({compiled} tests compiled, not run)"
    );
    Ok(())
}

/// The seed `cargo xtask test` fuzzes with (a fixed budget, so CI runs the same cases each time).
const CI_FUZZ_SEED: u64 = 0;

/// Runs the fuzzer (`fuzz/`, release build) with `args`; the candid target needs the canister
/// module, built first if it is missing.
fn fuzz(root: &Path, args: &[String]) -> Result<(), String> {
    let candid = match args.iter().position(|a| a == "--target") {
        Some(at) => args
            .get(at + 1)
            .is_some_and(|t| t == "all" || t.split(',').any(|t| t == "candid")),
        None => true,
    };
    if candid && !root.join("target/dist/plugin_host.wasm.gz").exists() {
        canister::build(root)?;
    }
    run(Command::new("cargo")
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "plugin-host-fuzz",
            "--bin",
            "plugin-host-fuzz",
            "--",
        ])
        .args(args))
}

/// Passed and failed tests summed over `cargo test` runs.
#[derive(Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
}

impl TestTotals {
    /// Runs `cargo test`, echoing its output and adding up its `test result:` lines.
    fn run(&mut self, command: &mut Command) -> Result<(), String> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {command:?}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading test output: {e}"))?;
            println!("{line}");
            if let Some(result) = line.strip_prefix("test result: ") {
                self.passed += count(result, " passed");
                self.failed += count(result, " failed");
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{command:?} failed with {status}"))
        }
    }
}

/// The number before `what` in a `test result:` line (`ok. 5 passed; 0 failed; ...`).
fn count(result: &str, what: &str) -> u64 {
    result
        .split(';')
        .find_map(|part| part.trim().strip_suffix(what.trim_start()).map(str::trim))
        .and_then(|n| n.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The machine's own target, for the plugins' native unit tests.
const HOST_TARGET: &str = env!("XTASK_HOST_TARGET");

/// Runs `benches/instructions.rs` (release build, shared with the tests) with this command's
/// arguments (`--save`, or the parts to run, e.g. `P2 P5`).
fn bench(root: &Path) -> Result<(), String> {
    run(Command::new("cargo")
        .current_dir(root)
        .args(["bench", "--quiet", "--bench", "instructions", "--"])
        .args(std::env::args().skip(2)))
}

/// Runs `benches/profile.rs` (release build) with this command's arguments.
fn profile(root: &Path) -> Result<(), String> {
    run(Command::new("cargo")
        .current_dir(root)
        .args(["bench", "--quiet", "--bench", "profile", "--"])
        .args(std::env::args().skip(2)))
}

/// Runs `benches/cli.rs`, the CLI's wall time (printed, not gated), when the whole suite runs.
fn bench_cli(root: &Path) -> Result<(), String> {
    if std::env::args().nth(2).is_some() {
        return Ok(());
    }
    run(Command::new("cargo")
        .current_dir(root)
        .args(["bench", "--quiet", "--bench", "cli"]))
}

/// Deploys the freshly built canister into a scratch state directory and drives it with the
/// `plugin-host` CLI, exactly as a user would.
fn demo(root: &Path) -> Result<(), String> {
    run(Command::new("cargo").current_dir(root).args([
        "run",
        "-q",
        "--release",
        "--bin",
        "plugin-host",
        "--",
        "demo",
    ]))
}

/// Runs a command, failing with its description when it does not succeed.
pub fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// The Rust release the tests and the benchmarks' baseline (`benches/results.tsv`, gated at 5%)
/// are pinned to. rust-toolchain.toml names `stable`, since rustup here neither installs what
/// that file lists nor can fetch another release: the pin is checked instead.
const PINNED_RUST: &str = "1.95.0";

/// Fails unless `rustc` is the pinned release (a different compiler moves every instruction
/// count the benchmark gate compares).
fn check_toolchain() -> Result<(), String> {
    let output = Command::new("rustc")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let version = String::from_utf8_lossy(&output.stdout);
    match version.split_whitespace().nth(1) {
        Some(PINNED_RUST) => Ok(()),
        _ => Err(format!(
            "the tests and benchmarks are pinned to Rust {PINNED_RUST}, this is {}: make \
             {PINNED_RUST} the default toolchain, or move the pin (PINNED_RUST in \
             xtask/src/main.rs) and re-baseline with `cargo xtask bench --save`",
            version.trim()
        )),
    }
}

/// Makes sure the wasm target is installed (rustup does not install what rust-toolchain.toml lists here).
pub fn ensure_wasm_target(root: &Path) -> Result<(), String> {
    run(Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", "wasm32-unknown-unknown"]))
}

/// The repository root (the parent of this crate's directory).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn reads_cargo_test_result_lines() {
        let line = "ok. 13 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s";
        assert_eq!(count(line, " passed"), 13);
        assert_eq!(count(line, " failed"), 2);
        assert_eq!(count("FAILED. 1 passed; 1 failed; 0 ignored", " passed"), 1);
    }
}
