//! The one place where engine values and errors become Candid values, and where the endpoints'
//! shared steps (authorise, then call the engine) live.

use candid::Principal;
use ic_stable_structures::Memory;
use plugin_engine::{Engine, InstructionMeter};
use plugin_host_api as api;
use plugin_host_api::{ByteBuf, ChunkError, InstallError, InvokeError, ManageError};

use crate::access::{Caller, Rules};

/// What `install` and `install_chunked` have in common.
pub struct InstallInput {
    name: String,
    wasm: Vec<u8>,
    config: Option<Vec<(String, String)>>,
    invoke_policy: Option<api::InvokePolicy>,
    fuel_limit: Option<u64>,
}

impl From<api::InstallArgs> for InstallInput {
    fn from(args: api::InstallArgs) -> Self {
        Self {
            name: args.name,
            wasm: args.wasm.into_vec(),
            config: args.config,
            invoke_policy: args.invoke_policy,
            fuel_limit: args.fuel_limit,
        }
    }
}

impl InstallInput {
    /// The install of a module assembled from chunks.
    pub fn from_chunked(args: api::InstallChunkedArgs, wasm: Vec<u8>) -> Self {
        Self {
            name: args.name,
            wasm,
            config: args.config,
            invoke_policy: args.invoke_policy,
            fuel_limit: args.fuel_limit,
        }
    }
}

/// Installs a plugin owned by `owner`.
pub fn install<M: Memory>(
    engine: &mut Engine<M>,
    owner: Principal,
    input: InstallInput,
    now_ns: u64,
    meter: &dyn InstructionMeter,
) -> Result<api::PluginInfo, InstallError> {
    let request = plugin_engine::InstallRequest {
        name: &input.name,
        wasm: &input.wasm,
        config: input.config.unwrap_or_default().into_iter().collect(),
        owner: owner.as_slice().to_vec(),
        invoke_policy: input.invoke_policy.map(invoke_policy).unwrap_or_default(),
        fuel_limit: input.fuel_limit,
    };
    engine
        .install(request, now_ns, meter)
        .map(plugin_info)
        .map_err(install_error)
}

/// Replaces a plugin's code.
pub fn upgrade_plugin<M: Memory>(
    engine: &mut Engine<M>,
    args: api::UpgradePluginArgs,
    now_ns: u64,
    meter: &dyn InstructionMeter,
) -> Result<api::PluginInfo, InstallError> {
    let request = plugin_engine::UpgradePluginRequest {
        name: &args.name,
        wasm: &args.wasm,
        migration: args.migration.as_deref(),
    };
    engine
        .upgrade_plugin(request, now_ns, meter)
        .map(plugin_info)
        .map_err(install_error)
}

/// The refusal of an invoke the caller may not make.
pub fn not_authorized(denied: api::Denied) -> api::InvokeFailure {
    failure(InvokeError::NotAuthorized(denied))
}

/// Checks that `caller` may manage `plugin`.
pub fn authorize_manage<M: Memory>(
    engine: &Engine<M>,
    settings: &api::Settings,
    caller: &Caller,
    plugin: &str,
) -> Result<(), ManageError> {
    let (owner, _) = engine
        .access(plugin)
        .ok_or_else(|| ManageError::UnknownPlugin {
            name: plugin.to_owned(),
        })?;
    settings
        .authorize_manage(caller, &owner)
        .map_err(ManageError::NotAuthorized)
}

/// A management refusal, as `upgrade_plugin` reports it.
pub fn manage_to_install_error(error: ManageError) -> InstallError {
    match error {
        ManageError::NotAuthorized(denied) => InstallError::NotAuthorized(denied),
        ManageError::UnknownPlugin { name } => InstallError::UnknownPlugin { name },
        ManageError::LimitExceeded(limit) => InstallError::LimitExceeded(limit),
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
                sha256: bytes.to_vec(),
            })
    };
    let chunks = chunks.iter().map(hash).collect::<Result<_, _>>()?;
    let expected: [u8; 32] =
        wasm_sha256
            .as_slice()
            .try_into()
            .map_err(|_| ChunkError::HashMismatch {
                expected: wasm_sha256.to_vec(),
                actual: Vec::new(),
            })?;
    Ok((chunks, expected))
}

/// A call's result on the wire; logs only when asked for.
pub fn invoke(
    result: Result<plugin_engine::InvokeOutcome, plugin_engine::InvokeFailure>,
    with_logs: bool,
) -> Result<api::InvokeReply, api::InvokeFailure> {
    let logs = |logs: Vec<plugin_engine::LogEntry>| {
        if with_logs {
            logs.into_iter().map(log_entry).collect()
        } else {
            Vec::new()
        }
    };
    match result {
        Ok(outcome) => Ok(api::InvokeReply {
            output: ByteBuf::from(outcome.output),
            fuel_used: outcome.fuel_used,
            logs: logs(outcome.logs),
        }),
        Err(failure) => Err(api::InvokeFailure {
            error: invoke_error(failure.error),
            fuel_used: failure.fuel_used,
            logs: logs(failure.logs),
        }),
    }
}

fn failure(error: InvokeError) -> api::InvokeFailure {
    api::InvokeFailure {
        error,
        fuel_used: 0,
        logs: Vec::new(),
    }
}

