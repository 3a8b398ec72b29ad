//! Canister semantics over inline-WAT canisters, all through [`install`] and the assertion helpers.

use ic_local_runtime::cost::{INSTALL_LIMIT, UPDATE_LIMIT};
use ic_local_runtime::{
    CANISTER_ID, CANISTER_REJECT, CYCLE_BALANCE, Canister, Execution, GENESIS_TIME, Outcome,
    Runtime, RuntimeError, TIME_STEP, cycles, unsupported_imports,
};

const CONTROLLER: &[u8] = &[0xaa, 0xbb];
const ALICE: &[u8] = &[1, 2, 3];

/// The imports every test canister shares.
const IMPORTS: &str = r#"
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reject" (func $reject (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_caller_size" (func $caller_size (result i32)))
  (import "ic0" "msg_caller_copy" (func $caller_copy (param i32 i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "time" (func $time (result i64)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "debug_print" (func $print (param i32 i32)))
  (import "ic0" "performance_counter" (func $perf (param i32) (result i64)))
"#;

/// Memory, data and helper functions every test canister shares (after any extra imports).
const PRELUDE: &str = r#"
  (memory (export "memory") 1)
  (data (i32.const 100) "boom")
  (data (i32.const 110) "nope")
  (data (i32.const 120) "hello")
  (func $reply_i32 (param $v i32)
    (i32.store (i32.const 0) (local.get $v))
    (call $append (i32.const 0) (i32.const 4))
    (call $reply))
  (func $reply_i64 (param $v i64)
    (i64.store (i32.const 0) (local.get $v))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply))
"#;

/// A counter kept three times: a mutable global, heap memory at 16, stable memory at 0.
const COUNTER: &str = r#"
  (global $counter (mut i32) (i32.const 0))
  (func (export "canister_init")
    (drop (call $sgrow (i64.const 1))))
  (func $inc
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (call $sread (i64.const 32) (i64.const 0) (i64.const 4))
    (i32.store (i32.const 32) (i32.add (i32.load (i32.const 32)) (i32.const 1)))
    (call $swrite (i64.const 0) (i64.const 32) (i64.const 4)))
  (func (export "canister_update inc") (call $inc) (call $reply_i32 (global.get $counter)))
  (func (export "canister_query inc_query") (call $inc) (call $reply_i32 (global.get $counter)))
  (func (export "canister_update inc_then_trap") (call $inc) (call $trap (i32.const 100) (i32.const 4)))
  (func (export "canister_update inc_then_unreachable") (call $inc) unreachable)
  (func (export "canister_update double_reply") (call $inc) (call $reply) (call $reply))
  (func (export "canister_update no_reply") (call $inc))
  (func (export "canister_update reject") (call $reject (i32.const 110) (i32.const 4)))
  (func (export "canister_query get") (call $reply_i32 (global.get $counter)))
  (func (export "canister_query get_mem") (call $reply_i32 (i32.load (i32.const 16))))
  (func (export "canister_query get_stable")
    (call $sread (i64.const 32) (i64.const 0) (i64.const 4))
    (call $reply_i32 (i32.load (i32.const 32))))
  (func (export "canister_query caller")
    (call $caller_copy (i32.const 200) (i32.const 0) (call $caller_size))
    (call $append (i32.const 200) (call $caller_size))
    (call $reply))
  (func (export "canister_query time") (call $reply_i64 (call $time)))
  (func (export "canister_update print")
    (call $print (i32.const 120) (i32.const 5))
    (call $reply))
  ;; Echoes its argument (growing the heap to fit it) at address 65536.
  (func (export "canister_update echo")
    (drop (memory.grow (i32.add (i32.div_u (call $arg_size) (i32.const 65536)) (i32.const 1))))
    (call $arg_copy (i32.const 65536) (i32.const 0) (call $arg_size))
    (call $append (i32.const 65536) (call $arg_size))
    (call $reply))
  ;; Replies with `size` zero bytes, `size` the 4-byte argument.
  (func (export "canister_query zeros") (local $n i32)
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $n (i32.load (i32.const 0)))
    (drop (memory.grow (i32.add (i32.div_u (local.get $n) (i32.const 65536)) (i32.const 1))))
    (call $append (i32.const 65536) (local.get $n))
    (call $reply))
  ;; Counts to the 4-byte argument, then replies with performance_counter(0).
  (func (export "canister_update loop") (export "canister_query loop_query") (local $n i32) (local $i i32)
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $n (i32.load (i32.const 0)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $reply_i64 (call $perf (i32.const 0))))
  ;; Increments, then counts like `loop` (to show that running out of instructions rolls back).
  (func (export "canister_update inc_then_loop") (local $n i32) (local $i i32)
    (call $inc)
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $n (i32.load (i32.const 0)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $reply))
  (func (export "canister_pre_upgrade")
    (i32.store (i32.const 32) (i32.const 0xab))
    (call $swrite (i64.const 8) (i64.const 32) (i64.const 4)))
"#;

/// What a counter canister is upgraded to: reads the marker pre_upgrade left into a global.
const COUNTER_V2: &str = r#"
  (global $marker (mut i32) (i32.const 0))
  (global $counter (mut i32) (i32.const 0))
  (func (export "canister_post_upgrade")
    (call $sread (i64.const 32) (i64.const 8) (i64.const 4))
    (global.set $marker (i32.load (i32.const 32))))
  (func (export "canister_query marker") (call $reply_i32 (global.get $marker)))
  (func (export "canister_query get") (call $reply_i32 (global.get $counter)))
  (func (export "canister_query get_mem") (call $reply_i32 (i32.load (i32.const 16))))
  (func (export "canister_query get_stable")
    (call $sread (i64.const 32) (i64.const 0) (i64.const 4))
    (call $reply_i32 (i32.load (i32.const 32))))
"#;

/// An upgrade whose post_upgrade writes stable memory, then traps.
const TRAPPING_POST_UPGRADE: &str = r#"
  (func (export "canister_post_upgrade")
    (call $swrite (i64.const 0) (i64.const 100) (i64.const 4))
    unreachable)
"#;

fn wasm(body: &str) -> Vec<u8> {
    wasm_importing("", body)
}

fn wasm_importing(imports: &str, body: &str) -> Vec<u8> {
    wat::parse_str(format!("(module {IMPORTS} {imports} {PRELUDE} {body})"))
        .expect("test WAT parses")
}

/// Installs a test canister (shared imports + `body`) with [`CONTROLLER`] as controller.
#[track_caller]
fn install(body: &str) -> Canister {
    let (canister, execution) =
        Canister::install(&wasm(body), &[], CONTROLLER).expect("install succeeds");
    assert_eq!(execution.outcome, Outcome::Done);
    canister
}

#[track_caller]
fn reply(result: Result<Execution, RuntimeError>) -> Vec<u8> {
    match result {
        Ok(Execution {
            outcome: Outcome::Reply(bytes),
            ..
        }) => bytes,
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[track_caller]
fn reply_u32(result: Result<Execution, RuntimeError>) -> u32 {
    let bytes = reply(result);
    u32::from_le_bytes(bytes.try_into().expect("a 4-byte reply"))
}

#[track_caller]
fn reply_u64(result: Result<Execution, RuntimeError>) -> u64 {
    let bytes = reply(result);
    u64::from_le_bytes(bytes.try_into().expect("an 8-byte reply"))
}

#[track_caller]
fn trap_message(result: Result<Execution, RuntimeError>) -> String {
    match result {
        Err(RuntimeError::Trap { message, .. }) => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// The counter as the global, the heap and stable memory hold it.
#[track_caller]
fn counters(c: &mut Canister) -> [u32; 3] {
    [
        reply_u32(c.query("get", &[], ALICE)),
        reply_u32(c.query("get_mem", &[], ALICE)),
        reply_u32(c.query("get_stable", &[], ALICE)),
    ]
}

#[test]
fn update_replies_and_commits() {
    let mut c = install(COUNTER);
    assert_eq!(reply_u32(c.update("inc", &[], ALICE)), 1);
    assert_eq!(reply_u32(c.update("inc", &[], ALICE)), 2);
    assert_eq!(counters(&mut c), [2, 2, 2]);
}

#[test]
fn reject_is_an_outcome_with_the_canister_code() {
    let mut c = install(COUNTER);
    let execution = c.update("reject", &[], ALICE).expect("completes");
    assert_eq!(
        execution.outcome,
        Outcome::Reject {
            code: CANISTER_REJECT,
            message: "nope".into()
        }
    );
}

#[test]
fn trap_rolls_back_heap_globals_and_stable_memory() {
    let mut c = install(COUNTER);
    reply(c.update("inc", &[], ALICE));
    let message = trap_message(c.update("inc_then_trap", &[], ALICE));
    assert_eq!(message, "Canister called `ic0.trap` with message: 'boom'");
    let message = trap_message(c.update("inc_then_unreachable", &[], ALICE));
    assert_eq!(message, "Canister trapped: unreachable");
    assert_eq!(counters(&mut c), [1, 1, 1]);
}

#[test]
fn query_never_commits() {
    let mut c = install(COUNTER);
    assert_eq!(reply_u32(c.query("inc_query", &[], ALICE)), 1);
    assert_eq!(reply_u32(c.query("inc_query", &[], ALICE)), 1);
    assert_eq!(counters(&mut c), [0, 0, 0]);
}

#[test]
fn second_reply_traps_and_rolls_back() {
    let mut c = install(COUNTER);
    let message = trap_message(c.update("double_reply", &[], ALICE));
    assert!(message.contains("already replied"), "{message}");
    assert_eq!(counters(&mut c), [0, 0, 0]);
}

#[test]
fn no_reply_is_an_error_but_commits_like_the_replica() {
    let mut c = install(COUNTER);
    assert!(matches!(
        c.update("no_reply", &[], ALICE),
        Err(RuntimeError::NoReply { .. })
    ));
    assert_eq!(counters(&mut c), [1, 1, 1]);
}

#[test]
fn missing_method() {
    let mut c = install(COUNTER);
    let balance = c.cycle_balance();
    // Neither `canister_update nope` nor `canister_query nope`, whichever way it is called.
    for result in [
        c.update("nope", &[], ALICE),
        c.update_from_canister("nope", &[], &CANISTER_ID),
    ] {
        assert_eq!(
            result,
            Err(RuntimeError::MissingMethod {
                kind: "update",
                method: "nope".into()
            })
        );
    }
    // An update method is no query.
    assert_eq!(
        c.query("inc", &[], ALICE),
        Err(RuntimeError::MissingMethod {
            kind: "query",
            method: "inc".into()
        })
    );
    assert_eq!(c.cycle_balance(), balance, "nothing ran, nothing was paid");
}

#[test]
fn upgrade_keeps_stable_memory_and_wipes_the_heap() {
    let mut c = install(COUNTER);
    reply(c.update("inc", &[], ALICE));
    reply(c.update("inc", &[], ALICE));
    let version = c.canister_version();
    let balance = c.cycle_balance();
    let e = c
        .upgrade(&wasm(COUNTER_V2), &[], CONTROLLER)
        .expect("upgrade succeeds");
    // Both hooks share one execution fee: 5 M plus one cycle per instruction.
    assert_eq!(e.cycles, 5_000_000 + u128::from(e.instructions));
    assert_eq!(c.cycle_balance(), balance - e.cycles);
    assert_eq!(counters(&mut c), [0, 0, 2]);
    assert_eq!(reply_u32(c.query("marker", &[], ALICE)), 0xab);
    assert_eq!(c.canister_version(), version + 1);
}

#[test]
fn failed_upgrade_changes_nothing() {
    let mut c = install(COUNTER);
    reply(c.update("inc", &[], ALICE));
    let balance = c.cycle_balance();
    let RuntimeError::Trap {
        message,
        instructions,
        ..
    } = c
        .upgrade(&wasm(TRAPPING_POST_UPGRADE), &[], CONTROLLER)
        .expect_err("traps")
    else {
        panic!("expected a trap")
    };
    assert_eq!(message, "Canister trapped: unreachable");
    // Nothing is kept but the cost of the instructions both hooks ran.
    assert_eq!(
        c.cycle_balance(),
        balance - 5_000_000 - u128::from(instructions)
    );
    // The old module runs, with its heap and without pre_upgrade's stable write.
    assert_eq!(counters(&mut c), [1, 1, 1]);
    assert_eq!(
        c.upgrade(&wasm(COUNTER_V2), &[], ALICE),
        Err(RuntimeError::NotController)
    );
    assert_eq!(reply_u32(c.update("inc", &[], ALICE)), 2);
}

#[test]
fn save_and_load_keep_the_whole_heap() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("save_and_load");
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = install(COUNTER);
    for _ in 0..3 {
        reply(c.update("inc", &[], ALICE));
    }
    c.save(&dir).expect("save");
    let mut loaded = Canister::load(&dir).expect("load");
    assert_eq!(counters(&mut loaded), [3, 3, 3]);
    assert_eq!(reply_u32(loaded.update("inc", &[], ALICE)), 4);
    assert_eq!(counters(&mut loaded), [4, 4, 4]);
    assert_eq!(loaded.time(), c.time() + TIME_STEP);
    assert_eq!(loaded.controllers(), c.controllers());
    assert_eq!(loaded.module(), c.module());
    // Saving over an existing state replaces it.
    loaded.save(&dir).expect("save again");
    let mut again = Canister::load(&dir).expect("load again");
    assert_eq!(counters(&mut again), [4, 4, 4]);
}

#[test]
fn a_save_rewrites_only_the_files_that_changed() {
    use std::os::unix::fs::MetadataExt;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("save_what_changed");
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = install(COUNTER);
    c.save(&dir).expect("save");
    // A file rewritten is a new file renamed into place: a new inode.
    let inode = |name: &str| std::fs::metadata(dir.join(name)).expect("saved").ino();
    let files = ["module.wasm", "heap.bin", "stable.bin", "canister.txt"];
    let before: Vec<u64> = files.iter().map(|f| inode(f)).collect();
    reply(c.query("get", &[], ALICE));
    c.save(&dir).expect("save after a query");
    let after_query: Vec<u64> = files.iter().map(|f| inode(f)).collect();
    assert_eq!(after_query[..3], before[..3], "a query changes no memory");
    reply(c.update("inc", &[], ALICE));
    c.save(&dir).expect("save after an update");
    assert_eq!(inode("module.wasm"), before[0]);
    assert_ne!(inode("heap.bin"), before[1]);
    let mut loaded = Canister::load(&dir).expect("load");
    assert_eq!(counters(&mut loaded), [1, 1, 1]);
}

#[test]
fn load_rejects_a_torn_state() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("torn_state");
    let _ = std::fs::remove_dir_all(&dir);
    let c = install(COUNTER);
    c.save(&dir).expect("save");
    std::fs::write(dir.join("heap.bin"), [0u8; 10]).expect("write");
    assert!(matches!(
        Canister::load(&dir),
        Err(ic_local_runtime::LoadError::Format {
            file: "heap.bin",
            ..
        })
    ));
}

#[test]
fn instruction_counts_are_deterministic_and_grow_with_work() {
    let run = |n: u32| {
        let mut c = install(COUNTER);
        let e = c.update("loop", &n.to_le_bytes(), ALICE).expect("runs");
        let counter = match &e.outcome {
            Outcome::Reply(b) => u64::from_le_bytes(b.clone().try_into().expect("8 bytes")),
            other => panic!("{other:?}"),
        };
        (e.instructions, counter)
    };
    let (small, counter) = run(1_000);
    assert_eq!(run(1_000), (small, counter));
    let (big, _) = run(2_000);
    assert!(big > small, "{big} > {small}");
    // About 11 instructions per iteration with the replica's costs (branches 2).
    let per_iteration = (big - small) / 1_000;
    assert!((9..=14).contains(&per_iteration), "{per_iteration}");
    // performance_counter sees the work done so far, the total includes the reply.
    assert!(counter < small && counter > 11_000, "{counter} < {small}");
}

#[test]
fn instruction_limit_rolls_back() {
    let mut c = install(COUNTER);
    let balance = c.cycle_balance();
    // 5 B for a query: ~11 per iteration, so 2^31 iterations are far too many.
    assert!(matches!(
        c.query("loop_query", &(1u32 << 31).to_le_bytes(), ALICE),
        Err(RuntimeError::InstructionLimit {
            limit: 5_000_000_000,
            ..
        })
    ));
    assert_eq!(counters(&mut c), [0, 0, 0]);
    assert_eq!(c.cycle_balance(), balance, "queries are free");
    // 40 B for an update: u32::MAX iterations are too many; the increment before is undone.
    assert!(matches!(
        c.update("inc_then_loop", &u32::MAX.to_le_bytes(), ALICE),
        Err(RuntimeError::InstructionLimit {
            limit: 40_000_000_000,
            ..
        })
    ));
    assert_eq!(counters(&mut c), [0, 0, 0]);
    // ... but its instructions are paid: all 40 B of them, nothing refunded.
    let induction = 1_200_000 + 2_000 * ("inc_then_loop".len() as u128 + 4);
    assert_eq!(
        c.cycle_balance(),
        balance - induction - 5_000_000 - 40_000_000_000
    );
}

#[test]
fn a_method_exported_as_update_and_query_is_refused() {
    let body = r#"(func (export "canister_update m") (export "canister_query m"))"#;
    assert!(matches!(
        Canister::install(&wasm(body), &[], CONTROLLER),
        Err(RuntimeError::InvalidModule(message)) if message.contains("`m`")
    ));
}

#[test]
fn unsupported_import_is_reported_and_refused() {
    let module = wasm_importing(
        r#"(import "ic0" "call_new" (func (param i32 i32 i32 i32 i32 i32 i32 i32)))
           (import "ic0" "time" (func $bad_time (param i32) (result i64)))
           (import "env" "f" (func))"#,
        "",
    );
    // `time` is imported twice; the second import has the wrong type.
    let expected = vec![
        "ic0.call_new".to_string(),
        "ic0.time".to_string(),
        "env.f".to_string(),
    ];
    assert_eq!(unsupported_imports(&module), Ok(expected));
    assert_eq!(
        Canister::install(&module, &[], CONTROLLER).map(|_| ()),
        Err(RuntimeError::UnsupportedImport(
            "ic0.call_new, ic0.time, env.f".into()
        ))
    );
    assert_eq!(unsupported_imports(&wasm(COUNTER)), Ok(vec![]));
}

#[test]
fn caller_and_time_are_visible() {
    let mut c = install(COUNTER);
    assert_eq!(reply(c.query("caller", &[], ALICE)), ALICE);
    assert_eq!(reply(c.query("caller", &[], &[9; 29])), vec![9; 29]);
    let t0 = reply_u64(c.query("time", &[], ALICE));
    assert_eq!(t0, GENESIS_TIME + TIME_STEP);
    reply(c.update("inc", &[], ALICE));
    assert_eq!(reply_u64(c.query("time", &[], ALICE)), t0 + TIME_STEP);
    c.advance_time(5);
    assert_eq!(reply_u64(c.query("time", &[], ALICE)), t0 + TIME_STEP + 5);
}

#[test]
fn payload_and_reply_limits() {
    let mut c = install(COUNTER);
    let max = vec![7u8; 2 * 1024 * 1024];
    assert_eq!(reply(c.update("echo", &max, ALICE)), max);
    let over = vec![7u8; 2 * 1024 * 1024 + 1];
    assert_eq!(
        c.update("echo", &over, ALICE),
        Err(RuntimeError::PayloadTooLarge {
            size: over.len(),
            limit: 2 * 1024 * 1024
        })
    );
    // Queries may reply with up to 3 MiB.
    let three = 3u32 * 1024 * 1024;
    assert_eq!(
        reply(c.query("zeros", &three.to_le_bytes(), ALICE)).len(),
        three as usize
    );
    assert_eq!(
        c.query("zeros", &(three + 1).to_le_bytes(), ALICE),
        Err(RuntimeError::ReplyTooLarge {
            size: three as usize + 1,
            limit: three as usize
        })
    );
}

#[test]
fn debug_prints_are_collected() {
    let mut c = install(COUNTER);
    let e = c.update("print", &[], ALICE).expect("runs");
    assert_eq!(e.debug_prints, vec!["hello".to_string()]);
}

#[test]
fn install_trap_creates_nothing() {
    let body = r#"(func (export "canister_init") (call $trap (i32.const 100) (i32.const 4)))"#;
    let message = trap_message(Canister::install(&wasm(body), &[], CONTROLLER).map(|(_, e)| e));
    assert_eq!(message, "Canister called `ic0.trap` with message: 'boom'");
}

/// Timer, certified data and controller checks.
const SYSTEM_IMPORTS: &str = r#"
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
  (import "ic0" "certified_data_set" (func $certify (param i32 i32)))
  (import "ic0" "is_controller" (func $is_controller (param i32 i32) (result i32)))
"#;

const SYSTEM: &str = r#"
  (global $fired (mut i32) (i32.const 0))
  (func (export "canister_update set_timer")
    (drop (call $timer_set (i64.add (call $time) (i64.const 5000000000))))
    (call $reply))
  (func (export "canister_global_timer") (global.set $fired (i32.add (global.get $fired) (i32.const 1))))
  (func (export "canister_query fired") (call $reply_i32 (global.get $fired)))
  (func (export "canister_update certify") (export "canister_query certify_in_query")
    (call $certify (i32.const 100) (i32.const 4))
    (call $reply))
  (func (export "canister_query is_controller")
    (call $caller_copy (i32.const 200) (i32.const 0) (call $caller_size))
    (call $reply_i32 (call $is_controller (i32.const 200) (call $caller_size))))
"#;

fn install_system() -> Canister {
    let module = wasm_importing(SYSTEM_IMPORTS, SYSTEM);
    Canister::install(&module, &[], CONTROLLER)
        .expect("install succeeds")
        .0
}

#[test]
fn timer_runs_when_due_and_once() {
    let mut c = install_system();
    reply(c.update("set_timer", &[], ALICE));
    assert!(c.global_timer() > c.time());
    assert_eq!(c.run_timer(), Ok(None));
    c.advance_time(5_000_000_000);
    let e = c.run_timer().expect("runs").expect("was due");
    assert_eq!(e.outcome, Outcome::Done);
    assert_eq!(c.global_timer(), 0);
    assert_eq!(c.run_timer(), Ok(None));
    assert_eq!(reply_u32(c.query("fired", &[], ALICE)), 1);
}

#[test]
fn certified_data_is_kept_and_refused_in_queries() {
    let mut c = install_system();
    let message = trap_message(c.query("certify_in_query", &[], ALICE));
    assert!(
        message.contains("cannot be executed in query mode"),
        "{message}"
    );
    reply(c.update("certify", &[], ALICE));
    assert_eq!(c.certified_data(), b"boom");
}

#[test]
fn is_controller_knows_the_installer() {
    let mut c = install_system();
    assert_eq!(reply_u32(c.query("is_controller", &[], CONTROLLER)), 1);
    assert_eq!(reply_u32(c.query("is_controller", &[], ALICE)), 0);
}

#[test]
fn gzip_compressed_module_installs() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&wasm(COUNTER)).expect("compress");
    let compressed = gz.finish().expect("compress");
    let (mut c, _) = Canister::install(&compressed, &[], CONTROLLER).expect("installs");
    assert_eq!(reply_u32(c.update("inc", &[], ALICE)), 1);
    assert_eq!(c.module(), wasm(COUNTER));
    assert!(matches!(
        Canister::install(&compressed[..20], &[], CONTROLLER),
        Err(RuntimeError::InvalidModule(_))
    ));
}

/// What `ops` cost when `canister_update probe` runs them 100 times, per time: the difference to
/// an empty probe over 100. `imports` and `items` are added to the module.
fn cost_of_in(imports: &str, items: &str, ops: &str) -> u64 {
    let probe = |ops: &str| {
        let body = format!(
            r#"(global $g (mut i32) (i32.const 0))
               (table $t 1 funcref)
               (elem $e func $nop)
               (elem (table $t) (i32.const 0) func $nop)
               (data $d "x")
               (type $v (func))
               (func $nop)
               {items}
               (func (export "canister_update probe") {ops} (call $reply))"#
        );
        let (mut c, _) = Canister::install(&wasm_importing(imports, &body), &[], CONTROLLER)
            .expect("install succeeds");
        c.update("probe", &[], ALICE).expect("runs").instructions
    };
    (probe(&ops.repeat(100)) - probe("")) / 100
}

fn cost_of(ops: &str) -> u64 {
    cost_of_in("", "", ops)
}

/// Pins the per-operator costs end to end, with the replica's numbers (`cost.rs` pins the whole
/// table): each probe's operands (`i32.const` 1) and `drop` (1) included.
#[test]
fn operator_costs_follow_the_replica_table() {
    assert_eq!(cost_of("(drop (i32.add (i32.const 1) (i32.const 2)))"), 4);
    assert_eq!(cost_of("(drop (global.get $g))"), 3);
    assert_eq!(
        cost_of("(drop (i32.div_u (i32.const 7) (i32.const 3)))"),
        13
    );
    assert_eq!(cost_of("(drop (f64.div (f64.const 7) (f64.const 3)))"), 8);
    assert_eq!(cost_of("(drop (f32.min (f32.const 7) (f32.const 3)))"), 21);
    assert_eq!(cost_of("(drop (i32.trunc_f64_s (f64.const 7)))"), 22);
    assert_eq!(cost_of("(drop (f64.convert_i64_u (i64.const 7)))"), 18);
    assert_eq!(cost_of("(nop)"), 1);
    // `call` 5, plus the 1 of entering any function (the replica's too).
    assert_eq!(cost_of("(call $nop)"), 6);
    assert_eq!(cost_of("(call_indirect (type $v) (i32.const 0))"), 12);
    assert_eq!(cost_of("(drop (memory.size))"), 21);
    assert_eq!(cost_of("(drop (table.size $t))"), 101);
    assert_eq!(cost_of("(drop (table.get $t (i32.const 0)))"), 7);
    assert_eq!(cost_of("(drop (ref.func $nop))"), 131);
    // memory.fill: 100 + 1 per byte, plus its three operands.
    assert_eq!(
        cost_of("(memory.fill (i32.const 0) (i32.const 0) (i32.const 50))"),
        153
    );
}

/// The operators the replica charges more than a wasmtime cost table holds cost exactly 300
/// however they run: growing by 0 pages or past the maximum (which wasmtime's resource limiter
/// does not see), and the segment drops (which it has no hook for).
#[test]
fn grow_and_drop_cost_300_every_time() {
    assert_eq!(cost_of("(drop (memory.grow (i32.const 1)))"), 302);
    assert_eq!(cost_of("(drop (memory.grow (i32.const 0)))"), 302);
    assert_eq!(cost_of("(drop (memory.grow (i32.const 100000)))"), 302);
    assert_eq!(
        cost_of("(drop (table.grow $t (ref.null func) (i32.const 1)))"),
        303
    );
    assert_eq!(cost_of("(data.drop $d)"), 300);
    assert_eq!(cost_of("(elem.drop $e)"), 300);
}

/// `return_call_indirect` costs 60, `return_call` 3: a tail-call threaded interpreter pays
/// 60 per dispatch on the IC, a `br_table` loop 2.
#[test]
fn tail_calls_cost_what_the_replica_charges() {
    let items = r#"(func $tail (param $n i32)
                     (if (local.get $n)
                       (then (return_call $tail (i32.sub (local.get $n) (i32.const 1))))))
                   (func $tail_indirect (param $n i32)
                     (if (local.get $n)
                       (then (return_call_indirect $tails (type $n)
                         (i32.sub (local.get $n) (i32.const 1)) (i32.const 1)))))
                   (type $n (func (param i32)))
                   (table $tails 2 funcref)
                   (elem (table $tails) (i32.const 1) func $tail_indirect)"#;
    // The first call: `i32.const` 1, `call` 5, entering 1. Then ten steps of `local.get` 1
    // (twice), `if` 2, `i32.const` 1, `i32.sub` 1, the tail call (`return_call_indirect` with
    // its table index, `i32.const` 1) and entering the callee 1; the last `local.get` and `if`.
    let steps = |op: &str| cost_of_in("", items, &format!("(call {op} (i32.const 10))"));
    assert_eq!(steps("$tail"), 7 + 10 * (2 + 2 + 1 + 1 + 3 + 1) + 3);
    assert_eq!(
        steps("$tail_indirect"),
        7 + 10 * (2 + 2 + 1 + 1 + 1 + 60 + 1) + 3
    );
}

