//! The Candid types of the `plugin_host` canister's interface (`plugin_host.did`), shared by the
//! canister, its clients (a DAO canister, the CLI) and the tests.

mod errors;

pub use errors::*;

use candid::{CandidType, Deserialize, Principal};
pub use serde_bytes::ByteBuf;

/// The init and upgrade argument. On upgrade, absent fields keep their current value.
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct InitArgs {
    /// Admins besides the controllers.
    pub admins: Option<Vec<Principal>>,
    /// Who may install plugins (default: admins only).
    pub install_policy: Option<InstallPolicy>,
}

impl InitArgs {
    /// `current` with the fields this argument sets replaced.
    pub fn apply(self, current: Settings) -> Settings {
        Settings {
            admins: self.admins.unwrap_or(current.admins),
            install_policy: self.install_policy.unwrap_or(current.install_policy),
        }
    }
}

/// Who may invoke a plugin. Its owner and the admins always may.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum InvokePolicy {
    /// Anyone, the anonymous principal included.
    Public,
    /// Only the owner (and admins).
    OwnerOnly,
    /// The owner, admins and these principals (e.g. a DAO canister).
    AllowList(Vec<Principal>),
}

/// Argument of `install`.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct InstallArgs {
    /// The plugin's id, unique in the canister: `[a-z0-9_-]{1,64}`.
    pub name: String,
    /// The module's bytes (binary wasm; at most the ingress limit: larger modules use chunks).
    pub wasm: ByteBuf,
    /// Read-only configuration the plugin sees through `config_get`.
    pub config: Option<Vec<(String, String)>>,
    /// Who may invoke it (default: public).
    pub invoke_policy: Option<InvokePolicy>,
    /// Fuel per call when the caller asks for none (default and cap: the host's limits).
    pub fuel_limit: Option<u64>,
}

/// Argument of `install_chunked`: a module uploaded with `upload_chunk`.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct InstallChunkedArgs {
    /// The plugin's id.
    pub name: String,
    /// sha256 of each chunk, in module order.
    pub chunk_hashes: Vec<ByteBuf>,
    /// sha256 of the whole module.
    pub wasm_sha256: ByteBuf,
    /// As in `install`.
    pub config: Option<Vec<(String, String)>>,
    /// As in `install`.
    pub invoke_policy: Option<InvokePolicy>,
    /// As in `install`.
    pub fuel_limit: Option<u64>,
}

/// Argument of `upgrade_plugin`: new code for an installed plugin, keeping its state.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct UpgradePluginArgs {
    /// The plugin to upgrade.
    pub name: String,
    /// The new module.
    pub wasm: ByteBuf,
    /// A plugin function of the new module to run once after the swap; if it fails, the upgrade is
    /// rolled back.
    pub migration: Option<String>,
}

/// Options of `invoke` and `invoke_query`.
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct InvokeOptions {
    /// Fuel budget for this call (default: the plugin's fuel limit; never above the host's cap).
    pub fuel: Option<u64>,
    /// Return the plugin's log lines (default: false, cheaper).
    pub logs: Option<bool>,
}

/// A successful call.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct InvokeReply {
    /// The bytes the plugin set as output.
    pub output: ByteBuf,
    /// Fuel the call used.
    pub fuel_used: u64,
    /// Log lines, when asked for.
    pub logs: Vec<LogEntry>,
}

/// One log line of a plugin.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Severity.
    pub level: LogLevel,
    /// The message.
    pub message: String,
}

/// Log severity, as in Extism.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `log_trace`
    Trace,
    /// `log_debug`
    Debug,
    /// `log_info`
    Info,
    /// `log_warn`
    Warn,
    /// `log_error`
    Error,
}

/// Argument of `list`.
#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct ListArgs {
    /// Start after this plugin name (the `next` of the previous page).
    pub start_after: Option<String>,
    /// Page size (default and maximum: 100).
    pub limit: Option<u32>,
}

/// A page of `list`.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct ListPage {
    /// Plugins in name order.
    pub plugins: Vec<PluginInfo>,
    /// Pass as `start_after` to get the next page; absent on the last page.
    pub next: Option<String>,
}

/// Everything a user needs to know about an installed plugin.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's id.
    pub name: String,
    /// The principal that installed it.
    pub owner: Principal,
    /// sha256 of its module.
    pub code_sha256: ByteBuf,
    /// Size of its module in bytes.
    pub code_size: u64,
    /// Its plugin functions (exports of type `() -> i32` or `() -> ()`).
    pub functions: Vec<String>,
    /// Current linear memory, in 64 KiB pages.
    pub memory_pages: u32,
    /// The module's declared maximum memory, if any.
    pub max_memory_pages: Option<u32>,
    /// Fuel per call by default.
    pub fuel_limit: u64,
    /// Successful calls so far.
    pub calls: u64,
    /// Fuel used by all calls so far.
    pub fuel_used_total: u64,
    /// When it was installed (ns since the epoch).
    pub installed_at_ns: u64,
    /// When its code, config or policy last changed (ns since the epoch).
    pub updated_at_ns: u64,
    /// Who may invoke it.
    pub invoke_policy: InvokePolicy,
    /// Its configuration.
    pub config: Vec<(String, String)>,
}

/// Who may install plugins.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub enum InstallPolicy {
    /// Only admins (and controllers).
    #[default]
    AdminsOnly,
    /// Admins and these principals.
    AllowList(Vec<Principal>),
    /// Any authenticated (non-anonymous) caller.
    AnyAuthenticated,
}

/// Canister-wide access settings, set by the init/upgrade argument and `set_settings`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// Principals with every right, besides the canister's controllers.
    pub admins: Vec<Principal>,
    /// Who may install plugins.
    pub install_policy: InstallPolicy,
}
