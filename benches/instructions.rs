//! `cargo xtask bench`: what plugin_host costs, in IC instructions (the local runtime's estimates
//! of the replica's counts), always against a baseline measured in the same run.
//!
//! Every figure is printed in one table with its goal (issue 7) and compared with the committed
//! results in `benches/results.tsv`: a figure more than 5% worse is flagged and the run fails.
//! `--save` writes the new figures there instead. The figures are explained in `benches/README.md`.

#![allow(missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use candid::Principal;
use plugin_host_api::{ByteBuf, InitArgs, InstallChunkedArgs, InstallPolicy, ListArgs};
use plugin_host_local::client::{CallKind, PluginHost};
use plugin_host_local::group_digits;
use plugin_host_local::identity;
use sha2::{Digest, Sha256};
use support::{
    COLD_STARTS, NativeRun, Run, admin, deploy, install, install_as, invoke, memory_plugin, read,
    warm_invoke, wat,
};

/// A figure regresses when it is this much worse than the committed one.
const TOLERANCE: f64 = 0.05;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let save = args.iter().any(|a| a == "--save");
    // `cargo xtask bench P2 P5` runs only those parts (and saves nothing).
    let only: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with('P'))
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bench = Bench::default();
    let parts: [(&str, Part); 8] = [
        ("P1", Bench::p1_interpretation_ratio),
        ("P2", Bench::p2_warm_invoke),
        ("P3", Bench::p3_cold_invoke),
        ("P4", Bench::p4_install),
        ("P5", Bench::p5_durable_state),
        ("P6", Bench::p6_scale),
        ("P7", Bench::p7_canister_size),
        ("P8", Bench::p8_real_workloads),
    ];
    for (part, run) in parts {
        if only.is_empty() || only.contains(&part) {
            run(&mut bench, root);
        }
    }

    let results = root.join("benches/results.tsv");
    let committed = read_results(&results);
    let regressions = bench.print(&committed);
    if save && only.is_empty() {
        std::fs::write(&results, bench.tsv()).expect("write benches/results.tsv");
        println!("\nsaved {}", results.display());
    } else if regressions > 0 {
        eprintln!(
            "\n{regressions} figure(s) regressed by more than 5% against benches/results.tsv"
        );
        std::process::exit(1);
    }
}

/// One part of the suite (P1 … P8): measures and adds its figures.
type Part = fn(&mut Bench, &Path);

/// One measured figure. Lower is better for all of them.
struct Figure {
    id: String,
    what: String,
    value: f64,
    unit: &'static str,
    goal: Option<f64>,
}

#[derive(Default)]
struct Bench {
    figures: Vec<Figure>,
}

impl Bench {
    fn add(&mut self, id: &str, what: String, value: f64, unit: &'static str, goal: Option<f64>) {
        eprintln!("bench: {id} = {value:.2} {unit}");
        self.figures.push(Figure {
            id: id.to_owned(),
            what,
            value,
            unit,
            goal,
        });
    }

