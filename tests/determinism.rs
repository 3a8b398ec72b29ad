//! Determinism, end to end over the real canister in the local runtime: one call sequence (every
//! example plugin installed, one of them from chunks; calls that succeed, fail with the plugin's
//! error, trap and run out of fuel; dry runs; `upgrade_plugin` with a migration; `set_config`;
//! `uninstall`; `list`, `get`, `settings`) run on canisters deployed afresh, each in a runtime of
//! its own.
//!
//! - Two fresh canisters: every step gives the same reply bytes (fuel included), the same
//!   instruction count, the same cycle balance after it, and the same stable memory (size and
//!   every byte).
//! - One of the two upgraded (same module, no argument) in the middle of the sequence, the other's
//!   clock moved on by the upgrade's second: the upgrade leaves stable memory byte for byte as it
//!   was, and every later step gives the same replies, fuel and stable memory. What legitimately
//!   differs after an upgrade is the heap and what is counted from it, and the test says which:
//!   replies are compared with the quota use of `PluginInfo` (heap counts, restarted by an
//!   upgrade) and the cycle balance, heap and cache sizes of `settings().totals` set aside;
//!   instruction counts differ, as the two heaps do (see
//!   [`an_upgrade_in_the_middle_changes_no_reply_fuel_or_byte_of_stable_memory`]); a second
//!   canister upgraded at the same point gives the upgraded one's everything, instruction counts
//!   and cycles included.
//! - A call's fuel does not depend on what is cached ([`a_call_uses_the_same_fuel_however_warm_its_plugin_is`]).

#![allow(missing_docs)]

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use candid::{Decode, Encode, Principal};
use ic_local_runtime::TIME_STEP;
use plugin_host_api::{
    ByteBuf, InitArgs, InstallArgs, InstallChunkedArgs, InstallError, InstallPolicy, InvokeFailure,
    InvokeOptions, InvokePolicy, InvokeReply, ListArgs, ListPage, ManageError, PluginInfo,
    SettingsView, UpgradePluginArgs,
};
use plugin_host_local::candid_text::Interface;
use plugin_host_local::client::{CallKind, PluginHost};
use sha2::Digest as _;
use support::*;

/// One message of the sequence.
struct Step {
    label: String,
    caller: Principal,
    kind: CallKind,
    method: &'static str,
    arg: Vec<u8>,
}

fn update(label: impl Into<String>, caller: Principal, method: &'static str, arg: Vec<u8>) -> Step {
    Step {
        label: label.into(),
        caller,
        kind: CallKind::Update,
        method,
        arg,
    }
}

fn query(label: impl Into<String>, caller: Principal, method: &'static str, arg: Vec<u8>) -> Step {
    Step {
        kind: CallKind::Query,
        ..update(label, caller, method, arg)
    }
}

fn install_step(
    caller: Principal,
    name: &str,
    wasm: Vec<u8>,
    config: &[(&str, &str)],
    fuel_limit: Option<u64>,
) -> Step {
    let args = InstallArgs {
        name: name.into(),
        wasm: ByteBuf::from(wasm),
        fuel_limit,
        invoke_policy: Some(InvokePolicy::Public),
        config: Some(
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
    };
    update(
        format!("install {name}"),
        caller,
        "install",
        Encode!(&args).expect("encode"),
    )
}

fn invoke_arg(plugin: &str, function: &str, input: &str, fuel: Option<u64>) -> Vec<u8> {
    let options = Some(InvokeOptions {
        fuel,
        logs: Some(true),
    });
    Encode!(
        &plugin,
        &function,
        &ByteBuf::from(input.as_bytes().to_vec()),
        &options
    )
    .expect("encode")
}

fn invoke_step(caller: Principal, plugin: &str, function: &str, input: &str) -> Step {
    update(
        format!("invoke {plugin}.{function}"),
        caller,
        "invoke",
        invoke_arg(plugin, function, input, None),
    )
}

fn dry_run_step(caller: Principal, plugin: &str, function: &str, input: &str) -> Step {
    query(
        format!("invoke_query {plugin}.{function}"),
        caller,
        "invoke_query",
        invoke_arg(plugin, function, input, None),
    )
}

const BALLOTS: &str = r#"{"proposal":"treasury-42","total_supply":1000,"ballots":[
    {"voter":"a","weight":400,"choice":"yes"},{"voter":"b","weight":100,"choice":"no"},
    {"voter":"c","weight":81,"choice":"no"}]}"#;

