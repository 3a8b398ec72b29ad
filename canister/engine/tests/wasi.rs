//! WASI preview 1 under the engine: every shim function with good and hostile arguments (ranges
//! outside memory, wrapping or huge iovec lists, lengths near `u32::MAX`, floods), `proc_exit`
//! in calls and initialisers, durable state and rollback of what the shim writes, and
//! conformance cases modelled on the wasi-testsuite's preview-1 tests that need no filesystem.
//!
//! Each module imports all 46 functions (`$name`, from the table) and gets `$out(ptr, len)`,
//! which writes memory to stdout: with the config `wasi.stdout = output`, that is the call's
//! output. A function returning an errno as its `i32` result fails with `PluginError { code }`.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::VectorMemory;
use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::{
    Engine, InstallError, InstallRequest, InstructionMeter, InvokeError, InvokeFailure,
    InvokeOutcome, InvokePolicy, InvokeRequest, LimitExceeded, Limits, LogEntry, LogLevel,
    StableMemories, StableSpace, WASI, WASI_IMPORTS,
};

const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ENOTDIR: i32 = 54;
const ENOTSOCK: i32 = 57;
const ENOTSUP: i32 = 58;
const ESPIPE: i32 = 70;

/// The message time every call here runs at.
const NOW: u64 = 1_700_000_000_123_456_789;

struct Meter;

impl InstructionMeter for Meter {
    fn instructions(&self) -> u64 {
        0
    }
}

fn engine() -> Engine<VectorMemory> {
    let space = Rc::new(StableSpace::init(VectorMemory::default()));
    let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
    Engine::init(space, ids, Limits::default(), Rc::new(Meter))
}

/// The imports of every test module: the whole WASI table, named `$<function>`.
fn imports() -> String {
    let mut text = String::new();
    for f in WASI_IMPORTS {
        text.push_str(&format!(
            "(import \"{WASI}\" \"{0}\" (func ${0} (param {1}) (result {2})))\n",
            f.name,
            types(f.params),
            types(f.results)
        ));
    }
    text
}