    /// P1: each kernel natively inside the bench canister (opt-level 3, as the canister is built)
    /// and as the `kernels` plugin built the same way (`kernels_o3`: the goal's figure, `P1`)
    /// and at opt-level "s", as every example plugin is built (`kernels`: `P1s`).
    fn p1_interpretation_ratio(&mut self, root: &Path) {
        let mut host = deploy(&read(root, "target/dist/plugin_host_bench.wasm.gz"));
        let mut natives = BTreeMap::new();
        for (kernel, what, n) in bench_kernels::KERNELS {
            let native: Option<NativeRun> = host
                .call::<_, (Option<NativeRun>,)>(
                    CallKind::Update,
                    "bench_native",
                    (kernel, n),
                    admin(),
                )
                .expect("bench_native")
                .0;
            let native = native.unwrap_or_else(|| panic!("the bench canister lacks `{kernel}`"));
            natives.insert(*kernel, (native, *what, *n));
        }
        let builds = [
            ("kernels_o3", "P1", "opt-level 3, as native", Some(10.0)),
            ("kernels", "P1s", "opt-level \"s\"", None),
        ];
        let mut fixed_o3 = 0;
        for (plugin, part, build, goal) in builds {
            install(
                &mut host,
                plugin,
                read(root, &format!("target/plugins/{plugin}.wasm")),
            );
            let fixed = warm_invoke(&mut host, plugin, "noop", "").instructions;
            if plugin == "kernels_o3" {
                fixed_o3 = fixed;
            }
            let mut log_sum = 0.0;
            for (kernel, _, _) in bench_kernels::KERNELS {
                let (native, what, n) = &natives[kernel];
                let run = warm_invoke(&mut host, plugin, kernel, &n.to_string());
                let interpreted =
                    beyond_fixed(&run, native, fixed, &format!("{kernel} ({build})")) as f64;
                let ratio = interpreted / native.instructions as f64;
                log_sum += ratio.ln();
                self.add(
                    &format!("{part}.{kernel}"),
                    format!(
                        "{what}, n={n}: native {} vs plugin ({build}) {} ({:.1} instr/fuel)",
                        group_digits(native.instructions),
                        group_digits(interpreted as u64),
                        interpreted / run.fuel_used as f64
                    ),
                    ratio,
                    "x",
                    None,
                );
            }
            let geomean = (log_sum / bench_kernels::KERNELS.len() as f64).exp();
            self.add(
                &format!("{part}.geomean"),
                format!("interpretation ratio, geometric mean, plugin at {build}"),
                geomean,
                "x",
                goal,
            );
        }
        let fixed = fixed_o3;

        // P1b: the kernels that can, with the host's native primitives instead of their own.
        for kernel in bench_kernels::KERNELS_WITH_PRIMITIVES {
            let (native, what, n) = &natives[kernel];
            let function = format!("{kernel}_host");
            let run = warm_invoke(&mut host, "kernels_o3", &function, &n.to_string());
            let interpreted = beyond_fixed(&run, native, fixed, &function);
            self.add(
                &format!("P1b.{kernel}"),
                format!(
                    "{what} with host primitives, n={n}: native {} vs plugin (opt-level 3) {}",
                    group_digits(native.instructions),
                    group_digits(interpreted),
                ),
                interpreted as f64 / native.instructions as f64,
                "x",
                Some(2.0),
            );
        }
    }

    /// P2: the whole update message of a warm no-op call.
    fn p2_warm_invoke(&mut self, root: &Path) {
        let mut host = deploy(&read(root, "target/dist/plugin_host.wasm.gz"));
        let info = install(
            &mut host,
            "kernels",
            read(root, "target/plugins/kernels.wasm"),
        );
        let warm = warm_invoke(&mut host, "kernels", "noop", "");
        self.add(
            "P2.noop_rust",
            format!(
                "warm invoke, no-op of the Rust extism-pdk kernels plugin ({} pages)",
                info.memory_pages
            ),
            warm.instructions as f64,
            "instr",
            Some(60_000.0),
        );
        install(&mut host, "wat-noop", wat(&memory_plugin(1)));
        let warm = warm_invoke(&mut host, "wat-noop", "poke", "");
        self.add(
            "P2.noop_wat",
            "warm invoke, one-store WAT plugin (1 page)".into(),
            warm.instructions as f64,
            "instr",
            Some(60_000.0),
        );
        // The second call: the first encodes the reply's type part (cached from then on).
        for _ in 0..2 {
            host.call::<_, ()>(CallKind::Update, "clear_chunks", (), admin())
                .expect("clear_chunks");
        }
        self.add(
            "P2.floor",
            "baseline: a second `clear_chunks` with nothing to clear (any update's floor)".into(),
            host.last_instructions() as f64,
            "instr",
            None,
        );
    }

    /// P3: the first call after a canister upgrade (recompile and restore): the kernels plugin
    /// and the demo's example plugins, each on a canister of its own.
    fn p3_cold_invoke(&mut self, root: &Path) {
        let canister = read(root, "target/dist/plugin_host.wasm.gz");
        for case in &COLD_STARTS {
            let mut host = deploy(&canister);
            let cold = case.run(root, &mut host, &canister);
            let size = read(root, &format!("target/plugins/{}.wasm", case.wasm)).len();
            let (function, _) = case.call;
            self.add(
                case.figure,
                format!(
                    "first invoke after a canister upgrade: {}.{function} ({} KiB module)",
                    case.plugin,
                    size / 1024
                ),
                cold.instructions as f64,
                "instr",
                Some(case.goal as f64),
            );
        }
    }

