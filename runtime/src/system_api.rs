//! The `ic0` System API: one host function per import, with IC semantics and costs.
//!
//! Each host function charges its cost (see [`crate::cost`]) before doing its work, checks that it
//! may be called in the current [`Context`], and traps (returns an error wasmtime turns into a trap)
//! on any misuse, as the replica does. Addresses are wasm32 (`i32`), stable-memory offsets `i64`.
//! Every function this runtime provides is defined in [`linker`]; nothing else is.
//!
//! Which function is available in which context follows the replica's `SystemApiImpl`
//! (`rs/embedders/src/wasmtime_embedder/system_api.rs` in `dfinity/ic`, read at commit
//! `0180e76cfba8893e84ef08386bf95d1d06449801`, where each `ic0_*` matches on `ApiType`); the
//! trap text is its `"\"<function>\" cannot be executed in <mode> mode"`.

use wasmtime::{AsContextMut, Caller, Engine, Global, Linker, Memory, ResourceLimiter, Val};

use crate::cost::{self, SystemApiCost};
use crate::error::CANISTER_REJECT;
use crate::stable::Overlay;

/// Which entry point a message runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// `canister_init`.
    Init,
    /// `canister_pre_upgrade`.
    PreUpgrade,
    /// `canister_post_upgrade`.
    PostUpgrade,
    /// `canister_update <name>`.
    Update,
    /// `canister_query <name>`, non-replicated (a query call).
    Query,
    /// `canister_query <name>` called as an update (an ingress update call, or a call from
    /// another canister): a replicated query. It runs replicated
    /// (`ic0.in_replicated_execution` is 1) and may use what the replica's
    /// `ApiType::ReplicatedQuery` allows: the argument, caller, replies of up to 2 MiB (an
    /// update's limit, not a query's 3 MiB), the message's cycles, `msg_deadline`, stable memory;
    /// not `global_timer_set` nor `certified_data_set` (nor calls, which this runtime does not
    /// provide), and not what only `canister_inspect_message` may call. See
    /// [`crate::Canister::update`] for what it is charged and what it keeps.
    ReplicatedQuery,
    /// `canister_global_timer`.
    Timer,
    /// `canister_inspect_message`: an ingress update asks to be accepted (non-replicated, never
    /// committed).
    InspectMessage,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::Init => "init",
            Context::PreUpgrade => "pre_upgrade",
            Context::PostUpgrade => "post_upgrade",
            Context::Update => "update",
            Context::Query => "query",
            Context::ReplicatedQuery => "replicated query",
            Context::Timer => "global timer",
            Context::InspectMessage => "inspect message",
        }
    }
}

/// Canister state outside the heap that messages read or change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemState {
    /// Current time, nanoseconds since the Unix epoch.
    pub time: u64,
    /// Controllers' principals (raw bytes).
    pub controllers: Vec<Vec<u8>>,
    /// Last `certified_data_set` value.
    pub certified_data: Vec<u8>,
    /// Timer deadline (0 = none).
    pub global_timer: u64,
    /// Canister version.
    pub canister_version: u64,
    /// Cycle balance. During a message: what the canister has after the message's fees were
    /// charged (ingress induction, prepaid execution), as `canister_cycle_balance128` reports it.
    pub cycles: u128,
    /// The most stable memory the canister may have, in bytes (`None`: only the 500 GiB limit),
    /// as a subnet out of memory or a memory allocation limits it: `stable64_grow` and
    /// `stable_grow` return -1 past it. Messages read it, never change it.
    pub stable_memory_limit: Option<u64>,
}

/// Why a host function stopped the canister.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTrap {
    /// A reject-text trap (explicit or a System API misuse).
    Trap(String),
    /// Out of instructions.
    InstructionLimit,
    /// Reply or reject message past the limit.
    ReplyTooLarge {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
}

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for HostTrap {}

/// Caps the heap at 4 GiB (and tables at 10 M elements).
#[derive(Debug, Default)]
pub struct HeapCap;

impl ResourceLimiter for HeapCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired as u64 <= cost::MAX_HEAP_BYTES)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000_000)
    }
}

