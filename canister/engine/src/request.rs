//! What the engine's operations take and give.

use std::collections::BTreeMap;

use candid::Principal;
use plugin_host_api::{InvokePolicy, LogEntry};

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallRequest<'a> {
    /// Plugin name: `[a-z0-9_-]{1,64}`.
    pub name: &'a str,
    /// Module bytes.
    pub wasm: &'a [u8],
    /// Read-only config.
    pub config: BTreeMap<String, String>,
    /// The owner (the installer).
    pub owner: Principal,
    /// Who may invoke.
    pub invoke_policy: InvokePolicy,
    /// Default fuel per call (capped by `Limits::max_fuel`).
    pub fuel_limit: Option<u64>,
}

/// What to call.
#[derive(Debug, Clone)]
pub struct InvokeRequest<'a> {
    /// Plugin name.
    pub plugin: &'a str,
    /// Function name.
    pub function: &'a str,
    /// Input bytes.
    pub input: &'a [u8],
    /// Fuel for this call (default: the plugin's; capped by `Limits::max_fuel`).
    pub fuel: Option<u64>,
    /// The caller.
    pub caller: Principal,
    /// IC time, ns.
    pub now_ns: u64,
    /// Persist state if the call succeeds (`false`: a dry run, as in a query).
    pub commit: bool,
    /// Collect log lines (else `get_log_level` tells the plugin logging is off).
    pub logs: bool,
    /// A lower instruction limit than the engine's for this call (e.g. what a quota leaves):
    /// the message's instruction counter value at which the call stops.
    pub instruction_limit: Option<u64>,
}

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeOutcome {
    /// Output bytes.
    pub output: Vec<u8>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Log lines.
    pub logs: Vec<LogEntry>,
}

/// New code for an installed plugin.
#[derive(Debug, Clone)]
pub struct UpgradePluginRequest<'a> {
    /// Plugin name.
    pub name: &'a str,
    /// New module bytes.
    pub wasm: &'a [u8],
    /// A function of the new module to run once after the swap.
    pub migration: Option<&'a str>,
}
