//! A model-based test of the canister: random sequences of install (direct and chunked), invoke
//! (success, plugin error, trap, out of fuel, a cap hit; as update and as query), upgrade_plugin
//! (with no migration, a migration and a failing one), set_config, uninstall and canister
//! upgrades, by owners and by strangers, through the real canister in the local runtime. After
//! every step each plugin's observable state (its reply, memory, globals, vars, config, code
//! hash and successful-call count) must equal a plain model's. proptest shrinks a failure to a
//! short sequence.

#![allow(missing_docs)]

mod support;

use std::collections::BTreeMap;

use candid::Principal;
use ic_local_runtime::RuntimeError;
use plugin_host_api::{
    ByteBuf, InstallArgs, InstallChunkedArgs, InstallError, InvokeError, InvokeOptions,
    ManageError, UpgradePluginArgs,
};
use plugin_host_local::client::{CallError, CallKind, PluginHost};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use support::*;

/// The plugin the model describes, `VERSION` being 1 or 2. `add` adds its input (u64 LE, zero
/// padded) to a word of memory, counts itself in a mutable global and in the var `n`, then
/// reports; `state` only reports: version, the word, the global, `n`, and the length of config
/// `k` plus one (0 when unset), five u64 LE. `fail`, `trap`, `spin` and `huge` do what `add`
/// does, then return an error, trap, loop until the fuel is gone, or set an output over the
/// cap. The migration `migrate` sets the word to `n * 1000`; `migrate_fail` sets `n` to 999
/// and fails.
const CELL: &str = r#"(module
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (memory (export "memory") 1)
  (global $adds (mut i64) (i64.const 0))
  (func $key (param $byte i32) (result i64) (local $h i64)
    (local.set $h (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $h) (local.get $byte))
    (local.get $h))
  (func $n (result i64) (local $h i64)
    (local.set $h (call $var_get (call $key (i32.const 110))))
    (if (result i64) (i64.eqz (local.get $h))
      (then (i64.const 0))
      (else (call $load_u64 (local.get $h)))))
  (func $set_n (param $v i64) (local $h i64)
    (local.set $h (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $h) (local.get $v))
    (call $var_set (call $key (i32.const 110)) (local.get $h)))
  (func $apply
    (i64.store (i32.const 0)
      (i64.add (i64.load (i32.const 0)) (call $input_load_u64 (i64.const 0))))
    (global.set $adds (i64.add (global.get $adds) (i64.const 1)))
    (call $set_n (i64.add (call $n) (i64.const 1))))
  (func $report (local $h i64) (local $c i64)
    (local.set $c (call $config_get (call $key (i32.const 107))))
    (local.set $h (call $alloc (i64.const 40)))
    (call $store_u64 (local.get $h) (i64.const VERSION))
    (call $store_u64 (i64.add (local.get $h) (i64.const 8)) (i64.load (i32.const 0)))
    (call $store_u64 (i64.add (local.get $h) (i64.const 16)) (global.get $adds))
    (call $store_u64 (i64.add (local.get $h) (i64.const 24)) (call $n))
    (call $store_u64 (i64.add (local.get $h) (i64.const 32))
      (if (result i64) (i64.eqz (local.get $c))
        (then (i64.const 0))
        (else (i64.add (call $length (local.get $c)) (i64.const 1)))))
    (call $output_set (local.get $h) (i64.const 40)))
  (func (export "add") (result i32) (call $apply) (call $report) (i32.const 0))
  (func (export "state") (result i32) (call $report) (i32.const 0))
  (func (export "fail") (result i32) (local $h i64)
    (call $apply)
    (local.set $h (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $h) (i64.const 0x2164657375666572)) ;; "refused!"
    (call $error_set (local.get $h))
    (i32.const 7))
  (func (export "trap") (result i32) (call $apply) unreachable)
  (func (export "spin") (result i32) (call $apply) (loop $forever (br $forever)) (i32.const 0))
  (func (export "huge") (result i32)
    (call $apply)
    (call $output_set (i64.const 0) (i64.const 2000000))
    (i32.const 0))
  (func (export "migrate") (result i32)
    (i64.store (i32.const 0) (i64.mul (call $n) (i64.const 1000)))
    (i32.const 0))
  (func (export "migrate_fail") (result i32) (call $set_n (i64.const 999)) (i32.const 1)))"#;

/// The names the sequences use: few, so that operations meet the same plugins often.
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Fuel of the `spin` calls (a small budget keeps the test fast; any budget runs out).
const SPIN_FUEL: u64 = 200_000;