/// Everything one message sees and produces; the data of its wasmtime `Store`.
#[derive(Debug)]
pub struct MessageState {
    /// Entry point.
    pub context: Context,
    /// Method name (empty for init and upgrade hooks).
    pub method: String,
    /// Argument bytes.
    pub arg: Vec<u8>,
    /// Caller principal.
    pub caller: Vec<u8>,
    /// The canister's own principal.
    pub self_id: Vec<u8>,
    /// The freezing threshold when the message started (for `canister_liquid_cycle_balance128`).
    pub freezing_threshold: u128,
    /// Whether `canister_inspect_message` called `ic0.accept_message`.
    pub accepted: bool,
    /// Time, controllers, certified data, timer, version (committed with the message).
    pub system: SystemState,
    /// Stable memory as this message sees it.
    pub stable: Overlay,
    /// The canister's exported memory, once instantiated.
    pub memory: Option<Memory>,
    /// Reply bytes appended so far.
    pub reply_data: Vec<u8>,
    /// Set once the message replied or rejected.
    pub outcome: Option<crate::Outcome>,
    /// Collected `debug_print` lines.
    pub debug_prints: Vec<String>,
    /// The fuel the message started with.
    pub fuel_start: u64,
    /// The instance's counter of instructions charged on top of fuel (see `top_up.rs`), zeroed
    /// when the message starts.
    pub top_up: Option<Global>,
    /// The heap cap.
    pub limiter: HeapCap,
    /// The per-function profile being recorded, on a profiling runtime.
    pub profile: Option<crate::profile::Recorder>,
}

impl MessageState {
    /// A fresh message over `stable`.
    pub fn new(context: Context, stable: Overlay, system: SystemState) -> Self {
        MessageState {
            context,
            method: String::new(),
            arg: Vec::new(),
            caller: Vec::new(),
            self_id: Vec::new(),
            freezing_threshold: 0,
            accepted: false,
            system,
            stable,
            memory: None,
            reply_data: Vec::new(),
            outcome: None,
            debug_prints: Vec::new(),
            fuel_start: 0,
            top_up: None,
            limiter: HeapCap,
            profile: None,
        }
    }

    fn reply_limit(&self) -> usize {
        if self.context == Context::Query {
            cost::MAX_QUERY_REPLY
        } else {
            cost::MAX_UPDATE_REPLY
        }
    }
}

type C<'a> = Caller<'a, MessageState>;
type R<T> = wasmtime::Result<T>;

fn trap(message: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(HostTrap::Trap(message.into()))
}

/// Instructions the message has used so far: fuel spent plus the top-up counter.
pub fn instructions_used(mut ctx: impl AsContextMut<Data = MessageState>) -> u64 {
    let mut ctx = ctx.as_context_mut();
    let fuel = ctx.get_fuel().unwrap_or(0);
    let top_up = match ctx.data().top_up.map(|g| g.get(&mut ctx)) {
        Some(Val::I64(n)) => n as u64,
        _ => 0,
    };
    ctx.data().fuel_start.saturating_sub(fuel) + top_up
}

fn charge(caller: &mut C<'_>, cost: SystemApiCost, bytes: u64) -> R<()> {
    let amount = cost.of(bytes);
    let fuel = caller.get_fuel()?;
    if fuel < amount {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(HostTrap::InstructionLimit));
    }
    caller.set_fuel(fuel - amount)
}

fn allow(caller: &C<'_>, api: &str, contexts: &[Context]) -> R<()> {
    let ctx = caller.data().context;
    if contexts.contains(&ctx) {
        Ok(())
    } else {
        Err(trap(format!(
            "\"{api}\" cannot be executed in {} mode",
            ctx.name()
        )))
    }
}

