//! The plugin ABI under attack: no guest input reaches a panic; every misuse is a typed error or a
//! defined result; the next call works.
//!
//! - Every host function of the table ([`IMPORTS`]) is called with hostile arguments (bad
//!   handles, wrapping ranges, zero and huge lengths, values over the caps, keys that are not
//!   UTF-8), one small module per case, each outcome asserted exactly; a function of the table
//!   without cases fails the test.
//! - Extism's own test plugins (`empty`, `consume`, `echo`, `allocations`, `test_no_vars`) and its
//!   handle-0 and error/output rules.
//! - What host calls cost: beyond a fuel slice, beyond the call's fuel, against the message's
//!   instruction limit, several in one basic block.

#![allow(missing_docs)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::VectorMemory;
use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::abi::HostTrap;
use plugin_engine::{
    Engine, IMPORTS, InstallError, InstallRequest, InstructionMeter, InvokeError, InvokeFailure,
    InvokeOutcome, InvokePolicy, InvokeRequest, LimitExceeded, Limits, LogEntry, LogLevel,
    StableMemories, StableSpace,
};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Helpers (in the style of engine.rs)
// ---------------------------------------------------------------------------------------------

/// An instruction meter whose reading the test sets: each reading returns `now`, then adds
/// `step`.
#[derive(Default)]
struct Meter {
    now: Cell<u64>,
    step: u64,
}

impl InstructionMeter for Meter {
    fn instructions(&self) -> u64 {
        let now = self.now.get();
        self.now.set(now.saturating_add(self.step));
        now
    }
}

fn open(limits: Limits, meter: Rc<Meter>) -> Engine<VectorMemory> {
    let space = Rc::new(StableSpace::init(VectorMemory::default()));
    let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
    Engine::init(space, ids, limits, meter)
}

fn engine() -> Engine<VectorMemory> {
    open(Limits::default(), Rc::default())
}

fn owner() -> Principal {
    Principal::from_slice(&[1, 2, 3])
}

fn caller() -> Principal {
    Principal::from_slice(b"caller")
}

/// The config of every plugin installed here.
fn config() -> BTreeMap<String, String> {
    BTreeMap::from([
        (String::new(), "root".into()),
        ("greeting".into(), "hello".into()),
        ("empty".into(), String::new()),
    ])
}

#[track_caller]
fn install(engine: &mut Engine<VectorMemory>, name: &str, text: &str) {
    let wasm = match wat::parse_str(text) {
        Ok(wasm) => wasm,
        Err(e) => panic!("test WAT of {name} does not parse: {e}\n{text}"),
    };
    let request = InstallRequest {
        name,
        wasm: &wasm,
        config: config(),
        owner: owner(),
        invoke_policy: InvokePolicy::Public,
        fuel_limit: None,
    };
    if let Err(e) = engine.install(request, 1) {
        panic!("install {name}: {e}");
    }
}

fn invoke(
    engine: &mut Engine<VectorMemory>,
    plugin: &str,
    function: &str,
    input: &[u8],
    fuel: Option<u64>,
    logs: bool,
) -> Result<InvokeOutcome, InvokeFailure> {
    engine.invoke(InvokeRequest {
        plugin,
        function,
        input,
        fuel,
        caller: caller(),
        now_ns: 42,
        commit: true,
        logs,
        instruction_limit: None,
    })
}

#[track_caller]
fn ok(engine: &mut Engine<VectorMemory>, plugin: &str, function: &str, input: &[u8]) -> Vec<u8> {
    match invoke(engine, plugin, function, input, None, true) {
        Ok(outcome) => outcome.output,
        Err(f) => panic!("{plugin}.{function}: {f}"),
    }
}

#[track_caller]
fn err(
    engine: &mut Engine<VectorMemory>,
    plugin: &str,
    function: &str,
    input: &[u8],
) -> InvokeError {
    match invoke(engine, plugin, function, input, None, true) {
        Ok(o) => panic!(
            "{plugin}.{function} should fail, returned {}",
            show(&o.output)
        ),
        Err(f) => f.error,
    }
}

/// The plugin still answers a normal call: its `ok` export echoes the input.
#[track_caller]
fn still_answers(engine: &mut Engine<VectorMemory>, plugin: &str) {
    assert_eq!(
        ok(engine, plugin, "ok", b"still alive"),
        b"still alive",
        "{plugin}"
    );
}

/// Bytes for a message: short ones whole, long ones by length and first bytes.
fn show(bytes: &[u8]) -> String {
    if bytes.len() <= 64 {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        format!(
            "{} bytes starting {:?}",
            bytes.len(),
            String::from_utf8_lossy(&bytes[..32])
        )
    }
}

fn trap(t: HostTrap) -> InvokeError {
    InvokeError::Trap {
        message: t.to_string(),
    }
}

/// A handle or range outside any live block.
fn oob(function: &'static str, offset: u64, len: u64) -> InvokeError {
    trap(HostTrap::OutOfBounds {
        function,
        offset,
        len,
    })
}

/// A range outside the plugin's linear memory.
fn outside(function: &'static str, offset: u32, len: u32) -> InvokeError {
    trap(HostTrap::OutsideMemory {
        function,
        offset,
        len,
    })
}

fn limit(name: &str, requested: u64, max: u64) -> InvokeError {
    InvokeError::LimitExceeded(LimitExceeded {
        limit: name.into(),
        requested,
        max,
    })
}

fn wasm_trap(code: wasmi::TrapCode) -> InvokeError {
    InvokeError::Trap {
        message: wasmi::Error::from(code).to_string(),
    }
}

fn u64_le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn line(level: LogLevel, message: impl Into<String>) -> LogEntry {
    LogEntry {
        level,
        message: message.into(),
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

// ---------------------------------------------------------------------------------------------
// Modules generated from the table
// ---------------------------------------------------------------------------------------------

fn types<T: ToString>(types: &[T]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An import of every host function of the table, named `$<name>`, with its signature.
fn all_imports() -> String {
    IMPORTS
        .iter()
        .map(|f| {
            format!(
                "  (import \"{}\" \"{}\" (func ${} (param {}) (result {})))\n",
                f.module,
                f.name,
                f.name,
                types(f.params),
                types(f.results)
            )
        })
        .collect()
}

/// Guest memory of the case modules (addresses the bodies use).
const DATA: &str = r#"
  (data (i32.const 0) "\ff\fe")
  (data (i32.const 16) "k")
  (data (i32.const 32) "greeting")
  (data (i32.const 48) "hello")
  (data (i32.const 64) "nope")
  (data (i32.const 80) "abc")
  (data (i32.const 88) "abd")
  (data (i32.const 96) "empty")
  (data (i32.const 128) "{\"url\":\"https://example.com\"}")
"#;

/// `$block`: a new block holding guest memory `[ptr, ptr + len)`.
const BLOCK: &str = r#"
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
"#;

/// Helpers that use only the ABI: `$fill` (a new block of `len` copies of a byte), `$out_u64`,
/// `$out_block`; and the exports every case module has: `ok` (echoes the input) and `var_k` (the
/// var "k", empty if unset).
const ABI_HELPERS: &str = r#"
  (func $fill (param $len i64) (param $byte i32) (result i64)
    (local $h i64) (local $i i64) (local $word i64)
    (local.set $h (call $alloc (local.get $len)))
    (local.set $word (i64.mul (i64.extend_i32_u (local.get $byte)) (i64.const 0x0101010101010101)))
    (block $done (loop $next
      (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $len)))
      (call $store_u64 (i64.add (local.get $h) (local.get $i)) (local.get $word))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $next)))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $h) (local.get $i)) (local.get $byte))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (local.get $h))
  (func $out_u64 (param $v i64)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $h) (local.get $v))
    (call $output_set (local.get $h) (i64.const 8)))
  (func $out_block (param $h i64)
    (call $output_set (local.get $h) (call $length (local.get $h))))
  (func (export "ok") (result i32)
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
  (func (export "var_k") (result i32)
    (local $k i64) (local $v i64)
    (local.set $k (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $k) (i32.const 107))
    (local.set $v (call $var_get (local.get $k)))
    (call $out_block (local.get $v))
    (i32.const 0))
"#;

/// A module importing every host function, with `run` = `body` then `code`.
fn case_module(body: &str, code: i32, memory: bool) -> String {
    let (memory, data, block) = if memory {
        (r#"(memory (export "memory") 1)"#, DATA, BLOCK)
    } else {
        ("", "", "")
    };
    format!(
        r#"(module
{imports}
  {memory}
  {data}
  {block}
  {ABI_HELPERS}
  (func (export "run") (result i32)
    (local $k i64) (local $a i64) (local $b i64) (local $c i64) (local $x i64) (local $y i64)
    (local $i i64)
    {body}
    (i32.const {code})))"#,
        imports = all_imports()
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Every host function, hostile arguments
// ---------------------------------------------------------------------------------------------

/// One call of `run` and what it must give.
struct Case {
    what: String,
    body: String,
    code: i32,
    input: Vec<u8>,
    logs: bool,
    memory: bool,
    expect: Result<Vec<u8>, InvokeError>,
    expect_logs: Vec<LogEntry>,
    /// The var "k" after the call (empty: unset).
    var_k: Vec<u8>,
}

fn case(what: impl Into<String>, body: impl Into<String>) -> Case {
    Case {
        what: what.into(),
        body: body.into(),
        code: 0,
        input: Vec::new(),
        logs: true,
        memory: true,
        expect: Ok(Vec::new()),
        expect_logs: Vec::new(),
        var_k: Vec::new(),
    }
}

impl Case {
    fn output(mut self, output: impl Into<Vec<u8>>) -> Self {
        self.expect = Ok(output.into());
        self
    }
    fn fails(mut self, error: InvokeError) -> Self {
        self.expect = Err(error);
        self
    }
    fn gives(mut self, expect: Result<Vec<u8>, InvokeError>) -> Self {
        self.expect = expect;
        self
    }
    fn input(mut self, input: &[u8]) -> Self {
        self.input = input.to_vec();
        self
    }
    fn code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }
    fn quiet(mut self) -> Self {
        self.logs = false;
        self
    }
    fn no_memory(mut self) -> Self {
        self.memory = false;
        self
    }
    fn logged(mut self, lines: Vec<LogEntry>) -> Self {
        self.expect_logs = lines;
        self
    }
    fn var_k(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.var_k = value.into();
        self
    }
}

/// Sets up the arena of a call with empty input: `$k` = "k" at 1, `$a` = "hello" at 2..7, `$b` =
/// 8 bytes at 7..15, freed (a hole in the middle), `$c` = 4 zero bytes at 15..19 (the last
/// block). The case `alloc: the prelude's layout` checks these handles.
const PRELUDE: &str = r#"
    (local.set $k (call $block (i32.const 16) (i32.const 1)))
    (local.set $a (call $block (i32.const 48) (i32.const 5)))
    (local.set $b (call $alloc (i64.const 8)))
    (local.set $c (call $alloc (i64.const 4)))
    (call $free (local.get $b))
"#;

/// The live blocks after [`PRELUDE`]: (handle, bytes).
fn prelude_blocks() -> Vec<(u64, Vec<u8>)> {
    vec![(1, b"k".to_vec()), (2, b"hello".to_vec()), (15, vec![0; 4])]
}

/// `len` bytes at `offset` if they lie in one live block after [`PRELUDE`].
fn prelude_read(offset: u64, len: u64) -> Option<Vec<u8>> {
    prelude_blocks().into_iter().find_map(|(start, bytes)| {
        let end = offset.checked_add(len)?;
        let inside = offset >= start && end <= start + bytes.len() as u64;
        inside.then(|| bytes[(offset - start) as usize..(end - start) as usize].to_vec())
    })
}

/// Handles a guest may pass that are not the start of a live block (after [`PRELUDE`]):
/// description, WAT, value.
const HOSTILE: &[(&str, &str, u64)] = &[
    ("0", "(i64.const 0)", 0),
    ("-1", "(i64.const -1)", u64::MAX),
    ("i64::MIN", "(i64.const -9223372036854775808)", 1 << 63),
    ("far past the arena", "(i64.const 1099511627776)", 1 << 40),
    ("just past the last block", "(i64.const 19)", 19),
    (
        "inside a block",
        "(i64.add (local.get $a) (i64.const 1))",
        3,
    ),
    ("a freed block", "(local.get $b)", 7),
];

/// Offsets into the input `abcdefghij` (WAT literal, value).
const INPUT_OFFSETS: &[(&str, u64)] = &[
    ("0", 0),
    ("1", 1),
    ("2", 2),
    ("9", 9),
    ("10", 10),
    ("11", 11),
    ("-1", u64::MAX),
    ("-4", u64::MAX - 3),
    ("-8", u64::MAX - 7),
    ("-9223372036854775808", 1 << 63),
    ("1099511627776", 1 << 40),
];

/// Guest memory ranges outside one page (ptr, len, as u32; WAT takes them as i32).
const OUTSIDE: &[(u32, u32)] = &[
    (65_536, 1),
    (u32::MAX, 1),
    (0xFFFF_FFF0, 0x20),
    (0, u32::MAX),
    (0, 65_537),
    (65_535, 2),
];

/// Allocates 1-byte blocks until `$i` blocks of the call's are live (counting the ones before).
fn blocks_until(live: u64) -> String {
    format!(
        "(block $done (loop $next
           (br_if $done (i64.ge_u (local.get $i) (i64.const {live})))
           (drop (call $alloc (i64.const 1)))
           (local.set $i (i64.add (local.get $i) (i64.const 1)))
           (br $next)))"
    )
}

