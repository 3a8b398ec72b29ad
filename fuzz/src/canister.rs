//! Target `candid`: one message with random or mutated Candid argument bytes to a method of the
//! real canister (`target/dist/plugin_host.wasm.gz`) in the local runtime, from a random caller
//! (controller, listed admin, plugin owner, another principal, anonymous), as ingress (through
//! `canister_inspect_message`) or from another canister, as an update or a query (a query method
//! called as an update runs replicated; an update method called as a query is missing).
//!
//! Every case starts from the same state (built once per seed, saved, and loaded per case):
//! plugins with state, invoke policies and shared code, and an uploaded chunk.
//!
//! The rule asserted, precisely:
//! - the message ends in a reply that decodes as the method's Candid result type, a refusal by
//!   `inspect_message`, a missing method (a method name the canister does not export for that kind
//!   of message), or a trap;
//! - it traps only if the canister could not decode its arguments: the argument bytes do not
//!   decode (natively, with candid and ic-cdk's decoder configuration) as the method's argument
//!   types. This is ic-cdk's behaviour for every method with arguments (`invoke`'s own decoder
//!   does the same); a trap on arguments that decode is a failure;
//! - a message that did not succeed (a trap, a refusal, a reject, a reply that is an `Err`, or
//!   any query) leaves the state as it was: the digest of everything observable (every plugin's
//!   `get` and `list` entry without its quota window, an `invoke_query` of each plugin's state
//!   reader, `settings` without cycles and heap figures, each caller's `stored_chunks`, the stable
//!   memory size) is the baseline's.

use std::path::{Path, PathBuf};

use candid::utils::decode_args_with_config;
use candid::{CandidType, DecoderConfig, Encode, Principal};
use ic_local_runtime::{Canister, Runtime, RuntimeError};
use plugin_host_api::{
    ByteBuf, ChunkError, InitArgs, InstallArgs, InstallChunkedArgs, InstallError, InstallPolicy,
    InvokeFailure, InvokeOptions, InvokePolicy, InvokeReply, ListArgs, ListPage, ManageError,
    PluginInfo, QuotaUsage, Quotas, Settings, SettingsError, SettingsView, UpgradePluginArgs,
};
use plugin_host_local::client::{CallError, CallKind, PluginHost, Route};
use plugin_host_local::identity;

use crate::rng::Rng;
use crate::{Case, Verdict};

/// A plugin with state in memory (a counter), a global and a var; `get` outputs all three.
const PLUGIN: &str = r#"(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  (global $calls (mut i64) (i64.const 0))
  (func $key (result i64)
    (local $k i64)
    (local.set $k (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $k) (i64.const 0x79656b)) ;; "key"
    (local.get $k))
  (func (export "inc") (result i32)
    (local $v i64)
    (i64.store (i32.const 64) (i64.add (i64.load (i32.const 64)) (i64.const 1)))
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (local.set $v (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $v) (global.get $calls))
    (call $var_set (call $key) (local.get $v))
    (i32.const 0))
  (func (export "get") (result i32)
    (local $out i64) (local $v i64)
    (local.set $out (call $alloc (i64.const 24)))
    (call $store_u64 (local.get $out) (i64.load (i32.const 64)))
    (call $store_u64 (i64.add (local.get $out) (i64.const 8)) (global.get $calls))
    (local.set $v (call $var_get (call $key)))
    (if (i64.ne (local.get $v) (i64.const 0))
      (then (call $store_u64 (i64.add (local.get $out) (i64.const 16)) (call $load_u64 (local.get $v)))))
    (call $output_set (local.get $out) (i64.const 24))
    (i32.const 0))
  (func (export "fail") (result i32)
    (i64.store (i32.const 64) (i64.const 999))
    (call $error_set (call $key))
    (i32.const 1))
  (func (export "trap") (result i32)
    (i64.store (i32.const 64) (i64.const 999))
    unreachable)
  (func (export "spin") (result i32)
    (loop $l (br $l))
    (i32.const 0))
)"#;

