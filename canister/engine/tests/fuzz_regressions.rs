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

/// Fuzz case `engine --seed 2 --case 26` (hung the fuzzer): a call whose fuel is more than one
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
