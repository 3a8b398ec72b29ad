//! `plugin-host demo`: deploys the freshly built canister in memory and runs every example plugin
//! through it, printing each output and the instructions each message used.

use candid::Principal;
use ic_local_runtime::RuntimeError;
use plugin_host_api::{InitArgs, InstallPolicy, InvokeOptions, InvokePolicy, UpgradePluginArgs};
use plugin_host_local::client::{CallError, CallKind, PluginHost};
use plugin_host_local::identity;

use std::path::Path;

use crate::{CliError, CliResult, DEFAULT_WASM, JS_SCRIPT_KEY, group_digits, install, read_module};

/// One demo step's line: what ran, what it answered, what it cost.
fn show(host: &PluginHost, what: &str, answer: &str) {
    let answer: String = answer.trim_end().chars().take(110).collect();
    println!(
        "{what:<44} {:>12} instr  {answer}",
        group_digits(host.last_instructions())
    );
}

fn plugin(name: &str) -> CliResult<Vec<u8>> {
    let path = format!("target/plugins/{name}.wasm");
    std::fs::read(&path)
        .map_err(|e| CliError::Usage(format!("cannot read {path} ({e}): run `cargo xtask build`")))
}

fn invoke(
    host: &mut PluginHost,
    caller: Principal,
    plugin: &str,
    function: &str,
    input: &str,
) -> CliResult<String> {
    let options = InvokeOptions {
        fuel: None,
        logs: Some(false),
    };
    let reply = host.invoke(
        CallKind::Update,
        caller,
        plugin,
        function,
        input.as_bytes(),
        Some(options),
    );
    let answer = match reply {
        Ok(Ok(reply)) => String::from_utf8_lossy(&reply.output).into_owned(),
        Ok(Err(failure)) => format!("Err: {failure}"),
        // Ingress the caller has no right to: inspect_message refuses it before it runs.
        Err(CallError::Runtime(RuntimeError::NotAccepted { instructions, .. })) => {
            let answer = format!("refused by inspect_message: {caller} may not invoke it");
            let what = format!("invoke {plugin}.{function}");
            let answer: String = answer.chars().take(110).collect();
            println!(
                "{what:<44} {:>12} instr  {answer}",
                group_digits(instructions)
            );
            return Ok(answer);
        }
        Err(e) => return Err(e.into()),
    };
    show(host, &format!("invoke {plugin}.{function}"), &answer);
    Ok(answer)
}