/// The sequence. Every caller but the controller is subject to quotas and the invoke policies.
fn sequence() -> Vec<Step> {
    let (controller, alice, bob) = (admin(), alice(), bob());
    let counter = plugin("counter");
    let sha = |bytes: &[u8]| ByteBuf::from(sha2::Sha256::digest(bytes).to_vec());
    let mut steps = vec![
        install_step(alice, "counter", counter.clone(), &[], None),
        install_step(
            alice,
            "dao",
            plugin("dao_voting"),
            &[("rule", "quadratic")],
            None,
        ),
        install_step(bob, "creature", plugin("nft"), &[], None),
        install_step(alice, "vowels", plugin("c_vowels"), &[], None),
        install_step(
            bob,
            "words",
            plugin("as_words"),
            &[("greeting", "Hello")],
            None,
        ),
        install_step(controller, "kernels", plugin("kernels"), &[], None),
        install_step(alice, "trapper", hostile("state_then_trap"), &[], None),
        install_step(
            alice,
            "looper",
            hostile("infinite_loop"),
            &[],
            Some(3_000_000),
        ),
    ];
    // The counter again, as chunks (the module in two).
    let half = counter.len() / 2;
    for chunk in [&counter[..half], &counter[half..]] {
        steps.push(update(
            "upload_chunk",
            bob,
            "upload_chunk",
            Encode!(&ByteBuf::from(chunk.to_vec())).expect("encode"),
        ));
    }
    steps.push(query(
        "stored_chunks",
        bob,
        "stored_chunks",
        Encode!().expect("encode"),
    ));
    let chunked = InstallChunkedArgs {
        name: "counter2".into(),
        chunk_hashes: vec![sha(&counter[..half]), sha(&counter[half..])],
        wasm_sha256: sha(&counter),
        fuel_limit: None,
        invoke_policy: None,
        config: None,
    };
    steps.push(update(
        "install_chunked counter2",
        bob,
        "install_chunked",
        Encode!(&chunked).expect("encode"),
    ));
    steps.extend([
        invoke_step(alice, "counter", "increment", "5"),
        invoke_step(bob, "counter", "increment", ""),
        invoke_step(alice, "counter", "put", "colour=blue"),
        invoke_step(alice, "counter", "fail_after_increment", ""),
        invoke_step(bob, "counter2", "increment", "40"),
        invoke_step(bob, "dao", "decide", BALLOTS),
        invoke_step(
            alice,
            "dao",
            "decide",
            r#"{"ballots":[{"voter":"a","weight":-1,"choice":"yes"}]}"#,
        ),
        invoke_step(bob, "creature", "mint", ""),
        invoke_step(bob, "creature", "feed", ""),
        invoke_step(alice, "creature", "feed", ""),
        invoke_step(alice, "vowels", "count_vowels", "Internet Computer"),
        invoke_step(bob, "words", "greet", "Internet Computer"),
        invoke_step(bob, "words", "count_words", "one two three"),
        invoke_step(alice, "words", "count_words", ""),
        invoke_step(alice, "kernels", "sha256", "1000"),
        invoke_step(alice, "kernels", "sort", "many"),
        invoke_step(alice, "trapper", "run", ""),
        invoke_step(alice, "looper", "run", ""),
        update(
            "invoke counter.increment with too little fuel",
            alice,
            "invoke",
            invoke_arg("counter", "increment", "1", Some(1_000)),
        ),
        dry_run_step(bob, "counter", "increment", "100"),
        dry_run_step(alice, "creature", "metadata", ""),
        query(
            "list",
            bob,
            "list",
            Encode!(&ListArgs::default()).expect("encode"),
        ),
        // The upgrade goes here in the second run (see `UPGRADE_AT`).
        invoke_step(alice, "counter", "get", ""),
        invoke_step(alice, "counter", "get_key", "colour"),
        invoke_step(alice, "counter", "increment", "2"),
        invoke_step(bob, "creature", "play", ""),
        invoke_step(bob, "creature", "metadata", ""),
        invoke_step(alice, "vowels", "count_vowels", "aeiou"),
        invoke_step(bob, "words", "count_words", "four five"),
        invoke_step(alice, "trapper", "run", ""),
        invoke_step(alice, "looper", "run", ""),
        dry_run_step(bob, "counter2", "increment", ""),
        update(
            "upgrade_plugin dao -> v2 (migrate)",
            alice,
            "upgrade_plugin",
            Encode!(&UpgradePluginArgs {
                name: "dao".into(),
                wasm: ByteBuf::from(plugin("dao_voting_v2")),
                migration: Some("migrate".into()),
            })
            .expect("encode"),
        ),
        invoke_step(bob, "dao", "decide", BALLOTS),
        invoke_step(bob, "dao", "stats", ""),
        update(
            "set_config words",
            bob,
            "set_config",
            Encode!(&"words", &vec![("greeting".to_owned(), "Hi".to_owned())]).expect("encode"),
        ),
        invoke_step(alice, "words", "greet", "again"),
        update(
            "uninstall kernels",
            controller,
            "uninstall",
            Encode!(&"kernels").expect("encode"),
        ),
        invoke_step(alice, "counter", "increment", "1"),
        query(
            "get counter",
            bob,
            "get",
            Encode!(&"counter").expect("encode"),
        ),
        query("get dao", bob, "get", Encode!(&"dao").expect("encode")),
        query(
            "list",
            bob,
            "list",
            Encode!(&ListArgs::default()).expect("encode"),
        ),
        query("settings", bob, "settings", Encode!().expect("encode")),
    ]);
    steps
}