fn types<T: ToString>(types: &[T]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A module with the imports, two pages of memory, `$out` and `body`.
fn module(body: &str) -> String {
    format!(
        r#"(module {}
  (memory (export "memory") 2)
  (func $out (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  {body})"#,
        imports()
    )
}

fn stdout_output() -> BTreeMap<String, String> {
    BTreeMap::from([("wasi.stdout".into(), "output".into())])
}

fn try_install(
    engine: &mut Engine<VectorMemory>,
    name: &str,
    body: &str,
    config: BTreeMap<String, String>,
) -> Result<(), InstallError> {
    let wasm = wat::parse_str(module(body)).unwrap_or_else(|e| panic!("{name}: {e}"));
    engine
        .install(
            InstallRequest {
                name,
                wasm: &wasm,
                config,
                owner: Principal::from_slice(&[1]),
                invoke_policy: InvokePolicy::Public,
                fuel_limit: None,
            },
            NOW,
        )
        .map(|_| ())
}

#[track_caller]
fn install(engine: &mut Engine<VectorMemory>, name: &str, body: &str) {
    try_install(engine, name, body, stdout_output()).unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn call(
    engine: &mut Engine<VectorMemory>,
    plugin: &str,
    function: &str,
    input: &[u8],
    fuel: Option<u64>,
) -> Result<InvokeOutcome, InvokeFailure> {
    engine.invoke(InvokeRequest {
        plugin,
        function,
        input,
        fuel,
        caller: Principal::from_slice(b"caller"),
        now_ns: NOW,
        commit: true,
        logs: true,
        instruction_limit: None,
    })
}

#[track_caller]
fn ok(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str, input: &[u8]) -> Vec<u8> {
    match call(engine, plugin, function, input, None) {
        Ok(outcome) => outcome.output,
        Err(f) => panic!("{plugin}.{function}: {f}"),
    }
}

#[track_caller]
fn fails(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str) -> InvokeError {
    match call(engine, plugin, function, b"", None) {
        Ok(o) => panic!("{plugin}.{function} should fail, output {:?}", o.output),
        Err(f) => f.error,
    }
}

/// The errno a function answered (its result; 0 is success).
#[track_caller]
fn errno(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str) -> i32 {
    match call(engine, plugin, function, b"", None) {
        Ok(_) => 0,
        Err(InvokeFailure {
            error: InvokeError::PluginError { code, message },
            ..
        }) if message.is_empty() => code,
        Err(f) => panic!("{plugin}.{function}: {f}"),
    }
}

fn le32(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes(w.try_into().expect("width")))
        .collect()
}

fn line(level: LogLevel, message: &str) -> LogEntry {
    LogEntry {
        level,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The table and install
// ---------------------------------------------------------------------------------------------

#[test]
fn all_46_functions_install_and_only_with_their_signatures() {
    assert_eq!(WASI_IMPORTS.len(), 46);
    let mut engine = engine();
    install(&mut engine, "all", r#"(func (export "run"))"#);
    assert_eq!(ok(&mut engine, "all", "run", b""), b"");
    for f in WASI_IMPORTS {
        // Another result type (or one more result) is refused, naming the function.
        let results = if f.results.is_empty() { "i32" } else { "i64" };
        let text = format!(
            r#"(module (import "{WASI}" "{}" (func (param {}) (result {results})))
                 (func (export "run")))"#,
            f.name,
            types(f.params)
        );
        let wasm = wat::parse_str(&text).expect("WAT");
        let refused = engine.install(
            InstallRequest {
                name: "wrong",
                wasm: &wasm,
                config: BTreeMap::new(),
                owner: Principal::from_slice(&[1]),
                invoke_policy: InvokePolicy::Public,
                fuel_limit: None,
            },
            NOW,
        );
        assert_eq!(
            refused.map(|_| ()),
            Err(InstallError::ForbiddenImport {
                module: WASI.into(),
                name: f.name.into(),
                reason: "wrong signature".into()
            }),
            "{}",
            f.name
        );
    }
}

/// Every function but `proc_exit`, called with every argument -1 and then 0, answers an errno
/// (or success) and the next call still works: nothing a guest passes traps the host.
#[test]
fn every_function_answers_hostile_arguments_with_an_errno() {
    let mut engine = engine();
    let mut cases = String::new();
    for f in WASI_IMPORTS.iter().filter(|f| f.name != "proc_exit") {
        for (suffix, value) in [("minus_one", "-1"), ("zero", "0")] {
            let args: String = f
                .params
                .iter()
                .map(|t| format!("({t}.const {value}) "))
                .collect();
            cases.push_str(&format!(
                "(func (export \"{0}_{suffix}\") (result i32) (call ${0} {args}))\n",
                f.name
            ));
        }
    }
    install(&mut engine, "hostile", &cases);
    let mut seen = 0;
    for f in WASI_IMPORTS.iter().filter(|f| f.name != "proc_exit") {
        let all_minus_one = errno(&mut engine, "hostile", &format!("{}_minus_one", f.name));
        let expected = match f.name {
            "sched_yield" => 0,
            // No fd to speak of: -1 is not a descriptor.
            "fd_prestat_get" | "fd_prestat_dir_name" => EBADF,
            "proc_raise" => ENOSYS,
            "args_get" | "args_sizes_get" | "environ_get" | "environ_sizes_get" | "random_get" => {
                EFAULT
            }
            "clock_res_get" | "clock_time_get" | "poll_oneoff" => EINVAL,
            _ => EBADF,
        };
        assert_eq!(all_minus_one, expected, "{}(-1, ...)", f.name);
        let zero = errno(&mut engine, "hostile", &format!("{}_zero", f.name));
        assert_ne!(
            zero, EFAULT,
            "{}(0, ...) touched nothing outside memory",
            f.name
        );
        seen += 1;
    }
    assert_eq!(seen, 45);
}

// ---------------------------------------------------------------------------------------------
// fd_write: stdout and stderr
// ---------------------------------------------------------------------------------------------

const HELLO: &str =
    r#"(data (i32.const 64) "hello\nwor") (data (i32.const 80) "ld\nerr\npartial")"#;

#[test]
fn stdout_and_stderr_become_log_lines_and_nwritten_counts() {
    let mut engine = engine();
    let body = format!(
        r#"{HELLO}
        (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
          (i32.store (i32.const 16) (local.get $ptr))
          (i32.store (i32.const 20) (local.get $len))
          (call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
        (func (export "run") (result i32)
          (drop (call $write (i32.const 1) (i32.const 64) (i32.const 9)))  ;; "hello\nwor"
          (drop (call $write (i32.const 1) (i32.const 80) (i32.const 3)))  ;; "ld\n"
          (drop (call $write (i32.const 2) (i32.const 83) (i32.const 11))) ;; "err\npartial"
          (if (i32.ne (i32.load (i32.const 24)) (i32.const 11)) (then (return (i32.const 99))))
          ;; "hel", unfinished
          (call $write (i32.const 1) (i32.const 64) (i32.const 3)))"#
    );
    try_install(&mut engine, "logs", &body, BTreeMap::new()).expect("install");
    let outcome = call(&mut engine, "logs", "run", b"", None).expect("run");
    assert_eq!(outcome.output, b"", "stdout is not the output by default");
    assert_eq!(
        outcome.logs,
        vec![
            line(LogLevel::Info, "hello"),
            line(LogLevel::Info, "world"),
            line(LogLevel::Warn, "err"),
            line(LogLevel::Warn, "partial"),
            line(LogLevel::Info, "hel"),
        ]
    );
    // Without logs asked for, nothing is kept, and the call behaves the same.
    let quiet = engine.invoke(InvokeRequest {
        plugin: "logs",
        function: "run",
        input: b"",
        fuel: None,
        caller: Principal::anonymous(),
        now_ns: NOW,
        commit: false,
        logs: false,
        instruction_limit: None,
    });
    assert_eq!(quiet.map(|o| o.logs.len()), Ok(0));
}

#[test]
fn fd_write_refuses_bad_fds_and_ranges_without_writing() {
    let mut engine = engine();
    // Memory: 2 pages = 131,072 bytes. iovec table at 16; nwritten at 24.
    let body = format!(
        r#"{HELLO}
        (func $w (param $fd i32) (param $iovs i32) (param $n i32) (param $nw i32) (param $ptr i32) (param $len i32) (result i32)
          (i32.store (i32.const 16) (local.get $ptr))
          (i32.store (i32.const 20) (local.get $len))
          (call $fd_write (local.get $fd) (local.get $iovs) (local.get $n) (local.get $nw)))
        (func (export "stdin") (result i32) (call $w (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "fd3") (result i32) (call $w (i32.const 3) (i32.const 16) (i32.const 1) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "fd_max") (result i32) (call $w (i32.const -1) (i32.const 16) (i32.const 1) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "iovs_outside") (result i32) (call $w (i32.const 1) (i32.const 131068) (i32.const 1) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "iovs_len_max") (result i32) (call $w (i32.const 1) (i32.const 16) (i32.const -1) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "iovs_len_wraps") (result i32) (call $w (i32.const 1) (i32.const 16) (i32.const 0x20000000) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "iovs_1025") (result i32) (call $w (i32.const 1) (i32.const 16) (i32.const 1025) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "iovs_1024_outside") (result i32) (call $w (i32.const 1) (i32.const 131064) (i32.const 1024) (i32.const 24) (i32.const 64) (i32.const 5)))
        (func (export "data_outside") (result i32) (call $w (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24) (i32.const 131070) (i32.const 5)))
        (func (export "len_near_max") (result i32) (call $w (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24) (i32.const 64) (i32.const -2)))
        (func (export "ptr_wraps") (result i32) (call $w (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24) (i32.const -1) (i32.const 2)))
        (func (export "nwritten_outside") (result i32) (call $w (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 131070) (i32.const 64) (i32.const 5)))
        (func (export "none") (result i32)
          (drop (call $w (i32.const 1) (i32.const 16) (i32.const 0) (i32.const 24) (i32.const 64) (i32.const 5)))
          (i32.load (i32.const 24)))"#
    );
    try_install(&mut engine, "w", &body, BTreeMap::new()).expect("install");
    for (function, expected) in [
        ("stdin", EBADF),
        ("fd3", EBADF),
        ("fd_max", EBADF),
        ("iovs_outside", EFAULT),
        ("iovs_len_max", EINVAL),
        ("iovs_len_wraps", EINVAL),
        ("iovs_1025", EINVAL),
        ("iovs_1024_outside", EFAULT),
        ("data_outside", EFAULT),
        ("len_near_max", EFAULT),
        ("ptr_wraps", EFAULT),
        ("nwritten_outside", EFAULT),
        ("none", 0),
    ] {
        let outcome = call(&mut engine, "w", function, b"", None);
        let (code, logs) = match outcome {
            Ok(o) => (0, o.logs),
            Err(InvokeFailure {
                error: InvokeError::PluginError { code, .. },
                logs,
                ..
            }) => (code, logs),
            Err(f) => panic!("{function}: {f}"),
        };
        assert_eq!(code, expected, "{function}");
        assert_eq!(logs, vec![], "{function}: nothing was written");
    }
}

#[test]
fn fd_write_floods_are_capped_like_logs_or_run_out_of_fuel() {
    let mut engine = engine();
    // 64 KiB of "x\n" lines: 32,768 lines of one byte, each costing 17 bytes of the 64 KiB cap.
    let body = r#"
        (func (export "lines") (result i32)
          (memory.fill (i32.const 65536) (i32.const 0x0a78) (i32.const 65536))
          (call $fill_lines)
          (i32.store (i32.const 16) (i32.const 65536))
          (i32.store (i32.const 20) (i32.const 65536))
          (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
        (func $fill_lines (local $i i32)
          (loop $l
            (i32.store16 (i32.add (i32.const 65536) (local.get $i)) (i32.const 0x0a78))
            (local.set $i (i32.add (local.get $i) (i32.const 2)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 65536)))))
        ;; One unfinished line of 64 KiB, written 16 times: it stays one line, cut to the cap.
        (func (export "long_line") (result i32) (local $i i32)
          (memory.fill (i32.const 65536) (i32.const 0x41) (i32.const 65536))
          (i32.store (i32.const 16) (i32.const 65536))
          (i32.store (i32.const 20) (i32.const 65536))
          (loop $l
            (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 16))))
          (i32.const 0))
        ;; 1,024 iovecs (the most), each the same 1 MiB: 1 GiB asked for in one call.
        (func (export "huge") (result i32) (local $i i32)
          (drop (memory.grow (i32.const 16)))
          (loop $l
            (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 3))) (i32.const 65536))
            (i32.store (i32.add (i32.const 1028) (i32.shl (local.get $i) (i32.const 3))) (i32.const 1048576))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 1024))))
          (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1024) (i32.const 24)))
        ;; 1,024 iovecs of 4 MiB + 1 byte: the lengths add up past 4 GiB.
        (func (export "past_4gib") (result i32) (local $i i32)
          (drop (memory.grow (i32.const 64)))
          (loop $l
            (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 3))) (i32.const 65536))
            (i32.store (i32.add (i32.const 1028) (i32.shl (local.get $i) (i32.const 3))) (i32.const 4194305))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 1024))))
          (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1024) (i32.const 24)))"#;
    try_install(&mut engine, "flood", body, BTreeMap::new()).expect("install");
    let lines = call(&mut engine, "flood", "lines", b"", None).expect("lines");
    let cap = 64 * 1024 / 17;
    assert_eq!(lines.logs.len(), cap);
    assert!(lines.logs.iter().all(|l| *l == line(LogLevel::Info, "x")));

    let long = call(&mut engine, "flood", "long_line", b"", None).expect("long line");
    assert_eq!(long.logs.len(), 1, "one unfinished line");
    assert_eq!(long.logs[0].level, LogLevel::Warn);
    assert!(long.logs[0].message.len() <= 64 * 1024);
    assert!(
        long.logs[0].message.len() > 60_000,
        "cut to the cap, not dropped"
    );

    // 1 GiB at a fuel a byte is more than the default 100 M: refused before anything moves.
    match fails(&mut engine, "flood", "huge") {
        InvokeError::OutOfFuel { fuel_limit, .. } => assert_eq!(fuel_limit, 100_000_000),
        other => panic!("{other}"),
    }
    assert_eq!(errno(&mut engine, "flood", "past_4gib"), EINVAL);
}

