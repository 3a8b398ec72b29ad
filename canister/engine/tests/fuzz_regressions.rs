//! Regression tests of bugs the fuzzer (`cargo xtask fuzz`, crate `fuzz/`) found in the engine:
//! each is the smallest case that shows the bug, named after what must hold, with the fuzz case
//! it came from.

#![allow(missing_docs)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::VectorMemory;
use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::{
    Engine, InstallRequest, InstructionMeter, InvokeError, InvokePolicy, InvokeRequest, Limits,
    StableMemories, StableSpace,
};

/// A meter that counts its readings (one instruction each).
#[derive(Default)]
struct Readings(Cell<u64>);

impl InstructionMeter for Readings {
    fn instructions(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

fn open(limits: Limits, meter: Rc<Readings>) -> Engine<VectorMemory> {
    let space = Rc::new(StableSpace::init(VectorMemory::default()));
    let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
    Engine::init(space, ids, limits, meter)
}

fn install(engine: &mut Engine<VectorMemory>, name: &str, wat: &str) {
    let wasm = wat::parse_str(wat).expect("test WAT parses");
    let request = InstallRequest {
        name,
        wasm: &wasm,
        config: BTreeMap::new(),
        owner: Principal::from_slice(&[1]),
        invoke_policy: InvokePolicy::Public,
        fuel_limit: None,
    };
    if let Err(e) = engine.install(request, 1) {
        panic!("install {name}: {e}");
    }
}

/// A function whose lazy compilation costs more fuel than the calls below give it.
fn big_function() -> String {
    let body = "(drop (i32.add (i32.const 1) (i32.const 2)))\n".repeat(2_000);
    format!("(module (func (export \"big\") (result i32) {body} (i32.const 0)))")
}

/// Fuzz case `engine --seed 2 --case 26` (hung the fuzzer, when calls paid for compiling): a call whose fuel is more than one
/// fuel slice but less than what compiling its function costs. `budget::run` retries the call
/// with "one more slice" while the fuel granted so far (at least a slice) is all there is:
/// `next_slice(required = fuel left)` asks for nothing more, so it neither grants fuel nor says
/// out of fuel, and the call is retried until the message's instruction limit (30 B instructions
/// in the canister) instead of ending at once with `OutOfFuel`.
#[test]
fn a_call_whose_function_cannot_be_compiled_with_its_fuel_ends_out_of_fuel_at_once() {
    let limits = Limits {
        fuel_slice: 50,
        // The meter counts one instruction per reading: the call may read it this often.
        update_instruction_limit: 100_000,
        ..Limits::default()
    };
    let meter = Rc::new(Readings::default());
    let mut engine = open(limits, meter.clone());
    install(&mut engine, "big", &big_function());
    let result = engine.invoke(InvokeRequest {
        plugin: "big",
        function: "big",
        input: b"",
        fuel: Some(192),
        caller: Principal::anonymous(),
        now_ns: 2,
        commit: true,
        logs: false,
        instruction_limit: None,
    });
    let readings = meter.0.get();
    match result {
        Err(failure) => assert!(
            matches!(failure.error, InvokeError::OutOfFuel { .. }),
            "expected OutOfFuel, got {:?} after {readings} readings of the instruction counter",
            failure.error
        ),
        Ok(outcome) => panic!("the call should run out of fuel, returned {outcome:?}"),
    }
    assert!(
        readings < 100,
        "the call read the instruction counter {readings} times: it kept retrying"
    );
}

/// A plugin whose state is a global and the word at 0: `get` returns `global * 1000 + word` as
/// its return code (the engine answers `PluginError { code }`), `migrate` sets them to 7 and
/// 100, `write_then_trap` writes 5 to the word and traps.
const MIGRATED: &str = r#"(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "get") (result i32)
    (i32.add (i32.mul (global.get $g) (i32.const 1000)) (i32.load (i32.const 0))))
  (func (export "migrate") (result i32)
    (global.set $g (i32.const 7))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.const 0))
  (func (export "write_then_trap") (result i32)
    (i32.store (i32.const 0) (i32.const 5))
    unreachable))"#;

/// The return code of `get` (what the plugin's state reads).
fn get(engine: &mut Engine<VectorMemory>) -> i32 {
    let result = engine.invoke(InvokeRequest {
        plugin: "p",
        function: "get",
        input: b"",
        fuel: None,
        caller: Principal::anonymous(),
        now_ns: 3,
        commit: false,
        logs: false,
        instruction_limit: None,
    });
    match result {
        Ok(_) => 0,
        Err(failure) => match failure.error {
            InvokeError::PluginError { code, .. } => code,
            other => panic!("get failed: {other:?}"),
        },
    }
}