/// Runs the demo.
pub fn run() -> CliResult {
    let admin = identity::principal("default");
    let alice = identity::principal("alice");
    let dao = identity::principal("dao");
    let wasm = std::fs::read(DEFAULT_WASM).map_err(|e| {
        CliError::Usage(format!(
            "cannot read {DEFAULT_WASM} ({e}): run `cargo xtask build`"
        ))
    })?;
    println!(
        "plugin_host demo: canister {DEFAULT_WASM} ({} bytes) in the local runtime",
        wasm.len()
    );
    println!("instruction counts are the local runtime's estimates of the replica's\n");

    let init = InitArgs {
        admins: None,
        install_policy: Some(InstallPolicy::AnyAuthenticated),
        ..InitArgs::default()
    };
    let mut host = PluginHost::deploy(&wasm, Some(init), admin)?;
    show(&host, "deploy canister", "ok");

    // The smallest stateful plugin.
    let info = install(
        &mut host,
        alice,
        "counter",
        plugin("counter")?,
        vec![],
        None,
        None,
    )?;
    show(
        &host,
        "install counter",
        &format!("{} bytes, functions {:?}", info.code_size, info.functions),
    );
    for _ in 0..3 {
        invoke(&mut host, alice, "counter", "increment", "")?;
    }

    // A DAO voting module, restricted to the DAO.
    let config = vec![("rule".to_owned(), "quadratic".to_owned())];
    let policy = Some(InvokePolicy::AllowList(vec![dao]));
    install(
        &mut host,
        dao,
        "dao_voting",
        plugin("dao_voting")?,
        config,
        policy,
        None,
    )?;
    show(&host, "install dao_voting (rule=quadratic)", "ok");
    let ballots = r#"{"proposal":"treasury-42","total_supply":1000,"ballots":[{"voter":"a","weight":400,"choice":"yes"},{"voter":"b","weight":100,"choice":"no"},{"voter":"c","weight":81,"choice":"no"}]}"#;
    invoke(&mut host, dao, "dao_voting", "decide", ballots)?;
    invoke(
        &mut host,
        dao,
        "dao_voting",
        "decide",
        r#"{"ballots":[{"voter":"a","weight":-1,"choice":"yes"}]}"#,
    )?;
    invoke(&mut host, alice, "dao_voting", "decide", ballots)?;

    // A programmable NFT.
    install(
        &mut host,
        alice,
        "creature",
        plugin("nft")?,
        vec![],
        None,
        None,
    )?;
    show(&host, "install nft as creature", "ok");
    for function in ["mint", "feed", "play", "metadata"] {
        invoke(&mut host, alice, "creature", function, "")?;
    }

    // Another language: C, no PDK.
    install(
        &mut host,
        alice,
        "c_vowels",
        plugin("c_vowels")?,
        vec![],
        None,
        None,
    )?;
    show(&host, "install c_vowels (C)", "ok");
    invoke(
        &mut host,
        alice,
        "c_vowels",
        "count_vowels",
        "Internet Computer",
    )?;
    invoke(
        &mut host,
        alice,
        "c_vowels",
        "count_vowels",
        "plugins inside a canister",
    )?;

    // AssemblyScript with the unmodified `@extism/as-pdk`: config, a var, the plugin's error.
    let config = vec![("greeting".to_owned(), "Hello".to_owned())];
    install(
        &mut host,
        alice,
        "as_words",
        plugin("as_words")?,
        config,
        None,
        None,
    )?;
    show(&host, "install as_words (AssemblyScript)", "ok");
    invoke(&mut host, alice, "as_words", "greet", "Internet Computer")?;
    invoke(
        &mut host,
        alice,
        "as_words",
        "count_words",
        "plugins inside a canister",
    )?;
    invoke(
        &mut host,
        alice,
        "as_words",
        "count_words",
        "written in AssemblyScript",
    )?;
    invoke(&mut host, alice, "as_words", "count_words", "")?;

    // WASI preview 1, unmodified: C with libc (stdout as the output) and Rust std.
    let config = vec![("wasi.stdout".to_owned(), "output".to_owned())];
    install(
        &mut host,
        alice,
        "tally",
        plugin("c_tally")?,
        config,
        None,
        None,
    )?;
    show(&host, "install c_tally (C with libc, WASI)", "ok");
    invoke(&mut host, alice, "tally", "add", "plugins in a canister")?;
    invoke(&mut host, alice, "tally", "add", "canister")?;
    install(
        &mut host,
        alice,
        "std",
        plugin("wasi_std")?,
        vec![],
        None,
        None,
    )?;
    show(&host, "install wasi_std (Rust std, WASI)", "ok");
    invoke(&mut host, alice, "std", "add", "hello hello world")?;

    // Zig's std on WASI, no PDK.
    install(
        &mut host,
        alice,
        "zig",
        plugin("zig_tally")?,
        vec![],
        None,
        None,
    )?;
    show(&host, "install zig_tally (Zig, WASI)", "ok");
    invoke(&mut host, alice, "zig", "add", "hello zig hello")?;
    invoke(&mut host, alice, "zig", "add", "zig")?;

    // Go on WASI (2.5 MB: installed in chunks), no PDK; skipped where Go could not be had.
    if let Ok(go) = plugin("go_tally") {
        install(&mut host, alice, "go", go, vec![], None, None)?;
        show(&host, "install go_tally (Go, WASI, in chunks)", "ok");
        invoke(&mut host, alice, "go", "add", "hello go hello")?;
        invoke(&mut host, alice, "go", "add", "go")?;
    } else {
        println!("go_tally: not built (no Go toolchain), skipped");
    }

    // JavaScript without a compiler: the QuickJS runtime plugin with a DAO rule as its script.
    let script = std::fs::read_to_string("plugins/js/dao_rule.js")
        .map_err(|e| CliError::Usage(format!("cannot read plugins/js/dao_rule.js: {e}")))?;
    let config = vec![
        (JS_SCRIPT_KEY.to_owned(), script),
        ("rule".to_owned(), "quadratic".to_owned()),
    ];
    let info = install(
        &mut host,
        dao,
        "js_rule",
        plugin("js_runtime")?,
        config,
        None,
        None,
    )?;
    show(
        &host,
        "install js_runtime + dao_rule.js (JavaScript)",
        &format!("functions {:?}", info.functions),
    );
    invoke(&mut host, dao, "js_rule", "decide", ballots)?;
    invoke(&mut host, dao, "js_rule", "decide", ballots)?;
    invoke(&mut host, dao, "js_rule", "stats", "")?;

    // A hostile plugin: it loops forever, gets a typed error, and harms nobody.
    let looping = read_module(Path::new("plugins/hostile/infinite_loop.wat"))?;
    install(
        &mut host,
        alice,
        "looper",
        looping,
        vec![],
        None,
        Some(1_000_000),
    )?;
    invoke(&mut host, alice, "looper", "run", "")?;

    // Canister upgrade: every plugin keeps its state.
    host.upgrade_canister(&wasm, None, admin)?;
    show(&host, "upgrade canister", "ok");
    invoke(&mut host, alice, "counter", "get", "")?;
    invoke(&mut host, alice, "creature", "metadata", "")?;
    invoke(&mut host, alice, "as_words", "stats", "")?;
    invoke(&mut host, alice, "tally", "count", "canister")?;
    invoke(&mut host, alice, "zig", "count", "zig")?;
    invoke(&mut host, dao, "js_rule", "stats", "")?;

    // Plugin upgrade with a state migration.
    let args = UpgradePluginArgs {
        name: "dao_voting".into(),
        wasm: plugin("dao_voting_v2")?.into(),
        migration: Some("migrate".into()),
    };
    let upgraded = host.upgrade_plugin(dao, args)?;
    show(
        &host,
        "upgrade_plugin dao_voting -> v2 (migrate)",
        &match upgraded {
            Ok(info) => format!("ok, functions {:?}", info.functions),
            Err(e) => format!("Err: {e}"),
        },
    );
    invoke(&mut host, dao, "dao_voting", "decide", ballots)?;
    Ok(())
}
