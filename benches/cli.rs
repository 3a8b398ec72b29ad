//! Wall time of the `plugin-host` CLI, as a plugin author feels it: a warm `invoke` (the compiled
//! canister loaded from the code cache) against a cold one (compiled first) in the same run.
//!
//! Wall time depends on the machine, so this prints a table and gates nothing (the instruction
//! benchmarks, `benches/instructions.rs`, are the gated ones). Goal (issue 16): a warm invoke of
//! a small plugin in at most 0.3 s, p50 of 20.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PLUGIN_HOST: &str = env!("CARGO_BIN_EXE_plugin-host");
const WARM_RUNS: usize = 20;
const COLD_RUNS: usize = 3;
const GOAL: Duration = Duration::from_millis(300);

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch =
        std::env::temp_dir().join(format!("plugin-host-cli-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let state = scratch.join("state");
    let cache = scratch.join("cache");
    run(root, &state, &cache, &["deploy"]);
    run(
        root,
        &state,
        &cache,
        &["install", "counter", "target/plugins/counter.wasm"],
    );
    let invoke = ["invoke", "counter", "increment"];
    let warm = timed(WARM_RUNS, || run(root, &state, &cache, &invoke));
    let cold = timed(COLD_RUNS, || {
        let empty = scratch.join("empty-cache");
        let _ = std::fs::remove_dir_all(&empty);
        run(root, &state, &empty, &invoke);
    });
    let _ = std::fs::remove_dir_all(&scratch);

    println!("| `plugin-host invoke counter increment` | runs | p50 | max | goal |");
    println!("|---|---|---|---|---|");
    let goal = if warm.0 <= GOAL { "met" } else { "**not met**" };
    println!(
        "| warm: canister code from the cache | {WARM_RUNS} | {:.3} s | {:.3} s | ≤ {:.1} s {goal} |",
        warm.0.as_secs_f64(),
        warm.1.as_secs_f64(),
        GOAL.as_secs_f64()
    );
    println!(
        "| cold: canister compiled first (baseline) | {COLD_RUNS} | {:.3} s | {:.3} s | |",
        cold.0.as_secs_f64(),
        cold.1.as_secs_f64()
    );
}

/// Runs `plugin-host` with `state` and the code cache in `cache`; panics if it fails.
fn run(root: &Path, state: &PathBuf, cache: &PathBuf, args: &[&str]) {
    let out = Command::new(PLUGIN_HOST)
        .current_dir(root)
        .env("PLUGIN_HOST_CACHE", cache)
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .expect("plugin-host runs");
    assert!(
        out.status.success(),
        "plugin-host {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (p50, max) wall time of `runs` calls of `work`.
fn timed(runs: usize, mut work: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[runs - 1])
}