    /// P4: install cost per byte of module, from small plugins to 5 MiB (chunked).
    fn p4_install(&mut self, root: &Path) {
        let mut host = deploy(&read(root, "target/dist/plugin_host.wasm.gz"));
        for plugin in ["counter", "kernels", "dao_voting_v2"] {
            let wasm = read(root, &format!("target/plugins/{plugin}.wasm"));
            let size = wasm.len();
            install(&mut host, plugin, wasm);
            let per_byte = host.last_instructions() as f64 / size as f64;
            self.add(
                &format!("P4.{plugin}"),
                format!(
                    "install {plugin} ({} KiB): {} instr",
                    size / 1024,
                    group_digits(host.last_instructions())
                ),
                per_byte,
                "instr/B",
                Some(60.0),
            );
        }
        for mib in [1usize, 5] {
            let wasm = generated_module(mib << 20);
            let size = wasm.len();
            let instructions = install_chunked(&mut host, &format!("generated-{mib}mib"), &wasm);
            self.add(
                &format!("P4.generated_{mib}mib"),
                format!(
                    "install a generated {mib} MiB module in 1 MiB chunks: {} instr",
                    group_digits(instructions)
                ),
                instructions as f64 / size as f64,
                "instr/B",
                Some(60.0),
            );
        }
    }

    /// P5: one call that writes one byte, on plugins with more and more memory.
    fn p5_durable_state(&mut self, root: &Path) {
        let mut host = deploy(&read(root, "target/dist/plugin_host.wasm.gz"));
        let mut smallest = 0;
        for (pages, label) in [
            (1, "64 KiB"),
            (16, "1 MiB"),
            (256, "16 MiB"),
            (1024, "64 MiB"),
        ] {
            let name = format!("mem-{pages}");
            install(&mut host, &name, wat(&memory_plugin(pages)));
            let warm = warm_invoke(&mut host, &name, "poke", "").instructions;
            if pages == 1 {
                smallest = warm;
            }
            self.add(
                &format!("P5.mem_{pages}p"),
                format!("write one byte, {label} of memory"),
                warm as f64,
                "instr",
                None,
            );
            if pages == 1024 {
                self.add(
                    "P5.growth",
                    "64 MiB over 64 KiB, same one-byte write".into(),
                    warm as f64 / smallest as f64,
                    "x",
                    Some(2.0),
                );
            }
        }
    }

    /// P6: invoke and a `list` page with 10, 1,000 and 10,000 plugins installed.
    fn p6_scale(&mut self, root: &Path) {
        let canister = read(root, "target/dist/plugin_host.wasm.gz");
        // Ten admins own the plugins: an owner may have 1,000.
        let owners: Vec<Principal> = (0..10)
            .map(|i| identity::principal(&format!("owner{i}")))
            .collect();
        let init = InitArgs {
            admins: Some(owners.clone()),
            install_policy: Some(InstallPolicy::AdminsOnly),
            ..InitArgs::default()
        };
        let mut host =
            PluginHost::deploy(&canister, Some(init), admin()).expect("canister deploys");
        let wasm = wat(&memory_plugin(1));
        let mut installed = 0;
        let mut first = None;
        for count in [10usize, 1_000, 10_000] {
            while installed < count {
                let owner = owners[installed / 1_000];
                install_as(&mut host, owner, &format!("p{installed:05}"), wasm.clone());
                installed += 1;
                // Keep the local runtime fast: it copies the canister heap in and out of every
                // message, and each install leaves a warm instance. An upgrade empties the caches.
                if installed.is_multiple_of(50) {
                    host.upgrade_canister(&canister, None, admin())
                        .expect("canister upgrade");
                }
            }
            eprintln!("bench: P6 with {count} plugins installed");
            let name = "p00005";
            let invoke_cost = warm_invoke(&mut host, name, "poke", "").instructions;
            host.list(
                admin(),
                ListArgs {
                    start_after: None,
                    limit: Some(10),
                },
            )
            .expect("list");
            let list_cost = host.last_instructions();
            let (invoke_base, list_base) = *first.get_or_insert((invoke_cost, list_cost));
            self.add(
                &format!("P6.invoke_{count}"),
                format!("warm invoke with {count} plugins installed"),
                invoke_cost as f64,
                "instr",
                Some(invoke_base as f64 * 1.1),
            );
            self.add(
                &format!("P6.list_{count}"),
                format!("`list`, first page of 10, with {count} plugins installed"),
                list_cost as f64,
                "instr",
                Some(list_base as f64 * 1.1),
            );
        }
    }

