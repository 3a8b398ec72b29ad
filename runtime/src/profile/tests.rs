use super::*;
use crate::{Canister, Runtime};

/// Installs `wat` (a canister-like module: `canister_init` replies nothing) on `runtime` and
/// runs its update `go`; returns the update's instruction count.
fn run(runtime: &Runtime, wat: &str) -> u64 {
    let wasm = wat::parse_str(wat).expect("wat");
    let (mut canister, _) =
        Canister::install_on(runtime, &wasm, &[], b"controller").expect("install");
    canister
        .update("go", &[], b"caller")
        .expect("update")
        .instructions
}

/// Costs by hand (a call is `call` 5 plus the callee's entry charge 1, charged to the caller):
/// `$leaf` runs 3 instructions per call; `$mid` calls it twice (`i32.const` + call: 7 each) and
/// adds (1): 15, its `return` (1) running after its exit probe, in `go`; `$count` recurses three
/// deep (2, 1, 0) and leaves through a branch to its own label: 5 per activation for the test
/// and `br_if`, 10 more for each of the two that recurse: 35; `go` calls `$mid` (6) and
/// `$count` (7), takes `$mid`'s `return` (1), drops twice (2) and replies (`call` 5 +
/// `ic0.msg_reply` 500): 521; its own entry charge is outside any function.
const MODULE: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (func $leaf (param i32) (result i32)
    (i32.add (local.get 0) (i32.const 1)))
  (func $mid (result i32)
    (i32.add (call $leaf (i32.const 5)) (call $leaf (i32.const 2)))
    return)
  (func $count (param i32) (result i32)
    (local.get 0)
    (br_if 0 (i32.eqz (local.get 0)))
    (drop)
    (call $count (i32.sub (local.get 0) (i32.const 1))))
  (func (export "canister_update go")
    (drop (call $mid))
    (drop (call $count (i32.const 2)))
    (call $reply)))"#;

fn by_name<'a>(profile: &'a Profile, name: &str) -> &'a FunctionCost {
    profile
        .functions
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is not in {profile:#?}"))
}

#[test]
fn counts_each_function_exactly_and_adds_up_to_the_unprofiled_count() {
    let plain = run(&Runtime::new().expect("runtime"), MODULE);
    let runtime = Runtime::profiling().expect("runtime");
    let profiled = run(&runtime, MODULE);
    let profile = runtime.take_profile().expect("a profile");
    assert_eq!(profiled - plain, 14 * PROBE, "7 calls, 2 probes each");
    assert_eq!(
        profile.total, plain,
        "the profile's total is the unprofiled count"
    );
    let selves: u64 = profile.functions.iter().map(|f| f.self_instructions).sum();
    assert_eq!(
        selves + profile.outside,
        plain,
        "self counts add up to the total"
    );
    let counts = |name| {
        let f = by_name(&profile, name);
        (f.self_instructions, f.inclusive, f.calls)
    };
    assert_eq!(counts("leaf"), (6, 6, 2));
    assert_eq!(counts("mid"), (15, 21, 1));
    assert_eq!(
        counts("count"),
        (35, 35, 3),
        "recursion counted once in inclusive"
    );
    assert_eq!(
        counts("canister_update go"),
        (521, 577, 1),
        "named by its export"
    );
    assert_eq!(profile.outside, 1);
}

#[test]
fn a_trap_closes_the_open_frames() {
    let wat = r#"(module
      (import "ic0" "msg_reply" (func $reply))
      (func $boom (unreachable))
      (func (export "canister_update go") (call $boom)))"#;
    let runtime = Runtime::profiling().expect("runtime");
    let wasm = wat::parse_str(wat).expect("wat");
    let (mut canister, _) =
        Canister::install_on(&runtime, &wasm, &[], b"controller").expect("install");
    let err = canister.update("go", &[], b"caller").expect_err("traps");
    let profile = runtime.take_profile().expect("a profile");
    assert!(
        matches!(err, crate::RuntimeError::Trap { instructions, .. }
        if instructions == profile.total + 2 * PROBE),
        "two entry probes: {err:?} {profile:?}"
    );
    // `unreachable` 1 in `$boom`; `call` 5 + entry 1 in `go`.
    assert_eq!(by_name(&profile, "boom").inclusive, 1);
    assert_eq!(by_name(&profile, "canister_update go").inclusive, 7);
}

#[test]
fn normal_runtimes_do_not_profile() {
    let runtime = Runtime::new().expect("runtime");
    run(&runtime, MODULE);
    assert_eq!(runtime.take_profile(), None);
}
