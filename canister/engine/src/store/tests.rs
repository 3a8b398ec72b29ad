//! Unit tests of the store: chunk slots, usage in place, the layout-1 move.

use super::*;
use ic_stable_structures::VectorMemory;

/// The store's memories, kept so that a store can be reopened over them.
#[derive(Clone, Default)]
struct Memories([VectorMemory; 10]);

impl Memories {
    fn open(&self) -> PluginStore<VectorMemory> {
        PluginStore::init(StableMemories::from_array(self.0.clone()))
    }
}

fn chunk(byte: u8) -> Vec<u8> {
    vec![byte; CHUNK_BYTES]
}

#[test]
fn chunks_are_written_in_place_and_their_slots_reused() {
    let memories = Memories::default();
    let mut store = memories.open();
    store.put_chunk(1, 0, &chunk(1));
    store.put_chunk(1, 7, &chunk(2));
    store.put_chunk(2, 0, &chunk(3));
    store.put_chunk(1, 7, &chunk(4));
    assert_eq!(store.stored_chunks(), 3);
    store.put_chunk(1, 0, &chunk(0));
    let reopened = memories.open();
    assert_eq!(reopened.chunks(1).collect::<Vec<_>>(), vec![(7, chunk(4))]);
    assert_eq!(reopened.chunks(2).collect::<Vec<_>>(), vec![(0, chunk(3))]);

    // Freed slots (a zeroed chunk, a deleted plugin) are used again before new ones.
    let mut store = reopened;
    store.delete_state(1);
    assert_eq!(store.stored_chunks(), 1);
    let before = store.chunk_data.slots;
    store.put_chunk(3, 0, &chunk(5));
    store.put_chunk(3, 1, &chunk(6));
    assert_eq!(store.chunk_data.slots, before);
    store.put_chunk(3, 2, &chunk(7));
    assert_eq!(store.chunk_data.slots, before + 1);
    let reopened = memories.open();
    assert_eq!(
        reopened.chunks(3).collect::<Vec<_>>(),
        vec![(0, chunk(5)), (1, chunk(6)), (2, chunk(7))]
    );
    assert_eq!(reopened.chunks(2).collect::<Vec<_>>(), vec![(0, chunk(3))]);
}

#[test]
fn a_changed_span_is_written_into_the_chunks_own_slot() {
    let memories = Memories::default();
    let mut store = memories.open();
    store.put_chunk(1, 0, &chunk(1));
    let mut now = chunk(1);
    now[100..116].fill(9);
    store.put_chunk_change(1, 0, &now, 100..116);
    assert_eq!(
        memories.open().chunks(1).collect::<Vec<_>>(),
        vec![(0, now.clone())]
    );

    // The slot plugin 1 had (cached by the writes above) goes to plugin 2 after a delete; a new
    // chunk of plugin 1 gets a slot of its own, written whole, and plugin 2's stays as written.
    store.delete_state(1);
    store.put_chunk(2, 0, &chunk(2));
    store.put_chunk_change(1, 0, &now, 100..116);
    let reopened = memories.open();
    assert_eq!(reopened.chunks(1).collect::<Vec<_>>(), vec![(0, now)]);
    assert_eq!(reopened.chunks(2).collect::<Vec<_>>(), vec![(0, chunk(2))]);

    // A span that leaves the chunk all zero frees its slot.
    let mut zeroed = chunk(2);
    zeroed.fill(0);
    store.put_chunk_change(2, 0, &zeroed, 0..CHUNK_BYTES);
    assert_eq!(memories.open().chunks(2).count(), 0);
    assert_eq!(store.stored_chunks(), 1);
}

fn plugin(id: u64, name: &str) -> PluginRecord {
    PluginRecord {
        id,
        name: name.into(),
        owner: Principal::from_slice(&[1]),
        code_sha256: [0; 32],
        code_size: 1,
        functions: vec!["f".into()],
        memory_pages: 1,
        max_memory_pages: None,
        fuel_limit: 10,
        calls: 0,
        fuel_used_total: 0,
        installed_at_ns: 0,
        updated_at_ns: 0,
        invoke_policy: InvokePolicy::Public,
        config: BTreeMap::new(),
    }
}