/// Pins the System API charges to the replica's (`linker.rs`, `system_api_complexity.rs`,
/// wasm-native stable memory), each with the call's operands and `call` (5).
#[test]
fn system_api_calls_cost_what_the_replica_charges() {
    let imports = r#"(import "ic0" "is_controller" (func $is_controller (param i32 i32) (result i32)))
                     (import "ic0" "stable64_size" (func $ssize (result i64)))
                     (import "ic0" "canister_cycle_balance128" (func $balance (param i32)))"#;
    let cost = |ops: &str| cost_of_in(imports, "", ops);
    assert_eq!(cost("(drop (call $arg_size))"), 5 + 500 + 1);
    assert_eq!(cost("(drop (call $time))"), 5 + 500 + 1);
    assert_eq!(cost("(drop (call $perf (i32.const 0)))"), 1 + 5 + 200 + 1);
    assert_eq!(
        cost("(drop (call $is_controller (i32.const 100) (i32.const 4)))"),
        2 + 5 + 1_000 + 4 + 1
    );
    assert_eq!(cost("(call $balance (i32.const 200))"), 1 + 5 + 500);
    assert_eq!(
        cost("(call $print (i32.const 100) (i32.const 4))"),
        2 + 5 + 100 + (2 + 50) * 4
    );
    assert_eq!(cost("(drop (call $ssize))"), 5 + 1);
    assert_eq!(cost("(drop (call $sgrow (i64.const 0)))"), 1 + 5 + 100 + 1);
    assert_eq!(
        cost("(call $sread (i64.const 0) (i64.const 0) (i64.const 0))"),
        3 + 5 + 20
    );
    // 8 bytes of reply, each 50.
    let reply = cost_of_in(imports, "", "(call $append (i32.const 0) (i32.const 8))");
    assert_eq!(reply, 2 + 5 + 500 + 50 * 8);
}