/// Where the second run upgrades one of its canisters: before the first step after the first
/// `list`.
fn upgrade_at(steps: &[Step]) -> usize {
    steps
        .iter()
        .position(|s| s.method == "list")
        .expect("a list step")
        + 1
}

/// What a step gave.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    reply: Vec<u8>,
    fuel: Option<u64>,
    instructions: u64,
    cycles_spent: u128,
    cycles_after: u128,
    stable: (u64, [u8; 32]),
}

fn deploy() -> PluginHost {
    let init = InitArgs {
        install_policy: Some(InstallPolicy::AnyAuthenticated),
        ..InitArgs::default()
    };
    PluginHost::deploy(&canister_wasm(), Some(init), admin()).expect("deploy")
}

fn run(host: &mut PluginHost, step: &Step) -> Seen {
    let before = host.canister().cycle_balance();
    let reply = host
        .call_raw(step.kind, step.method, &step.arg, step.caller)
        .unwrap_or_else(|e| panic!("{}: no reply: {e}", step.label));
    let fuel = match step.method {
        "invoke" | "invoke_query" => Some(
            match Decode!(&reply, Result<InvokeReply, InvokeFailure>)
                .unwrap_or_else(|e| panic!("{}: {e}", step.label))
            {
                Ok(r) => r.fuel_used,
                Err(f) => f.fuel_used,
            },
        ),
        _ => None,
    };
    let cycles_after = host.canister().cycle_balance();
    Seen {
        reply,
        fuel,
        instructions: host.last_instructions(),
        cycles_spent: before - cycles_after,
        cycles_after,
        stable: stable_digest(host),
    }
}

/// The steps' outcomes in short, to show that the sequence covers what it says.
fn outcome(step: &Step, seen: &Seen) -> String {
    match step.method {
        "invoke" | "invoke_query" => {
            match Decode!(&seen.reply, Result<InvokeReply, InvokeFailure>).expect("decoded") {
                Ok(_) => "ok".into(),
                Err(f) => format!("{:?}", f.error)
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            }
        }
        _ => "reply".into(),
    }
}

#[test]
fn the_same_calls_on_two_fresh_canisters_give_the_same_everything() {
    let started = Instant::now();
    let steps = sequence();
    let (mut a, mut b) = (deploy(), deploy());
    assert_eq!(stable_digest(&mut a), stable_digest(&mut b), "after deploy");
    assert_eq!(a.canister().cycle_balance(), b.canister().cycle_balance());
    let mut outcomes = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let (x, y) = (run(&mut a, step), run(&mut b, step));
        assert!(
            x == y,
            "step {i} ({}) differs between two fresh canisters:\n{x:?}\n{y:?}",
            step.label
        );
        outcomes.insert(outcome(step, &x));
    }
    for expected in ["ok", "PluginError", "Trap", "OutOfFuel"] {
        assert!(
            outcomes.contains(expected),
            "no call ended {expected}: {outcomes:?}"
        );
    }
    eprintln!(
        "determinism: {} steps on two fresh canisters, identical (outcomes {outcomes:?}); stable \
         memory {} pages of 64 KiB; {:.1} s",
        steps.len(),
        stable_digest(&mut a).0,
        started.elapsed().as_secs_f64()
    );
}

