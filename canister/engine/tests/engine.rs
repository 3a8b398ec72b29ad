//! Engine tests: tiny WAT plugins inline, through one set of helpers.

#![allow(missing_docs)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::VectorMemory;
use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::{
    Engine, InstallError, InstallRequest, InstructionMeter, InvokeError, InvokeFailure,
    InvokeOutcome, InvokePolicy, InvokeRequest, LimitExceeded, Limits, PluginRecord,
    StableMemories, StableSpace, UpgradePluginRequest,
};

/// A meter that counts a fixed number of instructions per reading.
struct Meter(Cell<u64>, u64);

impl InstructionMeter for Meter {
    fn instructions(&self) -> u64 {
        self.0.set(self.0.get() + self.1);
        self.0.get()
    }
}

fn meter() -> Rc<Meter> {
    Rc::new(Meter(Cell::new(0), 1))
}

/// A stable memory that survives dropping the engine (an upgrade keeps it).
#[derive(Clone, Default)]
struct Memories(VectorMemory);

impl Memories {
    fn open(&self, limits: Limits) -> Engine<VectorMemory> {
        self.open_with(limits, meter())
    }

    fn open_with(&self, limits: Limits, meter: Rc<dyn InstructionMeter>) -> Engine<VectorMemory> {
        let space = Rc::new(StableSpace::init(self.0.clone()));
        let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
        Engine::init(space, ids, limits, meter)
    }
}

fn engine() -> Engine<VectorMemory> {
    Memories::default().open(Limits::default())
}

fn owner() -> Principal {
    Principal::from_slice(&[1, 2, 3])
}

fn caller() -> Principal {
    Principal::from_slice(b"caller")
}

/// The Extism imports the WAT plugins below use.
const IMPORTS: &str = r#"
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/user" "ic_caller" (func $ic_caller (result i64)))
  (import "extism:host/user" "ic_time" (func $ic_time (result i64)))
"#;

/// Helpers in WAT: copy a guest string into a new arena block; output 8 bytes.
const HELPERS: &str = r#"
  (func $block (param $ptr i32) (param $len i32) (result i64)
    (local $h i64) (local $i i32)
    (local.set $h (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $h))
  (func $output_u64 (param $v i64)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $h) (local.get $v))
    (call $output_set (local.get $h) (i64.const 8)))
"#;

/// A counter whose state lives in memory (offset 64), a private global and a var.
fn counter() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (global $calls (mut i64) (i64.const 0))
  (data (i32.const 0) "count")
  (data (i32.const 16) "oops")
  {HELPERS}
  (func $bump
    (i64.store (i32.const 64) (i64.add (i64.load (i32.const 64)) (i64.const 1)))
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (call $var_set (call $block (i32.const 0) (i32.const 5)) (call $block (i32.const 64) (i32.const 8))))
  (func (export "inc") (result i32)
    (call $bump)
    (call $output_u64 (i64.load (i32.const 64)))
    (i32.const 0))
  (func (export "get") (result i32)
    (call $output_u64 (i64.load (i32.const 64)))
    (i32.const 0))
  (func (export "calls") (result i32)
    (call $output_u64 (global.get $calls))
    (i32.const 0))
  (func (export "var") (result i32)
    (local $h i64)
    (local.set $h (call $var_get (call $block (i32.const 0) (i32.const 5))))
    (call $output_set (local.get $h) (call $length (local.get $h)))
    (i32.const 0))
  (func (export "inc_then_fail") (result i32)
    (call $bump)
    (call $error_set (call $block (i32.const 16) (i32.const 4)))
    (i32.const 7))
  (func (export "inc_then_trap") (result i32)
    (call $bump)
    unreachable)
  (func (export "inc_then_loop") (result i32)
    (call $bump)
    (loop $l (br $l))
    (i32.const 0))
  (func (export "inc_then_grow_and_trap") (result i32)
    (call $bump)
    (drop (memory.grow (i32.const 2)))
    unreachable)
  (func (export "echo") (result i32)
    (local $h i64) (local $i i64) (local $n i64)
    (local.set $n (call $input_length))
    (local.set $h (call $alloc (local.get $n)))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $h) (local.get $i)) (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (call $output_set (local.get $h) (local.get $n))
    (i32.const 0))
)"#
    )
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test WAT parses")
}

fn request<'a>(name: &'a str, wasm: &'a [u8]) -> InstallRequest<'a> {
    InstallRequest {
        name,
        wasm,
        config: BTreeMap::new(),
        owner: owner(),
        invoke_policy: InvokePolicy::Public,
        fuel_limit: None,
    }
}

#[track_caller]
fn install(engine: &mut Engine<VectorMemory>, name: &str, text: &str) -> PluginRecord {
    let wasm = wat(text);
    match engine.install(request(name, &wasm), 1) {
        Ok(info) => info,
        Err(e) => panic!("install {name}: {e}"),
    }
}

#[track_caller]
fn install_err(engine: &mut Engine<VectorMemory>, text: &str) -> InstallError {
    let wasm = wat(text);
    match engine.install(request("bad", &wasm), 1) {
        Ok(info) => panic!("install should fail, got {info:?}"),
        Err(e) => e,
    }
}

fn call_with<M: ic_stable_structures::Memory + Clone>(
    engine: &mut Engine<M>,
    plugin: &str,
    function: &str,
    input: &[u8],
    fuel: Option<u64>,
    commit: bool,
) -> Result<InvokeOutcome, InvokeFailure> {
    engine.invoke(InvokeRequest {
        plugin,
        function,
        input,
        fuel,
        caller: caller(),
        now_ns: 42,
        commit,
        logs: true,
        instruction_limit: None,
    })
}

#[track_caller]
fn ok(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str) -> Vec<u8> {
    match call_with(engine, plugin, function, b"", None, true) {
        Ok(outcome) => outcome.output,
        Err(f) => panic!("{plugin}.{function}: {f}"),
    }
}

#[track_caller]
fn ok_u64(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str) -> u64 {
    let out = ok(engine, plugin, function);
    u64::from_le_bytes(out.try_into().expect("8 bytes of output"))
}

#[track_caller]
fn err(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str) -> InvokeError {
    match call_with(engine, plugin, function, b"", None, true) {
        Ok(o) => panic!("{plugin}.{function} should fail, returned {:?}", o.output),
        Err(f) => f.error,
    }
}

/// The plugin's whole observable state: memory counter, private global, var.
#[track_caller]
fn state(engine: &mut Engine<VectorMemory>, plugin: &str) -> (u64, u64, Vec<u8>) {
    let get = ok_u64(engine, plugin, "get");
    let calls = ok_u64(engine, plugin, "calls");
    let var = ok(engine, plugin, "var");
    (get, calls, var)
}

