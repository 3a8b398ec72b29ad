//! The `plugin_host` canister: thin ic-cdk endpoints over `plugin-engine`.
//!
//! Each endpoint reads caller, time and cycle balance from the IC ([`message`]) and calls an
//! operation of [`state::State`] (in `plugins`, `inspect`) through `state`; the engine's errors are
//! the interface's own types. Nothing here traps on user input: every refusal is a typed `Err`
//! (the one exception: arguments that candid cannot decode as the method's types, which ic-cdk's
//! decoding rejects before an endpoint runs). Every endpoint replies through `replied` or
//! `replied_result` (see `reply`).

pub mod access;
pub mod args;
#[cfg(feature = "bench")]
mod bench;
pub mod chunks;
pub mod convert;
mod inspect;
pub mod memory;
pub mod plugins;
pub mod quota;
pub mod reply;
pub mod state;

use candid::{CandidType, Principal};
use plugin_host_api::{
    ByteBuf, ChunkError, InitArgs, InstallArgs, InstallChunkedArgs, InstallError, InvokeFailure,
    InvokeOptions, InvokeReply, ListArgs, ListPage, ManageError, PluginInfo, Settings,
    SettingsError, SettingsView, Totals, UpgradePluginArgs,
};

use crate::access::{Caller, Rules};
use crate::args::InvokeArgs;
use crate::plugins::{InstallInput, Message};

/// Largest page `list` returns.
const MAX_LIST_PAGE: u32 = 100;
/// Most bytes of plugin records in one `list` page (the reply limit is 2 MiB; one record may be
/// up to about 330 KB with every cap used).
const MAX_LIST_BYTES: u64 = 1024 * 1024;

/// Replies with `value` and returns it. Every endpoint is `manual_reply` and replies through
/// `reply::encode`: the same Candid bytes as ic-cdk's own reply, without rebuilding the type
/// table, and without clearing candid's type memo, which made the next message rebuild its types
/// (a no-op update cost 14 k on a fresh canister and up to 170 k after other messages).
fn replied<T: CandidType + 'static>(value: T) -> T {
    ic_cdk::api::msg_reply(reply::encode(&value));
    value
}

/// Replies with a `Result` as [`replied`] does, typed by the case it holds (`reply::encode_result`:
/// a shorter type part, which every Candid decoder takes as the declared `Result`).
fn replied_result<T: CandidType + 'static, E: CandidType + 'static>(
    value: Result<T, E>,
) -> Result<T, E> {
    ic_cdk::api::msg_reply(reply::encode_result(&value));
    value
}

/// What the current message is: its caller, the time and the canister's cycle balance.
fn message() -> Message {
    let principal = ic_cdk::api::msg_caller();
    Message {
        caller: Caller {
            principal,
            is_controller: ic_cdk::api::is_controller(&principal),
        },
        now_ns: ic_cdk::api::time(),
        cycle_balance: ic_cdk::api::canister_cycle_balance(),
        replicated: ic_cdk::api::in_replicated_execution(),
    }
}

/// Builds the reply type parts of every query now, in an update-like message whose heap persists.
fn prepare_query_replies() {
    reply::prepare::<Vec<ByteBuf>>();
    reply::prepare::<ListPage>();
    reply::prepare::<Option<PluginInfo>>();
    reply::prepare_result::<InvokeReply, InvokeFailure>();
    reply::prepare::<SettingsView>();
    reply::prepare::<Principal>();
    reply::prepare::<String>();
}

#[ic_cdk::init]
fn init(args: Option<InitArgs>) {
    state::open();
    prepare_query_replies();
    let settings = args.unwrap_or_default().apply(Settings::default());
    state::write(|s| s.set_settings(settings)).expect("a new canister has room for its settings");
}

#[ic_cdk::post_upgrade]
fn post_upgrade(args: Option<InitArgs>) {
    state::open();
    prepare_query_replies();
    if let Some(args) = args {
        state::write(|s| {
            let settings = args.apply(s.settings.clone());
            s.set_settings(settings)
        })
        .expect("stable memory has room for the settings");
    }
}