#[test]
fn canisters_sharing_a_runtime_are_isolated() {
    let runtime = Runtime::new().expect("runtime");
    let module = wasm(COUNTER);
    let (mut a, _) = Canister::install_on(&runtime, &module, &[], CONTROLLER).expect("installs");
    let (mut b, _) = Canister::install_on(&runtime, &module, &[], ALICE).expect("installs");
    reply(a.update("inc", &[], ALICE));
    reply(a.update("inc", &[], ALICE));
    assert_eq!(counters(&mut a), [2, 2, 2]);
    assert_eq!(counters(&mut b), [0, 0, 0]);
    assert_eq!(b.controllers(), [ALICE.to_vec()]);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared_runtime");
    let _ = std::fs::remove_dir_all(&dir);
    a.save(&dir).expect("save");
    let mut loaded = Canister::load_on(&runtime, &dir).expect("load");
    assert_eq!(counters(&mut loaded), [2, 2, 2]);
}

/// Pins the state directory format (see the `persist` module docs).
#[test]
fn saved_state_format_is_stable() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden_state");
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = install(COUNTER);
    reply(c.update("inc", &[], ALICE));
    c.save(&dir).expect("save");
    let text = std::fs::read_to_string(dir.join("canister.txt")).expect("canister.txt");
    assert_eq!(
        text,
        format!(
            "ic-local-runtime-state 1\n\
             time 1767225602000000000\n\
             global_timer 0\n\
             canister_version 2\n\
             cycles {}\n\
             certified_data -\n\
             controller aabb\n\
             heap_bytes 65536\n\
             stable_pages 1\n\
             global 5f5f6578706f72745f676c6f62616c5f30 i32 1\n",
            c.cycle_balance()
        )
    );
    let stable = std::fs::read(dir.join("stable.bin")).expect("stable.bin");
    let mut expected = b"ICLRSTB1".to_vec();
    expected.extend_from_slice(&1u64.to_le_bytes()); // size: 1 wasm page
    expected.extend_from_slice(&1u64.to_le_bytes()); // one 4 KiB page stored
    expected.extend_from_slice(&0u64.to_le_bytes()); // page 0
    let mut page = vec![0u8; 4096];
    page[0] = 1;
    expected.extend_from_slice(&page);
    assert_eq!(stable, expected);
    let heap = std::fs::read(dir.join("heap.bin")).expect("heap.bin");
    assert_eq!(heap.len(), 65536);
    assert_eq!(heap[16], 1);
    assert_eq!(
        std::fs::read(dir.join("module.wasm")).expect("module"),
        wasm(COUNTER)
    );
}

