//! The operations behind the endpoints: authorise the caller, check what it may spend (cycles
//! reserve, instruction quotas), then call the engine. Values in, values out: the endpoints read
//! caller, time, cycle balance and the instruction counter from the IC and pass them here.

use std::collections::BTreeMap;

use candid::Principal;
use plugin_engine::{InstallRequest, InvokeRequest, PluginRecord, UpgradePluginRequest};
use plugin_host_api::{
    ByteBuf, ChunkError, CyclesLow, InstallError, InvokeError, InvokeFailure, InvokePolicy,
    InvokeReply, ManageError,
};

use crate::access::{Caller, Rules};
use crate::args::InvokeArgs;
use crate::chunks::AssembleError;
use crate::convert::plugin_info;
use crate::state::State;

/// What an endpoint read from the IC about its message.
#[derive(Clone, Copy, Debug)]
pub struct Message {
    /// Who calls.
    pub caller: Caller,
    /// The IC time, ns.
    pub now_ns: u64,
    /// The canister's cycle balance.
    pub cycle_balance: u128,
    /// Whether the message runs replicated (an update, or a query called as one).
    pub replicated: bool,
}

/// What `install` and `install_chunked` have in common.
pub struct InstallInput {
    /// The plugin's name.
    pub name: String,
    /// The module.
    pub wasm: Vec<u8>,
    /// Its config.
    pub config: Option<Vec<(String, String)>>,
    /// Who may invoke it.
    pub invoke_policy: Option<InvokePolicy>,
    /// Its fuel per call.
    pub fuel_limit: Option<u64>,
}

impl State {
    /// A plugin on the wire, with its quota use now.
    pub fn plugin_info(&self, record: PluginRecord, now_ns: u64) -> plugin_host_api::PluginInfo {
        let quota = self
            .quotas
            .plugin_usage(&self.settings.quotas, &record.name, now_ns);
        plugin_info(record, quota)
    }

    /// Refuses callers who are not admins while the cycle balance is below the reserve.
    fn check_cycles(&self, message: &Message) -> Result<(), CyclesLow> {
        let reserve = self.settings.cycles_reserve;
        if message.cycle_balance < reserve && !self.settings.is_admin(&message.caller) {
            return Err(CyclesLow {
                balance: message.cycle_balance,
                reserve,
            });
        }
        Ok(())
    }

    /// The checks every install makes first: the install right, then the cycles reserve.
    fn authorize_install(&self, message: &Message) -> Result<(), InstallError> {
        self.settings
            .authorize_install(&message.caller)
            .map_err(InstallError::NotAuthorized)?;
        self.check_cycles(message).map_err(InstallError::CyclesLow)
    }

    /// Installs a plugin owned by the caller.
    pub fn install(
        &mut self,
        message: &Message,
        input: InstallInput,
    ) -> Result<plugin_host_api::PluginInfo, InstallError> {
        self.authorize_install(message)?;
        let request = InstallRequest {
            name: &input.name,
            wasm: &input.wasm,
            config: input.config.unwrap_or_default().into_iter().collect(),
            owner: message.caller.principal,
            invoke_policy: input.invoke_policy.unwrap_or(InvokePolicy::Public),
            fuel_limit: input.fuel_limit,
        };
        let record = self.engine.install(request, message.now_ns)?;
        Ok(self.plugin_info(record, message.now_ns))
    }

    /// Installs a plugin from chunks the caller uploaded; on success the chunks are deleted.
    pub fn install_chunked(
        &mut self,
        message: &Message,
        args: plugin_host_api::InstallChunkedArgs,
    ) -> Result<plugin_host_api::PluginInfo, InstallError> {
        self.authorize_install(message)?;
        let (hashes, expected) =
            chunk_hashes(&args.chunk_hashes, &args.wasm_sha256).map_err(InstallError::Chunk)?;
        let max = self.engine.limits().max_module_bytes;
        let wasm = self
            .chunks
            .assemble(
                message.caller.principal,
                &hashes,
                &expected,
                max,
                message.now_ns,
            )
            .map_err(|e| match e {
                AssembleError::Chunk(e) => InstallError::Chunk(e),
                AssembleError::TooLarge { size, max } => InstallError::TooLarge { size, max },
            })?;
        let input = InstallInput {
            name: args.name,
            wasm,
            config: args.config,
            invoke_policy: args.invoke_policy,
            fuel_limit: args.fuel_limit,
        };
        let info = self.install(message, input)?;
        self.chunks.clear_uploader(message.caller.principal);
        Ok(info)
    }

