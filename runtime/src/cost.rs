//! The cost model: what an instruction costs, and the per-message limits.
//!
//! Every number here is an **estimate of the replica's**, taken from `shared/notes/ic-platform.md`
//! (gathered from the replica's instrumentation and System API cost tables). The replica instruments
//! the canister module itself; we get the same effect from wasmtime fuel:
//!
//! - per wasm operator: [`operator_cost`] loads the replica's per-operator costs into
//!   `wasmtime::Config::operator_cost` (costs are `u8` there, so `memory.grow`'s 300 is charged as
//!   255 by wasmtime plus [`MEMORY_GROW_TOP_UP`] host-side);
//! - per System API call: a fixed overhead plus a per-byte cost, charged from inside each host
//!   function ([`SystemApiCost`]);
//! - per newly dirtied 4 KiB stable-memory page in a message: [`STABLE_DIRTY_PAGE`].
//!
//! wasmtime also charges 1 on entering every wasm function (so a call to an empty function is 6).
//!
//! The instruction count of a message is fuel spent + host charges + `memory.grow` top-ups.
//! Counts are deterministic: the same module, state and input always give the same number.

use wasmtime::OperatorCost;

/// Instruction limit of an update call or timer (the replica spreads it over rounds).
pub const UPDATE_LIMIT: u64 = 40_000_000_000;
/// Instruction limit of a query.
pub const QUERY_LIMIT: u64 = 5_000_000_000;
/// Instruction limit of an `install_code`: `canister_init`, or `canister_pre_upgrade` and
/// `canister_post_upgrade` together.
pub const INSTALL_LIMIT: u64 = 300_000_000_000;
/// Instruction limit of `canister_inspect_message`: the replica's
/// `MAX_INSTRUCTIONS_FOR_MESSAGE_ACCEPTANCE_CALLS` (`max_instructions_for_message_acceptance_calls`
/// in `rs/config/src/execution_environment.rs`).
pub const INSPECT_MESSAGE_LIMIT: u64 = 200_000_000;

/// Largest ingress message payload (the argument of an update, query or install).
pub const MAX_INGRESS_PAYLOAD: usize = 2 * 1024 * 1024;
/// Largest reply (or reject message) of an update.
pub const MAX_UPDATE_REPLY: usize = 2 * 1024 * 1024;
/// Largest reply (or reject message) of a query.
pub const MAX_QUERY_REPLY: usize = 3 * 1024 * 1024;

/// Wasm page size (heap and `stable64_*` sizes are counted in these).
pub const WASM_PAGE: u64 = 64 * 1024;
/// Largest stable memory, in wasm pages (500 GiB).
pub const MAX_STABLE_PAGES: u64 = 500 * 1024 * 1024 * 1024 / WASM_PAGE;
/// Most stable memory one message may dirty (2 GiB).
pub const MAX_STABLE_DIRTY_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Largest wasm32 heap (4 GiB).
pub const MAX_HEAP_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Replica cost of `memory.grow`.
pub const MEMORY_GROW: u64 = 300;
/// What wasmtime charges for `memory.grow` (the table holds `u8`s).
const MEMORY_GROW_IN_TABLE: u8 = 255;
/// Charged host-side for every executed `memory.grow`, so the total is [`MEMORY_GROW`].
pub const MEMORY_GROW_TOP_UP: u64 = MEMORY_GROW - MEMORY_GROW_IN_TABLE as u64;

/// Extra cost of every 4 KiB stable-memory page a message writes for the first time.
pub const STABLE_DIRTY_PAGE: u64 = 1_000;

/// The replica's per-operator costs, as a wasmtime fuel table.
///
/// Most operators cost 1; `global.get/set` 2; branches 2; integer div/rem 10; `call` 5;
/// `call_indirect` 10; `memory.grow` 300 (see [`MEMORY_GROW_TOP_UP`]); bulk memory and table
/// operations 100 plus 1 per byte or element. Structural operators (`block`, `loop`, `end`, `else`,
/// `nop`, `drop`) are free, as wasmtime's default has them.
pub fn operator_cost() -> OperatorCost {
    let mut c = OperatorCost::new();
    c.GlobalGet = 2;
    c.GlobalSet = 2;
    c.Br = 2;
    c.BrIf = 2;
    c.BrTable = 2;
    c.If = 2;
    c.Return = 2;
    c.I32DivS = 10;
    c.I32DivU = 10;
    c.I32RemS = 10;
    c.I32RemU = 10;
    c.I64DivS = 10;
    c.I64DivU = 10;
    c.I64RemS = 10;
    c.I64RemU = 10;
    c.Call = 5;
    c.ReturnCall = 5;
    c.CallIndirect = 10;
    c.ReturnCallIndirect = 10;
    c.MemoryGrow = MEMORY_GROW_IN_TABLE;
    c.MemoryCopy = 100;
    c.MemoryFill = 100;
    c.MemoryInit = 100;
    c.TableCopy = 100;
    c.TableFill = 100;
    c.TableInit = 100;
    c.variable.memory_copy_per_byte = 1;
    c.variable.memory_fill_per_byte = 1;
    c.variable.memory_init_per_byte = 1;
    c.variable.memory_grow_per_page = 0;
    c
}

/// Cost of one System API call: `overhead + per_byte * bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemApiCost {
    /// Fixed cost of the call.
    pub overhead: u64,
    /// Cost per byte the call copies.
    pub per_byte: u64,
}

impl SystemApiCost {
    /// Total for a call that copies `bytes` bytes.
    pub fn of(self, bytes: u64) -> u64 {
        self.overhead
            .saturating_add(self.per_byte.saturating_mul(bytes))
    }
}

const fn api(overhead: u64, per_byte: u64) -> SystemApiCost {
    SystemApiCost { overhead, per_byte }
}

/// Most System API calls: 500 plus 1 per byte copied.
pub const API_DEFAULT: SystemApiCost = api(500, 1);
/// `ic0.performance_counter`.
pub const API_PERFORMANCE_COUNTER: SystemApiCost = api(200, 0);
/// `ic0.stable64_read`, `ic0.stable64_write` (and the 32-bit ones): 20 plus 1 per byte.
pub const API_STABLE_READ_WRITE: SystemApiCost = api(20, 1);
/// `ic0.stable64_size`.
pub const API_STABLE_SIZE: SystemApiCost = api(20, 0);
/// `ic0.stable64_grow`.
pub const API_STABLE_GROW: SystemApiCost = api(100, 0);
/// `ic0.msg_reply_data_append` and `ic0.msg_reject`: 500 plus about 50 per byte.
pub const API_REPLY_BYTES: SystemApiCost = api(500, 50);
/// `ic0.debug_print`: 100 plus 1 per byte.
pub const API_DEBUG_PRINT: SystemApiCost = api(100, 1);
/// `ic0.is_controller`.
pub const API_IS_CONTROLLER: SystemApiCost = api(1_000, 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_grow_totals_the_replica_cost() {
        assert_eq!(
            u64::from(operator_cost().MemoryGrow) + MEMORY_GROW_TOP_UP,
            MEMORY_GROW
        );
    }
}
