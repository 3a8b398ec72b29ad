//! Golden snapshots of the canister's whole stable memory (`tests/golden/`, see its README), end
//! to end over the real canister in the local runtime.
//!
//! A snapshot is what the canister's stable memory holds after [`scenario`], a fixed sequence of
//! messages (plugins with memory, globals of each type, vars and config; code shared by two
//! plugins; a plugin uninstalled, leaving free chunk slots; one installed from chunks; one given
//! new code with a migration; chunks uploaded and not installed; settings changed), as the code of
//! one stable layout wrote it. Files, per layout (`canister-C-engine-E`, C being
//! `plugin_host::memory::LAYOUT_VERSION` and E `plugin_engine::LAYOUT_VERSION`):
//!
//! - `<layout>.stable`: the stable memory, its non-zero 4 KiB pages with zero runs left out (see
//!   [`encode_image`]);
//! - `<layout>.expected`: what the canister answers about it ([`probe`]: `settings`, `list`,
//!   `get`, `stored_chunks`, dry runs and calls of every plugin, an install reusing freed slots),
//!   as Candid text.
//!
//! Two tests:
//!
//! - [`every_golden_snapshot_is_served_as_recorded`]: each snapshot, of any layout, is loaded into
//!   a freshly deployed canister (`Canister::set_stable_memory`), the canister is upgraded (so its
//!   `post_upgrade` opens it), and the probe must answer exactly its `.expected` file; a snapshot
//!   of the current layout must also be left byte for byte as it was by the upgrade.
//! - [`the_current_code_writes_the_current_snapshot`]: the scenario on a fresh canister writes
//!   exactly the current layout's snapshot. A change of the stable layout fails it: bump the
//!   layout version, add the new snapshot (below) and keep the old one, whose test then shows that
//!   the new code opens and serves what the old one wrote.
//!
//! Regenerating: `UPDATE_GOLDEN=1 cargo test --release --test golden` runs the scenario, writes
//! the current layout's `.stable` and `.expected` (creating them for a new layout version), and
//! never touches other layouts' files. Do it when the layout version was bumped, or when what the
//! probe answers changed for a reason that is not the layout (say, fuel accounting), after
//! checking why.

#![allow(missing_docs)]

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candid::{Decode, Encode, Principal};
use ic_stable_structures::memory_manager::MemoryId;
use plugin_host_api::SettingsView;
use plugin_host_local::candid_text::Interface;
use plugin_host_local::client::{CallKind, PluginHost};
use support::*;

/// The current layout's name.
fn current_layout() -> String {
    format!(
        "canister-{}-engine-{}",
        plugin_host::memory::LAYOUT_VERSION,
        plugin_engine::LAYOUT_VERSION
    )
}

fn golden_dir() -> PathBuf {
    repo().join("tests/golden")
}

/// The scenario's principals: fixed bytes, so the snapshot does not depend on how identities
/// are derived.
fn who(name: &str) -> Principal {
    let n = match name {
        "controller" => 1,
        "admin" => 2,
        "p1" => 11,
        "p2" => 12,
        "p3" => 13,
        "p4" => 14,
        "admin2" => 3,
        _ => panic!("no principal {name}"),
    };
    Principal::from_slice(&[0x60, 0x1d, n])
}