#[test]
fn install_reports_what_a_user_needs() {
    let mut engine = engine();
    let info = install(&mut engine, "counter", &counter());
    assert_eq!(info.name, "counter");
    assert_eq!(info.memory_pages, 1);
    assert_eq!(info.owner, owner());
    assert!(info.functions.contains(&"inc".to_owned()));
    assert_eq!(info.code_size, wat(&counter()).len() as u64);
    assert_eq!(engine.get("counter"), Some(info));
}

#[test]
fn state_persists_between_calls() {
    let mut engine = engine();
    install(&mut engine, "counter", &counter());
    assert_eq!(ok_u64(&mut engine, "counter", "inc"), 1);
    assert_eq!(ok_u64(&mut engine, "counter", "inc"), 2);
    assert_eq!(
        state(&mut engine, "counter"),
        (2, 2, 2u64.to_le_bytes().to_vec())
    );
    assert_eq!(engine.get("counter").map(|i| i.calls), Some(5));
}

#[test]
fn input_and_output_round_trip() {
    let mut engine = engine();
    install(&mut engine, "counter", &counter());
    let out = call_with(&mut engine, "counter", "echo", b"hello plugin", None, true).expect("echo");
    assert_eq!(out.output, b"hello plugin");
    assert!(out.fuel_used > 0);
}

#[test]
fn every_failure_leaves_memory_globals_and_vars_as_they_were() {
    let mut engine = engine();
    install(&mut engine, "counter", &counter());
    ok(&mut engine, "counter", "inc");
    let before = state(&mut engine, "counter");

    match err(&mut engine, "counter", "inc_then_fail") {
        InvokeError::PluginError { code, message } => {
            assert_eq!((code, message.as_str()), (7, "oops"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state(&mut engine, "counter"), before);

    assert!(matches!(
        err(&mut engine, "counter", "inc_then_trap"),
        InvokeError::Trap { .. }
    ));
    assert_eq!(state(&mut engine, "counter"), before);

    let looped = call_with(
        &mut engine,
        "counter",
        "inc_then_loop",
        b"",
        Some(100_000),
        true,
    );
    assert!(matches!(
        looped.map_err(|f| f.error),
        Err(InvokeError::OutOfFuel {
            fuel_limit: 100_000,
            ..
        })
    ));
    assert_eq!(state(&mut engine, "counter"), before);

    assert!(matches!(
        err(&mut engine, "counter", "inc_then_grow_and_trap"),
        InvokeError::Trap { .. }
    ));
    assert_eq!(state(&mut engine, "counter"), before);
    assert_eq!(engine.get("counter").map(|i| i.memory_pages), Some(1));
}

#[test]
fn a_dry_run_commits_nothing() {
    let mut engine = engine();
    install(&mut engine, "counter", &counter());
    ok(&mut engine, "counter", "inc");
    let calls = engine.get("counter").map(|i| i.calls);
    let dry = call_with(&mut engine, "counter", "inc", b"", None, false).expect("dry run");
    assert_eq!(dry.output, 2u64.to_le_bytes());
    assert_eq!(engine.get("counter").map(|i| i.calls), calls);
    assert_eq!(ok_u64(&mut engine, "counter", "get"), 1);
}

#[test]
fn state_survives_dropping_every_cache() {
    let memories = Memories::default();
    let mut engine = memories.open(Limits::default());
    install(&mut engine, "counter", &counter());
    for _ in 0..3 {
        ok(&mut engine, "counter", "inc");
    }
    let before = state(&mut engine, "counter");
    drop(engine);

    let mut engine = memories.open(Limits::default());
    assert_eq!(state(&mut engine, "counter"), before);
    assert_eq!(ok_u64(&mut engine, "counter", "inc"), 4);
    assert_eq!(ok_u64(&mut engine, "counter", "calls"), 4);
}

#[test]
fn memory_a_data_segment_wrote_and_the_plugin_cleared_stays_clear_after_a_restore() {
    // The segment spans chunks 0 and 1; once cleared, neither chunk is stored (all zeros), and
    // a restored instance must not keep what its data segment wrote there.
    let plugin = format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 4092) "\01\02\03\04\05\06\07\08")
  {HELPERS}
  (func (export "clear") (result i32)
    (i64.store (i32.const 4092) (i64.const 0))
    (i32.const 0))
  (func (export "read") (result i32)
    (call $output_u64 (i64.load (i32.const 4092)))
    (i32.const 0)))"#
    );
    let memories = Memories::default();
    let mut engine = memories.open(Limits::default());
    install(&mut engine, "segment", &plugin);
    assert_eq!(
        ok_u64(&mut engine, "segment", "read"),
        0x0807_0605_0403_0201
    );
    ok(&mut engine, "segment", "clear");
    drop(engine);

    let mut engine = memories.open(Limits::default());
    assert_eq!(ok_u64(&mut engine, "segment", "read"), 0);
}

/// A plugin that writes memory in every way wasm can, several across 4 KiB chunk boundaries (the
/// engine saves and rolls back memory by the chunks wasmi marks as written).
fn writer() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 3)
  (data (i32.const 0) "source bytes for memory.copy")
  (data $passive "passive segment")
  {HELPERS}
  (func $write_all
    (i32.store8 (i32.const 12293) (i32.const 0x11))
    (i32.store16 (i32.const 8191) (i32.const 0xbbaa))
    (i64.store (i32.const 20477) (i64.const 0x0102030405060708))
    (f64.store offset=4093 (i32.const 24576) (f64.const 1.5))
    (i64.store32 (i32.const 65636) (i64.const 0x0a0b0c0d))
    (f32.store (i32.const 36862) (f32.const 2.5))
    (memory.fill (i32.const 40967) (i32.const 0x5a) (i32.const 9000))
    (memory.copy (i32.const 57345) (i32.const 0) (i32.const 4100))
    (memory.init $passive (i32.const 86010) (i32.const 0) (i32.const 15)))
  (func (export "write_all") (result i32)
    (call $write_all)
    (i32.const 0))
  (func (export "write_all_then_trap") (result i32)
    (call $write_all)
    unreachable)
  (func (export "grow_and_write") (result i32)
    (drop (memory.grow (i32.const 1)))
    (i64.store (i32.const 200700) (i64.const -1))
    (i32.const 0))
  (func (export "digest") (result i32)
    (local $i i32) (local $h i64)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.mul (memory.size) (i32.const 65536))))
      (local.set $h (i64.add (i64.mul (local.get $h) (i64.const 1099511628211))
                             (i64.load (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br $next)))
    (call $output_u64 (local.get $h))
    (i32.const 0))
)"#
    )
}

