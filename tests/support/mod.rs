//! Shared set-up of the end-to-end tests: the real, shrunk canister module in the local canister
//! runtime, the example plugins built by `cargo xtask build`, and the hostile WAT plugins.

#![allow(dead_code, missing_docs)]

#[path = "artifacts.rs"]
mod artifacts;

#[allow(unused_imports, reason = "each test binary uses some of them")]
pub use artifacts::{canister_wasm, dao_canister_wasm, plugin, repo};

use std::path::PathBuf;

use candid::Principal;
use ic_local_runtime::RuntimeError;
use plugin_host_api::{
    ByteBuf, InitArgs, InstallArgs, InstallError, InstallPolicy, InvokeError, InvokeFailure,
    InvokeOptions, InvokeReply, PluginInfo,
};
use plugin_host_local::client::{CallError, CallKind, PluginHost, Route};
use plugin_host_local::identity;

/// A hostile plugin from `plugins/hostile/NAME.wat`.
pub fn hostile(name: &str) -> Vec<u8> {
    let path = repo().join(format!("plugins/hostile/{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The version text in the module `wasm` (`plugin_host X.Y.Z`, what its `version` query
/// answers) and where it is, found in its data: it must be there exactly once.
fn version_in(wasm: &[u8]) -> (usize, String) {
    const NAME: &[u8] = b"plugin_host ";
    let found: Vec<(usize, String)> = wasm
        .windows(NAME.len())
        .enumerate()
        .filter(|(_, bytes)| *bytes == NAME)
        .filter_map(|(at, _)| {
            let digits = wasm[at + NAME.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b'.')
                .count();
            let text = std::str::from_utf8(&wasm[at..at + NAME.len() + digits]).ok()?;
            (text.matches('.').count() == 2).then(|| (at, text.to_owned()))
        })
        .collect();
    let [(at, text)] = &found[..] else {
        panic!(
            "the version text is {} times in the module, not once: {found:?}",
            found.len()
        );
    };
    (*at, text.clone())
}

/// The version text of the build [`canister_wasm`] reads, and another build of it: the same
/// code with that text upper-cased (patched in its data). Made once per test binary.
fn builds() -> &'static (String, Vec<u8>) {
    static BUILDS: std::sync::OnceLock<(String, Vec<u8>)> = std::sync::OnceLock::new();
    BUILDS.get_or_init(|| {
        let mut wasm = ic_local_runtime::decompress(&canister_wasm()).expect("the module gunzips");
        let (at, version) = version_in(&wasm);
        wasm[at..at + version.len()].copy_from_slice(version.to_uppercase().as_bytes());
        (version, wasm)
    })
}

/// What `version` answers in the build [`canister_wasm`] reads.
pub fn build_version() -> String {
    builds().0.clone()
}

/// What `version` answers in [`other_canister_build`].
pub fn other_version() -> String {
    builds().0.to_uppercase()
}

/// Another build of the canister: the same code with another version text, so that an upgrade
/// test shows that the new module runs, not the old one.
pub fn other_canister_build() -> Vec<u8> {
    builds().1.clone()
}

/// What the canister's `version` answers.
pub fn running_version(host: &mut PluginHost) -> String {
    host.call::<_, (String,)>(CallKind::Query, "version", (), admin())
        .expect("version")
        .0
}

/// Upgrades the canister to the build that is not running ([`canister_wasm`] or
/// [`other_canister_build`]) and checks that the new one answers.
#[track_caller]
pub fn upgrade_to_other_build(host: &mut PluginHost) {
    let (wasm, version) = if running_version(host) == build_version() {
        (other_canister_build(), other_version())
    } else {
        (canister_wasm(), build_version())
    };
    host.upgrade_canister(&wasm, None, admin())
        .expect("the canister upgrades");
    assert_eq!(running_version(host), version, "the new build runs");
}

/// The controller that deployed the canister.
pub fn admin() -> Principal {
    identity::principal("default")
}

pub fn alice() -> Principal {
    identity::principal("alice")
}

pub fn bob() -> Principal {
    identity::principal("bob")
}

/// A freshly deployed canister in which any authenticated caller may install.
pub fn host() -> PluginHost {
    let init = InitArgs {
        admins: None,
        install_policy: Some(InstallPolicy::AnyAuthenticated),
        ..InitArgs::default()
    };
    PluginHost::deploy(&canister_wasm(), Some(init), admin()).expect("canister deploys")
}

/// [`host`] on one runtime shared by the whole test binary, which compiles the canister module
/// once instead of once per test.
pub fn shared_host() -> PluginHost {
    static RUNTIME: std::sync::OnceLock<ic_local_runtime::Runtime> = std::sync::OnceLock::new();
    let runtime =
        RUNTIME.get_or_init(|| ic_local_runtime::Runtime::new().expect("a local runtime"));
    let init = InitArgs {
        admins: None,
        install_policy: Some(InstallPolicy::AnyAuthenticated),
        ..InitArgs::default()
    };
    let arg = candid::encode_args((Some(init),)).expect("encode the init argument");
    let (canister, _) =
        ic_local_runtime::Canister::install_on(runtime, &canister_wasm(), &arg, admin().as_slice())
            .expect("canister deploys");
    PluginHost::from_canister(canister)
}

pub fn install_args(name: &str, wasm: Vec<u8>) -> InstallArgs {
    InstallArgs {
        name: name.to_owned(),
        wasm: ByteBuf::from(wasm),
        config: None,
        invoke_policy: None,
        fuel_limit: None,
    }
}

#[track_caller]
pub fn install(host: &mut PluginHost, caller: Principal, name: &str, wasm: Vec<u8>) -> PluginInfo {
    match host
        .install(caller, install_args(name, wasm))
        .expect("install message")
    {
        Ok(info) => info,
        Err(e) => panic!("installing {name} failed: {e}"),
    }
}

#[track_caller]
pub fn install_err(host: &mut PluginHost, name: &str, wasm: Vec<u8>) -> InstallError {
    match host
        .install(alice(), install_args(name, wasm))
        .expect("install message")
    {
        Ok(info) => panic!("installing {name} should fail, got {info:?}"),
        Err(e) => e,
    }
}

pub fn call(
    host: &mut PluginHost,
    caller: Principal,
    plugin: &str,
    function: &str,
    input: &str,
) -> Result<InvokeReply, InvokeFailure> {
    host.invoke(
        CallKind::Update,
        caller,
        plugin,
        function,
        input.as_bytes(),
        Some(InvokeOptions {
            fuel: None,
            logs: Some(true),
        }),
    )
    .expect("invoke message")
}

/// Uploads `wasm` as `caller` in 1 MiB chunks (`upload_chunk`) and returns the chunks' hashes,
/// for `install_chunked`.
#[track_caller]
pub fn upload_chunks(host: &mut PluginHost, caller: Principal, wasm: &[u8]) -> Vec<ByteBuf> {
    wasm.chunks(1024 * 1024)
        .map(|chunk| {
            host.upload_chunk(caller, chunk)
                .expect("message")
                .expect("chunk stored")
        })
        .collect()
}

/// Invokes and returns the output as text, failing the test on an error.
#[track_caller]
pub fn ok(host: &mut PluginHost, plugin: &str, function: &str, input: &str) -> String {
    match call(host, alice(), plugin, function, input) {
        Ok(reply) => String::from_utf8(reply.output.into_vec()).expect("utf-8 output"),
        Err(failure) => panic!("{plugin}.{function}({input:?}) failed: {failure}"),
    }
}

/// Invokes and returns the error, failing the test on success.
#[track_caller]
pub fn err(host: &mut PluginHost, plugin: &str, function: &str, input: &str) -> InvokeError {
    match call(host, alice(), plugin, function, input) {
        Ok(reply) => panic!(
            "{plugin}.{function}({input:?}) should fail, returned {:?}",
            String::from_utf8_lossy(&reply.output)
        ),
        Err(failure) => failure.error,
    }
}

/// A refusal seen both ways a call can come: as ingress, the canister's `inspect_message` refuses
/// it before it runs; from another canister (no inspect_message), the endpoint answers `typed`.
#[track_caller]
pub fn refused_both_ways<T: std::fmt::Debug>(
    host: &mut PluginHost,
    call: impl Fn(&mut PluginHost) -> Result<T, CallError>,
    typed: impl Fn(&T) -> bool,
) {
    match call(host) {
        Err(CallError::Runtime(RuntimeError::NotAccepted { .. })) => {}
        other => panic!("inspect_message should refuse the ingress message, got {other:?}"),
    }
    host.set_route(Route::FromCanister);
    let reply = call(host);
    host.set_route(Route::Ingress);
    match reply {
        Ok(reply) => assert!(typed(&reply), "unexpected reply {reply:?}"),
        Err(e) => panic!("the endpoint should answer, got {e}"),
    }
}

/// One local runtime for the whole test binary: each canister module is compiled once however
/// many canisters a test deploys, saves or loads on it (as [`shared_host`] does for its own).
pub fn runtime() -> &'static ic_local_runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<ic_local_runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| ic_local_runtime::Runtime::new().expect("a local runtime"))
}

/// Deploys the canister on [`runtime`] with `init`; `deployer` becomes its controller.
pub fn deploy_on_runtime(init: Option<InitArgs>, deployer: Principal) -> PluginHost {
    let arg = candid::encode_args((init,)).expect("encode the init argument");
    let (canister, _) = ic_local_runtime::Canister::install_on(
        runtime(),
        &canister_wasm(),
        &arg,
        deployer.as_slice(),
    )
    .expect("canister deploys");
    PluginHost::from_canister(canister)
}

/// The canister's stable memory in short: its size in 64 KiB pages and the sha256 of its 4 KiB
/// pages that hold a byte other than zero, each as its index (u64 LE) then its bytes: equal
/// digests, equal stable memories.
pub fn stable_digest(host: &mut PluginHost) -> (u64, [u8; 32]) {
    use sha2::Digest;
    let canister = host.canister();
    let mut hasher = sha2::Sha256::new();
    for (index, page) in canister.stable_memory_pages() {
        hasher.update(index.to_le_bytes());
        hasher.update(page);
    }
    (canister.stable_size_pages(), hasher.finalize().into())
}

/// A scratch directory under `target/tmp/`, emptied first, for a test named `name`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = repo()
        .join("target/tmp")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}
