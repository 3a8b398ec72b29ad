//! End-to-end tests of the AssemblyScript example plugin (`plugins/assemblyscript`, built with the
//! unmodified `@extism/as-pdk` into `as_words.wasm`) over the real canister module.

#![allow(missing_docs)]

mod support;

use plugin_host_api::InvokeError;
use plugin_host_local::client::CallKind;
use support::*;

#[test]
fn installs_with_only_extism_imports() {
    let mut host = host();
    let info = install(&mut host, alice(), "words", plugin("as_words"));
    assert_eq!(info.functions, ["count_words", "greet", "stats"]);
    assert!(info.code_size < 64 * 1024, "{} bytes", info.code_size);
}

#[test]
fn greet_uses_the_configured_greeting() {
    let mut host = host();
    install(&mut host, alice(), "words", plugin("as_words"));
    assert_eq!(ok(&mut host, "words", "greet", "World"), "Hello, World!");
    // Non-ASCII text in and out (UTF-8 on the wire, UTF-16 inside AssemblyScript).
    assert_eq!(ok(&mut host, "words", "greet", " Zoë\n"), "Hello, Zoë!");

    host.set_config(
        alice(),
        "words",
        vec![("greeting".into(), "Grüß dich".into())],
    )
    .expect("message")
    .expect("set_config");
    assert_eq!(ok(&mut host, "words", "greet", "Zoë"), "Grüß dich, Zoë!");

    let mut args = install_args("bonjour", plugin("as_words"));
    args.config = Some(vec![("greeting".into(), "Bonjour".into())]);
    host.install(alice(), args)
        .expect("message")
        .expect("install with config");
    assert_eq!(
        ok(&mut host, "bonjour", "greet", "Monde"),
        "Bonjour, Monde!"
    );
}

#[test]
fn the_running_total_survives_calls_and_a_canister_upgrade() {
    let mut host = host();
    install(&mut host, alice(), "words", plugin("as_words"));
    assert_eq!(
        ok(
            &mut host,
            "words",
            "count_words",
            "plugins inside a canister"
        ),
        r#"{"words":4,"total":4}"#
    );
    assert_eq!(
        ok(&mut host, "words", "count_words", "  one\ttwo\nthree  "),
        r#"{"words":3,"total":7}"#
    );
    assert_eq!(
        ok(&mut host, "words", "stats", ""),
        r#"{"calls":2,"total":7}"#
    );

    upgrade_to_other_build(&mut host);

    // The var (`total`) and the module global (`calls`, plugin memory) both came through.
    assert_eq!(
        ok(&mut host, "words", "stats", ""),
        r#"{"calls":2,"total":7}"#
    );
    assert_eq!(
        ok(&mut host, "words", "count_words", "après la mise à jour"),
        r#"{"words":5,"total":12}"#
    );
}

#[test]
fn the_plugins_error_comes_back_and_changes_nothing() {
    let mut host = host();
    install(&mut host, alice(), "words", plugin("as_words"));
    ok(&mut host, "words", "count_words", "hello world");

    match err(&mut host, "words", "greet", "  ") {
        InvokeError::PluginError { code, message } => {
            assert_eq!(code, 1);
            assert_eq!(message, "greet: expected a name as input");
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }
    // `count_words` bumps its call count before it finds no words: the host rolls that back.
    match err(&mut host, "words", "count_words", " \n\t ") {
        InvokeError::PluginError { code, message } => {
            assert_eq!(code, 1);
            assert_eq!(message, "count_words: the input has no words");
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }
    assert_eq!(
        ok(&mut host, "words", "stats", ""),
        r#"{"calls":1,"total":2}"#
    );

    // A dry run answers as an update would and keeps nothing.
    let dry = host
        .invoke(
            CallKind::Query,
            alice(),
            "words",
            "count_words",
            b"three more words",
            None,
        )
        .expect("query")
        .expect("dry run succeeds");
    assert_eq!(dry.output.as_slice(), br#"{"words":3,"total":5}"#);
    assert_eq!(
        ok(&mut host, "words", "count_words", "again"),
        r#"{"words":1,"total":3}"#
    );
}