/// The plugins of the baseline: name, invoke policy.
fn plugins() -> Vec<(&'static str, InvokePolicy)> {
    vec![
        ("counter", InvokePolicy::Public),
        ("private", InvokePolicy::OwnerOnly),
        ("listed", InvokePolicy::AllowList(vec![other()])),
    ]
}

fn controller() -> Principal {
    identity::principal("default")
}
fn admin() -> Principal {
    identity::principal("fuzz-admin")
}
fn owner() -> Principal {
    identity::principal("alice")
}
fn other() -> Principal {
    identity::principal("bob")
}

/// Every caller kind, by name.
fn callers() -> [(&'static str, Principal); 5] {
    [
        ("controller", controller()),
        ("admin", admin()),
        ("owner", owner()),
        ("other", other()),
        ("anonymous", Principal::anonymous()),
    ]
}

/// Every method of `plugin_host.did`, with its kind.
const METHODS: [(&str, CallKind); 19] = [
    ("clear_chunks", CallKind::Update),
    ("get", CallKind::Query),
    ("install", CallKind::Update),
    ("install_chunked", CallKind::Update),
    ("invoke", CallKind::Update),
    ("invoke_query", CallKind::Query),
    ("list", CallKind::Query),
    ("set_config", CallKind::Update),
    ("set_invoke_policy", CallKind::Update),
    ("set_settings", CallKind::Update),
    ("settings", CallKind::Query),
    ("stored_chunks", CallKind::Query),
    ("uninstall", CallKind::Update),
    ("upgrade_plugin", CallKind::Update),
    ("upload_chunk", CallKind::Update),
    ("version", CallKind::Query),
    ("whoami", CallKind::Query),
    // Not exported: always a missing method.
    ("no_such_method", CallKind::Update),
    ("canister_init", CallKind::Update),
];

/// The canister, a saved baseline state, and the baseline's digest.
pub struct Fixture {
    runtime: Runtime,
    dir: PathBuf,
    baseline: String,
    plugin_wasm: Vec<u8>,
}

impl Fixture {
    /// Deploys the canister and builds the baseline state (the same for every seed: the cases
    /// differ, not where they start).
    pub fn new(wasm_path: &Path, seed: u64) -> Result<Self, String> {
        let wasm = std::fs::read(wasm_path).map_err(|e| {
            format!(
                "{}: {e} (build it with `cargo xtask build-canister`)",
                wasm_path.display()
            )
        })?;
        let runtime = Runtime::new().map_err(|e| e.to_string())?;
        let init = InitArgs {
            admins: Some(vec![admin()]),
            install_policy: Some(InstallPolicy::AllowList(vec![owner()])),
            ..InitArgs::default()
        };
        let arg = candid::encode_args((Some(init),)).map_err(|e| e.to_string())?;
        let (canister, _) = Canister::install_on(&runtime, &wasm, &arg, controller().as_slice())
            .map_err(|e| format!("deploying the canister: {e}"))?;
        let mut host = PluginHost::from_canister(canister);
        let plugin_wasm = wat::parse_str(PLUGIN).map_err(|e| e.to_string())?;
        for (name, policy) in plugins() {
            let args = InstallArgs {
                name: name.into(),
                wasm: ByteBuf::from(plugin_wasm.clone()),
                config: Some(vec![("k".into(), "v".into())]),
                invoke_policy: Some(policy),
                fuel_limit: Some(1_000_000),
            };
            host.install(owner(), args)
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("installing {name}: {e}"))?;
        }
        for _ in 0..3 {
            host.invoke(CallKind::Update, owner(), "counter", "inc", b"", None)
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("counter.inc: {e}"))?;
        }
        host.upload_chunk(owner(), b"a chunk of a module")
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("upload_chunk: {e}"))?;
        // One directory per fixture: a run's threads each have their own.
        static FIXTURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let fixture = FIXTURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "plugin-host-fuzz-{}-{seed}-{fixture}",
            std::process::id()
        ));
        let canister = host.canister();
        canister
            .save(&dir)
            .map_err(|e| format!("saving the baseline: {e}"))?;
        let mut fixture = Self {
            runtime,
            dir,
            baseline: String::new(),
            plugin_wasm,
        };
        let mut host = fixture.load()?;
        fixture.baseline = digest(&mut host)?;
        Ok(fixture)
    }

    fn load(&self) -> Result<PluginHost, String> {
        Canister::load_on(&self.runtime, &self.dir)
            .map(PluginHost::from_canister)
            .map_err(|e| format!("loading the baseline: {e}"))
    }

    /// Runs one case.
    pub fn run(&mut self, case: &mut Case) -> Verdict {
        let rng = &mut case.rng;
        // The two methods the canister does not export, one case in twenty.
        let (method, own_kind) = if rng.chance(1, 20) {
            METHODS[16 + rng.index(2)]
        } else {
            METHODS[rng.index(16)]
        };
        let kind = if rng.chance(1, 10) {
            match own_kind {
                CallKind::Update => CallKind::Query,
                CallKind::Query => CallKind::Update,
            }
        } else {
            own_kind
        };
        let (caller_name, caller) = *rng.pick(&callers());
        let route = if rng.chance(1, 2) {
            Route::Ingress
        } else {
            Route::FromCanister
        };
        let (how, arg) = argument(rng, method, &self.plugin_wasm);
        let decodes = decodes(method, &arg);
        let description = format!(
            "{method} as {kind:?} from {caller_name} ({route:?}), {how} argument of {} bytes (decodes natively: {decodes:?})",
            arg.len()
        );
        case.artifact("arg.bin", &arg);
        let mut host = self.load()?;
        host.set_route(route);
        let result = host.call_raw(kind, method, &arg, caller);
        let outcome = judge(method, kind, &result, &decodes)
            .map_err(|e| format!("{description}: {e}\nresult: {}", show(&result)))?;
        case.note(format!("{method}: {outcome}"));
        // Queries keep nothing, also when called as updates (replicated).
        let changes_allowed = outcome == "ok" && own_kind == CallKind::Update;
        if !changes_allowed {
            let after = digest(&mut host)?;
            if after != self.baseline {
                return Err(format!(
                    "{description}: ended `{outcome}` but changed the state\nresult: {}\n\nbaseline:\n{}\n\nafter:\n{after}",
                    show(&result),
                    self.baseline
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn show(result: &Result<Vec<u8>, CallError>) -> String {
    match result {
        Ok(bytes) => format!("reply of {} bytes", bytes.len()),
        Err(e) => format!("{e}"),
    }
}

/// Whether the argument bytes decode as `method`'s argument types, as ic-cdk decodes them
/// (`Ok(())`), or candid's error; `None` for methods without arguments (nothing is decoded).
fn decodes(method: &str, arg: &[u8]) -> Option<Result<(), String>> {
    let bytes: &[u8] = if arg.is_empty() { b"DIDL\x00\x00" } else { arg };
    let mut config = DecoderConfig::new();
    config.set_skipping_quota(10_000);
    let c = &config;
    let r = match method {
        "install" => decode_args_with_config::<(InstallArgs,)>(bytes, c).map(drop),
        "install_chunked" => decode_args_with_config::<(InstallChunkedArgs,)>(bytes, c).map(drop),
        "upload_chunk" => decode_args_with_config::<(ByteBuf,)>(bytes, c).map(drop),
        "invoke" | "invoke_query" => {
            decode_args_with_config::<(String, String, ByteBuf, Option<InvokeOptions>)>(bytes, c)
                .map(drop)
        }
        "list" => decode_args_with_config::<(ListArgs,)>(bytes, c).map(drop),
        "get" | "uninstall" => decode_args_with_config::<(String,)>(bytes, c).map(drop),
        "upgrade_plugin" => decode_args_with_config::<(UpgradePluginArgs,)>(bytes, c).map(drop),
        "set_config" => {
            decode_args_with_config::<(String, Vec<(String, String)>)>(bytes, c).map(drop)
        }
        "set_invoke_policy" => {
            decode_args_with_config::<(String, InvokePolicy)>(bytes, c).map(drop)
        }
        "set_settings" => decode_args_with_config::<(Settings,)>(bytes, c).map(drop),
        _ => return None,
    };
    Some(r.map_err(|e| e.to_string()))
}

/// Checks a message's ending against the rule; returns a short name of the outcome ("ok" for a
/// successful update or query).
fn judge(
    method: &str,
    kind: CallKind,
    result: &Result<Vec<u8>, CallError>,
    decodes: &Option<Result<(), String>>,
) -> Result<String, String> {
    // A query method called as an update runs replicated (as on the replica); an update method
    // called as a query is missing.
    let exported = METHODS.iter().any(|(m, k)| {
        *m == method
            && !matches!(*m, "no_such_method" | "canister_init")
            && (*k == kind || *k == CallKind::Query)
    });
    match result {
        Err(CallError::Runtime(RuntimeError::MissingMethod { .. })) => {
            if exported {
                Err("the runtime found no such method, but the canister exports it".into())
            } else {
                Ok("missing method".into())
            }
        }
        _ if !exported => Err("a method the canister does not export answered".into()),
        Err(CallError::Runtime(RuntimeError::NotAccepted { .. })) => {
            Ok("refused by inspect_message".into())
        }
        Err(CallError::Runtime(RuntimeError::Trap { message, .. })) => match decodes {
            Some(Err(_)) => Ok("trap: arguments do not decode".into()),
            Some(Ok(())) => Err(format!("trapped on arguments that decode: {message}")),
            None => Err(format!("a method without arguments trapped: {message}")),
        },
        Err(CallError::Rejected { .. }) => Ok("rejected".into()),
        Err(other) => Err(format!("the message failed: {other}")),
        Ok(reply) => {
            let ok = reply_is_ok(method, reply)?;
            if let Some(Err(e)) = decodes {
                // Only `invoke`'s direct path reads arguments candid would not.
                if !method.starts_with("invoke") {
                    return Err(format!(
                        "answered although candid cannot decode the arguments ({e})"
                    ));
                }
            }
            Ok(if ok {
                "ok".into()
            } else {
                "typed error".into()
            })
        }
    }
}

/// Decodes a reply as the method's result type: whether it is a success.
fn reply_is_ok(method: &str, reply: &[u8]) -> Result<bool, String> {
    fn one<T: CandidType + for<'a> candid::Deserialize<'a>>(reply: &[u8]) -> Result<T, String> {
        candid::decode_one::<T>(reply).map_err(|e| format!("the reply does not decode: {e}"))
    }
    Ok(match method {
        "install" | "install_chunked" | "upgrade_plugin" => {
            one::<Result<PluginInfo, InstallError>>(reply)?.is_ok()
        }
        "upload_chunk" => one::<Result<ByteBuf, ChunkError>>(reply)?.is_ok(),
        "stored_chunks" => one::<Vec<ByteBuf>>(reply).map(|_| true)?,
        "clear_chunks" => candid::decode_args::<()>(reply)
            .map(|()| true)
            .map_err(|e| format!("the reply does not decode: {e}"))?,
        "invoke" | "invoke_query" => one::<Result<InvokeReply, InvokeFailure>>(reply)?.is_ok(),
        "list" => one::<ListPage>(reply).map(|_| true)?,
        "get" => one::<Option<PluginInfo>>(reply).map(|_| true)?,
        "uninstall" => one::<Result<(), ManageError>>(reply)?.is_ok(),
        "set_config" | "set_invoke_policy" => {
            one::<Result<PluginInfo, ManageError>>(reply)?.is_ok()
        }
        "settings" => one::<SettingsView>(reply).map(|_| true)?,
        "set_settings" => one::<Result<(), SettingsError>>(reply)?.is_ok(),
        "version" => one::<String>(reply).map(|_| true)?,
        "whoami" => one::<Principal>(reply).map(|_| true)?,
        other => return Err(format!("no reply type known for {other}")),
    })
}

/// Everything observable, as text (quota windows, cycles and heap figures left out: they move
/// with time and with every message).
fn digest(host: &mut PluginHost) -> Result<String, String> {
    let e = |e: CallError| e.to_string();
    let mut out = String::new();
    let mut start_after = None;
    let mut names = Vec::new();
    loop {
        let page = host
            .list(
                controller(),
                ListArgs {
                    start_after: start_after.clone(),
                    limit: None,
                },
            )
            .map_err(e)?;
        for mut info in page.plugins {
            info.quota = QuotaUsage::default();
            names.push(info.name.clone());
            out.push_str(&format!("list: {info:?}\n"));
        }
        match page.next {
            Some(next) => start_after = Some(next),
            None => break,
        }
    }
    for name in names.iter().map(String::as_str).chain(["counter", "nope"]) {
        let info = host
            .get(Principal::anonymous(), name)
            .map_err(e)?
            .map(|mut i| {
                i.quota = QuotaUsage::default();
                i
            });
        out.push_str(&format!("get {name}: {info:?}\n"));
        let state = host
            .invoke(CallKind::Query, controller(), name, "get", b"", None)
            .map_err(e)?
            .map(|r| r.output.into_vec())
            .map_err(|f| f.error);
        out.push_str(&format!("state {name}: {state:?}\n"));
    }
    let view = host.settings(controller()).map_err(e)?;
    let t = &view.totals;
    out.push_str(&format!(
        "settings: {:?}\ntotals: plugins {} modules {} code {} chunks {} stable {}\ncaps: {:?}\n",
        view.settings, t.plugins, t.modules, t.code_bytes, t.chunk_bytes, t.stable_bytes, view.caps
    ));
    for (who, caller) in callers() {
        let chunks = host.stored_chunks(caller).map_err(e)?;
        out.push_str(&format!("stored_chunks {who}: {chunks:?}\n"));
    }
    out.push_str(&format!(
        "stable pages: {}\n",
        host.canister().stable_size_pages()
    ));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

fn name(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => "Not A Name!".into(),
        2 => "n".repeat(rng.range(60, 300) as usize),
        3 => "new-plugin".into(),
        4 => "ü".into(),
        _ => rng.pick(&["counter", "private", "listed"]).to_string(),
    }
}

fn principal(rng: &mut Rng) -> Principal {
    match rng.below(4) {
        0 => Principal::from_slice(&rng.bytes_in(0, 29)),
        _ => rng.pick(&callers()).1,
    }
}

fn config(rng: &mut Rng) -> Vec<(String, String)> {
    (0..rng.below(4))
        .map(|i| {
            (
                format!("k{i}"),
                "v".repeat(rng.pick(&[0, 10, 70_000]).to_owned()),
            )
        })
        .collect()
}

fn policy(rng: &mut Rng) -> InvokePolicy {
    match rng.below(3) {
        0 => InvokePolicy::Public,
        1 => InvokePolicy::OwnerOnly,
        _ => InvokePolicy::AllowList((0..rng.below(4)).map(|_| principal(rng)).collect()),
    }
}

fn wasm(rng: &mut Rng, plugin: &[u8]) -> ByteBuf {
    ByteBuf::from(match rng.below(4) {
        0 => plugin.to_vec(),
        1 => {
            let mut w = plugin.to_vec();
            let at = rng.index(w.len());
            w[at] ^= 1 << rng.below(8);
            w
        }
        2 => b"\0asm\x01\0\0\0".to_vec(),
        _ => rng.bytes_in(0, 100),
    })
}

fn opt<T>(rng: &mut Rng, value: impl FnOnce(&mut Rng) -> T) -> Option<T> {
    if rng.chance(1, 2) {
        Some(value(rng))
    } else {
        None
    }
}

/// A valid encoding of random arguments for `method`.
fn valid(rng: &mut Rng, method: &str, plugin: &[u8]) -> Vec<u8> {
    let encoded = match method {
        "install" => {
            let args = InstallArgs {
                name: name(rng),
                wasm: wasm(rng, plugin),
                config: opt(rng, config),
                invoke_policy: opt(rng, policy),
                fuel_limit: opt(rng, Rng::edgy_u64),
            };
            Encode!(&args)
        }
        "install_chunked" => {
            let args = InstallChunkedArgs {
                name: name(rng),
                chunk_hashes: (0..rng.below(3))
                    .map(|_| {
                        let len = *rng.pick(&[0, 31, 32]);
                        ByteBuf::from(rng.bytes(len))
                    })
                    .collect(),
                wasm_sha256: {
                    let len = *rng.pick(&[0, 32]);
                    ByteBuf::from(rng.bytes(len))
                },
                config: opt(rng, config),
                invoke_policy: opt(rng, policy),
                fuel_limit: opt(rng, Rng::edgy_u64),
            };
            Encode!(&args)
        }
        "upload_chunk" => Encode!(&ByteBuf::from(rng.bytes_in(0, 2000))),
        "invoke" | "invoke_query" => {
            let function = rng
                .pick(&["inc", "get", "fail", "trap", "nope", ""])
                .to_string();
            let options = opt(rng, |rng| InvokeOptions {
                fuel: opt(rng, Rng::edgy_u64),
                logs: opt(rng, |rng| rng.chance(1, 2)),
            });
            Encode!(
                &name(rng),
                &function,
                &ByteBuf::from(rng.bytes_in(0, 40)),
                &options
            )
        }
        "list" => Encode!(&ListArgs {
            start_after: opt(rng, name),
            limit: opt(rng, |rng| rng.edgy_u64() as u32),
        }),
        "get" | "uninstall" => Encode!(&name(rng)),
        "upgrade_plugin" => Encode!(&UpgradePluginArgs {
            name: name(rng),
            wasm: wasm(rng, plugin),
            migration: opt(rng, |rng| rng
                .pick(&["inc", "fail", "trap", "nope"])
                .to_string()),
        }),
        "set_config" => Encode!(&name(rng), &config(rng)),
        "set_invoke_policy" => Encode!(&name(rng), &policy(rng)),
        "set_settings" => Encode!(&Settings {
            admins: (0..rng.below(3)).map(|_| principal(rng)).collect(),
            install_policy: match rng.below(3) {
                0 => InstallPolicy::AdminsOnly,
                1 => InstallPolicy::AnyAuthenticated,
                _ => InstallPolicy::AllowList((0..rng.below(3)).map(|_| principal(rng)).collect()),
            },
            quotas: Quotas {
                window_ns: rng.edgy_u64(),
                caller_instructions: rng.edgy_u64(),
                plugin_instructions: rng.edgy_u64(),
            },
            cycles_reserve: u128::from(rng.edgy_u64()),
        }),
        _ => Encode!(),
    };
    encoded.unwrap_or_default()
}

/// Changes `bytes` in 1 to 4 places.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.range(1, 4) {
        let len = bytes.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.index(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.index(len);
                let any = rng.next_u64() as u8;
                bytes[at] = *rng.pick(&[0, 1, 0x7f, 0x80, 0xff, any]);
            }
            2 => {
                let at = rng.index(len + 1);
                bytes.insert(at, rng.next_u64() as u8);
            }
            3 if len > 0 => {
                bytes.remove(rng.index(len));
            }
            4 => bytes.truncate(rng.index(len + 1)),
            5 if len > 0 => {
                let from = rng.index(len);
                let to = (from + rng.range(1, 16) as usize).min(len);
                let copy = bytes[from..to].to_vec();
                let at = rng.index(len + 1);
                bytes.splice(at..at, copy);
            }
            6 if len > 0 => {
                // A length or count (LEB128) made huge.
                let at = rng.index(len);
                let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
                bytes.splice(at..(at + 1).min(len), huge);
            }
            _ => bytes.extend(rng.bytes_in(1, 8)),
        }
    }
    bytes
}

/// The argument of a case: how it was made, and its bytes.
fn argument(rng: &mut Rng, method: &str, plugin: &[u8]) -> (&'static str, Vec<u8>) {
    // Methods without arguments are sent as the method of another's arguments at times.
    let typed_as = if rng.chance(1, 10) {
        rng.pick(&METHODS).0
    } else {
        method
    };
    match rng.below(10) {
        0..=3 => ("valid", valid(rng, typed_as, plugin)),
        4..=7 => {
            let bytes = valid(rng, typed_as, plugin);
            ("mutated", mutate(rng, bytes))
        }
        8 => {
            let mut bytes = b"DIDL".to_vec();
            bytes.extend(rng.bytes_in(0, 64));
            ("random DIDL", bytes)
        }
        _ => ("random", rng.bytes_in(0, 64)),
    }
}
