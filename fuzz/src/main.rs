//! `plugin-host-fuzz` (run by `cargo xtask fuzz`): runs the fuzz targets of `plugin-host-fuzz`
//! and prints one line per target and, last, `fuzz: N cases, F failures`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use plugin_host_fuzz::{Options, Target, run_target};

const USAGE: &str = "usage: plugin-host-fuzz [--cases N] [--seed S] [--target T[,T...]] [--case K]

  --cases N   cases per target (default: each target's CI budget, about a minute in all)
  --seed S    the run's seed (default: from the clock; printed)
  --target T  engine, differential, candid, store or all (default: all)
  --case K    run only case K (replays a saved failure)
  --jobs J    threads per target (default: the machine's cores)
  --canister PATH  the canister module for the candid target
                   (default: target/dist/plugin_host.wasm.gz)";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn parse(args: &[String]) -> Result<Options, String> {
    let root = repo_root();
    let mut options = Options {
        cases: None,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(0),
        targets: Target::ALL.to_vec(),
        case: None,
        failures_dir: root.join("target/fuzz-failures"),
        canister_wasm: root.join("target/dist/plugin_host.wasm.gz"),
        jobs: std::thread::available_parallelism().map_or(1, usize::from),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{arg} {v}: {e}"));
        match arg.as_str() {
            "--cases" => options.cases = Some(number(value()?)?),
            "--seed" => options.seed = number(value()?)?,
            "--case" => options.case = Some(number(value()?)?),
            "--jobs" => options.jobs = usize::try_from(number(value()?)?).unwrap_or(usize::MAX),
            "--canister" => options.canister_wasm = PathBuf::from(value()?),
            "--target" => {
                let v = value()?;
                options.targets = if v == "all" {
                    Target::ALL.to_vec()
                } else {
                    v.split(',')
                        .map(|t| Target::parse(t).ok_or_else(|| format!("unknown target `{t}`")))
                        .collect::<Result<_, _>>()?
                };
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    println!(
        "fuzz: seed {}, {} threads per target, targets {}, {}",
        options.seed,
        options.jobs,
        options
            .targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", "),
        match (options.case, options.cases) {
            (Some(case), _) => format!("case {case} only"),
            (None, Some(n)) => format!("{n} cases per target"),
            (None, None) => "each target's default number of cases".into(),
        }
    );
    let (mut cases, mut failures) = (0, 0);
    for target in options.targets.clone() {
        match run_target(target, &options) {
            Ok(summary) => {
                cases += summary.cases;
                failures += summary.failures;
                let notes: Vec<String> = summary
                    .notes
                    .iter()
                    .map(|(what, n)| format!("{what}: {n}"))
                    .collect();
                println!(
                    "{}: {} cases, {} failures, {:.1} s\n  {}",
                    target.name(),
                    summary.cases,
                    summary.failures,
                    summary.time.as_secs_f64(),
                    notes.join("\n  ")
                );
            }
            Err(message) => {
                println!("{}: could not run: {message}", target.name());
                failures += 1;
            }
        }
    }
    println!("wall time {:.1} s", started.elapsed().as_secs_f64());
    println!("fuzz: {cases} cases, {failures} failures");
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
