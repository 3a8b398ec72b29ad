//! The canister's state: the only module that touches `thread_local!`, through closure accessors.
//!
//! Stable memory is the source of truth: the engine, the chunk store and the settings all live in
//! virtual memories of one `MemoryManager` (ids in `memory`). The heap holds only caches (decoded
//! settings, the engine's compiled modules and warm instances), rebuilt lazily after an upgrade.

use std::borrow::Cow;
use std::cell::RefCell;

use candid::{Decode, Encode};
use ic_stable_structures::memory_manager::{MemoryManager, VirtualMemory};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{DefaultMemoryImpl, StableCell, Storable};
use plugin_engine::{Engine, Limits, StableMemories};
use plugin_host_api::Settings;

use crate::chunks::ChunkStore;
use crate::memory;

type Memory = VirtualMemory<DefaultMemoryImpl>;

/// Everything the canister keeps.
pub struct State {
    /// Installed plugins, their code and state.
    pub engine: Engine<Memory>,
    /// Chunks uploaded for `install_chunked`.
    pub chunks: ChunkStore<Memory>,
    /// Access settings (a heap copy of `settings_cell`).
    pub settings: Settings,
    settings_cell: StableCell<StoredSettings, Memory>,
}

impl State {
    /// Replaces the settings, in stable memory and in the heap copy.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings_cell.set(StoredSettings(settings.clone()));
        self.settings = settings;
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Opens the state kept in stable memory (empty on a fresh canister). Called by init and post_upgrade.
pub fn open() {
    let manager = MemoryManager::init(DefaultMemoryImpl::default());
    let settings_cell = StableCell::init(
        manager.get(memory::SETTINGS),
        StoredSettings(Settings::default()),
    );
    let engine = Engine::init(
        StableMemories {
            meta: manager.get(memory::ENGINE_META),
            plugins: manager.get(memory::ENGINE_PLUGINS),
            code: manager.get(memory::ENGINE_CODE),
            code_refs: manager.get(memory::ENGINE_CODE_REFS),
            pages: manager.get(memory::ENGINE_PAGES),
            chunk_slots: manager.get(memory::ENGINE_CHUNK_SLOTS),
            chunk_data: manager.get(memory::ENGINE_CHUNK_DATA),
            usage: manager.get(memory::ENGINE_USAGE),
            globals: manager.get(memory::ENGINE_GLOBALS),
            vars: manager.get(memory::ENGINE_VARS),
        },
        Limits::default(),
    );
    let state = State {
        engine,
        chunks: ChunkStore::init(manager.get(memory::CHUNKS)),
        settings: settings_cell.get().0.clone(),
        settings_cell,
    };
    STATE.with(|s| *s.borrow_mut() = Some(state));
}

/// Runs `f` with shared access to the state.
pub fn read<R>(f: impl FnOnce(&State) -> R) -> R {
    STATE.with(|s| {
        f(s.borrow()
            .as_ref()
            .expect("state is opened by init/post_upgrade"))
    })
}

/// Runs `f` with exclusive access to the state.
pub fn write<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| {
        f(s.borrow_mut()
            .as_mut()
            .expect("state is opened by init/post_upgrade"))
    })
}

/// Settings as stored: a layout version, then the Candid encoding of [`Settings`].
struct StoredSettings(Settings);

impl Storable for StoredSettings {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        self.clone_bytes()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let (version, candid) = bytes.split_at(4);
        assert_eq!(
            version,
            memory::LAYOUT_VERSION.to_le_bytes(),
            "unknown settings layout version"
        );
        Self(Decode!(candid, Settings).expect("stored settings decode"))
    }

    const BOUND: Bound = Bound::Unbounded;
}

impl StoredSettings {
    fn clone_bytes(&self) -> Vec<u8> {
        let mut bytes = memory::LAYOUT_VERSION.to_le_bytes().to_vec();
        bytes.extend(Encode!(&self.0).expect("settings encode"));
        bytes
    }
}
