//! `plugins/README.md` holds the ABI reference generated from the one table of host functions;
//! this keeps it current. `UPDATE_ABI_REFERENCE=1 cargo test --test abi_reference` rewrites it.

#![allow(missing_docs)]

use std::path::Path;

const BEGIN: &str = "<!-- ABI reference: generated from canister/engine/src/abi/functions.rs -->\n";
const END: &str = "<!-- end of the ABI reference -->";

#[test]
fn the_plugin_guide_holds_the_abi_reference_of_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/README.md");
    let guide = std::fs::read_to_string(&path).expect("plugins/README.md");
    let start = guide
        .find(BEGIN)
        .expect("the guide marks where the reference begins")
        + BEGIN.len();
    let end = guide[start..].find(END).expect("and where it ends") + start;
    let reference = plugin_engine::abi::reference();
    if guide[start..end] != reference {
        if std::env::var_os("UPDATE_ABI_REFERENCE").is_some() {
            let updated = format!("{}{reference}{}", &guide[..start], &guide[end..]);
            std::fs::write(&path, updated).expect("write plugins/README.md");
        } else {
            panic!(
                "plugins/README.md's ABI reference is out of date: run \
                 `UPDATE_ABI_REFERENCE=1 cargo test --release -p plugin-engine --test abi_reference`"
            );
        }
    }
}