#[test]
fn canisters_and_runtimes_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Canister>();
    send_sync::<Runtime>();
    send_sync::<RuntimeError>();
}

// ---- Cycles ----

/// Cycle balances, as the canister sees them.
const CYCLES_IMPORTS: &str = r#"
  (import "ic0" "canister_cycle_balance128" (func $balance (param i32)))
  (import "ic0" "canister_liquid_cycle_balance128" (func $liquid (param i32)))
"#;

/// The counter, the balances as replies (16 bytes, little-endian), and stable memory to grow.
const CYCLES: &str = r#"
  (func $reply_16 (call $append (i32.const 0) (i32.const 16)) (call $reply))
  (func (export "canister_update balance") (export "canister_query balance_query")
    (call $balance (i32.const 0)) (call $reply_16))
  (func (export "canister_update liquid") (call $liquid (i32.const 0)) (call $reply_16))
  ;; Grows stable memory by the 8-byte argument, in 64 KiB pages (a bigger freezing threshold).
  (func (export "canister_update grow")
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 8))
    (drop (call $sgrow (i64.load (i32.const 0))))
    (call $reply))
"#;

fn cycles_module() -> Vec<u8> {
    wasm_importing(CYCLES_IMPORTS, &format!("{COUNTER}{CYCLES}"))
}

#[track_caller]
fn reply_u128(result: Result<Execution, RuntimeError>) -> u128 {
    let bytes = reply(result);
    u128::from_le_bytes(bytes.try_into().expect("a 16-byte reply"))
}

/// The replica's fee for inducting an ingress message (method name and argument bytes).
fn induction(method: &str, arg: &[u8]) -> u128 {
    1_200_000 + 2_000 * (method.len() + arg.len()) as u128
}

/// The replica's net execution fee: 5 M per message plus one cycle per instruction.
fn execution(instructions: u64) -> u128 {
    5_000_000 + u128::from(instructions)
}

#[test]
fn each_update_pays_induction_and_the_instructions_it_used() {
    let (mut c, installed) =
        Canister::install(&cycles_module(), &[], CONTROLLER).expect("install succeeds");
    // The install paid its execution (prepaid for 300 B instructions, the rest refunded).
    assert_eq!(installed.cycles, execution(installed.instructions));
    assert_eq!(
        c.cycle_balance(),
        CYCLE_BALANCE - execution(installed.instructions)
    );
    let mut balance = c.cycle_balance();
    for (method, arg) in [("inc", vec![]), ("echo", vec![7u8; 1000]), ("inc", vec![])] {
        let e = c.update(method, &arg, ALICE).expect("runs");
        let fee = induction(method, &arg) + execution(e.instructions);
        assert_eq!(e.cycles, fee, "{method}");
        assert_eq!(c.cycle_balance(), balance - fee, "{method}");
        balance = c.cycle_balance();
    }
    // A trap rolls the state back but not the cycles its instructions cost.
    let RuntimeError::Trap { instructions, .. } =
        c.update("inc_then_trap", &[], ALICE).expect_err("traps")
    else {
        panic!("expected a trap")
    };
    assert!(instructions > 0);
    assert_eq!(
        c.cycle_balance(),
        balance - induction("inc_then_trap", &[]) - execution(instructions)
    );
    assert_eq!(counters(&mut c), [2, 2, 2]);
    // Queries are free.
    let balance = c.cycle_balance();
    reply(c.query("get", &[], ALICE));
    assert_eq!(c.cycle_balance(), balance);
    // The constants behind the helpers above.
    assert_eq!(
        cycles::ingress_induction_cost("echo", &[0; 10]),
        induction("echo", &[0; 10])
    );
    assert_eq!(
        cycles::execution_cost(UPDATE_LIMIT)
            - cycles::execution_refund(UPDATE_LIMIT - 77, u128::MAX),
        execution(77)
    );
}