const WITH_ARG: &[Context] = &[
    Context::Init,
    Context::PostUpgrade,
    Context::Update,
    Context::Query,
    Context::ReplicatedQuery,
    Context::InspectMessage,
];
const REPLYING: &[Context] = &[Context::Update, Context::Query, Context::ReplicatedQuery];
/// Only `canister_inspect_message` (method name, accept_message).
const INSPECT: &[Context] = &[Context::InspectMessage];
/// Where a message can carry cycles: the replica allows `msg_cycles_*` in updates and in
/// replicated queries and callbacks, not in non-replicated queries, init, upgrade hooks, timers
/// or inspect_message.
const WITH_CYCLES: &[Context] = &[Context::Update, Context::ReplicatedQuery];
/// What may change the canister's system state (timer, certified data): not a query, replicated
/// or not (the replica refuses `global_timer_set` and `certified_data_set` in
/// `ApiType::ReplicatedQuery` too), nor inspect_message.
const NOT_QUERY: &[Context] = &[
    Context::Init,
    Context::PreUpgrade,
    Context::PostUpgrade,
    Context::Update,
    Context::Timer,
];

fn memory(caller: &C<'_>) -> R<Memory> {
    caller
        .data()
        .memory
        .ok_or_else(|| trap("the canister exports no memory"))
}

/// Copies `len` bytes at `src` out of the canister's memory.
fn read_heap(caller: &C<'_>, src: u32, len: u32) -> R<Vec<u8>> {
    let mem = memory(caller)?;
    let data = mem.data(caller);
    let (start, end) = (src as usize, src as usize + len as usize);
    data.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
        trap(format!(
            "heap out of bounds: {len} bytes at {src}, heap is {} bytes",
            data.len()
        ))
    })
}

/// `*_copy(dst, offset, size)`: copies `source[offset..offset+size]` into the heap at `dst`.
fn copy_out(
    caller: &mut C<'_>,
    api: &str,
    pick: fn(&MessageState) -> &[u8],
    dst: u32,
    offset: u32,
    size: u32,
) -> R<()> {
    charge(caller, cost::API_DEFAULT, u64::from(size))?;
    let mem = memory(caller)?;
    let (heap, state) = mem.data_and_store_mut(&mut *caller);
    let source = pick(state);
    let (from, to) = (offset as usize, offset as usize + size as usize);
    let Some(bytes) = source.get(from..to) else {
        return Err(trap(format!(
            "{api}: src={offset} + length={size} exceeds the slice size={}",
            source.len()
        )));
    };
    let (d0, d1) = (dst as usize, dst as usize + size as usize);
    let heap_len = heap.len();
    let Some(out) = heap.get_mut(d0..d1) else {
        return Err(trap(format!(
            "{api}: dst={dst} + length={size} exceeds the heap size={heap_len}"
        )));
    };
    out.copy_from_slice(bytes);
    Ok(())
}

fn write_u128(caller: &mut C<'_>, dst: u32, value: u128) -> R<()> {
    let mem = memory(caller)?;
    mem.write(&mut *caller, dst as usize, &value.to_le_bytes())
        .map_err(|_| trap(format!("heap out of bounds: 16 bytes at {dst}")))
}

fn reply_bytes(caller: &mut C<'_>, api: &str, bytes: usize) -> R<()> {
    allow(caller, api, REPLYING)?;
    if caller.data().outcome.is_some() {
        return Err(trap(format!("{api}: the call is already replied")));
    }
    let s = caller.data();
    let size = s.reply_data.len() + bytes;
    let limit = s.reply_limit();
    if size > limit {
        return Err(wasmtime::Error::new(HostTrap::ReplyTooLarge {
            size,
            limit,
        }));
    }
    Ok(())
}

/// Grows stable memory by `pages` wasm pages within the canister's stable memory limit and the
/// 500 GiB limit; returns the old size, or `None` (the canister sees -1) and grows nothing.
/// Growing by 0 asks for no memory: it succeeds even above the limit.
fn grow_stable(state: &mut MessageState, pages: u64) -> Option<u64> {
    if let Some(limit) = state.system.stable_memory_limit
        && pages > 0
    {
        let new = state.stable.size().checked_add(pages)?;
        if new.checked_mul(cost::WASM_PAGE)? > limit {
            return None;
        }
    }
    state.stable.grow(pages)
}

