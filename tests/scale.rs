//! The canister at scale, end to end over the real canister in the local runtime (the two
//! measurements of the hardening issue):
//!
//! - the canister's heap stays within the engine's heap budget plus what the canister itself
//!   needs, however much memory its plugins have, and every plugin evicted from the heap comes
//!   back with its own state;
//! - a canister upgrade does constant work with 10,016 plugins and 1.6 GiB of plugin state, and
//!   every plugin answers afterwards as before.

#![allow(missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use candid::{Encode, Principal};
use ic_local_runtime::GENESIS_TIME;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{StableCell, Storable, VectorMemory};
use plugin_engine::{
    Engine, InstallRequest, InstructionMeter, InvokePolicy, InvokeRequest, Limits, StableSpace,
};
use plugin_host_api::Settings;
use plugin_host_local::client::{CallKind, PluginHost};
use support::*;

const MIB: u64 = 1024 * 1024;

/// `fill` (input: seed, pages, stride, three u64 LE) grows memory to `pages` 64 KiB pages and
/// writes one word every `stride` bytes from `stride` on: `seed * 1000003 + i` at `i * stride`
/// (the stride itself at 0). `fill` and `check` answer three u64 LE: pages, calls (a global)
/// and the sum of those words.
const FILLER: &str = r#"(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (memory (export "memory") 1)
  (global $calls (mut i64) (i64.const 0))
  (func $answer
    (local $out i64) (local $stride i32) (local $at i32) (local $end i32) (local $sum i64)
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (local.set $stride (i32.load (i32.const 0)))
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (local.set $at (local.get $stride))
    (if (local.get $stride) (then
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $sum (i64.add (local.get $sum) (i64.load (local.get $at))))
        (local.set $at (i32.add (local.get $at) (local.get $stride)))
        (br $next)))))
    (local.set $out (call $alloc (i64.const 24)))
    (call $store_u64 (local.get $out) (i64.extend_i32_u (memory.size)))
    (call $store_u64 (i64.add (local.get $out) (i64.const 8)) (global.get $calls))
    (call $store_u64 (i64.add (local.get $out) (i64.const 16)) (local.get $sum))
    (call $output_set (local.get $out) (i64.const 24)))
  (func (export "fill") (result i32)
    (local $seed i64) (local $stride i32) (local $at i32) (local $end i32)
    (local.set $seed (call $input_load_u64 (i64.const 0)))
    (drop (memory.grow (i32.sub
      (i32.wrap_i64 (call $input_load_u64 (i64.const 8))) (memory.size))))
    (local.set $stride (i32.wrap_i64 (call $input_load_u64 (i64.const 16))))
    (i32.store (i32.const 0) (local.get $stride))
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (local.set $at (local.get $stride))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (i64.store (local.get $at) (i64.add
        (i64.mul (local.get $seed) (i64.const 1000003))
        (i64.extend_i32_u (i32.div_u (local.get $at) (local.get $stride)))))
      (local.set $at (i32.add (local.get $at) (local.get $stride)))
      (br $next)))
    (call $answer)
    (i32.const 0))
  (func (export "check") (result i32)
    (call $answer)
    (i32.const 0)))"#;

fn filler() -> Vec<u8> {
    wat::parse_str(FILLER).expect("wat")
}