#[test]
fn update_from_canister_pays_no_ingress_fee() {
    let (mut c, _) = Canister::install(&cycles_module(), &[], CONTROLLER).expect("installs");
    let balance = c.cycle_balance();
    let e = c
        .update_from_canister("echo", &[1; 100], &CANISTER_ID)
        .expect("runs");
    assert_eq!(e.cycles, execution(e.instructions));
    assert_eq!(c.cycle_balance(), balance - execution(e.instructions));
}

#[test]
fn the_canister_sees_its_balance_after_the_message_fees() {
    let module = cycles_module();
    let (mut c, _) = Canister::install(&module, &[], CONTROLLER).expect("installs");
    let balance = c.cycle_balance();
    // During an update: the induction fee and the whole prepaid execution are already taken.
    let prepaid = 5_000_000 + 40_000_000_000;
    let seen = reply_u128(c.update("balance", &[], ALICE));
    assert_eq!(seen, balance - induction("balance", &[]) - prepaid);
    // A query sees the balance as it is.
    let balance = c.cycle_balance();
    assert_eq!(reply_u128(c.query("balance_query", &[], ALICE)), balance);
    // The liquid balance is what is left above the freezing threshold: 30 days of storing the
    // heap (1 page), stable memory (1 page) and the module at 127,000 cycles per GiB-second.
    let memory = 65_536 + 65_536 + module.len() as u128;
    let threshold = memory * 127_000 * 86_400 / (1 << 30) * 30;
    assert_eq!(c.freezing_threshold(), threshold);
    assert!(threshold > 0);
    let liquid = reply_u128(c.update("liquid", &[], ALICE));
    assert_eq!(
        liquid,
        balance - induction("liquid", &[]) - prepaid - threshold
    );
}

#[test]
fn a_message_the_balance_cannot_pay_is_refused() {
    let runtime = Runtime::new().expect("runtime");
    let module = cycles_module();
    let install_fee = cycles::execution_cost(INSTALL_LIMIT);
    assert_eq!(
        Canister::install_with_cycles_on(&runtime, &module, &[], CONTROLLER, install_fee - 1)
            .map(|_| ()),
        Err(RuntimeError::OutOfCycles {
            balance: install_fee - 1,
            needed: install_fee
        })
    );
    let (mut c, _) =
        Canister::install_with_cycles_on(&runtime, &module, &[], CONTROLLER, install_fee)
            .expect("installs");
    reply(c.update("inc", &[], ALICE));
    // 1 GiB of stable memory: a freezing threshold of ~330 B cycles, more than the balance.
    reply(c.update("grow", &16_384u64.to_le_bytes(), ALICE));
    let threshold = c.freezing_threshold();
    assert!(c.cycle_balance() < threshold, "frozen");
    let fee = induction("inc", &[]);
    let prepaid = 5_000_000 + 40_000_000_000;

    // One cycle short of the induction fee: refused before anything is charged.
    c.deposit_cycles(threshold + fee - 1 - c.cycle_balance());
    let balance = c.cycle_balance();
    let refused = c.update("inc", &[], ALICE);
    assert_eq!(
        refused,
        Err(RuntimeError::OutOfCycles {
            balance,
            needed: threshold + fee
        })
    );
    assert_eq!(
        refused.expect_err("refused").to_string(),
        "Canister lxzze-o7777-77777-aaaaa-cai is out of cycles: \
         please top up the canister with at least 1 additional cycles"
    );
    assert_eq!(c.cycle_balance(), balance);

    // Enough for the induction fee, one cycle short of the prepaid execution: the message is
    // inducted (its fee is kept, as on the replica) and refused before it runs.
    c.deposit_cycles(prepaid);
    assert_eq!(
        c.update("inc", &[], ALICE),
        Err(RuntimeError::OutOfCycles {
            balance: threshold + prepaid - 1,
            needed: threshold + prepaid
        })
    );
    assert_eq!(c.cycle_balance(), threshold + prepaid - 1);
    assert_eq!(counters(&mut c), [1, 1, 1], "nothing ran");

    // Exactly enough: it runs, and pays only what it used.
    c.deposit_cycles(fee + 1);
    let e = c.update("inc", &[], ALICE).expect("runs");
    assert_eq!(
        c.cycle_balance(),
        threshold + prepaid - execution(e.instructions)
    );
    assert_eq!(counters(&mut c), [2, 2, 2], "queries run while frozen");
}

#[test]
fn a_timer_the_balance_cannot_pay_stays_set() {
    let module = wasm_importing(
        &format!("{SYSTEM_IMPORTS}{CYCLES_IMPORTS}"),
        &format!("{COUNTER}{CYCLES}{SYSTEM}"),
    );
    let runtime = Runtime::new().expect("runtime");
    let install_fee = cycles::execution_cost(INSTALL_LIMIT);
    let (mut c, _) =
        Canister::install_with_cycles_on(&runtime, &module, &[], CONTROLLER, install_fee)
            .expect("installs");
    reply(c.update("set_timer", &[], ALICE));
    reply(c.update("grow", &16_384u64.to_le_bytes(), ALICE));
    c.advance_time(5_000_000_000);
    let needed = cycles::execution_cost(UPDATE_LIMIT) + c.freezing_threshold();
    let balance = c.cycle_balance();
    assert!(balance < needed);
    assert_eq!(
        c.run_timer(),
        Err(RuntimeError::OutOfCycles { balance, needed })
    );
    assert_ne!(c.global_timer(), 0, "still set");
    assert_eq!(c.cycle_balance(), balance);
    c.deposit_cycles(needed - balance);
    let e = c.run_timer().expect("runs").expect("was due");
    assert_eq!(e.cycles, execution(e.instructions));
    assert_eq!(c.cycle_balance(), needed - execution(e.instructions));
    assert_eq!(c.global_timer(), 0);
    assert_eq!(reply_u32(c.query("fired", &[], ALICE)), 1);
}

#[test]
fn the_cycle_balance_survives_save_and_load() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cycles_state");
    let _ = std::fs::remove_dir_all(&dir);
    let (mut c, _) = Canister::install(&cycles_module(), &[], CONTROLLER).expect("installs");
    reply(c.update("inc", &[], ALICE));
    c.deposit_cycles(12_345);
    c.save(&dir).expect("save");
    let mut loaded = Canister::load(&dir).expect("load");
    assert_eq!(loaded.cycle_balance(), c.cycle_balance());
    let balance = loaded.cycle_balance();
    let e = loaded.update("inc", &[], ALICE).expect("runs");
    assert_eq!(
        loaded.cycle_balance(),
        balance - induction("inc", &[]) - execution(e.instructions)
    );
    // A state saved before balances were kept loads with the fixed balance it had then.
    let text = std::fs::read_to_string(dir.join("canister.txt")).expect("canister.txt");
    let old: String = text
        .lines()
        .filter(|line| !line.starts_with("cycles "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(old, text);
    std::fs::write(dir.join("canister.txt"), old).expect("write");
    let old = Canister::load(&dir).expect("load an old state");
    assert_eq!(old.cycle_balance(), CYCLE_BALANCE);
    assert_eq!(old.module(), c.module());
}

/// `ic0.msg_cycles_available128` in an update and a query, `ic0.msg_deadline` in a timer.
const AVAILABILITY: &str = r#"
  (import "ic0" "msg_cycles_available128" (func $cycles_available (param i32)))
  (import "ic0" "msg_deadline" (func $deadline (result i64)))
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
"#;

#[test]
fn message_cycles_and_deadline_are_where_the_replica_has_them() {
    let body = r#"
      (func (export "canister_update cycles") (export "canister_query cycles_query")
        (call $cycles_available (i32.const 0))
        (call $append (i32.const 0) (i32.const 16))
        (call $reply))
      (func (export "canister_update set_timer")
        (drop (call $timer_set (i64.const 1)))
        (call $reply_i64 (call $deadline)))
      (func (export "canister_global_timer") (drop (call $deadline)))
    "#;
    let (mut c, _) =
        Canister::install(&wasm_importing(AVAILABILITY, body), &[], CONTROLLER).expect("installs");
    assert_eq!(reply(c.update("cycles", &[], ALICE)), vec![0; 16]);
    assert_eq!(
        trap_message(c.query("cycles_query", &[], ALICE)),
        "\"ic0_msg_cycles_available128\" cannot be executed in query mode"
    );
    assert_eq!(reply_u64(c.update("set_timer", &[], ALICE)), 0);
    assert_eq!(
        trap_message(c.run_timer().map(|e| e.expect("due"))),
        "\"ic0_msg_deadline\" cannot be executed in global timer mode"
    );
}

// ---- canister_inspect_message ----

const INSPECT_IMPORTS: &str = r#"
  (import "ic0" "accept_message" (func $accept))
  (import "ic0" "msg_method_name_size" (func $method_size (result i32)))
  (import "ic0" "msg_method_name_copy" (func $method_copy (param i32 i32 i32)))
"#;

/// The counter with a `canister_inspect_message` that decides by the first letter of the method:
/// `r` refuses (after a debug print), `t` traps, `w` accepts twice, `l` loops forever, `c` replies,
/// `s` changes the heap, a global and stable memory and accepts, anything else accepts.
const INSPECT: &str = r#"
  (func (export "canister_inspect_message") (local $first i32)
    (call $method_copy (i32.const 300) (i32.const 0) (i32.const 1))
    (local.set $first (i32.load8_u (i32.const 300)))
    (if (i32.eq (local.get $first) (i32.const 0x72)) ;; r
      (then (call $print (i32.const 120) (i32.const 5)) (return)))
    (if (i32.eq (local.get $first) (i32.const 0x74)) ;; t
      (then (call $trap (i32.const 110) (i32.const 4))))
    (if (i32.eq (local.get $first) (i32.const 0x77)) ;; w
      (then (call $accept)))
    (if (i32.eq (local.get $first) (i32.const 0x6c)) ;; l
      (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $first) (i32.const 0x63)) ;; c
      (then (call $reply)))
    (if (i32.eq (local.get $first) (i32.const 0x73)) ;; s
      (then
        (global.set $counter (i32.const 100))
        (i32.store (i32.const 16) (i32.const 100))
        (i32.store (i32.const 32) (i32.const 100))
        (call $swrite (i64.const 0) (i64.const 32) (i64.const 4))))
    (call $accept))
  (func $inc_reply
    (export "canister_update r_inc") (export "canister_update t_inc")
    (export "canister_update w_inc") (export "canister_update l_inc")
    (export "canister_update c_inc") (export "canister_update s_inc")
    (call $inc) (call $reply_i32 (global.get $counter)))
  (func (export "canister_query r_get") (call $reply_i32 (global.get $counter)))
  (func (export "canister_update accept_in_update") (call $accept) (call $reply))
  (func (export "canister_update method_name_in_update") (drop (call $method_size)) (call $reply))
