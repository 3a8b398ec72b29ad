//! The engine's heap caches, compiled modules and live instances, held within one budget.
//!
//! Stable memory is the source of truth: anything evicted here is rebuilt from it when needed
//! (a module recompiled from its stored bytes, an instance restored from its stored state).

use std::collections::BTreeMap;

use crate::instance::{CompiledModule, LiveInstance};

/// Heap bytes a compiled module is counted as, per byte of its wasm: wasmi's parsed module plus
/// the code it translates (lazily: at most every function once). The example plugins take 3.5
/// to 4.6 bytes per byte with every function compiled (test
/// `compiled_modules_stay_within_their_heap_estimate`).
pub const MODULE_HEAP_PER_WASM_BYTE: u64 = 6;

/// Compiled modules by sha256 and live instances by plugin name, least recently used first out.
#[derive(Default)]
pub struct Caches {
    modules: BTreeMap<[u8; 32], (CompiledModule, u64)>,
    instances: BTreeMap<String, LiveInstance>,
    clock: u64,
}

impl Caches {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The compiled module with this hash, if cached.
    pub fn module(&mut self, sha256: &[u8; 32]) -> Option<&CompiledModule> {
        let now = self.tick();
        let (module, last_used) = self.modules.get_mut(sha256)?;
        *last_used = now;
        Some(module)
    }

    /// Caches a compiled module.
    pub fn insert_module(&mut self, sha256: [u8; 32], module: CompiledModule) {
        let now = self.tick();
        self.modules.insert(sha256, (module, now));
    }

    /// Drops a compiled module (its code was freed).
    pub fn remove_module(&mut self, sha256: &[u8; 32]) {
        self.modules.remove(sha256);
    }

    /// The live instance of a plugin, if any.
    pub fn instance(&mut self, name: &str) -> Option<&mut LiveInstance> {
        let now = self.tick();
        let live = self.instances.get_mut(name)?;
        live.last_used = now;
        Some(live)
    }

    /// Keeps a plugin's live instance.
    pub fn insert_instance(&mut self, name: String, mut live: LiveInstance) {
        live.last_used = self.tick();
        self.instances.insert(name, live);
    }

    /// Drops a plugin's live instance (it is rebuilt from stable memory when next needed).
    pub fn remove_instance(&mut self, name: &str) -> Option<LiveInstance> {
        self.instances.remove(name)
    }

    /// Heap bytes the caches hold.
    pub fn heap_bytes(&self) -> u64 {
        let modules: u64 = self
            .modules
            .values()
            .map(|(m, _)| m.wasm_bytes * MODULE_HEAP_PER_WASM_BYTE)
            .sum();
        let instances: u64 = self.instances.values().map(LiveInstance::heap_bytes).sum();
        modules + instances
    }

    /// Evicts least recently used instances, then modules, until the caches hold at most
    /// `budget` bytes; the instance of `keep` (and its module, `keep_module`) stay.
    pub fn shrink_to(&mut self, budget: u64, keep: Option<&str>, keep_module: Option<&[u8; 32]>) {
        let mut held = self.heap_bytes();
        while held > budget {
            let oldest = self
                .instances
                .iter()
                .filter(|(name, _)| Some(name.as_str()) != keep)
                .min_by_key(|(_, live)| live.last_used)
                .map(|(name, _)| name.clone());
            let Some(name) = oldest else { break };
            if let Some(evicted) = self.instances.remove(&name) {
                held = held.saturating_sub(evicted.heap_bytes());
            }
        }
        while held > budget {
            let oldest = self
                .modules
                .iter()
                .filter(|(sha256, _)| Some(*sha256) != keep_module)
                .min_by_key(|(_, (_, last_used))| *last_used)
                .map(|(sha256, _)| *sha256);
            let Some(sha256) = oldest else { break };
            if let Some((evicted, _)) = self.modules.remove(&sha256) {
                held = held.saturating_sub(evicted.wasm_bytes * MODULE_HEAP_PER_WASM_BYTE);
            }
        }
    }

    /// How many instances are live (for tests and figures).
    pub fn live_instances(&self) -> usize {
        self.instances.len()
    }
}