#[test]
fn stdout_is_the_output_of_start_and_when_configured_within_the_output_cap() {
    let mut engine = engine();
    let body = r#"(data (i32.const 64) "out")
        (func (export "_start") (call $out (i32.const 64) (i32.const 3)))
        (func (export "run") (call $out (i32.const 64) (i32.const 3)))
        (func (export "too_much") (local $i i32)
          (loop $l
            (call $out (i32.const 0) (i32.const 65536))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 28)))))"#;
    try_install(&mut engine, "cmd", body, BTreeMap::new()).expect("install");
    assert_eq!(ok(&mut engine, "cmd", "_start", b""), b"out");
    let run = call(&mut engine, "cmd", "run", b"", None).expect("run");
    assert_eq!(
        (run.output, run.logs),
        (vec![], vec![line(LogLevel::Info, "out")])
    );

    install(&mut engine, "configured", body);
    assert_eq!(ok(&mut engine, "configured", "run", b""), b"out");
    // 28 x 64 KiB = 1.835 MB passes the 1.8 MB output cap.
    assert_eq!(
        fails(&mut engine, "configured", "too_much"),
        InvokeError::LimitExceeded(LimitExceeded {
            limit: "output bytes".into(),
            requested: 28 * 65536,
            max: 1_800_000
        })
    );
}

