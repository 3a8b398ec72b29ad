//! Cycles: what messages cost on an application subnet of 13 nodes, and the freezing threshold.
//!
//! Fees and formulas are the replica's (`dfinity/ic`):
//!
//! - the fees: `CyclesAccountManagerConfig::application_subnet()` in
//!   `rs/config/src/subnet_config.rs`, read at commit `002d5530aeb1ef1ed362d7f9c3c5529b8ec1cafe`
//!   (a later stored version, with the `fetch_canister_logs_*` fees added, has the same values for
//!   every fee used here);
//! - how they are applied: `rs/cycles_account_manager/src/cycles_account_manager.rs` at commit
//!   `af9b853ce8bd6e1c52e0646c5b0afcb5ffd61100` (`scale_cost`, `execution_cost`,
//!   `prepay_execution_cycles`, `refund_unused_execution_cycles`, `ingress_induction_cost`,
//!   `freeze_threshold_cycles`), and `rs/execution_environment/src/execution/update.rs` at
//!   `14125034ebf9c9ddbc5c85a10771a0fc08020b6c` (prepay for the message limit, refund what was
//!   not used, trap or not).
//!
//! Fees in the config are for a subnet of [`REFERENCE_SUBNET_SIZE`] nodes and are scaled by
//! `subnet_size / 13` ([`scale`]); this runtime is a [`SUBNET_SIZE`]-node application subnet, so
//! the scaling is exact and visible only in the formulas.
//!
//! What a canister pays here:
//!
//! - **ingress induction** of an update call: [`ingress_induction_cost`], charged when the message
//!   is accepted, before it executes, and not refunded;
//! - **execution** of an update, timer, install or upgrade: [`execution_cost`] of the message's
//!   instruction limit is prepaid before it runs, and [`execution_refund`] of the instructions it
//!   did not use is given back after, whether it succeeded or trapped. The net is
//!   `5_000_000 + instructions used` cycles;
//! - for a query method called as an update (a *replicated query*, by ingress or by another
//!   canister): the same as an update, ingress induction included, but prepaid for a query's
//!   instruction limit (5 B), as `execute_replicated_query` in
//!   `rs/execution_environment/src/execution/replicated_query.rs` (at
//!   `60b08a9ebd232653917a9c0d420849bb1059aa68`) prepays and refunds; the net is again
//!   `5_000_000 + instructions used`, and these cycles are all it keeps;
//! - nothing for a query call (non-replicated queries are free on the IC) nor for
//!   `canister_inspect_message`.
//!
//! A charge may not take the balance below the [`freezing_threshold`]: the cycles the canister's
//! memory costs to store for 30 days (the replica's default `freezing_threshold` setting).
//!
//! Not modelled: the storage fee charged over time, compute allocation, reserved cycles, cycles
//! sent or received with calls, and the ingress fee of `install_code` itself (an ingress message to
//! the management canister that the replica charges to the installed canister).
//!
//! The replica charges ingress induction for the bytes of the whole signed message (the HTTP
//! envelope: content, sender, expiry, nonce, signature and public key), since dfinity/ic#6759
//! (2025-09) which replaced the sum of `arg`, `method_name` and `nonce`. This runtime has no
//! envelope and charges for the method name and argument: a lower bound, a few hundred bytes
//! (well under a million cycles) below the replica's fee for a signed message.