/// The Extism imports and helpers both golden plugin modules share.
const PRELUDE: &str = r#"
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  ;; A block holding memory [ptr, ptr + len).
  (func $to_block (param $ptr i32) (param $len i32) (result i64)
    (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
        (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $block))
  ;; Copies the block `handle` (0: nothing) to memory at `ptr`; returns its length.
  (func $from_block (param $handle i64) (param $ptr i32) (result i32)
    (local $len i32) (local $i i32)
    (if (i64.eqz (local.get $handle)) (then (return (i32.const 0))))
    (local.set $len (i32.wrap_i64 (call $length (local.get $handle))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.add (local.get $ptr) (local.get $i))
        (call $load_u8 (i64.add (local.get $handle) (i64.extend_i32_u (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $len))
  ;; The input, copied to memory at `ptr`; returns its length.
  (func $input_to (param $ptr i32) (result i32)
    (local $len i32) (local $i i32)
    (local.set $len (i32.wrap_i64 (call $input_length)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.add (local.get $ptr) (local.get $i))
        (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $len))
  ;; Writes `value` in decimal at `ptr`; returns the end.
  (func $decimal (param $value i64) (param $ptr i32) (result i32)
    (local $digits i32) (local $v i64) (local $end i32)
    (local.set $v (local.get $value))
    (loop $count
      (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $count (i64.ne (local.get $v) (i64.const 0))))
    (local.set $end (i32.add (local.get $ptr) (local.get $digits)))
    (local.set $v (local.get $value))
    (loop $write
      (local.set $digits (i32.sub (local.get $digits) (i32.const 1)))
      (i32.store8 (i32.add (local.get $ptr) (local.get $digits))
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $write (i32.ne (local.get $digits) (i32.const 0))))
    (local.get $end))
  ;; Writes byte `b` at `ptr`; returns the end.
  (func $byte (param $b i32) (param $ptr i32) (result i32)
    (i32.store8 (local.get $ptr) (local.get $b))
    (i32.add (local.get $ptr) (i32.const 1)))
  ;; Sets the output to memory [ptr, end).
  (func $output (param $ptr i32) (param $end i32)
    (local $len i32)
    (local.set $len (i32.sub (local.get $end) (local.get $ptr)))
    (call $output_set (call $to_block (local.get $ptr) (local.get $len))
      (i64.extend_i32_u (local.get $len))))
"#;

/// `keeper`: `remember` appends its input to a log in memory from 64 KiB on (growing memory as it
/// needs), counts calls in an i64 global, multiplies an f64 global by 1.5 and keeps the input in
/// the var `last`; `recall` answers `<config greeting>|<var last>|<var migrated>|count=<n>|
/// ratio_bits=<f64 bits>|log=<log>`. `VERSION` is a function `version` the v2 module adds, with
/// `migrate` (sets the var `migrated`).
fn keeper(extra: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {PRELUDE}
  (memory (export "memory") 1 16)
  (global $count (mut i64) (i64.const 0))
  (global $ratio (mut f64) (f64.const 0.5))
  (global $log_end (mut i32) (i32.const 65536))
  (data (i32.const 16) "greeting")
  (data (i32.const 32) "last")
  (data (i32.const 48) "migrated")
  (data (i32.const 64) "yes")
  (func $var_to (param $key i32) (param $key_len i32) (param $ptr i32) (result i32)
    (i32.add (local.get $ptr)
      (call $from_block (call $var_get (call $to_block (local.get $key) (local.get $key_len)))
        (local.get $ptr))))
  (func (export "remember") (result i32)
    (local $len i32) (local $need i32)
    (local.set $len (i32.wrap_i64 (call $input_length)))
    (local.set $need (i32.add (i32.add (global.get $log_end) (local.get $len)) (i32.const 1)))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.sub
        (i32.div_u (i32.add (local.get $need) (i32.const 65535)) (i32.const 65536))
        (memory.size))))))
    (drop (call $input_to (global.get $log_end)))
    (call $var_set (call $to_block (i32.const 32) (i32.const 4))
      (call $to_block (global.get $log_end) (local.get $len)))
    (global.set $log_end (call $byte (i32.const 10)
      (i32.add (global.get $log_end) (local.get $len))))
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    (global.set $ratio (f64.mul (global.get $ratio) (f64.const 1.5)))
    (call $output (i32.const 4096) (call $decimal (global.get $count) (i32.const 4096)))
    (i32.const 0))
  (func (export "recall") (result i32)
    (local $at i32) (local $i i32)
    (local.set $at (i32.add (i32.const 4096)
      (call $from_block (call $config_get (call $to_block (i32.const 16) (i32.const 8)))
        (i32.const 4096))))
    (local.set $at (call $byte (i32.const 124) (local.get $at)))
    (local.set $at (call $var_to (i32.const 32) (i32.const 4) (local.get $at)))
    (local.set $at (call $byte (i32.const 124) (local.get $at)))
    (local.set $at (call $var_to (i32.const 48) (i32.const 8) (local.get $at)))
    (local.set $at (call $byte (i32.const 124) (local.get $at)))
    (local.set $at (call $decimal (global.get $count) (local.get $at)))
    (local.set $at (call $byte (i32.const 124) (local.get $at)))
    (local.set $at (call $decimal (i64.reinterpret_f64 (global.get $ratio)) (local.get $at)))
    (local.set $at (call $byte (i32.const 124) (local.get $at)))
    (local.set $i (i32.const 65536))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (global.get $log_end)))
      (local.set $at (call $byte (i32.load8_u (local.get $i)) (local.get $at)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $output (i32.const 4096) (local.get $at))
    (i32.const 0))
  {extra})"#
    ))
    .expect("keeper WAT")
}

