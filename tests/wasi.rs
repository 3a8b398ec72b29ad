//! End-to-end tests of the WASI example plugins over the real canister module: `c_tally` (C with
//! Debian's wasi-libc: stdio, malloc, time, rand) and `wasi_std` (Rust std for `wasm32-wasip1`
//! with extism-pdk: println!, SystemTime, HashMap, std::env). Durable state, rollback and a
//! canister upgrade work for them as for the other plugins.

#![allow(missing_docs)]

mod support;

use plugin_host_api::{ByteBuf, InvokeError, LogLevel, UpgradePluginArgs};
use support::*;

/// The C plugin, installed with stdout as the output.
fn install_tally(host: &mut plugin_host_local::client::PluginHost, name: &str) -> u64 {
    let mut args = install_args(name, plugin("c_tally"));
    args.config = Some(vec![("wasi.stdout".into(), "output".into())]);
    let info = host
        .install(alice(), args)
        .expect("message")
        .expect("install c_tally");
    assert_eq!(
        info.functions,
        ["add", "add_then_fail", "count", "quit", "roll"]
    );
    info.installed_at_ns
}

/// The number after `"name":` in a flat JSON object.
#[track_caller]
fn number(json: &str, name: &str) -> i128 {
    let key = format!("\"{name}\":");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {json}"))
        + key.len();
    let digits: String = json[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|e| panic!("{name} in {json}: {e}"))
}

#[test]
fn c_with_libc_keeps_its_malloc_heap_across_calls_and_an_upgrade() {
    let mut host = host();
    install_tally(&mut host, "tally");
    assert_eq!(
        ok(&mut host, "tally", "add", "the cat and the hat"),
        "{\"added\":5,\"distinct\":4,\"total\":5}\n"
    );
    let fuel = call(&mut host, alice(), "tally", "add", "The end of THE story")
        .expect("add")
        .fuel_used;
    eprintln!(
        "c_tally add: {fuel} fuel, {} instructions",
        host.last_instructions()
    );
    assert_eq!(
        ok(&mut host, "tally", "count", "the"),
        "{\"word\":\"the\",\"count\":4}\n"
    );

    upgrade_to_other_build(&mut host);
    assert_eq!(
        ok(&mut host, "tally", "count", "THE"),
        "{\"word\":\"the\",\"count\":4}\n",
        "the malloc'd list survived the canister upgrade"
    );
    assert_eq!(
        ok(&mut host, "tally", "add", "cat"),
        "{\"added\":1,\"distinct\":7,\"total\":11}\n"
    );
}

#[test]
fn c_with_libc_plugins_are_isolated_and_upgrade_plugin_starts_them_afresh() {
    let mut host = host();
    install_tally(&mut host, "a");
    install_tally(&mut host, "b");
    ok(&mut host, "a", "add", "alpha beta alpha");
    ok(&mut host, "b", "add", "gamma");
    assert_eq!(
        ok(&mut host, "b", "count", "alpha"),
        "{\"word\":\"alpha\",\"count\":0}\n"
    );
    assert_eq!(
        ok(&mut host, "a", "count", "alpha"),
        "{\"word\":\"alpha\",\"count\":2}\n"
    );
    // upgrade_plugin: memory restarts from the new module, whose `_initialize` runs once more.
    let info = host
        .upgrade_plugin(
            alice(),
            UpgradePluginArgs {
                name: "a".into(),
                wasm: ByteBuf::from(plugin("c_tally")),
                migration: None,
            },
        )
        .expect("message")
        .expect("upgrade_plugin");
    assert_eq!(info.functions.len(), 5);
    assert_eq!(
        ok(&mut host, "a", "add", "delta"),
        "{\"added\":1,\"distinct\":1,\"total\":1}\n"
    );
    assert_eq!(
        ok(&mut host, "b", "count", "gamma"),
        "{\"word\":\"gamma\",\"count\":1}\n",
        "b is untouched"
    );
}