    /// Stores one chunk for `install_chunked`; uploading needs the install right.
    pub fn upload_chunk(
        &mut self,
        message: &Message,
        chunk: &[u8],
    ) -> Result<[u8; 32], ChunkError> {
        self.settings
            .authorize_install(&message.caller)
            .map_err(ChunkError::NotAuthorized)?;
        self.reserve_chunk(chunk.len() as u64)
            .map_err(ChunkError::StorageFull)?;
        self.chunks
            .upload(message.caller.principal, chunk, message.now_ns)
    }

    /// Runs `function` of `plugin`; its state persists if the call succeeds and `commit`.
    /// Callers who are not admins must find the cycles above the reserve and their quotas not
    /// used up; a committing call's instructions count against them. A dry run (`!commit`) that
    /// runs replicated is for admins only: nothing it does is kept, its instructions included,
    /// so no quota could count what it costs. `counter` reads the message's instruction counter.
    pub fn invoke(
        &mut self,
        message: &Message,
        args: InvokeArgs,
        commit: bool,
        counter: &dyn Fn() -> u64,
    ) -> Result<InvokeReply, InvokeFailure> {
        let InvokeArgs {
            plugin,
            function,
            input,
            options,
        } = args;
        let options = options.unwrap_or_default();
        let logs = options.logs.unwrap_or(false);
        let caller = message.caller;
        let admin = self.settings.is_admin(&caller);
        if !commit && message.replicated && !admin {
            return Err(InvokeFailure {
                error: InvokeError::DryRunAsUpdate,
                fuel_used: 0,
                logs: Vec::new(),
            });
        }
        let quotas = self.settings.quotas.clone();
        // The quota left when the call starts, and the instruction limit it set.
        let mut quota = None;
        let request = InvokeRequest {
            plugin: &plugin,
            function: &function,
            input: &input,
            fuel: options.fuel,
            caller: caller.principal,
            now_ns: message.now_ns,
            commit,
            logs,
            instruction_limit: None,
        };
        let (settings, book) = (&self.settings, &self.quotas);
        let result = self.engine.invoke_authorized(request, |record| {
            settings
                .authorize_invoke(&caller, &record.owner, &record.invoke_policy)
                .map_err(InvokeError::NotAuthorized)?;
            if admin || !commit {
                return Ok(None);
            }
            if message.cycle_balance < settings.cycles_reserve {
                return Err(InvokeError::CyclesLow(CyclesLow {
                    balance: message.cycle_balance,
                    reserve: settings.cycles_reserve,
                }));
            }
            let allowance = book
                .allowance(&quotas, &caller.principal, &plugin, message.now_ns)
                .map_err(InvokeError::QuotaExceeded)?;
            let limit = allowance.map(|a| counter().saturating_add(a.left));
            quota = allowance.zip(limit);
            Ok(limit)
        });
        let result = result.unwrap_or_else(|error| {
            Err(plugin_engine::InvokeFailure {
                error,
                fuel_used: 0,
                logs: Vec::new(),
            })
        });
        let result = match (quota, result) {
            (Some((allowance, quota_limit)), result) => {
                let used = counter();
                self.quotas
                    .charge(&quotas, caller.principal, &plugin, message.now_ns, used);
                match result {
                    // The quota, not the engine's limit, stopped the call.
                    Err(failure) if matches!(failure.error, InvokeError::InstructionLimit { limit, .. } if limit == quota_limit) => {
                        Err(InvokeFailure {
                            error: InvokeError::QuotaExceeded(
                                allowance.exceeded(used, message.now_ns),
                            ),
                            ..failure
                        })
                    }
                    other => other,
                }
            }
            (None, result) => result,
        };
        let logs = |lines: Vec<_>| if logs { lines } else { Vec::new() };
        match result {
            Ok(outcome) => Ok(InvokeReply {
                output: ByteBuf::from(outcome.output),
                fuel_used: outcome.fuel_used,
                logs: logs(outcome.logs),
            }),
            Err(failure) => Err(InvokeFailure {
                logs: logs(failure.logs),
                ..failure
            }),
        }
    }