#[test]
fn every_kind_of_write_is_saved_and_rolled_back() {
    let memories = Memories::default();
    let mut engine = memories.open(Limits::default());
    install(&mut engine, "writer", &writer());
    let initial = ok_u64(&mut engine, "writer", "digest");

    assert!(matches!(
        err(&mut engine, "writer", "write_all_then_trap"),
        InvokeError::Trap { .. }
    ));
    assert_eq!(ok_u64(&mut engine, "writer", "digest"), initial);
    let dry = call_with(&mut engine, "writer", "write_all", b"", None, false);
    assert!(dry.is_ok());
    assert_eq!(ok_u64(&mut engine, "writer", "digest"), initial);

    ok(&mut engine, "writer", "write_all");
    let written = ok_u64(&mut engine, "writer", "digest");
    assert_ne!(written, initial);
    drop(engine);
    let mut engine = memories.open(Limits::default());
    assert_eq!(ok_u64(&mut engine, "writer", "digest"), written);

    ok(&mut engine, "writer", "grow_and_write");
    let grown = ok_u64(&mut engine, "writer", "digest");
    assert_ne!(grown, written);
    drop(engine);
    let mut engine = memories.open(Limits::default());
    assert_eq!(ok_u64(&mut engine, "writer", "digest"), grown);
    assert_eq!(engine.get("writer").map(|i| i.memory_pages), Some(4));
}

/// Writes far apart in a memory of 17 pages (1,088 marked spans of 1 KiB: two blocks of eight
/// 64-span words and one word after them), one across a span boundary.
#[test]
fn writes_anywhere_in_a_large_memory_are_saved_and_rolled_back() {
    const PLACES: [u32; 6] = [
        3077,
        7 * 65536 + 10,
        8 * 65536 + 1022,
        12 * 65536,
        16 * 65536 + 100,
        17 * 65536 - 4,
    ];
    let stores = |value: &str| {
        PLACES
            .iter()
            .map(|at| format!("(i32.store (i32.const {at}) (i32.const {value}))"))
            .collect::<String>()
    };
    let loads = PLACES
        .iter()
        .map(|at| format!("(i64.extend_i32_u (i32.load (i32.const {at})))"))
        .fold("(i64.const 0)".to_owned(), |sum, load| {
            format!("(i64.add {sum} {load})")
        });
    let plugin = format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 17)
  {HELPERS}
  (func (export "write") (result i32) {} (i32.const 0))
  (func (export "write_then_trap") (result i32) {} (unreachable))
  (func (export "sum") (result i32) (call $output_u64 {loads}) (i32.const 0))
)"#,
        stores("0x01010101"),
        stores("0x7f7f7f7f"),
    );
    let memories = Memories::default();
    let mut engine = memories.open(Limits::default());
    install(&mut engine, "far", &plugin);
    ok(&mut engine, "far", "write");
    let written = 6 * 0x0101_0101;
    assert_eq!(ok_u64(&mut engine, "far", "sum"), written);
    assert!(matches!(
        err(&mut engine, "far", "write_then_trap"),
        InvokeError::Trap { .. }
    ));
    assert_eq!(ok_u64(&mut engine, "far", "sum"), written);
    drop(engine);
    let mut engine = memories.open(Limits::default());
    assert_eq!(ok_u64(&mut engine, "far", "sum"), written);
}

