//! JavaScript plugins over the real canister: the QuickJS runtime plugin (`js_runtime.wasm`,
//! stored once) with a script in the config entry `script`; the functions the script defines
//! are the plugin's functions.

#![allow(missing_docs)]

mod support;

use plugin_host_api::{InstallError, InvokeError, LogLevel, PluginInfo};
use support::*;

fn script(name: &str) -> String {
    std::fs::read_to_string(repo().join(format!("plugins/js/{name}")))
        .unwrap_or_else(|e| panic!("plugins/js/{name}: {e}"))
}

/// Installs the runtime with `source` as its script (and `config` besides).
#[track_caller]
fn install_js(
    host: &mut plugin_host_local::client::PluginHost,
    name: &str,
    source: &str,
    config: &[(&str, &str)],
) -> Result<PluginInfo, InstallError> {
    let mut args = install_args(name, plugin("js_runtime"));
    let mut entries = vec![("script".to_owned(), source.to_owned())];
    entries.extend(
        config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    args.config = Some(entries);
    host.install(alice(), args).expect("install message")
}

const BALLOTS: &str = r#"{"proposal":"p1","total_supply":1000,"ballots":[{"voter":"a","weight":400,"choice":"yes"},{"voter":"b","weight":100,"choice":"no"},{"voter":"c","weight":81,"choice":"no"}]}"#;

#[test]
fn the_scripts_functions_are_the_plugins_functions_and_the_code_is_stored_once() {
    let mut host = host();
    let rule = install_js(&mut host, "rule", &script("dao_rule.js"), &[]).expect("installs");
    assert_eq!(rule.functions, ["decide", "stats"]);
    let other = install_js(
        &mut host,
        "other",
        "function hello(name) { return `hi ${name}`; }",
        &[],
    )
    .expect("installs");
    assert_eq!(other.functions, ["hello"]);
    // One module for both: content-addressed, stored once.
    assert_eq!(rule.code_sha256, other.code_sha256);
    assert_eq!(ok(&mut host, "other", "hello", "Ada"), "hi Ada");
    match err(&mut host, "other", "decide", "") {
        InvokeError::UnknownFunction { available, .. } => assert_eq!(available, ["hello"]),
        other => panic!("expected UnknownFunction, got {other:?}"),
    }
    // The runtime's own entry points are not plugin functions.
    for internal in ["__plugin_call", "__plugin_functions"] {
        assert!(matches!(
            err(&mut host, "other", internal, ""),
            InvokeError::UnknownFunction { .. }
        ));
    }
}

#[test]
fn a_dao_rule_decides_and_its_globals_survive_calls_and_a_canister_upgrade() {
    let mut host = host();
    install_js(
        &mut host,
        "rule",
        &script("dao_rule.js"),
        &[("rule", "quadratic")],
    )
    .expect("installs");
    let decision: serde_json::Value =
        serde_json::from_str(&ok(&mut host, "rule", "decide", BALLOTS)).expect("JSON");
    assert_eq!(decision["outcome"], "passed"); // sqrt: 20 yes against 10 + 9 no
    assert_eq!(decision["yes"], 20.0);
    assert_eq!(decision["no"], 19.0);
    assert_eq!(decision["rule"], "quadratic");
    assert_eq!(ok(&mut host, "rule", "stats", ""), r#"{"decided":1}"#);

    // Invalid ballots: the plugin's error, and the count taken before the check is rolled back.
    let twice = r#"{"ballots":[{"voter":"a","weight":1,"choice":"yes"},{"voter":"a","weight":1,"choice":"no"}]}"#;
    match err(&mut host, "rule", "decide", twice) {
        InvokeError::PluginError { message, .. } => {
            assert!(message.contains("a voted twice"), "{message}")
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }
    assert_eq!(ok(&mut host, "rule", "stats", ""), r#"{"decided":1}"#);

    upgrade_to_other_build(&mut host);
    assert_eq!(ok(&mut host, "rule", "stats", ""), r#"{"decided":1}"#);
    ok(&mut host, "rule", "decide", BALLOTS);
    assert_eq!(ok(&mut host, "rule", "stats", ""), r#"{"decided":2}"#);
}

#[test]
fn hostile_scripts_get_typed_errors_and_harm_nobody() {
    let mut host = host();
    install_js(&mut host, "bad", &script("hostile.js"), &[]).expect("installs");
    install_js(&mut host, "rule", &script("dao_rule.js"), &[]).expect("installs");
    assert_eq!(ok(&mut host, "bad", "ok", ""), "1");
    assert!(matches!(
        err(&mut host, "bad", "spin", ""),
        InvokeError::OutOfFuel { .. }
    ));
    // Unbounded recursion is a RangeError (which a script could catch), not a trap; bounded
    // recursion a few hundred deep is fine.
    match err(&mut host, "bad", "recurse", "") {
        InvokeError::PluginError { message, .. } => {
            assert!(
                message.contains("RangeError: Maximum call stack size exceeded"),
                "{message}"
            )
        }
        other => panic!("deep recursion: expected the plugin's error, got {other:?}"),
    }
    assert_eq!(ok(&mut host, "bad", "depth", "300"), "300");
    match err(&mut host, "bad", "hog", "") {
        InvokeError::PluginError { message, .. } => {
            assert!(message.contains("out of memory"), "{message}")
        }
        InvokeError::LimitExceeded(_) | InvokeError::OutOfFuel { .. } => {}
        other => panic!("memory hog: expected a typed limit, got {other:?}"),
    }
    match err(&mut host, "bad", "throwAfterCounting", "") {
        InvokeError::PluginError { message, .. } => {
            assert!(
                message.contains("TypeError: thrown on purpose after counting to 2"),
                "{message}"
            );
            assert!(
                message.contains("at throwAfterCounting"),
                "with its stack: {message}"
            );
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }
    // Not UTF-8: refused before any JavaScript runs.
    let failure = host
        .invoke(
            plugin_host_local::client::CallKind::Update,
            alice(),
            "bad",
            "ok",
            &[0xff, 0xfe],
            None,
        )
        .expect("message")
        .expect_err("not UTF-8");
    assert!(matches!(failure.error, InvokeError::PluginError { .. }));
    // Every failed call was rolled back: `calls` is where the one good call left it.
    assert_eq!(ok(&mut host, "bad", "ok", ""), "2");
    assert!(ok(&mut host, "rule", "decide", BALLOTS).contains("passed"));
}

#[test]
fn console_writes_logs_values_come_back_as_json_and_date_is_the_ic_time() {
    let mut host = host();
    install_js(&mut host, "bad", &script("hostile.js"), &[]).expect("installs");
    let reply = call(&mut host, alice(), "bad", "chatty", "there").expect("runs");
    assert_eq!(reply.output.as_slice(), b"there");
    let logs: Vec<(LogLevel, &str)> = reply
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert_eq!(
        logs,
        [
            (LogLevel::Info, "hello from there"),
            (LogLevel::Warn, "[object Object]")
        ]
    );
    assert_eq!(
        ok(&mut host, "bad", "echoJson", r#"{"a":[1,2]}"#),
        r#"{"a":[1,2]}"#
    );
    let before_ms = host.canister().time() / 1_000_000;
    let now: u64 = ok(&mut host, "bad", "now", "").parse().expect("a number");
    let after_ms = host.canister().time() / 1_000_000;
    assert!(
        (before_ms..=after_ms).contains(&now),
        "{before_ms} <= {now} <= {after_ms}"
    );
}

#[test]
fn a_new_script_replaces_the_functions_and_globals_but_keeps_vars() {
    let mut host = host();
    let first =
        "let n = 0; function bump() { n += 1; vars.set('seen', String(n)); return String(n); }";
    install_js(&mut host, "app", first, &[]).expect("installs");
    assert_eq!(ok(&mut host, "app", "bump", ""), "1");
    assert_eq!(ok(&mut host, "app", "bump", ""), "2");
    let second = "function seen() { return vars.get('seen') ?? 'none'; } function fresh() { return typeof n; }";
    let info = host
        .set_config(alice(), "app", vec![("script".into(), second.into())])
        .expect("message")
        .expect("set_config");
    assert_eq!(info.functions, ["fresh", "seen"]);
    assert_eq!(ok(&mut host, "app", "seen", ""), "2");
    assert_eq!(ok(&mut host, "app", "fresh", ""), "undefined");
    // A script that does not evaluate is refused, and the old one stays.
    let refused = host
        .set_config(alice(), "app", vec![("script".into(), "function (".into())])
        .expect("message");
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(ok(&mut host, "app", "seen", ""), "2");
}

#[test]
fn scripts_that_cannot_run_are_refused_at_install_with_the_reason() {
    let mut host = host();
    for (source, reason) in [
        ("function broken( {", "SyntaxError"),
        ("throw new Error('no thanks')", "no thanks"),
        ("for (;;) {}", "fuel"),
    ] {
        let refused = install_js(&mut host, "bad", source, &[]).expect_err(source);
        assert!(refused.to_string().contains(reason), "{source}: {refused}");
    }
    // The runtime without a script says what it needs.
    let refused = host
        .install(alice(), install_args("bare", plugin("js_runtime")))
        .expect("message")
        .expect_err("no script");
    assert!(
        refused.to_string().contains("config entry `script`"),
        "{refused}"
    );
    // The key that names the function of a call is the host's, never the user's.
    let refused = install_js(
        &mut host,
        "spoof",
        "function f() { return 1; }",
        &[("plugin_host.function", "f")],
    )
    .expect_err("reserved key");
    assert!(refused.to_string().contains("plugin_host."), "{refused}");
}
