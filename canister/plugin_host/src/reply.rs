//! Candid replies with the type part encoded once per type.
//!
//! A Candid message is `DIDL`, a type table, the argument types, then the values. For a fixed
//! Rust type everything before the values is the same in every reply, yet `candid::encode_one`
//! rebuilds it each time, comparing type trees as it goes (for `invoke`'s
//! `Result<InvokeReply, InvokeFailure>` about 500 k instructions, far more than the call itself),
//! and first clears candid's memo of Rust types, so the next message's argument decoding rebuilds
//! them too. [`encode`] builds that prefix once per type and per canister instance, then
//! serialises only the values. Values never refer to type-table indices, so the bytes are exactly
//! those of `candid::encode_one` (tested below).

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::BTreeMap;

use candid::CandidType;
use candid::ser::{TypeSerialize, ValueSerializer};

thread_local! {
    /// `DIDL` + type table + argument types, by the Rust type of the reply.
    static PREFIXES: RefCell<BTreeMap<TypeId, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
}

/// Builds the type part of `T`'s replies now, if not yet built. A query's changes to the heap are
/// discarded when it ends, so a query would build it again on every call (for `list`, ~300 k);
/// init and post_upgrade prepare every query's reply type.
pub fn prepare<T: CandidType + 'static>() {
    PREFIXES.with(|prefixes| {
        prefixes
            .borrow_mut()
            .entry(TypeId::of::<T>())
            .or_insert_with(type_prefix::<T>);
    });
}

/// The Candid encoding of `value` as a one-value reply, as `candid::encode_one` makes it.
pub fn encode<T: CandidType + 'static>(value: &T) -> Vec<u8> {
    let mut bytes = PREFIXES.with(|prefixes| {
        prefixes
            .borrow_mut()
            .entry(TypeId::of::<T>())
            .or_insert_with(type_prefix::<T>)
            .clone()
    });
    let mut values = ValueSerializer::new();
    value
        .idl_serialize(&mut values)
        .expect("a CandidType value serialises");
    bytes.extend_from_slice(values.get_result());
    bytes
}

fn type_prefix<T: CandidType>() -> Vec<u8> {
    // As `candid::ser::IDLBuilder` does: a fresh memo table for the type being encoded.
    candid::types::internal::env_clear();
    let mut types = TypeSerialize::new();
    types
        .push_type(&T::ty())
        .expect("a CandidType type serialises");
    types.serialize().expect("a CandidType type serialises");
    let mut prefix = b"DIDL".to_vec();
    prefix.extend_from_slice(types.get_result());
    prefix
}

#[cfg(test)]
mod tests {
    use candid::Principal;
    use plugin_host_api::{
        ByteBuf, Denied, InvokeError, InvokeFailure, InvokePolicy, InvokeReply, ListPage, LogEntry,
        LogLevel, PluginInfo, Right,
    };

    use super::encode;

    type Reply = Result<InvokeReply, InvokeFailure>;

    #[track_caller]
    fn check(value: Reply) {
        // Twice: the first call builds the cached prefix, the second uses it.
        for _ in 0..2 {
            assert_eq!(encode(&value), candid::encode_one(&value).expect("encodes"));
        }
    }

    #[test]
    fn replies_are_byte_for_byte_candid() {
        check(Ok(InvokeReply {
            output: ByteBuf::from(b"hello".to_vec()),
            fuel_used: 42,
            logs: vec![LogEntry {
                level: LogLevel::Warn,
                message: "careful".into(),
            }],
        }));
        check(Err(InvokeFailure {
            error: InvokeError::NotAuthorized(Denied {
                caller: Principal::anonymous(),
                missing: Right::Invoke,
            }),
            fuel_used: 0,
            logs: Vec::new(),
        }));
        check(Err(InvokeFailure {
            error: InvokeError::OutOfFuel {
                fuel_limit: 10,
                fuel_used: 10,
            },
            fuel_used: 10,
            logs: Vec::new(),
        }));
        // Another type between uses of the first keeps both right.
        assert_eq!(encode(&7u64), candid::encode_one(7u64).expect("encodes"));
        check(Ok(InvokeReply {
            output: ByteBuf::new(),
            fuel_used: 0,
            logs: Vec::new(),
        }));
    }

    #[test]
    fn list_pages_and_plugin_infos_are_byte_for_byte_candid() {
        let info = PluginInfo {
            name: "counter".into(),
            owner: Principal::management_canister(),
            code_sha256: ByteBuf::from(vec![7; 32]),
            code_size: 84_591,
            functions: vec!["get".into(), "increment".into()],
            memory_pages: 2,
            max_memory_pages: Some(16),
            fuel_limit: 100,
            calls: 3,
            fuel_used_total: 12_345,
            installed_at_ns: 1,
            updated_at_ns: 2,
            invoke_policy: InvokePolicy::AllowList(vec![Principal::anonymous()]),
            config: vec![("rule".into(), "quadratic".into())],
            quota: plugin_host_api::QuotaUsage {
                used_instructions: 5,
                limit_instructions: 10,
                window_ends_ns: 60,
            },
        };
        for page in [
            ListPage {
                plugins: vec![info.clone(), info.clone()],
                next: Some("counter".into()),
            },
            ListPage {
                plugins: Vec::new(),
                next: None,
            },
        ] {
            assert_eq!(encode(&page), candid::encode_one(&page).expect("encodes"));
        }
        for one in [Some(info), None] {
            assert_eq!(encode(&one), candid::encode_one(&one).expect("encodes"));
        }
    }
}