/// Nodes of the subnet this runtime stands for (an application subnet).
pub const SUBNET_SIZE: u128 = 13;
/// Subnet size the replica's fees are given for (`DEFAULT_REFERENCE_SUBNET_SIZE`).
pub const REFERENCE_SUBNET_SIZE: u128 = 13;
/// Fee for executing one update-type message (update, timer, install, upgrade):
/// `update_message_execution_fee`.
pub const UPDATE_MESSAGE_EXECUTION_FEE: u128 = 5_000_000;
/// Fee for every 10 instructions executed (wasm32): `ten_update_instructions_execution_fee`.
pub const TEN_UPDATE_INSTRUCTIONS_EXECUTION_FEE: u128 = 10;
/// Fee for every ingress message received: `ingress_message_reception_fee`.
pub const INGRESS_MESSAGE_RECEPTION_FEE: u128 = 1_200_000;
/// Fee for every byte of an ingress message received: `ingress_byte_reception_fee`.
pub const INGRESS_BYTE_RECEPTION_FEE: u128 = 2_000;
/// Fee for storing a GiB for a second: `gib_storage_per_second_fee`.
pub const GIB_STORAGE_PER_SECOND_FEE: u128 = 127_000;
/// The replica's default freezing threshold, in seconds: 30 days (`default_freeze_threshold`).
pub const FREEZING_THRESHOLD_SECONDS: u128 = 30 * 24 * 60 * 60;

const SECONDS_PER_DAY: u128 = 24 * 60 * 60;
const GIB: u128 = 1 << 30;

/// A fee given for [`REFERENCE_SUBNET_SIZE`] nodes, on a subnet of [`SUBNET_SIZE`] nodes.
pub const fn scale(cycles: u128) -> u128 {
    cycles * SUBNET_SIZE / REFERENCE_SUBNET_SIZE
}

/// Cycles for `instructions` instructions, before scaling (`convert_instructions_to_cycles`):
/// `10 * instructions / 10`, i.e. one cycle per instruction.
pub const fn instructions_to_cycles(instructions: u64) -> u128 {
    TEN_UPDATE_INSTRUCTIONS_EXECUTION_FEE * instructions as u128 / 10
}

/// What executing a message of up to `instructions` instructions costs (`execution_cost`):
/// `scale(5_000_000 + instructions)`. Prepaid for the message's limit.
pub const fn execution_cost(instructions: u64) -> u128 {
    scale(UPDATE_MESSAGE_EXECUTION_FEE + instructions_to_cycles(instructions))
}

/// What is given back after a message that did not use `unused` of its instructions, out of
/// `prepaid` cycles (`refund_unused_execution_cycles`): `min(scale(unused), prepaid)`.
pub fn execution_refund(unused: u64, prepaid: u128) -> u128 {
    scale(instructions_to_cycles(unused)).min(prepaid)
}

/// What inducting an ingress update costs the canister (`ingress_induction_cost_from_bytes`):
/// `scale(1_200_000 + 2_000 * bytes)`, `bytes` the method name and the argument here (see the
/// module docs for the replica's envelope bytes).
pub fn ingress_induction_cost(method: &str, arg: &[u8]) -> u128 {
    let bytes = (method.len() + arg.len()) as u128;
    scale(INGRESS_MESSAGE_RECEPTION_FEE + INGRESS_BYTE_RECEPTION_FEE * bytes)
}

/// The cycles a canister using `memory_bytes` of memory must keep (`freeze_threshold_cycles` with
/// no compute allocation, no message memory and no reserved cycles): its storage fee per day,
/// `scale(bytes * 127_000 * 86_400 / 2^30)`, times 30 days.
pub fn freezing_threshold(memory_bytes: u64) -> u128 {
    let per_day =
        scale(u128::from(memory_bytes) * GIB_STORAGE_PER_SECOND_FEE * SECONDS_PER_DAY / GIB);
    per_day * FREEZING_THRESHOLD_SECONDS / SECONDS_PER_DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_net_cost_is_the_base_fee_plus_one_cycle_per_instruction() {
        let limit = 40_000_000_000;
        let prepaid = execution_cost(limit);
        assert_eq!(prepaid, 40_005_000_000);
        let used = 123_457;
        assert_eq!(
            prepaid - execution_refund(limit - used, prepaid),
            5_000_000 + 123_457
        );
    }

    #[test]
    fn ingress_and_threshold_fees() {
        assert_eq!(
            ingress_induction_cost("inc", &[1, 2]),
            1_200_000 + 5 * 2_000
        );
        // One GiB for 30 days.
        assert_eq!(freezing_threshold(1 << 30), 127_000 * 86_400 * 30);
        assert_eq!(freezing_threshold(0), 0);
    }
}