const ARENA: u64 = 64 * 1024 * 1024;
const BLOCKS: u64 = 100_000;
const OUTPUT: u64 = 1_800_000;
const ERROR: usize = 16 * 1024;
const VARS: u64 = 1024 * 1024;
const LOGS: u64 = 64 * 1024;
const LINE_OVERHEAD: u64 = 16;

#[test]
fn the_caps_in_these_tests_are_the_defaults() {
    let limits = Limits::default();
    assert_eq!(
        (
            limits.max_arena_bytes,
            limits.max_arena_blocks as u64,
            limits.max_output_bytes,
            limits.max_error_bytes,
            limits.max_var_bytes,
            limits.max_log_bytes
        ),
        (ARENA, BLOCKS, OUTPUT, ERROR as u64, VARS, LOGS)
    );
    assert_eq!(plugin_engine::abi::HOST_CALL_FUEL, 10);
}

/// The hostile cases of one host function. A function of the table with no arm here fails the
/// test: every new entry comes with its cases.
fn cases(function: &'static str) -> Vec<Case> {
    match function {
        "alloc" => alloc_cases(),
        "free" => free_cases(),
        "length" | "length_unsafe" => length_cases(function),
        "load_u8" => load_cases("load_u8", 1),
        "load_u64" => load_cases("load_u64", 8),
        "store_u8" => store_cases("store_u8", 1),
        "store_u64" => store_cases("store_u64", 8),
        "input_length" => input_length_cases(),
        "input_offset" => input_offset_cases(),
        "input_load_u8" => input_load_cases("input_load_u8", 1),
        "input_load_u64" => input_load_cases("input_load_u64", 8),
        "output_set" => output_set_cases(),
        "error_set" => error_set_cases(),
        "error_get" => error_get_cases(),
        "config_get" => config_get_cases(),
        "var_get" => var_get_cases(),
        "var_set" => var_set_cases(),
        "http_request" => http_request_cases(),
        "http_status_code" => vec![
            case(
                "no request was made",
                "(call $out_u64 (i64.extend_i32_s (call $http_status_code)))",
            )
            .output(u64_le(0)),
        ],
        "http_headers" => {
            vec![case("no headers", "(call $out_u64 (call $http_headers))").output(u64_le(0))]
        }
        "log_trace" => log_cases("log_trace", LogLevel::Trace),
        "log_debug" => log_cases("log_debug", LogLevel::Debug),
        "log_info" => log_cases("log_info", LogLevel::Info),
        "log_warn" => log_cases("log_warn", LogLevel::Warn),
        "log_error" => log_cases("log_error", LogLevel::Error),
        "get_log_level" => vec![
            case(
                "logs requested: trace",
                "(call $out_u64 (i64.extend_i32_s (call $get_log_level)))",
            )
            .output(u64_le(0)),
            case(
                "logs not requested: off",
                "(call $out_u64 (i64.extend_i32_s (call $get_log_level)))",
            )
            .quiet()
            .output(u64_le(i32::MAX as u64)),
        ],
        "ic_caller" => vec![
            case("the caller", "(call $out_block (call $ic_caller))").output(*b"caller"),
            case(
                "no block left for it",
                format!("{} (drop (call $ic_caller))", blocks_until(BLOCKS)),
            )
            .fails(limit("arena blocks", BLOCKS + 1, BLOCKS)),
            case(
                "no arena bytes left for it",
                format!(
                    "(drop (call $alloc (i64.const {}))) (drop (call $ic_caller))",
                    ARENA - 3
                ),
            )
            .fails(limit("arena bytes", ARENA + 4, ARENA)),
        ],
        "ic_time" => vec![case("the time", "(call $out_u64 (call $ic_time))").output(u64_le(42))],
        "ic_seed" => vec![
            case("32 bytes", "(call $out_u64 (call $length (call $ic_seed)))").output(u64_le(32)),
            case(
                "no block left for it",
                format!("{} (drop (call $ic_seed))", blocks_until(BLOCKS)),
            )
            .fails(limit("arena blocks", BLOCKS + 1, BLOCKS)),
        ],
        "sha256" => sha256_cases(),
        "compare" => compare_cases(),
        other => panic!("host function `{other}` has no hostile cases: add them to tests/abi.rs"),
    }
}

fn alloc_cases() -> Vec<Case> {
    let alloc =
        |what: &str, len: &str| case(what, format!("(drop (call $alloc (i64.const {len})))"));
    vec![
        case(
            "alloc(0) is handle 0",
            "(call $out_u64 (call $alloc (i64.const 0)))",
        )
        .output(u64_le(0)),
        case(
            "the prelude's layout",
            format!(
                "{PRELUDE} (call $out_u64 (i64.add (i64.add (local.get $k)
                  (i64.mul (local.get $a) (i64.const 100)))
                  (i64.add (i64.mul (local.get $b) (i64.const 10000))
                           (i64.mul (local.get $c) (i64.const 1000000)))))"
            ),
        )
        .output(u64_le(1 + 200 + 70_000 + 15_000_000)),
        alloc("alloc(-1)", "-1").fails(limit("arena bytes", u64::MAX, ARENA)),
        alloc("alloc(i64::MIN)", "-9223372036854775808").fails(limit(
            "arena bytes",
            1 << 63,
            ARENA,
        )),
        alloc("alloc(the arena cap)", &ARENA.to_string()).fails(limit("arena bytes", ARENA, ARENA)),
        case(
            "alloc fills the arena, then one byte more",
            format!(
                "(drop (call $alloc (i64.const {}))) (drop (call $alloc (i64.const 1)))",
                ARENA - 1
            ),
        )
        .fails(limit("arena bytes", ARENA + 1, ARENA)),
        case(
            "alloc past the block cap",
            "(loop $l (drop (call $alloc (i64.const 1))) (br $l))",
        )
        .fails(limit("arena blocks", BLOCKS + 1, BLOCKS)),
        case(
            "a freed block is reused, zeroed",
            "(local.set $a (call $fill (i64.const 8) (i32.const 0x41)))
             (local.set $b (call $alloc (i64.const 1)))
             (call $free (local.get $a))
             (local.set $c (call $alloc (i64.const 8)))
             (if (i64.ne (local.get $c) (local.get $a)) (then unreachable))
             (call $output_set (local.get $c) (i64.const 8))",
        )
        .output([0; 8]),
    ]
}

