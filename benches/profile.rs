//! `cargo xtask profile SCENARIO [--top N] [--input TEXT]`: where one message's instructions go,
//! by canister function (wasmi's handlers included), counted exactly by a profiling local runtime
//! (`runtime/src/profile.rs`).
//!
//! Scenarios, each the message a benchmark figure measures (see `benches/README.md`):
//! `P1.<kernel>`, `P1s.<kernel>`, `P1b.<kernel>` (a kernel's second invoke, whole message: the
//! P1 figure subtracts a `noop` call from it), `P2.noop_rust`, `P2.noop_wat`, `P2.floor`,
//! `P3.cold`, `P3.counter`, `P3.creature`, `P3.as_words` (the first invoke after a canister
//! upgrade, `support::COLD_STARTS`), `P5.mem_<pages>p`, or `<plugin>.<function>` for an example
//! plugin in `target/plugins/` (its second call, as from the CLI, with `--input`). The canister is the un-shrunk build
//! (`target/dist/*.raw.wasm`), which keeps the function names; the scenario runs twice, without
//! and with the probes, and the profile's total is checked against the unprofiled count.

#![allow(missing_docs)]

mod support;

use std::path::Path;

use ic_local_runtime::Runtime;
use ic_local_runtime::profile::{FunctionCost, Profile};
use plugin_host_local::client::{CallKind, PluginHost};
use plugin_host_local::group_digits;
use support::{
    COLD_STARTS, ColdStart, admin, deploy_on, install, memory_plugin, read, warm_invoke, wat,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|at| args.get(at + 1))
            .cloned()
    };
    let top: usize = value("--top").and_then(|n| n.parse().ok()).unwrap_or(25);
    let input = value("--input").unwrap_or_default();
    let Some(name) = args
        .iter()
        .enumerate()
        .find(|&(i, a)| !a.starts_with("--") && (i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a.clone())
    else {
        eprintln!("usage: cargo xtask profile SCENARIO [--top N] [--input TEXT]");
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = Scenario::parse(&name, &input).unwrap_or_else(|e| {
        eprintln!("profile: {e}");
        std::process::exit(2);
    });

    let plain = scenario.run(root, &Runtime::new().expect("runtime"), Module::Raw);
    let deployed = scenario.run(root, &Runtime::new().expect("runtime"), Module::Deployed);
    let runtime = Runtime::profiling().expect("profiling runtime");
    scenario.run(root, &runtime, Module::Raw);
    let profile = runtime
        .take_profile()
        .expect("the runtime profiled the message");
    print(&name, &scenario, plain, &profile, top);
    println!(
        "the same message on the deployed (shrunk) module: {} instructions",
        group_digits(deployed)
    );
    if profile.total != plain {
        eprintln!(
            "profile: the profile's total {} differs from the unprofiled count {plain}",
            profile.total
        );
        std::process::exit(1);
    }
}

/// What to set up and which message to profile.
enum Scenario {
    /// The second invoke of `plugin.function(input)` on the canister module `canister`.
    Invoke {
        canister: &'static str,
        plugin: String,
        wasm: PluginWasm,
        function: String,
        input: String,
    },
    /// A second `clear_chunks` (P2's floor).
    Floor,
    /// A P3 case: the first invoke after a canister upgrade.
    Cold(&'static ColdStart),
}

/// Where a plugin's module comes from.
enum PluginWasm {
    /// `target/plugins/<name>.wasm`.
    Built(String),
    /// P5's one-store WAT plugin with this many pages.
    Memory(u32),
}

const CANISTER: &str = "target/dist/plugin_host.raw.wasm";
const BENCH_CANISTER: &str = "target/dist/plugin_host_bench.raw.wasm";

/// Which build of the canister a scenario runs on.
#[derive(Clone, Copy)]
enum Module {
    /// As compiled, with its name section (what is profiled).
    Raw,
    /// Shrunk and gzipped, what the benchmarks measure: the same code, so the same count
    /// (printed as a check).
    Deployed,
}

/// The path of `raw`'s build `module`.
fn module_path(raw: &str, module: Module) -> String {
    match module {
        Module::Raw => raw.to_string(),
        Module::Deployed => raw.replace(".raw.wasm", ".wasm.gz"),
    }
}

impl Scenario {
    fn parse(name: &str, input: &str) -> Result<Self, String> {
        let (part, rest) = name
            .split_once('.')
            .ok_or_else(|| format!("`{name}` is not PART.NAME or PLUGIN.FUNCTION"))?;
        let kernel = |plugin: &str, suffix: &str| {
            let (kernel, _, n) = bench_kernels::KERNELS
                .iter()
                .find(|(k, _, _)| *k == rest)
                .ok_or_else(|| format!("no kernel `{rest}`"))?;
            Ok(Scenario::Invoke {
                canister: BENCH_CANISTER,
                plugin: plugin.into(),
                wasm: PluginWasm::Built(plugin.into()),
                function: format!("{kernel}{suffix}"),
                input: n.to_string(),
            })
        };
        let built = |plugin: &str, function: &str| Scenario::Invoke {
            canister: CANISTER,
            plugin: plugin.into(),
            wasm: PluginWasm::Built(plugin.into()),
            function: function.into(),
            input: input.into(),
        };
        match (part, rest) {
            ("P1", _) => kernel("kernels_o3", ""),
            ("P1s", _) => kernel("kernels", ""),
            ("P1b", _) => kernel("kernels_o3", "_host"),
            ("P2", "noop_rust") => Ok(built("kernels", "noop")),
            ("P2", "noop_wat") => Ok(memory("wat-noop", 1)),
            ("P2", "floor") => Ok(Scenario::Floor),
            ("P3", _) => COLD_STARTS
                .iter()
                .find(|case| case.figure == name)
                .map(Scenario::Cold)
                .ok_or_else(|| {
                    let cases: Vec<&str> = COLD_STARTS.iter().map(|c| c.figure).collect();
                    format!("`{name}`: the P3 scenarios are {}", cases.join(", "))
                }),
            ("P5", pages) => pages
                .strip_prefix("mem_")
                .and_then(|p| p.strip_suffix('p'))
                .and_then(|p| p.parse().ok())
                .map(|pages| memory(&format!("mem-{pages}"), pages))
                .ok_or_else(|| format!("`{name}`: P5 scenarios are P5.mem_<pages>p")),
            (plugin, function) if !plugin.starts_with('P') => Ok(built(plugin, function)),
            _ => Err(format!("no scenario `{name}`")),
        }
    }

    /// Sets the scenario up on `runtime` with the canister's build `module` and runs its message
    /// last; returns its instructions.
    fn run(&self, root: &Path, runtime: &Runtime, module: Module) -> u64 {
        match self {
            Scenario::Invoke {
                canister,
                plugin,
                wasm,
                function,
                input,
            } => {
                let mut host = deploy_on(runtime, &read(root, &module_path(canister, module)));
                let wasm = match wasm {
                    PluginWasm::Built(name) => read(root, &format!("target/plugins/{name}.wasm")),
                    PluginWasm::Memory(pages) => wat(&memory_plugin(*pages)),
                };
                install(&mut host, plugin, wasm);
                warm_invoke(&mut host, plugin, function, input).instructions
            }
            Scenario::Floor => {
                let mut host = deploy_on(runtime, &read(root, &module_path(CANISTER, module)));
                for _ in 0..2 {
                    floor(&mut host);
                }
                host.last_instructions()
            }
            Scenario::Cold(case) => {
                let canister = read(root, &module_path(CANISTER, module));
                let mut host = deploy_on(runtime, &canister);
                case.run(root, &mut host, &canister).instructions
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Scenario::Invoke {
                canister,
                plugin,
                function,
                input,
                ..
            } => format!("second invoke of {plugin}.{function}({input:?}) on {canister}"),
            Scenario::Floor => format!(
                "second `clear_chunks` on {CANISTER}, freshly installed (the benchmark's \
                 follows P2's invokes, and costs a little more)"
            ),
            Scenario::Cold(case) => {
                let (function, input) = case.call;
                format!(
                    "first invoke of {}.{function}({input:?}) after a canister upgrade on \
                     {CANISTER}",
                    case.plugin
                )
            }
        }
    }
}

fn memory(plugin: &str, pages: u32) -> Scenario {
    Scenario::Invoke {
        canister: CANISTER,
        plugin: plugin.into(),
        wasm: PluginWasm::Memory(pages),
        function: "poke".into(),
        input: String::new(),
    }
}

fn floor(host: &mut PluginHost) {
    host.call::<_, ()>(CallKind::Update, "clear_chunks", (), admin())
        .expect("clear_chunks");
}

fn print(name: &str, scenario: &Scenario, plain: u64, profile: &Profile, top: usize) {
    println!("profile of {name}: {}", scenario.describe());
    println!(
        "total {} instructions (unprofiled: {}); {} outside any function\n",
        group_digits(profile.total),
        group_digits(plain),
        group_digits(profile.outside)
    );
    let table = |title: &str, key: fn(&FunctionCost) -> u64| {
        let mut rows: Vec<&FunctionCost> = profile.functions.iter().collect();
        rows.sort_by_key(|f| std::cmp::Reverse(key(f)));
        println!("top {top} by {title}:\n");
        println!("| self | % | inclusive | % | calls | function |");
        println!("|---:|---:|---:|---:|---:|---|");
        let percent = |n: u64| 100.0 * n as f64 / profile.total.max(1) as f64;
        for f in rows.iter().take(top) {
            println!(
                "| {} | {:.1} | {} | {:.1} | {} | `{}` |",
                group_digits(f.self_instructions),
                percent(f.self_instructions),
                group_digits(f.inclusive),
                percent(f.inclusive),
                group_digits(f.calls),
                f.name
            );
        }
        println!();
    };
    table("self instructions", |f| f.self_instructions);
    table("inclusive instructions", |f| f.inclusive);
}