/// Copies stable memory `[offset, offset+size)` to the heap at `dst`.
fn stable_read(caller: &mut C<'_>, dst: u64, offset: u64, size: u64) -> R<()> {
    charge(caller, cost::API_STABLE_READ_WRITE, size)?;
    let mem = memory(caller)?;
    let (heap, state) = mem.data_and_store_mut(&mut *caller);
    let heap_len = heap.len();
    let out = usize::try_from(dst)
        .ok()
        .zip(usize::try_from(size).ok())
        .and_then(|(d, n)| heap.get_mut(d..d.checked_add(n)?))
        .ok_or_else(|| {
            trap(format!(
                "stable read: heap out of bounds: {size} bytes at {dst}, heap is {heap_len} bytes"
            ))
        })?;
    state
        .stable
        .read(offset, out)
        .map_err(|e| trap(e.to_string()))
}

/// Copies the heap `[src, src+size)` to stable memory at `offset`.
fn stable_write(caller: &mut C<'_>, offset: u64, src: u64, size: u64) -> R<()> {
    charge(caller, cost::API_STABLE_READ_WRITE, size)?;
    let (Ok(src), Ok(size)) = (u32::try_from(src), u32::try_from(size)) else {
        return Err(trap("stable write: heap out of bounds"));
    };
    let bytes = read_heap(caller, src, size)?;
    let newly = caller
        .data_mut()
        .stable
        .write(offset, &bytes)
        .map_err(|e| trap(e.to_string()))?;
    charge(
        caller,
        cost::SystemApiCost {
            overhead: 0,
            per_byte: cost::STABLE_DIRTY_PAGE,
        },
        newly,
    )
}

/// Builds the linker with every `ic0` function this runtime provides.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<MessageState>> {
    let mut l = Linker::new(engine);
    ic0(&mut l)?;
    Ok(l)
}

/// [`linker`] plus the probes of a profiled module (`profile.rs`).
pub fn profiling_linker(engine: &Engine) -> wasmtime::Result<Linker<MessageState>> {
    let mut l = linker(engine)?;
    l.func_wrap(
        crate::profile::MODULE,
        "enter",
        |mut c: C<'_>, func: i32| {
            let used = instructions_used(&mut c);
            if let Some(profile) = c.data_mut().profile.as_mut() {
                profile.enter(func as u32, used);
            }
        },
    )?;
    l.func_wrap(crate::profile::MODULE, "exit", |mut c: C<'_>, func: i32| {
        let used = instructions_used(&mut c);
        if let Some(profile) = c.data_mut().profile.as_mut() {
            profile.exit(func as u32, used);
        }
    })?;
    Ok(l)
}

