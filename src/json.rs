//! `--json`: what `list`, `info` and `invoke` print for scripts, one JSON document on stdout.
//!
//! Hashes are lowercase hex, principals text, times nanoseconds since the epoch. A plugin's
//! output is given as base64 (`output_base64`) and, when it is UTF-8, as text too (`output`).

use base64::Engine as _;
use plugin_host_api::{InvokeError, InvokePolicy, LogEntry, LogLevel, PluginInfo, hex};
use serde_json::{Value, json};

/// One plugin, as `info --json` prints it and `list --json` lists it.
pub(crate) fn plugin(info: &PluginInfo) -> Value {
    let policy = match &info.invoke_policy {
        InvokePolicy::Public => json!({ "kind": "public" }),
        InvokePolicy::OwnerOnly => json!({ "kind": "owner_only" }),
        InvokePolicy::AllowList(principals) => json!({
            "kind": "allow_list",
            "principals": principals.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    };
    json!({
        "name": info.name,
        "owner": info.owner.to_text(),
        "code_sha256": hex(&info.code_sha256),
        "code_size": info.code_size,
        "functions": info.functions,
        "memory_pages": info.memory_pages,
        "max_memory_pages": info.max_memory_pages,
        "fuel_limit": info.fuel_limit,
        "calls": info.calls,
        "fuel_used_total": info.fuel_used_total,
        "installed_at_ns": info.installed_at_ns,
        "updated_at_ns": info.updated_at_ns,
        "invoke_policy": policy,
        "config": info
            .config
            .iter()
            .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
            .collect::<serde_json::Map<_, _>>(),
        "quota": {
            "used_instructions": info.quota.used_instructions,
            "limit_instructions": info.quota.limit_instructions,
            "window_ends_ns": info.quota.window_ends_ns,
        },
    })
}

/// A call that succeeded.
pub(crate) fn invoke_ok(
    output: &[u8],
    fuel_used: u64,
    instructions: u64,
    logs: &[LogEntry],
) -> Value {
    json!({
        "ok": true,
        "output": std::str::from_utf8(output).ok(),
        "output_base64": base64::engine::general_purpose::STANDARD.encode(output),
        "fuel_used": fuel_used,
        "instructions": instructions,
        "logs": log_lines(logs),
    })
}

/// A call that failed with a typed error.
pub(crate) fn invoke_failed(
    error: &InvokeError,
    fuel_used: u64,
    instructions: u64,
    logs: &[LogEntry],
) -> Value {
    let mut error_json = json!({ "kind": error_kind(error), "message": error.to_string() });
    if let InvokeError::PluginError { code, .. } = error {
        error_json["code"] = json!(code);
    }
    json!({
        "ok": false,
        "error": error_json,
        "fuel_used": fuel_used,
        "instructions": instructions,
        "logs": log_lines(logs),
    })
}

fn log_lines(logs: &[LogEntry]) -> Vec<Value> {
    logs.iter()
        .map(|entry| {
            let level = match entry.level {
                LogLevel::Trace => "trace",
                LogLevel::Debug => "debug",
                LogLevel::Info => "info",
                LogLevel::Warn => "warn",
                LogLevel::Error => "error",
            };
            json!({ "level": level, "message": entry.message })
        })
        .collect()
}

/// The error's variant in snake case: what a script matches on.
fn error_kind(error: &InvokeError) -> &'static str {
    match error {
        InvokeError::NotAuthorized(_) => "not_authorized",
        InvokeError::UnknownPlugin { .. } => "unknown_plugin",
        InvokeError::UnknownFunction { .. } => "unknown_function",
        InvokeError::PluginError { .. } => "plugin_error",
        InvokeError::Trap { .. } => "trap",
        InvokeError::OutOfFuel { .. } => "out_of_fuel",
        InvokeError::InstructionLimit { .. } => "instruction_limit",
        InvokeError::LimitExceeded(_) => "limit_exceeded",
        InvokeError::InstantiationFailed { .. } => "instantiation_failed",
        InvokeError::StorageFull(_) => "storage_full",
        InvokeError::QuotaExceeded(_) => "quota_exceeded",
        InvokeError::CyclesLow(_) => "cycles_low",
        InvokeError::DryRunAsUpdate => "dry_run_as_update",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_that_is_not_utf8_is_given_as_base64_only() {
        let value = invoke_ok(&[0xff, 0x00, 0x80], 5, 9, &[]);
        assert_eq!(value["output"], Value::Null);
        assert_eq!(value["output_base64"], "/wCA");
        let text = invoke_ok("héllo".as_bytes(), 5, 9, &[]);
        assert_eq!(text["output"], "héllo");
    }
}
