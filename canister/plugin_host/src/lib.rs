//! The `plugin_host` canister: thin ic-cdk endpoints over `plugin-engine`.
//!
//! Each endpoint reads caller and time from the IC, checks access (`access`), calls the engine
//! through `state`, and maps the result to the Candid types of `plugin-host-api` (`convert`).
//! Nothing here traps on user input: every refusal is a typed `Err`. Every endpoint replies
//! through `replied` (see `reply`).

pub mod access;
pub mod args;
#[cfg(feature = "bench")]
mod bench;
pub mod chunks;
pub mod convert;
pub mod memory;
pub mod reply;
pub mod state;

use candid::{CandidType, Principal};
use plugin_host_api::{
    ByteBuf, ChunkError, InitArgs, InstallArgs, InstallChunkedArgs, InstallError, InvokeFailure,
    InvokeOptions, InvokeReply, ListArgs, ListPage, ManageError, PluginInfo, Settings,
    UpgradePluginArgs,
};

use crate::access::{Caller, Rules};

/// Largest page `list` returns.
const MAX_LIST_PAGE: u32 = 100;

/// The IC's instruction counter for the current message, for the engine's per-call budget.
struct IcMeter;

impl plugin_engine::InstructionMeter for IcMeter {
    fn instructions(&self) -> u64 {
        ic_cdk::api::performance_counter(0)
    }
}

/// Replies with `value` and returns it. Every endpoint is `manual_reply` and replies through
/// `reply::encode`: the same Candid bytes as ic-cdk's own reply, without rebuilding the type
/// table, and without clearing candid's type memo, which made the next message rebuild its types
/// (a no-op update cost 14 k on a fresh canister and up to 170 k after other messages).
fn replied<T: CandidType + 'static>(value: T) -> T {
    ic_cdk::api::msg_reply(reply::encode(&value));
    value
}

fn caller() -> Caller {
    let principal = ic_cdk::api::msg_caller();
    Caller {
        principal,
        is_controller: ic_cdk::api::is_controller(&principal),
    }
}

/// Builds the reply type parts of every query now, in an update-like message whose heap persists.
fn prepare_query_replies() {
    reply::prepare::<Vec<ByteBuf>>();
    reply::prepare::<ListPage>();
    reply::prepare::<Option<PluginInfo>>();
    reply::prepare::<Result<InvokeReply, InvokeFailure>>();
    reply::prepare::<Settings>();
    reply::prepare::<Principal>();
}

#[ic_cdk::init]
fn init(args: Option<InitArgs>) {
    state::open();
    prepare_query_replies();
    let settings = args.unwrap_or_default().apply(Settings::default());
    state::write(|s| s.set_settings(settings));
}

#[ic_cdk::post_upgrade]
fn post_upgrade(args: Option<InitArgs>) {
    state::open();
    prepare_query_replies();
    if let Some(args) = args {
        state::write(|s| {
            let settings = args.apply(s.settings.clone());
            s.set_settings(settings)
        });
    }
}

/// Installs a plugin; the caller owns it.
#[ic_cdk::update(manual_reply = true)]
fn install(args: InstallArgs) -> Result<PluginInfo, InstallError> {
    let caller = caller();
    let now = ic_cdk::api::time();
    replied(state::write(|s| {
        s.settings
            .authorize_install(&caller)
            .map_err(InstallError::NotAuthorized)?;
        convert::install(&mut s.engine, caller.principal, args.into(), now, &IcMeter)
    }))
}

/// Stores one chunk (at most 1 MiB) of a module for `install_chunked`; returns its sha256.
#[ic_cdk::update(manual_reply = true)]
fn upload_chunk(chunk: ByteBuf) -> Result<ByteBuf, ChunkError> {
    let caller = caller();
    replied(
        state::write(|s| s.chunks.upload(caller.principal, &chunk))
            .map(|sha256| ByteBuf::from(sha256.to_vec())),
    )
}

/// The hashes of the chunks the caller has stored.
#[ic_cdk::query(manual_reply = true)]
fn stored_chunks() -> Vec<ByteBuf> {
    let caller = caller();
    replied(
        state::read(|s| s.chunks.stored(caller.principal))
            .into_iter()
            .map(|sha256| ByteBuf::from(sha256.to_vec()))
            .collect(),
    )
}

