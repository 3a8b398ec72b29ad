//! Benchmark kernels for the interpretation ratio (P1 in `benches/README.md`).
//!
//! The same source is compiled twice: natively into the bench build of the `plugin_host` canister
//! (feature `bench`) and into the `kernels` plugin that runs under wasmi. Each kernel takes a size
//! `n`, builds its own input deterministically, and returns a short text result, so the two builds
//! can be checked to agree before their instruction counts are compared. [`round_trip`] is P8's
//! JSON round trip, compiled the same two ways (its plugin is `plugins/json_round_trip`).

use sha2::{Digest, Sha256};

pub mod round_trip;

/// Every kernel: name, what it does, and the size the benchmark runs it at.
pub const KERNELS: &[(&str, &str, u64)] = &[
    ("int_loop", "sum += (i % 100)^2 for i < n", 1_000_000),
    (
        "fibonacci",
        "n steps of a wrapping u64 Fibonacci",
        2_000_000,
    ),
    ("sort", "sort n pseudo-random u32", 50_000),
    ("sha256", "sha256 of n bytes", 128 * 1024),
    (
        "mem_copy_compare",
        "copy and compare n bytes, 20 times",
        256 * 1024,
    ),
    ("json_parse", "serialize then parse n JSON records", 2_000),
];

/// Primitives a kernel can take from its host instead of computing them in its own code (P1b).
pub struct Primitives {
    /// SHA-256 of some bytes.
    pub sha256: fn(&[u8]) -> [u8; 32],
    /// Whether two byte strings are equal.
    pub equal: fn(&[u8], &[u8]) -> bool,
}

/// The primitives computed in the kernel's own code: what P1 measures.
pub const OWN_PRIMITIVES: Primitives = Primitives {
    sha256: |data| Sha256::digest(data).into(),
    equal: |a, b| a == b,
};

/// The kernels that use [`Primitives`]: P1b runs them with the host's.
pub const KERNELS_WITH_PRIMITIVES: &[&str] = &["sha256", "mem_copy_compare"];

/// Runs `kernel` at size `n` with its own primitives; `None` for an unknown kernel.
pub fn run(kernel: &str, n: u64) -> Option<String> {
    run_with(kernel, n, &OWN_PRIMITIVES)
}

/// Runs `kernel` at size `n` with the given primitives; `None` for an unknown kernel.
pub fn run_with(kernel: &str, n: u64, primitives: &Primitives) -> Option<String> {
    let result = match kernel {
        "int_loop" => int_loop(n).to_string(),
        "fibonacci" => fibonacci(n).to_string(),
        "sort" => sort(n as usize).to_string(),
        "sha256" => sha256(n as usize, primitives.sha256),
        "mem_copy_compare" => mem_copy_compare(n as usize, primitives.equal).to_string(),
        "json_parse" => json_parse(n).to_string(),
        _ => return None,
    };
    Some(result)
}

fn int_loop(n: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let r = i % 100;
        sum = sum.wrapping_add(r * r);
    }
    sum
}

fn fibonacci(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

/// xorshift32: the same pseudo-random sequence in both builds.
fn xorshift(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

fn sort(n: usize) -> u64 {
    let mut state = 0x9E37_79B9;
    let mut values: Vec<u32> = (0..n).map(|_| xorshift(&mut state)).collect();
    values.sort_unstable();
    values.iter().enumerate().fold(0u64, |acc, (i, v)| {
        acc.wrapping_add(u64::from(*v).wrapping_mul(i as u64))
    })
}

fn sha256(n: usize, hash: fn(&[u8]) -> [u8; 32]) -> String {
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let digest = hash(&data);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn mem_copy_compare(n: usize, equal: fn(&[u8], &[u8]) -> bool) -> u64 {
    let n = n.max(1);
    let source: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
    let mut target = vec![0u8; n];
    let mut equal_rounds = 0;
    for round in 0..20 {
        target.copy_from_slice(&source);
        target[round * 7 % n] ^= (round % 2) as u8;
        if equal(&target, &source) {
            equal_rounds += 1;
        }
    }
    equal_rounds
}

fn json_parse(n: u64) -> usize {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": i,
                "name": format!("item-{i}"),
                "tags": ["alpha", "beta"],
                "score": i as f64 * 1.5,
                "active": i % 3 == 0,
            })
        })
        .collect();
    let text = serde_json::Value::Array(records).to_string();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    parsed.as_array().map_or(0, |records| {
        records
            .iter()
            .filter(|r| r["active"].as_bool() == Some(true))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_compute_known_results() {
        assert_eq!(run("int_loop", 200).as_deref(), Some("656700"));
        assert_eq!(run("fibonacci", 10).as_deref(), Some("55"));
        assert_eq!(run("mem_copy_compare", 1024).as_deref(), Some("10"));
        assert_eq!(run("mem_copy_compare", 0).as_deref(), Some("10"));
        assert_eq!(run("json_parse", 9).as_deref(), Some("3"));
        // Expected values computed independently (Python's hashlib and arithmetic).
        assert_eq!(run("sha256", 256).as_deref(), Some("5bc31b283cef0072"));
        assert_eq!(run("sort", 1000).as_deref(), Some("1449138820045845"));
        assert_eq!(run("nope", 1), None);
    }
}
