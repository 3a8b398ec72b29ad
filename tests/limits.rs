//! What callers can make the canister spend and store, end to end over the real canister: the
//! install right for uploads, the chunk store's caps and expiry, instruction quotas, the cycles
//! reserve, the caps on what a plugin's settings hold, and replies that stay under the IC's limit
//! whatever a caller sends.

#![allow(missing_docs)]

mod support;

use plugin_host_api::{
    ByteBuf, ChunkError, CyclesLow, InstallChunkedArgs, InstallError, InstallPolicy, InvokeError,
    InvokePolicy, ListArgs, ManageError, QuotaScope, Quotas, Right, Settings,
};
use plugin_host_local::client::{CallKind, PluginHost, Route};
use sha2::Digest;
use support::*;

/// A canister in which only admins install (the default), with `counter` installed by the admin.
fn admins_only_host() -> PluginHost {
    let mut host = PluginHost::deploy(&canister_wasm(), None, admin()).expect("deploy");
    install(&mut host, admin(), "counter", plugin("counter"));
    host
}

fn settings(host: &mut PluginHost) -> Settings {
    host.settings(admin()).expect("query").settings
}

/// Changes the settings with `change`, as an admin.
fn change_settings(host: &mut PluginHost, change: impl FnOnce(&mut Settings)) {
    let mut settings = settings(host);
    change(&mut settings);
    host.set_settings(admin(), settings)
        .expect("message")
        .expect("admins set settings");
}

#[test]
fn uploads_need_the_install_right_and_expire() {
    let mut host = admins_only_host();
    refused_both_ways(
        &mut host,
        |host| host.upload_chunk(alice(), b"chunk"),
        |reply| matches!(reply, Err(ChunkError::NotAuthorized(d)) if d.missing == Right::Install),
    );
    assert!(host.stored_chunks(alice()).expect("query").is_empty());

    // An admin's upload is kept for an hour, then expires and is never assembled.
    let wasm = plugin("counter");
    let hashes: Vec<ByteBuf> = wasm
        .chunks(1024 * 1024)
        .map(|chunk| {
            host.upload_chunk(admin(), chunk)
                .expect("message")
                .expect("stored")
        })
        .collect();
    assert_eq!(host.stored_chunks(admin()).expect("query"), hashes);
    let totals = host.settings(admin()).expect("query").totals;
    assert_eq!(totals.chunk_bytes, wasm.len() as u64);
    host.canister().advance_time(3_600_000_000_000);
    assert!(host.stored_chunks(admin()).expect("query").is_empty());
    let args = InstallChunkedArgs {
        name: "late".into(),
        chunk_hashes: hashes,
        wasm_sha256: ByteBuf::from(sha2::Sha256::digest(&wasm).to_vec()),
        config: None,
        invoke_policy: None,
        fuel_limit: None,
    };
    assert!(matches!(
        host.install_chunked(admin(), args).expect("message"),
        Err(InstallError::Chunk(ChunkError::MissingChunk { .. }))
    ));
}