// ---------------------------------------------------------------------------------------------
// fd_read: stdin is the input
// ---------------------------------------------------------------------------------------------

#[test]
fn fd_read_reads_the_input_then_end_of_file() {
    let mut engine = engine();
    // Reads into two iovecs (3 bytes at 1000, 4 at 2000) until 0 bytes come; echoes all it read.
    let body = r#"
        (func (export "cat") (result i32) (local $total i32) (local $n i32) (local $e i32)
          (i32.store (i32.const 16) (i32.const 1000))
          (i32.store (i32.const 20) (i32.const 3))
          (i32.store (i32.const 24) (i32.const 2000))
          (i32.store (i32.const 28) (i32.const 4))
          (block $done
            (loop $l
              (local.set $e (call $fd_read (i32.const 0) (i32.const 16) (i32.const 2) (i32.const 32)))
              (br_if $done (local.get $e))
              (local.set $n (i32.load (i32.const 32)))
              (br_if $done (i32.eqz (local.get $n)))
              ;; Copy what came to 4096 + total: the first 3 from 1000, the rest from 2000.
              (memory.copy (i32.add (i32.const 4096) (local.get $total)) (i32.const 1000)
                (select (local.get $n) (i32.const 3) (i32.lt_u (local.get $n) (i32.const 3))))
              (if (i32.gt_u (local.get $n) (i32.const 3))
                (then (memory.copy (i32.add (i32.const 4099) (local.get $total)) (i32.const 2000)
                  (i32.sub (local.get $n) (i32.const 3)))))
              (local.set $total (i32.add (local.get $total) (local.get $n)))
              (br $l)))
          (call $out (i32.const 4096) (local.get $total))
          (local.get $e))
        (func (export "from_stdout") (result i32)
          (call $fd_read (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32)))
        (func (export "iovec_outside") (result i32)
          (i32.store (i32.const 16) (i32.const 131070))
          (i32.store (i32.const 20) (i32.const 4))
          (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 32)))
        (func (export "nread_outside") (result i32)
          (i32.store (i32.const 16) (i32.const 1000))
          (i32.store (i32.const 20) (i32.const 4))
          (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const -4)))
        (func (export "iovs_len_max") (result i32)
          (call $fd_read (i32.const 0) (i32.const 16) (i32.const -1) (i32.const 32)))"#;
    install(&mut engine, "stdin", body);
    let input = b"The quick brown fox jumps over the lazy dog";
    assert_eq!(ok(&mut engine, "stdin", "cat", input), input);
    assert_eq!(ok(&mut engine, "stdin", "cat", b""), b"");
    for (function, expected) in [
        ("from_stdout", EBADF),
        ("iovec_outside", EFAULT),
        ("nread_outside", EFAULT),
        ("iovs_len_max", EINVAL),
    ] {
        assert_eq!(
            errno(&mut engine, "stdin", function),
            expected,
            "{function}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// args, environ, clocks, random
// ---------------------------------------------------------------------------------------------

const STRINGS: &str = r#"
    (func (export "args") (result i32) (local $e i32)
      (local.set $e (call $args_sizes_get (i32.const 100) (i32.const 104)))
      (if (local.get $e) (then (return (local.get $e))))
      (local.set $e (call $args_get (i32.const 200) (i32.const 300)))
      (call $out (i32.const 100) (i32.const 8))
      (call $out (i32.const 200) (i32.mul (i32.load (i32.const 100)) (i32.const 4)))
      (call $out (i32.const 300) (i32.load (i32.const 104)))
      (local.get $e))
    (func (export "environ") (result i32) (local $e i32)
      (local.set $e (call $environ_sizes_get (i32.const 100) (i32.const 104)))
      (if (local.get $e) (then (return (local.get $e))))
      (local.set $e (call $environ_get (i32.const 200) (i32.const 300)))
      (call $out (i32.const 100) (i32.const 8))
      (call $out (i32.const 300) (i32.load (i32.const 104)))
      (local.get $e))
    (func (export "args_outside") (result i32) (call $args_get (i32.const 200) (i32.const 131070)))
    (func (export "argv_outside") (result i32) (call $args_get (i32.const -4) (i32.const 300)))
    (func (export "sizes_outside") (result i32) (call $args_sizes_get (i32.const 100) (i32.const 131069)))
    (func (export "environ_outside") (result i32) (call $environ_get (i32.const 131070) (i32.const 300)))"#;

#[test]
fn args_and_environ_come_from_the_config_and_are_empty_by_default() {
    let mut engine = engine();
    install(&mut engine, "empty", STRINGS);
    assert_eq!(ok(&mut engine, "empty", "args", b""), [0u8; 8]);
    assert_eq!(ok(&mut engine, "empty", "environ", b""), [0u8; 8]);

    let mut config = stdout_output();
    config.insert("wasi.args".into(), "prog  --flag\tvalue".into());
    config.insert("wasi.env.HOME".into(), "/nowhere".into());
    config.insert("wasi.env.LANG".into(), "C".into());
    config.insert("other".into(), "not in the environment".into());
    try_install(&mut engine, "set", STRINGS, config).expect("install");
    let args = ok(&mut engine, "set", "args", b"");
    let text = b"prog\0--flag\0value\0";
    assert_eq!(le32(&args[..8]), [3, text.len() as u32]);
    assert_eq!(le32(&args[8..20]), [300, 305, 312]);
    assert_eq!(&args[20..], text);
    let environ = ok(&mut engine, "set", "environ", b"");
    let text = b"HOME=/nowhere\0LANG=C\0";
    assert_eq!(le32(&environ[..8]), [2, text.len() as u32]);
    assert_eq!(&environ[8..], text);
    for function in [
        "args_outside",
        "argv_outside",
        "sizes_outside",
        "environ_outside",
    ] {
        assert_eq!(errno(&mut engine, "set", function), EFAULT, "{function}");
    }
}

#[test]
fn clocks_read_the_message_time() {
    let mut engine = engine();
    let body = r#"
        (func $time (param $id i32) (result i32) (local $e i32)
          (local.set $e (call $clock_time_get (local.get $id) (i64.const 1) (i32.const 100)))
          (call $out (i32.const 100) (i32.const 8))
          (local.get $e))
        (func (export "realtime") (result i32) (call $time (i32.const 0)))
        (func (export "monotonic") (result i32) (call $time (i32.const 1)))
        (func (export "process") (result i32) (call $clock_time_get (i32.const 2) (i64.const 1) (i32.const 100)))
        (func (export "unknown") (result i32) (call $clock_time_get (i32.const 99) (i64.const 1) (i32.const 100)))
        (func (export "outside") (result i32) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 131066)))
        (func (export "res") (result i32) (local $e i32)
          (local.set $e (call $clock_res_get (i32.const 1) (i32.const 100)))
          (call $out (i32.const 100) (i32.const 8))
          (local.get $e))
        (func (export "res_outside") (result i32) (call $clock_res_get (i32.const 0) (i32.const -1)))"#;
    install(&mut engine, "clock", body);
    assert_eq!(ok(&mut engine, "clock", "realtime", b""), NOW.to_le_bytes());
    assert_eq!(
        ok(&mut engine, "clock", "monotonic", b""),
        NOW.to_le_bytes()
    );
    assert_eq!(ok(&mut engine, "clock", "res", b""), 1u64.to_le_bytes());
    // A later message: monotonic moves with it, never back.
    let later = engine
        .invoke(InvokeRequest {
            plugin: "clock",
            function: "monotonic",
            input: b"",
            fuel: None,
            caller: Principal::anonymous(),
            now_ns: NOW + 5,
            commit: true,
            logs: false,
            instruction_limit: None,
        })
        .expect("later");
    assert_eq!(later.output, (NOW + 5).to_le_bytes());
    for (function, expected) in [
        ("process", EINVAL),
        ("unknown", EINVAL),
        ("outside", EFAULT),
        ("res_outside", EFAULT),
    ] {
        assert_eq!(
            errno(&mut engine, "clock", function),
            expected,
            "{function}"
        );
    }
}