#[test]
fn c_with_libc_failures_roll_back_and_report_their_code() {
    let mut host = host();
    install_tally(&mut host, "tally");
    ok(&mut host, "tally", "add", "one two");

    let failure = call(
        &mut host,
        alice(),
        "tally",
        "add_then_fail",
        "three four five",
    )
    .expect_err("fails");
    assert_eq!(
        failure.error,
        InvokeError::PluginError {
            code: 2,
            message: String::new()
        }
    );
    assert!(
        failure
            .logs
            .iter()
            .any(|l| l.level == LogLevel::Warn && l.message == "failing on purpose after adding"),
        "stderr is a warn line: {:?}",
        failure.logs
    );
    match err(&mut host, "tally", "add", " ... ") {
        InvokeError::PluginError { code, .. } => assert_eq!(code, 1),
        other => panic!("{other:?}"),
    }
    // exit(3) goes through WASI's proc_exit.
    assert_eq!(
        err(&mut host, "tally", "quit", ""),
        InvokeError::PluginError {
            code: 3,
            message: "exit code 3".into()
        }
    );
    // None of the failed calls' words (or their malloc'd nodes) were kept.
    assert_eq!(
        ok(&mut host, "tally", "add", "two"),
        "{\"added\":1,\"distinct\":2,\"total\":3}\n"
    );
    assert_eq!(
        ok(&mut host, "tally", "count", "three"),
        "{\"word\":\"three\",\"count\":0}\n"
    );
}

#[test]
fn c_with_libc_reads_time_and_rand_deterministically() {
    let mut host = host();
    let installed_ns = install_tally(&mut host, "tally");
    let roll = ok(&mut host, "tally", "roll", "");
    assert!((1..=6).contains(&number(&roll, "roll")), "{roll}");
    // time() is the message's IC time, in seconds: the install's, then a later message's.
    assert_eq!(
        number(&roll, "installed_at"),
        i128::from(installed_ns / 1_000_000_000)
    );
    assert!(number(&roll, "now") >= number(&roll, "installed_at"));
    // A dry run of the next roll answers what the update then answers: rand() is state in
    // memory, seeded by time() at install, the same on every replica.
    let dry = host
        .invoke(
            plugin_host_local::client::CallKind::Query,
            alice(),
            "tally",
            "roll",
            b"",
            None,
        )
        .expect("query")
        .expect("dry run");
    let dry = String::from_utf8(dry.output.into_vec()).expect("utf-8");
    let next = ok(&mut host, "tally", "roll", "");
    assert_eq!(number(&dry, "roll"), number(&next, "roll"));
}

#[test]
fn rust_std_on_wasip1_runs_unmodified() {
    let mut host = host();
    let mut args = install_args("std", plugin("wasi_std"));
    args.config = Some(vec![
        ("wasi.args".into(), "wasi_std --verbose".into()),
        ("wasi.env.GREETING".into(), "hello".into()),
    ]);
    let info = host
        .install(alice(), args)
        .expect("message")
        .expect("install wasi_std");
    assert_eq!(
        info.functions,
        ["add", "add_then_fail", "count", "env", "now"]
    );

    let reply = call(
        &mut host,
        alice(),
        "std",
        "add",
        "a rose is a rose is a rose",
    )
    .expect("add");
    assert_eq!(
        String::from_utf8(reply.output.to_vec()).expect("utf-8"),
        r#"{"added":8,"distinct":3,"top":[["a",3],["rose",3],["is",2]]}"#
    );
    assert_eq!(
        reply
            .logs
            .iter()
            .filter(|l| l.level == LogLevel::Info)
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>(),
        ["added 8 words, 3 distinct"],
        "println! is an info line"
    );
    let first = (reply.fuel_used, host.last_instructions());
    let warm = call(&mut host, alice(), "std", "add", "a rose")
        .expect("add")
        .fuel_used;
    eprintln!(
        "wasi_std add: first call {} fuel, {} instructions; warm {warm} fuel, {} instructions",
        first.0,
        first.1,
        host.last_instructions()
    );

    // A failed call keeps nothing of what it put in the HashMap.
    assert!(matches!(
        err(&mut host, "std", "add_then_fail", "x y z"),
        InvokeError::PluginError { code: 2, .. }
    ));
    assert_eq!(ok(&mut host, "std", "count", "never-kept"), "0");
    match err(&mut host, "std", "add", "   ") {
        InvokeError::PluginError { code, message } => {
            assert_eq!((code, message.as_str()), (1, "the input has no words"))
        }
        other => panic!("{other:?}"),
    }

    let now = ok(&mut host, "std", "now", "");
    assert!(
        number(&now, "unix_ns") >= i128::from(info.installed_at_ns),
        "{now}"
    );
    assert!(now.ends_with(r#""monotonic_ok":true}"#), "{now}");

    assert_eq!(
        ok(&mut host, "std", "env", ""),
        r#"{"args":["wasi_std","--verbose"],"vars":[["GREETING","hello"]]}"#
    );

    upgrade_to_other_build(&mut host);
    assert_eq!(ok(&mut host, "std", "count", "rose"), "4");
}
