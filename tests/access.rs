//! The access-control matrix, `tests/access_matrix.md`, run cell by cell through the real
//! canister in the local runtime (the matrix describes its set-up, what each call sends and how
//! to read a cell).
//!
//! Every cell runs on its own copy of the set-up (saved once, loaded per cell): update rows as an
//! ingress message and as a call from another canister, query rows as a query call. The outcome
//! must be exactly the cell's; a refused call must leave the state digest as it was (`list`,
//! `get` of each plugin, `settings().totals` but the cycle balance and heap size,
//! `stored_chunks` of every principal, the whole stable memory), and an ingress message that
//! `inspect_message` refuses must not change the cycle balance either. So that the digest is
//! known to see what a call writes, an allowed call must change it exactly when it writes (see
//! [`writes`]). The rows must be exactly
//! the `.did`'s service methods: one `update` row per update method, a `query` and an `update`
//! row per query method.

#![allow(missing_docs)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::Path;

use candid::types::TypeInner;
use candid::{CandidType, Decode, Encode, Principal};
use candid_parser::utils::CandidSource;
use ic_local_runtime::{Canister, RuntimeError};
use plugin_host_api::{
    ByteBuf, ChunkError, Denied, InitArgs, InstallChunkedArgs, InstallError, InstallPolicy,
    InvokeError, InvokeFailure, InvokePolicy, InvokeReply, ListArgs, ListPage, ManageError,
    PluginInfo, SettingsError, SettingsView, Totals, UpgradePluginArgs,
};
use plugin_host_local::client::{CallError, CallKind, PluginHost, Route};
use plugin_host_local::identity;
use sha2::Digest as _;
use support::*;

/// The callers, in the matrix's column order.
const WHO: [&str; 6] = [
    "anonymous",
    "controller",
    "admin",
    "owner",
    "allow-listed",
    "other",
];

fn principal(who: &str) -> Principal {
    match who {
        "anonymous" => Principal::anonymous(),
        "controller" => admin(),
        "admin" => identity::principal("listed-admin"),
        "owner" => identity::principal("plugin-owner"),
        "allow-listed" => identity::principal("allow-listed"),
        "other" => identity::principal("other"),
        _ => panic!("no caller {who:?}"),
    }
}

/// The tiny module of `install` and of the uploaded chunks.
fn fresh_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#,
    )
    .expect("wat")
}

/// The set-up the matrix describes.
fn set_up() -> PluginHost {
    let init = InitArgs {
        admins: Some(vec![principal("admin")]),
        install_policy: Some(InstallPolicy::AllowList(vec![
            principal("owner"),
            principal("allow-listed"),
        ])),
        ..InitArgs::default()
    };
    let mut host = deploy_on_runtime(Some(init), principal("controller"));
    let mut args = install_args("shared", plugin("counter"));
    args.invoke_policy = Some(InvokePolicy::AllowList(vec![principal("allow-listed")]));
    args.config = Some(vec![("greeting".into(), "hello".into())]);
    host.install(principal("owner"), args)
        .expect("install message")
        .expect("the owner installs");
    call(&mut host, principal("owner"), "shared", "increment", "")
        .expect("the owner increments its plugin");
    for who in ["controller", "admin", "owner", "allow-listed"] {
        host.upload_chunk(principal(who), &fresh_wasm())
            .expect("upload message")
            .unwrap_or_else(|e| panic!("{who} uploads: {e}"));
    }
    host
}

/// A row of the matrix.
struct Row {
    method: String,
    kind: CallKind,
    cells: Vec<String>,
}

fn matrix_path() -> std::path::PathBuf {
    repo().join("tests/access_matrix.md")
}

