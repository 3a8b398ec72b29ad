//! Per-method error variants of the interface. The engine returns these types itself (each
//! method's enum; the engine produces the variants about plugins, the canister those about
//! callers and chunks).

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

/// Stable memory could not grow for a write: the operation was refused before writing anything.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "stable memory is full: {requested_bytes} more bytes could not be reserved ({stable_bytes} in use)"
)]
pub struct StorageFull {
    /// Bytes the operation reserved.
    pub requested_bytes: u64,
    /// The canister's stable memory size.
    pub stable_bytes: u64,
}

/// The canister's cycle balance is below the reserve admins set: only admins may install or
/// invoke until it is topped up.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the canister's cycle balance {balance} is below its reserve {reserve}: only admins may do this now"
)]
pub struct CyclesLow {
    /// The canister's balance.
    pub balance: u128,
    /// The reserve.
    pub reserve: u128,
}

/// Whose instruction quota a call ran into.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaScope {
    /// The caller's, over all plugins.
    Caller,
    /// The plugin's, over all callers.
    Plugin,
}

/// An instruction quota is used up for the current window.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{scope:?} quota of {limit_instructions} instructions per window used ({used_instructions}); retry in {retry_after_ns} ns"
)]
pub struct QuotaExceeded {
    /// Whose quota.
    pub scope: QuotaScope,
    /// Instructions used in the current window.
    pub used_instructions: u64,
    /// The quota per window.
    pub limit_instructions: u64,
    /// When the window ends, from now.
    pub retry_after_ns: u64,
}

/// Why a chunk operation failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The caller may not upload (uploading needs the install right).
    #[error("{0}")]
    NotAuthorized(Denied),
    /// The chunk store as a whole holds its cap; uploads that are not installed expire.
    #[error("the chunk store holds {stored_bytes} bytes of its {max_bytes}; try again later")]
    StoreBytesFull {
        /// Bytes stored, all uploaders.
        stored_bytes: u64,
        /// The cap.
        max_bytes: u64,
    },
    /// Stable memory could not grow.
    #[error("{0}")]
    StorageFull(StorageFull),
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
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{limit} limit exceeded: {requested} requested, {max} allowed")]
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
    /// Instantiating the module failed.
    #[error("instantiation failed: {reason}")]
    InstantiationFailed {
        /// What went wrong.
        reason: String,
    },
    /// The module's start function or initialiser (`_initialize`) failed.
    #[error("the start function or initialiser failed: {}", .0.error)]
    StartFailed(Box<InvokeFailure>),
    /// The module uses a feature whose state the host cannot save between calls.
    #[error("unsupported: {feature}: {reason}")]
    UnsupportedFeature {
        /// The feature (an instruction or a kind of global).
        feature: String,
        /// Why it is refused.
        reason: String,
    },
    /// Stable memory could not grow; nothing was written.
    #[error("{0}")]
    StorageFull(StorageFull),
    /// The canister's cycles are below the reserve; only admins may install.
    #[error("{0}")]
    CyclesLow(CyclesLow),
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
    /// Stable memory could not grow to keep what the call did: it was rolled back.
    #[error("{0}")]
    StorageFull(StorageFull),
    /// The caller's or the plugin's instruction quota is used up for now.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// The canister's cycles are below the reserve; only admins may invoke.
    #[error("{0}")]
    CyclesLow(CyclesLow),
    /// `invoke_query` was called as an update (by another canister, or as ingress): as a query
    /// it is free, but as an update it would make the canister pay for instructions that no
    /// quota can count (nothing an update-called query does is kept), so only admins may.
    #[error("invoke_query called as an update: call it as a query (only admins may call it so)")]
    DryRunAsUpdate,
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
    /// Stable memory could not grow; nothing changed.
    #[error("{0}")]
    StorageFull(StorageFull),
    /// A script runtime (e.g. a JavaScript plugin) could not list its functions under the new
    /// config: its script does not evaluate, say. Nothing changed.
    #[error("the plugin could not list its functions under the new config: {}", .0.error)]
    ListingFailed(Box<InvokeFailure>),
}

/// Why `set_settings` failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The caller is not an admin.
    #[error("{0}")]
    NotAuthorized(Denied),
    /// Stable memory could not grow; nothing changed.
    #[error("{0}")]
    StorageFull(StorageFull),
}
