//! Target `store`: random operation sequences on the engine's [`PluginStore`] over
//! `VectorMemory`s, compared after every operation with a model made of `BTreeMap`s (the way
//! ic-stable-structures tests its own structures): records (put, remove, usage written apart),
//! code with reference counts, memory chunks (all-zero ones are not stored), vars, globals,
//! deleting a plugin's state, fresh ids; the store is reopened from the raw memories at random
//! steps. One case in four starts from a layout-1 store (chunks as B-tree values, records without
//! usage entries) and checks the lazy move to layout 2.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use candid::Principal;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{StableBTreeMap, StableCell, Storable, VectorMemory};
use plugin_engine::store::{CHUNK_BYTES, PluginStore, SavedGlobal};
use plugin_engine::{InvokePolicy, LAYOUT_VERSION, PluginRecord, StableMemories};

use crate::rng::Rng;
use crate::{Case, Verdict};

/// The store's ten memories, kept so that the store can be reopened over them.
#[derive(Clone, Default)]
struct Memories([VectorMemory; 10]);

impl Memories {
    fn open(&self) -> PluginStore<VectorMemory> {
        PluginStore::init(StableMemories::from_array(self.0.clone()))
    }
}

/// The meta cell as layout 1 wrote it: "PLGE", version, next id (the store's own type is private;
/// a cell stores the bytes a value encodes to, so this writes the same bytes).
struct OldMeta {
    version: u32,
    next_id: u64,
}

impl Storable for OldMeta {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut bytes = b"PLGE".to_vec();
        bytes.extend_from_slice(&self.version.to_le_bytes());
        bytes.extend_from_slice(&self.next_id.to_le_bytes());
        Cow::Owned(bytes)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let word = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or(&[0; 8]).to_vec();
        let mut version = [0u8; 4];
        version.copy_from_slice(&word(4..8)[..4]);
        let mut next_id = [0u8; 8];
        next_id.copy_from_slice(&word(8..16)[..8]);
        Self {
            version: u32::from_le_bytes(version),
            next_id: u64::from_le_bytes(next_id),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 16,
        is_fixed_size: true,
    };
}

/// What the store must hold.
#[derive(Default)]
struct Model {
    records: BTreeMap<String, PluginRecord>,
    /// Usage written in place, by id: calls, fuel used, memory pages.
    usage: BTreeMap<u64, (u64, u64, u32)>,
    code: BTreeMap<[u8; 32], (Vec<u8>, u64)>,
    chunks: BTreeMap<(u64, u32), Vec<u8>>,
    /// Chunks still where layout 1 put them.
    layout_1: BTreeSet<(u64, u32)>,
    vars: BTreeMap<(u64, String), Vec<u8>>,
    globals: BTreeMap<u64, Vec<SavedGlobal>>,
    next_id: u64,
    layout: u32,
}

impl Model {
    fn record(&self, name: &str) -> Option<PluginRecord> {
        let mut record = self.records.get(name)?.clone();
        if let Some((calls, fuel, pages)) = self.usage.get(&record.id) {
            record.calls = *calls;
            record.fuel_used_total = *fuel;
            record.memory_pages = *pages;
        }
        Some(record)
    }

    /// What `put_chunk` and `delete_state` do first: move the plugin's layout-1 chunks.
    fn move_layout_1(&mut self, id: u64) {
        if self.layout_1.is_empty() {
            return;
        }
        self.layout_1.retain(|(i, _)| *i != id);
        if self.layout_1.is_empty() {
            self.layout = LAYOUT_VERSION;
        }
    }
}

const NAMES: [&str; 5] = ["a", "b", "c", "dd", "plugin-with-a-longer-name"];

fn sha(k: u64) -> [u8; 32] {
    let mut sha = [0u8; 32];
    sha[..8].copy_from_slice(&k.to_le_bytes());
    sha[31] = 0xaa;
    sha
}

fn chunk(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => vec![0; CHUNK_BYTES],
        1 => {
            let mut c = vec![0; CHUNK_BYTES];
            c[rng.index(CHUNK_BYTES)] = rng.range(1, 255) as u8;
            c
        }
        2 => vec![rng.range(1, 255) as u8; CHUNK_BYTES],
        _ => rng.bytes(CHUNK_BYTES),
    }
}