fn free_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, _)| {
            case(
                format!("free({what}) changes nothing"),
                format!(
                    "{PRELUDE} (call $free {handle})
                     (if (i64.ne (call $length (local.get $c)) (i64.const 4)) (then unreachable))
                     (call $out_block (local.get $a))"
                ),
            )
            .output(*b"hello")
        })
        .collect();
    cases.push(
        case(
            "free(input) leaves the input",
            "(call $free (call $input_offset))
             (local.set $a (call $alloc (i64.const 3)))
             (call $store_u8 (local.get $a) (call $input_load_u8 (i64.const 2)))
             (call $output_set (call $input_offset) (call $input_length))",
        )
        .input(b"abc")
        .output(*b"abc"),
    );
    cases.push(
        case(
            "a freed block has length 0",
            "(local.set $a (call $alloc (i64.const 4))) (call $free (local.get $a))
             (call $out_u64 (call $length (local.get $a)))",
        )
        .output(u64_le(0)),
    );
    cases
}

fn length_cases(function: &'static str) -> Vec<Case> {
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, _)| {
            case(
                format!("{function}({what}) is 0"),
                format!("{PRELUDE} (call $out_u64 (call ${function} {handle}))"),
            )
            .output(u64_le(0))
        })
        .collect();
    cases.push(
        case(
            "a block's length",
            format!("{PRELUDE} (call $out_u64 (call ${function} (local.get $a)))"),
        )
        .output(u64_le(5)),
    );
    cases
}

fn load_cases(function: &'static str, n: u64) -> Vec<Case> {
    let load = |offset: &str| match n {
        1 => format!("(call $out_u64 (i64.extend_i32_u (call ${function} {offset})))"),
        _ => format!("(call $out_u64 (call ${function} {offset}))"),
    };
    let value = |bytes: Vec<u8>| {
        let mut word = [0; 8];
        word[..bytes.len()].copy_from_slice(&bytes);
        word.to_vec()
    };
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, offset)| {
            case(
                format!("{function}({what})"),
                format!("{PRELUDE} {}", load(handle)),
            )
            .gives(
                prelude_read(*offset, n)
                    .map(value)
                    .ok_or(oob(function, *offset, n)),
            )
        })
        .collect();
    for (what, offset) in [("-4", u64::MAX - 3), ("-8", u64::MAX - 7)] {
        cases.push(
            case(
                format!("{function}({what}): the range wraps or ends past the arena"),
                format!("{PRELUDE} {}", load(&format!("(i64.const {what})"))),
            )
            .fails(oob(function, offset, n)),
        );
    }
    cases.push(
        case(
            format!("{function} of a block's last byte and one past it"),
            format!(
                "{PRELUDE} (drop (call ${function} (i64.add (local.get $a) (i64.const {}))))
                 {}",
                5 - n.min(5),
                load("(i64.add (local.get $a) (i64.const 5))")
            ),
        )
        .gives(if n == 1 {
            Err(oob(function, 7, 1))
        } else {
            Err(oob(function, 2, 8))
        }),
    );
    cases.push(
        case(
            format!("{function} across two adjacent blocks"),
            format!(
                "(local.set $x (call $alloc (i64.const 8))) (local.set $y (call $alloc (i64.const 8)))
                 {}",
                load("(i64.add (local.get $x) (i64.const 7))")
            ),
        )
        .gives(if n == 1 {
            Ok(u64_le(0))
        } else {
            Err(oob(function, 8, 8))
        }),
    );
    cases.push(
        case(
            format!("{function} of the input block"),
            load("(call $input_offset)"),
        )
        .input(b"greeting")
        .output(if n == 1 {
            u64_le(u64::from(b'g'))
        } else {
            b"greeting".to_vec()
        }),
    );
    cases
}

fn store_cases(function: &'static str, n: u64) -> Vec<Case> {
    // store_u8 keeps the value's low byte.
    let (value, bytes): (&str, Vec<u8>) = match n {
        1 => ("(i32.const 0x158)", b"X".to_vec()),
        _ => ("(i64.const 0x5a59585756555453)", b"STUVWXYZ".to_vec()),
    };
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, offset)| {
            let expect = match prelude_read(*offset, n) {
                Some(_) => {
                    // Only "inside a block" is inside one: `$a` ("hello").
                    let mut hello = b"hello".to_vec();
                    let at = (*offset - 2) as usize;
                    hello[at..at + n as usize].copy_from_slice(&bytes);
                    Ok(hello)
                }
                None => Err(oob(function, *offset, n)),
            };
            case(
                format!("{function}({what})"),
                format!(
                    "{PRELUDE} (call ${function} {handle} {value}) (call $out_block (local.get $a))"
                ),
            )
            .gives(expect)
        })
        .collect();
    cases.push(
        case(
            format!("{function}(-4): the range wraps"),
            format!("{PRELUDE} (call ${function} (i64.const -4) {value})"),
        )
        .fails(oob(function, u64::MAX - 3, n)),
    );
    cases.push(
        case(
            format!("{function} ending past a block"),
            format!(
                "{PRELUDE} (call ${function} (i64.add (local.get $a) (i64.const {})) {value})",
                if n == 1 { 5 } else { 0 }
            ),
        )
        .fails(if n == 1 {
            oob(function, 7, 1)
        } else {
            oob(function, 2, 8)
        }),
    );
    cases.push(
        case(
            format!("{function} across two adjacent blocks"),
            format!(
                "(local.set $x (call $alloc (i64.const 8))) (local.set $y (call $alloc (i64.const 8)))
                 (call ${function} (i64.add (local.get $x) (i64.const 4)) {value})"
            ),
        )
        .gives(if n == 1 { Ok(Vec::new()) } else { Err(oob(function, 5, 8)) }),
    );
    cases.push(
        case(
            format!("{function} into the input block"),
            format!(
                "(call ${function} (call $input_offset) {value})
                 (call $output_set (call $input_offset) (call $input_length))"
            ),
        )
        .input(b"abcdefgh")
        .output(if n == 1 {
            b"Xbcdefgh".to_vec()
        } else {
            bytes.clone()
        }),
    );
    cases
}

fn input_length_cases() -> Vec<Case> {
    let length = "(call $out_u64 (call $input_length))";
    vec![
        case("empty input", length).output(u64_le(0)),
        case("3 bytes", length).input(b"abc").output(u64_le(3)),
        case(
            "after free(input)",
            format!("(call $free (call $input_offset)) {length}"),
        )
        .input(b"abc")
        .output(u64_le(3)),
        case("64 KiB + 1", length)
            .input(&[7; 65_537])
            .output(u64_le(65_537)),
        case("an input larger than the arena", length)
            .input(&vec![7; ARENA as usize])
            .fails(limit("arena bytes", ARENA + 1, ARENA)),
    ]
}

fn input_offset_cases() -> Vec<Case> {
    let offset = "(call $out_u64 (call $input_offset))";
    vec![
        case("empty input: 0", offset).output(u64_le(0)),
        case("the first block", offset)
            .input(b"abc")
            .output(u64_le(1)),
        case(
            "unchanged by allocations and free(input)",
            format!(
                "(drop (call $alloc (i64.const 5))) (call $free (call $input_offset)) {offset}"
            ),
        )
        .input(b"abc")
        .output(u64_le(1)),
    ]
}

fn input_load_cases(function: &'static str, n: u64) -> Vec<Case> {
    // Our documented semantics: the bytes left (at most n), zero-padded; past the end, 0.
    let model = |input: &[u8], offset: u64| {
        let mut word = [0u8; 8];
        if let Ok(start) = usize::try_from(offset)
            && start < input.len()
        {
            let end = (start + n as usize).min(input.len());
            word[..end - start].copy_from_slice(&input[start..end]);
        }
        word.to_vec()
    };
    let load = |offset: &str| match n {
        1 => format!("(call $out_u64 (i64.extend_i32_u (call ${function} (i64.const {offset}))))"),
        _ => format!("(call $out_u64 (call ${function} (i64.const {offset})))"),
    };
    let input = b"abcdefghij";
    let mut cases: Vec<Case> = INPUT_OFFSETS
        .iter()
        .map(|(literal, offset)| {
            case(format!("{function}({literal}) of 10 bytes"), load(literal))
                .input(input)
                .output(model(input, *offset))
        })
        .collect();
    cases.push(case(format!("{function}(0) of no input"), load("0")).output(u64_le(0)));
    cases.push(
        case(format!("{function}(0) of 5 bytes"), load("0"))
            .input(b"ABCDE")
            .output(model(b"ABCDE", 0)),
    );
    cases.push(
        case(
            format!("{function} after free(input)"),
            format!("(call $free (call $input_offset)) {}", load("1")),
        )
        .input(input)
        .output(model(input, 1)),
    );
    cases
}

