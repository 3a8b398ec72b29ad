//! Where engine values become Candid values: the few that differ on the wire (errors and
//! policies are the interface's own types throughout).

use plugin_engine::{Limits, PluginRecord};
use plugin_host_api as api;
use plugin_host_api::ByteBuf;

use crate::chunks::{CHUNK_TTL_NS, MAX_CHUNK_BYTES, MAX_STORE_BYTES};

/// A plugin on the wire. It differs from the engine's record: the internal id stays inside, and
/// the canister adds the plugin's quota use, which the engine does not know about.
pub fn plugin_info(record: PluginRecord, quota: api::QuotaUsage) -> api::PluginInfo {
    api::PluginInfo {
        name: record.name,
        owner: record.owner,
        code_sha256: ByteBuf::from(record.code_sha256.to_vec()),
        code_size: record.code_size,
        functions: record.functions,
        memory_pages: record.memory_pages,
        max_memory_pages: record.max_memory_pages,
        fuel_limit: record.fuel_limit,
        calls: record.calls,
        fuel_used_total: record.fuel_used_total,
        installed_at_ns: record.installed_at_ns,
        updated_at_ns: record.updated_at_ns,
        invoke_policy: record.invoke_policy,
        config: record.config.into_iter().collect(),
        quota,
    }
}

/// The host's caps, as `settings` shows them.
pub fn caps(limits: &Limits) -> api::Caps {
    api::Caps {
        module_bytes: limits.max_module_bytes,
        plugins: limits.max_plugins,
        plugins_per_owner: limits.max_plugins_per_owner,
        code_bytes: limits.max_code_bytes,
        config_entries: limits.max_config_entries as u64,
        config_bytes: limits.max_config_bytes,
        allow_list: limits.max_allow_list as u64,
        memory_pages: limits.max_memory_pages,
        var_bytes: limits.max_var_bytes,
        output_bytes: limits.max_output_bytes,
        fuel: limits.max_fuel,
        chunk_bytes: MAX_CHUNK_BYTES as u64,
        chunk_store_bytes: MAX_STORE_BYTES,
        chunk_ttl_ns: CHUNK_TTL_NS,
        heap_budget_bytes: limits.heap_budget_bytes,
    }
}
