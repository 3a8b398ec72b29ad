//! End-to-end tests over the real, shrunk canister module in the local canister runtime.

#![allow(missing_docs)]

mod support;

use plugin_host_api::{
    ByteBuf, InstallChunkedArgs, InstallError, InvokeError, InvokePolicy, ListArgs, ManageError,
    Right, UpgradePluginArgs,
};
use plugin_host_local::client::CallKind;
use sha2::Digest;
use support::*;

#[test]
fn install_invoke_list() {
    let mut host = host();
    let info = install(&mut host, alice(), "counter", plugin("counter"));
    assert_eq!(info.owner, alice());
    assert!(info.functions.contains(&"increment".to_owned()), "{info:?}");
    assert_eq!(info.code_sha256.len(), 32);

    assert_eq!(ok(&mut host, "counter", "increment", ""), "1");
    assert_eq!(ok(&mut host, "counter", "increment", "5"), "6");

    let page = host.list(bob(), ListArgs::default()).expect("list");
    assert_eq!(page.plugins.len(), 1);
    assert_eq!(page.plugins[0].name, "counter");
    assert_eq!(page.plugins[0].calls, 2);
    assert!(page.plugins[0].fuel_used_total > 0);
    assert_eq!(page.next, None);
}

#[test]
fn state_survives_calls_and_a_canister_upgrade() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    for _ in 0..3 {
        ok(&mut host, "counter", "increment", "");
    }
    ok(&mut host, "counter", "put", "colour=blue");
    let before = host
        .get(alice(), "counter")
        .expect("get")
        .expect("installed");

    upgrade_to_other_build(&mut host);

    assert_eq!(ok(&mut host, "counter", "get", ""), "3");
    assert_eq!(ok(&mut host, "counter", "get_key", "colour"), "blue");
    assert_eq!(ok(&mut host, "counter", "increment", ""), "4");
    let after = host
        .get(alice(), "counter")
        .expect("get")
        .expect("installed");
    assert_eq!(after.code_sha256, before.code_sha256);
    assert_eq!(after.calls, before.calls + 3);
}

#[test]
fn plugins_are_isolated_and_share_code() {
    let mut host = host();
    let a = install(&mut host, alice(), "a", plugin("counter"));
    let b = install(&mut host, bob(), "b", plugin("counter"));
    assert_eq!(a.code_sha256, b.code_sha256);
    ok(&mut host, "a", "increment", "10");
    ok(&mut host, "a", "put", "k=from-a");
    assert_eq!(ok(&mut host, "b", "get", ""), "0");
    assert!(matches!(
        err(&mut host, "b", "get_key", "k"),
        InvokeError::PluginError { .. }
    ));
    assert_eq!(ok(&mut host, "a", "get", ""), "10");
}

#[test]
fn a_failed_call_leaves_state_as_it_was() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    ok(&mut host, "counter", "increment", "7");
    let error = err(&mut host, "counter", "fail_after_increment", "");
    assert!(
        matches!(error, InvokeError::PluginError { .. }),
        "{error:?}"
    );
    assert_eq!(ok(&mut host, "counter", "get", ""), "7");
}

#[test]
fn a_dry_run_commits_nothing() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    ok(&mut host, "counter", "increment", "2");
    let dry = host
        .invoke(CallKind::Query, alice(), "counter", "increment", b"", None)
        .expect("query")
        .expect("dry run succeeds");
    assert_eq!(dry.output.as_slice(), b"3");
    assert_eq!(ok(&mut host, "counter", "get", ""), "2");
}

#[test]
fn bad_modules_are_refused_with_a_reason() {
    let mut host = host();
    assert!(matches!(
        install_err(&mut host, "junk", b"definitely not wasm".to_vec()),
        InstallError::InvalidWasm { .. }
    ));
    assert!(matches!(
        install_err(&mut host, "Bad Name", plugin("counter")),
        InstallError::InvalidName { .. }
    ));
    install(&mut host, alice(), "counter", plugin("counter"));
    assert!(matches!(
        install_err(&mut host, "counter", plugin("counter")),
        InstallError::NameTaken { .. }
    ));
    assert!(matches!(
        err(&mut host, "nothing", "run", ""),
        InvokeError::UnknownPlugin { .. }
    ));
    assert!(matches!(
        err(&mut host, "counter", "nothing", ""),
        InvokeError::UnknownFunction { .. }
    ));
}