/// The rows of the table whose header starts `| method | call |`.
fn parse_matrix(text: &str) -> Vec<Row> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("| method | call |"));
    let header = lines.next().expect("the matrix's header row");
    let columns: Vec<&str> = cells(header);
    assert_eq!(
        columns[2..],
        WHO,
        "the matrix's columns are method, call and the six callers"
    );
    lines
        .skip(1) // the separator row
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells = cells(line);
            assert_eq!(cells.len(), 8, "eight cells in {line:?}");
            let kind = match cells[1] {
                "update" => CallKind::Update,
                "query" => CallKind::Query,
                other => panic!("call {other:?} is neither `update` nor `query`: {line:?}"),
            };
            Row {
                method: cells[0].trim_matches('`').to_owned(),
                kind,
                cells: cells[2..]
                    .iter()
                    .map(|c| c.trim_matches('`').to_owned())
                    .collect(),
            }
        })
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

/// The service methods of `plugin_host.did`, each with whether it is a query.
fn did_methods() -> BTreeMap<String, bool> {
    let did = repo().join("canister/plugin_host/plugin_host.did");
    let (env, actor) = CandidSource::File(&did).load().expect("the .did parses");
    let actor = actor.expect("the .did has a service");
    env.as_service(&actor)
        .expect("a service")
        .iter()
        .map(|(name, ty)| {
            let TypeInner::Func(func) = ty.as_ref() else {
                panic!("method {name} is not a function");
            };
            (name.clone(), func.is_query())
        })
        .collect()
}

#[test]
fn the_matrix_has_the_rows_of_every_method_of_the_did() {
    let rows = parse_matrix(&std::fs::read_to_string(matrix_path()).expect("the matrix"));
    let have: Vec<(String, &str)> = rows
        .iter()
        .map(|r| (r.method.clone(), kind_name(r.kind)))
        .collect();
    let want: BTreeSet<(String, &str)> = did_methods()
        .into_iter()
        .flat_map(|(method, query)| {
            let kinds: &[&str] = if query {
                &["query", "update"]
            } else {
                &["update"]
            };
            kinds.iter().map(move |k| (method.clone(), *k))
        })
        .collect();
    let have_set: BTreeSet<(String, &str)> = have.iter().cloned().collect();
    assert_eq!(have.len(), have_set.len(), "a row appears twice: {have:?}");
    let missing: Vec<_> = want.difference(&have_set).collect();
    let extra: Vec<_> = have_set.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "tests/access_matrix.md does not match plugin_host.did: rows missing {missing:?} \
         (an update method needs an `update` row, a query method a `query` and an `update` \
         row), rows for no method of the .did {extra:?}"
    );
}

fn kind_name(kind: CallKind) -> &'static str {
    match kind {
        CallKind::Update => "update",
        CallKind::Query => "query",
    }
}

/// Reads a reply as a cell's outcome; the caller is who sent the call.
type Reader = fn(&[u8], Principal) -> String;