fn output_set_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (what, handle, offset) in HOSTILE {
        cases.push(
            case(
                format!("output_set({what}, 0) is an empty output"),
                format!("{PRELUDE} (call $output_set {handle} (i64.const 0))"),
            )
            .output(Vec::new()),
        );
        cases.push(
            case(
                format!("output_set({what}, 1)"),
                format!("{PRELUDE} (call $output_set {handle} (i64.const 1))"),
            )
            .gives(prelude_read(*offset, 1).ok_or(oob("output_set", *offset, 1))),
        );
    }
    cases.extend([
        case(
            "output_set(a, -1): over the output cap",
            format!("{PRELUDE} (call $output_set (local.get $a) (i64.const -1))"),
        )
        .fails(limit("output bytes", u64::MAX, OUTPUT)),
        case(
            "output_set(a, i64::MIN): over the output cap",
            format!("{PRELUDE} (call $output_set (local.get $a) (i64.const -9223372036854775808))"),
        )
        .fails(limit("output bytes", 1 << 63, OUTPUT)),
        case(
            "output_set(a, 6) past a 5-byte block",
            format!("{PRELUDE} (call $output_set (local.get $a) (i64.const 6))"),
        )
        .fails(oob("output_set", 2, 6)),
        case(
            "output_set(-1, 2): the range wraps",
            format!("{PRELUDE} (call $output_set (i64.const -1) (i64.const 2))"),
        )
        .fails(oob("output_set", u64::MAX, 2)),
        case(
            "output_set over two adjacent blocks",
            "(local.set $x (call $alloc (i64.const 8))) (local.set $y (call $alloc (i64.const 8)))
             (call $output_set (local.get $x) (i64.const 16))",
        )
        .fails(oob("output_set", 1, 16)),
        case(
            "output_set(a + 1, 4): part of a block",
            format!(
                "{PRELUDE} (call $output_set (i64.add (local.get $a) (i64.const 1)) (i64.const 4))"
            ),
        )
        .output(*b"ello"),
        case(
            "an output of exactly the cap",
            format!("(call $output_set (call $alloc (i64.const {OUTPUT})) (i64.const {OUTPUT}))"),
        )
        .output(vec![0; OUTPUT as usize]),
        case(
            "an output one byte over the cap",
            format!(
                "(call $output_set (call $alloc (i64.const {0})) (i64.const {0}))",
                OUTPUT + 1
            ),
        )
        .fails(limit("output bytes", OUTPUT + 1, OUTPUT)),
        case(
            "over the cap with no block there",
            format!(
                "(call $output_set (i64.const 1) (i64.const {}))",
                OUTPUT + 1
            ),
        )
        .fails(limit("output bytes", OUTPUT + 1, OUTPUT)),
        case(
            "the last output_set wins",
            format!(
                "{PRELUDE} (call $output_set (local.get $a) (i64.const 5))
                 (call $output_set (i64.add (local.get $a) (i64.const 1)) (i64.const 2))"
            ),
        )
        .output(*b"el"),
        case(
            "output_set(0, 0) clears an output",
            format!(
                "{PRELUDE} (call $output_set (local.get $a) (i64.const 5))
                 (call $output_set (i64.const 0) (i64.const 0))"
            ),
        )
        .output(Vec::new()),
    ]);
    cases
}

fn error_set_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, offset)| {
            let expect = match offset {
                0 => Ok(Vec::new()),
                _ => Err(oob("error_set", *offset, 0)),
            };
            case(
                format!("error_set({what})"),
                format!("{PRELUDE} (call $error_set {handle})"),
            )
            .gives(expect)
        })
        .collect();
    let plugin_error = |code, message: &str| InvokeError::PluginError {
        code,
        message: message.into(),
    };
    let mut cut = "a".to_owned();
    cut.push_str(&"é".repeat((ERROR - 2) / 2));
    cut.push('\u{FFFD}');
    cases.extend([
        case(
            "an error with return code 0 fails the call",
            format!("{PRELUDE} (call $error_set (local.get $a))"),
        )
        .fails(plugin_error(0, "hello")),
        case(
            "an error with return code 7",
            format!("{PRELUDE} (call $error_set (local.get $a))"),
        )
        .code(7)
        .fails(plugin_error(7, "hello")),
        case("return code 3 without an error", "(call $error_set (i64.const 0))").code(3).fails(plugin_error(3, "")),
        case(
            "error_set(0) clears the error",
            format!("{PRELUDE} (call $error_set (local.get $a)) (call $error_set (i64.const 0))"),
        )
        .output(Vec::new()),
        case(
            "an error block freed before return is ignored",
            format!("{PRELUDE} (call $error_set (local.get $a)) (call $free (local.get $a))"),
        )
        .output(Vec::new()),
        case(
            "a freed error block reused by a new block: the new block is the message",
            format!(
                "{PRELUDE} (call $error_set (local.get $a)) (call $free (local.get $a))
                 (local.set $x (call $block (i32.const 64) (i32.const 4)))
                 (if (i64.ne (local.get $x) (local.get $a)) (then unreachable))"
            ),
        )
        .fails(plugin_error(0, "nope")),
        case(
            "a 20000-byte message is cut to 16 KiB",
            "(call $error_set (call $fill (i64.const 20000) (i32.const 0x78)))",
        )
        .fails(plugin_error(0, &"x".repeat(ERROR))),
        case(
            "the cut may split a character",
            "(local.set $a (call $alloc (i64.const 20001)))
             (call $store_u8 (local.get $a) (i32.const 0x61))
             (block $done (loop $next
               (br_if $done (i64.ge_u (local.get $i) (i64.const 10000)))
               (call $store_u8 (i64.add (local.get $a) (i64.add (i64.const 1) (i64.shl (local.get $i) (i64.const 1)))) (i32.const 0xc3))
               (call $store_u8 (i64.add (local.get $a) (i64.add (i64.const 2) (i64.shl (local.get $i) (i64.const 1)))) (i32.const 0xa9))
               (local.set $i (i64.add (local.get $i) (i64.const 1)))
               (br $next)))
             (call $error_set (local.get $a))",
        )
        .fails(plugin_error(0, &cut)),
        case(
            "a message that is not UTF-8",
            "(call $error_set (call $block (i32.const 0) (i32.const 2)))",
        )
        .fails(plugin_error(0, "\u{FFFD}\u{FFFD}")),
        case(
            "an error and an output: the error wins",
            format!(
                "{PRELUDE} (call $output_set (local.get $a) (i64.const 5))
                 (call $error_set (local.get $k))"
            ),
        )
        .fails(plugin_error(0, "k")),
    ]);
    cases
}

fn error_get_cases() -> Vec<Case> {
    vec![
        case(
            "0 before any error_set",
            "(call $out_u64 (call $error_get))",
        )
        .output(u64_le(0)),
        case(
            "the handle error_set was given",
            format!(
                "{PRELUDE} (call $error_set (local.get $a)) (local.set $x (call $error_get))
                 (call $error_set (i64.const 0)) (call $out_u64 (local.get $x))"
            ),
        )
        .output(u64_le(2)),
        case(
            "0 after error_set(0)",
            format!(
                "{PRELUDE} (call $error_set (local.get $a)) (call $error_set (i64.const 0))
                 (call $out_u64 (call $error_get))"
            ),
        )
        .output(u64_le(0)),
    ]
}

fn config_get_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, offset)| {
            let expect = match offset {
                0 => Ok(b"root".to_vec()),
                _ => Err(oob("config_get", *offset, 0)),
            };
            case(
                format!("config_get({what})"),
                format!("{PRELUDE} (call $out_block (call $config_get {handle}))"),
            )
            .gives(expect)
        })
        .collect();
    let get = |ptr: u32, len: u32| {
        format!(
            "(call $out_u64 (call $length (call $config_get (call $block (i32.const {ptr}) (i32.const {len})))))"
        )
    };
    cases.extend([
        case(
            "a key",
            "(call $out_block (call $config_get (call $block (i32.const 32) (i32.const 8))))",
        )
        .output(*b"hello"),
        case("a missing key gives 0", get(64, 4)).output(u64_le(0)),
        case("an empty value gives 0", get(96, 5)).output(u64_le(0)),
        case(
            "a key that is not UTF-8",
            "(drop (call $config_get (call $block (i32.const 0) (i32.const 2))))",
        )
        .fails(trap(HostTrap::NotUtf8("config_get"))),
        case(
            "a 2 MiB key",
            "(call $out_u64 (call $config_get (call $fill (i64.const 2097152) (i32.const 0x61))))",
        )
        .output(u64_le(0)),
        case(
            "no block left for the value",
            format!(
                "(local.set $k (call $block (i32.const 32) (i32.const 8))) {}
                 (drop (call $config_get (local.get $k)))",
                blocks_until(BLOCKS - 1)
            ),
        )
        .fails(limit("arena blocks", BLOCKS + 1, BLOCKS)),
    ]);
    cases
}

fn var_get_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, offset)| {
            let expect = match offset {
                0 => Ok(u64_le(0)),
                _ => Err(oob("var_get", *offset, 0)),
            };
            case(
                format!("var_get({what})"),
                format!("{PRELUDE} (call $out_u64 (call $var_get {handle}))"),
            )
            .gives(expect)
        })
        .collect();
    cases.extend([
        case(
            "var_get(0) after var_set(0, v)",
            format!(
                "{PRELUDE} (call $var_set (i64.const 0) (local.get $a))
                 (call $out_block (call $var_get (i64.const 0)))"
            ),
        )
        .output(*b"hello"),
        case(
            "a missing key gives 0",
            "(call $out_u64 (call $var_get (call $block (i32.const 64) (i32.const 4))))",
        )
        .output(u64_le(0)),
        case(
            "a key that is not UTF-8",
            "(drop (call $var_get (call $block (i32.const 0) (i32.const 2))))",
        )
        .fails(trap(HostTrap::NotUtf8("var_get"))),
        case(
            "the result is a copy",
            format!(
                "{PRELUDE} (call $var_set (local.get $k) (local.get $a))
                 (call $store_u8 (call $var_get (local.get $k)) (i32.const 0x4a))
                 (call $out_block (call $var_get (local.get $k)))"
            ),
        )
        .output(*b"hello")
        .var_k(*b"hello"),
        case(
            "no block left for the value",
            format!(
                "{PRELUDE} (call $var_set (local.get $k) (local.get $a)) {}
                 (drop (call $var_get (local.get $k)))",
                blocks_until(BLOCKS - 3)
            ),
        )
        .fails(limit("arena blocks", BLOCKS + 1, BLOCKS)),
    ]);
    cases
}