/// A reply with what an upgrade restarts on the heap set aside: the quota use in `PluginInfo`
/// (per-window counts kept on the heap, which an upgrade starts afresh) and, in `settings()`,
/// the cycle balance (the upgrade paid), the heap and the engine's caches.
fn without_heap_counts(method: &str, reply: &[u8]) -> Vec<u8> {
    fn info(mut p: PluginInfo) -> PluginInfo {
        p.quota.used_instructions = 0;
        p
    }
    match method {
        "install" | "install_chunked" | "upgrade_plugin" => {
            let r = Decode!(reply, Result<PluginInfo, InstallError>).expect("decode");
            Encode!(&r.map(info)).expect("encode")
        }
        "set_config" | "set_invoke_policy" => {
            let r = Decode!(reply, Result<PluginInfo, ManageError>).expect("decode");
            Encode!(&r.map(info)).expect("encode")
        }
        "get" => {
            let r = Decode!(reply, Option<PluginInfo>).expect("decode");
            Encode!(&r.map(info)).expect("encode")
        }
        "list" => {
            let mut page = Decode!(reply, ListPage).expect("decode");
            page.plugins = page.plugins.into_iter().map(info).collect();
            Encode!(&page).expect("encode")
        }
        "settings" => {
            let mut view = Decode!(reply, SettingsView).expect("decode");
            view.totals.cycle_balance = 0;
            view.totals.heap_bytes = 0;
            view.totals.cached_bytes = 0;
            Encode!(&view).expect("encode")
        }
        _ => reply.to_vec(),
    }
}

/// Whether a step is the first, since the upgrade, to touch something the kept canister still
/// has on its heap and the upgraded one must rebuild: a plugin (recompiled from its stored module
/// and restored from stable memory), a plugin function (translated again when first reached), or
/// its method's reply type (built on first use; `post_upgrade` builds only the queries'). A
/// plugin that `upgrade_plugin` rebuilt on both canisters is not rebuilt again. `touched` holds
/// what steps since the upgrade touched.
fn first_touch(step: &Step, touched: &mut BTreeSet<String>) -> bool {
    let mut keys = vec![format!("method {}", step.method)];
    if step.method == "upgrade_plugin" {
        // Both canisters compile the new module and restore the plugin.
        let args = Decode!(&step.arg, UpgradePluginArgs).expect("decode");
        touched.insert(format!("plugin {}", args.name));
        touched.insert(format!("rebuilt {}", args.name));
    }
    if let "invoke" | "invoke_query" = step.method {
        let (plugin, function, _, _) =
            Decode!(&step.arg, String, String, ByteBuf, Option<InvokeOptions>).expect("decode");
        keys.push(format!("plugin {plugin}"));
        if !touched.contains(&format!("rebuilt {plugin}")) {
            keys.push(format!("function {plugin}.{function}"));
        }
    }
    let mut first = false;
    for key in keys {
        first |= touched.insert(key);
    }
    first
}

/// The lines in which two Candid texts differ, side by side (at most `MAX`).
fn differing_lines(kept: &str, upgraded: &str) -> String {
    const MAX: usize = 6;
    let pairs: Vec<String> = kept
        .lines()
        .zip(upgraded.lines())
        .filter(|(a, b)| a != b)
        .take(MAX)
        .map(|(a, b)| format!("    kept `{}` / upgraded `{}`", a.trim(), b.trim()))
        .collect();
    if pairs.is_empty() {
        format!("    kept:\n{kept}\n    upgraded:\n{upgraded}")
    } else {
        pairs.join("\n")
    }
}