"#;

fn install_inspect() -> Canister {
    let module = wasm_importing(INSPECT_IMPORTS, &format!("{COUNTER}{INSPECT}"));
    Canister::install(&module, &[], CONTROLLER)
        .expect("install succeeds")
        .0
}

#[track_caller]
fn not_accepted(result: Result<Execution, RuntimeError>) -> (String, u64, Vec<String>) {
    match result {
        Err(RuntimeError::NotAccepted {
            reason,
            instructions,
            debug_prints,
            ..
        }) => (reason, instructions, debug_prints),
        other => panic!("expected NotAccepted, got {other:?}"),
    }
}

#[test]
fn inspect_message_accepts() {
    let mut c = install_inspect();
    let e = c.update("inc", &[], ALICE).expect("accepted");
    assert_eq!(e.outcome, Outcome::Reply(1u32.to_le_bytes().to_vec()));
    assert!(e.inspect_instructions > 0);
    // Not charged: the fee is the update's alone.
    assert_eq!(e.cycles, induction("inc", &[]) + execution(e.instructions));
    // A canister without inspect_message accepts everything.
    let e = install(COUNTER).update("inc", &[], ALICE).expect("runs");
    assert_eq!(e.inspect_instructions, 0);
}

#[test]
fn inspect_message_refuses_without_accept_and_charges_nothing() {
    let mut c = install_inspect();
    let balance = c.cycle_balance();
    let version = c.canister_version();
    let refused = c.update("r_inc", &[], ALICE);
    assert_eq!(
        refused.as_ref().expect_err("refused").to_string(),
        "message to `r_inc` not accepted: Canister lxzze-o7777-77777-aaaaa-cai rejected the message"
    );
    let (reason, instructions, prints) = not_accepted(refused);
    assert_eq!(
        reason,
        "Canister lxzze-o7777-77777-aaaaa-cai rejected the message"
    );
    assert!(instructions > 0);
    assert_eq!(prints, vec!["hello".to_string()]);
    assert_eq!(counters(&mut c), [0, 0, 0]);
    assert_eq!(c.cycle_balance(), balance);
    assert_eq!(c.canister_version(), version);
}

#[test]
fn inspect_message_that_traps_refuses_with_the_trap() {
    let mut c = install_inspect();
    let balance = c.cycle_balance();
    let (reason, _, _) = not_accepted(c.update("t_inc", &[], ALICE));
    assert_eq!(reason, "Canister called `ic0.trap` with message: 'nope'");
    // Replying is not allowed in inspect_message.
    let (reason, _, _) = not_accepted(c.update("c_inc", &[], ALICE));
    assert_eq!(
        reason,
        "\"ic0_msg_reply\" cannot be executed in inspect message mode"
    );
    // Its instruction limit is the replica's 200 M.
    let (reason, instructions, _) = not_accepted(c.update("l_inc", &[], ALICE));
    assert_eq!(
        reason,
        "Canister exceeded the limit of 200000000 instructions for a single message execution"
    );
    assert_eq!(instructions, 200_000_000);
    assert_eq!(counters(&mut c), [0, 0, 0]);
    assert_eq!(c.cycle_balance(), balance);
}

#[test]
fn accept_message_twice_traps_and_only_works_in_inspect_message() {
    let mut c = install_inspect();
    let (reason, _, _) = not_accepted(c.update("w_inc", &[], ALICE));
    assert_eq!(
        reason,
        "ic0.accept_message: the function was already called."
    );
    assert_eq!(
        trap_message(c.update("accept_in_update", &[], ALICE)),
        "\"ic0_accept_message\" cannot be executed in update mode"
    );
    // As on the replica, the method name is only available to inspect_message.
    assert_eq!(
        trap_message(c.update("method_name_in_update", &[], ALICE)),
        "\"ic0_msg_method_name_size\" cannot be executed in update mode"
    );
}

#[test]
fn inspect_message_changes_are_rolled_back() {
    let mut c = install_inspect();
    reply(c.update("inc", &[], ALICE));
    // inspect_message sets the counters to 100 and accepts; the update sees none of it.
    assert_eq!(reply_u32(c.update("s_inc", &[], ALICE)), 2);
    assert_eq!(counters(&mut c), [2, 2, 2]);
}

#[test]
fn inspect_message_runs_neither_for_canister_calls_nor_for_queries() {
    let mut c = install_inspect();
    let balance = c.cycle_balance();
    // `r_inc` is refused as an ingress message, but another canister may call it.
    not_accepted(c.update("r_inc", &[], ALICE));
    let e = c
        .update_from_canister("r_inc", &[], &CANISTER_ID)
        .expect("runs");
    assert_eq!(e.outcome, Outcome::Reply(1u32.to_le_bytes().to_vec()));
    assert_eq!(e.inspect_instructions, 0);
    assert_eq!(c.cycle_balance(), balance - execution(e.instructions));
    // Queries are never inspected either.
    assert_eq!(reply_u32(c.query("r_get", &[], ALICE)), 1);
}

// ---- Stable memory that runs out ----

/// Grows stable memory with the 64-bit and the 32-bit API by the argument's pages, replying what
/// the System API answered.
const GROW_STABLE: &str = r#"
  (func (export "canister_update grow64")
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 8))
    (call $reply_i64 (call $sgrow (i64.load (i32.const 0)))))
  (func (export "canister_update grow32")
    (call $arg_copy (i32.const 0) (i32.const 0) (i32.const 4))
    (call $reply_i32 (call $sgrow32 (i32.load (i32.const 0)))))
"#;

#[test]
fn stable_memory_grows_up_to_its_limit_and_no_further() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stable_memory_limit");
    let _ = std::fs::remove_dir_all(&dir);
    let module = wasm_importing(
        r#"(import "ic0" "stable_grow" (func $sgrow32 (param i32) (result i32)))"#,
        GROW_STABLE,
    );
    let (mut c, _) = Canister::install(&module, &[], CONTROLLER).expect("install");
    let grow64 = |c: &mut Canister, pages: u64| {
        reply_u64(c.update("grow64", &pages.to_le_bytes(), ALICE)) as i64
    };
    let grow32 = |c: &mut Canister, pages: u32| {
        reply_u32(c.update("grow32", &pages.to_le_bytes(), ALICE)) as i32
    };
    assert_eq!(c.stable_memory_limit(), None);
    // Three pages and a little more: the fourth page does not fit.
    let limit = 3 * 65_536 + 100;
    c.set_stable_memory_limit(Some(limit));
    assert_eq!(c.stable_memory_limit(), Some(limit));
    assert_eq!(grow64(&mut c, 2), 0);
    assert_eq!(grow64(&mut c, 2), -1, "four pages pass the limit");
    assert_eq!(c.stable_size_pages(), 2, "a refused growth grows nothing");
    assert_eq!(grow32(&mut c, 1), 2);
    assert_eq!(grow32(&mut c, 1), -1);
    assert_eq!(grow64(&mut c, u64::MAX), -1);
    assert_eq!(
        grow64(&mut c, 0),
        3,
        "growing by nothing succeeds at the limit"
    );
    assert_eq!(c.stable_size_pages(), 3);

    // Kept across an upgrade, and saved with the canister.
    c.upgrade(&module, &[], CONTROLLER).expect("upgrade");
    assert_eq!(grow64(&mut c, 1), -1);
    c.save(&dir).expect("save");
    let text = std::fs::read_to_string(dir.join("canister.txt")).expect("canister.txt");
    assert!(
        text.contains(&format!("\nstable_memory_limit {limit}\n")),
        "{text}"
    );
    let mut loaded = Canister::load(&dir).expect("load");
    assert_eq!(loaded.stable_memory_limit(), Some(limit));
    assert_eq!(grow64(&mut loaded, 1), -1);

    // A limit below the current size keeps the memory and refuses any growth.
    c.set_stable_memory_limit(Some(65_536));
    assert_eq!(grow64(&mut c, 1), -1);
    assert_eq!(grow64(&mut c, 0), 3);
    assert_eq!(c.stable_size_pages(), 3);
    // Without a limit, it grows again.
    c.set_stable_memory_limit(None);
    assert_eq!(grow64(&mut c, 1), 3);
    assert_eq!(grow32(&mut c, 1), 4);
    c.save(&dir).expect("save");
    let text = std::fs::read_to_string(dir.join("canister.txt")).expect("canister.txt");
    assert!(!text.contains("stable_memory_limit"), "{text}");
    assert_eq!(
        Canister::load(&dir).expect("load").stable_memory_limit(),
        None
    );
}