/// What a cell's call sends: Candid arguments, and how to read the reply.
fn request(method: &str) -> (Vec<u8>, Reader) {
    let fresh = fresh_wasm();
    let sha = ByteBuf::from(sha2::Sha256::digest(&fresh).to_vec());
    let arg = match method {
        "install" => Encode!(&install_args("fresh", fresh)),
        "install_chunked" => Encode!(&InstallChunkedArgs {
            name: "fresh".into(),
            chunk_hashes: vec![sha.clone()],
            wasm_sha256: sha,
            fuel_limit: None,
            invoke_policy: None,
            config: None,
        }),
        "upload_chunk" => Encode!(&ByteBuf::from(vec![0x5a; 16])),
        "clear_chunks" | "stored_chunks" | "settings" | "version" | "whoami" => Encode!(),
        "invoke" | "invoke_query" => Encode!(
            &"shared",
            &"increment",
            &ByteBuf::new(),
            &None::<plugin_host_api::InvokeOptions>
        ),
        "list" => Encode!(&ListArgs::default()),
        "get" | "uninstall" => Encode!(&"shared"),
        "upgrade_plugin" => Encode!(&UpgradePluginArgs {
            name: "shared".into(),
            wasm: ByteBuf::from(plugin("counter")),
            migration: None,
        }),
        "set_config" => Encode!(&"shared", &vec![("mode".to_owned(), "test".to_owned())]),
        "set_invoke_policy" => Encode!(&"shared", &InvokePolicy::Public),
        // The set-up's settings: what `set_settings` sends is read first (see `run_cell`).
        "set_settings" => Encode!(),
        other => panic!("the test does not know how to call `{other}`: add it to `request`"),
    }
    .expect("encode the arguments");
    let read: Reader = match method {
        "install" | "install_chunked" | "upgrade_plugin" => {
            |b, c| result::<PluginInfo, InstallError>(b, c, denied_install)
        }
        "upload_chunk" => |b, c| {
            result::<ByteBuf, ChunkError>(b, c, |e| match e {
                ChunkError::NotAuthorized(d) => Some(d),
                _ => None,
            })
        },
        "clear_chunks" => |b, _| reply::<()>(b),
        "stored_chunks" => |b, _| reply::<Vec<ByteBuf>>(b),
        "invoke" | "invoke_query" => |b, c| {
            let value = Decode!(b, Result<InvokeReply, InvokeFailure>);
            match value {
                Ok(Ok(_)) => "allowed".into(),
                Ok(Err(failure)) => match &failure.error {
                    InvokeError::NotAuthorized(d) => not_authorized(d, c),
                    other => variant(other),
                },
                Err(e) => format!("undecodable reply: {e}"),
            }
        },
        "list" => |b, _| reply::<ListPage>(b),
        "get" => |b, _| reply::<Option<PluginInfo>>(b),
        "settings" => |b, _| reply::<SettingsView>(b),
        "version" => |b, _| reply::<String>(b),
        "whoami" => |b, c| match Decode!(b, Principal) {
            Ok(p) if p == c => "allowed".into(),
            Ok(p) => format!("whoami answered {p}"),
            Err(e) => format!("undecodable reply: {e}"),
        },
        "uninstall" => |b, c| result::<(), ManageError>(b, c, denied_manage),
        "set_config" | "set_invoke_policy" => {
            |b, c| result::<PluginInfo, ManageError>(b, c, denied_manage)
        }
        "set_settings" => |b, c| {
            result::<(), SettingsError>(b, c, |e| match e {
                SettingsError::NotAuthorized(d) => Some(d),
                _ => None,
            })
        },
        _ => unreachable!("every method with arguments has a reader"),
    };
    (arg, read)
}

fn denied_install(e: &InstallError) -> Option<&Denied> {
    match e {
        InstallError::NotAuthorized(d) => Some(d),
        _ => None,
    }
}

fn denied_manage(e: &ManageError) -> Option<&Denied> {
    match e {
        ManageError::NotAuthorized(d) => Some(d),
        _ => None,
    }
}

/// A reply that is no `Result`: `allowed` if it decodes.
fn reply<T: CandidType + for<'de> candid::Deserialize<'de>>(bytes: &[u8]) -> String {
    match Decode!(bytes, T) {
        Ok(_) => "allowed".into(),
        Err(e) => format!("undecodable reply: {e}"),
    }
}

fn result<T, E>(bytes: &[u8], caller: Principal, denied: impl Fn(&E) -> Option<&Denied>) -> String
where
    T: CandidType + for<'de> candid::Deserialize<'de>,
    E: CandidType + for<'de> candid::Deserialize<'de> + Debug,
{
    match Decode!(bytes, Result<T, E>) {
        Ok(Ok(_)) => "allowed".into(),
        Ok(Err(e)) => match denied(&e) {
            Some(d) => not_authorized(d, caller),
            None => variant(&e),
        },
        Err(e) => format!("undecodable reply: {e}"),
    }
}

fn not_authorized(denied: &Denied, caller: Principal) -> String {
    if denied.caller == caller {
        format!("NotAuthorized({:?})", denied.missing)
    } else {
        format!(
            "NotAuthorized({:?}) naming {} instead of the caller",
            denied.missing, denied.caller
        )
    }
}