fn record(rng: &mut Rng, id: u64, name: &str) -> PluginRecord {
    PluginRecord {
        id,
        name: name.to_owned(),
        owner: Principal::from_slice(&rng.bytes_in(0, 29)),
        code_sha256: sha(rng.below(4)),
        code_size: rng.edgy_u64(),
        functions: (0..rng.below(4)).map(|i| format!("f{i}")).collect(),
        memory_pages: rng.next_u64() as u32,
        max_memory_pages: rng.chance(1, 2).then(|| rng.next_u64() as u32),
        fuel_limit: rng.edgy_u64(),
        calls: rng.edgy_u64(),
        fuel_used_total: rng.edgy_u64(),
        installed_at_ns: rng.next_u64(),
        updated_at_ns: rng.next_u64(),
        invoke_policy: match rng.below(3) {
            0 => InvokePolicy::Public,
            1 => InvokePolicy::OwnerOnly,
            _ => InvokePolicy::AllowList(
                (0..rng.below(3))
                    .map(|i| Principal::from_slice(&[i as u8; 3]))
                    .collect(),
            ),
        },
        config: (0..rng.below(3))
            .map(|i| (format!("k{i}"), "v".repeat(rng.below(20) as usize)))
            .collect(),
    }
}

/// Writes what a layout-1 store held: its meta, records without usage, chunks as B-tree values.
fn layout_1(memories: &Memories, rng: &mut Rng, model: &mut Model) {
    let [meta, plugins, _, _, pages, ..] = memories.0.clone();
    let next_id = rng.range(1, 5);
    StableCell::init(
        meta,
        OldMeta {
            version: 1,
            next_id,
        },
    );
    let mut records: StableBTreeMap<String, PluginRecord, _> = StableBTreeMap::init(plugins);
    let mut old: StableBTreeMap<(u64, u32), Vec<u8>, _> = StableBTreeMap::init(pages);
    for id in 0..next_id {
        if rng.chance(1, 2) {
            let name = NAMES[id as usize % NAMES.len()];
            let r = record(rng, id, name);
            records.insert(name.to_owned(), r.clone());
            model.records.insert(name.to_owned(), r);
        }
        for _ in 0..rng.below(3) {
            let index = rng.below(6) as u32;
            let mut bytes = chunk(rng);
            bytes[0] = 1; // layout 1 kept no all-zero chunk either
            old.insert((id, index), bytes.clone());
            model.chunks.insert((id, index), bytes);
            model.layout_1.insert((id, index));
        }
    }
    model.next_id = next_id;
    // With nothing to move the store still says layout 1 until a write finds nothing left.
    model.layout = 1;
}

/// Checks the store against the model.
fn check(store: &PluginStore<VectorMemory>, model: &Model) -> Verdict {
    for name in NAMES {
        let (got, want) = (store.record(name), model.record(name));
        if got != want {
            return Err(format!("record({name}): store {got:?}, model {want:?}"));
        }
        if store.has_record(name) != want.is_some() {
            return Err(format!("has_record({name}) is {}", store.has_record(name)));
        }
    }
    let listed: Vec<PluginRecord> = store.records(..).collect();
    let expected: Vec<PluginRecord> = model
        .records
        .keys()
        .filter_map(|name| model.record(name))
        .collect();
    if listed != expected {
        return Err(format!("records(..): store {listed:?}, model {expected:?}"));
    }
    if store.record_count() != model.records.len() as u64 {
        return Err(format!("record_count() {}", store.record_count()));
    }
    for k in 0..5 {
        let want = model.code.get(&sha(k)).map(|(bytes, _)| bytes.clone());
        if store.code(&sha(k)) != want || store.has_code(&sha(k)) != want.is_some() {
            return Err(format!(
                "code {k}: store {:?}, model {want:?}",
                store.code(&sha(k))
            ));
        }
    }
    if store.code_count() != model.code.len() as u64 {
        return Err(format!(
            "code_count() {}, model {}",
            store.code_count(),
            model.code.len()
        ));
    }
    for id in 0..model.next_id + 2 {
        let chunks: Vec<(u32, Vec<u8>)> = store.chunks(id).collect();
        let want: Vec<(u32, Vec<u8>)> = model
            .chunks
            .range((id, 0)..=(id, u32::MAX))
            .map(|((_, i), c)| (*i, c.clone()))
            .collect();
        if chunks != want {
            let got: Vec<u32> = chunks.iter().map(|(i, _)| *i).collect();
            let wanted: Vec<u32> = want.iter().map(|(i, _)| *i).collect();
            return Err(format!(
                "chunks({id}): store has {got:?}, model {wanted:?} (or their bytes differ)"
            ));
        }
        let vars = store.vars(id);
        let want: BTreeMap<String, Vec<u8>> = model
            .vars
            .iter()
            .filter(|((i, _), _)| *i == id)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        if vars != want {
            return Err(format!("vars({id}): store {vars:?}, model {want:?}"));
        }
        let globals = store.globals(id);
        let want = model.globals.get(&id).cloned().unwrap_or_default();
        if globals != want {
            return Err(format!("globals({id}): store {globals:?}, model {want:?}"));
        }
    }
    let slotted = (model.chunks.len() - model.layout_1.len()) as u64;
    if store.stored_chunks() != slotted {
        return Err(format!(
            "stored_chunks() {}, model {slotted}",
            store.stored_chunks()
        ));
    }
    if store.layout_version() != model.layout {
        return Err(format!(
            "layout_version() {}, model {}",
            store.layout_version(),
            model.layout
        ));
    }
    Ok(())
}