#[test]
fn host_primitives_hash_and_compare_the_plugins_own_memory() {
    let plugin = format!(
        r#"(module {IMPORTS}
  (import "extism:host/user" "sha256" (func $sha256 (param i32 i32 i32)))
  (import "extism:host/user" "compare" (func $compare (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "abc")
  (data (i32.const 8) "abd")
  {HELPERS}
  (func (export "hash") (result i32)
    (call $sha256 (i32.const 0) (i32.const 3) (i32.const 4094))
    (i32.const 0))
  (func (export "stored_digest") (result i32)
    (call $output_set (call $block (i32.const 4094) (i32.const 32)) (i64.const 32))
    (i32.const 0))
  (func (export "compare") (result i32)
    (call $output_u64 (i64.extend_i32_s
      (i32.add (i32.mul (call $compare (i32.const 0) (i32.const 8) (i32.const 3)) (i32.const 10))
               (call $compare (i32.const 0) (i32.const 8) (i32.const 2)))))
    (i32.const 0))
  (func (export "hash_out_of_bounds") (result i32)
    (call $sha256 (i32.const 65530) (i32.const 7) (i32.const 0))
    (i32.const 0))
)"#
    );
    let memories = Memories::default();
    let mut engine = memories.open(Limits::default());
    install(&mut engine, "prims", &plugin);
    ok(&mut engine, "prims", "hash");
    drop(engine);
    // The digest the host wrote across a chunk boundary was saved like a guest store.
    let mut engine = memories.open(Limits::default());
    let digest = ok(&mut engine, "prims", "stored_digest");
    assert_eq!(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // "abc" < "abd" over 3 bytes, equal over 2.
    assert_eq!(ok_u64(&mut engine, "prims", "compare") as i64, -10);
    match err(&mut engine, "prims", "hash_out_of_bounds") {
        InvokeError::Trap { message } => assert!(
            message.contains("sha256: linear memory 65530 (+7) is out of bounds"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_invoke_runs_nothing() {
    let mut engine = engine();
    install(&mut engine, "counter", &counter());
    let request = InvokeRequest {
        plugin: "counter",
        function: "inc",
        input: b"",
        fuel: None,
        caller: caller(),
        now_ns: 42,
        commit: true,
        logs: false,
        instruction_limit: None,
    };
    let refused = engine.invoke_authorized(request.clone(), |record| {
        assert_eq!(
            (record.owner, &record.invoke_policy),
            (owner(), &InvokePolicy::Public)
        );
        Err::<Option<u64>, _>("not you")
    });
    assert_eq!(refused.err(), Some("not you"));
    assert_eq!(engine.get("counter").map(|i| i.calls), Some(0));
    let unknown = InvokeRequest {
        plugin: "nope",
        ..request
    };
    let result = engine.invoke_authorized(unknown, |_| Err::<Option<u64>, _>("not asked"));
    assert!(matches!(
        result.map(|r| r.map_err(|f| f.error)),
        Ok(Err(InvokeError::UnknownPlugin { .. }))
    ));
    assert_eq!(ok_u64(&mut engine, "counter", "inc"), 1);
}

#[test]
fn plugins_are_isolated_and_identical_code_is_stored_once() {
    let mut engine = engine();
    let a = install(&mut engine, "a", &counter());
    let b = install(&mut engine, "b", &counter());
    assert_eq!(a.code_sha256, b.code_sha256);
    assert_eq!(engine.stored_modules(), 1);
    ok(&mut engine, "a", "inc");
    ok(&mut engine, "a", "inc");
    assert_eq!(state(&mut engine, "b"), (0, 0, Vec::new()));
    assert_eq!(ok_u64(&mut engine, "a", "get"), 2);

    engine.uninstall("a").expect("uninstall");
    assert_eq!(engine.stored_modules(), 1);
    engine.uninstall("b").expect("uninstall");
    assert_eq!(engine.stored_modules(), 0);
    assert!(engine.get("a").is_none());
}

#[test]
fn install_refuses_bad_modules_with_the_reason() {
    let mut engine = engine();
    let junk = engine.install(request("junk", b"not wasm at all"), 1);
    assert!(matches!(junk, Err(InstallError::InvalidWasm { .. })));

    // The engine compiles lazily, but install validates every function body, called or not.
    let ill_typed = r#"(module (func (export "run") (result i32) (i32.const 0))
                               (func (export "never_called") (result i32) (i64.const 1)))"#;
    match install_err(&mut engine, ill_typed) {
        InstallError::InvalidWasm { reason } => assert!(reason.contains("type"), "{reason}"),
        other => panic!("expected InvalidWasm, got {other:?}"),
    }
    assert!(engine.get("bad").is_none());
    assert_eq!(engine.stored_modules(), 0);

    // WASI preview 1 is offered (tests/wasi.rs), but only its own names with their signatures.
    match install_err(
        &mut engine,
        r#"(module (import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32)))
                   (func (export "run") (result i32) (i32.const 0)))"#,
    ) {
        InstallError::ForbiddenImport {
            module,
            name,
            reason,
        } => {
            assert_eq!(
                (module.as_str(), name.as_str(), reason.as_str()),
                (
                    "wasi_snapshot_preview1",
                    "sock_open",
                    "not a host function of plugin_host"
                )
            )
        }
        other => panic!("{other:?}"),
    }
    match install_err(
        &mut engine,
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32)))
                   (func (export "run") (result i32) (i32.const 0)))"#,
    ) {
        InstallError::ForbiddenImport { name, reason, .. } => {
            assert_eq!(
                (name.as_str(), reason.as_str()),
                ("fd_write", "wrong signature")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        install_err(
            &mut engine,
            r#"(module (import "extism:host/env" "alloc" (func (param i32) (result i32)))
                       (func (export "run") (result i32) (i32.const 0)))"#
        ),
        InstallError::ForbiddenImport { .. }
    ));
    assert_eq!(
        install_err(
            &mut engine,
            r#"(module (func (export "add") (param i32) (result i32) (local.get 0)))"#
        ),
        InstallError::NoPluginFunctions
    );
    assert!(matches!(
        install_err(
            &mut engine,
            r#"(module (func $s (loop $l (br $l))) (start $s) (func (export "run")))"#
        ),
        InstallError::StartFailed(failure) if matches!(failure.error, InvokeError::OutOfFuel { .. })
    ));
    assert_eq!(
        install_err(
            &mut engine,
            r#"(module (memory 2000) (func (export "run")))"#
        ),
        InstallError::LimitExceeded(LimitExceeded {
            limit: "memory pages".into(),
            requested: 2000,
            max: 1024
        })
    );
    assert!(matches!(
        install_err(
            &mut engine,
            r#"(module (table 1000000 funcref) (func (export "run")))"#
        ),
        InstallError::LimitExceeded(LimitExceeded { limit, .. }) if limit == "table elements"
    ));
    assert!(matches!(
        install_err(&mut engine, r#"(module (memory 1) (func (export "run")))"#),
        InstallError::InvalidWasm { .. }
    ));
    let big = vec![0u8; 9 * 1024 * 1024];
    assert!(matches!(
        engine.install(request("big", &big), 1),
        Err(InstallError::TooLarge { .. })
    ));
    for name in ["", "Upper", "has space", &"x".repeat(65)] {
        let wasm = wat(&counter());
        assert!(matches!(
            engine.install(request(name, &wasm), 1),
            Err(InstallError::InvalidName { .. })
        ));
    }
    install(&mut engine, "counter", &counter());
    let wasm = wat(&counter());
    assert!(matches!(
        engine.install(request("counter", &wasm), 1),
        Err(InstallError::NameTaken { .. })
    ));
}

#[test]
fn unknown_plugins_and_functions() {
    let mut engine = engine();
    install(&mut engine, "counter", &counter());
    assert!(matches!(
        err(&mut engine, "nobody", "inc"),
        InvokeError::UnknownPlugin { .. }
    ));
    match err(&mut engine, "counter", "nothing") {
        InvokeError::UnknownFunction { available, .. } => {
            assert!(available.contains(&"inc".into()))
        }
        other => panic!("{other:?}"),
    }
}

fn hostile(body: &str) -> String {
    format!(
        r#"(module {IMPORTS} (memory (export "memory") 1) {HELPERS}
             (func (export "run") (result i32) {body}))"#
    )
}

#[test]
fn hostile_plugins_get_typed_errors() {
    let mut engine = engine();
    install(
        &mut engine,
        "bomb",
        &hostile(
            "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 100)) (i32.const -1)))) unreachable",
        ),
    );
    assert!(matches!(
        err(&mut engine, "bomb", "run"),
        InvokeError::LimitExceeded(LimitExceeded { limit, .. }) if limit == "memory pages"
    ));
    install(
        &mut engine,
        "deep",
        r#"(module (func $f (export "run") (result i32) (call $f)))"#,
    );
    assert!(matches!(
        err(&mut engine, "deep", "run"),
        InvokeError::Trap { .. }
    ));

    install(
        &mut engine,
        "badload",
        &hostile("(drop (call $load_u8 (i64.const 999999))) (i32.const 0)"),
    );
    match err(&mut engine, "badload", "run") {
        InvokeError::Trap { message } => assert!(message.contains("load_u8"), "{message}"),
        other => panic!("{other:?}"),
    }
    install(
        &mut engine,
        "badout",
        &hostile("(call $output_set (i64.const 1) (i64.const 100)) (i32.const 0)"),
    );
    assert!(matches!(
        err(&mut engine, "badout", "run"),
        InvokeError::Trap { .. }
    ));
    install(
        &mut engine,
        "hugeout",
        &hostile(
            "(call $output_set (call $alloc (i64.const 2000000)) (i64.const 2000000)) (i32.const 0)",
        ),
    );
    assert!(matches!(
        err(&mut engine, "hugeout", "run"),
        InvokeError::LimitExceeded(LimitExceeded { limit, .. }) if limit == "output bytes"
    ));
    install(
        &mut engine,
        "arena",
        &hostile("(loop $l (drop (call $alloc (i64.const 1000000000))) (br $l)) (i32.const 0)"),
    );
    assert!(matches!(
        err(&mut engine, "arena", "run"),
        InvokeError::LimitExceeded(LimitExceeded { limit, .. }) if limit == "arena bytes"
    ));
}

