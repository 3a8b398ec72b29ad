//! Stable memory that runs out: every operation either succeeds or answers `StorageFull` before
//! writing anything, whichever point the memory stops growing at; never a panic, never half a
//! write.

#![allow(missing_docs)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::Memory;
use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::{
    Engine, InstallError, InstallRequest, InstructionMeter, InvokeError, InvokePolicy,
    InvokeRequest, Limits, ManageError, StableMemories, StableSpace, UpgradePluginRequest,
    WASM_PAGE_BYTES,
};

/// A memory that refuses to grow past `cap` pages, and counts the pages it was asked for.
#[derive(Clone, Default)]
struct Capped {
    bytes: Rc<RefCell<Vec<u8>>>,
    cap: Rc<Cell<u64>>,
}

impl Memory for Capped {
    fn size(&self) -> u64 {
        self.bytes.borrow().len() as u64 / WASM_PAGE_BYTES
    }
    fn grow(&self, pages: u64) -> i64 {
        let size = self.size();
        if size + pages > self.cap.get() {
            return -1;
        }
        let new_len = ((size + pages) * WASM_PAGE_BYTES) as usize;
        self.bytes.borrow_mut().resize(new_len, 0);
        size as i64
    }
    fn read(&self, offset: u64, dst: &mut [u8]) {
        let start = offset as usize;
        dst.copy_from_slice(&self.bytes.borrow()[start..start + dst.len()]);
    }
    fn write(&self, offset: u64, src: &[u8]) {
        let start = offset as usize;
        self.bytes.borrow_mut()[start..start + src.len()].copy_from_slice(src);
    }
}

struct NoMeter;

impl InstructionMeter for NoMeter {
    fn instructions(&self) -> u64 {
        0
    }
}

fn open(memory: &Capped) -> Engine<Capped> {
    let space = Rc::new(StableSpace::init(memory.clone()));
    let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
    Engine::init(space, ids, Limits::default(), Rc::new(NoMeter))
}

/// A plugin with state in memory (a counter at 64 and a page grown per `grow`), a global, and
/// vars (one per call).
const PLUGIN: &str = r#"(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $calls (mut i64) (i64.const 0))
  (func $out (param $v i64)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $h) (local.get $v))
    (call $output_set (local.get $h) (i64.const 8)))
  (func (export "inc") (result i32)
    (local $key i64) (local $value i64)
    (i64.store (i32.const 64) (i64.add (i64.load (i32.const 64)) (i64.const 1)))
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    ;; A var per call: key = the count, value = 4 KiB.
    (local.set $key (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $key) (i64.load (i32.const 64)))
    (local.set $value (call $alloc (i64.const 4096)))
    (call $var_set (local.get $key) (local.get $value))
    (call $out (i64.load (i32.const 64)))
    (i32.const 0))
  (func (export "grow") (result i32)
    (local $at i32)
    ;; Grow 16 pages and write every 4 KiB chunk of them.
    (local.set $at (i32.mul (memory.grow (i32.const 16)) (i32.const 65536)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $at) (i32.mul (memory.size) (i32.const 65536))))
      (i64.store (local.get $at) (i64.const -1))
      (local.set $at (i32.add (local.get $at) (i32.const 4096)))
      (br $next)))
    (call $out (i64.extend_i32_u (memory.size)))
    (i32.const 0))
  (func (export "get") (result i32)
    (call $out (i64.add (i64.load (i32.const 64)) (i64.mul (global.get $calls) (i64.const 1000))))
    (i32.const 0)))"#;

/// What a user can observe: each plugin's record and its answer to `get` (a dry run).
fn observe(engine: &mut Engine<Capped>) -> BTreeMap<String, (String, Vec<u8>)> {
    let (records, _) = engine.list(None, 100, u64::MAX);
    records
        .into_iter()
        .map(|record| {
            let answer = engine
                .invoke(request(&record.name, "get", false))
                .map(|o| o.output)
                .unwrap_or_else(|f| f.to_string().into_bytes());
            (record.name.clone(), (format!("{record:?}"), answer))
        })
        .collect()
}

fn request<'a>(plugin: &'a str, function: &'a str, commit: bool) -> InvokeRequest<'a> {
    InvokeRequest {
        plugin,
        function,
        input: b"",
        fuel: None,
        caller: Principal::anonymous(),
        now_ns: 7,
        commit,
        logs: false,
        instruction_limit: None,
    }
}