#[test]
fn random_get_is_deterministic_charged_and_bounds_checked() {
    let mut engine = engine();
    let body = r#"
        (func (export "random") (result i32) (local $e i32)
          (local.set $e (call $random_get (i32.const 100) (i32.const 13)))
          (drop (call $random_get (i32.const 113) (i32.const 19)))
          (call $out (i32.const 100) (i32.const 32))
          (local.get $e))
        (func (export "empty") (result i32) (call $random_get (i32.const 131072) (i32.const 0)))
        (func (export "outside") (result i32) (call $random_get (i32.const 131000) (i32.const 73)))
        (func (export "four_gib") (result i32) (call $random_get (i32.const 0) (i32.const -1)))
        (func (export "big") (result i32)
          (drop (memory.grow (i32.const 1000)))
          (call $random_get (i32.const 0) (i32.const 60000000)))"#;
    install(&mut engine, "rng", body);
    let first = ok(&mut engine, "rng", "random", b"");
    let second = ok(&mut engine, "rng", "random", b"");
    assert_eq!(first.len(), 32);
    assert_ne!(first, second, "each call has its own seed");
    assert_ne!(first[..16], first[16..], "the stream goes on within a call");
    // The same plugin, call count, time and caller give the same bytes (replicas agree).
    let mut twin = self::engine();
    install(&mut twin, "rng", body);
    assert_eq!(ok(&mut twin, "rng", "random", b""), first);

    assert_eq!(errno(&mut engine, "rng", "empty"), 0);
    assert_eq!(errno(&mut engine, "rng", "outside"), EFAULT);
    assert_eq!(errno(&mut engine, "rng", "four_gib"), EFAULT);
    // 60 MB at a fuel a byte, with 10 M fuel: out of fuel before anything is written.
    match call(&mut engine, "rng", "big", b"", Some(10_000_000)) {
        Err(InvokeFailure {
            error: InvokeError::OutOfFuel { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let paid = call(&mut engine, "rng", "big", b"", None).expect("100 M fuel pays for it");
    assert!(paid.fuel_used > 60_000_000, "{}", paid.fuel_used);
}

// ---------------------------------------------------------------------------------------------
// fds, poll, proc, sockets
// ---------------------------------------------------------------------------------------------

#[test]
fn stdio_fdstat_and_the_sandbox_errnos() {
    let mut engine = engine();
    let body = r#"
        (func (export "fdstat_stdout") (result i32) (local $e i32)
          (local.set $e (call $fd_fdstat_get (i32.const 1) (i32.const 200)))
          (call $out (i32.const 200) (i32.const 24))
          (local.get $e))
        (func (export "fdstat_stdin") (result i32) (local $e i32)
          (local.set $e (call $fd_fdstat_get (i32.const 0) (i32.const 200)))
          (call $out (i32.const 200) (i32.const 24))
          (local.get $e))
        (func (export "fdstat_3") (result i32) (call $fd_fdstat_get (i32.const 3) (i32.const 200)))
        (func (export "fdstat_outside") (result i32) (call $fd_fdstat_get (i32.const 1) (i32.const 131060)))
        (func (export "set_flags_append") (result i32) (call $fd_fdstat_set_flags (i32.const 1) (i32.const 1)))
        (func (export "set_flags_bad") (result i32) (call $fd_fdstat_set_flags (i32.const 1) (i32.const 0x100)))
        (func (export "set_flags_fd9") (result i32) (call $fd_fdstat_set_flags (i32.const 9) (i32.const 0)))
        (func (export "prestat_3") (result i32) (call $fd_prestat_get (i32.const 3) (i32.const 200)))
        (func (export "path_open_3") (result i32)
          (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 4) (i32.const 0)
            (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 200)))
        (func (export "seek_stdout") (result i32) (call $fd_seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 200)))
        (func (export "close_stdout") (result i32) (call $fd_close (i32.const 1)))
        (func (export "close_7") (result i32) (call $fd_close (i32.const 7)))
        (func (export "readdir_stdin") (result i32)
          (call $fd_readdir (i32.const 0) (i32.const 200) (i32.const 100) (i64.const 0) (i32.const 300)))
        (func (export "sock_shutdown_stdout") (result i32) (call $sock_shutdown (i32.const 1) (i32.const 2)))
        (func (export "sock_shutdown_bad") (result i32) (call $sock_shutdown (i32.const 42) (i32.const 2)))
        (func (export "sock_recv_bad") (result i32)
          (call $sock_recv (i32.const 42) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
        (func (export "raise") (result i32) (call $proc_raise (i32.const 9)))
        (func (export "yield") (result i32) (call $sched_yield))"#;
    install(&mut engine, "fds", body);
    let stat = ok(&mut engine, "fds", "fdstat_stdout", b"");
    assert_eq!(stat[0], 2, "a character device");
    assert_eq!(
        u64::from_le_bytes(stat[8..16].try_into().expect("width")),
        1 << 6 | 1 << 27
    );
    let stat = ok(&mut engine, "fds", "fdstat_stdin", b"");
    assert_eq!(
        u64::from_le_bytes(stat[8..16].try_into().expect("width")),
        1 << 1 | 1 << 27
    );
    for (function, expected) in [
        ("fdstat_3", EBADF),
        ("fdstat_outside", EFAULT),
        ("set_flags_append", 0),
        ("set_flags_bad", EINVAL),
        ("set_flags_fd9", EBADF),
        ("prestat_3", EBADF),
        ("path_open_3", EBADF),
        ("seek_stdout", ESPIPE),
        ("close_stdout", ENOTSUP),
        ("close_7", EBADF),
        ("readdir_stdin", ENOTDIR),
        ("sock_shutdown_stdout", ENOTSOCK),
        ("sock_shutdown_bad", EBADF),
        ("sock_recv_bad", EBADF),
        ("raise", ENOSYS),
        ("yield", 0),
    ] {
        assert_eq!(errno(&mut engine, "fds", function), expected, "{function}");
    }
}

#[test]
fn poll_oneoff_fires_clocks_at_once_and_sees_stdio_ready() {
    let mut engine = engine();
    // Four subscriptions at 1024 (48 bytes each): a clock of an hour, stdin readable, stdout
    // writable, fd 9 readable. Events at 2048 (32 bytes each), their count at 100.
    let body = r#"
        (func $sub (param $i i32) (param $userdata i64) (param $tag i32) (param $fd i32)
          (local $at i32)
          (local.set $at (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const 48))))
          (i64.store (local.get $at) (local.get $userdata))
          (i32.store8 offset=8 (local.get $at) (local.get $tag))
          (i32.store offset=16 (local.get $at) (local.get $fd)))
        (func (export "poll") (result i32) (local $e i32)
          (call $sub (i32.const 0) (i64.const 11) (i32.const 0) (i32.const 1))
          (i64.store (i32.const 1048) (i64.const 3600000000000))
          (call $sub (i32.const 1) (i64.const 22) (i32.const 1) (i32.const 0))
          (call $sub (i32.const 2) (i64.const 33) (i32.const 2) (i32.const 1))
          (call $sub (i32.const 3) (i64.const 44) (i32.const 1) (i32.const 9))
          (local.set $e (call $poll_oneoff (i32.const 1024) (i32.const 2048) (i32.const 4) (i32.const 100)))
          (call $out (i32.const 100) (i32.const 4))
          (call $out (i32.const 2048) (i32.const 128))
          (local.get $e))
        (func (export "none") (result i32) (call $poll_oneoff (i32.const 1024) (i32.const 2048) (i32.const 0) (i32.const 100)))
        (func (export "bad_tag") (result i32)
          (call $sub (i32.const 0) (i64.const 1) (i32.const 7) (i32.const 0))
          (call $poll_oneoff (i32.const 1024) (i32.const 2048) (i32.const 1) (i32.const 100)))
        (func (export "subs_outside") (result i32) (call $poll_oneoff (i32.const 131050) (i32.const 2048) (i32.const 1) (i32.const 100)))
        (func (export "events_outside") (result i32) (call $poll_oneoff (i32.const 1024) (i32.const 131050) (i32.const 1) (i32.const 100)))
        (func (export "huge_count") (result i32) (call $poll_oneoff (i32.const 1024) (i32.const 2048) (i32.const -1) (i32.const 100)))
        (func (export "count_1024_outside") (result i32) (call $poll_oneoff (i32.const 100000) (i32.const 2048) (i32.const 1024) (i32.const 100)))"#;
    install(&mut engine, "poll", body);
    let out = ok(&mut engine, "poll", "poll", b"abc");
    assert_eq!(le32(&out[..4]), [4]);
    let events: Vec<(u64, u16, u8, u64, u16)> = out[4..]
        .chunks_exact(32)
        .map(|e| {
            (
                u64::from_le_bytes(e[..8].try_into().expect("width")),
                u16::from_le_bytes(e[8..10].try_into().expect("width")),
                e[10],
                u64::from_le_bytes(e[16..24].try_into().expect("width")),
                u16::from_le_bytes(e[24..26].try_into().expect("width")),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (11, 0, 0, 0, 0),
            (22, 0, 1, 3, 0),
            (33, 0, 2, 0, 0),
            (44, EBADF as u16, 1, 0, 0)
        ]
    );
    for (function, expected) in [
        ("none", EINVAL),
        ("bad_tag", EINVAL),
        ("subs_outside", EFAULT),
        ("events_outside", EFAULT),
        ("huge_count", EINVAL),
        ("count_1024_outside", EFAULT),
    ] {
        assert_eq!(errno(&mut engine, "poll", function), expected, "{function}");
    }
}

#[test]
fn proc_exit_ends_the_call_with_its_code_and_rolls_back_a_failure() {
    let mut engine = engine();
    // A counter at 4096: `bump` adds one and exits with the code in the input's first byte.
    let body = r#"
        (func (export "bump")
          (i32.store (i32.const 4096) (i32.add (i32.load (i32.const 4096)) (i32.const 1)))
          (call $out (i32.const 4096) (i32.const 4))
          (i32.store (i32.const 16) (i32.const 5000))
          (i32.store (i32.const 20) (i32.const 1))
          (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
          (call $proc_exit (i32.load8_u (i32.const 5000)))
          (unreachable))"#;
    install(&mut engine, "exit", body);
    assert_eq!(ok(&mut engine, "exit", "bump", &[0]), 1u32.to_le_bytes());
    assert_eq!(ok(&mut engine, "exit", "bump", &[0]), 2u32.to_le_bytes());
    match call(&mut engine, "exit", "bump", &[3], None) {
        Err(InvokeFailure {
            error: InvokeError::PluginError { code, message },
            ..
        }) => assert_eq!((code, message.as_str()), (3, "exit code 3")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ok(&mut engine, "exit", "bump", &[0]),
        3u32.to_le_bytes(),
        "the failed call's increment was rolled back"
    );
    match call(&mut engine, "exit", "bump", &[255], None) {
        Err(InvokeFailure {
            error: InvokeError::PluginError { code, .. },
            ..
        }) => assert_eq!(code, 255),
        other => panic!("{other:?}"),
    }
}

#[test]
fn initialize_runs_once_at_install_and_proc_exit_in_it_is_its_result() {
    let mut engine = engine();
    // `_initialize` stores random bytes and the time: what it wrote is the plugin's state.
    let init = r#"
        (func (export "_initialize")
          (drop (call $random_get (i32.const 4096) (i32.const 8)))
          (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 4104)))
          (i32.store (i32.const 4112) (i32.add (i32.load (i32.const 4112)) (i32.const 1))))
        (func (export "state") (call $out (i32.const 4096) (i32.const 20)))"#;
    install(&mut engine, "reactor", init);
    let state = ok(&mut engine, "reactor", "state", b"");
    assert_ne!(state[..8], [0; 8], "random_get's bytes were kept");
    assert_eq!(state[8..16], NOW.to_le_bytes());
    assert_eq!(le32(&state[16..]), [1], "ran once");
    assert_eq!(
        ok(&mut engine, "reactor", "state", b""),
        state,
        "and never again"
    );

    let exits = |code: i32| {
        format!(
            r#"(func (export "_initialize") (call $proc_exit (i32.const {code})))
               (func (export "run"))"#
        )
    };
    try_install(&mut engine, "exit0", &exits(0), stdout_output()).expect("exit 0 is success");
    assert_eq!(ok(&mut engine, "exit0", "run", b""), b"");
    match try_install(&mut engine, "exit1", &exits(1), stdout_output()) {
        Err(InstallError::StartFailed(failure)) => assert_eq!(
            failure.error,
            InvokeError::PluginError {
                code: 1,
                message: "exit code 1".into()
            }
        ),
        other => panic!("{other:?}"),
    }
    assert!(engine.get("exit1").is_none());
}

#[test]
fn what_the_shim_writes_is_durable_and_rolled_back_with_the_call() {
    let mut engine = engine();
    // `fill` reads the input into 8192.. and random bytes into 12288..; `fail` does the same,
    // then exits with 1. `show` outputs both regions.
    let body = r#"
        (func $fill
          (i32.store (i32.const 16) (i32.const 8192))
          (i32.store (i32.const 20) (i32.const 16))
          (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
          (drop (call $random_get (i32.const 12288) (i32.const 16))))
        (func (export "fill") (call $fill))
        (func (export "fail") (call $fill) (call $proc_exit (i32.const 1)))
        (func (export "show")
          (call $out (i32.const 8192) (i32.const 16))
          (call $out (i32.const 12288) (i32.const 16)))"#;
    install(&mut engine, "durable", body);
    ok(&mut engine, "durable", "fill", b"0123456789abcdef");
    let kept = ok(&mut engine, "durable", "show", b"");
    assert_eq!(&kept[..16], b"0123456789abcdef");
    assert_ne!(kept[16..], [0; 16]);
    match call(&mut engine, "durable", "fail", b"XXXXXXXXXXXXXXXX", None) {
        Err(InvokeFailure {
            error: InvokeError::PluginError { code: 1, .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(ok(&mut engine, "durable", "show", b""), kept, "rolled back");
}

// ---------------------------------------------------------------------------------------------
// Conformance: the wasi-testsuite's preview-1 cases that need no filesystem
// ---------------------------------------------------------------------------------------------

/// wasi-testsuite `stdio`/`fd_write` to valid and invalid fds, `sched_yield`, `proc_exit`
/// success and failure, `sock_shutdown` on a bad fd, `clock_time_get` monotonicity within a call,
/// `random_get` filling a buffer: as one command module (`_start`), with its exit code.
#[test]
fn conformance_command_cases() {
    let mut engine = engine();
    let body = r#"(data (i32.const 64) "ok")
        (func $expect (param $got i32) (param $want i32) (param $case i32)
          (if (i32.ne (local.get $got) (local.get $want))
            (then (call $proc_exit (local.get $case)))))
        (func (export "_start")
          ;; fd_write to stdout, stderr (0 written bytes) and bad fds.
          (i32.store (i32.const 16) (i32.const 64))
          (i32.store (i32.const 20) (i32.const 2))
          (call $expect (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)) (i32.const 0) (i32.const 10))
          (call $expect (i32.load (i32.const 24)) (i32.const 2) (i32.const 11))
          (i32.store (i32.const 20) (i32.const 0))
          (call $expect (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)) (i32.const 0) (i32.const 12))
          (call $expect (i32.load (i32.const 24)) (i32.const 0) (i32.const 13))
          (call $expect (call $fd_write (i32.const 3) (i32.const 16) (i32.const 1) (i32.const 24)) (i32.const 8) (i32.const 14))
          (call $expect (call $fd_write (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)) (i32.const 8) (i32.const 15))
          ;; sched_yield, sock_shutdown on a bad fd.
          (call $expect (call $sched_yield) (i32.const 0) (i32.const 20))
          (call $expect (call $sock_shutdown (i32.const 99) (i32.const 3)) (i32.const 8) (i32.const 21))
          ;; Monotonic: a second reading is not before the first.
          (call $expect (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 200)) (i32.const 0) (i32.const 30))
          (call $expect (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 208)) (i32.const 0) (i32.const 31))
          (call $expect (i64.lt_u (i64.load (i32.const 208)) (i64.load (i32.const 200))) (i32.const 0) (i32.const 32))
          ;; random_get fills 256 bytes: not all zero.
          (call $expect (call $random_get (i32.const 1024) (i32.const 256)) (i32.const 0) (i32.const 40))
          (call $expect (i64.eqz (i64.or (i64.load (i32.const 1024)) (i64.load (i32.const 1272)))) (i32.const 0) (i32.const 41))
          ;; Exit with the code in the input (none: 0).
          (i32.store (i32.const 16) (i32.const 300))
          (i32.store (i32.const 20) (i32.const 1))
          (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
          (call $proc_exit (i32.load8_u (i32.const 300))))"#;
    try_install(&mut engine, "suite", body, BTreeMap::new()).expect("install");
    assert_eq!(ok(&mut engine, "suite", "_start", b""), b"ok");
    match call(&mut engine, "suite", "_start", &[7], None) {
        Err(InvokeFailure {
            error: InvokeError::PluginError { code, .. },
            ..
        }) => assert_eq!(code, 7),
        other => panic!("{other:?}"),
    }
}