/// Deletes every chunk the caller has stored.
#[ic_cdk::update(manual_reply = true)]
fn clear_chunks() {
    let caller = caller();
    state::write(|s| s.chunks.clear(caller.principal));
    replied(())
}

/// Installs a plugin from chunks the caller uploaded; on success the chunks are deleted.
#[ic_cdk::update(manual_reply = true)]
fn install_chunked(args: InstallChunkedArgs) -> Result<PluginInfo, InstallError> {
    let caller = caller();
    let now = ic_cdk::api::time();
    replied(state::write(|s| {
        s.settings
            .authorize_install(&caller)
            .map_err(InstallError::NotAuthorized)?;
        let (hashes, expected) = convert::chunk_hashes(&args.chunk_hashes, &args.wasm_sha256)
            .map_err(InstallError::Chunk)?;
        let wasm = s
            .chunks
            .assemble(caller.principal, &hashes, &expected)
            .map_err(InstallError::Chunk)?;
        let request = convert::InstallInput::from_chunked(args, wasm);
        let info = convert::install(&mut s.engine, caller.principal, request, now, &IcMeter)?;
        s.chunks.clear(caller.principal);
        Ok(info)
    }))
}

/// Runs `function` of `plugin` on `input`; the plugin's state persists if the call succeeds.
/// Arguments are decoded by `args` (hidden here: `interface` declares the method's Candid type).
#[ic_cdk::update(
    manual_reply = true,
    hidden = true,
    decode_with = "args::decode_invoke_args"
)]
fn invoke(
    plugin: String,
    function: String,
    input: ByteBuf,
    options: Option<InvokeOptions>,
) -> Result<InvokeReply, InvokeFailure> {
    replied(invoke_with(plugin, function, input, options, true))
}

/// The same as `invoke`, as a query: a free dry run on the current state that commits nothing.
#[ic_cdk::query(
    manual_reply = true,
    hidden = true,
    decode_with = "args::decode_invoke_args"
)]
fn invoke_query(
    plugin: String,
    function: String,
    input: ByteBuf,
    options: Option<InvokeOptions>,
) -> Result<InvokeReply, InvokeFailure> {
    replied(invoke_with(plugin, function, input, options, false))
}

fn invoke_with(
    plugin: String,
    function: String,
    input: ByteBuf,
    options: Option<InvokeOptions>,
    commit: bool,
) -> Result<InvokeReply, InvokeFailure> {
    let caller = caller();
    let now = ic_cdk::api::time();
    state::write(|s| {
        let options = options.unwrap_or_default();
        let logs = options.logs.unwrap_or(false);
        let request = plugin_engine::InvokeRequest {
            plugin: &plugin,
            function: &function,
            input: &input,
            fuel: options.fuel,
            caller: caller.principal.as_slice(),
            now_ns: now,
            commit,
            logs,
        };
        let result = s
            .engine
            .invoke_authorized(request, &IcMeter, |owner, policy| {
                s.settings.authorize_invoke(&caller, owner, policy)
            })
            .map_err(convert::not_authorized)?;
        convert::invoke(result, logs)
    })
}

/// Installed plugins in name order, a page at a time.
#[ic_cdk::query(manual_reply = true)]
fn list(args: ListArgs) -> ListPage {
    let limit = args.limit.unwrap_or(MAX_LIST_PAGE).min(MAX_LIST_PAGE) as usize;
    let (plugins, next) = state::read(|s| s.engine.list(args.start_after.as_deref(), limit));
    replied(ListPage {
        plugins: plugins.into_iter().map(convert::plugin_info).collect(),
        next,
    })
}

/// One plugin, if installed.
#[ic_cdk::query(manual_reply = true)]
fn get(name: String) -> Option<PluginInfo> {
    replied(state::read(|s| s.engine.get(&name)).map(convert::plugin_info))
}

/// Removes a plugin and its state; its code goes when no other plugin uses it.
#[ic_cdk::update(manual_reply = true)]
fn uninstall(name: String) -> Result<(), ManageError> {
    let caller = caller();
    replied(state::write(|s| {
        convert::authorize_manage(&s.engine, &s.settings, &caller, &name)?;
        s.engine.uninstall(&name).map_err(convert::manage_error)
    }))
}