fn keeper_v2() -> Vec<u8> {
    keeper(
        r#"
  (func (export "version") (result i32)
    (call $output (i32.const 4096) (call $decimal (i64.const 2) (i32.const 4096)))
    (i32.const 0))
  (func (export "migrate") (result i32)
    (call $var_set (call $to_block (i32.const 48) (i32.const 8))
      (call $to_block (i32.const 64) (i32.const 3)))
    (i32.const 0))"#,
    )
}

/// `sparse`: `fill` (input: one seed byte and a page count) grows memory to that many pages and
/// writes `seed + k` at `k * 65,537` in each page `k`, counting fills in an i32 global and keeping
/// the seed in an f32 one (more pages than the module's maximum, 64, trap); `sum` answers the sum of those bytes, the fills and the f32's bits.
fn sparse() -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {PRELUDE}
  (memory (export "memory") 1 64)
  (global $fills (mut i32) (i32.const 0))
  (global $seed (mut f32) (f32.const 0))
  (func (export "fill") (result i32)
    (local $seed i32) (local $pages i32) (local $k i32)
    (local.set $seed (call $input_load_u8 (i64.const 0)))
    (local.set $pages (call $input_load_u8 (i64.const 1)))
    (global.set $fills (i32.add (global.get $fills) (i32.const 1)))
    ;; Past the module's 64 pages: trap (after changing the global, which must be rolled back).
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
        (then unreachable))))
    (local.set $k (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (memory.size)))
      (i32.store8 (i32.mul (local.get $k) (i32.const 65537))
        (i32.add (local.get $seed) (local.get $k)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))
    (global.set $seed (f32.convert_i32_u (local.get $seed)))
    (call $output (i32.const 4096) (call $decimal (i64.extend_i32_u (memory.size)) (i32.const 4096)))
    (i32.const 0))
  (func (export "sum") (result i32)
    (local $k i32) (local $sum i64) (local $at i32)
    (local.set $k (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (memory.size)))
      (local.set $sum (i64.add (local.get $sum)
        (i64.load8_u (i32.mul (local.get $k) (i32.const 65537)))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))
    (local.set $at (call $decimal (local.get $sum) (i32.const 4096)))
    (local.set $at (call $byte (i32.const 124) (local.get $at)))
    (local.set $at (call $decimal (i64.extend_i32_u (global.get $fills)) (local.get $at)))
    (local.set $at (call $byte (i32.const 124) (local.get $at)))
    (local.set $at (call $decimal (i64.extend_i32_u (i32.reinterpret_f32 (global.get $seed)))
      (local.get $at)))
    (call $output (i32.const 4096) (local.get $at))
    (i32.const 0)))"#
    ))
    .expect("sparse WAT")
}

/// One message: who sends it, to which method, with what Candid text (typed by the `.did`).
struct Message {
    kind: CallKind,
    caller: &'static str,
    method: &'static str,
    args: String,
    /// Whether the scenario means it to fail (an `Err` reply).
    fails: bool,
}

fn update(caller: &'static str, method: &'static str, args: impl Into<String>) -> Message {
    Message {
        kind: CallKind::Update,
        caller,
        method,
        args: args.into(),
        fails: false,
    }
}

fn query(caller: &'static str, method: &'static str, args: impl Into<String>) -> Message {
    Message {
        kind: CallKind::Query,
        ..update(caller, method, args)
    }
}

