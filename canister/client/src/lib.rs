//! A typed client of the `plugin_host` canister, for other canisters (a DAO, a game, ...).
//!
//! One async method per Candid method of `plugin_host.did`, with the same name, the same
//! arguments and the method's own reply type (`plugin-host-api`), wrapped in the result of the
//! inter-canister call:
//!
//! ```no_run
//! # async fn example(plugin_host: candid::Principal) -> Result<(), plugin_host_client::CallError> {
//! use plugin_host_client::PluginHostClient;
//! use plugin_host_api::ByteBuf;
//!
//! let host = PluginHostClient::new(plugin_host);
//! match host.invoke("counter".into(), "increment".into(), ByteBuf::from(b"1".to_vec()), None).await? {
//!     Ok(reply) => ic_cdk::println!("output: {:?}", reply.output),
//!     Err(failure) => ic_cdk::println!("the plugin failed: {failure}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Calls wait boundedly (ic-cdk's `Call::bounded_wait`, at most 300 s). A reject with code
//! `SysUnknown` means the outcome is unknown: an update may or may not have happened, so check
//! (e.g. with `get`) before retrying one that is not idempotent.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Deserialize, Principal};
use ic_cdk::call::Call;
use plugin_host_api::{
    ByteBuf, ChunkError, InstallArgs, InstallChunkedArgs, InstallError, InvokeFailure,
    InvokeOptions, InvokePolicy, InvokeReply, ListArgs, ListPage, ManageError, PluginInfo,
    Settings, SettingsError, SettingsView, UpgradePluginArgs,
};

/// Why a call to `plugin_host` produced no reply of the expected type: not enough cycles to
/// send it, the system refused to send it, the call was rejected (the canister trapped, is
/// stopped or does not exist, or the wait timed out), or the reply did not decode.
pub use ic_cdk::call::Error as CallError;

/// The `plugin_host` canister `canister_id`, with typed calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginHostClient {
    /// The `plugin_host` canister.
    pub canister_id: Principal,
}

impl PluginHostClient {
    /// A client of the `plugin_host` canister `canister_id`.
    pub fn new(canister_id: Principal) -> Self {
        Self { canister_id }
    }

    /// Calls `method` with `args` and decodes its single reply value (`()` for none).
    async fn call<A, R>(&self, method: &str, args: &A) -> Result<R, CallError>
    where
        A: ArgumentEncoder,
        R: CandidType + for<'de> Deserialize<'de>,
    {
        let response = Call::bounded_wait(self.canister_id, method)
            .with_args(args)
            .await?;
        Ok(response.candid()?)
    }
}

/// The reply type of a method: its one value, or `()` for a method that replies nothing.
macro_rules! reply {
    () => {
        ()
    };
    ($ret:ty) => {
        $ret
    };
}

/// Candid function modes of `query` and `update` methods.
macro_rules! modes {
    (query) => {
        vec![candid::types::FuncMode::Query]
    };
    (update) => {
        vec![]
    };
}

