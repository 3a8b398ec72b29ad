//! What the instruction benchmarks and the profiler share: the canister set-up and typed calls.

// Each bench binary uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candid::{CandidType, Deserialize, Principal};
use ic_local_runtime::Runtime;
use plugin_host_api::{ByteBuf, InitArgs, InstallArgs, InstallPolicy, InvokeOptions};
use plugin_host_local::client::{CallKind, PluginHost};
use plugin_host_local::identity;

/// Most fuel a call may have: the kernels need more than the default.
pub const KERNEL_FUEL: u64 = 1_000_000_000;
/// What `bench_native` answers (see `canister/plugin_host/src/bench.rs`).
#[derive(CandidType, Deserialize)]
pub struct NativeRun {
    pub output: ByteBuf,
    pub instructions: u64,
}

/// An invoke's output and cost.
pub struct Run {
    pub output: Vec<u8>,
    pub fuel_used: u64,
    pub instructions: u64,
}

pub fn admin() -> Principal {
    identity::principal("default")
}

pub fn read(root: &Path, path: &str) -> Vec<u8> {
    let path: PathBuf = root.join(path);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `cargo xtask bench`",
            path.display()
        )
    })
}

pub fn deploy(canister: &[u8]) -> PluginHost {
    deploy_on(&Runtime::new().expect("runtime"), canister)
}

/// [`deploy`] on `runtime` (a profiling one, say).
pub fn deploy_on(runtime: &Runtime, canister: &[u8]) -> PluginHost {
    let init = InitArgs {
        admins: None,
        install_policy: Some(InstallPolicy::AdminsOnly),
        ..InitArgs::default()
    };
    PluginHost::deploy_on(runtime, canister, Some(init), admin()).expect("canister deploys")
}

pub fn install(host: &mut PluginHost, name: &str, wasm: Vec<u8>) -> plugin_host_api::PluginInfo {
    install_as(host, admin(), name, wasm)
}

pub fn install_as(
    host: &mut PluginHost,
    owner: Principal,
    name: &str,
    wasm: Vec<u8>,
) -> plugin_host_api::PluginInfo {
    let args = InstallArgs {
        name: name.to_owned(),
        wasm: ByteBuf::from(wasm),
        config: None,
        invoke_policy: None,
        fuel_limit: Some(KERNEL_FUEL),
    };
    host.install(owner, args)
        .expect("install message")
        .unwrap_or_else(|e| panic!("install {name}: {e:?}"))
}

/// Invokes `plugin.function(input)` as the admin, with the kernels' fuel; panics if it fails.
pub fn invoke(host: &mut PluginHost, plugin: &str, function: &str, input: &str) -> Run {
    let options = InvokeOptions {
        fuel: Some(KERNEL_FUEL),
        logs: None,
    };
    let reply = host
        .invoke(
            CallKind::Update,
            admin(),
            plugin,
            function,
            input.as_bytes(),
            Some(options),
        )
        .expect("invoke message")
        .unwrap_or_else(|e| panic!("{plugin}.{function}: {e:?}"));
    Run {
        output: reply.output.into_vec(),
        fuel_used: reply.fuel_used,
        instructions: host.last_instructions(),
    }
}

/// A warm call: the second of two calls of `plugin.function(input)` (the first translates the
/// code the call reaches: wasmi translates lazily).
pub fn warm_invoke(host: &mut PluginHost, plugin: &str, function: &str, input: &str) -> Run {
    invoke(host, plugin, function, input);
    invoke(host, plugin, function, input)
}

pub fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("benchmark WAT parses")
}

/// A plugin with `pages` of memory whose `poke` increments one byte.
pub fn memory_plugin(pages: u32) -> String {
    format!(
        r#"(module
  (memory (export "memory") {pages})
  (func (export "poke") (result i32)
    (i32.store8 (i32.const 100) (i32.add (i32.load8_u (i32.const 100)) (i32.const 1)))
    (i32.const 0)))"#
    )
}

/// A P3 case: an example plugin given some state, then its first call after a canister upgrade.
pub struct ColdStart {
    /// The figure's name, also the profile scenario's.
    pub figure: &'static str,
    /// The plugin's name.
    pub plugin: &'static str,
    /// The module, `target/plugins/<wasm>.wasm`.
    pub wasm: &'static str,
    /// The calls before the upgrade (function, input), as in the demo.
    pub before: &'static [(&'static str, &'static str)],
    /// The call measured: the first after the upgrade.
    pub call: (&'static str, &'static str),
    /// The figure's goal, in instructions.
    pub goal: u64,
}

/// The P3 cases: the kernels plugin (~125 KiB, a no-op) and the demo's first calls after its
/// canister upgrade (`counter.get`, `creature.metadata`, `as_words.stats`: goal ≤ 2 M, issue 14).
pub const COLD_STARTS: [ColdStart; 4] = [
    ColdStart {
        figure: "P3.cold",
        plugin: "kernels",
        wasm: "kernels",
        before: &[("noop", "")],
        call: ("noop", ""),
        goal: 3_000_000,
    },
    ColdStart {
        figure: "P3.counter",
        plugin: "counter",
        wasm: "counter",
        before: &[("increment", ""), ("increment", ""), ("increment", "")],
        call: ("get", ""),
        goal: 2_000_000,
    },
    ColdStart {
        figure: "P3.creature",
        plugin: "creature",
        wasm: "nft",
        before: &[("mint", ""), ("feed", ""), ("play", ""), ("metadata", "")],
        call: ("metadata", ""),
        goal: 2_000_000,
    },
    ColdStart {
        figure: "P3.as_words",
        plugin: "as_words",
        wasm: "as_words",
        before: &[
            ("count_words", "plugins inside a canister"),
            ("count_words", "written in AssemblyScript"),
        ],
        call: ("stats", ""),
        goal: 2_000_000,
    },
];

impl ColdStart {
    /// Installs the plugin on `host`, makes its calls, upgrades the canister to `canister` and
    /// makes the measured call; returns it. Each case on a fresh canister, so each first call
    /// after the upgrade is also the canister's first message after it.
    pub fn run(&self, root: &Path, host: &mut PluginHost, canister: &[u8]) -> Run {
        install(
            host,
            self.plugin,
            read(root, &format!("target/plugins/{}.wasm", self.wasm)),
        );
        for (function, input) in self.before {
            invoke(host, self.plugin, function, input);
        }
        host.upgrade_canister(canister, None, admin())
            .expect("canister upgrade");
        let (function, input) = self.call;
        invoke(host, self.plugin, function, input)
    }
}