/// Runs `step` on a canister that keeps its instance between messages, and on a copy that is
/// saved and loaded before every message (so every message instantiates the module afresh):
/// both give the same results, instruction counts, cycles and state.
#[test]
fn a_kept_instance_runs_messages_as_a_fresh_one_does() {
    type Step = fn(&mut Canister) -> Result<Execution, RuntimeError>;
    let steps: Vec<(&str, Step)> = vec![
        ("inc", |c| c.update("inc", &[], ALICE)),
        // A query called as an update: replicated, and rolled back like a query.
        ("inc_query as update", |c| c.update("inc_query", &[], ALICE)),
        ("inc_then_trap", |c| c.update("inc_then_trap", &[], ALICE)),
        ("inc_query", |c| c.query("inc_query", &[], ALICE)),
        ("inc", |c| c.update("inc", &[], ALICE)),
        ("double_reply", |c| c.update("double_reply", &[], ALICE)),
        ("no_reply", |c| c.update("no_reply", &[], ALICE)),
        ("echo grows", |c| c.update("echo", &[7; 100_000], ALICE)),
        ("get_mem", |c| c.query("get_mem", &[], ALICE)),
        ("inc_then_unreachable", |c| {
            c.update("inc_then_unreachable", &[], ALICE)
        }),
        // A query that grows memory: the kept instance cannot shrink back, so it is dropped.
        ("zeros grows", |c| {
            c.query("zeros", &300_000u32.to_le_bytes(), ALICE)
        }),
        ("inc", |c| c.update("inc", &[], ALICE)),
        // A replicated query that grows memory drops the kept instance too.
        ("zeros as update grows", |c| {
            c.update_from_canister("zeros", &200_000u32.to_le_bytes(), &CANISTER_ID)
        }),
        ("inc_query from a canister", |c| {
            c.update_from_canister("inc_query", &[], &CANISTER_ID)
        }),
        ("echo grows again", |c| {
            c.update("echo", &[9; 200_000], ALICE)
        }),
        ("inc_then_trap", |c| c.update("inc_then_trap", &[], ALICE)),
        ("get", |c| c.query("get", &[], ALICE)),
        ("get_mem", |c| c.query("get_mem", &[], ALICE)),
        ("get_stable", |c| c.query("get_stable", &[], ALICE)),
    ];
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kept_instance");
    let _ = std::fs::remove_dir_all(&root);
    let runtime = Runtime::new().expect("runtime");
    let (mut kept, _) =
        Canister::install_on(&runtime, &wasm(COUNTER), &[], CONTROLLER).expect("install");
    let fresh_dir = root.join("fresh");
    kept.save(&fresh_dir).expect("save");
    for (i, (name, step)) in steps.iter().enumerate() {
        let mut fresh = Canister::load_on(&runtime, &fresh_dir).expect("load");
        let from_fresh = step(&mut fresh);
        let from_kept = step(&mut kept);
        assert_eq!(from_kept, from_fresh, "step {i}: {name}");
        fresh.save(&fresh_dir).expect("save");
    }
    assert_eq!(counters(&mut kept), [4, 4, 4]);
    kept.save(&root.join("kept")).expect("save");
    for file in ["heap.bin", "stable.bin", "canister.txt"] {
        let read = |dir: &str| std::fs::read(root.join(dir).join(file)).expect("saved");
        assert!(read("kept") == read("fresh"), "{file} differs");
    }
}

/// A module that changes its table cannot keep its instance (a fresh instance starts from the
/// module's table, as on the replica, which keeps only memory and globals): every message gets
/// a fresh one, and the heap still commits.
#[test]
fn a_module_that_changes_its_table_gets_a_fresh_instance_every_message() {
    let mut c = install(
        r#"
  (type $answer (func (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $one)
  (elem declare func $two)
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func (export "canister_update swap")
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (table.set (i32.const 0) (ref.func $two))
    (call $reply_i32 (call_indirect (type $answer) (i32.const 0))))
  (func (export "canister_query which")
    (call $reply_i32 (call_indirect (type $answer) (i32.const 0))))
  (func (export "canister_query get_mem") (call $reply_i32 (i32.load (i32.const 16))))
"#,
    );
    for calls in 1..=2 {
        assert_eq!(reply_u32(c.query("which", &[], ALICE)), 1);
        assert_eq!(reply_u32(c.update("swap", &[], ALICE)), 2);
        assert_eq!(reply_u32(c.query("which", &[], ALICE)), 1);
        assert_eq!(reply_u32(c.query("get_mem", &[], ALICE)), calls);
    }
}

/// `set_stable_memory` replaces stable memory with an image (rounded up to whole pages) and keeps
/// the heap; the image is saved with the canister; one larger than the limit changes nothing.
#[test]
fn a_stable_memory_image_replaces_stable_memory_and_keeps_the_heap() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stable_image");
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = install(COUNTER);
    reply(c.update("inc", &[], ALICE));
    let version = c.canister_version();
    let mut image = vec![0; 2 * 65_536 + 10];
    image[..4].copy_from_slice(&41u32.to_le_bytes());
    c.set_stable_memory(&image).expect("no limit");
    assert_eq!(c.stable_size_pages(), 3);
    assert_eq!(c.canister_version(), version + 1);
    assert_eq!(counters(&mut c), [1, 1, 41]);
    assert_eq!(reply_u32(c.update("inc", &[], ALICE)), 2);
    assert_eq!(counters(&mut c), [2, 2, 42]);
    c.save(&dir).expect("save");
    let mut loaded = Canister::load(&dir).expect("load");
    assert_eq!(counters(&mut loaded), [2, 2, 42]);
    assert_eq!(loaded.stable_size_pages(), 3);

    c.set_stable_memory_limit(Some(3 * 65_536));
    assert_eq!(
        c.set_stable_memory(&vec![1; 3 * 65_536 + 1]),
        Err(RuntimeError::StableMemoryTooLarge {
            bytes: 4 * 65_536,
            limit: 3 * 65_536
        })
    );
    assert_eq!(counters(&mut c), [2, 2, 42]);
    assert_eq!(c.stable_size_pages(), 3);
}

// ---- Queries called as updates (replicated queries) ----

/// The counter, with a query that replies what `ic0.in_replicated_execution` says, and one that
/// increments the counters (global, heap, stable memory) and replies the canister's balance.
const REPLICATED: &str = r#"
  (func (export "canister_query replicated") (call $reply_i32 (call $replicated)))
  (func (export "canister_query inc_balance")
    (call $inc)
    (call $balance (i32.const 0))
    (call $append (i32.const 0) (i32.const 16))
    (call $reply))
"#;

fn install_replicated() -> Canister {
    let imports = format!(
        r#"(import "ic0" "in_replicated_execution" (func $replicated (result i32)))
           {CYCLES_IMPORTS}"#
    );
    let module = wasm_importing(&imports, &format!("{COUNTER}{REPLICATED}"));
    Canister::install(&module, &[], CONTROLLER)
        .expect("install succeeds")
        .0
}

#[test]
fn a_query_called_as_an_update_runs_replicated() {
    let mut c = install_replicated();
    assert_eq!(reply_u32(c.query("replicated", &[], ALICE)), 0);
    assert_eq!(reply_u32(c.update("replicated", &[], ALICE)), 1);
    assert_eq!(
        reply_u32(c.update_from_canister("replicated", &[], &CANISTER_ID)),
        1
    );
    // The caller is the update's.
    assert_eq!(reply(c.update("caller", &[], &[9; 29])), vec![9; 29]);
}

#[test]
fn a_query_called_as_an_update_keeps_nothing() {
    let mut c = install_replicated();
    reply(c.update("inc", &[], ALICE));
    let version = c.canister_version();
    let time = c.time();
    // Each sees the committed counters and increments them; nothing of it is kept.
    for _ in 0..3 {
        assert_eq!(reply_u32(c.update("inc_query", &[], ALICE)), 2);
        assert_eq!(
            reply_u32(c.update_from_canister("inc_query", &[], &CANISTER_ID)),
            2
        );
    }
    assert_eq!(counters(&mut c), [1, 1, 1]);
    // Nor is the heap a replicated query grows.
    let heap = c.heap_size();
    reply(c.update("zeros", &200_000u32.to_le_bytes(), ALICE));
    assert_eq!(c.heap_size(), heap, "its memory.grow is rolled back");
    // As on the replica, the version moves on after each one that did not trap, and time
    // passes as after any replicated message.
    assert_eq!(c.canister_version(), version + 7);
    assert_eq!(c.time(), time + 7 * TIME_STEP);
    // An update after them sees what the last update committed.
    assert_eq!(reply_u32(c.update("inc", &[], ALICE)), 2);
    assert_eq!(counters(&mut c), [2, 2, 2]);
}

