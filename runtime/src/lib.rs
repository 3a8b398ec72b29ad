//! A local Internet Computer canister runtime on wasmtime.
//!
//! Runs a real canister `.wasm` with the `ic0` System API and IC semantics: one reply per message,
//! reject, trap rollback of heap and stable memory, queries that never commit, install and upgrade
//! (stable memory kept, heap wiped), payload and reply size limits, per-message instruction limits,
//! time that advances, callers as principals (raw bytes). Instruction counts are estimates of the
//! replica's, see [`cost`]. A canister saves to and loads from a directory ([`Canister::save`]).
//!
//! **Cycles.** A canister has a cycle balance ([`Canister::cycle_balance`], [`CYCLE_BALANCE`] at
//! install unless [`Canister::install_with_cycles_on`] says otherwise,
//! [`Canister::deposit_cycles`]) that messages spend as on a 13-node application subnet, with the
//! replica's fees ([`cycles`]): an ingress update pays its induction fee, and updates, timers,
//! installs and upgrades prepay their execution for their instruction limit and get the unused part
//! back, trap or not; query calls are free. A message the balance cannot pay above the freezing
//! threshold is refused with [`RuntimeError::OutOfCycles`]. [`Execution::cycles`] is what a
//! message paid; `ic0.canister_cycle_balance128` shows the balance after the message's fees.
//!
//! **Ingress filtering.** [`Canister::update`] is an ingress message: if the canister exports
//! `canister_inspect_message`, that runs first (free, under 200 M instructions, nothing it does
//! kept) and must call `ic0.accept_message`, or the update is refused with
//! [`RuntimeError::NotAccepted`] before it runs or pays. [`Canister::update_from_canister`] is an
//! inter-canister call: no inspect_message, no ingress fee. Query calls are never inspected.
//!
//! **Replicated queries.** An update call (ingress or from a canister) of a method the canister
//! exports only as `canister_query` runs that query replicated, as the IC does: inspected and
//! charged like an update (with a query's 5 B instruction limit), `ic0.in_replicated_execution`
//! 1, and nothing it does kept but the cycles it paid (see [`Canister::update`]).
//!
//! **Memory that runs out.** [`Canister::set_stable_memory_limit`] caps stable memory as a subnet
//! out of memory (or a memory allocation) does on the replica: `stable64_grow` and `stable_grow`
//! return -1 past the cap.
//!
//! **Stable memory images.** [`Canister::set_stable_memory`] replaces stable memory with bytes
//! built elsewhere (a test builds a large state natively with the canister's own code), as
//! loading a snapshot would; the heap is kept, so an upgrade should follow.
//! [`Canister::stable_memory`] and [`Canister::stable_memory_pages`] read it back whole (to
//! compare two canisters' stable memories, or keep one as a golden snapshot).
//!
//! Compiling a large canister takes seconds: share one [`Runtime`] ([`Canister::install_on`],
//! [`Canister::load_on`]) to compile each module once per process, and give it a directory
//! ([`Runtime::with_code_cache`]) to compile it once across processes.
//!
//! ```text
//! Canister ── code (module, rewritten so every mutable global is exported)
//!          ├─ heap (linear memory bytes + mutable globals)      committed state
//!          ├─ stable memory (sparse 4 KiB pages)                committed state
//!          └─ system state (time, controllers, certified data, timer, version, cycles)
//! update:    [inspect_message, rolled back] → charge fees →
//!            instance holding the heap; stable overlay (copy-on-write) → run → commit or drop
//!            (a replicated query always drops) → refund unused execution cycles
//! ```
//!
//! The instance is kept between messages when the module can change nothing of it but memory
//! and globals: a message then costs one copy of the heap (the instance's over the committed
//! copy on commit, the other way on a rollback), not an instantiation and two copies.

mod canister;
mod code_cache;
pub mod cost;
pub mod cycles;
mod error;
mod image;
mod persist;
pub mod profile;
mod stable;
mod system_api;
mod top_up;

pub use canister::{
    CANISTER_ID, CANISTER_ID_TEXT, CYCLE_BALANCE, Canister, GENESIS_TIME, MAX_MODULE_BYTES,
    Runtime, TIME_STEP, decompress, unsupported_imports,
};
pub use error::{CANISTER_REJECT, Execution, LoadError, Outcome, RuntimeError};
pub use image::STABLE_PAGE_BYTES;