fn var_set_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (what, handle, offset) in HOSTILE {
        let expect = match offset {
            0 => Ok(Vec::new()),
            _ => Err(oob("var_set", *offset, 0)),
        };
        cases.push(
            case(
                format!("var_set(key {what}, a)"),
                format!("{PRELUDE} (call $var_set {handle} (local.get $a))"),
            )
            .gives(expect.clone()),
        );
        cases.push(
            case(
                format!("var_set(k, value {what})"),
                format!(
                    "{PRELUDE} (call $var_set (local.get $k) (local.get $a))
                     (call $var_set (local.get $k) {handle})"
                ),
            )
            .gives(expect),
        );
    }
    let fill = |len: u64| format!("(call $fill (i64.const {len}) (i32.const 0))");
    cases.extend([
        case("var_set(0, 0) deletes the empty key", "(call $var_set (i64.const 0) (i64.const 0))"),
        case(
            "set",
            format!("{PRELUDE} (call $var_set (local.get $k) (local.get $a))"),
        )
        .var_k(*b"hello"),
        case(
            "set, then delete",
            format!(
                "{PRELUDE} (call $var_set (local.get $k) (local.get $a))
                 (call $var_set (local.get $k) (i64.const 0))"
            ),
        ),
        case(
            "key and value of exactly the cap",
            format!(
                "{PRELUDE} (call $var_set (local.get $k) {})",
                fill(VARS - 1)
            ),
        )
        .var_k(vec![0; VARS as usize - 1]),
        case(
            "one byte over the cap",
            format!("{PRELUDE} (call $var_set (local.get $k) {})", fill(VARS)),
        )
        .fails(limit("var bytes", VARS + 1, VARS)),
        case(
            "replacing a var counts it once",
            format!(
                "{PRELUDE} (call $var_set (local.get $k) {0}) (call $var_set (local.get $k) {0})",
                fill(VARS - 1)
            ),
        )
        .var_k(vec![0; VARS as usize - 1]),
        case(
            "two vars over the cap: the call's vars roll back",
            format!(
                "{PRELUDE} (call $var_set (local.get $k) {0}) (call $var_set (i64.const 0) {0})",
                fill(600_000)
            ),
        )
        .fails(limit("var bytes", 1_200_001, VARS)),
        case(
            "a key over the cap",
            format!("{PRELUDE} (call $var_set {} (local.get $a))", fill(2 * VARS)),
        )
        .fails(limit("var bytes", 2 * VARS + 5, VARS)),
        case(
            "a key that is not UTF-8",
            format!(
                "{PRELUDE} (call $var_set (call $block (i32.const 0) (i32.const 2)) (local.get $a))"
            ),
        )
        .fails(trap(HostTrap::NotUtf8("var_set"))),
        case(
            "a failed call's var_set rolls back",
            format!(
                "{PRELUDE} (call $var_set (local.get $k) (local.get $a)) (call $error_set (local.get $a))"
            ),
        )
        .fails(InvokeError::PluginError {
            code: 0,
            message: "hello".into(),
        }),
    ]);
    cases
}

fn http_request_cases() -> Vec<Case> {
    let refused = trap(HostTrap::Unavailable("http_request"));
    let request = |what: &str, req: &str, body: &str| {
        case(
            what,
            format!("{PRELUDE} (drop (call $http_request {req} {body}))"),
        )
        .fails(refused.clone())
    };
    vec![
        request("(0, 0)", "(i64.const 0)", "(i64.const 0)"),
        request("(-1, -1)", "(i64.const -1)", "(i64.const -1)"),
        request(
            "a well-formed request",
            "(call $block (i32.const 128) (i32.const 29))",
            "(local.get $a)",
        ),
    ]
}

fn log_cases(function: &'static str, level: LogLevel) -> Vec<Case> {
    let mut cases: Vec<Case> = HOSTILE
        .iter()
        .map(|(what, handle, offset)| {
            let c = case(
                format!("{function}({what})"),
                format!("{PRELUDE} (call ${function} {handle})"),
            );
            match offset {
                0 => c.logged(vec![line(level, "")]),
                _ => c.fails(oob(function, *offset, 0)),
            }
        })
        .collect();
    let kept = (LOGS - LINE_OVERHEAD) as usize;
    cases.extend([
        case(
            "a message",
            format!("{PRELUDE} (call ${function} (local.get $a))"),
        )
        .logged(vec![line(level, "hello")]),
        case(
            "a message that is not UTF-8",
            format!("(call ${function} (call $block (i32.const 0) (i32.const 2)))"),
        )
        .logged(vec![line(level, "\u{FFFD}\u{FFFD}")]),
        case(
            "a line of the whole cap is kept; the next is dropped",
            format!(
                "(call ${function} (call $fill (i64.const {kept}) (i32.const 0x78)))
                 (call ${function} (i64.const 0))"
            ),
        )
        .logged(vec![line(level, "x".repeat(kept))]),
        case(
            "a line over the cap is dropped",
            format!(
                "(call ${function} (call $fill (i64.const {}) (i32.const 0x78)))",
                kept + 1
            ),
        ),
        case(
            "empty lines count against the cap",
            format!(
                "(block $done (loop $next
                   (br_if $done (i64.ge_u (local.get $i) (i64.const 5000)))
                   (call ${function} (i64.const 0))
                   (local.set $i (i64.add (local.get $i) (i64.const 1)))
                   (br $next)))"
            ),
        )
        .logged(vec![line(level, ""); (LOGS / LINE_OVERHEAD) as usize]),
        case(
            "logs not requested: nothing kept",
            format!("{PRELUDE} (call ${function} (local.get $a))"),
        )
        .quiet(),
    ]);
    cases
}

fn sha256_cases() -> Vec<Case> {
    let hash = |ptr: u32, len: u32, out: u32| {
        format!(
            "(call $sha256 (i32.const {}) (i32.const {}) (i32.const {}))
             (call $output_set (call $block (i32.const {}) (i32.const 32)) (i64.const 32))",
            ptr as i32, len as i32, out as i32, out as i32
        )
    };
    let mut cases: Vec<Case> = OUTSIDE
        .iter()
        .map(|&(ptr, len)| {
            case(format!("sha256({ptr}, {len}, 256)"), hash(ptr, len, 256))
                .fails(outside("sha256", ptr, len))
        })
        .collect();
    cases.extend([
        case("hash of \"hello\"", hash(48, 5, 256)).output(sha256(b"hello")),
        case("an empty range", hash(0, 0, 256)).output(sha256(b"")),
        case("an empty range at the end of memory", hash(65_536, 0, 256)).output(sha256(b"")),
        case("the digest at the end of memory", hash(48, 5, 65_504)).output(sha256(b"hello")),
        case(
            "the digest one byte past memory",
            "(call $sha256 (i32.const 48) (i32.const 5) (i32.const 65505))",
        )
        .fails(outside("sha256", 65_505, 32)),
        case(
            "the digest at -1",
            "(call $sha256 (i32.const 48) (i32.const 5) (i32.const -1))",
        )
        .fails(outside("sha256", u32::MAX, 32)),
        case(
            "no memory",
            "(call $sha256 (i32.const 0) (i32.const 0) (i32.const 0))",
        )
        .no_memory()
        .fails(trap(HostTrap::NoMemory("sha256"))),
    ]);
    cases
}

fn compare_cases() -> Vec<Case> {
    let compare = |a: u32, b: u32, len: u32| {
        format!(
            "(call $out_u64 (i64.extend_i32_s (call $compare (i32.const {}) (i32.const {}) (i32.const {}))))",
            a as i32, b as i32, len as i32
        )
    };
    let mut cases: Vec<Case> = OUTSIDE
        .iter()
        .flat_map(|&(ptr, len)| {
            [
                case(format!("compare({ptr}, 0, {len})"), compare(ptr, 0, len))
                    .fails(outside("compare", ptr, len)),
                case(format!("compare(0, {ptr}, {len})"), compare(0, ptr, len))
                    .fails(outside("compare", ptr, len)),
            ]
        })
        .collect();
    cases.extend([
        case("abc < abd", compare(80, 88, 3)).output(u64_le(-1i64 as u64)),
        case("abd > abc", compare(88, 80, 3)).output(u64_le(1)),
        case("ab = ab", compare(80, 88, 2)).output(u64_le(0)),
        case("empty ranges", compare(80, 88, 0)).output(u64_le(0)),
        case(
            "empty ranges at the end of memory",
            compare(65_536, 65_536, 0),
        )
        .output(u64_le(0)),
        case(
            "no memory",
            "(drop (call $compare (i32.const 0) (i32.const 0) (i32.const 0)))",
        )
        .no_memory()
        .fails(trap(HostTrap::NoMemory("compare"))),
    ]);
    cases
}

/// Installs `case` as `plugin`, calls `run`, and checks the outcome, that the plugin still
/// answers, and the var "k". Returns the mismatches.
fn check(
    engine: &mut Engine<VectorMemory>,
    plugin: &str,
    function: &str,
    case: &Case,
) -> Vec<String> {
    let what = format!("{function}: {}", case.what);
    install(
        engine,
        plugin,
        &case_module(&case.body, case.code, case.memory),
    );
    let mut problems = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        invoke(engine, plugin, "run", &case.input, None, case.logs)
    }));
    let Ok(result) = result else {
        panic!("{what}: the engine panicked");
    };
    let (got, logs) = match result {
        Ok(outcome) => (Ok(outcome.output), outcome.logs),
        Err(failure) => (Err(failure.error), failure.logs),
    };
    if got != case.expect {
        let describe = |r: &Result<Vec<u8>, InvokeError>| match r {
            Ok(output) => format!("Ok({})", show(output)),
            Err(e) => format!("Err({e:?})"),
        };
        problems.push(format!(
            "{what}: expected {}, got {}",
            describe(&case.expect),
            describe(&got)
        ));
    }
    if logs != case.expect_logs {
        let describe = |logs: &[LogEntry]| {
            format!(
                "{} lines {:?}",
                logs.len(),
                logs.iter()
                    .take(3)
                    .map(|l| (l.level, show(l.message.as_bytes())))
                    .collect::<Vec<_>>()
            )
        };
        problems.push(format!(
            "{what}: expected logs {}, got {}",
            describe(&case.expect_logs),
            describe(&logs)
        ));
    }
    match invoke(engine, plugin, "ok", b"still alive", None, true) {
        Ok(outcome) if outcome.output == b"still alive" => {}
        other => problems.push(format!("{what}: the next call gave {other:?}")),
    }
    match invoke(engine, plugin, "var_k", b"", None, true) {
        Ok(outcome) if outcome.output == case.var_k => {}
        Ok(outcome) => problems.push(format!(
            "{what}: var k is {}, expected {}",
            show(&outcome.output),
            show(&case.var_k)
        )),
        Err(f) => problems.push(format!("{what}: var_k failed: {f}")),
    }
    engine.uninstall(plugin).expect("uninstall");
    problems
}