#[test]
fn instruction_quotas_refuse_until_the_window_ends() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    // Every message moves the local runtime's clock by a second: an hour holds them all.
    let window_ns = 3_600_000_000_000;
    change_settings(&mut host, |s| {
        s.quotas = Quotas {
            window_ns,
            caller_instructions: 20_000_000,
            plugin_instructions: 30_000_000,
        }
    });
    // Bob calls (from a canister: as ingress, inspect_message would refuse the last call before
    // it runs) until his quota is used up; the calls before count.
    host.set_route(Route::FromCanister);
    let mut calls = 0;
    let refusal = loop {
        match call(&mut host, bob(), "counter", "increment", "") {
            Ok(_) => calls += 1,
            Err(failure) => break failure,
        }
        assert!(calls < 1_000, "the quota never ran out");
    };
    assert!(calls > 2, "{calls} calls");
    match refusal.error {
        InvokeError::QuotaExceeded(quota) => {
            assert_eq!(quota.scope, QuotaScope::Caller);
            assert_eq!(quota.limit_instructions, 20_000_000);
            assert!(quota.used_instructions >= 20_000_000);
            assert!(quota.retry_after_ns > 0 && quota.retry_after_ns <= window_ns);
        }
        other => panic!("{other:?}"),
    }
    let counted = host
        .get(bob(), "counter")
        .expect("query")
        .expect("installed");
    assert_eq!(counted.calls, calls, "the refused call changed nothing");
    // As ingress it is refused before it runs; the admin is not counted; Alice has her own.
    host.set_route(Route::Ingress);
    refused_both_ways(
        &mut host,
        |host| host.invoke(CallKind::Update, bob(), "counter", "increment", b"", None),
        |reply| matches!(reply, Err(f) if matches!(f.error, InvokeError::QuotaExceeded(_))),
    );
    assert!(call(&mut host, admin(), "counter", "increment", "").is_ok());
    // Alice runs into the plugin's quota, which Bob's calls used most of.
    host.set_route(Route::FromCanister);
    let mut calls = 0;
    let refusal = loop {
        if let Err(failure) = call(&mut host, alice(), "counter", "increment", "") {
            break failure;
        }
        calls += 1;
        assert!(calls < 100, "the plugin's quota never ran out");
    };
    assert!(
        matches!(&refusal.error, InvokeError::QuotaExceeded(q) if q.scope == QuotaScope::Plugin),
        "{refusal:?}"
    );
    let info = host
        .get(alice(), "counter")
        .expect("query")
        .expect("installed");
    assert!(info.quota.used_instructions >= info.quota.limit_instructions);
    // Dry runs are free for the canister: not counted, not refused.
    assert!(
        host.invoke(CallKind::Query, bob(), "counter", "get", b"", None)
            .expect("query")
            .is_ok()
    );
    // The next window.
    host.set_route(Route::Ingress);
    host.canister().advance_time(window_ns);
    assert!(call(&mut host, bob(), "counter", "increment", "").is_ok());
}

#[test]
fn a_quota_stops_a_call_that_would_use_more_than_is_left() {
    let mut host = host();
    install(&mut host, alice(), "loop", hostile("infinite_loop"));
    change_settings(&mut host, |s| {
        s.quotas = Quotas {
            window_ns: 60_000_000_000,
            caller_instructions: 500_000_000,
            plugin_instructions: 0,
        }
    });
    // The loop would run until its fuel (100 M) is out, some 2 B instructions: the quota stops it.
    host.set_route(Route::FromCanister);
    let failure = call(&mut host, bob(), "loop", "run", "").expect_err("stopped");
    match failure.error {
        InvokeError::QuotaExceeded(quota) => {
            assert_eq!(quota.scope, QuotaScope::Caller);
            assert!(quota.used_instructions >= 500_000_000);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        host.last_instructions() < 700_000_000,
        "{} instructions",
        host.last_instructions()
    );
}

#[test]
fn below_the_cycles_reserve_only_admins_install_and_invoke() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    let balance = host.canister().cycle_balance();
    change_settings(&mut host, |s| s.cycles_reserve = balance * 2);
    refused_both_ways(
        &mut host,
        |host| host.invoke(CallKind::Update, alice(), "counter", "increment", b"", None),
        |reply| matches!(reply, Err(f) if matches!(f.error, InvokeError::CyclesLow(CyclesLow { reserve, .. }) if reserve == balance * 2)),
    );
    assert!(matches!(
        host.install(alice(), install_args("more", plugin("counter")))
            .expect("message"),
        Err(InstallError::CyclesLow(_))
    ));
    assert!(call(&mut host, admin(), "counter", "increment", "").is_ok());
    // Topped up, everyone may again.
    host.canister().deposit_cycles(balance * 2);
    assert!(call(&mut host, alice(), "counter", "increment", "").is_ok());
}