fn ic0(l: &mut Linker<MessageState>) -> wasmtime::Result<()> {
    // Message arguments and caller.
    l.func_wrap("ic0", "msg_arg_data_size", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        allow(&c, "ic0_msg_arg_data_size", WITH_ARG)?;
        Ok(c.data().arg.len() as i32)
    })?;
    l.func_wrap(
        "ic0",
        "msg_arg_data_copy",
        |mut c: C<'_>, dst: i32, off: i32, size: i32| -> R<()> {
            allow(&c, "ic0_msg_arg_data_copy", WITH_ARG)?;
            copy_out(
                &mut c,
                "ic0_msg_arg_data_copy",
                |s| &s.arg,
                dst as u32,
                off as u32,
                size as u32,
            )
        },
    )?;
    l.func_wrap("ic0", "msg_caller_size", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        Ok(c.data().caller.len() as i32)
    })?;
    l.func_wrap(
        "ic0",
        "msg_caller_copy",
        |mut c: C<'_>, dst: i32, off: i32, size: i32| -> R<()> {
            copy_out(
                &mut c,
                "ic0_msg_caller_copy",
                |s| &s.caller,
                dst as u32,
                off as u32,
                size as u32,
            )
        },
    )?;
    l.func_wrap("ic0", "msg_method_name_size", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        allow(&c, "ic0_msg_method_name_size", INSPECT)?;
        Ok(c.data().method.len() as i32)
    })?;
    l.func_wrap(
        "ic0",
        "msg_method_name_copy",
        |mut c: C<'_>, dst: i32, off: i32, size: i32| -> R<()> {
            allow(&c, "ic0_msg_method_name_copy", INSPECT)?;
            copy_out(
                &mut c,
                "ic0_msg_method_name_copy",
                |s| s.method.as_bytes(),
                dst as u32,
                off as u32,
                size as u32,
            )
        },
    )?;
    l.func_wrap("ic0", "accept_message", |mut c: C<'_>| -> R<()> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        allow(&c, "ic0_accept_message", INSPECT)?;
        if std::mem::replace(&mut c.data_mut().accepted, true) {
            return Err(trap("ic0.accept_message: the function was already called."));
        }
        Ok(())
    })?;
    // Replies.
    l.func_wrap(
        "ic0",
        "msg_reply_data_append",
        |mut c: C<'_>, src: i32, size: i32| -> R<()> {
            charge(&mut c, cost::API_REPLY_BYTES, u64::from(size as u32))?;
            reply_bytes(&mut c, "ic0_msg_reply_data_append", size as u32 as usize)?;
            let bytes = read_heap(&c, src as u32, size as u32)?;
            c.data_mut().reply_data.extend_from_slice(&bytes);
            Ok(())
        },
    )?;
    l.func_wrap("ic0", "msg_reply", |mut c: C<'_>| -> R<()> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        reply_bytes(&mut c, "ic0_msg_reply", 0)?;
        let s = c.data_mut();
        s.outcome = Some(crate::Outcome::Reply(std::mem::take(&mut s.reply_data)));
        Ok(())
    })?;
    l.func_wrap(
        "ic0",
        "msg_reject",
        |mut c: C<'_>, src: i32, size: i32| -> R<()> {
            charge(&mut c, cost::API_REPLY_BYTES, u64::from(size as u32))?;
            allow(&c, "ic0_msg_reject", REPLYING)?;
            if c.data().outcome.is_some() {
                return Err(trap("ic0_msg_reject: the call is already replied"));
            }
            let limit = c.data().reply_limit();
            if size as u32 as usize > limit {
                return Err(wasmtime::Error::new(HostTrap::ReplyTooLarge {
                    size: size as u32 as usize,
                    limit,
                }));
            }
            let bytes = read_heap(&c, src as u32, size as u32)?;
            c.data_mut().outcome = Some(crate::Outcome::Reject {
                code: CANISTER_REJECT,
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
            Ok(())
        },
    )?;
    l.func_wrap("ic0", "msg_reject_code", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        Err(trap(
            "\"ic0_msg_reject_code\" cannot be executed outside a reply or reject callback",
        ))
    })?;
    l.func_wrap("ic0", "msg_reject_msg_size", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        Err(trap(
            "\"ic0_msg_reject_msg_size\" cannot be executed outside a reject callback",
        ))
    })?;
    l.func_wrap(
        "ic0",
        "msg_reject_msg_copy",
        |mut c: C<'_>, _dst: i32, _off: i32, _size: i32| -> R<()> {
            charge(&mut c, cost::API_DEFAULT, 0)?;
            Err(trap(
                "\"ic0_msg_reject_msg_copy\" cannot be executed outside a reject callback",
            ))
        },
    )?;
    // The canister itself.
    l.func_wrap("ic0", "canister_self_size", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        Ok(c.data().self_id.len() as i32)
    })?;
    l.func_wrap(
        "ic0",
        "canister_self_copy",
        |mut c: C<'_>, dst: i32, off: i32, size: i32| -> R<()> {
            copy_out(
                &mut c,
                "ic0_canister_self_copy",
                |s| &s.self_id,
                dst as u32,
                off as u32,
                size as u32,
            )
        },
    )?;
    // The balance after this message's fees (see `SystemState::cycles`); the liquid balance is
    // what is left above the freezing threshold, as on the replica.
    l.func_wrap(
        "ic0",
        "canister_cycle_balance128",
        |mut c: C<'_>, dst: i32| -> R<()> {
            charge(&mut c, cost::API_CYCLES128, 0)?;
            let cycles = c.data().system.cycles;
            write_u128(&mut c, dst as u32, cycles)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_liquid_cycle_balance128",
        |mut c: C<'_>, dst: i32| -> R<()> {
            charge(&mut c, cost::API_CYCLES128, 0)?;
            let s = c.data();
            let liquid = s.system.cycles.saturating_sub(s.freezing_threshold);
            write_u128(&mut c, dst as u32, liquid)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_available128",
        |mut c: C<'_>, dst: i32| -> R<()> {
            charge(&mut c, cost::API_CYCLES128, 0)?;
            allow(&c, "ic0_msg_cycles_available128", WITH_CYCLES)?;
            // Ingress messages carry no cycles, nor do calls in this runtime.
            write_u128(&mut c, dst as u32, 0)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_accept128",
        |mut c: C<'_>, _high: i64, _low: i64, dst: i32| -> R<()> {
            charge(&mut c, cost::API_CYCLES128, 0)?;
            allow(&c, "ic0_msg_cycles_accept128", WITH_CYCLES)?;
            write_u128(&mut c, dst as u32, 0)
        },
    )?;
    l.func_wrap("ic0", "canister_status", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        Ok(1) // running
    })?;
    l.func_wrap("ic0", "canister_version", |mut c: C<'_>| -> R<i64> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        Ok(c.data().system.canister_version as i64)
    })?;
    l.func_wrap(
        "ic0",
        "is_controller",
        |mut c: C<'_>, src: i32, size: i32| -> R<i32> {
            charge(&mut c, cost::API_IS_CONTROLLER, u64::from(size as u32))?;
            let bytes = read_heap(&c, src as u32, size as u32)?;
            if bytes.len() > 29 {
                return Err(trap(format!(
                    "ic0_is_controller: invalid principal of {} bytes",
                    bytes.len()
                )));
            }
            Ok(i32::from(c.data().system.controllers.contains(&bytes)))
        },
    )?;
    l.func_wrap("ic0", "in_replicated_execution", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        // 1 in updates, replicated queries, timers, init and upgrade hooks; 0 in (non-replicated)
        // queries and inspect_message, as the replica's `ic0_in_replicated_execution` answers.
        Ok(i32::from(!matches!(
            c.data().context,
            Context::Query | Context::InspectMessage
        )))
    })?;
    // Time, timers, certified data, counters.
    l.func_wrap("ic0", "time", |mut c: C<'_>| -> R<i64> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        Ok(c.data().system.time as i64)
    })?;
    l.func_wrap("ic0", "msg_deadline", |mut c: C<'_>| -> R<i64> {
        charge(&mut c, cost::API_DEFAULT, 0)?;
        allow(&c, "ic0_msg_deadline", REPLYING)?;
        Ok(0) // no deadline: not a best-effort call
    })?;
    l.func_wrap(
        "ic0",
        "global_timer_set",
        |mut c: C<'_>, at: i64| -> R<i64> {
            charge(&mut c, cost::API_DEFAULT, 0)?;
            allow(&c, "ic0_global_timer_set", NOT_QUERY)?;
            let previous = std::mem::replace(&mut c.data_mut().system.global_timer, at as u64);
            Ok(previous as i64)
        },
    )?;
    l.func_wrap(
        "ic0",
        "certified_data_set",
        |mut c: C<'_>, src: i32, size: i32| -> R<()> {
            charge(&mut c, cost::API_DEFAULT, u64::from(size as u32))?;
            allow(&c, "ic0_certified_data_set", NOT_QUERY)?;
            if size as u32 > 32 {
                return Err(trap(format!(
                    "ic0_certified_data_set: certified data of {} bytes exceeds the limit of 32",
                    size as u32
                )));
            }
            let bytes = read_heap(&c, src as u32, size as u32)?;
            c.data_mut().system.certified_data = bytes;
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "data_certificate_present",
        |mut c: C<'_>| -> R<i32> {
            charge(&mut c, cost::API_DEFAULT, 0)?;
            Ok(0) // no certificate: this runtime does not certify query responses
        },
    )?;
    l.func_wrap(
        "ic0",
        "performance_counter",
        |mut c: C<'_>, counter: i32| -> R<i64> {
            charge(&mut c, cost::API_PERFORMANCE_COUNTER, 0)?;
            match counter {
                // 0: this message; 1: the call context (the same here: no inter-canister calls).
                0 | 1 => Ok(instructions_used(&mut c) as i64),
                other => Err(trap(format!(
                    "ic0_performance_counter: unknown counter type {other}"
                ))),
            }
        },
    )?;
    // Stable memory.
    l.func_wrap("ic0", "stable64_size", |mut c: C<'_>| -> R<i64> {
        charge(&mut c, cost::API_STABLE_SIZE, 0)?;
        Ok(c.data().stable.size() as i64)
    })?;
    l.func_wrap(
        "ic0",
        "stable64_grow",
        |mut c: C<'_>, pages: i64| -> R<i64> {
            charge(&mut c, cost::API_STABLE_GROW, 0)?;
            Ok(grow_stable(c.data_mut(), pages as u64).map_or(-1, |old| old as i64))
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_read",
        |mut c: C<'_>, dst: i64, off: i64, size: i64| -> R<()> {
            stable_read(&mut c, dst as u64, off as u64, size as u64)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_write",
        |mut c: C<'_>, off: i64, src: i64, size: i64| -> R<()> {
            stable_write(&mut c, off as u64, src as u64, size as u64)
        },
    )?;
    // The 32-bit stable memory API (deprecated, still provided by the replica).
    l.func_wrap("ic0", "stable_size", |mut c: C<'_>| -> R<i32> {
        charge(&mut c, cost::API_STABLE_SIZE, 0)?;
        let size = c.data().stable.size();
        u32::try_from(size)
            .ok()
            .filter(|s| u64::from(*s) <= 65_536)
            .map(|s| s as i32)
            .ok_or_else(|| trap("32 bit stable memory api used on a memory larger than 4GB"))
    })?;
    l.func_wrap("ic0", "stable_grow", |mut c: C<'_>, pages: i32| -> R<i32> {
        charge(&mut c, cost::API_STABLE_GROW, 0)?;
        let state = c.data_mut();
        let old = state.stable.size();
        if old + u64::from(pages as u32) > 65_536 {
            return Ok(-1);
        }
        Ok(grow_stable(state, u64::from(pages as u32)).map_or(-1, |o| o as i32))
    })?;
    l.func_wrap(
        "ic0",
        "stable_read",
        |mut c: C<'_>, dst: i32, off: i32, size: i32| -> R<()> {
            stable_read(
                &mut c,
                u64::from(dst as u32),
                u64::from(off as u32),
                u64::from(size as u32),
            )
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable_write",
        |mut c: C<'_>, off: i32, src: i32, size: i32| -> R<()> {
            stable_write(
                &mut c,
                u64::from(off as u32),
                u64::from(src as u32),
                u64::from(size as u32),
            )
        },
    )?;
    // Debugging and traps.
    l.func_wrap(
        "ic0",
        "debug_print",
        |mut c: C<'_>, src: i32, size: i32| -> R<()> {
            charge(
                &mut c,
                cost::API_DEBUG_PRINT,
                cost::log_bytes(u64::from(size as u32)),
            )?;
            let bytes = read_heap(&c, src as u32, size as u32)?;
            c.data_mut()
                .debug_prints
                .push(String::from_utf8_lossy(&bytes).into_owned());
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "trap",
        |mut c: C<'_>, src: i32, size: i32| -> R<()> {
            let len = u64::from(size as u32);
            charge(&mut c, cost::API_TRAP, len + cost::log_bytes(len))?;
            let bytes = read_heap(&c, src as u32, size as u32)?;
            Err(trap(format!(
                "Canister called `ic0.trap` with message: '{}'",
                String::from_utf8_lossy(&bytes)
            )))
        },
    )?;
    Ok(())
}