#[test]
fn access_control() {
    // Default install policy: admins only; the deployer (a controller) is an admin.
    let mut host = plugin_host_local::client::PluginHost::deploy(&canister_wasm(), None, admin())
        .expect("deploy");
    refused_both_ways(
        &mut host,
        |host| host.install(alice(), install_args("counter", plugin("counter"))),
        |refused| matches!(refused, Err(InstallError::NotAuthorized(d)) if d.missing == Right::Install && d.caller == alice()),
    );
    install(&mut host, admin(), "counter", plugin("counter"));

    let mut host = host_any_authenticated_with_owner_only_counter();
    refused_both_ways(
        &mut host,
        |host| host.invoke(CallKind::Update, bob(), "counter", "increment", b"", None),
        |refused| matches!(refused, Err(f) if matches!(&f.error, InvokeError::NotAuthorized(d) if d.missing == Right::Invoke)),
    );
    assert!(call(&mut host, alice(), "counter", "increment", "").is_ok());
    assert!(call(&mut host, admin(), "counter", "increment", "").is_ok());

    let anonymous = candid::Principal::anonymous();
    refused_both_ways(
        &mut host,
        |host| host.install(anonymous, install_args("anon", plugin("counter"))),
        |refused| matches!(refused, Err(InstallError::NotAuthorized(_))),
    );
    refused_both_ways(
        &mut host,
        |host| host.uninstall(bob(), "counter"),
        |refused| matches!(refused, Err(ManageError::NotAuthorized(d)) if d.missing == Right::ManagePlugin),
    );
    host.set_invoke_policy(alice(), "counter", InvokePolicy::AllowList(vec![bob()]))
        .expect("message")
        .expect("owner may set the policy");
    assert!(call(&mut host, bob(), "counter", "increment", "").is_ok());
    host.uninstall(alice(), "counter")
        .expect("message")
        .expect("owner may uninstall");
    assert!(host.get(alice(), "counter").expect("get").is_none());
}

fn host_any_authenticated_with_owner_only_counter() -> plugin_host_local::client::PluginHost {
    let mut host = host();
    let mut args = install_args("counter", plugin("counter"));
    args.invoke_policy = Some(InvokePolicy::OwnerOnly);
    host.install(alice(), args)
        .expect("message")
        .expect("install");
    host
}

#[test]
fn modules_above_the_ingress_limit_install_from_chunks() {
    let mut host = host();
    // The counter plugin padded with a 2.5 MiB custom section.
    let mut wasm = plugin("counter");
    let padding = vec![0xAB; 2_500_000];
    let name = b"padding";
    let mut section = Vec::new();
    leb128(name.len() as u64, &mut section);
    section.extend_from_slice(name);
    section.extend_from_slice(&padding);
    wasm.push(0);
    leb128(section.len() as u64, &mut wasm);
    wasm.extend_from_slice(&section);

    let hashes = upload_chunks(&mut host, alice(), &wasm);
    assert_eq!(hashes.len(), 3);
    assert_eq!(host.stored_chunks(alice()).expect("query").len(), 3);
    assert!(host.stored_chunks(bob()).expect("query").is_empty());

    let args = |name: &str, hashes: Vec<ByteBuf>, sha: Vec<u8>| InstallChunkedArgs {
        name: name.to_owned(),
        chunk_hashes: hashes,
        wasm_sha256: ByteBuf::from(sha),
        config: None,
        invoke_policy: None,
        fuel_limit: None,
    };
    let wrong = host
        .install_chunked(alice(), args("big", hashes.clone(), vec![0; 32]))
        .expect("message");
    assert!(matches!(wrong, Err(InstallError::Chunk(_))), "{wrong:?}");

    let sha = sha2::Sha256::digest(&wasm).to_vec();
    let info = host
        .install_chunked(alice(), args("big", hashes, sha.clone()))
        .expect("message")
        .expect("chunked install");
    assert_eq!(info.code_sha256.as_slice(), sha.as_slice());
    assert_eq!(info.code_size, wasm.len() as u64);
    assert!(host.stored_chunks(alice()).expect("query").is_empty());
    assert_eq!(ok(&mut host, "big", "increment", ""), "1");
}