#[test]
fn the_instruction_budget_stops_a_call_between_fuel_slices() {
    let limits = Limits {
        update_instruction_limit: 1000,
        fuel_slice: 1000,
        ..Limits::default()
    };
    let mut engine = Memories::default().open_with(limits, Rc::new(Meter(Cell::new(0), 5)));
    install(&mut engine, "counter", &counter());
    let failure = engine
        .invoke(InvokeRequest {
            plugin: "counter",
            function: "inc_then_loop",
            input: b"",
            fuel: None,
            caller: caller(),
            now_ns: 0,
            commit: true,
            logs: false,
            instruction_limit: None,
        })
        .expect_err("budget");
    assert!(
        matches!(failure.error, InvokeError::InstructionLimit { .. }),
        "{failure:?}"
    );
    assert_eq!(ok_u64(&mut engine, "counter", "get"), 0);
}

#[test]
fn config_logs_and_ic_functions() {
    let mut engine = engine();
    let text = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1) {HELPERS}
             (data (i32.const 0) "greeting")
             (func (export "config") (result i32)
               (local $h i64)
               (local.set $h (call $config_get (call $block (i32.const 0) (i32.const 8))))
               (call $log_info (local.get $h))
               (call $output_set (local.get $h) (call $length (local.get $h)))
               (i32.const 0))
             (func (export "caller") (result i32)
               (local $h i64)
               (local.set $h (call $ic_caller))
               (call $output_set (local.get $h) (call $length (local.get $h)))
               (i32.const 0))
             (func (export "time") (result i32)
               (call $output_u64 (call $ic_time))
               (i32.const 0)))"#
    );
    let wasm = wat(&text);
    let mut req = request("cfg", &wasm);
    req.config.insert("greeting".into(), "hello".into());
    engine.install(req, 1).expect("install");
    let out = call_with(&mut engine, "cfg", "config", b"", None, true).expect("config");
    assert_eq!(out.output, b"hello");
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].message, "hello");
    assert_eq!(ok(&mut engine, "cfg", "caller"), b"caller");
    assert_eq!(ok_u64(&mut engine, "cfg", "time"), 42);
    engine
        .set_config(
            "cfg",
            BTreeMap::from([("greeting".into(), "bye".into())]),
            2,
        )
        .expect("set_config");
    assert_eq!(ok(&mut engine, "cfg", "config"), b"bye");
}

#[test]
fn list_pages_in_name_order() {
    let mut engine = engine();
    for name in ["c", "a", "b", "d"] {
        install(&mut engine, name, &counter());
    }
    let (page, next) = engine.list(None, 3, u64::MAX);
    let names: Vec<_> = page.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(next.as_deref(), Some("c"));
    let (page, next) = engine.list(next.as_deref(), 3, u64::MAX);
    assert_eq!(page.len(), 1);
    assert_eq!(next, None);
}

#[test]
fn upgrade_plugin_keeps_vars_and_rolls_back_a_failed_migration() {
    let mut engine = engine();
    install(&mut engine, "counter", &counter());
    ok(&mut engine, "counter", "inc");
    ok(&mut engine, "counter", "inc");
    let wasm = wat(&counter());
    let failed = engine.upgrade_plugin(
        UpgradePluginRequest {
            name: "counter",
            wasm: &wasm,
            migration: Some("inc_then_trap"),
        },
        5,
    );
    assert!(matches!(failed, Err(InstallError::MigrationFailed(_))));
    assert_eq!(ok_u64(&mut engine, "counter", "get"), 2);

    let info = engine
        .upgrade_plugin(
            UpgradePluginRequest {
                name: "counter",
                wasm: &wasm,
                migration: None,
            },
            6,
        )
        .expect("upgrade");
    assert_eq!(info.updated_at_ns, 6);
    // Memory starts fresh from the new module; vars are kept.
    assert_eq!(ok_u64(&mut engine, "counter", "get"), 0);
    assert_eq!(ok(&mut engine, "counter", "var"), 2u64.to_le_bytes());
}

/// What a sequence of calls may do to the counter.
#[derive(Debug, Clone, Copy)]
enum Op {
    Inc,
    IncThenFail,
    IncThenTrap,
    IncThenLoop,
    IncThenGrowAndTrap,
    DryRunInc,
    DropCaches,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => Just(Op::Inc),
        1 => Just(Op::IncThenFail),
        1 => Just(Op::IncThenTrap),
        1 => Just(Op::IncThenLoop),
        1 => Just(Op::IncThenGrowAndTrap),
        1 => Just(Op::DryRunInc),
        1 => Just(Op::DropCaches),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(24))]

    /// Against a model (a number): only committed successful calls change state, whatever fails
    /// in between and whenever the caches are dropped.
    #[test]
    fn rollback_matches_a_model(ops in proptest::collection::vec(op(), 1..12)) {
        let memories = Memories::default();
        let mut engine = memories.open(Limits::default());
        install(&mut engine, "counter", &counter());
        let mut model = 0u64;
        for op in ops {
            let (function, commit) = match op {
                Op::Inc => ("inc", true),
                Op::IncThenFail => ("inc_then_fail", true),
                Op::IncThenTrap => ("inc_then_trap", true),
                Op::IncThenLoop => ("inc_then_loop", true),
                Op::IncThenGrowAndTrap => ("inc_then_grow_and_trap", true),
                Op::DryRunInc => ("inc", false),
                Op::DropCaches => {
                    drop(engine);
                    engine = memories.open(Limits::default());
                    continue;
                }
            };
            let result = call_with(&mut engine, "counter", function, b"", Some(200_000), commit);
            if matches!(op, Op::Inc) {
                model += 1;
                proptest::prop_assert_eq!(result.map(|o| o.output), Ok(model.to_le_bytes().to_vec()));
            } else if matches!(op, Op::DryRunInc) {
                proptest::prop_assert_eq!(result.map(|o| o.output), Ok((model + 1).to_le_bytes().to_vec()));
            } else {
                proptest::prop_assert!(result.is_err());
            }
            let var = if model == 0 { Vec::new() } else { model.to_le_bytes().to_vec() };
            proptest::prop_assert_eq!(state(&mut engine, "counter"), (model, model, var));
        }
    }
}

/// A module with many functions, each compiled lazily when a call first reaches it: compiling
/// runs out of a fuel slice many times, and each time the call resumes with the next slice.
#[test]
fn lazy_compilation_resumes_across_fuel_slices() {
    let mut funcs = String::new();
    for i in 0..200 {
        // Each function adds its index to a local, many times over, then calls the next.
        let body = "(local.set $x (i64.add (local.get $x) (i64.const 1)))".repeat(40);
        let next = if i < 199 {
            format!("(call $f{})", i + 1)
        } else {
            "(i64.const 0)".into()
        };
        funcs.push_str(&format!(
            "(func $f{i} (result i64) (local $x i64) {body} (i64.add (local.get $x) {next}))\n"
        ));
    }
    let text = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1) {HELPERS} {funcs}
             (func (export "run") (result i32) (call $output_u64 (call $f0)) (i32.const 0))
             (func (export "big") (result i32) (local $x i64) {big}
               (call $output_u64 (local.get $x)) (i32.const 0)))"#,
        big = "(local.set $x (i64.add (local.get $x) (i64.const 1)))".repeat(2_000),
    );
    let limits = Limits {
        fuel_slice: 2_000,
        ..Limits::default()
    };
    let mut engine = Memories::default().open(limits);
    install(&mut engine, "many", &text);
    assert_eq!(ok_u64(&mut engine, "many", "run"), 200 * 40);
    // The called export itself needs more than a slice to compile.
    assert_eq!(ok_u64(&mut engine, "many", "big"), 2_000);
}