#[test]
fn every_host_function_survives_hostile_arguments() {
    let mut engine = engine();
    let mut problems = Vec::new();
    let mut count = 0;
    for function in IMPORTS {
        let cases = cases(function.name);
        assert!(!cases.is_empty(), "{} has no cases", function.name);
        for case in &cases {
            assert!(
                case.body.contains(&format!("call ${} ", function.name))
                    || case.body.contains(&format!("call ${})", function.name)),
                "{}: case `{}` does not call it",
                function.name,
                case.what
            );
            let plugin = format!("case-{count}");
            problems.extend(check(&mut engine, &plugin, function.name, case));
            count += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {count} cases failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!(
        "{count} hostile cases over {} host functions",
        IMPORTS.len()
    );
}

/// `ic_seed` is public and deterministic: the sha256 of the plugin's name, its committed calls,
/// the time and the caller. A committed call advances it; a failed call and a dry run do not.
#[test]
fn the_seed_is_the_hash_of_the_name_the_committed_calls_the_time_and_the_caller() {
    let mut engine = engine();
    install(
        &mut engine,
        "seeded",
        &case_module("(call $out_block (call $ic_seed))", 0, true),
    );
    install(
        &mut engine,
        "failing",
        &case_module("(call $out_block (call $ic_seed))", 1, true),
    );
    let expected = |name: &str, calls: u64| -> Vec<u8> {
        let facts = [
            name.as_bytes(),
            &calls.to_le_bytes(),
            &42u64.to_le_bytes(),
            caller().as_slice(),
        ]
        .concat();
        Sha256::digest(facts).to_vec()
    };
    assert_eq!(ok(&mut engine, "seeded", "run", b""), expected("seeded", 0));
    assert_eq!(
        ok(&mut engine, "seeded", "run", b""),
        expected("seeded", 1),
        "a committed call advances the seed"
    );
    let dry = engine
        .invoke(InvokeRequest {
            plugin: "seeded",
            function: "run",
            input: b"",
            fuel: None,
            caller: caller(),
            now_ns: 42,
            commit: false,
            logs: false,
            instruction_limit: None,
        })
        .expect("dry run");
    assert_eq!(dry.output, expected("seeded", 2));
    assert_eq!(
        ok(&mut engine, "seeded", "run", b""),
        expected("seeded", 2),
        "a dry run leaves it"
    );
    for _ in 0..2 {
        assert!(matches!(
            err(&mut engine, "failing", "run", b""),
            InvokeError::PluginError { .. }
        ));
    }
    assert_eq!(engine.get("failing").map(|r| r.calls), Some(0));
}

#[test]
fn a_module_importing_every_host_function_installs_and_runs() {
    let mut engine = engine();
    install(&mut engine, "all", &case_module("", 0, true));
    assert_eq!(
        engine.get("all").map(|r| r.functions),
        Some(vec!["ok".into(), "run".into(), "var_k".into()])
    );
    assert_eq!(ok(&mut engine, "all", "run", b""), b"");
    still_answers(&mut engine, "all");
    // Each import with another signature is refused, naming it.
    for f in IMPORTS {
        let (params, results) = match f.results.is_empty() {
            true => (types(f.params), "i32".to_owned()),
            false => (types(f.params), String::new()),
        };
        let text = format!(
            r#"(module (import "{}" "{}" (func (param {params}) (result {results})))
                 (func (export "run") (result i32) (i32.const 0)))"#,
            f.module, f.name
        );
        let wasm = wat::parse_str(&text).expect("WAT");
        let refused = engine.install(
            InstallRequest {
                name: "wrong",
                wasm: &wasm,
                config: BTreeMap::new(),
                owner: owner(),
                invoke_policy: InvokePolicy::Public,
                fuel_limit: None,
            },
            1,
        );
        match refused {
            Err(InstallError::ForbiddenImport {
                module,
                name,
                reason,
            }) => assert_eq!(
                (module.as_str(), name.as_str(), reason.as_str()),
                (f.module, f.name, "wrong signature")
            ),
            other => panic!("{}: {other:?}", f.name),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Extism compatibility
// ---------------------------------------------------------------------------------------------

/// Extism's `consume.wasm` (extism/plugins consume.wat), as disassembled.
const CONSUME: &str = r#"(module
  (type (;0;) (func (result i64)))
  (type (;1;) (func (param i64) (result i64)))
  (type (;2;) (func (param i64) (result i32)))
  (type (;3;) (func (param i64 i64)))
  (type (;4;) (func (param i64 i32)))
  (type (;5;) (func (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (;0;) (type 0)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (;1;) (type 1)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (;2;) (type 2)))
  (import "extism:host/env" "store_u64" (func $store_u64 (;3;) (type 3)))
  (import "extism:host/env" "store_u8" (func $store_u8 (;4;) (type 4)))
  (import "extism:host/env" "alloc" (func $alloc (;5;) (type 1)))
  (import "extism:host/env" "output_set" (func $output_set (;6;) (type 3)))
  (memory (;0;) 0)
  (export "memory" (memory 0))
  (export "consume" (func 7))
  (func (;7;) (type 5) (result i32)
    (local $len i64) (local $offset i64) (local $len64 i64) (local $output i64)
    i64.const 0
    local.set $offset
    call $input_length
    local.set $len
    local.get $len
    i64.const 16
    i64.shr_u
    local.get $len
    i64.const 65535
    i64.and
    i64.const 0
    i64.ne
    i64.extend_i32_u
    i64.add
    i32.wrap_i64
    memory.grow
    drop
    local.get $len
    i64.const 16
    i64.shr_u
    i64.const 16
    i64.shl
    local.set $len64
    i64.const 0
    call $alloc
    local.set $output
    local.get $output
    i64.const 0
    call $output_set
    loop $load_u64s
      local.get $offset
      i32.wrap_i64
      local.get $offset
      call $input_load_u64
      i64.store
      local.get $offset
      i64.const 8
      i64.add
      local.set $offset
      local.get $offset
      local.get $len64
      i64.lt_u
      br_if $load_u64s
    end
    local.get $len64
    local.get $len
    i64.ne
    if ;; label = @1
      loop $load_u8s
        local.get $offset
        i32.wrap_i64
        local.get $offset
        call $input_load_u8
        i32.store8
        i64.const 1
        local.get $offset
        i64.add
        local.set $offset
        local.get $offset
        local.get $len
        i64.lt_u
        br_if $load_u8s
      end
    end
    i32.const 0
  )
)"#;

/// Extism's `echo.wasm` (extism/plugins echo.wat), as disassembled: `output_set` before it
/// writes the output.
const ECHO: &str = r#"(module
  (type (;0;) (func (result i64)))
  (type (;1;) (func (param i64) (result i64)))
  (type (;2;) (func (param i64) (result i32)))
  (type (;3;) (func (param i64 i64)))
  (type (;4;) (func (param i64 i32)))
  (type (;5;) (func (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (;0;) (type 0)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (;1;) (type 1)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (;2;) (type 2)))
  (import "extism:host/env" "store_u64" (func $store_u64 (;3;) (type 3)))
  (import "extism:host/env" "store_u8" (func $store_u8 (;4;) (type 4)))
  (import "extism:host/env" "alloc" (func $alloc (;5;) (type 1)))
  (import "extism:host/env" "output_set" (func $output_set (;6;) (type 3)))
  (memory (;0;) 0)
  (export "memory" (memory 0))
  (export "echo" (func 7))
  (func (;7;) (type 5) (result i32)
    (local $len i64) (local $offset i64) (local $len64 i64) (local $output i64)
    i64.const 0
    local.set $offset
    call $input_length
    local.set $len
    local.get $len
    i64.const 16
    i64.shr_u
    local.get $len
    i64.const 65535
    i64.and
    i64.const 0
    i64.ne
    i64.extend_i32_u
    i64.add
    i32.wrap_i64
    memory.grow
    drop
    local.get $len
    i64.const 16
    i64.shr_u
    i64.const 16
    i64.shl
    local.set $len64
    local.get $len
    call $alloc
    local.set $output
    local.get $output
    local.get $len
    call $output_set
    loop $load_u64s
      local.get $offset
      i32.wrap_i64
      local.get $offset
      call $input_load_u64
      i64.store
      local.get $offset
      i64.const 8
      i64.add
      local.set $offset
      local.get $offset
      local.get $len64
      i64.lt_u
      br_if $load_u64s
    end
    local.get $len64
    local.get $len
    i64.ne
    if ;; label = @1
      loop $load_u8s
        local.get $offset
        i32.wrap_i64
        local.get $offset
        call $input_load_u8
        i32.store8
        i64.const 1
        local.get $offset
        i64.add
        local.set $offset
        local.get $offset
        local.get $len
        i64.lt_u
        br_if $load_u8s
      end
    end
    i64.const 0
    local.set $offset
    loop $write_u64s
      local.get $output
      local.get $offset
      i64.add
      local.get $offset
      i32.wrap_i64
      i64.load
      call $store_u64
      i64.const 8
      local.get $offset
      i64.add
      local.set $offset
      local.get $offset
      local.get $len64
      i64.lt_u
      br_if $write_u64s
    end
    local.get $len64
    local.get $len
    i64.ne
    if ;; label = @1
      loop $write_u8s
        local.get $output
        local.get $offset
        i64.add
        local.get $offset
        i32.wrap_i64
        i32.load8_u
        call $store_u8
        local.get $offset
        i32.wrap_i64
        local.get $offset
        call $input_load_u8
        i32.store8
        i64.const 1
        local.get $offset
        i64.add
        local.set $offset
        local.get $offset
        local.get $len
        i64.lt_u
        br_if $write_u8s
      end
    end
    i32.const 0
  )
)"#;

/// Extism's `allocations.wasm` (c-pdk example), as disassembled: 10,000 blocks of 10..10,009
/// bytes, every third freed.
const ALLOCATIONS: &str = r#"(module
  (type (;0;) (func (param i64) (result i64)))
  (type (;1;) (func (param i64)))
  (type (;2;) (func (result i32)))
  (import "extism:host/env" "alloc" (func (;0;) (type 0)))
  (import "extism:host/env" "free" (func (;1;) (type 1)))
  (memory (;0;) 2)
  (export "memory" (memory 0))
  (export "allocations" (func 2))
  (func (;2;) (type 2) (result i32)
    (local i64 i64)
    loop ;; label = @1
      local.get 0
      i64.const 10
      i64.add
      call 0
      local.set 1
      local.get 0
      i32.wrap_i64
      i32.const 65535
      i32.and
      i32.const 3
      i32.rem_u
      i32.eqz
      if ;; label = @2
        local.get 1
        call 1
      end
      local.get 0
      i64.const 1
      i64.add
      local.tee 0
      i64.const 10000
      i64.ne
      br_if 0 (;@1;)
    end
    i32.const 0
  )
)"#;

/// Adds an `ok` export (echo through the ABI) to a module that imports `$input_length`,
/// `$alloc`, `$input_load_u8`, `$store_u8` and `$output_set` (added at the end: the verbatim
/// modules refer to their functions by index).
fn with_ok(module: &str) -> String {
    let body = module.trim_end().strip_suffix(')').expect("a module");
    format!(
        r#"{body}
  (func (export "ok") (result i32)
    (local $h i64) (local $i i64) (local $n i64)
    (local.set $n (call $input_length))
    (local.set $h (call $alloc (local.get $n)))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $h) (local.get $i)) (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (call $output_set (local.get $h) (local.get $n))
    (i32.const 0)))"#
    )
}

/// The imports [`with_ok`] needs besides `$alloc` and `$output_set`.
const OK_IMPORTS: &str = r#"
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))"#;