/// Candid text of a blob.
fn blob(bytes: &[u8]) -> String {
    let mut text = String::from("blob \"");
    for b in bytes {
        write!(text, "\\{b:02x}").expect("write to a string");
    }
    text.push('"');
    text
}

fn principal_text(name: &str) -> String {
    format!("principal \"{}\"", who(name))
}

fn install_text(name: &str, wasm: &[u8], policy: &str, config: &str, fuel: &str) -> String {
    format!(
        "(record {{ name = \"{name}\"; wasm = {}; invoke_policy = opt {policy}; config = opt \
         vec {{ {config} }}; fuel_limit = {fuel} }})",
        blob(wasm)
    )
}

fn invoke_text(plugin: &str, function: &str, input: &[u8]) -> String {
    format!("(\"{plugin}\", \"{function}\", {}, null)", blob(input))
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// The init argument of the scenario's canister.
fn init_text() -> String {
    format!(
        "(opt record {{ admins = opt vec {{ {} }}; install_policy = opt variant {{ AllowList = \
         vec {{ {}; {} }} }} }})",
        principal_text("admin"),
        principal_text("p1"),
        principal_text("p2")
    )
}

/// What the snapshot is made of.
fn scenario() -> Vec<Message> {
    let keeper = keeper("");
    let sparse = sparse();
    let half = keeper.len() / 2;
    let pending = b"a chunk nobody installs";
    vec![
        update(
            "p1",
            "install",
            install_text(
                "alpha",
                &keeper,
                "variant { Public }",
                "record { \"greeting\"; \"Hello\" }",
                "null",
            ),
        ),
        update(
            "p2",
            "install",
            install_text(
                "beta",
                &keeper,
                &format!(
                    "variant {{ AllowList = vec {{ {} }} }}",
                    principal_text("p3")
                ),
                "record { \"greeting\"; \"Bonjour\" }",
                "null",
            ),
        ),
        update(
            "p1",
            "install",
            install_text(
                "gamma",
                &sparse,
                "variant { Public }",
                "",
                "opt (50_000_000 : nat64)",
            ),
        ),
        update(
            "p2",
            "install",
            install_text("temp", &sparse, "variant { OwnerOnly }", "", "null"),
        ),
        update("p1", "invoke", invoke_text("alpha", "remember", b"first")),
        update("p1", "invoke", invoke_text("alpha", "remember", b"second")),
        update("p3", "invoke", invoke_text("beta", "remember", b"un")),
        update("p1", "invoke", invoke_text("gamma", "fill", &[7, 40])),
        update("p2", "invoke", invoke_text("temp", "fill", &[3, 8])),
        // A call that fails changes nothing.
        Message {
            fails: true,
            ..update("p1", "invoke", invoke_text("gamma", "fill", &[1, 200]))
        },
        update("p2", "uninstall", "(\"temp\")"),
        // Chunks: two installed as `delta`, one left pending by p2.
        update("p1", "upload_chunk", format!("({})", blob(&keeper[..half]))),
        update("p1", "upload_chunk", format!("({})", blob(&keeper[half..]))),
        update(
            "p1",
            "install_chunked",
            format!(
                "(record {{ name = \"delta\"; chunk_hashes = vec {{ {}; {} }}; wasm_sha256 = {}; \
                 config = opt vec {{ record {{ \"greeting\"; \"Hallo\" }} }} }})",
                blob(&sha256(&keeper[..half])),
                blob(&sha256(&keeper[half..])),
                blob(&sha256(&keeper))
            ),
        ),
        update("p1", "invoke", invoke_text("delta", "remember", b"eins")),
        update("p2", "upload_chunk", format!("({})", blob(pending))),
        update(
            "p2",
            "upgrade_plugin",
            format!(
                "(record {{ name = \"beta\"; wasm = {}; migration = opt \"migrate\" }})",
                blob(&keeper_v2())
            ),
        ),
        update("p3", "invoke", invoke_text("beta", "remember", b"deux")),
        update(
            "p1",
            "set_config",
            "(\"alpha\", vec { record { \"greeting\"; \"Hi\" }; record { \"farewell\"; \"Bye\" } })",
        ),
        update(
            "p1",
            "set_invoke_policy",
            "(\"gamma\", variant { OwnerOnly })",
        ),
        update(
            "controller",
            "set_settings",
            format!(
                "(record {{ admins = vec {{ {}; {} }}; install_policy = variant {{ AllowList = \
                 vec {{ {}; {}; {} }} }}; quotas = record {{ window_ns = 300_000_000_000 : nat64; \
                 caller_instructions = 50_000_000_000 : nat64; plugin_instructions = \
                 200_000_000_000 : nat64 }}; cycles_reserve = 250_000_000_000 : nat }})",
                principal_text("admin"),
                principal_text("admin2"),
                principal_text("p1"),
                principal_text("p2"),
                principal_text("p4")
            ),
        ),
        update(
            "admin",
            "invoke",
            invoke_text("alpha", "remember", b"third"),
        ),
    ]
}

/// What the canister is asked about a snapshot; its answers make up the `.expected` file.
fn probe() -> Vec<Message> {
    let mut messages = vec![
        query("p3", "settings", "()"),
        query("p3", "list", "(record { limit = opt (2 : nat32) })"),
        query("p3", "list", "(record { start_after = opt \"beta\" })"),
    ];
    for name in ["alpha", "beta", "delta", "gamma", "temp"] {
        messages.push(query("p3", "get", format!("(\"{name}\")")));
    }
    for name in ["p1", "p2", "p3"] {
        messages.push(query(name, "stored_chunks", "()"));
    }
    messages.extend([
        query(
            "controller",
            "invoke_query",
            invoke_text("alpha", "recall", b""),
        ),
        query(
            "controller",
            "invoke_query",
            invoke_text("beta", "recall", b""),
        ),
        query(
            "controller",
            "invoke_query",
            invoke_text("beta", "version", b""),
        ),
        query(
            "controller",
            "invoke_query",
            invoke_text("delta", "recall", b""),
        ),
        query(
            "controller",
            "invoke_query",
            invoke_text("gamma", "sum", b""),
        ),
        update(
            "controller",
            "invoke",
            invoke_text("alpha", "remember", b"fourth"),
        ),
        update("controller", "invoke", invoke_text("alpha", "recall", b"")),
        update(
            "controller",
            "invoke",
            invoke_text("beta", "remember", b"trois"),
        ),
        update("controller", "invoke", invoke_text("beta", "recall", b"")),
        update(
            "controller",
            "invoke",
            invoke_text("gamma", "fill", &[9, 40]),
        ),
        update("controller", "invoke", invoke_text("gamma", "sum", b"")),
        // New state next to the old: the freed slots of `temp` are reused.
        update(
            "p4",
            "install",
            install_text("epsilon", &sparse(), "variant { Public }", "", "null"),
        ),
        update("p4", "invoke", invoke_text("epsilon", "fill", &[5, 6])),
        update("p4", "invoke", invoke_text("epsilon", "sum", b"")),
        query("p3", "get", "(\"alpha\")"),
        query("p3", "get", "(\"gamma\")"),
        query("p3", "settings", "()"),
    ]);
    messages
}

fn deploy() -> PluginHost {
    let init = Interface::plugin_host()
        .encode_init(&init_text())
        .expect("init argument");
    let (canister, _) = ic_local_runtime::Canister::install_on(
        runtime(),
        &canister_wasm(),
        &init,
        who("controller").as_slice(),
    )
    .expect("deploy");
    PluginHost::from_canister(canister)
}

/// Sends `message`; its reply bytes (panics if there is none).
fn send(host: &mut PluginHost, interface: &Interface, message: &Message) -> Vec<u8> {
    let arg = interface
        .encode_args(message.method, &message.args)
        .unwrap_or_else(|e| panic!("{}: {e}", message.method));
    host.call_raw(message.kind, message.method, &arg, who(message.caller))
        .unwrap_or_else(|e| panic!("{} {}: {e}", message.method, message.args))
}

/// Runs the scenario on a fresh canister; checks that each message succeeded as meant.
fn run_scenario() -> PluginHost {
    let interface = Interface::plugin_host();
    let mut host = deploy();
    for message in scenario() {
        let reply = send(&mut host, &interface, &message);
        let text = interface
            .decode_reply(message.method, &reply)
            .expect("decode");
        assert!(
            text.contains("Err") == message.fails,
            "{} {}: {text}",
            message.method,
            message.args
        );
    }
    host
}

/// The probe's answers as the `.expected` file holds them. `settings()`'s cycle balance, heap and
/// cache sizes depend on the canister's code, not on what it stores: they read as 0.
fn answers(host: &mut PluginHost) -> String {
    let interface = Interface::plugin_host();
    let mut out = String::from(
        "# What the canister answers about this snapshot (tests/golden.rs: `probe`), loaded into a\n\
         # fresh canister and upgraded. settings().totals.{cycle_balance,heap_bytes,cached_bytes}\n\
         # depend on the canister's code, not on what it stores: they read as 0.\n",
    );
    for message in probe() {
        let mut reply = send(host, &interface, &message);
        if message.method == "settings" {
            let mut view = Decode!(&reply, SettingsView).expect("settings");
            view.totals.cycle_balance = 0;
            view.totals.heap_bytes = 0;
            view.totals.cached_bytes = 0;
            reply = Encode!(&view).expect("encode");
        }
        let text = interface
            .decode_reply(message.method, &reply)
            .expect("decode");
        let args = if message.args.len() > 200 {
            format!(
                "{}…",
                &message.args[..message.args.find(" wasm = ").unwrap_or(100)]
            )
        } else {
            message.args.clone()
        };
        let kind = match message.kind {
            CallKind::Update => "update",
            CallKind::Query => "query",
        };
        writeln!(
            out,
            "\n== {kind} {} as {}: {args}\n{text}",
            message.method, message.caller
        )
        .expect("write to a string");
    }
    out
}

/// Magic of a `.stable` file.
const MAGIC: &[u8] = b"plugin_host stable memory image 1\n";
const PAGE: usize = 4096;

/// A stable memory image as a `.stable` file: `MAGIC`, the size in 64 KiB pages (u64 LE), the
/// number of pages that follow (u64 LE), then each 4 KiB page that is not all zeros: its index
/// (u64 LE) and its bytes as runs until 4,096 are covered, each run a count of zeros (u16 LE), a
/// count of literal bytes (u16 LE) and those bytes.
fn encode_image(size_pages: u64, pages: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(size_pages.to_le_bytes());
    out.extend((pages.len() as u64).to_le_bytes());
    for (index, page) in pages {
        out.extend(index.to_le_bytes());
        let mut at = 0;
        while at < PAGE {
            let zeros = page[at..].iter().take_while(|&&b| b == 0).count();
            let start = at + zeros;
            // A literal ends where 8 zeros in a row start (fewer are cheaper kept).
            let mut end = start;
            while end < PAGE && !page[end..(end + 8).min(PAGE)].iter().all(|&b| b == 0) {
                end += 1;
            }
            out.extend((zeros as u16).to_le_bytes());
            out.extend(((end - start) as u16).to_le_bytes());
            out.extend(&page[start..end]);
            at = end;
        }
    }
    out
}

/// The whole stable memory a `.stable` file holds.
fn decode_image(file: &[u8]) -> Vec<u8> {
    fn bad(what: &str) -> ! {
        panic!("not a stable memory image: {what}")
    }
    let rest = file.strip_prefix(MAGIC).unwrap_or_else(|| bad("magic"));
    let mut at = 0;
    let u64_at = |at: &mut usize| {
        let v = u64::from_le_bytes(
            rest.get(*at..*at + 8)
                .unwrap_or_else(|| bad("truncated"))
                .try_into()
                .expect("8 bytes"),
        );
        *at += 8;
        v
    };
    let size = u64_at(&mut at) as usize * 65_536;
    let count = u64_at(&mut at);
    let mut image = vec![0; size];
    let u16_at = |at: &mut usize| {
        let v = u16::from_le_bytes(
            rest.get(*at..*at + 2)
                .unwrap_or_else(|| bad("truncated"))
                .try_into()
                .expect("2 bytes"),
        );
        *at += 2;
        v as usize
    };
    for _ in 0..count {
        let base = u64_at(&mut at) as usize * PAGE;
        let mut covered = 0;
        while covered < PAGE {
            covered += u16_at(&mut at);
            let literal = u16_at(&mut at);
            let bytes = rest
                .get(at..at + literal)
                .unwrap_or_else(|| bad("truncated"));
            image[base + covered..base + covered + literal].copy_from_slice(bytes);
            at += literal;
            covered += literal;
        }
        if covered != PAGE {
            bad("a page's runs pass its end");
        }
    }
    if at != rest.len() {
        bad("bytes after the last page");
    }
    image
}

/// The canister's stable memory as a `.stable` file.
fn image_of(host: &mut PluginHost) -> Vec<u8> {
    let canister = host.canister();
    let pages: Vec<(u64, Vec<u8>)> = canister
        .stable_memory_pages()
        .map(|(index, page)| (index, page.to_vec()))
        .collect();
    encode_image(canister.stable_size_pages(), &pages)
}

/// Which structure the byte at `offset` of stable memory belongs to, read from the memory
/// manager's header in `image` (ic-stable-structures' layout 1: bucket size in 64 KiB pages at
/// byte 6, one byte per bucket naming its memory from byte 2,080, buckets from 64 KiB on).
fn structure_at(image: &[u8], offset: usize) -> String {
    if offset < 65_536 {
        return "the memory manager's header".into();
    }
    let bucket_pages = u16::from_le_bytes([image[6], image[7]]) as usize;
    let bucket_bytes = bucket_pages * 65_536;
    let bucket = (offset - 65_536) / bucket_bytes;
    let Some(&id) = image.get(2_080 + bucket) else {
        return "past the bucket table".into();
    };
    let memory = &plugin_host::memory::ENGINE;
    let named = [
        ("settings", plugin_host::memory::SETTINGS),
        ("chunks (uploads)", plugin_host::memory::CHUNKS),
        ("meta", memory.meta),
        ("plugins", memory.plugins),
        ("code", memory.code),
        ("code_refs", memory.code_refs),
        ("layout_1_chunks", memory.layout_1_chunks),
        ("globals", memory.globals),
        ("vars", memory.vars),
        ("chunk_slots", memory.chunk_slots),
        ("chunk_data", memory.chunk_data),
        ("usage", memory.usage),
    ];
    let name = if id == 255 {
        "no memory (unallocated bucket)".to_string()
    } else {
        named
            .iter()
            .find(|(_, m)| *m == MemoryId::new(id))
            .map_or_else(|| format!("memory {id}"), |(n, _)| n.to_string())
    };
    // The bucket's rank among its memory's buckets gives the offset within the memory.
    let rank = image[2_080..2_080 + bucket]
        .iter()
        .filter(|&&b| b == id)
        .count();
    format!(
        "{name} (memory {id}), at byte {} of it",
        rank * bucket_bytes + (offset - 65_536) % bucket_bytes
    )
}

fn write_golden(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(golden_dir()).expect("create tests/golden");
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
}

/// With `UPDATE_GOLDEN` set, (re)writes the current layout's snapshot and expectations, once per
/// test binary.
fn regenerate_if_asked() {
    static DONE: OnceLock<()> = OnceLock::new();
    if std::env::var_os("UPDATE_GOLDEN").is_none() {
        return;
    }
    DONE.get_or_init(|| {
        let mut host = run_scenario();
        let image = image_of(&mut host);
        let layout = current_layout();
        write_golden(&golden_dir().join(format!("{layout}.stable")), &image);
        let mut loaded = load(&decode_image(&image));
        write_golden(
            &golden_dir().join(format!("{layout}.expected")),
            answers(&mut loaded).as_bytes(),
        );
    });
}

/// A fresh canister serving `image`: deployed, its stable memory replaced, upgraded to another
/// build.
fn load(image: &[u8]) -> PluginHost {
    let mut host = deploy();
    host.canister()
        .set_stable_memory(image)
        .expect("no stable memory limit");
    host.upgrade_canister(&other_canister_build(), None, who("controller"))
        .expect("upgrade over the snapshot");
    assert_eq!(running_version(&mut host), other_version());
    host
}

/// The first lines in which two texts differ.
fn first_differences(want: &str, got: &str) -> String {
    let mut out = Vec::new();
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            out.push(format!("line {}:\n  recorded: {w}\n  now:      {g}", i + 1));
            if out.len() == 8 {
                break;
            }
        }
    }
    if want.lines().count() != got.lines().count() {
        out.push(format!(
            "{} lines recorded, {} now",
            want.lines().count(),
            got.lines().count()
        ));
    }
    out.join("\n")
}