    /// Checks that `caller` may manage `plugin`.
    pub fn authorize_manage(&self, caller: &Caller, plugin: &str) -> Result<(), ManageError> {
        let record = self
            .engine
            .get(plugin)
            .ok_or_else(|| ManageError::UnknownPlugin {
                name: plugin.chars().take(64).collect(),
            })?;
        self.settings
            .authorize_manage(caller, &record.owner)
            .map_err(ManageError::NotAuthorized)
    }

    /// Replaces a plugin's code (its owner or an admin).
    pub fn upgrade_plugin(
        &mut self,
        message: &Message,
        args: plugin_host_api::UpgradePluginArgs,
    ) -> Result<plugin_host_api::PluginInfo, InstallError> {
        self.authorize_manage(&message.caller, &args.name)
            .map_err(|e| match e {
                ManageError::NotAuthorized(denied) => InstallError::NotAuthorized(denied),
                ManageError::UnknownPlugin { name } => InstallError::UnknownPlugin { name },
                ManageError::LimitExceeded(limit) => InstallError::LimitExceeded(limit),
                ManageError::StorageFull(full) => InstallError::StorageFull(full),
                ManageError::ListingFailed(failure) => InstallError::StartFailed(failure),
            })?;
        self.check_cycles(message)
            .map_err(InstallError::CyclesLow)?;
        let request = UpgradePluginRequest {
            name: &args.name,
            wasm: &args.wasm,
            migration: args.migration.as_deref(),
        };
        let record = self.engine.upgrade_plugin(request, message.now_ns)?;
        Ok(self.plugin_info(record, message.now_ns))
    }

    /// Removes a plugin (its owner or an admin).
    pub fn uninstall(&mut self, caller: &Caller, name: &str) -> Result<(), ManageError> {
        self.authorize_manage(caller, name)?;
        self.engine.uninstall(name)?;
        self.quotas.forget(name);
        Ok(())
    }

    /// Replaces a plugin's config (its owner or an admin).
    pub fn set_config(
        &mut self,
        message: &Message,
        name: &str,
        config: Vec<(String, String)>,
    ) -> Result<plugin_host_api::PluginInfo, ManageError> {
        self.authorize_manage(&message.caller, name)?;
        let config: BTreeMap<String, String> = config.into_iter().collect();
        let record = self.engine.set_config(name, config, message.now_ns)?;
        Ok(self.plugin_info(record, message.now_ns))
    }

    /// Replaces who may invoke a plugin (its owner or an admin).
    pub fn set_invoke_policy(
        &mut self,
        message: &Message,
        name: &str,
        policy: InvokePolicy,
    ) -> Result<plugin_host_api::PluginInfo, ManageError> {
        self.authorize_manage(&message.caller, name)?;
        let record = self
            .engine
            .set_invoke_policy(name, policy, message.now_ns)?;
        Ok(self.plugin_info(record, message.now_ns))
    }

    /// The owner of a plugin, if installed (for inspect_message).
    pub fn owner_of(&self, plugin: &str) -> Option<(Principal, InvokePolicy)> {
        self.engine
            .get(plugin)
            .map(|record| (record.owner, record.invoke_policy))
    }
}

/// The chunk hashes and module hash of `install_chunked`, checked to be 32 bytes each.
pub fn chunk_hashes(
    chunks: &[ByteBuf],
    wasm_sha256: &ByteBuf,
) -> Result<(Vec<[u8; 32]>, [u8; 32]), ChunkError> {
    let hash = |bytes: &ByteBuf| -> Result<[u8; 32], ChunkError> {
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| ChunkError::MissingChunk {
                sha256: bytes.iter().take(32).copied().collect(),
            })
    };
    let chunks = chunks.iter().map(hash).collect::<Result<_, _>>()?;
    let expected: [u8; 32] =
        wasm_sha256
            .as_slice()
            .try_into()
            .map_err(|_| ChunkError::HashMismatch {
                expected: wasm_sha256.iter().take(32).copied().collect(),
                actual: Vec::new(),
            })?;
    Ok((chunks, expected))
}