const EXTISM_LENGTHS: [usize; 8] = [0, 1, 7, 8, 9, 100, 65_536, 65_537];

fn input_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// Issue 620 (Extism's `empty.wasm`): `log_info(alloc(0))` logs an empty line and
/// `output_set(alloc(0), 0)` is an empty output.
#[test]
fn extism_empty_issue_620() {
    let mut engine = engine();
    let text = with_ok(&format!(
        r#"(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  {OK_IMPORTS}
  (memory (export "memory") 1)
  (func (export "test") (result i32)
    (call $log_info (call $alloc (i64.const 0)))
    (call $output_set (call $alloc (i64.const 0)) (i64.const 0))
    (i32.const 0)))"#
    ));
    install(&mut engine, "empty", &text);
    let outcome = invoke(&mut engine, "empty", "test", b"", None, true).expect("test");
    assert_eq!(outcome.output, b"");
    assert_eq!(outcome.logs, vec![line(LogLevel::Info, "")]);
    still_answers(&mut engine, "empty");
}

/// `consume.wasm`: every input of 1 byte or more is consumed (our `input_load_u64` pads a short
/// tail with zeros, `input_load_u8` past the end is 0); an empty input traps in the guest itself
/// (it stores into a memory of 0 pages), as on Extism.
#[test]
fn extism_consume() {
    let mut engine = engine();
    install(&mut engine, "consume", &with_ok(CONSUME));
    for len in EXTISM_LENGTHS {
        let input = input_of(len);
        let result = invoke(&mut engine, "consume", "consume", &input, None, true);
        match len {
            0 => assert_eq!(
                result.map_err(|f| f.error),
                Err(wasm_trap(wasmi::TrapCode::MemoryOutOfBounds)),
                "length 0"
            ),
            _ => assert_eq!(result.map(|o| o.output), Ok(Vec::new()), "length {len}"),
        }
        still_answers(&mut engine, "consume");
    }
}

/// `echo.wasm` sets its output before writing it; we read the output when the function returns,
/// so it echoes from 9 bytes on. Shorter inputs trap: echo writes 8 bytes (and one more for 8)
/// into a block of `len` bytes, and our stores must stay inside one live block (Extism lets the
/// write spill into the next block's header, and returns zeros for 1 to 7 bytes).
#[test]
fn extism_echo() {
    let mut engine = engine();
    install(&mut engine, "echo", &with_ok(ECHO));
    for len in EXTISM_LENGTHS {
        let input = input_of(len);
        let result = invoke(&mut engine, "echo", "echo", &input, None, true);
        // The input block is at 1, the output block right after it.
        let out = 1 + len as u64;
        let expect = match len {
            0 => Err(wasm_trap(wasmi::TrapCode::MemoryOutOfBounds)),
            1..=7 => Err(oob("store_u64", out, 8)),
            8 => Err(oob("store_u8", out + 8, 1)),
            _ => Ok(input.clone()),
        };
        assert_eq!(
            result.map(|o| o.output).map_err(|f| f.error),
            expect,
            "length {len}"
        );
        still_answers(&mut engine, "echo");
    }
}

/// `allocations.wasm`: 10,000 allocations (about 50 MB), every third freed.
#[test]
fn extism_allocations() {
    let mut engine = engine();
    install(&mut engine, "allocations", ALLOCATIONS);
    let outcome =
        invoke(&mut engine, "allocations", "allocations", b"", None, true).expect("allocations");
    assert_eq!(outcome.output, b"");
    // alloc charges its length: 10 + 11 + ... + 10,009 bytes, and every call 10 more.
    let bytes: u64 = (10..10_010).sum();
    let calls = 10_000 + 3_334;
    assert!(
        outcome.fuel_used >= bytes + 10 * calls,
        "fuel used {}",
        outcome.fuel_used
    );
    // It imports nothing to echo with: the next call is the same one.
    let again = invoke(&mut engine, "allocations", "allocations", b"", None, true);
    assert_eq!(again.map(|o| o.output), Ok(Vec::new()));
}

/// Extism's `test_no_vars`: `var_set(input_offset(), input_offset())` with a 1-byte var cap fails
/// for a 1 KiB input and succeeds for an empty one (`var_set(0, 0)` deletes the empty key).
#[test]
fn extism_test_no_vars() {
    let limits = Limits {
        max_var_bytes: 1,
        ..Limits::default()
    };
    let mut engine = open(limits, Rc::default());
    let text = with_ok(&format!(
        r#"(module
    (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
    (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    {OK_IMPORTS}
    (func (export "test") (result i32)
        (call $input_offset)
        (call $input_offset)
        (call $var_set)
        (i32.const 0)
    )
)"#
    ));
    install(&mut engine, "novars", &text);
    assert_eq!(
        err(&mut engine, "novars", "test", &[b'A'; 1024]),
        limit("var bytes", 2048, 1)
    );
    assert_eq!(ok(&mut engine, "novars", "test", b""), b"");
    still_answers(&mut engine, "novars");
}

/// Handle 0 is the empty block everywhere, as in Extism since issue 620.
#[test]
fn handle_zero_is_the_empty_block() {
    let mut engine = engine();
    let text = case_module("", 0, true).replace(
        r#"(func (export "run")"#,
        r#"(func (export "logs") (result i32)
    (call $log_trace (i64.const 0)) (call $log_debug (i64.const 0)) (call $log_info (i64.const 0))
    (call $log_warn (i64.const 0)) (call $log_error (i64.const 0))
    (i32.const 0))
  (func (export "config") (result i32)
    (call $out_block (call $config_get (i64.const 0))) (i32.const 0))
  (func (export "var") (result i32)
    (local $v i64)
    (local.set $v (call $var_get (i64.const 0)))
    (if (i64.eqz (local.get $v)) (then (call $out_u64 (i64.const 0)) (return (i32.const 0))))
    (call $out_block (local.get $v)) (i32.const 0))
  (func (export "var_set") (result i32)
    (call $var_set (i64.const 0) (call $block (i32.const 48) (i32.const 5))) (i32.const 0))
  (func (export "var_delete") (result i32)
    (call $var_set (i64.const 0) (i64.const 0)) (i32.const 0))
  (func (export "length_free") (result i32)
    (call $free (i64.const 0))
    (call $out_u64 (i64.add (call $length (i64.const 0)) (call $length_unsafe (i64.const 0))))
    (i32.const 0))
  (func (export "error_clear") (result i32)
    (call $error_set (i64.const 0)) (i32.const 0))
  (func (export "output") (result i32)
    (call $output_set (i64.const 0) (i64.const 0)) (i32.const 0))
  (func (export "run")"#,
    );
    install(&mut engine, "zero", &text);
    let logs = invoke(&mut engine, "zero", "logs", b"", None, true).expect("logs");
    assert_eq!(
        logs.logs,
        [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error
        ]
        .map(|level| line(level, ""))
    );
    assert_eq!(ok(&mut engine, "zero", "config", b""), b"root");
    assert_eq!(ok(&mut engine, "zero", "var", b""), u64_le(0));
    ok(&mut engine, "zero", "var_set", b"");
    assert_eq!(ok(&mut engine, "zero", "var", b""), b"hello");
    ok(&mut engine, "zero", "var_delete", b"");
    assert_eq!(ok(&mut engine, "zero", "var", b""), u64_le(0));
    ok(&mut engine, "zero", "var_delete", b"");
    assert_eq!(ok(&mut engine, "zero", "length_free", b""), u64_le(0));
    assert_eq!(ok(&mut engine, "zero", "error_clear", b""), b"");
    assert_eq!(ok(&mut engine, "zero", "output", b""), b"");
    still_answers(&mut engine, "zero");
}

/// The error and output rules: an error fails the call whatever the return code (as in Extism);
/// a freed error block is ignored; the output is read when the function returns (bytes written
/// after `output_set` count), and a freed output block gives the bytes still there, or a typed
/// error when it is gone.
#[test]
fn errors_and_outputs_are_read_when_the_function_returns() {
    let mut engine = engine();
    let text = case_module("", 0, true).replace(
        r#"(func (export "run")"#,
        r#"(func (export "error_then_0") (result i32)
    (call $error_set (call $block (i32.const 48) (i32.const 5))) (i32.const 0))
  (func (export "freed_error") (result i32)
    (local $e i64)
    (local.set $e (call $block (i32.const 48) (i32.const 5)))
    (call $error_set (local.get $e)) (call $free (local.get $e)) (i32.const 0))
  (func (export "set_then_write") (result i32)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 5)))
    (call $output_set (local.get $h) (i64.const 5))
    (call $store_u8 (local.get $h) (i32.const 0x68))
    (call $store_u8 (i64.add (local.get $h) (i64.const 4)) (i32.const 0x6f))
    (i32.const 0))
  (func (export "freed_output") (result i32)
    (local $h i64)
    (local.set $h (call $block (i32.const 48) (i32.const 5)))
    (drop (call $alloc (i64.const 1)))
    (call $output_set (local.get $h) (i64.const 5))
    (call $free (local.get $h))
    (i32.const 0))
  (func (export "freed_last_output") (result i32)
    (local $h i64)
    (local.set $h (call $block (i32.const 48) (i32.const 5)))
    (call $output_set (local.get $h) (i64.const 5))
    (call $free (local.get $h))
    (i32.const 0))
  (func (export "freed_output_reused") (result i32)
    (local $h i64)
    (local.set $h (call $block (i32.const 48) (i32.const 5)))
    (drop (call $alloc (i64.const 1)))
    (call $output_set (local.get $h) (i64.const 5))
    (call $free (local.get $h))
    (if (i64.ne (call $block (i32.const 80) (i32.const 2)) (local.get $h)) (then unreachable))
    (i32.const 0))
  (func (export "run")"#,
    );
    install(&mut engine, "rules", &text);
    assert_eq!(
        err(&mut engine, "rules", "error_then_0", b""),
        InvokeError::PluginError {
            code: 0,
            message: "hello".into()
        }
    );
    still_answers(&mut engine, "rules");
    assert_eq!(ok(&mut engine, "rules", "freed_error", b""), b"");
    // A block of 5 zero bytes is set as the output, then the first and last bytes are written.
    assert_eq!(ok(&mut engine, "rules", "set_then_write", b""), b"h\0\0\0o");
    // Freed with a block above it: the bytes stay, and are the output (as in Extism).
    assert_eq!(ok(&mut engine, "rules", "freed_output", b""), b"hello");
    // Freed at the top of the arena: the space is given back; a typed error, not stale bytes.
    assert_eq!(
        err(&mut engine, "rules", "freed_last_output", b""),
        trap(HostTrap::OutputFreed { offset: 1, len: 5 })
    );
    still_answers(&mut engine, "rules");
    // Freed and partly reused by a new block ("ab", zeroed then written): the guest's own bytes.
    assert_eq!(
        ok(&mut engine, "rules", "freed_output_reused", b""),
        b"abllo"
    );
    still_answers(&mut engine, "rules");
}