fn cell_module(version: u64) -> Vec<u8> {
    wat::parse_str(CELL.replace("VERSION", &version.to_string())).expect("the cell module")
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// What a plugin function does in an invoke step.
#[derive(Clone, Copy, Debug)]
enum Action {
    Add(u64),
    State,
    Fail,
    Trap,
    Spin,
    Huge,
}

impl Action {
    fn function(self) -> &'static str {
        match self {
            Action::Add(_) => "add",
            Action::State => "state",
            Action::Fail => "fail",
            Action::Trap => "trap",
            Action::Spin => "spin",
            Action::Huge => "huge",
        }
    }
}

/// The migration an `upgrade_plugin` step asks for.
#[derive(Clone, Copy, Debug)]
enum Migration {
    None,
    Migrate,
    Fails,
}

/// One step of a sequence.
#[derive(Clone, Debug)]
enum Step {
    Install {
        plugin: usize,
        version: u64,
        chunked: bool,
    },
    Invoke {
        plugin: usize,
        action: Action,
        query: bool,
    },
    UpgradePlugin {
        plugin: usize,
        migration: Migration,
        stranger: bool,
    },
    SetConfig {
        plugin: usize,
        value_len: Option<usize>,
        stranger: bool,
    },
    Uninstall {
        plugin: usize,
        stranger: bool,
    },
    UpgradeCanister,
}

fn step() -> impl Strategy<Value = Step> {
    let plugin = 0..NAMES.len();
    let action = prop_oneof![
        4 => any::<u64>().prop_map(Action::Add),
        2 => Just(Action::State),
        1 => Just(Action::Fail),
        1 => Just(Action::Trap),
        1 => Just(Action::Spin),
        1 => Just(Action::Huge),
    ];
    let migration = prop_oneof![
        Just(Migration::None),
        Just(Migration::Migrate),
        Just(Migration::Fails)
    ];
    let stranger = prop::bool::weighted(0.15);
    prop_oneof![
        3 => (plugin.clone(), 1..=2u64, any::<bool>())
            .prop_map(|(plugin, version, chunked)| Step::Install { plugin, version, chunked }),
        8 => (plugin.clone(), action, prop::bool::weighted(0.25))
            .prop_map(|(plugin, action, query)| Step::Invoke { plugin, action, query }),
        2 => (plugin.clone(), migration, stranger)
            .prop_map(|(plugin, migration, stranger)| Step::UpgradePlugin { plugin, migration, stranger }),
        2 => (plugin.clone(), prop::option::of(0..300usize), stranger)
            .prop_map(|(plugin, value_len, stranger)| Step::SetConfig { plugin, value_len, stranger }),
        1 => (plugin, stranger).prop_map(|(plugin, stranger)| Step::Uninstall { plugin, stranger }),
        1 => Just(Step::UpgradeCanister),
    ]
}

/// What the model knows of one installed plugin.
#[derive(Clone, Debug, Default, PartialEq)]
struct Cell {
    version: u64,
    /// The memory word.
    word: u64,
    /// The mutable global.
    adds: u64,
    /// The var `n`.
    n: u64,
    /// The length of config `k`, if set.
    config: Option<usize>,
    /// Successful update calls.
    calls: u64,
}

impl Cell {
    fn new(version: u64) -> Self {
        Cell {
            version,
            ..Cell::default()
        }
    }

    /// `add(x)` applied.
    fn added(&self, x: u64) -> Cell {
        Cell {
            word: self.word.wrapping_add(x),
            adds: self.adds + 1,
            n: self.n + 1,
            ..self.clone()
        }
    }

    /// What `report` outputs.
    fn report(&self) -> Vec<u8> {
        let config = self.config.map_or(0, |len| len as u64 + 1);
        [self.version, self.word, self.adds, self.n, config]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }
}

type Model = BTreeMap<&'static str, Cell>;

fn stranger() -> Principal {
    bob()
}

/// A stranger's management of an installed plugin is refused before it runs (of a name nobody
/// installed, it is told `UnknownPlugin` as the owner would be).
#[track_caller]
fn refused_by_inspect<T: std::fmt::Debug>(reply: Result<T, CallError>) {
    match reply {
        Err(CallError::Runtime(RuntimeError::NotAccepted { .. })) => {}
        other => panic!("inspect_message should refuse a stranger, got {other:?}"),
    }
}

