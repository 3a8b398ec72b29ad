//! Seeded fuzzing on stable Rust (`cargo xtask fuzz`): no cargo-fuzz, no coverage feedback;
//! every case is drawn from a small PRNG seeded by `(target, seed, case index)`, so a failure
//! replays from those three numbers alone.
//!
//! Targets (see each module):
//! - [`engine`]: wasm-smith plugins importing the whole ABI, installed, invoked, upgraded and
//!   reopened under small caps; after every failure the plugin's state is as before and the next
//!   call works; after every commit a fresh engine over the same stable memory sees what the live
//!   one sees.
//! - [`differential`]: wasm-smith modules without imports in the engine (real install + invoke,
//!   commit path included) and natively in wasmtime: same results, traps, memory and globals.
//! - [`canister`]: random and mutated Candid arguments to every method of the real canister in
//!   the local runtime, from every kind of caller; traps only where candid cannot decode, and no
//!   refused or failed call changes the state.
//! - [`store`]: random operation sequences on the engine's `PluginStore` against a `BTreeMap`
//!   model, reopening the store at any step, from an empty store or a layout-1 one.

pub mod canister;
pub mod differential;
pub mod engine;
pub mod rng;
pub mod store;
pub mod wasm;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::rng::Rng;

/// A fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Install and invoke wasm-smith plugins in the engine.
    Engine,
    /// The engine against wasmtime.
    Differential,
    /// Candid arguments to the canister in the local runtime.
    Candid,
    /// The stable store against a model.
    Store,
}

impl Target {
    /// Every target, in the order they run.
    pub const ALL: [Target; 4] = [
        Target::Store,
        Target::Engine,
        Target::Differential,
        Target::Candid,
    ];

    /// The target's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Engine => "engine",
            Target::Differential => "differential",
            Target::Candid => "candid",
            Target::Store => "store",
        }
    }

    /// The target named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Cases run when `--cases` is not given: about a minute for all four on two cores (what
    /// `cargo xtask test` runs).
    pub fn default_cases(self) -> u64 {
        match self {
            Target::Engine => 4_000,
            Target::Differential => 8_000,
            Target::Candid => 6_000,
            Target::Store => 20_000,
        }
    }
}

/// One case being run: its random numbers, what it counted and what to save if it fails.
pub struct Case {
    /// The case's random numbers.
    pub rng: Rng,
    /// Counts of what happened (outcomes, inconclusive runs, refusals), summed per target.
    pub notes: BTreeMap<String, u64>,
    /// Files to save beside the report if the case fails (name suffix, bytes).
    pub artifacts: Vec<(String, Vec<u8>)>,
}

impl Case {
    /// Counts one `what`.
    pub fn note(&mut self, what: impl Into<String>) {
        *self.notes.entry(what.into()).or_default() += 1;
    }

    /// Keeps `bytes` to save as `<report>-<name>` if the case fails.
    pub fn artifact(&mut self, name: impl Into<String>, bytes: &[u8]) {
        self.artifacts.push((name.into(), bytes.to_vec()));
    }
}

/// A case's verdict: `Err` is a failure, described.
pub type Verdict = Result<(), String>;

/// What runs the cases of one target (built once per run: the candid target deploys its
/// canister once).
pub type Runner = Box<dyn FnMut(&mut Case) -> Verdict>;

/// Prepares `target` for a run with `seed`.
pub fn runner(target: Target, seed: u64, options: &Options) -> Result<Runner, String> {
    Ok(match target {
        Target::Engine => Box::new(engine::run),
        Target::Differential => Box::new(differential::run),
        Target::Store => Box::new(store::run),
        Target::Candid => {
            let mut fixture = canister::Fixture::new(&options.canister_wasm, seed)?;
            Box::new(move |case| fixture.run(case))
        }
    })
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cases per target (`None`: each target's default).
    pub cases: Option<u64>,
    /// The run's seed.
    pub seed: u64,
    /// The targets to run.
    pub targets: Vec<Target>,
    /// Run only this case (to replay a failure).
    pub case: Option<u64>,
    /// Where failures are saved.
    pub failures_dir: PathBuf,
    /// The canister module for the candid target.
    pub canister_wasm: PathBuf,
    /// Threads per target: case `k` runs on thread `k % jobs`, each with its own runner (a
    /// case's outcome depends only on the target, the seed and `k`).
    pub jobs: usize,
}

/// What one target's run found.
#[derive(Debug, Default)]
pub struct TargetSummary {
    /// Cases run.
    pub cases: u64,
    /// Cases that failed.
    pub failures: u64,
    /// Summed notes of every case.
    pub notes: BTreeMap<String, u64>,
    /// Wall time.
    pub time: Duration,
    /// Reports written.
    pub reports: Vec<PathBuf>,
}

thread_local! {
    /// The last panic's message and location (the hook keeps it here instead of printing it).
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps panic messages for the report instead of printing them (once per process).
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let backtrace = std::backtrace::Backtrace::force_capture();
            PANIC.with(|p| {
                *p.borrow_mut() = Some(format!("{message}{location}\n\nbacktrace:\n{backtrace}"))
            });
        }));
    });
}