    /// P7: the canister module's size.
    fn p7_canister_size(&mut self, root: &Path) {
        for (id, file, what) in [
            (
                "P7.raw",
                "plugin_host.raw.wasm",
                "canister module as compiled",
            ),
            (
                "P7.shrunk",
                "plugin_host.wasm",
                "after ic-wasm shrink (+ Candid metadata)",
            ),
            (
                "P7.gzipped",
                "plugin_host.wasm.gz",
                "gzipped: what is deployed",
            ),
        ] {
            let size = read(root, &format!("target/dist/{file}")).len();
            let goal = (id == "P7.gzipped").then_some(1024.0 * 1024.0);
            self.add(id, what.into(), size as f64, "bytes", goal);
        }
    }

    /// P8: real workloads, the same Rust code natively in the bench build and under wasmi: the
    /// example plugins `dao_voting` (its `decide`; built as native, `P8`, and as shipped, `P8s`)
    /// and `nft` (its `mint`, as shipped: opt-level "s"), and the JSON round trip of
    /// `benches/kernels` as the `json_round_trip` plugin (opt-level 3, as native). A call's own
    /// count is the whole warm message minus a warm no-op of the Rust `kernels` plugin (P2's
    /// `noop_rust`: the fixed cost of a call); per ballot, the difference between 1,000 and 10
    /// ballots, in which the fixed cost cancels.
    fn p8_real_workloads(&mut self, root: &Path) {
        let mut host = deploy(&read(root, "target/dist/plugin_host_bench.wasm.gz"));
        install(
            &mut host,
            "kernels",
            read(root, "target/plugins/kernels.wasm"),
        );
        let fixed = warm_invoke(&mut host, "kernels", "noop", "").instructions;

        // `dao_voting.decide` under its default rule (token-weighted), warm: the second call;
        // built as native (the goal's figure, `P8`) and as shipped (`P8s`).
        let builds = [
            ("dao_voting_o3", "P8", "opt-level 3, as native", Some(10.0)),
            ("dao_voting", "P8s", "opt-level \"s\", as shipped", None),
        ];
        for (plugin, part, build, goal) in builds {
            install(
                &mut host,
                plugin,
                read(root, &format!("target/plugins/{plugin}.wasm")),
            );
            let mut decided = Vec::new();
            for n in [10u64, 100, 1_000] {
                let ballots = ballots(n);
                let native = native_workload(&mut host, "dao_voting.decide", ballots.as_bytes());
                let run = warm_invoke(&mut host, plugin, "decide", &ballots);
                let call = beyond_fixed(
                    &run,
                    &native,
                    fixed,
                    &format!("decide, {n} ballots ({build})"),
                );
                self.add(
                    &format!("{part}.decide_{n}"),
                    format!(
                        "`dao_voting.decide`, {} ballots ({:.1} KiB of JSON): native {} ({} per \
                         ballot) vs plugin ({build}) {} ({} per ballot; whole message {})",
                        group_digits(n),
                        ballots.len() as f64 / 1024.0,
                        group_digits(native.instructions),
                        group_digits(native.instructions / n),
                        group_digits(call),
                        group_digits(call / n),
                        group_digits(run.instructions)
                    ),
                    call as f64 / native.instructions as f64,
                    "x",
                    None,
                );
                decided.push((n, run.instructions, native.instructions));
            }
            let (few, few_plugin, few_native) = decided[0];
            let (many, many_plugin, many_native) = decided[decided.len() - 1];
            let extra = (many - few) as f64;
            let plugin_per_ballot = many_plugin.saturating_sub(few_plugin) as f64 / extra;
            let native_per_ballot = many_native.saturating_sub(few_native) as f64 / extra;
            self.add(
                &format!("{part}.decide_per_ballot"),
                format!(
                    "`decide`, one more ballot ({} ballots against {few}): native {} vs \
                     plugin ({build}) {}",
                    group_digits(many),
                    group_digits(native_per_ballot.round() as u64),
                    group_digits(plugin_per_ballot.round() as u64)
                ),
                plugin_per_ballot / native_per_ballot,
                "x",
                goal,
            );
        }

        // `nft.mint` succeeds once per plugin: a first installation's mint translates its code
        // (translation is per module, shared by installations of the same module); the second
        // installation's mint is measured.
        let nft = read(root, "target/plugins/nft.wasm");
        install(&mut host, "nft-first", nft.clone());
        invoke(&mut host, "nft-first", "mint", "");
        install(&mut host, "nft", nft);
        let now_ns = host.canister().time();
        let run = invoke(&mut host, "nft", "mint", "");
        // The facts the plugin gets from its host: the caller, the time, and the seed, sha256 of
        // the plugin's name, its call count (0), the time and the caller (public facts, as
        // `ic_plugin_kit::seed` says).
        let caller = admin();
        let seed = Sha256::digest(
            [
                b"nft".as_slice(),
                &0u64.to_le_bytes(),
                &now_ns.to_le_bytes(),
                caller.as_slice(),
            ]
            .concat(),
        );
        let owner: String = caller
            .as_slice()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let facts = [seed.as_slice(), &now_ns.to_le_bytes(), owner.as_bytes()].concat();
        let native = native_workload(&mut host, "nft.mint", &facts);
        let call = beyond_fixed(&run, &native, fixed, "nft.mint");
        self.add(
            "P8.nft_mint",
            format!(
                "`nft.mint` ({} bytes of JSON out): native {} vs plugin {} (whole message {})",
                run.output.len(),
                group_digits(native.instructions),
                group_digits(call),
                group_digits(run.instructions)
            ),
            call as f64 / native.instructions as f64,
            "x",
            None,
        );

        // The JSON round trip of a proposal document, warm: the second call.
        install(
            &mut host,
            "json_round_trip",
            read(root, "target/plugins/json_round_trip_o3.wasm"),
        );
        let document = bench_kernels::round_trip::document(ROUND_TRIP_BALLOTS);
        let native = native_workload(&mut host, "json_round_trip.round_trip", document.as_bytes());
        let run = warm_invoke(&mut host, "json_round_trip", "round_trip", &document);
        let call = beyond_fixed(&run, &native, fixed, "round_trip");
        self.add(
            "P8.json_round_trip",
            format!(
                "JSON round trip of a {:.1} KiB proposal through typed structs: native {} vs \
                 plugin (opt-level 3) {} (whole message {})",
                document.len() as f64 / 1024.0,
                group_digits(native.instructions),
                group_digits(call),
                group_digits(run.instructions)
            ),
            call as f64 / native.instructions as f64,
            "x",
            None,
        );
    }