/// An error's variant name, with its fields for errors this file does not expect.
fn variant(error: &impl Debug) -> String {
    format!("{error:?}")
}

/// What the canister holds, as its queries show it and its stable memory is.
#[derive(Debug, PartialEq, Eq)]
struct Digest {
    list: Vec<u8>,
    gets: Vec<(String, Vec<u8>)>,
    totals: Totals,
    stored_chunks: Vec<(String, Vec<ByteBuf>)>,
    stable: (u64, [u8; 32]),
}

fn digest(host: &mut PluginHost) -> Digest {
    let observer = principal("controller");
    let mut list = Vec::new();
    let mut names = Vec::new();
    let mut start_after = None;
    loop {
        let args = ListArgs {
            start_after: start_after.clone(),
            limit: None,
        };
        let bytes = host
            .call_raw(
                CallKind::Query,
                "list",
                &Encode!(&args).expect("encode"),
                observer,
            )
            .expect("list");
        let page = Decode!(&bytes, ListPage).expect("a page");
        names.extend(page.plugins.iter().map(|p| p.name.clone()));
        list.extend(bytes);
        match page.next {
            Some(next) => start_after = Some(next),
            None => break,
        }
    }
    let gets = names
        .into_iter()
        .map(|name| {
            let bytes = host
                .call_raw(
                    CallKind::Query,
                    "get",
                    &Encode!(&name).expect("encode"),
                    observer,
                )
                .expect("get");
            (name, bytes)
        })
        .collect();
    let mut totals = host.settings(observer).expect("settings").totals;
    totals.cycle_balance = 0;
    totals.heap_bytes = 0;
    let stored_chunks = WHO
        .iter()
        .map(|who| {
            let stored = host.stored_chunks(principal(who)).expect("stored_chunks");
            (who.to_string(), stored)
        })
        .collect();
    Digest {
        list,
        gets,
        totals,
        stored_chunks,
        stable: stable_digest(host),
    }
}

/// Whether `method`, allowed, changes what the digest covers: the methods that write, but
/// `set_settings` (sent the settings unchanged) and `clear_chunks` of a caller with no chunks.
fn writes(method: &str, kind: CallKind, who: &str) -> bool {
    match method {
        "install" | "install_chunked" | "upload_chunk" | "invoke" | "uninstall"
        | "upgrade_plugin" | "set_config" | "set_invoke_policy" => kind == CallKind::Update,
        "clear_chunks" => !matches!(who, "anonymous" | "other"),
        _ => false,
    }
}

/// What one call of a cell gave.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// inspect_message refused the ingress message.
    InspectRefused,
    /// The endpoint answered this outcome (`allowed` or a refusal).
    Outcome(String),
}

/// Runs `method` as `who` on a fresh copy of the set-up and checks that a refusal changed
/// nothing; returns what it saw, or a description of what it changed.
fn run_call(
    saved: &Path,
    method: &str,
    kind: CallKind,
    route: Route,
    who: &str,
) -> Result<Seen, String> {
    let canister = Canister::load_on(runtime(), saved).expect("load the set-up");
    let mut host = PluginHost::from_canister(canister);
    let caller = principal(who);
    let (mut arg, read) = request(method);
    if method == "set_settings" {
        let settings = host
            .settings(principal("controller"))
            .expect("settings")
            .settings;
        arg = Encode!(&settings).expect("encode");
    }
    let before = digest(&mut host);
    let cycles = host.canister().cycle_balance();
    host.set_route(route);
    let seen = match host.call_raw(kind, method, &arg, caller) {
        Ok(bytes) => Seen::Outcome(read(&bytes, caller)),
        Err(CallError::Runtime(RuntimeError::NotAccepted { .. })) => Seen::InspectRefused,
        Err(e) => Seen::Outcome(format!("no reply: {e}")),
    };
    host.set_route(Route::Ingress);
    let refused = !matches!(&seen, Seen::Outcome(o) if o == "allowed");
    let after = digest(&mut host);
    if refused {
        if after != before {
            return Err(format!(
                "the refused call ({seen:?}) changed the state:\nbefore {before:?}\nafter  {after:?}"
            ));
        }
        let spent = cycles - host.canister().cycle_balance();
        if seen == Seen::InspectRefused && spent != 0 {
            return Err(format!(
                "inspect_message refused the message, yet it cost {spent} cycles"
            ));
        }
    } else if (after != before) != writes(method, kind, who) {
        // The digest must see what allowed calls write, or it could miss what a refused one did.
        return Err(format!(
            "the allowed call {} the state digest",
            if after == before {
                "did not change"
            } else {
                "changed"
            }
        ));
    }
    Ok(seen)
}

