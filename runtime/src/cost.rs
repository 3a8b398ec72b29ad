//! The cost model: what an instruction costs, and the per-message limits.
//!
//! Every cost here is the replica's, read in `dfinity/ic` (see [`REPLICA`] for the files and
//! commits); the tests pin each one. The replica instruments the canister module itself; we get
//! the same counts from wasmtime fuel:
//!
//! - per wasm operator: [`operator_cost`] loads the replica's `instruction_to_cost` for wasm32
//!   canisters into `wasmtime::Config::operator_cost`, and the per-byte (per-element) charge of
//!   bulk memory and table operations into its `variable` costs. wasmtime's costs are `u8`s: the
//!   four operators that cost more ([`TOP_UPS`]: `memory.grow`, `table.grow`, `data.drop`,
//!   `elem.drop`, 300 each) are charged the rest by code the runtime inserts before each of them
//!   (`top_up.rs`);
//! - per System API call: a fixed overhead plus a per-byte cost, charged from inside each host
//!   function ([`SystemApiCost`]);
//! - per newly dirtied 4 KiB stable-memory page in a message: [`STABLE_DIRTY_PAGE`].
//!
//! wasmtime charges 1 on entering every wasm function, as the replica's instrumentation does.
//! The instruction count of a message is fuel spent + host charges + top-ups. Counts are
//! deterministic: the same module, state and input always give the same number.
//!
//! A message has no fixed instruction overhead: the scheduler's `instruction_overhead_per_execution`
//! and `_per_canister` count against the round's budget, not the message's count.
//!
//! Not modelled: the replica's compilation charge of an `install_code` (6,000 instructions per
//! instruction of the instrumented module), and costs of wasm64 (memory64) canisters, whose loads
//! and stores cost 2: canisters here are wasm32.

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

/// Where every cost in this file was read: `dfinity/ic`, file at commit. The store this was read
/// from (2026-12) keeps each file at the commits it changed in, so the files are named one by one;
/// each is the newest copy stored, and the operator table is the same in the later
/// `wirm`-based `instrumentation.rs`.
pub const REPLICA: &[(&str, &str)] = &[
    (
        "rs/embedders/src/wasm_utils/instrumentation.rs (instruction_to_cost, injections)",
        "002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe",
    ),
    (
        "rs/embedders/src/wasmtime_embedder/linker.rs (what each ic0 function charges)",
        "0048d8c4f88100022f8d9c65bafae7755f45cd6e",
    ),
    (
        "rs/embedders/src/wasm_utils/system_api_replacements.rs (wasm-native stable memory)",
        "0c3226cfc2aee4dab2ae34297ef637f6bc223418",
    ),
];

/// The replica's cost of `memory.grow`, `table.grow`, `data.drop` and `elem.drop`: more than a
/// wasmtime cost table holds (`u8`).
pub const GROW_OR_DROP: u64 = 300;
/// What the wasmtime table charges for each of them (its most).
const GROW_OR_DROP_IN_TABLE: u8 = u8::MAX;
/// What the counter bump `top_up.rs` inserts before each of them costs in [`operator_cost`]'s
/// table: `global.get` 2, `i64.const` 1, `i64.add` 1, `global.set` 2.
pub const TOP_UP_BUMP: u64 = 6;
/// What each bump adds to the top-up counter: table + bump + top-up = [`GROW_OR_DROP`].
pub const TOP_UP: u64 = GROW_OR_DROP - GROW_OR_DROP_IN_TABLE as u64 - TOP_UP_BUMP;

/// Extra cost of every 4 KiB stable-memory page a message writes for the first time (the
/// replica's `DEFAULT_DIRTY_PAGE_OVERHEAD` of application subnets, `rs/config/src/subnet_config.rs`).
pub const STABLE_DIRTY_PAGE: u64 = 1_000;