/// Runs one step against the canister and the model, checking the reply.
fn apply(host: &mut PluginHost, model: &mut Model, step: &Step) {
    match *step {
        Step::Install {
            plugin,
            version,
            chunked,
        } => {
            let name = NAMES[plugin];
            let wasm = cell_module(version);
            let reply = if chunked {
                let (first, second) = wasm.split_at(wasm.len() / 2);
                let mut hashes = Vec::new();
                for chunk in [first, second] {
                    let hash = host.upload_chunk(alice(), chunk).expect("upload message");
                    assert_eq!(hash.expect("chunk stored").as_ref(), sha256(chunk));
                    hashes.push(ByteBuf::from(sha256(chunk)));
                }
                let args = InstallChunkedArgs {
                    name: name.into(),
                    chunk_hashes: hashes,
                    wasm_sha256: ByteBuf::from(sha256(&wasm)),
                    config: None,
                    invoke_policy: None,
                    fuel_limit: Some(10_000_000),
                };
                host.install_chunked(alice(), args)
            } else {
                let args = InstallArgs {
                    fuel_limit: Some(10_000_000),
                    ..install_args(name, wasm.clone())
                };
                host.install(alice(), args)
            }
            .expect("install message");
            match (model.contains_key(name), reply) {
                (false, Ok(info)) => {
                    assert_eq!(info.code_sha256.as_ref(), sha256(&wasm));
                    model.insert(name, Cell::new(version));
                }
                (true, Err(InstallError::NameTaken { name: taken })) => assert_eq!(taken, name),
                (installed, reply) => panic!("install (installed: {installed}): {reply:?}"),
            }
            if chunked {
                // The chunks went into the plugin or stay the uploader's to delete.
                host.call::<_, ()>(CallKind::Update, "clear_chunks", (), alice())
                    .expect("clear_chunks");
            }
        }
        Step::Invoke {
            plugin,
            action,
            query,
        } => {
            let name = NAMES[plugin];
            let (input, fuel) = match action {
                Action::Add(x) => (x.to_le_bytes().to_vec(), None),
                Action::Spin => (Vec::new(), Some(SPIN_FUEL)),
                _ => (Vec::new(), None),
            };
            let kind = if query {
                CallKind::Query
            } else {
                CallKind::Update
            };
            let options = Some(InvokeOptions { fuel, logs: None });
            let reply = host
                .invoke(kind, alice(), name, action.function(), &input, options)
                .expect("invoke message");
            let Some(cell) = model.get_mut(name) else {
                match reply {
                    Err(failure) => assert_eq!(
                        failure.error,
                        InvokeError::UnknownPlugin { name: name.into() }
                    ),
                    Ok(reply) => panic!("{name} is not installed, yet answered {reply:?}"),
                }
                return;
            };
            let error = match (action, reply) {
                (Action::Add(x), Ok(reply)) => {
                    let after = cell.added(x);
                    assert_eq!(reply.output.as_ref(), after.report(), "{name}.add({x})");
                    if !query {
                        *cell = Cell {
                            calls: cell.calls + 1,
                            ..after
                        };
                    }
                    return;
                }
                (Action::State, Ok(reply)) => {
                    assert_eq!(reply.output.as_ref(), cell.report(), "{name}.state");
                    if !query {
                        cell.calls += 1;
                    }
                    return;
                }
                (_, Ok(reply)) => panic!("{name}.{} should fail: {reply:?}", action.function()),
                (_, Err(failure)) => failure.error,
            };
            match (action, &error) {
                (Action::Fail, InvokeError::PluginError { code: 7, message }) => {
                    assert_eq!(message, "refused!")
                }
                (Action::Trap, InvokeError::Trap { message }) => {
                    assert!(message.contains("unreachable"), "{message}")
                }
                (Action::Spin, InvokeError::OutOfFuel { fuel_limit, .. }) => {
                    assert_eq!(*fuel_limit, SPIN_FUEL)
                }
                (Action::Huge, InvokeError::LimitExceeded(limit)) => {
                    assert_eq!(limit.requested, 2_000_000, "{limit:?}")
                }
                _ => panic!("{name}.{}: unexpected {error:?}", action.function()),
            }
        }
        Step::UpgradePlugin {
            plugin,
            migration,
            stranger: by_stranger,
        } => {
            let name = NAMES[plugin];
            let version = model.get(name).map_or(1, |cell| 3 - cell.version);
            let wasm = cell_module(version);
            let args = UpgradePluginArgs {
                name: name.into(),
                wasm: ByteBuf::from(wasm.clone()),
                migration: match migration {
                    Migration::None => None,
                    Migration::Migrate => Some("migrate".into()),
                    Migration::Fails => Some("migrate_fail".into()),
                },
            };
            if by_stranger && model.contains_key(name) {
                return refused_by_inspect(host.upgrade_plugin(stranger(), args));
            }
            let caller = if by_stranger { stranger() } else { alice() };
            let reply = host.upgrade_plugin(caller, args).expect("upgrade message");
            let Some(cell) = model.get_mut(name) else {
                match reply {
                    Err(InstallError::UnknownPlugin { name: unknown }) => assert_eq!(unknown, name),
                    other => panic!("upgrading {name}, which is not installed: {other:?}"),
                }
                return;
            };
            match (migration, reply) {
                (Migration::Fails, Err(InstallError::MigrationFailed(failure))) => {
                    assert!(
                        matches!(failure.error, InvokeError::PluginError { code: 1, .. }),
                        "{failure:?}"
                    );
                }
                (Migration::None | Migration::Migrate, Ok(info)) => {
                    assert_eq!(info.code_sha256.as_ref(), sha256(&wasm));
                    let word = match migration {
                        Migration::Migrate => cell.n * 1000,
                        _ => 0,
                    };
                    // Memory and globals start from the new module; vars and config stay.
                    *cell = Cell {
                        version,
                        word,
                        adds: 0,
                        ..cell.clone()
                    };
                }
                (migration, reply) => panic!("upgrade_plugin {name} {migration:?}: {reply:?}"),
            }
        }
        Step::SetConfig {
            plugin,
            value_len,
            stranger: by_stranger,
        } => {
            let name = NAMES[plugin];
            let config: Vec<(String, String)> = value_len
                .map(|len| ("k".to_owned(), "v".repeat(len)))
                .into_iter()
                .collect();
            if by_stranger && model.contains_key(name) {
                return refused_by_inspect(host.set_config(stranger(), name, config));
            }
            let caller = if by_stranger { stranger() } else { alice() };
            let reply = host
                .set_config(caller, name, config.clone())
                .expect("set_config message");
            match (model.get_mut(name), reply) {
                (Some(cell), Ok(info)) => {
                    assert_eq!(info.config, config);
                    cell.config = value_len;
                }
                (None, Err(ManageError::UnknownPlugin { name: unknown })) => {
                    assert_eq!(unknown, name)
                }
                (cell, reply) => panic!("set_config {name} (model {cell:?}): {reply:?}"),
            }
        }
        Step::Uninstall {
            plugin,
            stranger: by_stranger,
        } => {
            let name = NAMES[plugin];
            if by_stranger && model.contains_key(name) {
                return refused_by_inspect(host.uninstall(stranger(), name));
            }
            let caller = if by_stranger { stranger() } else { alice() };
            let reply = host.uninstall(caller, name).expect("uninstall message");
            match (model.remove(name), reply) {
                (Some(_), Ok(())) => {}
                (None, Err(ManageError::UnknownPlugin { name: unknown })) => {
                    assert_eq!(unknown, name)
                }
                (cell, reply) => panic!("uninstall {name} (model {cell:?}): {reply:?}"),
            }
        }
        Step::UpgradeCanister => upgrade_to_other_build(host),
    }
}

/// Every plugin's state as the canister shows it (`get`, and `state` as a query) equals the
/// model's.
fn check(host: &mut PluginHost, model: &Model) {
    for name in NAMES {
        let info = host.get(alice(), name).expect("get");
        let Some(cell) = model.get(name) else {
            assert!(info.is_none(), "{name} is not installed, yet: {info:?}");
            continue;
        };
        let info = info.unwrap_or_else(|| panic!("{name} is installed, get says none"));
        assert_eq!(
            info.code_sha256.as_ref(),
            sha256(&cell_module(cell.version))
        );
        assert_eq!(info.calls, cell.calls, "{name}: successful calls");
        assert_eq!(info.config.len(), usize::from(cell.config.is_some()));
        let reply = host
            .invoke(CallKind::Query, alice(), name, "state", &[], None)
            .expect("invoke_query message")
            .unwrap_or_else(|failure| panic!("{name}.state: {failure}"));
        assert_eq!(reply.output.as_ref(), cell.report(), "{name}: state");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_canister_keeps_every_plugins_state_as_the_model_does(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let mut host = shared_host();
        let mut model = Model::new();
        for step in &steps {
            apply(&mut host, &mut model, step);
            check(&mut host, &model);
        }
    }
}