/// What a cell says, read back from what its calls saw.
fn observed_cell(kind: CallKind, calls: &[Result<Seen, String>]) -> Result<String, String> {
    let outcome = |seen: &Result<Seen, String>| -> Result<Option<String>, String> {
        match seen {
            Ok(Seen::Outcome(o)) => Ok(Some(o.clone())),
            Ok(Seen::InspectRefused) => Ok(None),
            Err(e) => Err(e.clone()),
        }
    };
    match (kind, calls) {
        (CallKind::Query, [query]) => match outcome(query)? {
            Some(o) => Ok(o),
            None => Err("a query call was inspected".into()),
        },
        (CallKind::Update, [ingress, from_canister]) => {
            let endpoint = outcome(from_canister)?.ok_or("a call from a canister was inspected")?;
            match outcome(ingress)? {
                None => Ok(format!("{endpoint}, inspect refuses")),
                Some(o) if o == endpoint => Ok(endpoint),
                Some(o) => Err(format!(
                    "as ingress {o:?}, from a canister {endpoint:?}: the two routes disagree"
                )),
            }
        }
        _ => unreachable!("one call per query cell, two per update cell"),
    }
}

#[test]
fn every_cell_of_the_access_matrix_is_what_the_canister_answers() {
    let started = std::time::Instant::now();
    let text = std::fs::read_to_string(matrix_path()).expect("the matrix");
    let rows = parse_matrix(&text);
    let saved = scratch_dir("access-matrix");
    set_up().canister().save(&saved).expect("save the set-up");
    let mut failures = Vec::new();
    let mut observed = Vec::new();
    let mut runs = 0;
    for row in &rows {
        let mut line = format!("| `{}` | {} |", row.method, kind_name(row.kind));
        for (who, expected) in WHO.iter().zip(&row.cells) {
            let routes: &[Route] = match row.kind {
                CallKind::Query => &[Route::Ingress],
                CallKind::Update => &[Route::Ingress, Route::FromCanister],
            };
            let calls: Vec<_> = routes
                .iter()
                .map(|&route| run_call(&saved, &row.method, row.kind, route, who))
                .collect();
            runs += calls.len();
            match observed_cell(row.kind, &calls) {
                Ok(cell) => {
                    line.push_str(&format!(" `{cell}` |"));
                    if &cell != expected {
                        failures.push(format!(
                            "{} ({}) as {who}: the matrix says `{expected}`, the canister `{cell}`",
                            row.method,
                            kind_name(row.kind)
                        ));
                    }
                }
                Err(e) => {
                    line.push_str(" (failed) |");
                    failures.push(format!(
                        "{} ({}) as {who}: {e}",
                        row.method,
                        kind_name(row.kind)
                    ));
                }
            }
        }
        observed.push(line);
    }
    let _ = std::fs::remove_dir_all(&saved);
    eprintln!(
        "access matrix: {} rows, {} cells, {runs} calls, each on a fresh copy of the set-up, in \
         {:.1} s",
        rows.len(),
        rows.len() * WHO.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} cells differ from tests/access_matrix.md:\n{}\n\nthe matrix as the canister \
         answers it:\n{}",
        failures.len(),
        failures.join("\n"),
        observed.join("\n")
    );
}