/// The instruction limit counts the whole message: work before the guest call (decoding,
/// instantiation, restoring) counts too, so a message that starts late stops early.
#[test]
fn the_instruction_limit_counts_the_whole_message() {
    let limits = Limits {
        fuel_slice: 10_000,
        ..Limits::default()
    };
    let limit = limits.update_instruction_limit;
    // The message has used all but 100 instructions of the limit before the call starts.
    let meter = Rc::new(Meter(Cell::new(limit - 100), 1));
    let mut engine = Memories::default().open_with(limits, meter.clone());
    install(&mut engine, "counter", &counter());
    meter.0.set(limit - 100);
    match err(&mut engine, "counter", "inc_then_loop") {
        InvokeError::InstructionLimit {
            instructions,
            limit: reported,
        } => assert!(instructions >= limit && reported == limit),
        other => panic!("{other:?}"),
    }
    meter.0.set(0);
    assert_eq!(ok_u64(&mut engine, "counter", "get"), 0, "rolled back");
}

/// Start functions and initialisers run under fuel slices and the instruction counter too, at
/// install and at `upgrade_plugin`, and they run once: not again when the plugin is restored.
#[test]
fn start_functions_and_initialisers_run_once_under_the_budget() {
    let looping_start = r#"(module (memory (export "memory") 1)
        (func $s (loop $l (br $l))) (start $s) (func (export "run")))"#;
    let limits = Limits {
        fuel_slice: 10_000,
        ..Limits::default()
    };
    let limit = limits.update_instruction_limit;
    let meter = Rc::new(Meter(Cell::new(limit - 1_000), 1));
    let memories = Memories::default();
    let mut engine = memories.open_with(limits, meter);
    match install_err(&mut engine, looping_start) {
        InstallError::StartFailed(failure) => assert!(
            matches!(failure.error, InvokeError::InstructionLimit { .. }),
            "{failure:?}"
        ),
        other => panic!("{other:?}"),
    }

    // A start function and an initialiser that each count in memory and a global.
    let counting = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1) {HELPERS}
             (global $g (mut i64) (i64.const 0))
             (func $start (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1))))
             (start $start)
             (func (export "_initialize") (global.set $g (i64.add (global.get $g) (i64.const 10))))
             (func (export "state") (result i32)
               (call $output_u64 (i64.add (i64.load (i32.const 0)) (global.get $g)))
               (i32.const 0)))"#
    );
    let mut engine = memories.open(Limits::default());
    let info = install(&mut engine, "counting", &counting);
    assert_eq!(
        info.functions,
        vec!["state".to_owned()],
        "neither is a plugin function"
    );
    assert_eq!(ok_u64(&mut engine, "counting", "state"), 11);
    drop(engine);
    let mut engine = memories.open(Limits::default());
    assert_eq!(
        ok_u64(&mut engine, "counting", "state"),
        11,
        "not run again"
    );
}

/// A refused `memory.grow` is legal (the guest gets -1 and may go on): a later failure of the
/// same call is reported as itself, not as the refused growth.
#[test]
fn a_refused_memory_grow_does_not_mask_later_errors() {
    let mut engine = engine();
    install(
        &mut engine,
        "grow",
        &hostile(
            "(drop (memory.grow (i32.const 5000)))
             (drop (call $load_u8 (i64.const 999999)))
             (i32.const 0)",
        ),
    );
    match err(&mut engine, "grow", "run") {
        InvokeError::Trap { message } => assert!(message.contains("load_u8"), "{message}"),
        other => panic!("{other:?}"),
    }
    install(
        &mut engine,
        "grow_then_trap",
        &hostile("(drop (memory.grow (i32.const 5000))) unreachable"),
    );
    assert!(matches!(
        err(&mut engine, "grow_then_trap", "run"),
        InvokeError::LimitExceeded(LimitExceeded { limit, .. }) if limit == "memory pages"
    ));
}

/// The caps on what installs may store: plugins in all, per owner, and bytes of distinct code
/// (the same module again adds no code).
#[test]
fn installs_stop_at_the_plugin_and_code_caps() {
    let code = wat(&counter()).len() as u64;
    let limits = Limits {
        max_plugins: 3,
        max_plugins_per_owner: 2,
        max_code_bytes: code + 100,
        ..Limits::default()
    };
    let memories = Memories::default();
    let mut engine = memories.open(limits.clone());
    install(&mut engine, "a", &counter());
    install(&mut engine, "b", &counter());
    let limit_of = |e: InstallError| match e {
        InstallError::LimitExceeded(l) => (l.limit, l.requested, l.max),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        limit_of(install_err(&mut engine, &counter())),
        ("plugins per owner".into(), 3, 2)
    );
    let other_code = wat(&hostile("(i32.const 0)"));
    let mut req = request("c", &other_code);
    req.owner = caller();
    assert_eq!(
        limit_of(engine.install(req.clone(), 1).expect_err("code cap")),
        (
            "code bytes".into(),
            code + other_code.len() as u64,
            code + 100
        )
    );
    let same_code = wat(&counter());
    req.wasm = &same_code;
    engine
        .install(req, 1)
        .expect("the same code is stored once");
    assert_eq!(
        limit_of(install_err(&mut engine, &counter())),
        ("plugins".into(), 4, 3)
    );
    // After a restart the counts are rebuilt from the records; uninstalling frees room.
    drop(engine);
    let mut engine = memories.open(limits);
    assert_eq!(
        limit_of(install_err(&mut engine, &counter())),
        ("plugins".into(), 4, 3)
    );
    engine.uninstall("a").expect("uninstall");
    install(&mut engine, "d", &counter());
}