#[test]
fn every_golden_snapshot_is_served_as_recorded() {
    regenerate_if_asked();
    let started = std::time::Instant::now();
    let mut layouts: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .filter_map(|e| {
            let name = e.expect("a directory entry").file_name();
            name.to_str()?.strip_suffix(".stable").map(str::to_owned)
        })
        .collect();
    layouts.sort();
    assert!(
        layouts.contains(&current_layout()),
        "tests/golden has no snapshot of the current layout {}: write it with \
         `UPDATE_GOLDEN=1 cargo test --release --test golden`",
        current_layout()
    );
    for layout in &layouts {
        let file =
            std::fs::read(golden_dir().join(format!("{layout}.stable"))).expect("the snapshot");
        let image = decode_image(&file);
        let expected = std::fs::read_to_string(golden_dir().join(format!("{layout}.expected")))
            .unwrap_or_else(|e| panic!("{layout}.expected: {e}"));
        let mut host = load(&image);
        if *layout == current_layout() {
            assert!(
                host.canister().stable_memory() == image,
                "{layout}: post_upgrade changed the stable memory of its own layout"
            );
        }
        let got = answers(&mut host);
        assert!(
            got == expected,
            "{layout}: the canister does not answer as recorded in tests/golden/{layout}.expected \
             ({})\n{}",
            "a snapshot of an older layout is never regenerated: the new code must serve it",
            first_differences(&expected, &got)
        );
        eprintln!(
            "golden {layout}: {} bytes on file, {} MiB of stable memory, served as recorded",
            file.len(),
            image.len() / (1024 * 1024)
        );
    }
    eprintln!(
        "{} golden snapshots in {:.1} s",
        layouts.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_current_code_writes_the_current_snapshot() {
    regenerate_if_asked();
    let layout = current_layout();
    let path = golden_dir().join(format!("{layout}.stable"));
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. A new layout version needs its snapshot: \
             `UPDATE_GOLDEN=1 cargo test --release --test golden`",
            path.display()
        )
    });
    let golden = decode_image(&golden);
    let mut host = run_scenario();
    let written = host.canister().stable_memory();
    if written == golden {
        return;
    }
    let mut differences = Vec::new();
    if written.len() != golden.len() {
        differences.push(format!(
            "stable memory is {} bytes, the snapshot {}",
            written.len(),
            golden.len()
        ));
    }
    for page in 0..written.len().max(golden.len()) / PAGE {
        let range = page * PAGE..(page + 1) * PAGE;
        let (w, g) = (written.get(range.clone()), golden.get(range));
        if w != g {
            let first = match (w, g) {
                (Some(w), Some(g)) => w.iter().zip(g).position(|(a, b)| a != b).unwrap_or(0),
                _ => 0,
            };
            let offset = page * PAGE + first;
            differences.push(format!("byte {offset}: {}", structure_at(&written, offset)));
        }
    }
    let shown = differences.len().min(20);
    panic!(
        "the current code writes stable memory that differs from tests/golden/{layout}.stable: \
         {} of its 4 KiB pages differ (the first byte that differs in each of the first {}):\n{}\n\nThe stable layout changed: \
         bump the layout version (plugin_host::memory::LAYOUT_VERSION or \
         plugin_engine::LAYOUT_VERSION, with the code that opens the old layout), then add the \
         new layout's snapshot with `UPDATE_GOLDEN=1 cargo test --release --test golden` and keep \
         the old one: every_golden_snapshot_is_served_as_recorded goes on checking that the new \
         code serves it. (If the layout did not change but what is stored did, e.g. fuel \
         accounting, regenerate this snapshot after checking why.)",
        differences.len(),
        shown,
        differences[..shown].join("\n")
    );
}