fn leb128(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn upgrade_plugin_keeps_state_and_rolls_back_a_failed_migration() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    ok(&mut host, "counter", "increment", "4");
    let upgraded = host
        .upgrade_plugin(
            alice(),
            UpgradePluginArgs {
                name: "counter".into(),
                wasm: ByteBuf::from(plugin("counter")),
                migration: Some("fail_after_increment".into()),
            },
        )
        .expect("message");
    assert!(
        matches!(upgraded, Err(InstallError::MigrationFailed(_))),
        "{upgraded:?}"
    );
    assert_eq!(ok(&mut host, "counter", "get", ""), "4");
    let upgraded = host
        .upgrade_plugin(
            alice(),
            UpgradePluginArgs {
                name: "counter".into(),
                wasm: ByteBuf::from(plugin("counter")),
                migration: Some("increment".into()),
            },
        )
        .expect("message")
        .expect("upgrade with a migration that succeeds");
    assert_eq!(upgraded.name, "counter");
    assert_eq!(ok(&mut host, "counter", "get", ""), "5");
}

#[test]
fn a_c_plugin_runs_and_keeps_state() {
    let mut host = host();
    let info = install(&mut host, alice(), "vowels", plugin("c_vowels"));
    assert_eq!(info.functions, vec!["count_vowels".to_owned()]);
    assert_eq!(
        ok(&mut host, "vowels", "count_vowels", "Internet Computer"),
        r#"{"count":6,"total":6}"#
    );
    assert_eq!(
        ok(&mut host, "vowels", "count_vowels", "aeiou"),
        r#"{"count":5,"total":11}"#
    );
}

#[test]
fn dao_voting_decides_and_migrates_to_v2() {
    let mut host = host();
    let mut args = install_args("dao", plugin("dao_voting"));
    args.config = Some(vec![("rule".into(), "quadratic".into())]);
    host.install(alice(), args)
        .expect("message")
        .expect("install");
    let ballots = r#"{"proposal":"p","total_supply":1000,"ballots":[
        {"voter":"a","weight":400,"choice":"yes"},{"voter":"b","weight":100,"choice":"no"},
        {"voter":"c","weight":81,"choice":"no"}]}"#;
    let decision = ok(&mut host, "dao", "decide", ballots);
    assert!(decision.contains(r#""outcome":"passed""#), "{decision}");
    assert!(decision.contains(r#""yes":20.0"#), "{decision}");
    match err(
        &mut host,
        "dao",
        "decide",
        r#"{"ballots":[{"voter":"a","weight":-1,"choice":"yes"}]}"#,
    ) {
        InvokeError::PluginError { message, .. } => {
            assert!(message.contains("invalid weight"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ok(&mut host, "dao", "stats", ""),
        r#"{"version":1,"decisions":1}"#
    );

    host.upgrade_plugin(
        alice(),
        UpgradePluginArgs {
            name: "dao".into(),
            wasm: ByteBuf::from(plugin("dao_voting_v2")),
            migration: Some("migrate".into()),
        },
    )
    .expect("message")
    .expect("upgrade to v2");
    assert_eq!(
        ok(&mut host, "dao", "stats", ""),
        r#"{"version":2,"decisions":1}"#
    );
    ok(&mut host, "dao", "decide", ballots);
    assert_eq!(
        ok(&mut host, "dao", "stats", ""),
        r#"{"version":2,"decisions":2}"#
    );
}

#[test]
fn the_nft_belongs_to_its_minter_and_evolves() {
    let mut host = host();
    install(&mut host, alice(), "creature", plugin("nft"));
    let minted = ok(&mut host, "creature", "mint", "");
    assert!(minted.contains(r#""level":1"#), "{minted}");
    assert!(matches!(
        err(&mut host, "creature", "mint", ""),
        InvokeError::PluginError { .. }
    ));
    for _ in 0..3 {
        ok(&mut host, "creature", "play", "");
    }
    let refused = call(&mut host, bob(), "creature", "feed", "").expect_err("not the owner");
    assert!(matches!(refused.error, InvokeError::PluginError { .. }));
    upgrade_to_other_build(&mut host);
    let metadata = ok(&mut host, "creature", "metadata", "");
    assert!(metadata.contains(r#""level":2"#), "{metadata}");
    assert!(ok(&mut host, "creature", "image", "").starts_with("<svg"));
}
