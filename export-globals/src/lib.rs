//! Rewrites a wasm module so that every mutable global it defines is exported.
//!
//! Interpreters and JITs (wasmi, wasmtime) let a host read and write only *exported* globals, but
//! compilers keep essential state in private ones: Rust's shadow-stack pointer, AssemblyScript's heap
//! pointer. A host that saves an instance (linear memory + globals) and restores it later, after a
//! canister upgrade or a failed call, must see them all. The replica does the same when it
//! instruments a canister. Both the plugin engine (for plugins) and the local canister runtime (for
//! the canister) use this one rewrite.
//!
//! The rewrite copies every section byte for byte except the export section, which gets one extra
//! entry per mutable global that is not exported yet, named [`EXPORT_PREFIX`] + its index.
//!
//! [`export_mutable_globals_and_start`] also moves the start function out of the start section
//! into an export named [`START_EXPORT`]: a host that saves instances runs it once, as a call under
//! its own budget, instead of at every instantiation.

use std::ops::Range;

use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// Prefix of the export names the rewrite adds: `__export_global_<index>`.
pub const EXPORT_PREFIX: &str = "__export_global_";
/// The export name under which [`export_mutable_globals_and_start`] exports the start function.
pub const START_EXPORT: &str = "__export_start";

/// A module whose mutable globals are all exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The rewritten module (the input unchanged if nothing needed exporting).
    pub wasm: Vec<u8>,
    /// Every mutable global the module defines (imports excluded), in index order.
    pub globals: Vec<MutableGlobal>,
    /// Whether the start function was moved to the export [`START_EXPORT`].
    pub start_exported: bool,
}

/// A mutable global and the export name under which a host can reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutableGlobal {
    /// Index in the module's global index space.
    pub index: u32,
    /// Export name: the module's own, or one the rewrite added.
    pub export: String,
}

/// Why a module could not be rewritten.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RewriteError {
    /// The bytes are not a well-formed core wasm module.
    #[error("malformed wasm module: {0}")]
    Malformed(String),
    /// The bytes are a component, not a core module.
    #[error("components are not supported, only core wasm modules")]
    Component,
    /// The module already exports something under a name the rewrite needs.
    #[error("the module already exports the reserved name `{0}`")]
    ReservedName(String),
}

impl From<wasmparser::BinaryReaderError> for RewriteError {
    fn from(err: wasmparser::BinaryReaderError) -> Self {
        RewriteError::Malformed(err.to_string())
    }
}

/// Returns `wasm` with every mutable global exported, and the list of those globals.
///
/// Only the structure needed for the rewrite is parsed; validation is the caller's job.
pub fn export_mutable_globals(wasm: &[u8]) -> Result<Rewritten, RewriteError> {
    rewrite(wasm, false)
}

/// As [`export_mutable_globals`], and moves the start function (if any) from the start section to
/// the export [`START_EXPORT`], so that instantiating the module no longer runs it.
pub fn export_mutable_globals_and_start(wasm: &[u8]) -> Result<Rewritten, RewriteError> {
    rewrite(wasm, true)
}

