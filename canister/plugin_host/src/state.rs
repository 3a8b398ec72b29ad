//! The canister's state: the only module that touches `thread_local!`, through closure accessors;
//! and the adapters that hand the engine what it reads from the IC (the instruction counter).
//!
//! Stable memory is the source of truth: the engine, the chunk store and the settings all live in
//! virtual memories of one `StableSpace` (ids in `memory`). The heap holds caches (decoded
//! settings, the engine's compiled modules and live instances, the chunk index) and the quota
//! counts of the current window, all rebuilt or restarted after an upgrade.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use ic_stable_structures::memory_manager::VirtualMemory;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{DefaultMemoryImpl, StableCell, Storable};
use plugin_engine::{Engine, InstructionMeter, Limits, StableSpace};
use plugin_host_api::{InstallPolicy, Settings, StorageFull};

use crate::chunks::ChunkStore;
use crate::memory;
use crate::quota::QuotaBook;

type Memory = VirtualMemory<DefaultMemoryImpl>;

/// Everything the canister keeps.
pub struct State {
    /// Installed plugins, their code and state.
    pub engine: Engine<DefaultMemoryImpl>,
    /// Chunks uploaded for `install_chunked`.
    pub chunks: ChunkStore<Memory>,
    /// Settings (a heap copy of `settings_cell`).
    pub settings: Settings,
    /// Instruction quota counts of the current windows.
    pub quotas: QuotaBook,
    space: Rc<StableSpace<DefaultMemoryImpl>>,
    settings_cell: StableCell<StoredSettings, Memory>,
}

impl State {
    /// Replaces the settings, in stable memory and in the heap copy.
    pub fn set_settings(&mut self, settings: Settings) -> Result<(), StorageFull> {
        let stored = StoredSettings::current(settings);
        let bytes = stored.to_bytes().len() as u64;
        self.space
            .reserve([(memory::SETTINGS, 2 * bytes + 65_536)])?;
        self.settings_cell.set(stored.clone());
        self.settings = stored.0;
        Ok(())
    }

    /// Reserves stable memory for storing a chunk of `bytes`.
    pub fn reserve_chunk(&self, bytes: u64) -> Result<(), StorageFull> {
        self.space.reserve([(memory::CHUNKS, 2 * bytes + 65_536)])
    }

    /// Bytes of the canister's stable memory.
    pub fn stable_bytes(&self) -> u64 {
        self.space.stable_bytes()
    }
}

/// The IC's instruction counter for the current message.
struct IcMeter;

impl InstructionMeter for IcMeter {
    fn instructions(&self) -> u64 {
        ic_cdk::api::performance_counter(0)
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Opens the state kept in stable memory (empty on a fresh canister). Called by init and
/// post_upgrade: its work does not grow with what is stored.
pub fn open() {
    let space = Rc::new(StableSpace::init(DefaultMemoryImpl::default()));
    let settings_cell = StableCell::init(
        space.get(memory::SETTINGS),
        StoredSettings::current(Settings::default()),
    );
    let engine = Engine::init(
        space.clone(),
        memory::ENGINE,
        Limits::default(),
        Rc::new(IcMeter),
    );
    let stored_layout = settings_cell.get().1;
    let mut state = State {
        engine,
        chunks: ChunkStore::init(space.get(memory::CHUNKS)),
        settings: settings_cell.get().0.clone(),
        quotas: QuotaBook::default(),
        space,
        settings_cell,
    };
    if stored_layout < memory::LAYOUT_VERSION {
        // Layout 1's chunk keys cannot be read as layout 2's: uploads not installed yet go; the
        // settings are written in layout 2.
        state.chunks.clear();
        let settings = state.settings.clone();
        state
            .set_settings(settings)
            .expect("the settings cell has room for what it held");
    }
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

/// Settings as stored: a layout version (u32 LE), then the Candid encoding of [`Settings`]
/// (layout 1: of [`SettingsV1`]). Decoding gives the settings and the version they were in.
#[derive(Clone)]
struct StoredSettings(Settings, u32);

impl StoredSettings {
    fn current(settings: Settings) -> Self {
        Self(settings, memory::LAYOUT_VERSION)
    }
}

/// The settings of canister layout 1.
#[derive(CandidType, Deserialize)]
struct SettingsV1 {
    admins: Vec<Principal>,
    install_policy: InstallPolicy,
}

impl Storable for StoredSettings {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut bytes = memory::LAYOUT_VERSION.to_le_bytes().to_vec();
        bytes.extend(Encode!(&self.0).expect("settings encode"));
        Cow::Owned(bytes)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let (version, candid) = bytes.split_at(4);
        let version = u32::from_le_bytes(version.try_into().expect("4 bytes"));
        let settings = match version {
            1 => {
                let old = Decode!(candid, SettingsV1).expect("stored settings decode");
                Settings {
                    admins: old.admins,
                    install_policy: old.install_policy,
                    ..Settings::default()
                }
            }
            2 => Decode!(candid, Settings).expect("stored settings decode"),
            _ => panic!("unknown settings layout version {version}"),
        };
        Self(settings, version)
    }

    const BOUND: Bound = Bound::Unbounded;
}