/// Installs [`MIGRATED`] as `p` and upgrades it to itself with the migration `migrate`; returns
/// the engine and its stable memory.
fn migrated() -> (Engine<VectorMemory>, VectorMemory) {
    let memory = VectorMemory::default();
    let open_over = |memory: &VectorMemory| {
        let space = Rc::new(StableSpace::init(memory.clone()));
        let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
        Engine::init(space, ids, Limits::default(), Rc::new(Readings::default()))
    };
    let mut engine = open_over(&memory);
    install(&mut engine, "p", MIGRATED);
    let wasm = wat::parse_str(MIGRATED).expect("test WAT parses");
    let request = plugin_engine::UpgradePluginRequest {
        name: "p",
        wasm: &wasm,
        migration: Some("migrate"),
    };
    if let Err(e) = engine.upgrade_plugin(request, 2) {
        panic!("upgrade_plugin: {e}");
    }
    (engine, memory)
}

fn reopen(memory: &VectorMemory) -> Engine<VectorMemory> {
    let space = Rc::new(StableSpace::init(memory.clone()));
    let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
    Engine::init(space, ids, Limits::default(), Rc::new(Readings::default()))
}

/// Fuzz case `engine --seed 7 --case 779` (and 14 others of 3,000): after `upgrade_plugin` with
/// a migration, the live instance and one restored from stable memory read different states.
/// `save_initial` stores the globals of `saved_globals`, taken before the migration ran
/// (`initialize`), so what the migration did to globals is on the heap only: lost at the next
/// eviction or canister upgrade.
#[test]
fn what_a_migration_does_to_globals_is_stored() {
    let (mut engine, memory) = migrated();
    assert_eq!(
        get(&mut engine),
        7_100,
        "the live instance after the migration"
    );
    let mut reopened = reopen(&memory);
    assert_eq!(
        get(&mut reopened),
        7_100,
        "restored from stable memory: the migration's global is lost"
    );
}

/// The same cause, seen from the live instance: its shadow copy (what a failed call rolls back
/// to) is the memory before the migration, so a failed call after `upgrade_plugin` puts back
/// what the migration had replaced, while stable memory keeps the migrated memory.
#[test]
fn a_failed_call_after_a_migration_rolls_back_to_the_migrated_memory() {
    let (mut engine, memory) = migrated();
    let result = engine.invoke(InvokeRequest {
        plugin: "p",
        function: "write_then_trap",
        input: b"",
        fuel: None,
        caller: Principal::anonymous(),
        now_ns: 3,
        commit: true,
        logs: false,
        instruction_limit: None,
    });
    assert!(
        matches!(&result, Err(f) if matches!(f.error, InvokeError::Trap { .. })),
        "{result:?}"
    );
    let live = get(&mut engine);
    let stored = get(&mut reopen(&memory));
    assert_eq!(
        live % 1000,
        100,
        "the live instance's word after the rollback (stored: {stored})"
    );
}

