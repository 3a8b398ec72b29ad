//! The smallest stateful plugin. The count lives in linear memory (a static) and is mirrored in the
//! var `count`, so both durability paths are exercised; after `upgrade_plugin` (fresh memory) the
//! count is picked up again from the var.

use std::sync::Mutex;

use extism_pdk::*;

static COUNT: Mutex<Option<u64>> = Mutex::new(None);
static SCRATCH: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn current() -> Result<u64, Error> {
    let mut count = COUNT.lock().map_err(|_| Error::msg("poisoned"))?;
    if count.is_none() {
        let stored: Option<String> = var::get("count")?;
        *count = Some(stored.and_then(|s| s.parse().ok()).unwrap_or(0));
    }
    Ok(count.unwrap_or(0))
}

fn store(value: u64) -> Result<(), Error> {
    *COUNT.lock().map_err(|_| Error::msg("poisoned"))? = Some(value);
    var::set("count", value.to_string())
}

/// Adds the input (a decimal number, default 1) and returns the new count.
#[plugin_fn]
pub fn increment(input: String) -> FnResult<String> {
    let by = match input.trim() {
        "" => 1,
        text => text
            .parse::<u64>()
            .map_err(|e| Error::msg(format!("not a number: {text:?}: {e}")))?,
    };
    let count = current()? + by;
    store(count)?;
    Ok(count.to_string())
}

/// The current count.
#[plugin_fn]
pub fn get() -> FnResult<String> {
    Ok(current()?.to_string())
}

/// Sets the count to zero.
#[plugin_fn]
pub fn reset() -> FnResult<String> {
    store(0)?;
    Ok("0".into())
}

/// Increments, then fails: the host must undo the increment.
#[plugin_fn]
pub fn fail_after_increment() -> FnResult<String> {
    let count = current()? + 1;
    store(count)?;
    Err(WithReturnCode::new(
        Error::msg(format!("failing on purpose after counting to {count}")),
        1,
    ))
}

/// Stores `key=value` in a var.
#[plugin_fn]
pub fn put(input: String) -> FnResult<String> {
    let (key, value) = input
        .split_once('=')
        .ok_or_else(|| Error::msg("expected key=value"))?;
    var::set(key, value)?;
    Ok(value.to_owned())
}

/// The value stored under the input key.
#[plugin_fn]
pub fn get_key(key: String) -> FnResult<String> {
    let value: Option<String> = var::get(&key)?;
    Ok(value.ok_or_else(|| Error::msg(format!("no value stored under {key:?}")))?)
}

/// Writes N bytes (input, decimal) of its heap, one byte per 4 KiB page touched: for benchmarks of
/// durable state.
#[plugin_fn]
pub fn memory_write(input: String) -> FnResult<String> {
    let n: usize = input.trim().parse().unwrap_or(1);
    let mut scratch = SCRATCH.lock().map_err(|_| Error::msg("poisoned"))?;
    if scratch.len() < n {
        scratch.resize(n, 0);
    }
    for i in (0..n).step_by(4096) {
        scratch[i] = scratch[i].wrapping_add(1);
    }
    Ok(scratch.len().to_string())
}