#[test]
fn a_query_called_as_an_update_is_charged_like_an_update() {
    let mut c = install_replicated();
    let balance = c.cycle_balance();
    // Ingress: the induction fee, and the execution prepaid for a query's 5 B instructions, the
    // unused part refunded: 5 M + 1 per instruction used.
    let prepaid = 5_000_000 + 5_000_000_000;
    let e = c.update("inc_balance", &[7; 10], ALICE).expect("runs");
    let Outcome::Reply(seen) = &e.outcome else {
        panic!("{e:?}")
    };
    let seen = u128::from_le_bytes(seen.clone().try_into().expect("16 bytes"));
    assert_eq!(seen, balance - induction("inc_balance", &[7; 10]) - prepaid);
    let fee = induction("inc_balance", &[7; 10]) + execution(e.instructions);
    assert_eq!(e.cycles, fee);
    assert_eq!(c.cycle_balance(), balance - fee, "only the cycles are kept");
    assert_eq!(
        cycles::execution_cost(5_000_000_000),
        prepaid,
        "the prepaid execution"
    );
    // From a canister: no induction fee.
    let balance = c.cycle_balance();
    let e = c
        .update_from_canister("inc_balance", &[], &CANISTER_ID)
        .expect("runs");
    assert_eq!(e.cycles, execution(e.instructions));
    assert_eq!(c.cycle_balance(), balance - e.cycles);
    // As a query call, free.
    let balance = c.cycle_balance();
    reply(c.query("inc_balance", &[], ALICE));
    assert_eq!(c.cycle_balance(), balance);
    assert_eq!(counters(&mut c), [0, 0, 0]);
}

#[test]
fn a_query_called_as_an_update_has_the_query_limit_and_the_update_reply_limit() {
    let mut c = install(COUNTER);
    let balance = c.cycle_balance();
    let version = c.canister_version();
    // The instruction limit is a query's 5 B, all paid when it runs out.
    let arg = (1u32 << 31).to_le_bytes();
    assert!(matches!(
        c.update("loop_query", &arg, ALICE),
        Err(RuntimeError::InstructionLimit {
            limit: 5_000_000_000,
            ..
        })
    ));
    assert_eq!(
        c.cycle_balance(),
        balance - induction("loop_query", &arg) - 5_000_000 - 5_000_000_000
    );
    // Replies are capped as an update's are, at 2 MiB (a query call may reply 3 MiB).
    let two = 2u32 * 1024 * 1024;
    assert_eq!(
        reply(c.update("zeros", &two.to_le_bytes(), ALICE)).len(),
        two as usize
    );
    assert_eq!(
        c.update("zeros", &(two + 1).to_le_bytes(), ALICE),
        Err(RuntimeError::ReplyTooLarge {
            size: two as usize + 1,
            limit: two as usize
        })
    );
    assert_eq!(
        reply(c.query("zeros", &(two + 1).to_le_bytes(), ALICE)).len(),
        two as usize + 1
    );
    // Only the one that replied moved the version on.
    assert_eq!(c.canister_version(), version + 1);
    assert_eq!(counters(&mut c), [0, 0, 0]);
}

#[test]
fn a_query_called_as_an_update_has_the_replicas_system_api() {
    // No timer and no certified data, as in any query; message cycles, as in an update.
    let mut c = install_system();
    assert_eq!(
        trap_message(c.update("certify_in_query", &[], ALICE)),
        "\"ic0_certified_data_set\" cannot be executed in replicated query mode"
    );
    assert_eq!(c.certified_data(), b"");
    let body = r#"
      (func (export "canister_query cycles_query")
        (call $cycles_available (i32.const 0))
        (call $append (i32.const 0) (i32.const 16))
        (call $reply))
      (func (export "canister_query timer_query")
        (drop (call $timer_set (i64.const 1)))
        (call $reply))
      (func (export "canister_query deadline_query") (call $reply_i64 (call $deadline)))
    "#;
    let (mut c, _) =
        Canister::install(&wasm_importing(AVAILABILITY, body), &[], CONTROLLER).expect("installs");
    assert_eq!(reply(c.update("cycles_query", &[], ALICE)), vec![0; 16]);
    assert_eq!(
        trap_message(c.update("timer_query", &[], ALICE)),
        "\"ic0_global_timer_set\" cannot be executed in replicated query mode"
    );
    assert_eq!(c.global_timer(), 0);
    assert_eq!(reply_u64(c.update("deadline_query", &[], ALICE)), 0);
}

#[test]
fn a_query_called_as_an_update_by_ingress_is_inspected() {
    let mut c = install_inspect();
    let balance = c.cycle_balance();
    let version = c.canister_version();
    // inspect_message refuses methods starting with `r`: `r_get` as an ingress update is refused
    // before it runs or pays.
    let (reason, instructions, _) = not_accepted(c.update("r_get", &[], ALICE));
    assert_eq!(
        reason,
        "Canister lxzze-o7777-77777-aaaaa-cai rejected the message"
    );
    assert!(instructions > 0);
    assert_eq!(c.cycle_balance(), balance);
    assert_eq!(c.canister_version(), version);
    // Accepted: inspected, then charged as an update.
    let e = c.update("get", &[], ALICE).expect("accepted");
    assert_eq!(e.outcome, Outcome::Reply(0u32.to_le_bytes().to_vec()));
    assert!(e.inspect_instructions > 0);
    assert_eq!(e.cycles, induction("get", &[]) + execution(e.instructions));
    // Another canister, or a query call, is not inspected.
    let e = c
        .update_from_canister("r_get", &[], &CANISTER_ID)
        .expect("runs");
    assert_eq!(e.inspect_instructions, 0);
    assert_eq!(reply_u32(c.query("r_get", &[], ALICE)), 0);
}

/// A runtime with a code cache loads what an earlier one compiled (its entry is read, not
/// written again); an entry that does not check out (damaged, cut short, another module's) is
/// compiled again and replaced, and the canister runs its own code either way.
#[test]
fn the_code_cache_serves_entries_that_check_out_and_replaces_the_others() {
    use std::os::unix::fs::MetadataExt;

    let dir = std::env::temp_dir().join(format!(
        "ic-local-runtime-code-cache-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let counter = wasm(COUNTER);
    // A fresh runtime per run, as each CLI command is a fresh process.
    let run = |module: &[u8]| {
        let runtime = Runtime::with_code_cache(&dir).expect("a runtime");
        let (canister, _) =
            Canister::install_on(&runtime, module, &[], CONTROLLER).expect("installs");
        canister
    };
    let entries = || -> Vec<std::path::PathBuf> {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .expect("the cache directory")
            .map(|e| e.expect("an entry").path())
            .collect();
        entries.sort();
        entries
    };
    let inode = |path: &std::path::Path| std::fs::metadata(path).expect("the entry").ino();

    let mut canister = run(&counter);
    assert_eq!(reply_u32(canister.update("inc", &[], ALICE)), 1);
    let [entry] = &entries()[..] else {
        panic!("one entry after one compile: {:?}", entries());
    };
    let written = inode(entry);
    run(&counter);
    assert_eq!(
        inode(entry),
        written,
        "a good entry is read, not compiled and written again"
    );

    let good = std::fs::read(entry).expect("the entry");
    let mut damaged = good.clone();
    *damaged.last_mut().expect("not empty") ^= 1;
    let other = {
        run(&wasm(COUNTER_V2));
        let other = entries()
            .into_iter()
            .find(|e| e != entry)
            .expect("the other module's entry");
        std::fs::read(&other).expect("the other entry")
    };
    for (what, bytes) in [
        ("damaged", damaged),
        ("cut short", good[..100].to_vec()),
        ("another module's", other),
    ] {
        std::fs::write(entry, &bytes).expect("overwrite the entry");
        let mut canister = run(&counter);
        assert_eq!(
            reply_u32(canister.update("inc", &[], ALICE)),
            1,
            "{what}: the counter's own code runs"
        );
        assert!(
            std::fs::read(entry).expect("the entry") == good,
            "{what}: the entry is compiled again and replaced"
        );
        let rewritten = inode(entry);
        run(&counter);
        assert_eq!(inode(entry), rewritten, "{what}: the replacement is read");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The code cache keeps the four entries written last: a canister rebuilt again and again does
/// not fill the disk.
#[test]
fn the_code_cache_keeps_the_last_four_entries() {
    let dir = std::env::temp_dir().join(format!(
        "ic-local-runtime-code-cache-prune-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    for build in 0..6 {
        let runtime = Runtime::with_code_cache(&dir).expect("a runtime");
        let module = wasm(&format!(
            "{COUNTER} (global (export \"build\") i32 (i32.const {build}))"
        ));
        Canister::install_on(&runtime, &module, &[], CONTROLLER).expect("installs");
        let entries = std::fs::read_dir(&dir)
            .expect("the cache directory")
            .count();
        assert_eq!(entries, (build + 1).min(4), "after build {build}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