/// One step of the scenario: `Ok(true)` done, `Ok(false)` refused with `StorageFull`, `Err` any
/// other failure.
fn step(engine: &mut Engine<Capped>, n: usize, wasm: &[u8], wasm_2: &[u8]) -> Result<bool, String> {
    let install = |engine: &mut Engine<Capped>, name: &str, wasm: &[u8]| {
        let request = InstallRequest {
            name,
            wasm,
            config: BTreeMap::from([("k".to_owned(), "v".repeat(1000))]),
            owner: Principal::anonymous(),
            invoke_policy: InvokePolicy::Public,
            fuel_limit: None,
        };
        match engine.install(request, 1) {
            Ok(_) => Ok(true),
            Err(InstallError::StorageFull(_)) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    };
    let invoke = |engine: &mut Engine<Capped>, plugin: &str, function: &str| match engine
        .invoke(request(plugin, function, true))
    {
        Ok(_) => Ok(true),
        Err(f) if matches!(f.error, InvokeError::StorageFull(_)) => Ok(false),
        Err(f) => Err(f.to_string()),
    };
    let managed = |result: Result<(), ManageError>| match result {
        Ok(()) => Ok(true),
        Err(ManageError::StorageFull(_)) => Ok(false),
        Err(e) => Err(e.to_string()),
    };
    match n {
        0 => install(engine, "a", wasm),
        1..=3 => invoke(engine, "a", "inc"),
        4 => install(engine, "b", wasm),
        5 => invoke(engine, "a", "grow"),
        6 => invoke(engine, "b", "inc"),
        7 => managed(
            engine
                .set_config("a", BTreeMap::from([("k".into(), "w".repeat(2000))]), 2)
                .map(drop),
        ),
        8 => match engine.upgrade_plugin(
            UpgradePluginRequest {
                name: "b",
                wasm: wasm_2,
                migration: Some("inc"),
            },
            3,
        ) {
            Ok(_) => Ok(true),
            Err(InstallError::StorageFull(_)) => Ok(false),
            Err(e) => Err(e.to_string()),
        },
        9 => invoke(engine, "a", "grow"),
        10 => managed(engine.uninstall("a")),
        11 => install(engine, "c", wasm_2),
        _ => unreachable!("the scenario has 12 steps"),
    }
}

const STEPS: usize = 12;

#[test]
fn every_operation_either_succeeds_or_refuses_before_writing() {
    let wasm = wat::parse_str(PLUGIN).expect("wat");
    // The same plugin, another build (a custom section makes other bytes).
    let mut wasm_2 = wasm.clone();
    wasm_2.extend_from_slice(&[0, 4, 1, b'x', 0, 0]);

    // Without a cap: the states after each step, and how much memory the whole scenario takes.
    let unlimited = Capped::default();
    unlimited.cap.set(u64::MAX);
    let mut engine = open(&unlimited);
    // Opening writes the structures' headers: a canister without that much memory cannot start
    // (its init or post_upgrade traps, and the install or upgrade is rolled back).
    let opened = unlimited.size();
    let mut expected = Vec::new();
    for n in 0..STEPS {
        assert_eq!(step(&mut engine, n, &wasm, &wasm_2), Ok(true), "step {n}");
        expected.push(observe(&mut engine));
    }
    let full = unlimited.size();

    // With the memory refusing to grow at every point up to that: 8 caps per bucket.
    let mut refusals = 0;
    for cap in (opened..=full + 128).step_by(16) {
        let memory = Capped::default();
        memory.cap.set(cap);
        let mut engine = open(&memory);
        let mut before = observe(&mut engine);
        for (n, expected) in expected.iter().enumerate() {
            match step(&mut engine, n, &wasm, &wasm_2) {
                Ok(true) => {
                    let now = observe(&mut engine);
                    assert_eq!(&now, expected, "cap {cap}: step {n} succeeded differently");
                    before = now;
                }
                Ok(false) => {
                    refusals += 1;
                    // Nothing changed, as the engine sees it now and after a reopen.
                    assert_eq!(observe(&mut engine), before, "cap {cap}: step {n} refused");
                    drop(engine);
                    let mut reopened = open(&memory);
                    assert_eq!(
                        observe(&mut reopened),
                        before,
                        "cap {cap}: step {n}, reopened"
                    );
                    break;
                }
                Err(e) => panic!("cap {cap}: step {n} failed: {e}"),
            }
        }
    }
    assert!(
        refusals > 10,
        "the caps should refuse at many points ({refusals})"
    );
}