#[test]
fn what_a_plugin_holds_is_capped() {
    let mut host = host();
    let caps = host.settings(admin()).expect("query").caps;
    let mut args = install_args("configured", plugin("counter"));
    args.config = Some(
        (0..=caps.config_entries)
            .map(|i| (format!("k{i}"), String::new()))
            .collect(),
    );
    assert!(matches!(
        host.install(alice(), args).expect("message"),
        Err(InstallError::LimitExceeded(l)) if l.limit == "config entries" && l.max == caps.config_entries
    ));
    install(&mut host, alice(), "counter", plugin("counter"));
    let big = vec![("k".to_owned(), "v".repeat(caps.config_bytes as usize))];
    assert!(matches!(
        host.set_config(alice(), "counter", big).expect("message"),
        Err(ManageError::LimitExceeded(l)) if l.limit == "config bytes"
    ));
    let many = (0..=caps.allow_list)
        .map(|i| candid::Principal::from_slice(&i.to_le_bytes()))
        .collect();
    assert!(matches!(
        host.set_invoke_policy(alice(), "counter", InvokePolicy::AllowList(many))
            .expect("message"),
        Err(ManageError::LimitExceeded(l)) if l.limit == "allow-list principals"
    ));
    let info = host
        .get(alice(), "counter")
        .expect("query")
        .expect("installed");
    assert!(info.config.is_empty() && info.invoke_policy == InvokePolicy::Public);
}

#[test]
fn replies_stay_under_the_limit_whatever_a_caller_sends() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    // A function name of a megabyte is echoed cut.
    let name = "f".repeat(1_000_000);
    match host
        .invoke(CallKind::Update, alice(), "counter", &name, b"", None)
        .expect("message")
    {
        Err(failure) => match failure.error {
            InvokeError::UnknownFunction { function, .. } => assert!(function.len() < 300),
            other => panic!("{other:?}"),
        },
        Ok(reply) => panic!("{reply:?}"),
    }
    // So is a plugin name.
    let long = "p".repeat(1_000_000);
    assert!(matches!(
        call(&mut host, alice(), &long, "f", "").map_err(|f| f.error),
        Err(InvokeError::UnknownPlugin { name }) if name.len() < 300
    ));
}