fn log_entry(entry: plugin_engine::LogEntry) -> api::LogEntry {
    use plugin_engine::LogLevel as L;
    api::LogEntry {
        level: match entry.level {
            L::Trace => api::LogLevel::Trace,
            L::Debug => api::LogLevel::Debug,
            L::Info => api::LogLevel::Info,
            L::Warn => api::LogLevel::Warn,
            L::Error => api::LogLevel::Error,
        },
        message: entry.message,
    }
}

fn limit(limit: plugin_engine::LimitExceeded) -> api::LimitExceeded {
    api::LimitExceeded {
        limit: limit.limit.to_owned(),
        requested: limit.requested,
        max: limit.max,
    }
}

/// An engine invoke error on the wire.
pub fn invoke_error(error: plugin_engine::InvokeError) -> InvokeError {
    use plugin_engine::InvokeError as E;
    match error {
        E::UnknownPlugin { name } => InvokeError::UnknownPlugin { name },
        E::UnknownFunction {
            plugin,
            function,
            available,
        } => InvokeError::UnknownFunction {
            plugin,
            function,
            available,
        },
        E::PluginError { code, message } => InvokeError::PluginError { code, message },
        E::Trap { message } => InvokeError::Trap { message },
        E::OutOfFuel {
            fuel_used,
            fuel_limit,
        } => InvokeError::OutOfFuel {
            fuel_used,
            fuel_limit,
        },
        E::InstructionLimit {
            instructions,
            limit,
        } => InvokeError::InstructionLimit {
            instructions,
            limit,
        },
        E::LimitExceeded(l) => InvokeError::LimitExceeded(limit(l)),
        E::InstantiationFailed { reason } => InvokeError::InstantiationFailed { reason },
    }
}

/// An engine install error on the wire.
pub fn install_error(error: plugin_engine::InstallError) -> InstallError {
    use plugin_engine::InstallError as E;
    match error {
        E::InvalidName { name, reason } => InstallError::InvalidName {
            name,
            reason: reason.to_owned(),
        },
        E::NameTaken { name } => InstallError::NameTaken { name },
        E::UnknownPlugin { name } => InstallError::UnknownPlugin { name },
        E::TooLarge { size, max } => InstallError::TooLarge { size, max },
        E::InvalidWasm { reason } => InstallError::InvalidWasm { reason },
        E::ForbiddenImport {
            module,
            name,
            reason,
        } => InstallError::ForbiddenImport {
            module,
            name,
            reason,
        },
        E::NoPluginFunctions => InstallError::NoPluginFunctions,
        E::LimitExceeded(l) => InstallError::LimitExceeded(limit(l)),
        E::InstantiationFailed { reason } => InstallError::InstantiationFailed { reason },
        E::MigrationFailed(failure) => {
            let failure = *failure;
            InstallError::MigrationFailed(Box::new(api::InvokeFailure {
                error: invoke_error(failure.error),
                fuel_used: failure.fuel_used,
                logs: failure.logs.into_iter().map(log_entry).collect(),
            }))
        }
    }
}

/// An engine management error on the wire.
pub fn manage_error(error: plugin_engine::ManageError) -> ManageError {
    match error {
        plugin_engine::ManageError::UnknownPlugin { name } => ManageError::UnknownPlugin { name },
        plugin_engine::ManageError::LimitExceeded(l) => ManageError::LimitExceeded(limit(l)),
    }
}

/// A wire invoke policy for the engine.
pub fn invoke_policy(policy: api::InvokePolicy) -> plugin_engine::InvokePolicy {
    match policy {
        api::InvokePolicy::Public => plugin_engine::InvokePolicy::Public,
        api::InvokePolicy::OwnerOnly => plugin_engine::InvokePolicy::OwnerOnly,
        api::InvokePolicy::AllowList(list) => plugin_engine::InvokePolicy::AllowList(
            list.iter().map(|p| p.as_slice().to_vec()).collect(),
        ),
    }
}

/// An engine plugin description on the wire.
pub fn plugin_info(info: plugin_engine::PluginInfo) -> api::PluginInfo {
    let invoke_policy = match info.invoke_policy {
        plugin_engine::InvokePolicy::Public => api::InvokePolicy::Public,
        plugin_engine::InvokePolicy::OwnerOnly => api::InvokePolicy::OwnerOnly,
        plugin_engine::InvokePolicy::AllowList(list) => {
            api::InvokePolicy::AllowList(list.iter().map(|p| Principal::from_slice(p)).collect())
        }
    };
    api::PluginInfo {
        name: info.name,
        owner: Principal::from_slice(&info.owner),
        code_sha256: ByteBuf::from(info.code_sha256.to_vec()),
        code_size: info.code_size,
        functions: info.functions,
        memory_pages: info.memory_pages,
        max_memory_pages: info.max_memory_pages,
        fuel_limit: info.fuel_limit,
        calls: info.calls,
        fuel_used_total: info.fuel_used_total,
        installed_at_ns: info.installed_at_ns,
        updated_at_ns: info.updated_at_ns,
        invoke_policy,
        config: info.config.into_iter().collect(),
    }
}
