//! A typed client of the `plugin_host` canister running in the local canister runtime: one Rust
//! method per Candid method, each returning the canister's own `Result` inside the transport's.

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{Principal, decode_args, encode_args};
use ic_local_runtime::{Canister, Execution, Outcome, Runtime, RuntimeError};
use plugin_host_api::{
    ByteBuf, ChunkError, InitArgs, InstallArgs, InstallChunkedArgs, InstallError, InvokeFailure,
    InvokeOptions, InvokePolicy, InvokeReply, ListArgs, ListPage, ManageError, PluginInfo,
    Settings, SettingsView, UpgradePluginArgs,
};

/// A message that did not produce a reply the client could decode.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The runtime refused or the canister trapped.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The canister rejected the message.
    #[error("rejected (code {code}): {message}")]
    Rejected {
        /// Reject code.
        code: u32,
        /// Reject message.
        message: String,
    },
    /// The canister completed the message without replying.
    #[error("the canister did not reply to `{0}`")]
    NoReply(String),
    /// Candid encoding or decoding failed.
    #[error("candid: {0}")]
    Candid(#[from] candid::Error),
}

/// Whether a message is an update (commits) or a query (never commits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `canister_update`
    Update,
    /// `canister_query`
    Query,
}

/// Where update calls come from: users (ingress, which the canister's `inspect_message` sees
/// first) or another canister (which it does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Route {
    /// Ingress messages, as from dfx or an agent.
    #[default]
    Ingress,
    /// Calls from another canister (a DAO, say).
    FromCanister,
}

/// The `plugin_host` canister in the local runtime, with typed calls.
pub struct PluginHost {
    canister: Canister,
    last_instructions: u64,
    route: Route,
}

type Reply<T, E> = Result<Result<T, E>, CallError>;

impl PluginHost {
    /// Installs the canister module `wasm` (gzipped or not) with `init`; `deployer` becomes its controller.
    pub fn deploy(
        wasm: &[u8],
        init: Option<InitArgs>,
        deployer: Principal,
    ) -> Result<Self, CallError> {
        Self::deploy_on(&Runtime::new()?, wasm, init, deployer)
    }

    /// [`PluginHost::deploy`] on `runtime`.
    pub fn deploy_on(
        runtime: &Runtime,
        wasm: &[u8],
        init: Option<InitArgs>,
        deployer: Principal,
    ) -> Result<Self, CallError> {
        let arg = encode_args((init,))?;
        let (canister, execution) = Canister::install_on(runtime, wasm, &arg, deployer.as_slice())?;
        Ok(Self {
            canister,
            last_instructions: execution.instructions,
            route: Route::Ingress,
        })
    }

    /// Wraps a canister already running (e.g. loaded from a state directory).
    pub fn from_canister(canister: Canister) -> Self {
        Self {
            canister,
            last_instructions: 0,
            route: Route::Ingress,
        }
    }

    /// The underlying canister (to save it, advance time, ...).
    pub fn canister(&mut self) -> &mut Canister {
        &mut self.canister
    }

    /// Sends the update calls that follow as `route` (ingress by default).
    pub fn set_route(&mut self, route: Route) {
        self.route = route;
    }

    /// IC instructions the last message used (estimate of the replica's count).
    pub fn last_instructions(&self) -> u64 {
        self.last_instructions
    }

    /// Upgrades the canister to `wasm`, keeping stable memory.
    pub fn upgrade_canister(
        &mut self,
        wasm: &[u8],
        init: Option<InitArgs>,
        sender: Principal,
    ) -> Result<(), CallError> {
        let arg = encode_args((init,))?;
        let execution = self.canister.upgrade(wasm, &arg, sender.as_slice())?;
        self.last_instructions = execution.instructions;
        Ok(())
    }

    /// Sends raw Candid bytes to `method` and returns the raw reply.
    pub fn call_raw(
        &mut self,
        kind: CallKind,
        method: &str,
        arg: &[u8],
        caller: Principal,
    ) -> Result<Vec<u8>, CallError> {
        let execution: Execution = match kind {
            CallKind::Update => match self.route {
                Route::Ingress => self.canister.update(method, arg, caller.as_slice())?,
                Route::FromCanister => {
                    self.canister
                        .update_from_canister(method, arg, caller.as_slice())?
                }
            },
            CallKind::Query => self.canister.query(method, arg, caller.as_slice())?,
        };
        self.last_instructions = execution.instructions;
        match execution.outcome {
            Outcome::Reply(bytes) => Ok(bytes),
            Outcome::Reject { code, message } => Err(CallError::Rejected { code, message }),
            Outcome::Done => Err(CallError::NoReply(method.to_owned())),
        }
    }