/// `fill`'s input.
fn fill_input(seed: u64, pages: u64, stride: u64) -> Vec<u8> {
    [seed, pages, stride]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// What `FILLER` answers after `calls` calls, the first a `fill` with these arguments.
fn filled(seed: u64, pages: u64, stride: u64, calls: u64) -> [u64; 3] {
    let words = pages * 65_536 / stride;
    let sum = (1..words).map(|i| seed * 1_000_003 + i).sum();
    [pages, calls, sum]
}

fn words(output: &[u8]) -> [u64; 3] {
    assert_eq!(output.len(), 24, "three words");
    std::array::from_fn(|i| {
        u64::from_le_bytes(output[8 * i..8 * i + 8].try_into().expect("8 bytes"))
    })
}

/// Invokes as the admin (no quotas) and answers the three words, failing the test on an error.
#[track_caller]
fn invoke_words(host: &mut PluginHost, name: &str, function: &str, input: &[u8]) -> [u64; 3] {
    match host
        .invoke(CallKind::Update, admin(), name, function, input, None)
        .expect("invoke message")
    {
        Ok(reply) => words(&reply.output),
        Err(failure) => panic!("{name}.{function} failed: {failure}"),
    }
}

fn heap(host: &mut PluginHost) -> u64 {
    host.canister().heap_size() as u64
}

/// 200 plugins that each grow to 32 MiB (512 pages, one word written per page), called twice
/// each: 12.5 GiB of plugin memory with the shadows, twelve times the engine's heap budget, so
/// the engine evicts and later restores every plugin. The canister's heap (wasm `memory.size`)
/// stays under the budget plus an allowance for what the canister keeps outside the engine's
/// count: its own structures, measured as the heap after deploy, one install and one call.
#[test]
fn the_heap_stays_within_the_budget_with_200_plugins_of_32_mib() {
    const PLUGINS: u64 = 200;
    const PAGES: u64 = 512;
    const STRIDE: u64 = 65_536;
    let started = Instant::now();
    let budget = Limits::default().heap_budget_bytes;
    let mut host = host();
    let wasm = filler();
    install(&mut host, admin(), "probe", wasm.clone());
    assert_eq!(invoke_words(&mut host, "probe", "check", &[]), [1, 1, 0]);
    let allowance = heap(&mut host);
    let bound = budget + allowance;
    let mut high = allowance;
    let mut note = |host: &mut PluginHost, what: &str| {
        let now = heap(host);
        high = high.max(now);
        assert!(
            now <= bound,
            "after {what}: heap {now} bytes, over the budget {budget} + allowance {allowance}"
        );
    };
    for i in 0..PLUGINS {
        install(&mut host, admin(), &format!("p{i}"), wasm.clone());
        note(&mut host, &format!("installing p{i}"));
    }
    for i in 0..PLUGINS {
        let name = format!("p{i}");
        let input = fill_input(i, PAGES, STRIDE);
        let got = invoke_words(&mut host, &name, "fill", &input);
        assert_eq!(got, filled(i, PAGES, STRIDE, 1), "{name}.fill");
        note(&mut host, &format!("{name}.fill"));
    }
    // In the same order: each plugin's instance was evicted since its call (a dozen fit in the
    // budget), so each is restored from stable memory.
    let mut restoring = Vec::new();
    for i in 0..PLUGINS {
        let name = format!("p{i}");
        let got = invoke_words(&mut host, &name, "check", &[]);
        assert_eq!(got, filled(i, PAGES, STRIDE, 2), "{name}.check");
        restoring.push(host.last_instructions());
        note(&mut host, &format!("{name}.check"));
    }
    let last = format!("p{}", PLUGINS - 1);
    invoke_words(&mut host, &last, "check", &[]);
    let warm = host.last_instructions();
    let cheapest = restoring.iter().copied().min().unwrap_or(0);
    assert!(
        cheapest > 10 * warm,
        "every check after the fills restores its plugin: the cheapest took {cheapest} \
         instructions, a call of a live plugin {warm}"
    );
    let info = host.get(admin(), "p0").expect("get").expect("installed");
    assert_eq!(info.memory_pages, PAGES as u32);
    let totals = host.settings(admin()).expect("settings").totals;
    assert!(totals.cached_bytes <= budget, "{totals:?}");
    eprintln!(
        "heap: high water {:.1} MiB ({high} B) with {PLUGINS} plugins of {} MiB; budget {} MiB \
         + allowance {:.2} MiB ({allowance} B: the heap after deploy, one install and one call); \
         engine caches now {:.1} MiB; restoring call {}..{} instructions, live call {warm}; \
         wall time {:.1} s",
        high as f64 / MIB as f64,
        PAGES / 16,
        budget / MIB,
        allowance as f64 / MIB as f64,
        totals.cached_bytes as f64 / MIB as f64,
        cheapest,
        restoring.iter().max().unwrap_or(&0),
        started.elapsed().as_secs_f64()
    );
}

/// The engine's instruction meter natively: nothing counts.
struct NoMeter;

impl InstructionMeter for NoMeter {
    fn instructions(&self) -> u64 {
        0
    }
}

/// The canister's settings as `plugin_host::state` stores them in their cell: the canister's
/// layout version (u32 LE), then the Candid encoding of the settings.
#[derive(Clone)]
struct StoredSettings(Vec<u8>);

impl StoredSettings {
    fn of(settings: &Settings) -> Self {
        let mut bytes = plugin_host::memory::LAYOUT_VERSION.to_le_bytes().to_vec();
        bytes.extend(Encode!(settings).expect("settings encode"));
        Self(bytes)
    }
}

impl Storable for StoredSettings {
    fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: std::borrow::Cow<[u8]>) -> Self {
        Self(bytes.into_owned())
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// The canister's stable memory, built natively with the canister's own code: what
/// `plugin_host::state::open()` opens at `init` (the settings cell, the engine over its
/// memories, the chunk store, in that order, then the settings written again after reserving
/// room), with default settings, as `init` without an argument leaves them.
fn native_canister() -> (VectorMemory, Engine<VectorMemory>) {
    let memory = VectorMemory::default();
    let space = Rc::new(StableSpace::init(memory.clone()));
    let settings = StoredSettings::of(&Settings::default());
    let mut cell = StableCell::init(space.get(plugin_host::memory::SETTINGS), settings.clone());
    let engine = Engine::init(
        space.clone(),
        plugin_host::memory::ENGINE,
        Limits::default(),
        Rc::new(NoMeter),
    );
    plugin_host::chunks::ChunkStore::init(space.get(plugin_host::memory::CHUNKS));
    space
        .reserve([(
            plugin_host::memory::SETTINGS,
            2 * settings.0.len() as u64 + 65_536,
        )])
        .expect("room for the settings");
    cell.set(settings);
    (memory, engine)
}

fn native_invoke(
    engine: &mut Engine<VectorMemory>,
    plugin: &str,
    function: &str,
    input: &[u8],
    commit: bool,
) -> [u64; 3] {
    let request = InvokeRequest {
        plugin,
        function,
        input,
        fuel: None,
        caller: admin(),
        now_ns: GENESIS_TIME,
        commit,
        logs: false,
        instruction_limit: None,
    };
    match engine.invoke(request) {
        Ok(outcome) => words(&outcome.output),
        Err(failure) => panic!("{plugin}.{function} natively: {failure}"),
    }
}

/// 10,000 small plugins (one page each, 15 words written) and 16 big ones (64 MiB each, every
/// 4 KiB chunk written: 1 GiB), installed natively into the canister's stable memory, which is
/// loaded into a deployed canister; then the canister is upgraded over it. `post_upgrade` must do
/// constant work: it opens the stable structures and builds the query replies' type parts,
/// nothing per plugin or per byte stored: within 10% of an empty canister's upgrade (about 2.2 M
/// instructions), and under 5 M, 1/60,000 of the install limit (300 B). After the upgrade every
/// plugin checked answers exactly what it answered natively before, all 16 big ones among them;
/// their first calls restore 64 MiB each.
#[test]
fn an_upgrade_with_10_000_plugins_and_1_6_gib_of_state_does_constant_work() {
    const SMALL: u64 = 10_000;
    const BIG: u64 = 16;
    const BIG_PAGES: u64 = 1024;
    const STRIDE: u64 = 4096;
    const POST_UPGRADE_BOUND: u64 = 5_000_000;
    let started = Instant::now();
    let per_owner = Limits::default().max_plugins_per_owner;
    let owner = |i: u64| Principal::from_slice(&[0xfe, (i / per_owner) as u8, 1]);
    let wasm = filler();
    let (memory, mut engine) = native_canister();
    let names: Vec<(String, u64)> = (0..BIG)
        .map(|i| (format!("big{i}"), BIG_PAGES))
        .chain((0..SMALL).map(|i| (format!("small{i:05}"), 1)))
        .collect();
    for (i, (name, pages)) in names.iter().enumerate() {
        let request = InstallRequest {
            name,
            wasm: &wasm,
            config: BTreeMap::new(),
            owner: owner(i as u64),
            invoke_policy: InvokePolicy::Public,
            fuel_limit: None,
        };
        engine
            .install(request, GENESIS_TIME)
            .unwrap_or_else(|e| panic!("installing {name} natively: {e}"));
        let input = fill_input(i as u64, *pages, STRIDE);
        let got = native_invoke(&mut engine, name, "fill", &input, true);
        assert_eq!(got, filled(i as u64, *pages, STRIDE, 1), "{name}.fill");
    }
    // What each plugin checked answers now, as a dry run (which commits nothing).
    let checked: Vec<usize> = (0..BIG as usize)
        .chain((BIG as usize..names.len()).step_by(397))
        .chain([names.len() - 1])
        .collect();
    let before: Vec<[u64; 3]> = checked
        .iter()
        .map(|&i| native_invoke(&mut engine, &names[i].0, "check", &[], false))
        .collect();
    for (&i, answer) in checked.iter().zip(&before) {
        assert_eq!(
            *answer,
            filled(i as u64, names[i].1, STRIDE, 2),
            "{}",
            names[i].0
        );
    }
    drop(engine);
    let image = std::mem::take(&mut *memory.borrow_mut());
    let built = started.elapsed();

    // An empty canister's upgrade, for comparison.
    let mut empty = host();
    empty
        .upgrade_canister(&other_canister_build(), None, admin())
        .expect("upgrade");
    let empty_upgrade = empty.last_instructions();
    drop(empty);

    let mut host = host();
    host.canister()
        .set_stable_memory(&image)
        .expect("no stable memory limit");
    drop(image);
    host.upgrade_canister(&other_canister_build(), None, admin())
        .expect("upgrade");
    let post_upgrade = host.last_instructions();
    assert_eq!(running_version(&mut host), other_version());
    let totals = host.settings(admin()).expect("settings").totals;
    assert_eq!(totals.plugins, BIG + SMALL);
    assert!(
        post_upgrade <= POST_UPGRADE_BOUND && post_upgrade <= empty_upgrade + empty_upgrade / 10,
        "post_upgrade took {post_upgrade} instructions with {} plugins: over {POST_UPGRADE_BOUND} \
         or 10% over an empty canister's {empty_upgrade}",
        totals.plugins
    );

    // The first calls of the big plugins: the first compiles the module too.
    let mut big_calls = Vec::new();
    for (&i, answer) in checked.iter().zip(&before) {
        let name = &names[i].0;
        assert_eq!(
            invoke_words(&mut host, name, "check", &[]),
            *answer,
            "{name} after the upgrade"
        );
        if i < BIG as usize {
            big_calls.push(host.last_instructions());
        }
    }
    eprintln!(
        "upgrade: post_upgrade {post_upgrade} instructions with {} plugins ({BIG} of 64 MiB \
         written, {SMALL} of one page) and {:.2} GiB of stable memory; an empty canister's \
         {empty_upgrade}; first call of a 64 MiB plugin after it {} instructions (module \
         compiled too), the other big ones' {}..{}; {} plugins checked; state built natively in \
         {:.1} s; wall time {:.1} s",
        totals.plugins,
        totals.stable_bytes as f64 / (1024.0 * MIB as f64),
        big_calls[0],
        big_calls[1..].iter().min().unwrap_or(&0),
        big_calls[1..].iter().max().unwrap_or(&0),
        checked.len(),
        built.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
