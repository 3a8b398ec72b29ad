//! Errors, one enum per operation, each variant carrying the facts a user needs.

use crate::LogEntry;

/// A host limit that a module or a call ran into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{limit} limit exceeded: {requested} requested, {max} allowed")]
pub struct LimitExceeded {
    /// Which limit (`memory pages`, `table elements`, `output bytes`, ...).
    pub limit: &'static str,
    /// What was asked for.
    pub requested: u64,
    /// The limit.
    pub max: u64,
}

/// Why a module could not be installed (or a plugin upgraded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// The name is not `[a-z0-9_-]{1,64}`.
    #[error("invalid plugin name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A plugin with this name exists already.
    #[error("a plugin named `{name}` is installed already")]
    NameTaken {
        /// The name given.
        name: String,
    },
    /// No plugin with this name (upgrade).
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
    /// The bytes are not a valid module, or use a feature the host does not support.
    #[error("invalid wasm: {reason}")]
    InvalidWasm {
        /// The validator's message.
        reason: String,
    },
    /// The module imports something the host does not provide.
    #[error("forbidden import `{module}`.`{name}`: {reason}")]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// No export of type `() -> i32` or `() -> ()`.
    #[error("the module exports no plugin function (`() -> i32` or `() -> ()`)")]
    NoPluginFunctions,
    /// The module asks for more than a host limit allows.
    #[error(transparent)]
    LimitExceeded(LimitExceeded),
    /// The start function or initialiser failed (trap, out of fuel, limit).
    #[error("instantiation failed: {reason}")]
    InstantiationFailed {
        /// What went wrong.
        reason: String,
    },
    /// The migration function of an upgrade failed; nothing changed.
    #[error("migration failed, upgrade rolled back: {}", .0.error)]
    MigrationFailed(Box<InvokeFailure>),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// No plugin with this name.
    #[error("no plugin named `{name}`")]
    UnknownPlugin {
        /// The name given.
        name: String,
    },
    /// The plugin has no such function.
    #[error("plugin `{plugin}` has no function `{function}`")]
    UnknownFunction {
        /// The plugin.
        plugin: String,
        /// The function asked for.
        function: String,
        /// The functions it has.
        available: Vec<String>,
    },
    /// The function returned a non-zero code; `message` is what the plugin set with `error_set`.
    #[error("plugin error (code {code}): {message}")]
    PluginError {
        /// The return code.
        code: i32,
        /// The plugin's error message (empty if it set none).
        message: String,
    },
    /// The plugin trapped, or misused a host function (bad handle, out-of-range offset).
    #[error("plugin trapped: {message}")]
    Trap {
        /// What happened.
        message: String,
    },
    /// The call used up its fuel.
    #[error("out of fuel: used {fuel_used} of {fuel_limit}")]
    OutOfFuel {
        /// Fuel used.
        fuel_used: u64,
        /// The budget.
        fuel_limit: u64,
    },
    /// The message's IC instruction budget for plugin calls ran out.
    #[error("instruction budget exhausted: {instructions} instructions used of {limit}")]
    InstructionLimit {
        /// Instructions the call had used.
        instructions: u64,
        /// The budget.
        limit: u64,
    },
    /// The call ran into a host limit.
    #[error(transparent)]
    LimitExceeded(LimitExceeded),
    /// The plugin could not be instantiated to run the call.
    #[error("instantiation failed: {reason}")]
    InstantiationFailed {
        /// What went wrong.
        reason: String,
    },
}

/// A failed call: the error, plus what the call used and logged. The plugin's state is as before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct InvokeFailure {
    /// What went wrong.
    pub error: InvokeError,
    /// Fuel used before the failure.
    pub fuel_used: u64,
    /// Log lines written before the failure.
    pub logs: Vec<LogEntry>,
}

/// Why a plugin could not be changed (uninstall, config, policy).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// No plugin with this name.
    #[error("no plugin named `{name}`")]
    UnknownPlugin {
        /// The name given.
        name: String,
    },
    /// The new setting exceeds a host limit.
    #[error(transparent)]
    LimitExceeded(LimitExceeded),
}
