//! Byte encodings of what the store keeps: plugin records, saved globals, var keys and the meta
//! cell (layouts in the
//! module docs of `store`). Decoding panics on bytes the encoder did not write: stable memory is
//! written only by this code, so that is a broken invariant, not user input.

use std::borrow::Cow;
use std::collections::BTreeMap;

use candid::Principal;
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use plugin_host_api::InvokePolicy;
use wasmi::Val;

use super::{LAYOUT_VERSION, PluginRecord};

const MAGIC: &[u8; 4] = b"PLGE";

/// A mutable global's saved value: its value type tag and raw bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedGlobal {
    /// 0 i32, 1 i64, 2 f32, 3 f64.
    pub tag: u8,
    /// The value's bits.
    pub bits: u64,
}

impl SavedGlobal {
    /// A numeric global's value (install refuses modules with other mutable globals).
    pub fn from_val(value: Val) -> Self {
        let (tag, bits) = match value {
            Val::I32(v) => (0, u64::from(v as u32)),
            Val::I64(v) => (1, v as u64),
            Val::F32(v) => (2, u64::from(v.to_bits())),
            Val::F64(v) => (3, v.to_bits()),
            _ => (u8::MAX, 0),
        };
        Self { tag, bits }
    }

    /// The value, if its tag is a numeric type.
    pub fn to_val(self) -> Option<Val> {
        Some(match self.tag {
            0 => Val::I32(self.bits as u32 as i32),
            1 => Val::I64(self.bits as i64),
            2 => Val::F32(wasmi::F32::from_bits(self.bits as u32)),
            3 => Val::F64(wasmi::F64::from_bits(self.bits)),
            _ => return None,
        })
    }
}

/// The globals' stable encoding: u32 count, then per global its tag (u8) and bits (u64).
pub fn encode_globals(globals: &[SavedGlobal]) -> Vec<u8> {
    let mut out = Writer::default();
    out.u32(globals.len() as u32);
    for g in globals {
        out.u8(g.tag);
        out.u64(g.bits);
    }
    out.0
}

/// Decodes [`encode_globals`]' output.
pub fn decode_globals(bytes: &[u8]) -> Vec<SavedGlobal> {
    let mut r = Reader(bytes);
    let n = r.u32();
    (0..n)
        .map(|_| SavedGlobal {
            tag: r.u8(),
            bits: r.u64(),
        })
        .collect()
}

/// The record's stable encoding (see the module docs of `store`).
pub fn encode_record(r: &PluginRecord) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(1);
    w.u64(r.id);
    w.bytes(r.name.as_bytes());
    w.bytes(r.owner.as_slice());
    w.0.extend_from_slice(&r.code_sha256);
    w.u64(r.code_size);
    w.u32(r.functions.len() as u32);
    for f in &r.functions {
        w.bytes(f.as_bytes());
    }
    w.u32(r.memory_pages);
    w.u8(r.max_memory_pages.is_some() as u8);
    w.u32(r.max_memory_pages.unwrap_or(0));
    w.u64(r.fuel_limit);
    w.u64(r.calls);
    w.u64(r.fuel_used_total);
    w.u64(r.installed_at_ns);
    w.u64(r.updated_at_ns);
    match &r.invoke_policy {
        InvokePolicy::Public => w.u8(0),
        InvokePolicy::OwnerOnly => w.u8(1),
        InvokePolicy::AllowList(list) => {
            w.u8(2);
            w.u32(list.len() as u32);
            for p in list {
                w.bytes(p.as_slice());
            }
        }
    }
    w.u32(r.config.len() as u32);
    for (k, v) in &r.config {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
    w.0
}

/// Decodes [`encode_record`]'s output.
pub fn decode_record(bytes: &[u8]) -> PluginRecord {
    let mut r = Reader(bytes);
    assert_eq!(r.u8(), 1, "unknown plugin record version");
    let id = r.u64();
    let name = r.string();
    let owner = r.principal();
    let mut code_sha256 = [0u8; 32];
    code_sha256.copy_from_slice(r.take(32));
    let code_size = r.u64();
    let functions = (0..r.u32()).map(|_| r.string()).collect();
    let memory_pages = r.u32();
    let has_max = r.u8() == 1;
    let max = r.u32();
    let fuel_limit = r.u64();
    let calls = r.u64();
    let fuel_used_total = r.u64();
    let installed_at_ns = r.u64();
    let updated_at_ns = r.u64();
    let invoke_policy = match r.u8() {
        0 => InvokePolicy::Public,
        1 => InvokePolicy::OwnerOnly,
        _ => InvokePolicy::AllowList((0..r.u32()).map(|_| r.principal()).collect()),
    };
    let config: BTreeMap<String, String> = (0..r.u32()).map(|_| (r.string(), r.string())).collect();
    PluginRecord {
        id,
        name,
        owner,
        code_sha256,
        code_size,
        functions,
        memory_pages,
        max_memory_pages: has_max.then_some(max),
        fuel_limit,
        calls,
        fuel_used_total,
        installed_at_ns,
        updated_at_ns,
        invoke_policy,
        config,
    }
}

/// Little-endian writer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// A u32, little-endian.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A u64, little-endian.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
}

/// Reader of what [`Writer`] wrote.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    /// One byte.
    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    /// A u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    /// A u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.take(n)
    }
    fn string(&mut self) -> String {
        String::from_utf8(self.bytes().to_vec()).expect("stored strings are utf-8")
    }
    fn principal(&mut self) -> Principal {
        Principal::try_from_slice(self.bytes()).expect("stored principals are valid")
    }
}

/// Key of a var: the plugin id (big-endian, so byte order is key order), then the var's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct VarKey {
    pub(super) id: u64,
    pub(super) key: String,
}

impl VarKey {
    pub(super) fn new(id: u64, key: &str) -> Self {
        Self {
            id,
            key: key.to_owned(),
        }
    }
}

impl Storable for VarKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut bytes = self.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(self.key.as_bytes());
        Cow::Owned(bytes)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let (id, key) = bytes.split_at(8);
        Self {
            id: u64::from_be_bytes(id.try_into().expect("8 bytes")),
            key: String::from_utf8(key.to_vec()).expect("var keys are utf-8"),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

#[derive(Clone, Copy)]
pub(super) struct Meta {
    /// The layout the stored data is in (1 until its chunks are moved).
    pub(super) version: u32,
    pub(super) next_id: u64,
}

impl Storable for Meta {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let mut w = Writer::default();
        w.0.extend_from_slice(MAGIC);
        w.u32(self.version);
        w.u64(self.next_id);
        Cow::Owned(w.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        assert_eq!(&bytes[..4], MAGIC, "not a plugin engine layout");
        let mut r = Reader(&bytes[4..]);
        let version = r.u32();
        assert!(
            (1..=LAYOUT_VERSION).contains(&version),
            "unsupported engine layout version {version}"
        );
        Meta {
            version,
            next_id: r.u64(),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 16,
        is_fixed_size: true,
    };
}

impl Storable for PluginRecord {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode_record(self))
    }

    fn into_bytes(self) -> Vec<u8> {
        encode_record(&self)
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        decode_record(&bytes)
    }

    const BOUND: Bound = Bound::Unbounded;
}