#[test]
fn list_pages_stay_under_the_reply_limit() {
    let mut host = host();
    // Plugins that each export 1,000 functions with names of 250 bytes: 250 KB per entry.
    let funcs: String = (0..1_000)
        .map(|i| format!(r#"(func (export "{i:0>250}") (result i32) (i32.const 0))"#))
        .collect();
    let wasm =
        wat::parse_str(format!("(module (memory (export \"memory\") 1) {funcs})")).expect("wat");
    for i in 0..12 {
        install(&mut host, alice(), &format!("wide{i:02}"), wasm.clone());
    }
    let mut seen = 0;
    let mut start_after = None;
    loop {
        let page = host
            .list(
                bob(),
                ListArgs {
                    start_after: start_after.clone(),
                    limit: None,
                },
            )
            .expect("a page under the reply limit");
        assert!(!page.plugins.is_empty());
        assert!(page.plugins.len() < 12, "the page is cut by size");
        seen += page.plugins.len();
        match page.next {
            Some(next) => start_after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, 12);
}

#[test]
fn settings_show_what_the_canister_holds_and_its_caps() {
    let mut host = host();
    install(&mut host, alice(), "a", plugin("counter"));
    install(&mut host, bob(), "b", plugin("counter"));
    let view = host.settings(bob()).expect("query");
    assert_eq!(
        view.settings.install_policy,
        InstallPolicy::AnyAuthenticated
    );
    assert_eq!(view.totals.plugins, 2);
    assert_eq!(view.totals.modules, 1, "the same code is stored once");
    assert_eq!(view.totals.code_bytes, plugin("counter").len() as u64);
    assert!(view.totals.stable_bytes > 0 && view.totals.heap_bytes > 0);
    assert_eq!(view.totals.cycle_balance, host.canister().cycle_balance());
    assert_eq!(view.caps.memory_pages, 1024);
    assert_eq!(view.caps.module_bytes, 8 * 1024 * 1024);
}

/// `invoke_query` sent as an update (`call` with [`CallKind::Update`]): as ingress, or from a
/// canister with [`Route::FromCanister`]. The canister runs it replicated.
fn dry_run_as_update(
    host: &mut PluginHost,
    caller: candid::Principal,
    plugin: &str,
    function: &str,
) -> Result<
    Result<plugin_host_api::InvokeReply, plugin_host_api::InvokeFailure>,
    plugin_host_local::client::CallError,
> {
    let args = (
        plugin,
        function,
        ByteBuf::from(Vec::new()),
        None::<plugin_host_api::InvokeOptions>,
    );
    host.call::<_, (Result<_, _>,)>(CallKind::Update, "invoke_query", args, caller)
        .map(|(reply,)| reply)
}

#[test]
fn invoke_query_called_as_an_update_is_for_admins_and_commits_nothing() {
    let mut host = host();
    install(&mut host, alice(), "counter", plugin("counter"));
    assert_eq!(ok(&mut host, "counter", "increment", ""), "1");
    assert_eq!(ok(&mut host, "counter", "increment", ""), "2");
    let before = host
        .get(alice(), "counter")
        .expect("query")
        .expect("installed");
    // Neither the plugin's owner nor anyone else who is not an admin may have the canister pay for
    // a dry run: as ingress, inspect_message refuses it; from a canister, the endpoint does.
    for caller in [alice(), bob()] {
        refused_both_ways(
            &mut host,
            |host| dry_run_as_update(host, caller, "counter", "increment"),
            |reply| matches!(reply, Err(f) if matches!(f.error, InvokeError::DryRunAsUpdate)),
        );
    }
    // An admin may, both ways: the dry run's reply, and nothing of it kept.
    for route in [Route::Ingress, Route::FromCanister] {
        host.set_route(route);
        let balance = host.canister().cycle_balance();
        let reply = dry_run_as_update(&mut host, admin(), "counter", "increment")
            .expect("message")
            .expect("a dry run");
        assert_eq!(reply.output.as_slice(), b"3", "{route:?}");
        assert!(reply.fuel_used > 0);
        assert!(
            host.canister().cycle_balance() < balance,
            "{route:?}: the canister paid for it"
        );
    }
    host.set_route(Route::Ingress);
    let after = host
        .get(alice(), "counter")
        .expect("query")
        .expect("installed");
    assert_eq!(after.calls, before.calls, "no call counted");
    assert_eq!(after.fuel_used_total, before.fuel_used_total);
    assert_eq!(after.memory_pages, before.memory_pages);
    let get = |host: &mut PluginHost, caller| {
        let reply = host
            .invoke(CallKind::Query, caller, "counter", "get", b"", None)
            .expect("query")
            .expect("get");
        String::from_utf8(reply.output.into_vec()).expect("utf-8")
    };
    assert_eq!(
        get(&mut host, bob()),
        "2",
        "the plugin's state is unchanged"
    );

    // As a query it is still for anyone the plugin's policy admits, admin or not.
    for caller in [alice(), bob(), admin()] {
        let reply = host
            .invoke(CallKind::Query, caller, "counter", "increment", b"", None)
            .expect("query")
            .expect("a dry run");
        assert_eq!(reply.output.as_slice(), b"3");
    }
    host.set_invoke_policy(alice(), "counter", InvokePolicy::AllowList(vec![bob()]))
        .expect("message")
        .expect("the owner sets the policy");
    let carol = plugin_host_local::identity::principal("carol");
    assert!(matches!(
        host.invoke(CallKind::Query, carol, "counter", "get", b"", None)
            .expect("query"),
        Err(f) if matches!(f.error, InvokeError::NotAuthorized(_))
    ));
    assert_eq!(get(&mut host, bob()), "2");
    // And the count goes on from where the committed calls left it.
    assert_eq!(ok(&mut host, "counter", "increment", ""), "3");
}