/// Defines one client method per entry, and `interface()`, the Candid service they make up,
/// from the same list (so a test can compare the client with `plugin_host.did`).
macro_rules! methods {
    ($(
        $(#[doc = $doc:literal])*
        $mode:ident fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;
    )*) => {
        impl PluginHostClient {
            $(
                $(#[doc = $doc])*
                pub async fn $name(&self, $($arg: $ty),*) -> Result<reply!($($ret)?), CallError> {
                    self.call(stringify!($name), &($($arg,)*)).await
                }
            )*
        }

        /// The Candid service this client calls, rendered from the Rust types of its methods
        /// (without the init argument). Equal to `plugin_host.did`'s service, which a test checks.
        pub fn interface() -> String {
            use candid::types::{Function, TypeInner, internal::TypeContainer};
            let mut env = TypeContainer::new();
            let mut service = Vec::new();
            $(
                let function = Function {
                    modes: modes!($mode),
                    args: vec![$(env.add::<$ty>()),*],
                    rets: vec![$(env.add::<$ret>())?],
                };
                service.push((stringify!($name).to_owned(), TypeInner::Func(function).into()));
            )*
            service.sort_by(|(a, _), (b, _)| a.cmp(b));
            candid::pretty::candid::compile(&env.env, &Some(TypeInner::Service(service).into()))
        }
    };
}

methods! {
    /// Installs a plugin; this canister (the caller) owns it.
    update fn install(args: InstallArgs) -> Result<PluginInfo, InstallError>;
    /// Stores one chunk (at most 1 MiB) of a module for `install_chunked`; returns its sha256.
    update fn upload_chunk(chunk: ByteBuf) -> Result<ByteBuf, ChunkError>;
    /// The hashes of the chunks this canister has stored.
    query fn stored_chunks() -> Vec<ByteBuf>;
    /// Deletes every chunk this canister has stored.
    update fn clear_chunks();
    /// Installs a plugin from chunks this canister uploaded.
    update fn install_chunked(args: InstallChunkedArgs) -> Result<PluginInfo, InstallError>;
    /// Runs `function` of `plugin` on `input`; the plugin's state persists if the call succeeds.
    update fn invoke(
        plugin: String,
        function: String,
        input: ByteBuf,
        options: Option<InvokeOptions>
    ) -> Result<InvokeReply, InvokeFailure>;
    /// The same as `invoke` on the current state, committing nothing (a query method; called
    /// from a canister it runs as a replicated call, which only admins of `plugin_host` may
    /// make: `InvokeError::DryRunAsUpdate` otherwise).
    query fn invoke_query(
        plugin: String,
        function: String,
        input: ByteBuf,
        options: Option<InvokeOptions>
    ) -> Result<InvokeReply, InvokeFailure>;
    /// Installed plugins in name order, a page at a time.
    query fn list(args: ListArgs) -> ListPage;
    /// One plugin, if installed.
    query fn get(name: String) -> Option<PluginInfo>;
    /// Removes a plugin and its state.
    update fn uninstall(name: String) -> Result<(), ManageError>;
    /// Replaces a plugin's code and keeps its state, running an optional migration once.
    update fn upgrade_plugin(args: UpgradePluginArgs) -> Result<PluginInfo, InstallError>;
    /// Replaces a plugin's configuration.
    update fn set_config(name: String, config: Vec<(String, String)>) -> Result<PluginInfo, ManageError>;
    /// Replaces who may invoke a plugin.
    update fn set_invoke_policy(name: String, policy: InvokePolicy) -> Result<PluginInfo, ManageError>;
    /// The canister's access settings.
    query fn settings() -> SettingsView;
    /// Replaces the canister's settings (admins only).
    update fn set_settings(settings: Settings) -> Result<(), SettingsError>;
    /// This canister's principal, as `plugin_host` sees it.
    query fn whoami() -> Principal;
    /// Which build of `plugin_host` runs.
    query fn version() -> String;
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use candid::types::subtype::equal;
    use candid_parser::utils::{CandidSource, instantiate_candid};

    /// The service of a Candid source, without its init argument.
    fn service(source: CandidSource) -> (candid::TypeEnv, candid::types::Type) {
        instantiate_candid(source).expect("valid Candid").1
    }

    /// Every method of the client has the name, argument types, reply type and mode of
    /// `plugin_host.did`, and the client has every method of it.
    #[test]
    fn the_client_speaks_plugin_host_did() {
        let client = super::interface();
        let did = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin_host/plugin_host.did");
        let (mut env, expected) = service(CandidSource::File(&did));
        let (client_env, actual) = service(CandidSource::Text(&client));
        let actual = env.merge_type(client_env, actual);
        if let Err(e) = equal(&mut HashSet::new(), &env, &actual, &expected) {
            panic!("the client differs from plugin_host.did:\n{e}\n\nclient interface:\n{client}");
        }
    }

    /// The comparison above does catch a difference (it is not vacuous).
    #[test]
    fn a_drifted_method_is_caught() {
        let client = super::interface().replace(
            "whoami : () -> (principal) query",
            "whoami : () -> (text) query",
        );
        assert!(client.contains("whoami : () -> (text) query"), "{client}");
        let did = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin_host/plugin_host.did");
        let (mut env, expected) = service(CandidSource::File(&did));
        let (client_env, actual) = service(CandidSource::Text(&client));
        let actual = env.merge_type(client_env, actual);
        assert!(equal(&mut HashSet::new(), &env, &actual, &expected).is_err());
    }
}