/// Accepts an ingress message only if its caller may do what it asks (see `inspect`).
#[ic_cdk::inspect_message]
fn inspect_message() {
    let method = ic_cdk::api::msg_method_name();
    let arg = ic_cdk::api::msg_arg_data();
    if state::read(|s| s.admits(&message(), &method, &arg)) {
        ic_cdk::api::accept_message();
    }
}

/// Installs a plugin; the caller owns it.
#[ic_cdk::update(manual_reply = true)]
fn install(args: InstallArgs) -> Result<PluginInfo, InstallError> {
    let input = InstallInput {
        name: args.name,
        wasm: args.wasm.into_vec(),
        config: args.config,
        invoke_policy: args.invoke_policy,
        fuel_limit: args.fuel_limit,
    };
    replied_result(state::write(|s| s.install(&message(), input)))
}

/// Stores one chunk (at most 1 MiB) of a module for `install_chunked`; returns its sha256.
#[ic_cdk::update(manual_reply = true)]
fn upload_chunk(chunk: ByteBuf) -> Result<ByteBuf, ChunkError> {
    replied_result(
        state::write(|s| s.upload_chunk(&message(), &chunk))
            .map(|sha256| ByteBuf::from(sha256.to_vec())),
    )
}

/// The hashes of the chunks the caller has stored.
#[ic_cdk::query(manual_reply = true)]
fn stored_chunks() -> Vec<ByteBuf> {
    let message = message();
    replied(
        state::read(|s| s.chunks.stored(message.caller.principal, message.now_ns))
            .into_iter()
            .map(|sha256| ByteBuf::from(sha256.to_vec()))
            .collect(),
    )
}

/// Deletes every chunk the caller has stored.
#[ic_cdk::update(manual_reply = true)]
fn clear_chunks() {
    let caller = message().caller;
    state::write(|s| s.chunks.clear_uploader(caller.principal));
    replied(())
}

/// Installs a plugin from chunks the caller uploaded; on success the chunks are deleted.
#[ic_cdk::update(manual_reply = true)]
fn install_chunked(args: InstallChunkedArgs) -> Result<PluginInfo, InstallError> {
    replied_result(state::write(|s| s.install_chunked(&message(), args)))
}

/// Runs `function` of `plugin` on `input`; the plugin's state persists if the call succeeds.
/// Arguments are decoded by `args` (hidden here: `interface` declares the method's Candid type).
#[ic_cdk::update(
    manual_reply = true,
    hidden = true,
    decode_with = "args::decode_invoke_args"
)]
fn invoke(args: InvokeArgs) -> Result<InvokeReply, InvokeFailure> {
    replied_result(state::write(|s| s.invoke(&message(), args, true, &counter)))
}

/// The same as `invoke`, as a query: a free dry run on the current state that commits nothing.
#[ic_cdk::query(
    manual_reply = true,
    hidden = true,
    decode_with = "args::decode_invoke_args"
)]
fn invoke_query(args: InvokeArgs) -> Result<InvokeReply, InvokeFailure> {
    replied_result(state::write(|s| {
        s.invoke(&message(), args, false, &counter)
    }))
}

/// The message's instruction counter.
fn counter() -> u64 {
    ic_cdk::api::performance_counter(0)
}

/// Installed plugins in name order, a page at a time.
#[ic_cdk::query(manual_reply = true)]
fn list(args: ListArgs) -> ListPage {
    let limit = args.limit.unwrap_or(MAX_LIST_PAGE).min(MAX_LIST_PAGE) as usize;
    let now = ic_cdk::api::time();
    replied(state::read(|s| {
        let (records, next) = s
            .engine
            .list(args.start_after.as_deref(), limit, MAX_LIST_BYTES);
        ListPage {
            plugins: records.into_iter().map(|r| s.plugin_info(r, now)).collect(),
            next,
        }
    }))
}

/// One plugin, if installed.
#[ic_cdk::query(manual_reply = true)]
fn get(name: String) -> Option<PluginInfo> {
    let now = ic_cdk::api::time();
    replied(state::read(|s| {
        s.engine.get(&name).map(|r| s.plugin_info(r, now))
    }))
}