#[test]
fn usage_is_written_in_place_and_read_with_the_record() {
    let memories = Memories::default();
    let mut store = memories.open();
    store.put_record(&plugin(3, "b"));
    store.put_record(&plugin(0, "a"));
    assert_eq!(store.record("b"), Some(plugin(3, "b")));
    let mut used = plugin(3, "b");
    (used.calls, used.fuel_used_total, used.memory_pages) = (5, 700, 9);
    store.put_usage(used.id, &used.name, used.usage());
    assert_eq!(
        store.record("b"),
        Some(used.clone()),
        "the heap copy follows"
    );
    let store = memories.open();
    assert_eq!(store.record("b"), Some(used.clone()));
    assert_eq!(
        store.records(..).collect::<Vec<_>>(),
        vec![plugin(0, "a"), used]
    );

    // A record written before usage was kept apart (layout 1) shows its own figures.
    let mut old = plugin(9, "c");
    old.calls = 4;
    let mut store = store;
    store.plugins.insert("c".into(), old.clone());
    assert_eq!(store.record("c"), Some(old));
    assert_eq!(store.remove_record("b").map(|r| r.calls), Some(5));
    assert!(!store.has_record("b"));
}

#[test]
fn a_layout_1_store_moves_a_plugins_chunks_when_it_is_next_written() {
    let memories = Memories::default();
    {
        // What layout 1 left: its meta, and chunks as B-tree values.
        let [meta, _, _, _, pages, ..] = memories.0.clone();
        StableCell::init(
            meta,
            Meta {
                version: 1,
                next_id: 3,
            },
        );
        let mut old: StableBTreeMap<(u64, u32), Vec<u8>, _> = StableBTreeMap::init(pages);
        old.insert((0, 0), chunk(9));
        old.insert((2, 5), chunk(8));
    }
    // Opening moves nothing: old chunks are read where they are.
    let mut store = memories.open();
    assert_eq!(store.layout_version(), 1);
    assert_eq!(store.chunks(0).collect::<Vec<_>>(), vec![(0, chunk(9))]);
    assert_eq!(store.chunks(2).collect::<Vec<_>>(), vec![(5, chunk(8))]);
    assert_eq!(store.layout_1_chunk_count(2), 1);
    assert_eq!(store.next_id(), 3);
    // Writing a plugin's memory moves its chunks first.
    store.put_chunk(2, 6, &chunk(7));
    assert_eq!(
        store.chunks(2).collect::<Vec<_>>(),
        vec![(5, chunk(8)), (6, chunk(7))]
    );
    assert_eq!(store.layout_1_chunk_count(2), 0);
    assert_eq!(store.layout_version(), 1, "plugin 0 has not moved yet");
    // Deleting a plugin's state moves (then frees) what it had; with nothing left, layout 2.
    store.delete_state(0);
    assert_eq!(store.chunks(0).count(), 0);
    assert_eq!(store.layout_version(), LAYOUT_VERSION);
    let [.., pages, _, _, _, _, _] = memories.0.clone();
    let old: StableBTreeMap<(u64, u32), Vec<u8>, _> = StableBTreeMap::init(pages);
    assert!(old.is_empty(), "layout 1's chunks are gone once moved");
    let reopened = memories.open();
    assert_eq!(reopened.layout_version(), LAYOUT_VERSION);
    assert_eq!(reopened.chunks(2).count(), 2);
}

#[test]
fn all_zero_sees_a_byte_anywhere() {
    assert!(super::all_zero(&[0; 4096]));
    assert!(super::all_zero(&[]));
    for len in [1, 15, 16, 17, 4095, 4096] {
        for at in [0, len / 2, len - 1] {
            let mut bytes = vec![0; len];
            bytes[at] = 0x80;
            assert!(!super::all_zero(&bytes), "len {len}, byte {at}");
        }
    }
}