    /// Prints the table; returns how many figures regressed against `committed`.
    fn print(&self, committed: &BTreeMap<String, f64>) -> usize {
        println!("| figure | what | value | goal | vs committed |");
        println!("|---|---|---|---|---|");
        let mut regressions = 0;
        for f in &self.figures {
            let goal = match f.goal {
                Some(goal) if f.value <= goal => format!("≤ {} met", show(goal, f.unit)),
                Some(goal) => format!("≤ {} **not met**", show(goal, f.unit)),
                None => String::new(),
            };
            let versus = match committed.get(&f.id) {
                Some(old) if *old > 0.0 => {
                    let change = f.value / old - 1.0;
                    if change > TOLERANCE {
                        regressions += 1;
                        format!("{:+.1}% **REGRESSED**", change * 100.0)
                    } else {
                        format!("{:+.1}%", change * 100.0)
                    }
                }
                _ => "new".into(),
            };
            println!(
                "| {} | {} | {} | {goal} | {versus} |",
                f.id,
                f.what,
                show(f.value, f.unit)
            );
        }
        regressions
    }

    fn tsv(&self) -> String {
        let mut out = String::from("# figure\tvalue (written by `cargo xtask bench --save`)\n");
        for f in &self.figures {
            let _ = writeln!(out, "{}\t{}", f.id, f.value);
        }
        out
    }
}

