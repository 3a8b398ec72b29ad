//! The PocketIC tests are in `tests/pocket_ic.rs`; this package exists so that building them
//! (pocket-ic and its HTTP stack) is asked for, not part of every `cargo test`.