/// Fuzz case `differential --seed 7 --case 1954`: wasmi (as the engine runs it) trapped with
/// "integer divide by zero" where wasmtime returns 16383, in a function that makes its divisor
/// non-zero with `select` (local 6 = local 6 == 0 ? 1 : local 6). wasmi 2.0.0 fused the
/// `i32.eqz` of a local into the `select` but read the condition from its accumulator register
/// instead of the local (`vendor/wasmi/PATCH.md`, third change; the reduced case is the next
/// test). The function is the fuzz case's `f2` as wasm-smith wrote it.
#[test]
fn a_divisor_made_non_zero_by_select_is_not_zero() {
    let wat = r#"(module
  (memory 1 5)
  (export "memory" (memory 0))
  (global (mut i64) (i64.const 5))
  (global (mut f64) (f64.const 0))
  (global (mut f32) (f32.const -0.0020077059))
  (global (mut i64) (i64.const -5529659009571589180))
  (global (mut i32) (i32.const 0))
  (global (mut i32) (i32.const 0))
  (func (export "f2") (result i32)
    (local i32 i32 i32 i64 i32 i32 i32 i32)
    global.get 3
    i32.wrap_i64
    local.set 0
    block ;; label = @1
      block ;; label = @2
        memory.size
        i32.const 65536
        i32.mul
        i32.const 55270
        local.get 0
        i32.add
        i32.le_u
        br_if 0 (;@2;)
        local.get 0
        i32.const 0
        i32.le_s
        br_if 0 (;@2;)
        local.get 0
        i32.load8_s offset=55266
        local.set 1
        br 1 (;@1;)
      end
      i32.const 0
      local.set 1
    end
    local.get 1
    local.set 2
    block ;; label = @1
      block ;; label = @2
        memory.size
        i32.const 65536
        i32.mul
        i32.const 292245807
        local.get 2
        i32.add
        i32.le_u
        br_if 0 (;@2;)
        local.get 2
        i32.const 0
        i32.le_s
        br_if 0 (;@2;)
        local.get 2
        i64.load16_u offset=292245799 align=1
        local.set 3
        br 1 (;@1;)
      end
      i64.const 0
      local.set 3
    end
    local.get 3
    i64.extend8_s
    i64.extend16_s
    global.get 2
    i32.trunc_sat_f32_u
    i32.extend8_s
    i32.const -9
    local.set 4
    block ;; label = @1
      block ;; label = @2
        memory.size
        i32.const 65536
        i32.mul
        i32.const 304
        local.get 4
        i32.add
        i32.le_u
        br_if 0 (;@2;)
        local.get 4
        i32.const 0
        i32.le_s
        br_if 0 (;@2;)
        local.get 4
        i32.load16_u offset=300 align=1
        local.set 5
        br 1 (;@1;)
      end
      i32.const 0
      local.set 5
    end
    local.get 5
    local.set 6
    i32.const 1
    local.get 6
    local.get 6
    i32.eqz
    select
    local.set 6
    local.set 7
    block ;; label = @1
      block ;; label = @2
        local.get 7
        local.get 6
        local.set 6
        local.tee 7
        i32.const -2147483648
        i32.ne
        br_if 0 (;@2;)
        local.get 6
        i32.const -1
        i32.ne
        br_if 0 (;@2;)
        i32.const 1
        local.set 6
        br 1 (;@1;)
      end
    end
    local.get 7
    local.get 6
    i32.rem_s
    global.get 4
    i32.xor
    global.set 4
    global.get 0
    i64.xor
    global.set 0
    i32.const 16383
  )
)"#;
    let mut engine = open(Limits::default(), Rc::new(Readings::default()));
    install(&mut engine, "p", wat);
    let result = engine.invoke(InvokeRequest {
        plugin: "p",
        function: "f2",
        input: b"",
        fuel: None,
        caller: Principal::anonymous(),
        now_ns: 2,
        commit: true,
        logs: false,
        instruction_limit: None,
    });
    // wasmtime returns 16383, a non-zero return code: the engine's `PluginError { code: 16383 }`.
    match result {
        Err(failure) => assert!(
            matches!(failure.error, InvokeError::PluginError { code: 16_383, .. }),
            "the divisor is 1, wasmtime returns 16383: {:?}",
            failure.error
        ),
        Ok(outcome) => panic!("f2 returns 16383, a plugin error: {outcome:?}"),
    }
}

/// The reduced case of the one above: `select` whose condition is `i32.eqz` of a local, after an
/// instruction that left another value in wasmi's accumulator register (here `memory.size`).
#[test]
fn a_select_on_the_eqz_of_a_local_reads_the_local() {
    let mut engine = open(Limits::default(), Rc::new(Readings::default()));
    for (name, condition) in [("eqz", "i32.eqz"), ("nez", "i32.const 0 i32.ne")] {
        let wat = format!(
            r#"(module
              (func (export "run") (result i32)
                (local i32 i32)
                memory.size drop
                i32.const 7
                local.get 1
                local.get 1
                {condition}
                select)
              (memory (export "memory") 1))"#
        );
        install(&mut engine, name, &wat);
        let result = engine.invoke(InvokeRequest {
            plugin: name,
            function: "run",
            input: b"",
            fuel: None,
            caller: Principal::anonymous(),
            now_ns: 2,
            commit: true,
            logs: false,
            instruction_limit: None,
        });
        // Local 1 is 0: `eqz` picks 7, `!= 0` picks the local, 0 (the call's success).
        let code = match result {
            Ok(_) => 0,
            Err(f) => match f.error {
                InvokeError::PluginError { code, .. } => code,
                other => panic!("{name}: {other:?}"),
            },
        };
        assert_eq!(code, if name == "eqz" { 7 } else { 0 }, "{name}");
    }
}