// ---------------------------------------------------------------------------------------------
// 3. What host calls cost
// ---------------------------------------------------------------------------------------------

/// A plugin whose `run` is `body`, with every host function imported.
fn budget_plugin(engine: &mut Engine<VectorMemory>, name: &str, body: &str, pages: u32) {
    let text = case_module(body, 0, true).replace(
        r#"(memory (export "memory") 1)"#,
        &format!(r#"(memory (export "memory") {pages})"#),
    );
    install(engine, name, &text);
}

#[track_caller]
fn fuel_of(engine: &mut Engine<VectorMemory>, plugin: &str, fuel: Option<u64>) -> u64 {
    match invoke(engine, plugin, "run", b"", fuel, false) {
        Ok(outcome) => outcome.fuel_used,
        Err(f) => panic!("{plugin}: {f}"),
    }
}

/// A host call that costs more than the fuel left in the current slice takes the rest from the
/// call's fuel: with slices of 1,000, `alloc(100,000)` succeeds and is charged in full.
#[test]
fn a_host_call_may_cost_more_than_the_slice_left() {
    let limits = Limits {
        fuel_slice: 1_000,
        ..Limits::default()
    };
    let mut engine = open(limits, Rc::default());
    budget_plugin(
        &mut engine,
        "big",
        "(drop (call $alloc (i64.const 100000)))
         (call $output_set (call $alloc (i64.const 50000)) (i64.const 50000))",
        1,
    );
    fuel_of(&mut engine, "big", None); // compiled
    let outcome = invoke(&mut engine, "big", "run", b"", None, true).expect("run");
    assert_eq!(outcome.output.len(), 50_000);
    let charged = 100_000 + 2 * 50_000 + 3 * 10;
    assert!(
        (charged..charged + 100).contains(&outcome.fuel_used),
        "fuel used {}",
        outcome.fuel_used
    );
    still_answers(&mut engine, "big");
}

/// A host call that costs more than all the fuel the call has left stops it with `OutOfFuel`,
/// all of the call's fuel used; exactly enough fuel succeeds.
#[test]
fn a_host_call_costing_more_than_the_calls_fuel_is_out_of_fuel() {
    for fuel_slice in [1_000, 5_000_000] {
        let limits = Limits {
            fuel_slice,
            ..Limits::default()
        };
        let mut engine = open(limits, Rc::default());
        budget_plugin(
            &mut engine,
            "big",
            "(drop (call $alloc (i64.const 100000)))",
            1,
        );
        let failure =
            invoke(&mut engine, "big", "run", b"", Some(50_000), true).expect_err("out of fuel");
        assert_eq!(
            failure.error,
            InvokeError::OutOfFuel {
                fuel_used: 50_000,
                fuel_limit: 50_000
            },
            "slice {fuel_slice}"
        );
        assert_eq!(failure.fuel_used, 50_000);
        still_answers(&mut engine, "big");
        // What a successful run used is exactly enough; one less is not.
        fuel_of(&mut engine, "big", None);
        let needed = fuel_of(&mut engine, "big", None);
        assert!(needed > 100_010, "{needed}");
        assert_eq!(fuel_of(&mut engine, "big", Some(needed)), needed);
        assert_eq!(
            invoke(&mut engine, "big", "run", b"", Some(needed - 1), false).map_err(|f| f.error),
            Err(InvokeError::OutOfFuel {
                fuel_used: needed - 1,
                fuel_limit: needed - 1
            }),
            "slice {fuel_slice}"
        );
    }
}

/// `sha256` over a large range first checks the message's instruction counter: near the limit
/// it stops with `InstructionLimit` before it charges or hashes anything.
#[test]
fn sha256_checks_the_instruction_limit_before_hashing() {
    const LIMIT: u64 = 1_000_000_000;
    const MIB: u64 = 1024 * 1024;
    // What the host estimates for hashing 1 MiB (130 instructions per byte).
    const ESTIMATE: u64 = 130 * MIB;
    let limits = Limits {
        update_instruction_limit: LIMIT,
        ..Limits::default()
    };
    let meter = Rc::new(Meter::default());
    let mut engine = open(limits, meter.clone());
    budget_plugin(
        &mut engine,
        "hash",
        &format!("(call $sha256 (i32.const 0) (i32.const {MIB}) (i32.const 0))"),
        16,
    );
    let run = |engine: &mut Engine<VectorMemory>, at: u64| {
        meter.now.set(at);
        invoke(engine, "hash", "run", b"", None, true)
    };
    let failure = run(&mut engine, 900_000_000).expect_err("over the limit");
    assert_eq!(
        failure.error,
        InvokeError::InstructionLimit {
            instructions: 900_000_000,
            limit: LIMIT
        }
    );
    assert!(failure.fuel_used < 1_000, "charged {}", failure.fuel_used);
    // The boundary: the estimate fits exactly, or misses by one instruction.
    let fits = run(&mut engine, LIMIT - ESTIMATE).expect("fits");
    assert!(fits.fuel_used > MIB, "{}", fits.fuel_used);
    assert_eq!(
        run(&mut engine, LIMIT - ESTIMATE + 1).map_err(|f| f.error),
        Err(InvokeError::InstructionLimit {
            instructions: LIMIT - ESTIMATE + 1,
            limit: LIMIT
        })
    );
    meter.now.set(0);
    still_answers(&mut engine, "hash");
}

/// What hashing 64 KiB costs: the host call, and 13 fuel per byte.
const HASH_64K: u64 = 10 + 13 * 65_536;

/// Several expensive host calls in one basic block are each charged: five `alloc(10,000)` cost
/// four times 10,010 more than one, and fuel for two and a half stops the third.
#[test]
fn every_expensive_host_call_in_one_basic_block_is_charged() {
    let mut engine = engine();
    let allocs = |n: usize| "(drop (call $alloc (i64.const 10000)))".repeat(n);
    let hashes =
        |n: usize| "(call $sha256 (i32.const 0) (i32.const 65536) (i32.const 0))".repeat(n);
    budget_plugin(&mut engine, "one", &allocs(1), 1);
    budget_plugin(&mut engine, "five", &allocs(5), 1);
    budget_plugin(&mut engine, "hash1", &hashes(1), 1);
    budget_plugin(&mut engine, "hash3", &hashes(3), 1);
    for plugin in ["one", "five", "hash1", "hash3"] {
        fuel_of(&mut engine, plugin, None); // compiled
    }
    let one = fuel_of(&mut engine, "one", None);
    let five = fuel_of(&mut engine, "five", None);
    assert!(
        (4 * 10_010..4 * 10_010 + 100).contains(&(five - one)),
        "one {one}, five {five}"
    );
    let hash1 = fuel_of(&mut engine, "hash1", None);
    let hash3 = fuel_of(&mut engine, "hash3", None);
    assert!(
        (2 * HASH_64K..2 * HASH_64K + 100).contains(&(hash3 - hash1)),
        "one {hash1}, three {hash3}"
    );
    let short = one + 10_010 + 5_000;
    assert_eq!(
        invoke(&mut engine, "five", "run", b"", Some(short), false).map_err(|f| f.error),
        Err(InvokeError::OutOfFuel {
            fuel_used: short,
            fuel_limit: short
        })
    );
    let short = hash1 + HASH_64K + 30_000;
    assert_eq!(
        invoke(&mut engine, "hash3", "run", b"", Some(short), false).map_err(|f| f.error),
        Err(InvokeError::OutOfFuel {
            fuel_used: short,
            fuel_limit: short
        })
    );
    still_answers(&mut engine, "five");
}
