//! Stable memory that runs out, through the real canister: the local runtime caps the canister's
//! stable memory just above what it uses (as a full subnet would: `stable64_grow` answers -1),
//! and every operation that would need more is refused with its typed `StorageFull` before it
//! writes anything, while the operations that fit go on.

#![allow(missing_docs)]

mod support;

use plugin_host_api::{ChunkError, InstallError, InvokeError, StorageFull, Totals};
use plugin_host_local::client::PluginHost;
use support::*;

/// A plugin that writes every 4 KiB chunk of 256 new pages of memory (16 MiB) when asked, and
/// counts the calls that did (a global).
const WRITER: &str = r#"(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $writes (mut i64) (i64.const 0))
  (func (export "write_pages") (result i32)
    (local $at i32)
    (drop (memory.grow (i32.const 256)))
    (local.set $at (i32.const 65536))
    (loop $next
      (i32.store8 (local.get $at) (i32.const 1))
      (local.set $at (i32.add (local.get $at) (i32.const 4096)))
      (br_if $next (i32.lt_u (local.get $at) (i32.const 16842752))))
    (global.set $writes (i64.add (global.get $writes) (i64.const 1)))
    (i32.const 0))
  (func (export "writes") (result i32) (local $out i64)
    (local.set $out (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $out) (global.get $writes))
    (call $output_set (local.get $out) (i64.const 8))
    (i32.const 0)))"#;

/// A plugin whose initial memory is 256 pages (16 MiB): installing it stores all of them.
const BIG_MEMORY: &str =
    r#"(module (memory (export "memory") 256) (func (export "run") (result i32) (i32.const 0)))"#;

const NEW_PAGE_BYTES: u64 = 256 * 65_536;

/// What the canister holds and answers, which a refused operation must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    stable_pages: u64,
    plugins: u64,
    modules: u64,
    code_bytes: u64,
    chunk_bytes: u64,
    /// (calls, memory pages) of the counter and the writer.
    counter: (u64, u32),
    writer: (u64, u32),
    bob_chunks: usize,
}

fn observe(host: &mut PluginHost) -> Observed {
    let Totals {
        plugins,
        modules,
        code_bytes,
        chunk_bytes,
        ..
    } = host.settings(admin()).expect("settings").totals;
    let mut usage = |name: &str| {
        let info = host.get(alice(), name).expect("get").expect("installed");
        (info.calls, info.memory_pages)
    };
    let (counter, writer) = (usage("counter"), usage("writer"));
    Observed {
        stable_pages: host.canister().stable_size_pages(),
        plugins,
        modules,
        code_bytes,
        chunk_bytes,
        counter,
        writer,
        bob_chunks: host.stored_chunks(bob()).expect("stored_chunks").len(),
    }
}

/// The counter and the writer answer with the state they had.
#[track_caller]
fn answers_as_before(host: &mut PluginHost, counter: &str, writes: u64) {
    assert_eq!(ok(host, "counter", "get", ""), counter);
    let reply = call(host, alice(), "writer", "writes", "").expect("writes");
    assert_eq!(reply.output.as_slice(), writes.to_le_bytes());
}

#[track_caller]
fn assert_storage_full(full: &StorageFull, at_least: u64, stable_pages: u64) {
    assert_eq!(full.stable_bytes, stable_pages * 65_536, "{full:?}");
    assert!(full.requested_bytes >= at_least, "{full:?}");
}

#[test]
fn stable_memory_that_runs_out_refuses_with_storage_full_and_changes_nothing() {
    let mut host = shared_host();
    install(&mut host, alice(), "counter", plugin("counter"));
    install(
        &mut host,
        alice(),
        "writer",
        wat::parse_str(WRITER).expect("WAT"),
    );
    assert_eq!(ok(&mut host, "counter", "increment", "5"), "5");

    // Just above what the canister uses.
    let pages = host.canister().stable_size_pages();
    host.canister()
        .set_stable_memory_limit(Some((pages + 1) * 65_536));
    // What fits still runs: a call that commits a little (its reservation may take the page of
    // room; from here on the stable memory stays as it is).
    assert_eq!(ok(&mut host, "counter", "increment", "1"), "6");
    answers_as_before(&mut host, "6", 0);
    let pages = host.canister().stable_size_pages();
    let before = observe(&mut host);

    // A plugin whose memory does not fit.
    let refused = install_err(&mut host, "big", wat::parse_str(BIG_MEMORY).expect("WAT"));
    match &refused {
        InstallError::StorageFull(full) => assert_storage_full(full, NEW_PAGE_BYTES, pages),
        other => panic!("expected StorageFull, got {other:?}"),
    }
    assert_eq!(host.get(alice(), "big").expect("get"), None);
    assert_eq!(observe(&mut host), before, "after the refused install");
    answers_as_before(&mut host, "6", 0);
    let before = observe(&mut host);

    // A committing call that writes 16 MiB of new pages.
    let failure = call(&mut host, alice(), "writer", "write_pages", "").expect_err("full");
    match &failure.error {
        InvokeError::StorageFull(full) => assert_storage_full(full, NEW_PAGE_BYTES, pages),
        other => panic!("expected StorageFull, got {other:?}"),
    }
    assert_eq!(observe(&mut host), before, "after the refused call");
    answers_as_before(&mut host, "6", 0);

    // Chunks, until one does not fit (each uploader may store 16): every upload before it is
    // stored, the refused one is not.
    let mut stored = 0;
    let full = loop {
        assert!(stored < 16, "16 chunks of 1 MiB fit under the limit");
        let before = observe(&mut host);
        let chunk = vec![stored as u8; 1024 * 1024];
        match host.upload_chunk(bob(), &chunk).expect("upload message") {
            Ok(_) => stored += 1,
            Err(ChunkError::StorageFull(full)) => {
                assert_eq!(observe(&mut host), before, "after the refused upload");
                break full;
            }
            Err(other) => panic!("expected StorageFull, got {other:?}"),
        }
    };
    assert_storage_full(&full, 1024 * 1024, pages);
    assert!(stored > 0, "the first chunk fits in what the canister has");
    assert_eq!(
        host.stored_chunks(bob()).expect("stored_chunks").len(),
        stored
    );
    answers_as_before(&mut host, "6", 0);
    assert_eq!(host.canister().stable_size_pages(), pages);

    // A canister upgrade needs no more stable memory: it goes through under the limit.
    upgrade_to_other_build(&mut host);
    answers_as_before(&mut host, "6", 0);
    assert_eq!(host.canister().stable_size_pages(), pages);

    // With room again, each refused operation succeeds: nothing was left half-done.
    host.canister().set_stable_memory_limit(None);
    install(
        &mut host,
        alice(),
        "big",
        wat::parse_str(BIG_MEMORY).expect("WAT"),
    );
    ok(&mut host, "writer", "write_pages", "");
    answers_as_before(&mut host, "6", 1);
    host.upload_chunk(bob(), &[0xff; 1024 * 1024])
        .expect("upload message")
        .expect("stored");
    assert_eq!(
        host.stored_chunks(bob()).expect("stored_chunks").len(),
        stored + 1
    );
    assert_eq!(ok(&mut host, "counter", "increment", "1"), "7");
}
