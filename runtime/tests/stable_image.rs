//! Reading a canister's whole stable memory (`Canister::stable_memory`,
//! `Canister::stable_memory_pages`), and loading it back with `Canister::set_stable_memory`.

use ic_local_runtime::{Canister, Outcome, STABLE_PAGE_BYTES};

const CONTROLLER: &[u8] = &[0xaa, 0xbb];

/// `write` (argument: offset u64 LE, then the bytes) grows stable memory to fit and writes the
/// bytes there; `write_then_trap` does too, then traps; `size` replies with the stable memory's size in 64 KiB pages (u64 LE).
const CANISTER: &str = r#"(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "stable64_size" (func $ssize (result i64)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory (export "memory") 1)
  (func $write (local $end i64) (local $pages i64)
    (call $arg_copy (i32.const 0) (i32.const 0) (call $arg_size))
    (local.set $end (i64.add (i64.load (i32.const 0))
      (i64.extend_i32_u (i32.sub (call $arg_size) (i32.const 8)))))
    (local.set $pages (i64.div_u (i64.add (local.get $end) (i64.const 65535)) (i64.const 65536)))
    (if (i64.gt_u (local.get $pages) (call $ssize))
      (then (drop (call $sgrow (i64.sub (local.get $pages) (call $ssize))))))
    (call $swrite (i64.load (i32.const 0)) (i64.const 8)
      (i64.extend_i32_u (i32.sub (call $arg_size) (i32.const 8)))))
  (func (export "canister_update write") (call $write) (call $reply))
  (func (export "canister_update write_then_trap") (call $write) unreachable)
  (func (export "canister_query size")
    (i64.store (i32.const 0) (call $ssize))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply)))"#;

fn canister() -> Canister {
    let wasm = wat::parse_str(CANISTER).expect("WAT parses");
    Canister::install(&wasm, &[], CONTROLLER)
        .expect("install")
        .0
}

fn write(canister: &mut Canister, offset: u64, bytes: &[u8]) {
    let mut arg = offset.to_le_bytes().to_vec();
    arg.extend_from_slice(bytes);
    let execution = canister.update("write", &arg, CONTROLLER).expect("write");
    assert_eq!(execution.outcome, Outcome::Reply(Vec::new()));
}

#[test]
fn the_whole_stable_memory_reads_as_written_and_loads_back() {
    let mut c = canister();
    assert!(c.stable_memory().is_empty());
    assert_eq!(c.stable_memory_pages().count(), 0);

    write(&mut c, 10, b"first");
    // Across the boundary of the 4 KiB pages 1 and 2, and far out, in the fifth 64 KiB page.
    write(&mut c, 2 * 4096 - 2, b"straddle");
    write(&mut c, 4 * 65_536 + 5, &[7; 3]);
    // A page written with zeros only.
    write(&mut c, 20 * 4096, &[0; 4096]);

    let whole = c.stable_memory();
    assert_eq!(whole.len() as u64, c.stable_size_pages() * 65_536);
    assert_eq!(c.stable_size_pages(), 5);
    let mut expected = vec![0; 5 * 65_536];
    expected[10..15].copy_from_slice(b"first");
    expected[2 * 4096 - 2..2 * 4096 + 6].copy_from_slice(b"straddle");
    expected[4 * 65_536 + 5..4 * 65_536 + 8].copy_from_slice(&[7; 3]);
    assert!(whole == expected, "the bytes written, zeros elsewhere");

    let pages: Vec<(u64, Vec<u8>)> = c
        .stable_memory_pages()
        .map(|(index, page)| (index, page.to_vec()))
        .collect();
    let indexes: Vec<u64> = pages.iter().map(|(index, _)| *index).collect();
    assert_eq!(
        indexes,
        [0, 1, 2, 64],
        "the pages holding a byte other than zero"
    );
    for (index, page) in &pages {
        let at = *index as usize * STABLE_PAGE_BYTES;
        assert!(
            page[..] == whole[at..at + STABLE_PAGE_BYTES],
            "page {index}"
        );
    }

    // What it reads, another canister loads: the same bytes, the same pages.
    let mut other = canister();
    other.set_stable_memory(&whole).expect("no limit");
    assert!(other.stable_memory() == whole);
    assert_eq!(other.stable_size_pages(), 5);
    let reply = other.query("size", &[], CONTROLLER).expect("size");
    assert_eq!(reply.outcome, Outcome::Reply(5u64.to_le_bytes().to_vec()));
    assert!(
        other
            .stable_memory_pages()
            .map(|(index, page)| (index, page.to_vec()))
            .eq(pages)
    );
}

#[test]
fn a_message_that_traps_leaves_the_stable_memory_read_as_before() {
    let mut c = canister();
    write(&mut c, 0, b"kept");
    let before = c.stable_memory();
    let mut arg = 65_536u64.to_le_bytes().to_vec();
    arg.extend_from_slice(b"dropped");
    assert!(c.update("write_then_trap", &arg, CONTROLLER).is_err());
    assert_eq!(c.stable_size_pages(), 1, "the growth is rolled back too");
    assert!(c.stable_memory() == before);
}