/// Replaces a plugin's code and keeps its state; runs the optional migration once, rolling the
/// upgrade back if it fails.
#[ic_cdk::update(manual_reply = true)]
fn upgrade_plugin(args: UpgradePluginArgs) -> Result<PluginInfo, InstallError> {
    let caller = caller();
    let now = ic_cdk::api::time();
    replied(state::write(|s| {
        convert::authorize_manage(&s.engine, &s.settings, &caller, &args.name)
            .map_err(convert::manage_to_install_error)?;
        convert::upgrade_plugin(&mut s.engine, args, now, &IcMeter)
    }))
}

/// Replaces a plugin's configuration.
#[ic_cdk::update(manual_reply = true)]
fn set_config(name: String, config: Vec<(String, String)>) -> Result<PluginInfo, ManageError> {
    let caller = caller();
    let now = ic_cdk::api::time();
    replied(state::write(|s| {
        convert::authorize_manage(&s.engine, &s.settings, &caller, &name)?;
        s.engine
            .set_config(&name, config.into_iter().collect(), now)
            .map(convert::plugin_info)
            .map_err(convert::manage_error)
    }))
}

/// Replaces who may invoke a plugin.
#[ic_cdk::update(manual_reply = true)]
fn set_invoke_policy(
    name: String,
    policy: plugin_host_api::InvokePolicy,
) -> Result<PluginInfo, ManageError> {
    let caller = caller();
    let now = ic_cdk::api::time();
    replied(state::write(|s| {
        convert::authorize_manage(&s.engine, &s.settings, &caller, &name)?;
        s.engine
            .set_invoke_policy(&name, convert::invoke_policy(policy), now)
            .map(convert::plugin_info)
            .map_err(convert::manage_error)
    }))
}

/// The canister's access settings.
#[ic_cdk::query(manual_reply = true)]
fn settings() -> Settings {
    replied(state::read(|s| s.settings.clone()))
}

/// Replaces the canister's access settings (admins only).
#[ic_cdk::update(manual_reply = true)]
fn set_settings(settings: Settings) -> Result<(), plugin_host_api::Denied> {
    let caller = caller();
    replied(state::write(|s| {
        s.settings.authorize_admin(&caller)?;
        s.set_settings(settings);
        Ok(())
    }))
}

/// The principal of the caller, as the canister sees it (handy for setting up allow-lists).
#[ic_cdk::query(manual_reply = true)]
fn whoami() -> Principal {
    replied(ic_cdk::api::msg_caller())
}

/// The Candid interface, generated from the endpoints above (`export_candid!` must follow them).
mod interface {
    #![allow(missing_docs)]
    use super::*;
    #[cfg(feature = "bench")]
    use crate::bench::NativeRun;

    // `invoke` and `invoke_query` decode their arguments themselves (`args`), so ic-cdk would
    // export them as taking a blob; these declare the Candid type they decode. Never called.
    #[candid::candid_method(update, rename = "invoke")]
    #[allow(dead_code, reason = "read only by export_candid!")]
    fn invoke_interface(
        plugin: String,
        function: String,
        input: ByteBuf,
        options: Option<InvokeOptions>,
    ) -> Result<InvokeReply, InvokeFailure> {
        unreachable!("only declares the interface: {plugin} {function} {input:?} {options:?}")
    }

    #[candid::candid_method(query, rename = "invoke_query")]
    #[allow(dead_code, reason = "read only by export_candid!")]
    fn invoke_query_interface(
        plugin: String,
        function: String,
        input: ByteBuf,
        options: Option<InvokeOptions>,
    ) -> Result<InvokeReply, InvokeFailure> {
        unreachable!("only declares the interface: {plugin} {function} {input:?} {options:?}")
    }

    ic_cdk::export_candid!();

    #[cfg(test)]
    mod tests {
        use candid_parser::utils::{CandidSource, service_equal};

        /// The interface the code exports is the one checked in (`plugin_host.did`).
        #[test]
        fn candid_interface_matches_the_checked_in_did() {
            let exported = super::__export_service();
            let did = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin_host.did");
            if let Err(e) = service_equal(CandidSource::Text(&exported), CandidSource::File(&did)) {
                panic!("plugin_host.did is out of date:\n{e}\n\nexported interface:\n{exported}");
            }
        }
    }
}