/// The sequence on three fresh canisters, two of them upgraded (same module, no argument) where
/// [`upgrade_at`] says, the third kept (its clock moved on by the upgrade's second).
///
/// - The two upgraded canisters give the same everything, instruction counts and cycles
///   included: an upgrade is as deterministic as the rest.
/// - The upgrade leaves stable memory byte for byte as it was, and after it the upgraded canister
///   gives the kept one's replies (heap counts set aside, see [`without_heap_counts`]), fuel and
///   stable memory at every step.
/// - Instruction counts after the upgrade are not compared with the kept canister's: its heap is
///   not the upgraded one's. Steps that first touch what the upgraded canister rebuilds cost it
///   more ([`first_touch`]: recompiling and restoring a plugin, translating a function, building
///   a reply type), and the rest differ by a little either way (the allocator's state, the sizes
///   of the caches and of the quota counts); the test prints both.
#[test]
fn an_upgrade_in_the_middle_changes_no_reply_fuel_or_byte_of_stable_memory() {
    let started = Instant::now();
    let steps = sequence();
    let at = upgrade_at(&steps);
    let (mut kept, mut upgraded, mut twin) = (deploy(), deploy(), deploy());
    for (i, step) in steps[..at].iter().enumerate() {
        let x = run(&mut kept, step);
        assert!(
            x == run(&mut upgraded, step),
            "step {i} ({}) differs",
            step.label
        );
        assert!(
            x == run(&mut twin, step),
            "step {i} ({}) differs",
            step.label
        );
    }
    for host in [&mut upgraded, &mut twin] {
        host.upgrade_canister(&canister_wasm(), None, admin())
            .expect("upgrade");
    }
    let post_upgrade = upgraded.last_instructions();
    assert_eq!(post_upgrade, twin.last_instructions(), "post_upgrade");
    assert_eq!(
        upgraded.canister().cycle_balance(),
        twin.canister().cycle_balance()
    );
    // The upgrade took the time of one message.
    kept.canister().advance_time(TIME_STEP);
    assert_eq!(kept.canister().time(), upgraded.canister().time());
    assert!(
        kept.canister().stable_memory() == upgraded.canister().stable_memory(),
        "post_upgrade changed stable memory"
    );

    let interface = Interface::plugin_host();
    let text = |method: &str, reply: &[u8]| {
        interface
            .decode_reply(method, reply)
            .unwrap_or_else(|e| e.to_string())
    };
    let mut touched = BTreeSet::new();
    let (mut first_touches, mut others) = (Vec::new(), Vec::new());
    let mut differences = Vec::new();
    let mut stable_differs = false;
    for (i, step) in steps.iter().enumerate().skip(at) {
        let (x, y) = (run(&mut kept, step), run(&mut upgraded, step));
        assert!(
            y == run(&mut twin, step),
            "step {i} ({}) differs between the two upgraded canisters",
            step.label
        );
        let context = format!("step {i} ({})", step.label);
        let (xr, yr) = (
            without_heap_counts(step.method, &x.reply),
            without_heap_counts(step.method, &y.reply),
        );
        if xr != yr {
            let (a, b) = (text(step.method, &xr), text(step.method, &yr));
            differences.push(format!(
                "{context}: replies differ\n{}",
                differing_lines(&a, &b)
            ));
        }
        if x.fuel != y.fuel {
            differences.push(format!(
                "{context}: fuel used {} on the kept canister, {} on the upgraded one",
                x.fuel.unwrap_or_default(),
                y.fuel.unwrap_or_default()
            ));
        }
        if x.stable != y.stable && !stable_differs {
            stable_differs = true;
            differences.push(format!(
                "{context}: the stable memories differ after it (and after every later step)"
            ));
        }
        let delta = y.instructions as i128 - x.instructions as i128;
        if first_touch(step, &mut touched) {
            first_touches.push(format!("{} {delta:+}", step.label));
        } else {
            others.push(format!("{} {delta:+}", step.label));
        }
    }
    eprintln!(
        "determinism across an upgrade: post_upgrade {post_upgrade} instructions after {at} \
         steps, then {} steps; the two upgraded canisters identical throughout. Instructions, \
         upgraded minus kept: first touches {}; other steps {}; {:.1} s",
        steps.len() - at,
        first_touches.join(", "),
        others.join(", "),
        started.elapsed().as_secs_f64()
    );
    assert!(
        differences.is_empty(),
        "after the upgrade, the upgraded canister and the kept one differ ({} findings, heap \
         counts set aside):\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// Fuel measures what a plugin's code does, so a call's fuel must not depend on what the canister
/// has on its heap: the same call on the same state uses the same fuel whether its plugin's module
/// was compiled and its functions translated by earlier calls, or must be again after a canister
/// upgrade. (It is charged to the call, reported in its reply, counted in the plugin's
/// `fuel_used_total` in stable memory, and decides whether the call runs out of fuel.)
#[test]
fn a_call_uses_the_same_fuel_however_warm_its_plugin_is() {
    let mut host = deploy();
    install(&mut host, alice(), "counter", plugin("counter"));
    let fuel = |host: &mut PluginHost| match call(host, alice(), "counter", "get", "") {
        Ok(reply) => reply.fuel_used,
        Err(failure) => panic!("counter.get failed: {failure}"),
    };
    // The first call after install runs on the state install left (the plugin's allocator not
    // set up yet, say): it may do more. From then on the state is the same before each call.
    let _first = fuel(&mut host);
    let warm = fuel(&mut host);
    host.upgrade_canister(&canister_wasm(), None, admin())
        .expect("upgrade");
    let after_upgrade = fuel(&mut host);
    let warm_again = fuel(&mut host);
    assert!(
        after_upgrade == warm && warm_again == warm,
        "counter.get used {warm} fuel on a warm canister, {after_upgrade} as its first call after a \
         canister upgrade, {warm_again} as the next: the fuel a call uses depends on whether its \
         functions were translated before"
    );
}