/// Layout 1's chunks still in their B-tree must be exactly the model's.
fn check_layout_1(memories: &Memories, model: &Model) -> Verdict {
    let [.., pages, _, _, _, _, _] = memories.0.clone();
    let old: StableBTreeMap<(u64, u32), Vec<u8>, _> = StableBTreeMap::init(pages);
    let keys: BTreeSet<(u64, u32)> = old.keys().collect();
    if keys != model.layout_1 {
        return Err(format!(
            "layout 1's chunks left: store {keys:?}, model {:?}",
            model.layout_1
        ));
    }
    Ok(())
}

/// Runs one case.
pub fn run(case: &mut Case) -> Verdict {
    let rng = &mut case.rng;
    let memories = Memories::default();
    let mut model = Model {
        layout: LAYOUT_VERSION,
        ..Model::default()
    };
    if rng.chance(1, 4) {
        layout_1(&memories, rng, &mut model);
        *case.notes.entry("from layout 1".into()).or_default() += 1;
    }
    let mut store = memories.open();
    let mut log: Vec<String> = Vec::new();
    check(&store, &model).map_err(|e| format!("after opening: {e}"))?;
    let steps = rng.range(5, 60);
    for step in 0..steps {
        let op = apply(&mut store, &memories, &mut model, rng)?;
        log.push(op);
        check(&store, &model)
            .and_then(|()| check_layout_1(&memories, &model))
            .map_err(|e| {
                format!(
                    "after step {step} ({}): {e}\n\nsteps:\n{}",
                    log.last().cloned().unwrap_or_default(),
                    log.join("\n")
                )
            })?;
    }
    if model.layout == 1 && model.layout_1.is_empty() {
        *case
            .notes
            .entry("layout 1 left without chunks".into())
            .or_default() += 1;
    }
    if model.layout == LAYOUT_VERSION && case.notes.contains_key("from layout 1") {
        *case.notes.entry("moved to layout 2".into()).or_default() += 1;
    }
    Ok(())
}