/// Runs one case of `runner`, turning a panic into a failure.
pub fn run_case(target: Target, seed: u64, index: u64, runner: &mut Runner) -> (Case, Verdict) {
    quiet_panics();
    let mut case = Case {
        rng: Rng::for_case(target.name(), seed, index),
        notes: BTreeMap::new(),
        artifacts: Vec::new(),
    };
    let verdict = match catch_unwind(AssertUnwindSafe(|| runner(&mut case))) {
        Ok(verdict) => verdict,
        Err(_) => Err(format!(
            "panic: {}",
            PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "(no message)".into())
        )),
    };
    (case, verdict)
}

/// The command that replays case `index` of `target` with `seed`.
pub fn replay_command(target: Target, seed: u64, index: u64) -> String {
    format!(
        "cargo xtask fuzz --target {} --seed {seed} --case {index}",
        target.name()
    )
}

/// A case that takes longer than this is named in the output.
const SLOW_CASE: Duration = Duration::from_secs(3);

/// Runs `target`'s cases on [`Options::jobs`] threads, saving failures; prints a line per
/// failure.
pub fn run_target(target: Target, options: &Options) -> Result<TargetSummary, String> {
    let started = Instant::now();
    let cases: Vec<u64> = match options.case {
        Some(case) => vec![case],
        None => (0..options.cases.unwrap_or_else(|| target.default_cases())).collect(),
    };
    let jobs = options.jobs.clamp(1, cases.len().max(1));
    let parts = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..jobs)
            .map(|job| {
                let mine: Vec<u64> = cases.iter().copied().skip(job).step_by(jobs).collect();
                scope.spawn(move || run_cases(target, options, &mine))
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err("a fuzz thread panicked outside a case".into()))
            })
            .collect::<Vec<_>>()
    });
    let mut summary = TargetSummary::default();
    for part in parts {
        let part = part?;
        summary.cases += part.cases;
        summary.failures += part.failures;
        for (what, n) in part.notes {
            *summary.notes.entry(what).or_default() += n;
        }
        summary.reports.extend(part.reports);
    }
    summary.time = started.elapsed();
    Ok(summary)
}

/// Runs `cases` of `target` with one runner, in order.
fn run_cases(target: Target, options: &Options, cases: &[u64]) -> Result<TargetSummary, String> {
    let mut runner = runner(target, options.seed, options)?;
    let mut summary = TargetSummary::default();
    for &index in cases {
        let case_started = Instant::now();
        let (case, verdict) = run_case(target, options.seed, index, &mut runner);
        let took = case_started.elapsed();
        if took > SLOW_CASE {
            println!(
                "slow: {} case {index} took {:.1} s",
                target.name(),
                took.as_secs_f64()
            );
        }
        summary.cases += 1;
        for (what, n) in case.notes.iter() {
            *summary.notes.entry(what.clone()).or_default() += n;
        }
        if let Err(message) = verdict {
            summary.failures += 1;
            let report = save_failure(options, target, index, &message, &case)
                .map_err(|e| format!("saving the failure of case {index}: {e}"))?;
            let first_line = message.lines().next().unwrap_or_default();
            println!(
                "FAILED {} case {index}: {first_line}\n  report: {}\n  replay: {}",
                target.name(),
                report.display(),
                replay_command(target, options.seed, index)
            );
            if options.case.is_some() {
                println!("{message}");
            }
            summary.reports.push(report);
        }
    }
    Ok(summary)
}

fn save_failure(
    options: &Options,
    target: Target,
    index: u64,
    message: &str,
    case: &Case,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(&options.failures_dir)?;
    let stem = format!("{}-{}-{index}", target.name(), options.seed);
    let report = options.failures_dir.join(format!("{stem}.txt"));
    let mut text = format!(
        "fuzz target {} seed {} case {index}\nreplay: {}\n\n{message}\n",
        target.name(),
        options.seed,
        replay_command(target, options.seed, index)
    );
    for (name, bytes) in &case.artifacts {
        let path = artifact_path(&options.failures_dir, &stem, name);
        std::fs::write(&path, bytes)?;
        text.push_str(&format!("artifact: {}\n", path.display()));
    }
    if !case.notes.is_empty() {
        text.push_str(&format!("notes: {:?}\n", case.notes));
    }
    std::fs::write(&report, text)?;
    Ok(report)
}

fn artifact_path(dir: &Path, stem: &str, name: &str) -> PathBuf {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{stem}-{name}"))
}
