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
  test            build, then run every test (the command CI runs)
  fuzz [--cases N] [--seed S] [--target T] [--case K]
                  run the fuzz targets (engine, differential, candid, store; crate fuzz/)
                  with seeded random cases; --case replays one saved failure
  bench [--save | P1 … P7]
                  build (with the bench build of the canister), then run the instruction
                  benchmarks: all of them (--save writes benches/results.tsv) or those parts";

fn main() -> ExitCode {
    let root = repo_root();
    let command = std::env::args().nth(1).unwrap_or_default();
    let result = match command.as_str() {
        "build" => build(&root),
        "build-canister" => canister::build(&root).map(drop),
        "build-plugins" => plugins::build(&root),
        "demo" => build(&root).and_then(|()| demo(&root)),
        "test" => build(&root).and_then(|()| test(&root)),
        "fuzz" => fuzz(&root, &std::env::args().skip(2).collect::<Vec<_>>()),
        "bench" => build(&root)
            .and_then(|()| canister::build_bench(&root))
            .and_then(|_| bench(&root)),
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

/// Runs the whole test suite in release mode, so wasmtime and wasmi are built once for tests,
/// the CLI and the benchmarks alike; ends with one line totalling every test binary's results.
fn test(root: &Path) -> Result<(), String> {
    let mut totals = TestTotals::default();
    let pocket_ic = std::env::var_os("POCKET_IC_BIN").is_some();
    let mut workspace = Command::new("cargo");
    workspace
        .current_dir(root)
        .args(["test", "--release", "--workspace"]);
    if !pocket_ic {
        workspace.args(["--", "--skip", POCKET_IC_TESTS]);
    }
    totals.run(&mut workspace)?;
    // The plugins' own logic (vote counting), natively.
    totals.run(
        Command::new("cargo")
            .current_dir(root.join("plugins"))
            .args([
                "test",
                "--release",
                "--locked",
                "--package",
                "dao_voting",
                "--target",
                HOST_TARGET,
            ]),
    )?;
    if !pocket_ic {
        let compiled = pocket_ic_tests(root)?;
        eprintln!(
            "xtask: PocketIC tests skipped: POCKET_IC_BIN is not set ({compiled} tests compiled, \
             not run)"
        );
    }
    // The fuzz targets with a fixed seed and each target's default budget (about a minute).
    println!("xtask: fuzzing with seed {CI_FUZZ_SEED}, each target's default budget");
    let fuzzed = fuzz(root, &["--seed".to_owned(), CI_FUZZ_SEED.to_string()]);
    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    fuzzed
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

/// The name prefix of the PocketIC tests (module `on_pocket_ic` of `tests/pocket_ic.rs`). They
/// need a PocketIC server (`POCKET_IC_BIN`); without one they are compiled but filtered out.
const POCKET_IC_TESTS: &str = "on_pocket_ic::";

/// How many PocketIC tests the (already built) test binaries hold, listed without running them.
fn pocket_ic_tests(root: &Path) -> Result<usize, String> {
    let mut command = Command::new("cargo");
    command.current_dir(root).args([
        "test",
        "--release",
        "--workspace", // the same selection as the test run, so nothing is rebuilt
        "--tests",
        "--quiet",
        "--",
        "--list",
    ]);
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{command:?} failed with {}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with(POCKET_IC_TESTS) && line.ends_with(": test"))
        .count())
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