/// The replica's per-operator costs for wasm32 canisters (`instruction_to_cost` with
/// `WasmMemoryType::Wasm32`), as a wasmtime fuel table.
///
/// Everything not set here costs 1 (the replica's default), except `block`, `loop`, `else` and
/// `end` (0), as wasmtime's default table has them. Bulk memory and table operations cost 100
/// plus 1 per byte or element (the replica charges the size operand before the operation);
/// `memory.grow` and `table.grow` have no per-page or per-element charge.
pub fn operator_cost() -> OperatorCost {
    let mut c = OperatorCost::new();
    // wasmtime's default makes these free; the replica charges 1.
    c.Nop = 1;
    c.Drop = 1;
    c.Unreachable = 1;
    c.Return = 1;
    // Control.
    c.If = 2;
    c.Br = 2;
    c.BrIf = 2;
    c.BrTable = 2;
    c.Call = 5;
    c.CallIndirect = 10;
    c.ReturnCall = 3;
    c.ReturnCallIndirect = 60;
    // Integer division.
    c.I32DivS = 10;
    c.I32DivU = 10;
    c.I32RemS = 10;
    c.I32RemU = 10;
    c.I64DivS = 10;
    c.I64DivU = 10;
    c.I64RemS = 10;
    c.I64RemU = 10;
    // Floats.
    for cost in [
        &mut c.F32Add,
        &mut c.F32Sub,
        &mut c.F32Mul,
        &mut c.F32Ceil,
        &mut c.F32Floor,
        &mut c.F32Trunc,
        &mut c.F32Nearest,
        &mut c.F64Add,
        &mut c.F64Sub,
        &mut c.F64Mul,
        &mut c.F64Ceil,
        &mut c.F64Floor,
        &mut c.F64Trunc,
        &mut c.F64Nearest,
        &mut c.F32Copysign,
    ] {
        *cost = 2;
    }
    c.F32Div = 3;
    c.F64Div = 5;
    c.F32Min = 18;
    c.F32Max = 18;
    c.F64Min = 18;
    c.F64Max = 18;
    c.F64Copysign = 3;
    c.F32Sqrt = 5;
    c.F64Sqrt = 8;
    for cost in [
        &mut c.F32Eq,
        &mut c.F32Ne,
        &mut c.F32Lt,
        &mut c.F32Gt,
        &mut c.F32Le,
        &mut c.F32Ge,
        &mut c.F64Eq,
        &mut c.F64Ne,
        &mut c.F64Lt,
        &mut c.F64Gt,
        &mut c.F64Le,
        &mut c.F64Ge,
        &mut c.F32ConvertI32S,
        &mut c.F32ConvertI64S,
        &mut c.F64ConvertI32S,
        &mut c.F64ConvertI64S,
    ] {
        *cost = 3;
    }
    c.F32ConvertI32U = 16;
    c.F32ConvertI64U = 16;
    c.F64ConvertI32U = 16;
    c.F64ConvertI64U = 16;
    for cost in [
        &mut c.I32TruncF32S,
        &mut c.I32TruncF32U,
        &mut c.I32TruncF64S,
        &mut c.I32TruncF64U,
        &mut c.I64TruncF32S,
        &mut c.I64TruncF32U,
        &mut c.I64TruncF64S,
        &mut c.I64TruncF64U,
        &mut c.I32TruncSatF32S,
        &mut c.I32TruncSatF32U,
        &mut c.I32TruncSatF64S,
        &mut c.I32TruncSatF64U,
        &mut c.I64TruncSatF32S,
        &mut c.I64TruncSatF32U,
        &mut c.I64TruncSatF64S,
        &mut c.I64TruncSatF64U,
    ] {
        *cost = 20;
    }
    // Globals, tables, memory, references.
    c.GlobalGet = 2;
    c.GlobalSet = 2;
    c.TableGet = 5;
    c.TableSet = 5;
    c.MemorySize = 20;
    c.TableSize = 100;
    c.MemoryGrow = GROW_OR_DROP_IN_TABLE;
    c.TableGrow = GROW_OR_DROP_IN_TABLE;
    c.DataDrop = GROW_OR_DROP_IN_TABLE;
    c.ElemDrop = GROW_OR_DROP_IN_TABLE;
    c.MemoryFill = 100;
    c.MemoryCopy = 100;
    c.MemoryInit = 100;
    c.TableFill = 100;
    c.TableCopy = 100;
    c.TableInit = 100;
    c.RefIsNull = 5;
    c.RefFunc = 130;
    // SIMD (the rest cost 1).
    for (cost, value) in [
        (&mut c.I8x16Shuffle, 3),
        (&mut c.I8x16LtU, 2),
        (&mut c.I8x16GtU, 2),
        (&mut c.I16x8LtU, 2),
        (&mut c.I16x8GtU, 2),
        (&mut c.I32x4LtU, 2),
        (&mut c.I32x4GtU, 2),
        (&mut c.I8x16Popcnt, 3),
        (&mut c.I8x16Shl, 3),
        (&mut c.I8x16ShrS, 3),
        (&mut c.I8x16ShrU, 2),
        (&mut c.I16x8ExtAddPairwiseI8x16U, 2),
        (&mut c.I16x8Shl, 2),
        (&mut c.I16x8ShrS, 2),
        (&mut c.I16x8ShrU, 2),
        (&mut c.I16x8ExtMulHighI8x16S, 2),
        (&mut c.I16x8ExtMulHighI8x16U, 2),
        (&mut c.I32x4ExtAddPairwiseI16x8U, 3),
        (&mut c.I32x4Shl, 2),
        (&mut c.I32x4ShrS, 2),
        (&mut c.I32x4ShrU, 2),
        (&mut c.I32x4Mul, 2),
        (&mut c.I32x4ExtMulLowI16x8S, 2),
        (&mut c.I32x4ExtMulHighI16x8S, 2),
        (&mut c.I32x4ExtMulLowI16x8U, 2),
        (&mut c.I32x4ExtMulHighI16x8U, 2),
        (&mut c.I64x2Shl, 2),
        (&mut c.I64x2ShrS, 3),
        (&mut c.I64x2ShrU, 2),
        (&mut c.I64x2Mul, 4),
        (&mut c.F32x4Ceil, 2),
        (&mut c.F32x4Floor, 2),
        (&mut c.F32x4Trunc, 2),
        (&mut c.F32x4Nearest, 2),
        (&mut c.F32x4Abs, 2),
        (&mut c.F32x4Neg, 2),
        (&mut c.F32x4Sqrt, 5),
        (&mut c.F32x4Add, 2),
        (&mut c.F32x4Sub, 2),
        (&mut c.F32x4Mul, 2),
        (&mut c.F32x4Div, 10),
        (&mut c.F32x4Min, 4),
        (&mut c.F32x4Max, 4),
        (&mut c.F64x2Ceil, 2),
        (&mut c.F64x2Floor, 2),
        (&mut c.F64x2Trunc, 2),
        (&mut c.F64x2Nearest, 2),
        (&mut c.F64x2Abs, 2),
        (&mut c.F64x2Neg, 2),
        (&mut c.F64x2Sqrt, 14),
        (&mut c.F64x2Add, 2),
        (&mut c.F64x2Sub, 2),
        (&mut c.F64x2Mul, 2),
        (&mut c.F64x2Div, 12),
        (&mut c.F64x2Min, 4),
        (&mut c.F64x2Max, 5),
        (&mut c.I32x4TruncSatF32x4S, 2),
        (&mut c.I32x4TruncSatF32x4U, 4),
        (&mut c.F32x4ConvertI32x4U, 4),
        (&mut c.I32x4TruncSatF64x2SZero, 2),
        (&mut c.I32x4TruncSatF64x2UZero, 3),
    ] {
        *cost = value;
    }
    c.variable.memory_copy_per_byte = 1;
    c.variable.memory_fill_per_byte = 1;
    c.variable.memory_init_per_byte = 1;
    c.variable.memory_grow_per_page = 0;
    c.variable.table_copy_per_element = 1;
    c.variable.table_fill_per_element = 1;
    c.variable.table_init_per_element = 1;
    c.variable.table_grow_per_element = 0;
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

/// Most System API calls (`msg_arg_data_size`, `time`, `msg_reply`, ...): 500, plus 1 per byte
/// for those that copy bytes (`*_copy`, `certified_data_set`).
pub const API_DEFAULT: SystemApiCost = api(500, 1);
/// Calls that write a 16-byte amount (`canister_cycle_balance128`, `msg_cycles_*128`): 500, the
/// bytes free.
pub const API_CYCLES128: SystemApiCost = api(500, 0);
/// `ic0.performance_counter`.
pub const API_PERFORMANCE_COUNTER: SystemApiCost = api(200, 0);
/// `ic0.stable64_read/write` and `ic0.stable_read/write`: the replica implements stable memory
/// in wasm ("wasm-native stable memory"), whose code charges 20 plus 1 per byte (and
/// [`STABLE_DIRTY_PAGE`] for writes).
pub const API_STABLE_READ_WRITE: SystemApiCost = api(20, 1);
/// `ic0.stable64_size`, `ic0.stable_size`: wasm-native code that charges nothing.
pub const API_STABLE_SIZE: SystemApiCost = api(0, 0);
/// `ic0.stable64_grow`, `ic0.stable_grow`: what the wasm-native code's grow check charges.
pub const API_STABLE_GROW: SystemApiCost = api(100, 0);
/// `ic0.msg_reply_data_append` and `ic0.msg_reject`: 500 plus 50 per byte (the replica's
/// `BYTE_TRANSMISSION_COST_FACTOR`).
pub const API_REPLY_BYTES: SystemApiCost = api(500, 50);
/// `ic0.debug_print`: 100 plus 1 per byte of [`log_bytes`] (an application subnet rate-limits
/// debug prints, so the message goes to the canister log only).
pub const API_DEBUG_PRINT: SystemApiCost = api(100, 1);
/// `ic0.trap`: 500 plus 1 per byte of the message and of its [`log_bytes`].
pub const API_TRAP: SystemApiCost = api(500, 1);
/// `ic0.is_controller`: 1,000 plus 1 per byte of the principal.
pub const API_IS_CONTROLLER: SystemApiCost = api(1_000, 1);

/// The canister log's capacity: the replica's default of 4 KiB.
pub const CANISTER_LOG_CAPACITY: u64 = 4 * 1024;
/// Bytes the replica charges for adding a `len`-byte message to the canister log: twice the bytes
/// kept plus 50 per byte sent, each at most the log's capacity. This runtime keeps no canister
/// log, so the log is taken to have room (the charge of an empty log, the most it can be).
pub fn log_bytes(len: u64) -> u64 {
    let kept = len.min(CANISTER_LOG_CAPACITY);
    2 * kept + 50 * kept
}

#[cfg(test)]
mod tests;