fn rewrite(wasm: &[u8], move_start: bool) -> Result<Rewritten, RewriteError> {
    let mut start = None;
    let mut sections: Vec<(u8, Range<usize>)> = Vec::new();
    let mut exports: Vec<(String, ExportKind, u32)> = Vec::new();
    let mut imported_globals = 0u32;
    let mut mutable: Vec<u32> = Vec::new();

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::Version { encoding, .. } if *encoding != wasmparser::Encoding::Module => {
                return Err(RewriteError::Component);
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone() {
                    if matches!(import?.ty, TypeRef::Global(_)) {
                        imported_globals += 1;
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for (offset, global) in reader.clone().into_iter().enumerate() {
                    if global?.ty.mutable {
                        mutable.push(imported_globals + offset as u32);
                    }
                }
            }
            Payload::StartSection { func, .. } if move_start => start = Some(*func),
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export?;
                    exports.push((
                        export.name.to_owned(),
                        export_kind(export.kind),
                        export.index,
                    ));
                }
            }
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }

    let mut globals = Vec::with_capacity(mutable.len());
    let mut added = Vec::new();
    for index in mutable {
        let existing = exports
            .iter()
            .find(|(_, kind, i)| *kind == ExportKind::Global && *i == index);
        let export = match existing {
            Some((name, _, _)) => name.clone(),
            None => {
                let name = format!("{EXPORT_PREFIX}{index}");
                if exports.iter().any(|(n, _, _)| *n == name) {
                    return Err(RewriteError::ReservedName(name));
                }
                added.push((name.clone(), ExportKind::Global, index));
                name
            }
        };
        globals.push(MutableGlobal { index, export });
    }
    if let Some(func) = start {
        if exports.iter().any(|(n, _, _)| n == START_EXPORT) {
            return Err(RewriteError::ReservedName(START_EXPORT.into()));
        }
        added.push((START_EXPORT.to_owned(), ExportKind::Func, func));
    }
    if added.is_empty() {
        return Ok(Rewritten {
            wasm: wasm.to_vec(),
            globals,
            start_exported: false,
        });
    }

    let mut export_section = ExportSection::new();
    for (name, kind, index) in &exports {
        export_section.export(name, *kind, *index);
    }
    for (name, kind, index) in &added {
        export_section.export(name, *kind, *index);
    }

    let mut module = wasm_encoder::Module::new();
    let mut export_written = false;
    for (id, range) in sections {
        let is_export = id == wasm_encoder::SectionId::Export as u8;
        if !export_written && (is_export || must_follow_exports(id)) {
            module.section(&export_section);
            export_written = true;
        }
        let is_start = id == wasm_encoder::SectionId::Start as u8;
        if !(is_export || is_start && start.is_some()) {
            module.section(&RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    if !export_written {
        module.section(&export_section);
    }
    Ok(Rewritten {
        wasm: module.finish(),
        globals,
        start_exported: start.is_some(),
    })
}

/// Whether a section with this id comes after the export section in a module.
fn must_follow_exports(id: u8) -> bool {
    use wasm_encoder::SectionId;
    [
        SectionId::Start,
        SectionId::Element,
        SectionId::DataCount,
        SectionId::Code,
        SectionId::Data,
    ]
    .iter()
    .any(|s| *s as u8 == id)
}

fn export_kind(kind: ExternalKind) -> ExportKind {
    match kind {
        ExternalKind::Func => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exports_of(wasm: &[u8]) -> Vec<(String, ExternalKind, u32)> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::ExportSection(reader) = payload.expect("parses") {
                for e in reader {
                    let e = e.expect("export");
                    out.push((e.name.to_owned(), e.kind, e.index));
                }
            }
        }
        out
    }

    fn validate(wasm: &[u8]) {
        wasmparser::Validator::new()
            .validate_all(wasm)
            .expect("rewritten module validates");
    }

    #[test]
    fn exports_private_mutable_globals_and_keeps_the_rest() {
        let wasm = wat::parse_str(
            r#"(module
                 (import "env" "g" (global i32))
                 (global $sp (mut i32) (i32.const 1024))
                 (global $c i64 (i64.const 7))
                 (global $heap (mut i64) (i64.const 0))
                 (global $shown (mut i32) (i32.const 0))
                 (memory 1)
                 (func (export "run") (result i32) global.get $sp)
                 (func $init)
                 (export "shown" (global $shown))
                 (start $init)
                 (data (i32.const 0) "hi")
                 (@custom "name-ish" "payload"))"#,
        )
        .expect("wat");
        let out = export_mutable_globals(&wasm).expect("rewrite");
        validate(&out.wasm);
        assert_eq!(
            out.globals,
            vec![
                MutableGlobal {
                    index: 1,
                    export: "__export_global_1".into()
                },
                MutableGlobal {
                    index: 3,
                    export: "__export_global_3".into()
                },
                MutableGlobal {
                    index: 4,
                    export: "shown".into()
                },
            ]
        );
        let exports = exports_of(&out.wasm);
        assert!(exports.contains(&("run".into(), ExternalKind::Func, 0)));
        assert!(exports.contains(&("__export_global_3".into(), ExternalKind::Global, 3)));
        assert_eq!(exports.len(), 4);
    }

    #[test]
    fn moves_the_start_function_to_an_export_when_asked() {
        let wasm = wat::parse_str(
            r#"(module (global $g (mut i32) (i32.const 0))
                 (func $init (global.set $g (i32.const 7)))
                 (func (export "run") (result i32) (global.get $g))
                 (start $init))"#,
        )
        .expect("wat");
        let kept = export_mutable_globals(&wasm).expect("rewrite");
        assert!(!kept.start_exported);
        let moved = export_mutable_globals_and_start(&wasm).expect("rewrite");
        validate(&moved.wasm);
        assert!(moved.start_exported);
        let exports = exports_of(&moved.wasm);
        assert!(exports.contains(&(START_EXPORT.into(), ExternalKind::Func, 0)));
        let has_start = Parser::new(0)
            .parse_all(&moved.wasm)
            .any(|p| matches!(p, Ok(Payload::StartSection { .. })));
        assert!(!has_start, "the start section is gone");
    }

    #[test]
    fn adds_an_export_section_where_there_was_none() {
        let wasm = wat::parse_str(
            r#"(module (global (mut i32) (i32.const 0)) (func) (data (i32.const 0) "") (memory 1))"#,
        )
        .expect("wat");
        let out = export_mutable_globals(&wasm).expect("rewrite");
        validate(&out.wasm);
        assert_eq!(
            exports_of(&out.wasm),
            vec![("__export_global_0".into(), ExternalKind::Global, 0)]
        );
    }

    #[test]
    fn leaves_modules_without_private_mutable_globals_untouched() {
        let wasm = wat::parse_str(r#"(module (global i32 (i32.const 0)) (func (export "f")))"#)
            .expect("wat");
        let out = export_mutable_globals(&wasm).expect("rewrite");
        assert_eq!(out.wasm, wasm);
        assert!(out.globals.is_empty());
    }

    #[test]
    fn refuses_a_module_that_squats_on_the_reserved_name() {
        let wasm = wat::parse_str(
            r#"(module (global (mut i32) (i32.const 0)) (func (export "__export_global_0")))"#,
        )
        .expect("wat");
        assert_eq!(
            export_mutable_globals(&wasm),
            Err(RewriteError::ReservedName("__export_global_0".into()))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            export_mutable_globals(b"\0asm\x01\0\0\0\x07\x05garbage"),
            Err(RewriteError::Malformed(_))
        ));
        assert!(matches!(
            export_mutable_globals(b"not wasm"),
            Err(RewriteError::Malformed(_))
        ));
    }
}