    /// A typed call.
    pub fn call<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &mut self,
        kind: CallKind,
        method: &str,
        args: A,
        caller: Principal,
    ) -> Result<R, CallError> {
        let arg = encode_args(args)?;
        let reply = self.call_raw(kind, method, &arg, caller)?;
        Ok(decode_args(&reply)?)
    }

    fn update1<A: ArgumentEncoder, R: for<'a> candid::Deserialize<'a> + candid::CandidType>(
        &mut self,
        method: &str,
        args: A,
        caller: Principal,
    ) -> Result<R, CallError> {
        self.call::<A, (R,)>(CallKind::Update, method, args, caller)
            .map(|(r,)| r)
    }

    fn query1<A: ArgumentEncoder, R: for<'a> candid::Deserialize<'a> + candid::CandidType>(
        &mut self,
        method: &str,
        args: A,
        caller: Principal,
    ) -> Result<R, CallError> {
        self.call::<A, (R,)>(CallKind::Query, method, args, caller)
            .map(|(r,)| r)
    }

    /// `install`
    pub fn install(
        &mut self,
        caller: Principal,
        args: InstallArgs,
    ) -> Reply<PluginInfo, InstallError> {
        self.update1("install", (args,), caller)
    }

    /// `upload_chunk`
    pub fn upload_chunk(&mut self, caller: Principal, chunk: &[u8]) -> Reply<ByteBuf, ChunkError> {
        self.update1("upload_chunk", (ByteBuf::from(chunk.to_vec()),), caller)
    }

    /// `stored_chunks`
    pub fn stored_chunks(&mut self, caller: Principal) -> Result<Vec<ByteBuf>, CallError> {
        self.query1("stored_chunks", (), caller)
    }

    /// `install_chunked`
    pub fn install_chunked(
        &mut self,
        caller: Principal,
        args: InstallChunkedArgs,
    ) -> Reply<PluginInfo, InstallError> {
        self.update1("install_chunked", (args,), caller)
    }

    /// `invoke` (update: commits on success) or `invoke_query` (dry run).
    pub fn invoke(
        &mut self,
        kind: CallKind,
        caller: Principal,
        plugin: &str,
        function: &str,
        input: &[u8],
        options: Option<InvokeOptions>,
    ) -> Reply<InvokeReply, InvokeFailure> {
        let method = match kind {
            CallKind::Update => "invoke",
            CallKind::Query => "invoke_query",
        };
        let args = (plugin, function, ByteBuf::from(input.to_vec()), options);
        self.call::<_, (Result<InvokeReply, InvokeFailure>,)>(kind, method, args, caller)
            .map(|(r,)| r)
    }

    /// `list`
    pub fn list(&mut self, caller: Principal, args: ListArgs) -> Result<ListPage, CallError> {
        self.query1("list", (args,), caller)
    }

    /// `get`
    pub fn get(&mut self, caller: Principal, name: &str) -> Result<Option<PluginInfo>, CallError> {
        self.query1("get", (name,), caller)
    }

    /// `uninstall`
    pub fn uninstall(&mut self, caller: Principal, name: &str) -> Reply<(), ManageError> {
        self.update1("uninstall", (name,), caller)
    }

    /// `upgrade_plugin`
    pub fn upgrade_plugin(
        &mut self,
        caller: Principal,
        args: UpgradePluginArgs,
    ) -> Reply<PluginInfo, InstallError> {
        self.update1("upgrade_plugin", (args,), caller)
    }

    /// `set_config`
    pub fn set_config(
        &mut self,
        caller: Principal,
        name: &str,
        config: Vec<(String, String)>,
    ) -> Reply<PluginInfo, ManageError> {
        self.update1("set_config", (name, config), caller)
    }

    /// `set_invoke_policy`
    pub fn set_invoke_policy(
        &mut self,
        caller: Principal,
        name: &str,
        policy: InvokePolicy,
    ) -> Reply<PluginInfo, ManageError> {
        self.update1("set_invoke_policy", (name, policy), caller)
    }

    /// `settings`
    pub fn settings(&mut self, caller: Principal) -> Result<SettingsView, CallError> {
        self.query1("settings", (), caller)
    }

    /// `set_settings`
    pub fn set_settings(
        &mut self,
        caller: Principal,
        settings: Settings,
    ) -> Reply<(), plugin_host_api::SettingsError> {
        self.update1("set_settings", (settings,), caller)
    }
}
