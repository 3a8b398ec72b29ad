//! Conformance with real plugins built from `plugins/` by `cargo xtask build-plugins` (which
//! `cargo xtask test` runs first): an unmodified extism-pdk plugin and a C plugin, natively; and
//! WASI preview 1 through wasi-libc, in cases modelled on the wasi-testsuite's.

#![allow(missing_docs)]

#[path = "../../../tests/support/artifacts.rs"]
mod artifacts;

use std::collections::BTreeMap;
use std::rc::Rc;

use candid::Principal;
use ic_stable_structures::VectorMemory;
use ic_stable_structures::memory_manager::MemoryId;
use plugin_engine::{
    Engine, InstallRequest, InstructionMeter, InvokeError, InvokeFailure, InvokeOutcome,
    InvokePolicy, InvokeRequest, Limits, StableMemories, StableSpace,
};

struct NoMeter;

impl InstructionMeter for NoMeter {
    fn instructions(&self) -> u64 {
        0
    }
}

fn engine_with(name: &str, plugin: &str, config: &[(&str, &str)]) -> Engine<VectorMemory> {
    let space = Rc::new(StableSpace::init(VectorMemory::default()));
    let ids = StableMemories::from_array(std::array::from_fn(|i| MemoryId::new(i as u8)));
    let mut engine = Engine::init(space, ids, Limits::default(), Rc::new(NoMeter));
    let wasm = artifacts::plugin(plugin);
    let request = InstallRequest {
        name,
        wasm: &wasm,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        owner: Principal::from_slice(b"owner"),
        invoke_policy: InvokePolicy::Public,
        fuel_limit: None,
    };
    engine.install(request, 0).expect("installs");
    engine
}

fn call(
    engine: &mut Engine<VectorMemory>,
    plugin: &str,
    function: &str,
    input: &str,
) -> Result<InvokeOutcome, InvokeFailure> {
    engine.invoke(InvokeRequest {
        plugin,
        function,
        input: input.as_bytes(),
        fuel: None,
        caller: Principal::from_slice(b"caller"),
        now_ns: 1,
        commit: true,
        logs: true,
        instruction_limit: None,
    })
}

#[track_caller]
fn text(result: Result<InvokeOutcome, InvokeFailure>) -> String {
    String::from_utf8(result.expect("call succeeds").output).expect("utf-8")
}

#[test]
fn extism_pdk_input_output_vars_and_error_path() {
    let mut e = engine_with("counter", "counter", &[]);
    assert_eq!(text(call(&mut e, "counter", "increment", "41")), "41");
    assert_eq!(text(call(&mut e, "counter", "increment", "")), "42");
    assert_eq!(text(call(&mut e, "counter", "put", "colour=blue")), "blue");
    assert_eq!(text(call(&mut e, "counter", "get_key", "colour")), "blue");
    match call(&mut e, "counter", "increment", "many").map_err(|f| f.error) {
        Err(InvokeError::PluginError { message, .. }) => {
            assert!(message.contains("not a number"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match call(&mut e, "counter", "fail_after_increment", "").map_err(|f| f.error) {
        Err(InvokeError::PluginError { message, .. }) => {
            assert!(message.contains("failing on purpose"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(text(call(&mut e, "counter", "get", "")), "42");
}

#[test]
fn extism_pdk_config() {
    let mut e = engine_with("dao", "dao_voting", &[("rule", "nonsense")]);
    match call(&mut e, "dao", "decide", r#"{"ballots":[]}"#).map_err(|f| f.error) {
        Err(InvokeError::PluginError { message, .. }) => {
            assert!(message.contains("unknown rule"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let mut e = engine_with("dao", "dao_voting", &[("rule", "quadratic")]);
    let ballots = r#"{"ballots":[{"voter":"a","weight":9,"choice":"yes"},{"voter":"b","weight":16,"choice":"no"}]}"#;
    let decision = text(call(&mut e, "dao", "decide", ballots));
    assert!(
        decision.contains(r#""yes":3.0"#) && decision.contains(r#""no":4.0"#),
        "{decision}"
    );
}

#[test]
fn ic_host_functions_through_the_kit() {
    let mut e = engine_with("nft", "nft", &[]);
    let minted = text(call(&mut e, "nft", "mint", ""));
    // The owner is the caller's bytes in hex ("caller"), the birth time the IC time.
    assert!(minted.contains(r#""owner":"63616c6c6572""#), "{minted}");
    assert!(minted.contains(r#""born_ns":1"#), "{minted}");
}

#[test]
fn a_c_plugin_without_a_pdk() {
    let mut e = engine_with("vowels", "c_vowels", &[]);
    assert_eq!(
        text(call(&mut e, "vowels", "count_vowels", "Extism")),
        r#"{"count":2,"total":2}"#
    );
}

/// WASI preview 1 conformance: the wasi-testsuite's cases that need no filesystem (clocks, stdio,
/// fd_write to valid and invalid fds, sock_shutdown on bad fds and on stdio, sched_yield,
/// poll_oneoff on stdio and timeouts, random_get, args, environ, proc_exit success and failure),
/// written in C against Debian's wasi-libc (`plugins/c_libc/conformance.c`, one export per case).
#[test]
fn wasi_preview1_cases_through_wasi_libc() {
    let mut e = engine_with(
        "suite",
        "c_wasi_suite",
        &[
            ("wasi.stdout", "output"),
            ("wasi.args", "prog first second"),
            ("wasi.env.SUITE", "wasi"),
            ("wasi.env.EMPTY", ""),
        ],
    );
    for case in [
        "clock_getres",
        "clock_gettime",
        "sock_shutdown",
        "sched_yield",
        "poll_stdio",
        "random",
        "args",
        "environ",
        "no_filesystem",
    ] {
        if let Err(failure) = call(&mut e, "suite", case, "") {
            panic!("{case}: {failure} {:?}", failure.logs);
        }
    }
    assert_eq!(text(call(&mut e, "suite", "fd_write", "")), "to stdout\n");
    let stdio = call(&mut e, "suite", "stdio", "input").expect("stdio");
    assert_eq!(stdio.output, b"hello from stdout\n");
    assert_eq!(
        stdio.logs,
        [plugin_engine::LogEntry {
            level: plugin_engine::LogLevel::Warn,
            message: "hello from stderr".into()
        }]
    );
    assert_eq!(
        text(call(&mut e, "suite", "exit_success", "")),
        "exiting with 0\n"
    );
    // The cases can fail: without the config, `args` and `environ` find nothing.
    let mut bare = engine_with("bare", "c_wasi_suite", &[]);
    for case in ["args", "environ"] {
        match call(&mut bare, "bare", case, "").map_err(|f| f.error) {
            Err(InvokeError::PluginError { code, .. }) => assert!(code > 0, "{case}"),
            other => panic!("{case}: {other:?}"),
        }
    }
    assert_eq!(
        call(&mut e, "suite", "exit_failure", "").map_err(|f| f.error),
        Err(InvokeError::PluginError {
            code: 33,
            message: "exit code 33".into()
        })
    );
}
