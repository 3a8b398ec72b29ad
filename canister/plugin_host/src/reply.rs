//! Candid replies with the type part encoded once per type.
//!
//! A Candid message is `DIDL`, a type table, the argument types, then the values. For a fixed
//! Rust type everything before the values is the same in every reply, yet `candid::encode_one`
//! rebuilds it each time, comparing type trees as it goes (for `invoke`'s
//! `Result<InvokeReply, InvokeFailure>` about 500 k instructions, far more than the call itself),
//! and first clears candid's memo of Rust types, so the next message's argument decoding rebuilds
//! them too. [`encode`] builds that prefix once per type and per canister instance, then
//! serialises only the values. Values never refer to type-table indices, so the bytes are exactly
//! those of `candid::encode_one` (tested below). [`encode_result`] types a `Result` by the case it
//! holds, which shortens the type part.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::BTreeMap;

use candid::CandidType;
use candid::ser::{TypeSerialize, ValueSerializer};
use candid::types::{Compound, Field, Label, Serializer, Type, TypeInner};

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

/// Builds the type parts of both cases of a `Result` reply now (see [`prepare`]).
pub fn prepare_result<T: CandidType + 'static, E: CandidType + 'static>() {
    prepare::<Case<false, T>>();
    prepare::<Case<true, E>>();
}

/// The Candid encoding of `value` as a one-value reply, as `candid::encode_one` makes it.
pub fn encode<T: CandidType + 'static>(value: &T) -> Vec<u8> {
    encode_as::<T>(value)
}

/// The Candid encoding of a `Result` reply typed by the case it holds: `variant { Ok : T }` or
/// `variant { Err : E }`. A variant with fewer cases is a Candid subtype of one with more, so
/// every decoder that expects `variant { Ok : T; Err : E }` takes it as such (the Candid spec;
/// candid's Rust and JavaScript decoders match a variant's case by its label). The type part
/// leaves out the other case's types: an `invoke` reply with one log line takes 103 bytes
/// instead of 422, and a reply costs 50 instructions per byte.
pub fn encode_result<T: CandidType + 'static, E: CandidType + 'static>(
    value: &Result<T, E>,
) -> Vec<u8> {
    match value {
        Ok(ok) => encode_as::<Case<false, T>>(&Case::<false, _>(ok)),
        Err(err) => encode_as::<Case<true, E>>(&Case::<true, _>(err)),
    }
}

/// A one-case variant, `Ok` (`ERR` false) or `Err` (`ERR` true).
struct Case<const ERR: bool, T>(T);

impl<const ERR: bool, T: CandidType> CandidType for Case<ERR, T> {
    fn _ty() -> Type {
        let label = if ERR { "Err" } else { "Ok" };
        TypeInner::Variant(vec![Field {
            id: Label::Named(label.to_owned()).into(),
            ty: T::ty(),
        }])
        .into()
    }

    fn idl_serialize<S: Serializer>(&self, serializer: S) -> Result<(), S::Error> {
        let mut variant = serializer.serialize_variant(0)?;
        Compound::serialize_element(&mut variant, &self.0)
    }
}

/// `value` encoded with the type part of `K`'s replies, which `value`'s type must match.
fn encode_as<K: CandidType + 'static>(value: &impl CandidType) -> Vec<u8> {
    let mut bytes = PREFIXES.with(|prefixes| {
        prefixes
            .borrow_mut()
            .entry(TypeId::of::<K>())
            .or_insert_with(type_prefix::<K>)
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

    use super::{Case, encode, encode_result};

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
    fn a_result_reply_carries_its_own_case_and_decodes_as_the_whole_result() {
        use candid::CandidType;
        use candid::types::subtype::{Gamma, subtype};

        let ok: Reply = Ok(InvokeReply {
            output: ByteBuf::from(b"42".to_vec()),
            fuel_used: 7,
            logs: vec![LogEntry {
                level: LogLevel::Info,
                message: "counted".into(),
            }],
        });
        let err: Reply = Err(InvokeFailure {
            error: InvokeError::UnknownPlugin {
                name: "nope".into(),
            },
            fuel_used: 0,
            logs: Vec::new(),
        });
        for value in [ok, err] {
            let (whole, short) = (
                candid::encode_one(&value).expect("encodes"),
                encode_result(&value),
            );
            assert!(short.len() < whole.len());
            // Typed decoding (Rust callers, other canisters), twice (cached type part).
            let decoded = candid::decode_one::<Reply>(&short).expect("decodes");
            assert_eq!(candid::encode_one(&decoded).expect("encodes"), whole);
            assert_eq!(encode_result(&value), short);
            // Decoded with the declared type, as dfx prints a reply, and untyped: as the whole.
            let env = candid::TypeEnv::new();
            let printed = |bytes: &[u8]| {
                let typed = candid::IDLArgs::from_bytes_with_types(bytes, &env, &[Reply::ty()]);
                let untyped = candid::IDLArgs::from_bytes(bytes).expect("decodes untyped");
                (
                    typed.expect("decodes typed").to_string(),
                    untyped.to_string(),
                )
            };
            assert_eq!(printed(&short), printed(&whole));
        }
        // The reply's type is a subtype of the declared one.
        let (mut gamma, env) = (Gamma::new(), candid::TypeEnv::new());
        for short in [
            Case::<false, InvokeReply>::ty(),
            Case::<true, InvokeFailure>::ty(),
        ] {
            subtype(&mut gamma, &env, &short, &Reply::ty()).expect("a subtype");
        }
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
