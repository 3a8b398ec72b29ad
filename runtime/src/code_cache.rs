//! Compiled canister modules kept on disk between processes ([`Runtime::with_code_cache`]): a
//! CLI command then loads the canister's machine code in milliseconds instead of compiling it
//! for seconds before its first instruction.
//!
//! An entry is `MAGIC`, the sha256 of the module it was compiled from, the sha256 of the
//! compiled artifact, then the artifact (`wasmtime::Module::serialize`). It is named by the
//! module's hash and the engine's compatibility hash (wasmtime's version and configuration). An
//! entry whose hashes do not check out, or that wasmtime refuses, is compiled again and
//! replaced: a stale or damaged cache costs a compile, never a wrong module.
//!
//! [`Runtime::with_code_cache`]: crate::Runtime::with_code_cache

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 8] = b"icrtcode";

/// Entries kept: each new one removes the least recently written beyond this (a canister
/// rebuilt often would otherwise leave ~10 MB per build behind).
const KEPT: usize = 4;
const HEADER: usize = MAGIC.len() + 32 + 32;

/// A directory of compiled modules.
#[derive(Debug)]
pub(crate) struct CodeCache {
    dir: PathBuf,
}

impl CodeCache {
    /// A cache in `dir` (created when the first entry is written).
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn entry(&self, engine: &Engine, module_hash: &[u8]) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let module: String = module_hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(format!("{module}-{:016x}.cwasm", hasher.finish()))
    }

    /// The module `engine` compiled from `wasm` earlier, if its entry checks out.
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8]) -> Option<Module> {
        let module_hash = Sha256::digest(wasm);
        let path = self.entry(engine, &module_hash);
        let bytes = std::fs::read(&path).ok()?;
        let checked = bytes.len() > HEADER
            && bytes.starts_with(MAGIC)
            && bytes[MAGIC.len()..MAGIC.len() + 32] == module_hash[..]
            && bytes[MAGIC.len() + 32..HEADER] == Sha256::digest(&bytes[HEADER..])[..];
        let module = if checked {
            // SAFETY: wasmtime requires bytes that `Module::serialize` produced with a compatible
            // engine. These are: the artifact's own sha256, written with it by `store` below,
            // matches, so it is the bytes `serialize` returned; and wasmtime checks the engine's
            // version and configuration itself, refusing (an error) bytes of another.
            #[allow(unsafe_code)]
            unsafe {
                Module::deserialize(engine, &bytes[HEADER..]).ok()
            }
        } else {
            None
        };
        if module.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        module
    }

    /// Keeps `module`, compiled from `wasm`. A failure to write leaves no entry (the next process
    /// compiles again), so it is not an error.
    pub(crate) fn store(&self, engine: &Engine, wasm: &[u8], module: &Module) {
        let Ok(artifact) = module.serialize() else {
            return;
        };
        let module_hash = Sha256::digest(wasm);
        let mut bytes = Vec::with_capacity(HEADER + artifact.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&module_hash);
        bytes.extend_from_slice(&Sha256::digest(&artifact));
        bytes.extend_from_slice(&artifact);
        let path = self.entry(engine, &module_hash);
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&partial, &bytes))
            .and_then(|()| std::fs::rename(&partial, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        self.prune();
    }

    /// Removes all but the [`KEPT`] most recently written entries.
    fn prune(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = dir
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let written = std::fs::metadata(&path).ok()?.modified().ok()?;
                (path.extension()? == "cwasm").then_some((written, path))
            })
            .collect();
        entries.sort_by_key(|(written, _)| std::cmp::Reverse(*written));
        for (_, path) in entries.into_iter().skip(KEPT) {
            let _ = std::fs::remove_file(path);
        }
    }
}
