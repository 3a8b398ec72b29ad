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
    /// Instruction quotas (default: [`Quotas::default`]).
    pub quotas: Option<Quotas>,
    /// Cycles below which only admins may install or invoke (default:
    /// [`DEFAULT_CYCLES_RESERVE`]).
    pub cycles_reserve: Option<u128>,
}

impl InitArgs {
    /// `current` with the fields this argument sets replaced.
    pub fn apply(self, current: Settings) -> Settings {
        Settings {
            admins: self.admins.unwrap_or(current.admins),
            install_policy: self.install_policy.unwrap_or(current.install_policy),
            quotas: self.quotas.unwrap_or(current.quotas),
            cycles_reserve: self.cycles_reserve.unwrap_or(current.cycles_reserve),
        }
    }
}

/// The default cycles reserve: half a trillion cycles.
pub const DEFAULT_CYCLES_RESERVE: u128 = 500_000_000_000;

/// IC instructions that callers who are not admins may make the canister spend on `invoke`,
/// per fixed window of time: per caller (over all plugins) and per plugin (over all callers).
/// A quota of 0 turns it off.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// The window's length, ns.
    pub window_ns: u64,
    /// Instructions one caller may use per window.
    pub caller_instructions: u64,
    /// Instructions one plugin may use per window.
    pub plugin_instructions: u64,
}

impl Default for Quotas {
    /// 10-minute windows; 100 B instructions per caller (three calls at the per-call limit) and
    /// 500 B per plugin. On a 13-node subnet an instruction of an update costs one cycle.
    fn default() -> Self {
        Self {
            window_ns: 600_000_000_000,
            caller_instructions: 100_000_000_000,
            plugin_instructions: 500_000_000_000,
        }
    }
}

/// A plugin's use of its instruction quota in the current window.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct QuotaUsage {
    /// Instructions used in the current window.
    pub used_instructions: u64,
    /// The quota per window (0: none).
    pub limit_instructions: u64,
    /// When the current window ends (ns since the epoch).
    pub window_ends_ns: u64,
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
    /// Its use of the per-plugin instruction quota.
    pub quota: QuotaUsage,
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

/// Canister-wide settings, set by the init/upgrade argument and `set_settings`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Principals with every right, besides the canister's controllers.
    pub admins: Vec<Principal>,
    /// Who may install plugins.
    pub install_policy: InstallPolicy,
    /// Instruction quotas of callers who are not admins.
    pub quotas: Quotas,
    /// Cycles below which only admins may install or invoke.
    pub cycles_reserve: u128,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            admins: Vec::new(),
            install_policy: InstallPolicy::default(),
            quotas: Quotas::default(),
            cycles_reserve: DEFAULT_CYCLES_RESERVE,
        }
    }
}

/// What `settings` answers: the settings, what the canister holds, and its caps.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SettingsView {
    /// The settings.
    pub settings: Settings,
    /// What the canister holds now.
    pub totals: Totals,
    /// The caps every caller and plugin runs into.
    pub caps: Caps,
}

/// What the canister holds.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Plugins installed.
    pub plugins: u64,
    /// Distinct modules stored.
    pub modules: u64,
    /// Bytes of distinct module code.
    pub code_bytes: u64,
    /// Bytes held by uploaded chunks not installed yet.
    pub chunk_bytes: u64,
    /// The canister's stable memory.
    pub stable_bytes: u64,
    /// The canister's heap (wasm memory).
    pub heap_bytes: u64,
    /// Heap the engine's caches hold (compiled modules, live instances).
    pub cached_bytes: u64,
    /// The canister's cycle balance.
    pub cycle_balance: u128,
}

/// The host's caps (each refusal is a typed `LimitExceeded` naming it).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Largest module.
    pub module_bytes: u64,
    /// Most plugins.
    pub plugins: u64,
    /// Most plugins per owner.
    pub plugins_per_owner: u64,
    /// Most bytes of distinct code.
    pub code_bytes: u64,
    /// Most config entries per plugin.
    pub config_entries: u64,
    /// Most config bytes per plugin.
    pub config_bytes: u64,
    /// Most principals in an invoke allow-list.
    pub allow_list: u64,
    /// Most 64 KiB pages of plugin memory.
    pub memory_pages: u32,
    /// Most bytes of vars per plugin.
    pub var_bytes: u64,
    /// Largest output.
    pub output_bytes: u64,
    /// Most fuel per call.
    pub fuel: u64,
    /// Largest upload chunk.
    pub chunk_bytes: u64,
    /// Most bytes of chunks stored, all uploaders.
    pub chunk_store_bytes: u64,
    /// How long an uploaded chunk is kept, ns.
    pub chunk_ttl_ns: u64,
    /// Heap the engine keeps at most.
    pub heap_budget_bytes: u64,
}

/// Panics, showing the difference and the whole exported interface, when `exported` (the text
/// `ic_cdk::export_candid!` generates) is not the service of the `.did` file at `did`.
#[cfg(feature = "did-check")]
pub fn assert_interface_matches_did(exported: &str, did: &std::path::Path) {
    use candid_parser::utils::{CandidSource, service_equal};
    if let Err(e) = service_equal(CandidSource::Text(exported), CandidSource::File(did)) {
        panic!(
            "{} is out of date:\n{e}\n\nexported interface:\n{exported}",
            did.display()
        );
    }
}
