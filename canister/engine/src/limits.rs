//! The host's caps, and wasmi's resource limiter that enforces the memory and table caps.

use plugin_host_api::LimitExceeded;
use wasmi::ResourceLimiter;

use crate::abi::HostState;

/// Bytes in a wasm page.
pub const WASM_PAGE_BYTES: u64 = 65_536;

/// The host's caps. Every one is enforced with a typed error; the README's security model lists
/// them with their defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest module accepted.
    pub max_module_bytes: u64,
    /// Most functions a module may export as plugin functions.
    pub max_plugin_functions: usize,
    /// Longest name of an export (plugin functions are echoed in every `PluginInfo`).
    pub max_export_name_bytes: usize,
    /// Most 64 KiB pages of linear memory a plugin may have.
    pub max_memory_pages: u32,
    /// Most elements a plugin's table may have.
    pub max_table_elements: u32,
    /// Largest output of a call.
    pub max_output_bytes: u64,
    /// Longest error message a plugin may set (longer ones are cut).
    pub max_error_bytes: u64,
    /// Most bytes the per-call arena may span (input included).
    pub max_arena_bytes: u64,
    /// Most live blocks in the per-call arena (each costs host heap).
    pub max_arena_blocks: usize,
    /// Most bytes of vars (keys and values) per plugin.
    pub max_var_bytes: u64,
    /// Most bytes of log lines kept per call (each line counts [`LOG_LINE_OVERHEAD`] more).
    pub max_log_bytes: u64,
    /// Fuel per call when neither the caller nor the plugin sets one.
    pub default_fuel: u64,
    /// Most fuel any call may get.
    pub max_fuel: u64,
    /// Fuel per slice: between slices the engine reads the instruction meter.
    pub fuel_slice: u64,
    /// The value of the message's instruction counter at which a committing message stops
    /// running plugin code (the update limit is 40 B; the rest is room for committing the state
    /// and replying).
    pub update_instruction_limit: u64,
    /// The same for a message that commits nothing (the query limit is 5 B).
    pub query_instruction_limit: u64,
    /// Fuel for the start function and initialiser at install and `upgrade_plugin`.
    pub install_fuel: u64,
    /// Most config entries per plugin.
    pub max_config_entries: usize,
    /// Most bytes of config (keys and values) per plugin.
    pub max_config_bytes: u64,
    /// Most principals in an invoke allow-list.
    pub max_allow_list: usize,
    /// Most plugins installed.
    pub max_plugins: u64,
    /// Most plugins one owner may have.
    pub max_plugins_per_owner: u64,
    /// Most bytes of distinct module code stored.
    pub max_code_bytes: u64,
    /// Heap bytes the engine may keep: compiled modules, live instances (memory, shadow, arena,
    /// vars), cached records and chunk slots, plus the room one running call may need.
    pub heap_budget_bytes: u64,
}

/// What a log line costs against [`Limits::max_log_bytes`] besides its text (its level and the
/// Candid framing of its reply), so that a plugin cannot log an unbounded number of empty lines.
pub const LOG_LINE_OVERHEAD: u64 = 16;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_module_bytes: 8 * 1024 * 1024,
            max_plugin_functions: 1_000,
            max_export_name_bytes: 256,
            max_memory_pages: 1024,
            max_table_elements: 100_000,
            max_output_bytes: 1_800_000,
            max_error_bytes: 16 * 1024,
            max_arena_bytes: 64 * 1024 * 1024,
            max_arena_blocks: 100_000,
            max_var_bytes: 1024 * 1024,
            max_log_bytes: 64 * 1024,
            default_fuel: 100_000_000,
            max_fuel: 1_000_000_000,
            fuel_slice: 5_000_000,
            update_instruction_limit: 30_000_000_000,
            query_instruction_limit: 4_000_000_000,
            install_fuel: 50_000_000,
            max_config_entries: 64,
            max_config_bytes: 64 * 1024,
            max_allow_list: 100,
            max_plugins: 100_000,
            max_plugins_per_owner: 1_000,
            max_code_bytes: 2 * 1024 * 1024 * 1024,
            heap_budget_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The most heap one running call may add: its memory growing to the cap (live memory and
    /// shadow) and a full arena.
    pub fn call_heap_bytes(&self) -> u64 {
        2 * u64::from(self.max_memory_pages) * WASM_PAGE_BYTES + self.max_arena_bytes
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let max = u64::from(self.limits.memory_pages) * WASM_PAGE_BYTES;
        if desired as u64 > max {
            self.limit_hit = Some(LimitExceeded {
                limit: "memory pages".into(),
                requested: desired as u64 / WASM_PAGE_BYTES,
                max: self.limits.memory_pages.into(),
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if desired as u64 > u64::from(self.limits.table_elements) {
            self.limit_hit = Some(LimitExceeded {
                limit: "table elements".into(),
                requested: desired as u64,
                max: self.limits.table_elements.into(),
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}