/// Removes a plugin and its state; its code goes when no other plugin uses it.
#[ic_cdk::update(manual_reply = true)]
fn uninstall(name: String) -> Result<(), ManageError> {
    replied_result(state::write(|s| s.uninstall(&message().caller, &name)))
}

/// Replaces a plugin's code and keeps its state; runs the optional migration once, rolling the
/// upgrade back if it fails.
#[ic_cdk::update(manual_reply = true)]
fn upgrade_plugin(args: UpgradePluginArgs) -> Result<PluginInfo, InstallError> {
    replied_result(state::write(|s| s.upgrade_plugin(&message(), args)))
}

/// Replaces a plugin's configuration.
#[ic_cdk::update(manual_reply = true)]
fn set_config(name: String, config: Vec<(String, String)>) -> Result<PluginInfo, ManageError> {
    replied_result(state::write(|s| s.set_config(&message(), &name, config)))
}

/// Replaces who may invoke a plugin.
#[ic_cdk::update(manual_reply = true)]
fn set_invoke_policy(
    name: String,
    policy: plugin_host_api::InvokePolicy,
) -> Result<PluginInfo, ManageError> {
    replied_result(state::write(|s| {
        s.set_invoke_policy(&message(), &name, policy)
    }))
}

/// The canister's settings, what it holds and its caps.
#[ic_cdk::query(manual_reply = true)]
fn settings() -> SettingsView {
    let message = message();
    let heap_bytes = heap_bytes();
    replied(state::read(|s| SettingsView {
        settings: s.settings.clone(),
        totals: Totals {
            plugins: s.engine.plugin_count(),
            modules: s.engine.stored_modules(),
            code_bytes: s.engine.code_bytes(),
            chunk_bytes: s.chunks.stored_bytes(message.now_ns),
            stable_bytes: s.stable_bytes(),
            heap_bytes,
            cached_bytes: s.engine.cached_heap_bytes(),
            cycle_balance: message.cycle_balance,
        },
        caps: convert::caps(s.engine.limits()),
    }))
}

/// The canister's heap (wasm memory) in bytes.
fn heap_bytes() -> u64 {
    #[cfg(target_family = "wasm")]
    {
        core::arch::wasm32::memory_size(0) as u64 * 65_536
    }
    #[cfg(not(target_family = "wasm"))]
    {
        0
    }
}

/// Replaces the canister's settings (admins only).
#[ic_cdk::update(manual_reply = true)]
fn set_settings(settings: Settings) -> Result<(), SettingsError> {
    let caller = message().caller;
    replied_result(state::write(|s| {
        s.settings
            .authorize_admin(&caller)
            .map_err(SettingsError::NotAuthorized)?;
        s.set_settings(settings).map_err(SettingsError::StorageFull)
    }))
}

/// The principal of the caller, as the canister sees it (handy for setting up allow-lists).
#[ic_cdk::query(manual_reply = true)]
fn whoami() -> Principal {
    replied(ic_cdk::api::msg_caller())
}

/// What `version` answers. The upgrade tests turn it into another build's by patching these
/// bytes in the module.
const VERSION: &str = concat!("plugin_host ", env!("CARGO_PKG_VERSION"));

/// The canister's name and version: which build is running.
#[ic_cdk::query(manual_reply = true)]
fn version() -> String {
    replied(VERSION.to_owned())
}

/// The Candid interface, generated from the endpoints above (`export_candid!` must follow them).
mod interface {
    #![allow(missing_docs)]
    use super::*;
    #[cfg(feature = "bench")]
    use crate::bench::NativeRun;

    // `invoke` and `invoke_query` decode their arguments themselves (`args::InvokeArgs`), so
    // ic-cdk would export them as taking a blob; these declare the Candid type they decode.
    // Never called.
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
        /// The interface the code exports is the one checked in (`plugin_host.did`).
        #[test]
        fn candid_interface_matches_the_checked_in_did() {
            plugin_host_api::assert_interface_matches_did(
                &super::__export_service(),
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin_host.did"),
            );
        }
    }
}
