//! The engine's heap stays within its budget: every byte it keeps (compiled modules, live
//! instances, arenas) is counted, and caches are evicted to make room; evicted plugins come back
//! from stable memory unchanged. Measured with a counting allocator.

#![allow(missing_docs)]

#[path = "../../../tests/support/artifacts.rs"]
mod artifacts;

use std::alloc::System;
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::VectorMemory;
use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::{
    Engine, InstallRequest, InstructionMeter, InvokePolicy, InvokeRequest, Limits,
    MODULE_HEAP_PER_WASM_BYTE, StableMemories, StableSpace,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The tests measure the process's heap: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Heap bytes allocated and not freed.
fn live() -> u64 {
    let stats = ALLOCATOR.stats();
    // Reallocations are counted in both (as the bytes they add or free).
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated) as u64
}

struct NoMeter;

impl InstructionMeter for NoMeter {
    fn instructions(&self) -> u64 {
        0
    }
}

/// An engine over `stable` (on the heap in these tests, so the heap measure leaves it out).
fn engine(limits: Limits, stable: &VectorMemory) -> Engine<VectorMemory> {
    let space = Rc::new(StableSpace::init(stable.clone()));
    let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
    Engine::init(space, ids, limits, Rc::new(NoMeter))
}

fn install(engine: &mut Engine<VectorMemory>, name: &str, wasm: &[u8]) {
    let request = InstallRequest {
        name,
        wasm,
        config: BTreeMap::new(),
        owner: Principal::anonymous(),
        invoke_policy: InvokePolicy::Public,
        fuel_limit: None,
    };
    engine.install(request, 0).expect("installs");
}

fn call(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str, input: &[u8]) -> Vec<u8> {
    let request = InvokeRequest {
        plugin,
        function,
        input,
        fuel: None,
        caller: Principal::anonymous(),
        now_ns: 0,
        commit: true,
        logs: false,
        instruction_limit: None,
    };
    match engine.invoke(request) {
        Ok(outcome) => outcome.output,
        Err(failure) => panic!("{plugin}.{function}: {failure}"),
    }
}

/// Grows its memory to `pages` (from the input, one byte) on `grow`, writing each new page, and
/// answers its page count and a checksum of what it wrote on `check`.
const GROWER: &str = r#"(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (memory (export "memory") 1)
  (func $out (param $v i64)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $h) (local.get $v))
    (call $output_set (local.get $h) (i64.const 8)))
  (func (export "grow") (result i32)
    (local $page i32)
    (drop (memory.grow (i32.sub (call $input_load_u8 (i64.const 0)) (memory.size))))
    (local.set $page (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $page) (memory.size)))
      (i32.store (i32.mul (local.get $page) (i32.const 65536)) (local.get $page))
      (local.set $page (i32.add (local.get $page) (i32.const 1)))
      (br $next)))
    (call $out (i64.extend_i32_u (memory.size)))
    (i32.const 0))
  (func (export "check") (result i32)
    (local $page i32) (local $sum i64)
    (local.set $page (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $page) (memory.size)))
      (local.set $sum (i64.add (local.get $sum)
        (i64.extend_i32_u (i32.load (i32.mul (local.get $page) (i32.const 65536))))))
      (local.set $page (i32.add (local.get $page) (i32.const 1)))
      (br $next)))
    (call $out (i64.add (i64.mul (i64.extend_i32_u (memory.size)) (i64.const 1000000)) (local.get $sum)))
    (i32.const 0)))"#;

#[test]
fn plugins_that_outgrow_the_heap_budget_are_evicted_and_come_back_unchanged() {
    let _measuring = ONE_AT_A_TIME.lock();
    let limits = Limits {
        max_memory_pages: 64,
        max_arena_bytes: 1024 * 1024,
        heap_budget_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    let budget = limits.heap_budget_bytes;
    let wasm = wat::parse_str(GROWER).expect("wat");
    let stable = VectorMemory::default();
    let mut engine = engine(limits, &stable);
    // What the engine holds: the heap, without the test's stand-in for stable memory.
    let held = || live().saturating_sub(stable.borrow().capacity() as u64);
    let base = held();
    // 40 plugins of 4 MiB each (8 MiB with their shadows): five times the budget.
    let plugins: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    for name in &plugins {
        install(&mut engine, name, &wasm);
    }
    let mut high = 0;
    for round in 0..2 {
        for name in &plugins {
            let pages = call(&mut engine, name, "grow", &[64]);
            assert_eq!(pages, 64u64.to_le_bytes(), "{name} round {round}");
            assert!(
                engine.cached_heap_bytes() <= budget,
                "the caches' own count"
            );
            high = high.max(held().saturating_sub(base));
        }
    }
    assert!(
        high <= budget,
        "the engine held {high} heap bytes at most, over its budget of {budget}"
    );
    // Every plugin, evicted or not, answers from its saved state.
    let sum: u64 = (1..64).sum();
    for name in &plugins {
        assert_eq!(
            call(&mut engine, name, "check", &[]),
            (64 * 1_000_000 + sum).to_le_bytes(),
            "{name}"
        );
    }
    assert!(engine.live_instances() < plugins.len(), "some were evicted");
}

/// The heap a compiled module is counted as covers what wasmi really takes for it, with every
/// function compiled (the most lazy compilation can come to), for each example plugin.
#[test]
fn compiled_modules_stay_within_their_heap_estimate() {
    let _measuring = ONE_AT_A_TIME.lock();
    let mut config = wasmi::Config::default();
    config
        .consume_fuel(true)
        .compilation_mode(wasmi::CompilationMode::Eager);
    let wasmi = wasmi::Engine::new(&config);
    for name in [
        "counter",
        "dao_voting",
        "nft",
        "kernels",
        "c_vowels",
        "as_words",
    ] {
        let wasm = artifacts::plugin(name);
        let before = live();
        let module = wasmi::Module::new(&wasmi, &wasm).expect("compiles");
        let used = live().saturating_sub(before);
        let estimate = wasm.len() as u64 * MODULE_HEAP_PER_WASM_BYTE;
        println!(
            "{name}: {} wasm bytes, {used} heap bytes compiled",
            wasm.len()
        );
        assert!(
            used <= estimate,
            "{name}: {used} heap bytes compiled, estimated {estimate}"
        );
        drop(module);
    }
}