fn show(value: f64, unit: &str) -> String {
    match unit {
        "x" => format!("{value:.2}x"),
        "instr/B" => format!("{value:.1} instr/B"),
        "bytes" => format!("{} B", group_digits(value as u64)),
        _ => group_digits(value as u64),
    }
}

fn read_results(path: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (id, value) = line.split_once('\t')?;
            Some((id.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Ballots in the JSON round trip's proposal document (about 4 KiB).
const ROUND_TRIP_BALLOTS: u64 = 40;

/// `n` ballots of distinct voters for `dao_voting.decide`, as JSON (about 60 bytes each).
fn ballots(n: u64) -> String {
    let ballots: Vec<String> = (0..n)
        .map(|i| {
            let choice = ["yes", "no", "yes", "abstain"][i as usize % 4];
            format!(
                r#"{{"voter":"voter-{i:05}","weight":{},"choice":"{choice}"}}"#,
                1 + i * 37 % 1000
            )
        })
        .collect();
    format!(
        r#"{{"proposal":"p8-{n}","total_supply":{},"ballots":[{}]}}"#,
        n * 1000,
        ballots.join(",")
    )
}

/// Runs `workload` natively on `input` in the bench canister (`bench_native_workload`).
/// What a plugin's run cost beyond `fixed` (a warm call's fixed cost), once it is checked to have
/// answered what the native run of `what` did.
fn beyond_fixed(run: &Run, native: &NativeRun, fixed: u64, what: &str) -> u64 {
    assert_eq!(
        run.output,
        native.output.as_slice(),
        "{what}: the plugin and the native build disagree"
    );
    run.instructions.saturating_sub(fixed)
}

fn native_workload(host: &mut PluginHost, workload: &str, input: &[u8]) -> NativeRun {
    host.call::<_, (Option<NativeRun>,)>(
        CallKind::Update,
        "bench_native_workload",
        (workload, ByteBuf::from(input.to_vec())),
        admin(),
    )
    .expect("bench_native_workload")
    .0
    .unwrap_or_else(|| panic!("the bench canister lacks `{workload}`, or it failed"))
}

fn install_chunked(host: &mut PluginHost, name: &str, wasm: &[u8]) -> u64 {
    let mut instructions = 0;
    let mut chunk_hashes = Vec::new();
    for chunk in wasm.chunks(1 << 20) {
        let hash = host
            .upload_chunk(admin(), chunk)
            .expect("upload message")
            .expect("chunk stored");
        instructions += host.last_instructions();
        chunk_hashes.push(hash);
    }
    let args = InstallChunkedArgs {
        name: name.to_owned(),
        wasm_sha256: ByteBuf::from(Sha256::digest(wasm).to_vec()),
        chunk_hashes,
        config: None,
        invoke_policy: None,
        fuel_limit: None,
    };
    host.install_chunked(admin(), args)
        .expect("install message")
        .unwrap_or_else(|e| panic!("install {name}: {e:?}"));
    instructions + host.last_instructions()
}

/// A valid module of about `bytes` bytes: exported functions with straight-line integer code.
fn generated_module(bytes: usize) -> Vec<u8> {
    const BODY_OPS: usize = 200;
    let mut body = String::from("(local $x i32) (local.set $x (i32.const 1))");
    for i in 0..BODY_OPS {
        let _ = write!(
            body,
            " (local.set $x (i32.xor (i32.mul (local.get $x) (i32.const {})) (i32.const {})))",
            i * 7 + 3,
            i * 13 + 1
        );
    }
    let one = wat(&format!(
        "(module (func (export \"f\") (result i32) {body} (local.get $x)))"
    ));
    let functions = bytes / one.len().max(1);
    // One export, as in large real modules (the host caps plugin functions at 1,000).
    let mut text = String::from("(module\n");
    for f in 0..functions {
        let export = if f == 0 { "(export \"f0\")" } else { "" };
        let _ = writeln!(text, "  (func {export} (result i32) {body} (local.get $x))");
    }
    text.push(')');
    wat(&text)
}
