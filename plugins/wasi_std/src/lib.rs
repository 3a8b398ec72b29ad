//! A Rust plugin that uses the standard library as on any OS, built for `wasm32-wasip1`: the
//! host's WASI preview 1 shim gives it `println!`/`eprintln!` (log lines), `SystemTime` (the IC
//! time of the message), `HashMap` (its keys from `random_get`), `std::env` (the config's
//! `wasi.env.*` and `wasi.args`). Input, output, errors and vars are extism-pdk's.
//!
//! State: a word tally in a `HashMap` on the heap, in linear memory, so it persists between calls
//! and rolls back with a failed call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use extism_pdk::*;
use serde::Serialize;

static TALLY: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

fn with_tally<R>(f: impl FnOnce(&mut HashMap<String, u64>) -> R) -> Result<R, Error> {
    let mut tally = TALLY.lock().map_err(|_| Error::msg("poisoned"))?;
    Ok(f(tally.get_or_insert_with(HashMap::new)))
}

#[derive(Serialize)]
struct Added {
    added: usize,
    distinct: usize,
    top: Vec<(String, u64)>,
}

/// Adds the words of the input to the tally; answers how many, the distinct count and the top
/// three. Logs a line with `println!`. Fails (the plugin's error) on input without words.
#[plugin_fn]
pub fn add(text: String) -> FnResult<Json<Added>> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        eprintln!("add: no words in {text:?}");
        return Err(WithReturnCode::new(Error::msg("the input has no words"), 1));
    }
    let added = words.len();
    let (distinct, top) = with_tally(|tally| {
        for word in words {
            *tally.entry(word).or_default() += 1;
        }
        let mut top: Vec<(String, u64)> = tally.iter().map(|(w, n)| (w.clone(), *n)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(3);
        (tally.len(), top)
    })?;
    println!("added {added} words, {distinct} distinct");
    Ok(Json(Added {
        added,
        distinct,
        top,
    }))
}

/// As `add`, then fails: nothing it added is kept.
#[plugin_fn]
pub fn add_then_fail(text: String) -> FnResult<String> {
    let words = text.split_whitespace().count();
    with_tally(|tally| *tally.entry("never-kept".into()).or_default() += words as u64)?;
    Err(WithReturnCode::new(Error::msg("failing on purpose"), 2))
}

/// The count of one word.
#[plugin_fn]
pub fn count(word: String) -> FnResult<String> {
    let word = word.trim().to_lowercase();
    Ok(with_tally(|tally| tally.get(&word).copied().unwrap_or(0))?.to_string())
}

#[derive(Serialize)]
struct Now {
    unix_ns: u128,
    monotonic_ok: bool,
}

/// `SystemTime::now()` (the message's IC time) in ns since the epoch, and whether `Instant`
/// did not go backwards.
#[plugin_fn]
pub fn now() -> FnResult<Json<Now>> {
    let before = std::time::Instant::now();
    let unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::msg(e.to_string()))?
        .as_nanos();
    Ok(Json(Now {
        unix_ns,
        monotonic_ok: std::time::Instant::now() >= before,
    }))
}

#[derive(Serialize)]
struct Env {
    args: Vec<String>,
    vars: Vec<(String, String)>,
}

/// `std::env::args()` and `std::env::vars()`: what the config's `wasi.args` and `wasi.env.*` set.
#[plugin_fn]
pub fn env() -> FnResult<Json<Env>> {
    Ok(Json(Env {
        args: std::env::args().collect(),
        vars: std::env::vars().collect(),
    }))
}