/// One random operation on both; returns its description.
fn apply(
    store: &mut PluginStore<VectorMemory>,
    memories: &Memories,
    model: &mut Model,
    rng: &mut Rng,
) -> Result<String, String> {
    let id = rng.below(model.next_id + 2);
    Ok(match rng.below(14) {
        0 | 1 => {
            let name = *rng.pick(&NAMES);
            let id = match model.records.get(name) {
                Some(r) => r.id,
                None => {
                    let id = store.next_id();
                    model.next_id += 1;
                    id
                }
            };
            let r = record(rng, id, name);
            store.put_record(&r);
            model
                .usage
                .insert(id, (r.calls, r.fuel_used_total, r.memory_pages));
            model.records.insert(name.to_owned(), r);
            format!("put_record {name} (id {id})")
        }
        2 => {
            let name = *rng.pick(&NAMES);
            let got = store.remove_record(name);
            let want = model.record(name);
            model.records.remove(name);
            if got != want {
                return Err(format!(
                    "remove_record({name}): store {got:?}, model {want:?}"
                ));
            }
            format!("remove_record {name}")
        }
        3 => {
            let Some(name) = model
                .records
                .keys()
                .nth(rng.index(model.records.len()))
                .cloned()
            else {
                return Ok("(no record for put_usage)".into());
            };
            let mut r = model.record(&name).ok_or("model record")?;
            (r.calls, r.fuel_used_total, r.memory_pages) =
                (rng.edgy_u64(), rng.edgy_u64(), rng.next_u64() as u32);
            store.put_usage(r.id, &r.name, r.usage());
            model
                .usage
                .insert(r.id, (r.calls, r.fuel_used_total, r.memory_pages));
            format!("put_usage {name}")
        }
        4 => {
            let k = rng.below(5);
            let bytes = rng.bytes_in(0, 300);
            store.add_code_ref(sha(k), &bytes);
            let entry = model.code.entry(sha(k)).or_insert((bytes, 0));
            entry.1 += 1;
            format!("add_code_ref {k}")
        }
        5 => {
            let k = rng.below(5);
            let freed = store.release_code_ref(sha(k));
            let want = match model.code.get(&sha(k)).map(|(_, refs)| *refs).unwrap_or(0) {
                0 | 1 => {
                    model.code.remove(&sha(k));
                    true
                }
                _ => {
                    if let Some(entry) = model.code.get_mut(&sha(k)) {
                        entry.1 -= 1;
                    }
                    false
                }
            };
            if freed != want {
                return Err(format!("release_code_ref({k}) freed {freed}, model {want}"));
            }
            format!("release_code_ref {k}")
        }
        6..=8 => {
            let index = rng.below(8) as u32;
            let (bytes, changed) = match model.chunks.get(&(id, index)) {
                // A span of the stored chunk changed (to zeros, or not): only it is written.
                Some(old) if rng.chance(1, 2) => {
                    let mut bytes = old.clone();
                    let start = rng.index(CHUNK_BYTES);
                    let end = rng.range(start as u64 + 1, CHUNK_BYTES as u64) as usize;
                    let zeros = rng.chance(1, 3);
                    let fill = if zeros {
                        vec![0; end - start]
                    } else {
                        rng.bytes(end - start)
                    };
                    bytes[start..end].copy_from_slice(&fill);
                    (bytes, start..end)
                }
                _ => (chunk(rng), 0..CHUNK_BYTES),
            };
            store.put_chunk_change(id, index, &bytes, changed.clone());
            model.move_layout_1(id);
            if bytes.iter().all(|b| *b == 0) {
                model.chunks.remove(&(id, index));
            } else {
                model.chunks.insert((id, index), bytes);
            }
            format!("put_chunk {id} {index} {changed:?}")
        }
        9 => {
            let key = rng.pick(&["", "k", "key", "ü"]).to_string();
            if rng.chance(1, 3) {
                store.put_var(id, &key, None);
                model.vars.remove(&(id, key.clone()));
                format!("delete var {id} {key:?}")
            } else {
                let value = rng.bytes_in(0, 100);
                store.put_var(id, &key, Some(&value));
                model.vars.insert((id, key.clone()), value);
                format!("put_var {id} {key:?}")
            }
        }
        10 => {
            let globals: Vec<SavedGlobal> = (0..rng.below(4))
                .map(|_| SavedGlobal {
                    tag: rng.below(4) as u8,
                    bits: rng.edgy_u64(),
                })
                .collect();
            store.put_globals(id, &globals);
            model.globals.insert(id, globals);
            format!("put_globals {id}")
        }
        11 => {
            store.delete_state(id);
            model.move_layout_1(id);
            model.chunks.retain(|(i, _), _| *i != id);
            model.vars.retain(|(i, _), _| *i != id);
            model.globals.remove(&id);
            format!("delete_state {id}")
        }
        12 => {
            let got = store.next_id();
            if got != model.next_id {
                return Err(format!("next_id() {got}, model {}", model.next_id));
            }
            model.next_id += 1;
            "next_id".into()
        }
        _ => {
            *store = memories.open();
            "reopen".into()
        }
    })
}