/// Names from a module are echoed in errors cut short, so that no reply passes the IC's limit:
/// an import name may be as long as wasm allows (100,000 bytes).
#[test]
fn names_from_a_module_are_echoed_cut() {
    let mut engine = engine();
    let long = "x".repeat(90_000);
    let module = format!(
        r#"(module (import "{long}" "{long}" (func)) (func (export "run") (result i32) (i32.const 0)))"#
    );
    match install_err(&mut engine, &module) {
        InstallError::ForbiddenImport { module, name, .. } => {
            assert_eq!(
                (module.len(), name.len()),
                (259, 259),
                "256 bytes and an ellipsis"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// What the engine keeps of a module that uses references without changing them: a table filled
/// by an element segment and an immutable `funcref` global. Calls through both keep working
/// after a failed call and after the caches are dropped (as after an upgrade).
#[test]
fn tables_and_reference_globals_that_never_change_survive_failures_and_restores() {
    let plugin = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1) {HELPERS}
             (type $answer (func (result i64)))
             (table 2 funcref)
             (elem (i32.const 0) $seven $eleven)
             (global $pick funcref (ref.func $eleven))
             (elem declare func $eleven)
             (func $seven (result i64) (i64.const 7))
             (func $eleven (result i64) (i64.const 11))
             (func (export "through_table") (result i32)
               (call $output_u64 (i64.add (call_indirect (type $answer) (i32.const 0))
                                          (call_indirect (type $answer) (i32.const 1))))
               (i32.const 0))
             (func (export "through_global") (result i32)
               (call $output_u64 (i64.extend_i32_u (ref.is_null (global.get $pick))))
               (i32.const 0))
             (func (export "fail") (result i32) unreachable))"#
    );
    let memories = Memories::default();
    let mut engine = memories.open(Limits::default());
    install(&mut engine, "refs", &plugin);
    assert_eq!(ok_u64(&mut engine, "refs", "through_table"), 18);
    assert!(matches!(
        err(&mut engine, "refs", "fail"),
        InvokeError::Trap { .. }
    ));
    assert_eq!(ok_u64(&mut engine, "refs", "through_table"), 18);
    drop(engine);
    let mut engine = memories.open(Limits::default());
    assert_eq!(ok_u64(&mut engine, "refs", "through_table"), 18);
    assert_eq!(ok_u64(&mut engine, "refs", "through_global"), 0, "not null");
}

/// A script runtime: its script's functions are the config entry `names` (one per line), and
/// `__plugin_call` outputs the name of the function it was asked to run (`plugin_host.function`).
/// `own` is an export of its own; `calls` counts the dispatched calls in memory.
fn script_runtime() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 0) "names")
  (data (i32.const 16) "plugin_host.function")
  {HELPERS}
  (func $echo_config (param $key i32) (param $len i32)
    (local $h i64)
    (local.set $h (call $config_get (call $block (local.get $key) (local.get $len))))
    (call $output_set (local.get $h) (call $length (local.get $h))))
  (func (export "__plugin_functions") (result i32)
    (call $echo_config (i32.const 0) (i32.const 5))
    (i32.const 0))
  (func (export "__plugin_call") (result i32)
    (i64.store (i32.const 64) (i64.add (i64.load (i32.const 64)) (i64.const 1)))
    (call $echo_config (i32.const 16) (i32.const 20))
    (i32.const 0))
  (func (export "own") (result i32)
    (call $output_u64 (i64.load (i32.const 64)))
    (i32.const 0)))"#
    )
}

fn install_runtime(
    engine: &mut Engine<VectorMemory>,
    names: &str,
) -> Result<PluginRecord, InstallError> {
    let wasm = wat(&script_runtime());
    let mut req = request("rt", &wasm);
    req.config = BTreeMap::from([("names".to_owned(), names.to_owned())]);
    engine.install(req, 1)
}

#[test]
fn a_script_runtimes_listed_functions_are_its_plugin_functions_and_run_through_plugin_call() {
    let mut engine = engine();
    let record = install_runtime(&mut engine, "beta\nalpha\n\nbeta").expect("installs");
    assert_eq!(record.functions, ["alpha", "beta", "own"]);
    // The dispatched call reads which function it runs; the module's own export runs directly.
    assert_eq!(ok(&mut engine, "rt", "alpha"), b"alpha");
    assert_eq!(ok(&mut engine, "rt", "beta"), b"beta");
    assert_eq!(ok(&mut engine, "rt", "own"), 2u64.to_le_bytes());
    for name in ["gamma", "__plugin_call", "__plugin_functions", ""] {
        assert!(
            matches!(
                err(&mut engine, "rt", name),
                InvokeError::UnknownFunction { .. }
            ),
            "{name:?}"
        );
    }
    // Outside a dispatched call the key is not set: `own` cannot read it.
    assert_eq!(ok(&mut engine, "rt", "own"), 2u64.to_le_bytes());
}

#[test]
fn a_script_runtime_that_lists_names_no_plugin_function_may_have_is_refused() {
    let too_long = "x".repeat(Limits::default().max_export_name_bytes + 1);
    let too_many: Vec<String> = (0..=Limits::default().max_plugin_functions)
        .map(|i| format!("f{i}"))
        .collect();
    for names in [
        "has space",
        "tab\there",
        "__plugin_call",
        "__anything",
        "_initialize",
    ] {
        match install_runtime(&mut engine(), names) {
            Err(InstallError::StartFailed(failure)) => assert!(
                matches!(failure.error, InvokeError::PluginError { .. }),
                "{names:?}: {failure}"
            ),
            other => panic!("{names:?}: expected StartFailed, got {other:?}"),
        }
    }
    for names in [too_long, too_many.join("\n")] {
        assert!(matches!(
            install_runtime(&mut engine(), &names),
            Err(InstallError::LimitExceeded(_))
        ));
    }
}

#[test]
fn a_script_runtime_needs_both_entry_points_and_its_listing_runs_under_the_install_budget() {
    let half = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1)
  (func (export "__plugin_call") (result i32) (i32.const 0))
  (func (export "f") (result i32) (i32.const 0)))"#
    );
    assert!(matches!(
        install_err(&mut engine(), &half),
        InstallError::InvalidWasm { .. }
    ));
    let looping = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1)
  (func (export "__plugin_functions") (result i32) (loop $l (br $l)) (i32.const 0))
  (func (export "__plugin_call") (result i32) (i32.const 0)))"#
    );
    match install_err(&mut engine(), &looping) {
        InstallError::StartFailed(failure) => {
            assert!(matches!(failure.error, InvokeError::OutOfFuel { .. }))
        }
        other => panic!("expected StartFailed(OutOfFuel), got {other:?}"),
    }
    let not_utf8 = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1) (data (i32.const 0) "\ff\fe")
  {HELPERS}
  (func (export "__plugin_functions") (result i32)
    (call $output_set (call $block (i32.const 0) (i32.const 2)) (i64.const 2)) (i32.const 0))
  (func (export "__plugin_call") (result i32) (i32.const 0)))"#
    );
    match install_err(&mut engine(), &not_utf8) {
        InstallError::StartFailed(failure) => assert!(failure.to_string().contains("UTF-8")),
        other => panic!("expected StartFailed, got {other:?}"),
    }
}

