//! Per-method error variants of the interface. The canister converts the engine's errors into
//! these in one module (`plugin_host::convert`).

use candid::{CandidType, Deserialize, Principal};

use crate::LogEntry;

/// The right a refused caller lacked.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Right {
    /// Admin rights: controllers and the listed admins.
    Admin,
    /// The right to install plugins under the install policy.
    Install,
    /// The right to manage a plugin: its owner or an admin.
    ManagePlugin,
    /// The right to invoke a plugin under its invoke policy.
    Invoke,
}

/// A refusal: who asked and which right was missing.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{caller} lacks the {missing:?} right")]
pub struct Denied {
    /// The refused caller.
    pub caller: Principal,
    /// The right it lacks.
    pub missing: Right,
}

/// Why a chunk operation failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk is larger than the chunk limit (1 MiB).
    #[error("chunk of {size} bytes exceeds the {max}-byte chunk limit")]
    ChunkTooLarge {
        /// Bytes in the chunk.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The uploader already stores the per-uploader chunk limit chunks.
    #[error("chunk store full: {max} chunks per uploader; install or clear them first")]
    StoreFull {
        /// The limit.
        max: u32,
    },
    /// A named chunk is not in the uploader's store.
    #[error("no stored chunk with sha256 {}", hex(.sha256))]
    MissingChunk {
        /// The missing chunk's hash.
        sha256: Vec<u8>,
    },
    /// The assembled module does not have the announced hash.
    #[error("assembled module has sha256 {}, expected {}", hex(.actual), hex(.expected))]
    HashMismatch {
        /// The announced hash.
        expected: Vec<u8>,
        /// The hash of the assembled bytes.
        actual: Vec<u8>,
    },
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A host limit a module or a call ran into.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    /// Which limit (e.g. `memory pages`, `table elements`, `output bytes`, `var bytes`).
    pub limit: String,
    /// What was asked for.
    pub requested: u64,
    /// The limit.
    pub max: u64,
}

/// Why `install`, `install_chunked` or `upgrade_plugin` refused a module.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// The caller may not do this.
    #[error("{0}")]
    NotAuthorized(Denied),
    /// The name is not `[a-z0-9_-]{1,64}`.
    #[error("invalid plugin name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plugin with this name is installed already.
    #[error("a plugin named `{name}` is installed already")]
    NameTaken {
        /// The name given.
        name: String,
    },
    /// No plugin with this name (for `upgrade_plugin`).
    #[error("no plugin named `{name}`")]
    UnknownPlugin {
        /// The name given.
        name: String,
    },
    /// The module is larger than the host accepts.
    #[error("module of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Bytes in the module.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not a valid wasm module (or use a feature the host does not support).
    #[error("invalid wasm: {reason}")]
    InvalidWasm {
        /// The validator's message.
        reason: String,
    },
    /// The module imports something the host does not provide.
    #[error("forbidden import `{module}`.`{name}`: {reason}")]
    ForbiddenImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
        /// Why it is refused (unknown, or wrong signature).
        reason: String,
    },
    /// The module exports no plugin function (`() -> i32` or `() -> ()`).
    #[error("the module exports no plugin function (`() -> i32` or `() -> ()`)")]
    NoPluginFunctions,
    /// The module asks for more than a host limit allows.
    #[error("{} limit exceeded: {} requested, {} allowed", .0.limit, .0.requested, .0.max)]
    LimitExceeded(LimitExceeded),
    /// Instantiating the module (its start function or initialisers) failed.
    #[error("instantiation failed: {reason}")]
    InstantiationFailed {
        /// What went wrong.
        reason: String,
    },
    /// The chunks named could not be assembled.
    #[error("{0}")]
    Chunk(ChunkError),
    /// The migration function of `upgrade_plugin` failed; the upgrade was rolled back.
    #[error("migration failed, upgrade rolled back: {}", .0.error)]
    MigrationFailed(Box<InvokeFailure>),
}

/// Why a call failed, with what it used and logged. The plugin's state is as before the call.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct InvokeFailure {
    /// What went wrong.
    pub error: InvokeError,
    /// Fuel used before the failure.
    pub fuel_used: u64,
    /// Log lines written before the failure (when asked for).
    pub logs: Vec<LogEntry>,
}

/// Why a call failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The caller may not invoke this plugin.
    #[error("{0}")]
    NotAuthorized(Denied),
    /// No plugin with this name.
    #[error("no plugin named `{name}`")]
    UnknownPlugin {
        /// The name given.
        name: String,
    },
    /// The plugin has no such function.
    #[error("plugin `{plugin}` has no function `{function}` (it has: {})", .available.join(", "))]
    UnknownFunction {
        /// The plugin.
        plugin: String,
        /// The function asked for.
        function: String,
        /// The plugin's functions.
        available: Vec<String>,
    },
    /// The plugin reported an error: a non-zero return code and the message it set.
    #[error("plugin error (code {code}): {message}")]
    PluginError {
        /// The function's return code.
        code: i32,
        /// The message the plugin set with `error_set` (empty if none).
        message: String,
    },
    /// The plugin trapped (e.g. `unreachable`, out-of-bounds access, stack overflow, bad handle).
    #[error("plugin trapped: {message}")]
    Trap {
        /// The trap's description.
        message: String,
    },
    /// The call used up its fuel budget.
    #[error("out of fuel: used {fuel_used} of {fuel_limit}")]
    OutOfFuel {
        /// Fuel used.
        fuel_used: u64,
        /// The budget.
        fuel_limit: u64,
    },
    /// The call would have pushed the canister message past the host's instruction budget.
    #[error("instruction budget exhausted: {instructions} IC instructions used of {limit}")]
    InstructionLimit {
        /// IC instructions the message had used.
        instructions: u64,
        /// The host's budget for one call.
        limit: u64,
    },
    /// The call ran into a host limit (memory pages, output size, arena, vars, ...).
    #[error("{} limit exceeded: {} requested, {} allowed", .0.limit, .0.requested, .0.max)]
    LimitExceeded(LimitExceeded),
    /// The plugin could not be instantiated to run this call.
    #[error("instantiation failed: {reason}")]
    InstantiationFailed {
        /// What went wrong.
        reason: String,
    },
}

/// Why `uninstall`, `set_config` or `set_invoke_policy` failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// The caller may not manage this plugin.
    #[error("{0}")]
    NotAuthorized(Denied),
    /// No plugin with this name.
    #[error("no plugin named `{name}`")]
    UnknownPlugin {
        /// The name given.
        name: String,
    },
    /// The new setting asks for more than a host limit allows.
    #[error("{} limit exceeded: {} requested, {} allowed", .0.limit, .0.requested, .0.max)]
    LimitExceeded(LimitExceeded),
}
