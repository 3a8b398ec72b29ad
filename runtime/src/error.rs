//! What a message returns: [`Execution`] when it ran to completion, [`RuntimeError`] otherwise.

/// Reject code of a reject from the canister itself (`ic0.msg_reject`), as on the IC.
pub const CANISTER_REJECT: u32 = 4;

/// How a message that ran to completion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ic0.msg_reply` with these bytes.
    Reply(Vec<u8>),
    /// `ic0.msg_reject`: code [`CANISTER_REJECT`] and the canister's message.
    Reject {
        /// The IC reject code.
        code: u32,
        /// The canister's reject message.
        message: String,
    },
    /// A message that does not reply (install, upgrade, timer) completed.
    Done,
}

/// A completed message. Its state changes are committed unless it was a query (called as a query,
/// or as an update: a replicated query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Reply, reject, or done.
    pub outcome: Outcome,
    /// Instructions used (an estimate of the replica's count, see [`crate::cost`]).
    pub instructions: u64,
    /// Cycles the message took from the balance: the ingress induction fee (ingress updates) plus
    /// the execution fee, 5 M + 1 per instruction used (see [`crate::cycles`]); a query method
    /// called as an update (a replicated query) pays the same. 0 for a query call.
    pub cycles: u128,
    /// Instructions `canister_inspect_message` used to accept this message (0 when it did not
    /// run: not an ingress update, or the canister does not export it). Not part of
    /// `instructions`, and free.
    pub inspect_instructions: u64,
    /// Lines the canister printed with `ic0.debug_print`, in order.
    pub debug_prints: Vec<String>,
}

/// Why a message failed. Unless said otherwise, nothing it did was committed, except its cycles: a
/// message that ran (trapped, hit its instruction limit, did not reply) paid for the instructions
/// it used, as on the replica (see [`crate::cycles`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The canister trapped (`ic0.trap`, a wasm trap, or a System API misuse); the message is the
    /// replica-style reject text.
    #[error("{message}")]
    Trap {
        /// The reject text, e.g. "Canister called `ic0.trap` with message: '...'".
        message: String,
        /// Instructions used until the trap.
        instructions: u64,
        /// What the canister printed before trapping.
        debug_prints: Vec<String>,
    },
    /// The message used more than its instruction limit.
    #[error("Canister exceeded the limit of {limit} instructions for a single message execution")]
    InstructionLimit {
        /// The limit that applied.
        limit: u64,
        /// What the canister printed before the limit was hit.
        debug_prints: Vec<String>,
    },
    /// The canister exports no such method: kind "update" when it exports neither
    /// `canister_update <method>` nor `canister_query <method>` (a query method called as an
    /// update runs as a replicated query), "query" when it exports no `canister_query <method>`.
    #[error("Canister has no {kind} method '{method}'")]
    MissingMethod {
        /// "update" or "query".
        kind: &'static str,
        /// The method name.
        method: String,
    },
    /// The module imports functions this runtime does not provide (`module.name`, comma-separated).
    #[error("the module imports functions this runtime does not provide: {0}")]
    UnsupportedImport(String),
    /// The module is not a wasm module this runtime can run.
    #[error("invalid canister module: {0}")]
    InvalidModule(String),
    /// The message payload is larger than the ingress limit.
    #[error("message payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The reply (or reject message) grew past the limit; the canister trapped.
    #[error("reply of {size} bytes exceeds the limit of {limit} bytes")]
    ReplyTooLarge {
        /// Size the reply would have had.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The method returned without replying or rejecting. As on the replica, an update's state
    /// changes ARE committed in this case.
    #[error("Canister did not reply to the call")]
    NoReply {
        /// Instructions used.
        instructions: u64,
        /// What the canister printed.
        debug_prints: Vec<String>,
    },
    /// Only a controller may do this (upgrade).
    #[error("only a controller of the canister may do this")]
    NotController,
    /// The balance cannot pay for the message above the freezing threshold; it did not run.
    ///
    /// An ingress update is refused before anything is charged when the balance cannot pay its
    /// induction fee. When it can pay that but not the prepaid execution, it was inducted and the
    /// induction fee is kept, as on the replica; nothing else changes.
    #[error(
        "Canister {} is out of cycles: please top up the canister with at least {} additional cycles",
        crate::CANISTER_ID_TEXT,
        needed.saturating_sub(*balance)
    )]
    OutOfCycles {
        /// The balance when the message was refused.
        balance: u128,
        /// The balance the message needed: its fee plus the freezing threshold.
        needed: u128,
    },
    /// `canister_inspect_message` did not accept an ingress update: it returned without calling
    /// `ic0.accept_message`, trapped, or ran out of instructions. The update did not run and
    /// nothing was charged; nothing inspect_message did was kept.
    #[error("message to `{method}` not accepted: {reason}")]
    NotAccepted {
        /// The update method the message was for.
        method: String,
        /// The replica's text: "Canister `<id>` rejected the message" when it did not accept, else
        /// the trap (e.g. "Canister called `ic0.trap` with message: '...'") or instruction-limit
        /// message.
        reason: String,
        /// Instructions inspect_message used.
        instructions: u64,
        /// What inspect_message printed.
        debug_prints: Vec<String>,
    },
    /// A stable memory image is larger than the canister's stable memory may be (its limit, or
    /// the replica's 500 GiB); nothing changed.
    #[error("a stable memory of {bytes} bytes is larger than the limit of {limit} bytes")]
    StableMemoryTooLarge {
        /// The image's size, rounded up to whole 64 KiB pages.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// wasmtime failed for a reason that is not the canister's (a host resource problem).
    #[error("runtime failure: {0}")]
    Host(String),
}

/// Why [`crate::Canister::load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the state directory failed.
    #[error("cannot read canister state: {0}")]
    Io(#[from] std::io::Error),
    /// A state file is malformed.
    #[error("malformed canister state file {file}: {reason}")]
    Format {
        /// Which file.
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The saved module no longer loads.
    #[error("saved module: {0}")]
    Module(#[from] RuntimeError),
}