#[test]
fn set_config_relists_a_script_runtimes_functions_or_changes_nothing() {
    let mut engine = engine();
    install_runtime(&mut engine, "alpha").expect("installs");
    let names = |text: &str| BTreeMap::from([("names".to_owned(), text.to_owned())]);
    let record = engine
        .set_config("rt", names("delta\ngamma"), 2)
        .expect("relists");
    assert_eq!(record.functions, ["delta", "gamma", "own"]);
    assert_eq!(ok(&mut engine, "rt", "gamma"), b"gamma");
    assert!(matches!(
        err(&mut engine, "rt", "alpha"),
        InvokeError::UnknownFunction { .. }
    ));
    // A config the runtime cannot list functions under is refused whole.
    match engine.set_config("rt", names("no good"), 3) {
        Err(plugin_engine::ManageError::ListingFailed(_)) => {}
        other => panic!("expected ListingFailed, got {other:?}"),
    }
    let record = engine.get("rt").expect("still there");
    assert_eq!(record.functions, ["delta", "gamma", "own"]);
    assert_eq!(record.config, names("delta\ngamma"));
    assert_eq!(ok(&mut engine, "rt", "delta"), b"delta");
}

#[test]
fn config_keys_of_the_host_are_refused_at_install_and_set_config() {
    let mut engine = engine();
    let wasm = wat(&counter());
    let mut req = request("c", &wasm);
    req.config = BTreeMap::from([("plugin_host.function".to_owned(), "get".to_owned())]);
    assert!(matches!(
        engine.install(req, 1),
        Err(InstallError::LimitExceeded(LimitExceeded { max: 0, .. }))
    ));
    install(&mut engine, "c", &counter());
    let reserved = BTreeMap::from([("plugin_host.other".to_owned(), String::new())]);
    assert!(matches!(
        engine.set_config("c", reserved, 2),
        Err(plugin_engine::ManageError::LimitExceeded(_))
    ));
}

/// A `switch` in a loop (`loop { block block br_table end small case end big case }`), as an
/// interpreter's dispatch compiles: each pass pays for the case it takes, not for every case
/// after the `br_table` (wasmi charged the code after a block's end to the enclosing loop;
/// `vendor/wasmi/PATCH.md`, fifth change).
#[test]
fn a_switch_in_a_loop_pays_for_the_case_it_takes() {
    let big_case: String = "(drop (i32.add (local.get $i) (i32.const 1)))\n".repeat(200);
    let text = format!(
        r#"(module {IMPORTS} (memory (export "memory") 1)
  (func $run (param $case i32) (result i32)
    (local $i i32)
    (loop $next
      (block $big
        (block $small
          (br_table $small $big (local.get $case)))
        ;; the small case
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (i32.const 100)))
        (return (i32.const 0)))
      ;; the big case
      {big_case}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 100))))
    (i32.const 0))
  (func (export "small") (result i32) (call $run (i32.const 0)))
  (func (export "big") (result i32) (call $run (i32.const 1))))"#
    );
    let mut engine = engine();
    install(&mut engine, "switch", &text);
    let fuel = |engine: &mut Engine<VectorMemory>, function| {
        call_with(engine, "switch", function, b"", None, true)
            .expect("runs")
            .fuel_used
    };
    let (small, big) = (fuel(&mut engine, "small"), fuel(&mut engine, "big"));
    // 100 passes of about 10 operators, against 100 passes of about 800.
    assert!(small < 2_500, "the small case paid {small}");
    assert!(big > 50_000, "the big case paid {big}");
}

/// Stable memory that counts the bytes written to it.
#[derive(Clone, Default)]
struct Counting {
    inner: VectorMemory,
    written: Rc<Cell<u64>>,
}

impl ic_stable_structures::Memory for Counting {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn grow(&self, pages: u64) -> i64 {
        self.inner.grow(pages)
    }
    fn read(&self, offset: u64, dst: &mut [u8]) {
        self.inner.read(offset, dst)
    }
    fn write(&self, offset: u64, src: &[u8]) {
        self.written.set(self.written.get() + src.len() as u64);
        self.inner.write(offset, src)
    }
}

/// A var a call sets back to the value it had costs no stable write (a B-tree node rewrite): the
/// call writes what a call that sets nothing writes. A changed value is written, and both read
/// back after the engine is reopened.
#[test]
fn a_var_set_to_the_value_it_has_is_not_written_again() {
    let memory = Counting::default();
    let open = || {
        let space = Rc::new(StableSpace::init(memory.clone()));
        let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
        Engine::init(space, ids, Limits::default(), meter())
    };
    let mut engine = open();
    let wasm = wat(&format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 0) "keyonetwo")
  {HELPERS}
  (func (export "set_one") (result i32)
    (call $var_set (call $block (i32.const 0) (i32.const 3)) (call $block (i32.const 3) (i32.const 3)))
    (i32.const 0))
  (func (export "set_two") (result i32)
    (call $var_set (call $block (i32.const 0) (i32.const 3)) (call $block (i32.const 6) (i32.const 3)))
    (i32.const 0))
  (func (export "set_two_then_one") (result i32)
    (call $var_set (call $block (i32.const 0) (i32.const 3)) (call $block (i32.const 6) (i32.const 3)))
    (call $var_set (call $block (i32.const 0) (i32.const 3)) (call $block (i32.const 3) (i32.const 3)))
    (i32.const 0))
  (func (export "get") (result i32)
    (local $h i64)
    (local.set $h (call $var_get (call $block (i32.const 0) (i32.const 3))))
    (call $output_set (local.get $h) (call $length (local.get $h)))
    (i32.const 0))
  (func (export "noop") (result i32) (i32.const 0)))"#
    ));
    engine.install(request("same", &wasm), 1).expect("install");
    let written = Rc::clone(&memory.written);
    let call = |engine: &mut Engine<Counting>, function: &str| {
        let before = written.get();
        let outcome = call_with(engine, "same", function, b"", None, true)
            .unwrap_or_else(|f| panic!("{function}: {f}"));
        (written.get() - before, outcome.output)
    };
    call(&mut engine, "set_one");
    call(&mut engine, "noop");
    let (nothing, _) = call(&mut engine, "noop");
    assert_eq!(
        call(&mut engine, "set_one").0,
        nothing,
        "set to the value it has"
    );
    assert_eq!(
        call(&mut engine, "set_two_then_one").0,
        nothing,
        "changed and changed back"
    );
    let (changed, _) = call(&mut engine, "set_two");
    assert!(changed > nothing, "a changed value is written");
    drop(engine);
    let mut engine = open();
    assert_eq!(call(&mut engine, "get").1, b"two");
    call(&mut engine, "set_one");
    drop(engine);
    let mut engine = open();
    assert_eq!(call(&mut engine, "get").1, b"one");
}
