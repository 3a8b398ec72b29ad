//! The stable layout is a file format: these tests pin it.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;

use candid::Principal;
use plugin_engine::InvokePolicy;
use plugin_engine::store::codec::{decode_record, encode_record};
use plugin_engine::store::{LAYOUT_VERSION, PluginRecord};

fn record() -> PluginRecord {
    PluginRecord {
        id: 7,
        name: "dao-voting".into(),
        owner: Principal::from_slice(&[0xAA; 29]),
        code_sha256: [0x11; 32],
        code_size: 123_456,
        functions: vec!["decide".into(), "migrate".into()],
        memory_pages: 18,
        max_memory_pages: Some(256),
        fuel_limit: 100_000_000,
        calls: 42,
        fuel_used_total: 9_999,
        installed_at_ns: 1_767_225_600_000_000_000,
        updated_at_ns: 1_767_225_600_000_000_001,
        invoke_policy: InvokePolicy::AllowList(vec![Principal::from_slice(&[1, 2, 3])]),
        config: BTreeMap::from([("rule".into(), "quadratic".into())]),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A plugin record as layouts 1 and 2 store it (layout 2 changed where memory chunks are kept,
/// not records). If this fails, the record encoding changed: bump `LAYOUT_VERSION`, keep a
/// decoder for the old version, and add a new golden file.
#[test]
fn plugin_record_layout_v1_is_stable() {
    assert_eq!(LAYOUT_VERSION, 2);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/plugin_record_v1.hex");
    let stored = std::fs::read_to_string(&golden).expect("golden file");
    let bytes = unhex(&stored);
    assert_eq!(
        decode_record(&bytes),
        record(),
        "the stored snapshot decodes"
    );
    assert_eq!(
        hex(&encode_record(&record())),
        hex(&bytes),
        "encoding is unchanged"
    );
}
