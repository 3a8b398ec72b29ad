//! Modules from `wasm-smith`, driven by a case's random bytes, in the shapes the targets need:
//!
//! - plugins ([`plugin_module`]): import any of the plugin ABI (every entry of
//!   [`plugin_engine::IMPORTS`] and of WASI preview 1, with its exact signature), export `() -> i32` functions (and at
//!   times `_initialize`) and a memory named `memory`;
//! - pure modules ([`pure_module`]): no imports, NaNs canonicalised, every global exported, for
//!   the differential run against wasmtime.
//!
//! Then [`rewrite`] removes what install refuses (instructions that change tables or drop
//! segments, mutable reference globals) in a way both engines see alike, and may add wrappers
//! `ok_<f>` (call `f`, return 0: a call that finishes commits) and a *reader*:
//! an exported `() -> i32` function that returns an FNV-1a hash of the module's whole state
//! (memory size and bytes, every mutable numeric global). It needs no import: its hash is the
//! return code, so the engine answers `PluginError { code: hash }` (or success when it is 0).

use arbitrary::Unstructured;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode, utils};
use wasm_encoder::{BlockType, Instruction, MemArg, ValType as EncType};
use wasmparser::{Operator, Payload, ValType};

use crate::rng::Rng;

/// Name of the reader function [`rewrite`] adds.
pub const READER: &str = "__fuzz_read";

/// A generated module and what the targets need to know of it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The module's bytes (after [`rewrite`]).
    pub wasm: Vec<u8>,
    /// Exported functions of type `() -> i32` or `() -> ()` (the engine's plugin functions, the
    /// reader and initialisers included), in export order.
    pub functions: Vec<String>,
    /// Every global: its value type, whether it is mutable, and its export name if exported.
    pub globals: Vec<GlobalInfo>,
    /// Whether the module has a memory.
    pub has_memory: bool,
}

/// One global of a generated module.
#[derive(Debug, Clone)]
pub struct GlobalInfo {
    /// Its value type.
    pub ty: ValType,
    /// Whether it is mutable.
    pub mutable: bool,
    /// The name it is exported as, if it is.
    pub export: Option<String>,
}

/// The features the plugin engine runs (wasmi 2 as the engine configures it): no SIMD, threads,
/// exceptions, GC, memory64, multi-memory, custom page sizes or wide arithmetic.
fn base_config(rng: &mut Rng) -> wasm_smith::Config {
    wasm_smith::Config {
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        custom_descriptors_enabled: false,
        custom_page_sizes_enabled: false,
        memory64_enabled: false,
        wide_arithmetic_enabled: false,
        compact_imports_enabled: false,
        acquire_release_atomics_enabled: false,
        multibyte_array_access_enabled: false,
        allow_invalid_funcs: false,
        bulk_memory_enabled: true,
        reference_types_enabled: rng.chance(1, 2),
        tail_call_enabled: true,
        multi_value_enabled: true,
        extended_const_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        disallow_traps: rng.chance(1, 2),
        max_memories: 1,
        max_memory32_bytes: 2 * 65_536,
        max_tables: 2,
        max_table_elements: 256,
        max_funcs: rng.range(1, 12) as usize,
        max_instructions: rng.range(10, 150) as usize,
        max_types: 16,
        max_globals: rng.range(0, 6) as usize,
        max_data_segments: 4,
        max_element_segments: 4,
        max_elements: 32,
        max_nesting_depth: 6,
        max_tags: 0,
        max_imports: 40,
        max_type_size: 200,
        ..wasm_smith::Config::default()
    }
}

/// The exports a generated module must have, as a module for wasm-smith's `exports` option:
/// `functions` functions `f0`, `f1`, ... of type `() -> i32`, a memory `memory` (if `memory`),
/// `_initialize` (if `initializer`) and, for `globals`, exported numeric globals `g0`, `g1`, ...
fn exports_spec(
    rng: &mut Rng,
    functions: usize,
    memory: bool,
    initializer: bool,
    globals: usize,
) -> Vec<u8> {
    let mut wat = String::from("(module\n");
    for i in 0..functions {
        wat.push_str(&format!(
            "  (func (export \"f{i}\") (result i32) unreachable)\n"
        ));
    }
    if initializer {
        wat.push_str("  (func (export \"_initialize\"))\n");
    }
    if memory {
        let min = rng.range(0, 2);
        let max = if rng.chance(1, 2) {
            format!(" {}", min + rng.range(0, 4))
        } else {
            String::new()
        };
        wat.push_str(&format!("  (memory (export \"memory\") {min}{max})\n"));
    }
    for i in 0..globals {
        let ty = *rng.pick(&["i32", "i64", "f32", "f64"]);
        let mutable = rng.chance(3, 4);
        let ty = if mutable {
            format!("(mut {ty})")
        } else {
            ty.to_owned()
        };
        let init = match ty.trim_start_matches("(mut ").trim_end_matches(')') {
            "i32" => "i32.const 0",
            "i64" => "i64.const 0",
            "f32" => "f32.const 0",
            _ => "f64.const 0",
        };
        wat.push_str(&format!("  (global (export \"g{i}\") {ty} ({init}))\n"));
    }
    wat.push(')');
    wat::parse_str(&wat).expect("the exports spec is valid WAT")
}

/// A module whose imports are the whole plugin ABI, for wasm-smith's `available_imports`.
pub fn abi_imports() -> Vec<u8> {
    let mut wat = String::from("(module\n");
    for f in plugin_engine::IMPORTS
        .iter()
        .chain(plugin_engine::WASI_IMPORTS)
    {
        let params: Vec<String> = f.params.iter().map(|t| t.to_string()).collect();
        let results: Vec<String> = f.results.iter().map(|t| t.to_string()).collect();
        wat.push_str(&format!(
            "  (import \"{}\" \"{}\" (func (param {}) (result {})))\n",
            f.module,
            f.name,
            params.join(" "),
            results.join(" ")
        ));
    }
    wat.push(')');
    wat::parse_str(&wat).expect("the ABI imports are valid WAT")
}

fn smith(config: wasm_smith::Config, rng: &mut Rng) -> Result<Vec<u8>, String> {
    let len = rng.range(64, 8192) as usize;
    let bytes = rng.bytes(len);
    let mut u = Unstructured::new(&bytes);
    wasm_smith::Module::new(config, &mut u)
        .map(|m| m.to_bytes())
        .map_err(|e| format!("wasm-smith: {e}"))
}

/// A plugin: imports from the ABI, `() -> i32` exports, usually a memory named `memory`, and the
/// reader.
pub fn plugin_module(rng: &mut Rng) -> Result<Generated, String> {
    let mut config = base_config(rng);
    // The only memory is the exported one of the spec (wasm-smith adds what the spec needs).
    config.max_memories = 0;
    let memory = rng.chance(7, 8);
    let functions = rng.range(1, 4) as usize;
    let initializer = rng.chance(1, 8);
    config.exports = Some(exports_spec(rng, functions, memory, initializer, 0));
    config.available_imports = Some(abi_imports());
    let wasm = smith(config, rng)?;
    rewrite(&wasm, true, false)
}

/// A module without imports for the differential run: NaNs canonicalised, all of its globals
/// exported (`g0`, ...), `() -> i32` exports `f0`, ...
pub fn pure_module(rng: &mut Rng) -> Result<Generated, String> {
    let mut config = base_config(rng);
    config.canonicalize_nans = true;
    config.max_imports = 0;
    config.max_globals = 0;
    config.max_memories = 0;
    // wasmtime is built without GC support, which `externref` needs.
    config.reference_types_enabled = false;
    let memory = rng.chance(7, 8);
    let functions = rng.range(1, 4) as usize;
    let globals = rng.range(0, 4) as usize;
    config.exports = Some(exports_spec(rng, functions, memory, false, globals));
    let wasm = smith(config, rng)?;
    rewrite(&wasm, false, true)
}

/// Replaces a NaN on top of the stack with the canonical one, as wasm-smith does after
/// arithmetic: `scratch` is the f32 scratch local, `scratch + 1` the f64 one.
fn canonicalize_nan(f: &mut wasm_encoder::Function, f32: bool, scratch: u32) {
    let local = if f32 { scratch } else { scratch + 1 };
    f.instruction(&Instruction::LocalTee(local));
    f.instruction(&if f32 {
        Instruction::F32Const(f32::from_bits(0x7fc0_0000).into())
    } else {
        Instruction::F64Const(f64::from_bits(0x7ff8_0000_0000_0000).into())
    });
    f.instruction(&Instruction::LocalGet(local));
    f.instruction(&Instruction::LocalGet(local));
    f.instruction(&if f32 {
        Instruction::F32Eq
    } else {
        Instruction::F64Eq
    });
    f.instruction(&Instruction::Select);
}

/// What [`rewrite`] learns about a module before rewriting it.
#[derive(Default)]
struct Facts {
    types: u32,
    func_types: Vec<u32>,
    imported_funcs: u32,
    globals: Vec<(ValType, bool)>,
    has_memory: bool,
    exports: Vec<(String, wasmparser::ExternalKind, u32)>,
    signatures: Vec<Option<(Vec<ValType>, Vec<ValType>)>>,
}

fn facts(wasm: &[u8]) -> Result<Facts, String> {
    let mut facts = Facts::default();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    let ty = ty.map_err(|e| e.to_string())?;
                    facts.types += 1;
                    facts
                        .signatures
                        .push(Some((ty.params().to_vec(), ty.results().to_vec())));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    match import.ty {
                        wasmparser::TypeRef::Func(t) => {
                            facts.imported_funcs += 1;
                            facts.func_types.push(t);
                        }
                        wasmparser::TypeRef::Global(g) => {
                            facts.globals.push((g.content_type, g.mutable))
                        }
                        wasmparser::TypeRef::Memory(_) => facts.has_memory = true,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    facts.func_types.push(t.map_err(|e| e.to_string())?);
                }
            }
            Payload::MemorySection(reader) => facts.has_memory |= reader.count() > 0,
            Payload::GlobalSection(reader) => {
                for g in reader {
                    let g = g.map_err(|e| e.to_string())?;
                    facts.globals.push((g.ty.content_type, g.ty.mutable));
                }
            }
            Payload::ExportSection(reader) => {
                for e in reader {
                    let e = e.map_err(|e| e.to_string())?;
                    facts.exports.push((e.name.to_owned(), e.kind, e.index));
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

fn is_numeric(ty: ValType) -> bool {
    matches!(
        ty,
        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
    )
}

/// The rewrite: a reencoder with our changes to globals and instructions, and the reader.
struct Rewriter<'f> {
    facts: &'f Facts,
    reader: bool,
    export_globals: bool,
    /// Canonicalise the NaNs `f32.demote_f64` and `f64.promote_f32` make (wasm-smith's
    /// `canonicalize_nans` leaves them out; wasmtime canonicalises them, wasmi keeps the payload:
    /// both are right, so the differential run must not depend on it).
    canonical_conversions: bool,
    /// Function bodies rewritten so far.
    bodies: u32,
}

impl Rewriter<'_> {
    /// A function with `func`'s locals plus a scratch f32 and f64 (their first index, or 0 when
    /// conversions are not canonicalised and none is added).
    fn function_with_scratch(
        &mut self,
        func: &wasmparser::FunctionBody<'_>,
    ) -> Result<(wasm_encoder::Function, u32), ReencodeError<String>> {
        if !self.canonical_conversions {
            return Ok((self.new_function_with_parsed_locals(func)?, 0));
        }
        let index = self.facts.imported_funcs + self.bodies;
        let params = self
            .facts
            .func_types
            .get(index as usize)
            .and_then(|ty| self.facts.signatures.get(*ty as usize))
            .and_then(Option::as_ref)
            .map_or(0, |(params, _)| params.len() as u32);
        let mut locals = Vec::new();
        let mut declared = 0;
        for local in func.get_locals_reader()? {
            let (count, ty) = local?;
            declared += count;
            locals.push((count, self.val_type(ty)?));
        }
        locals.extend([(1, EncType::F32), (1, EncType::F64)]);
        Ok((wasm_encoder::Function::new(locals), params + declared))
    }

    /// Mutable reference globals become immutable (install refuses them); `global.set` of them
    /// becomes `drop`.
    fn frozen(&self, global: u32) -> bool {
        self.facts
            .globals
            .get(global as usize)
            .is_some_and(|(ty, mutable)| *mutable && !is_numeric(*ty))
    }

    /// The exported `() -> i32` functions that get a wrapper `ok_<name>` (with the reader): it
    /// calls the function and returns 0, so that the call succeeds and commits whenever the
    /// function finishes (a random return code is rarely 0).
    fn wrapped(&self) -> Vec<(String, u32)> {
        self.facts
            .exports
            .iter()
            .filter(|(name, kind, _)| {
                *kind == wasmparser::ExternalKind::Func && name.starts_with('f')
            })
            .filter(|(_, _, index)| {
                let ty = self.facts.func_types.get(*index as usize);
                let sig = ty.and_then(|t| self.facts.signatures.get(*t as usize));
                matches!(sig, Some(Some((params, results))) if params.is_empty()
                    && results.as_slice() == [ValType::I32])
            })
            .map(|(name, _, index)| (name.clone(), *index))
            .collect()
    }

    fn reader_body(&self) -> wasm_encoder::Function {
        const BASIS: i32 = 0x811c_9dc5_u32 as i32;
        const PRIME: i32 = 16_777_619;
        // Locals: 0 i (i32), 1 h (i32), 2 end (i32), 3 t (i64).
        let mut f = wasm_encoder::Function::new([(3, EncType::I32), (1, EncType::I64)]);
        let mix = |f: &mut wasm_encoder::Function| {
            // Expects the value (i32) on the stack: h = (h ^ v) * PRIME.
            f.instruction(&Instruction::LocalGet(1));
            f.instruction(&Instruction::I32Xor);
            f.instruction(&Instruction::I32Const(PRIME));
            f.instruction(&Instruction::I32Mul);
            f.instruction(&Instruction::LocalSet(1));
        };
        let mix64 = |f: &mut wasm_encoder::Function| {
            // Expects the value (i64) on the stack.
            f.instruction(&Instruction::LocalSet(3));
            f.instruction(&Instruction::LocalGet(3));
            f.instruction(&Instruction::I32WrapI64);
            mix(f);
            f.instruction(&Instruction::LocalGet(3));
            f.instruction(&Instruction::I64Const(32));
            f.instruction(&Instruction::I64ShrU);
            f.instruction(&Instruction::I32WrapI64);
            mix(f);
        };
        f.instruction(&Instruction::I32Const(BASIS));
        f.instruction(&Instruction::LocalSet(1));
        if self.facts.has_memory {
            f.instruction(&Instruction::MemorySize(0));
            mix(&mut f);
            f.instruction(&Instruction::MemorySize(0));
            f.instruction(&Instruction::I32Const(16));
            f.instruction(&Instruction::I32Shl);
            f.instruction(&Instruction::LocalSet(2));
            f.instruction(&Instruction::Block(BlockType::Empty));
            f.instruction(&Instruction::Loop(BlockType::Empty));
            f.instruction(&Instruction::LocalGet(0));
            f.instruction(&Instruction::LocalGet(2));
            f.instruction(&Instruction::I32GeU);
            f.instruction(&Instruction::BrIf(1));
            f.instruction(&Instruction::LocalGet(0));
            f.instruction(&Instruction::I64Load(MemArg {
                offset: 0,
                align: 3,
                target: wasm_encoder::MemArgTarget::Memory(0),
                ordering: None,
            }));
            mix64(&mut f);
            f.instruction(&Instruction::LocalGet(0));
            f.instruction(&Instruction::I32Const(8));
            f.instruction(&Instruction::I32Add);
            f.instruction(&Instruction::LocalSet(0));
            f.instruction(&Instruction::Br(0));
            f.instruction(&Instruction::End);
            f.instruction(&Instruction::End);
        }
        for (index, (ty, mutable)) in self.facts.globals.iter().enumerate() {
            if !*mutable || !is_numeric(*ty) {
                continue;
            }
            f.instruction(&Instruction::GlobalGet(index as u32));
            match ty {
                ValType::I32 => mix(&mut f),
                ValType::F32 => {
                    f.instruction(&Instruction::I32ReinterpretF32);
                    mix(&mut f);
                }
                ValType::I64 => mix64(&mut f),
                _ => {
                    f.instruction(&Instruction::I64ReinterpretF64);
                    mix64(&mut f);
                }
            }
        }
        f.instruction(&Instruction::LocalGet(1));
        f.instruction(&Instruction::End);
        f
    }
}

impl Reencode for Rewriter<'_> {
    type Error = String;

    fn global_type(
        &mut self,
        global_ty: wasmparser::GlobalType,
    ) -> Result<wasm_encoder::GlobalType, ReencodeError<Self::Error>> {
        let mut ty = utils::global_type(self, global_ty)?;
        if global_ty.mutable && !is_numeric(global_ty.content_type) {
            ty.mutable = false;
        }
        Ok(ty)
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        let (mut f, scratch) = self.function_with_scratch(&func)?;
        self.bodies += 1;
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            let drops = match op {
                Operator::F32DemoteF64 | Operator::F64PromoteF32 if self.canonical_conversions => {
                    let f32 = matches!(op, Operator::F32DemoteF64);
                    f.instruction(&self.instruction(op)?);
                    canonicalize_nan(&mut f, f32, scratch);
                    continue;
                }
                Operator::TableSet { .. } => 2,
                Operator::TableFill { .. }
                | Operator::TableCopy { .. }
                | Operator::TableInit { .. } => 3,
                Operator::TableGrow { .. } => {
                    f.instruction(&Instruction::Drop);
                    f.instruction(&Instruction::Drop);
                    f.instruction(&Instruction::I32Const(-1));
                    continue;
                }
                Operator::ElemDrop { .. } | Operator::DataDrop { .. } => {
                    f.instruction(&Instruction::Nop);
                    continue;
                }
                Operator::GlobalSet { global_index } if self.frozen(global_index) => 1,
                other => {
                    f.instruction(&self.instruction(other)?);
                    continue;
                }
            };
            for _ in 0..drops {
                f.instruction(&Instruction::Drop);
            }
        }
        code.function(&f);
        Ok(())
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        utils::parse_type_section(self, types, section)?;
        if self.reader {
            types.ty().function([], [EncType::I32]);
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        utils::parse_function_section(self, functions, section)?;
        if self.reader {
            functions.function(self.facts.types);
            for _ in self.wrapped() {
                functions.function(self.facts.types);
            }
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        utils::parse_export_section(self, exports, section)?;
        if self.export_globals {
            for (index, (_, mutable)) in self.facts.globals.iter().enumerate() {
                let index = index as u32;
                let exported =
                    self.facts.exports.iter().any(|(_, kind, i)| {
                        *kind == wasmparser::ExternalKind::Global && *i == index
                    });
                if *mutable && !self.frozen(index) && !exported {
                    exports.export(
                        &format!("__g{index}"),
                        wasm_encoder::ExportKind::Global,
                        index,
                    );
                }
            }
        }
        if self.reader {
            let index = self.facts.func_types.len() as u32;
            exports.export(READER, wasm_encoder::ExportKind::Func, index);
            for (k, (name, _)) in self.wrapped().iter().enumerate() {
                let wrapper = index + 1 + k as u32;
                exports.export(
                    &format!("ok_{name}"),
                    wasm_encoder::ExportKind::Func,
                    wrapper,
                );
            }
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        utils::parse_code_section(self, code, section)?;
        if self.reader {
            code.function(&self.reader_body());
            for (_, index) in self.wrapped() {
                let mut f = wasm_encoder::Function::new([]);
                f.instruction(&Instruction::Call(index));
                f.instruction(&Instruction::Drop);
                f.instruction(&Instruction::I32Const(0));
                f.instruction(&Instruction::End);
                code.function(&f);
            }
        }
        Ok(())
    }
}

/// Rewrites `wasm` as the module docs say; with `reader`, adds the reader; with `pure` (the
/// differential run's modules), exports every mutable global not exported yet (as
/// `__g<index>`) and canonicalises the NaNs of float conversions. The module must have type,
/// function, export and code sections (ours always export a function).
pub fn rewrite(wasm: &[u8], reader: bool, pure: bool) -> Result<Generated, String> {
    let facts = facts(wasm)?;
    let mut module = wasm_encoder::Module::new();
    let mut rewriter = Rewriter {
        facts: &facts,
        reader,
        export_globals: pure,
        canonical_conversions: pure,
        bodies: 0,
    };
    rewriter
        .parse_core_module(&mut module, wasmparser::Parser::new(0), wasm)
        .map_err(|e| format!("rewrite: {e}"))?;
    let wasm = module.finish();
    let rewritten = self::facts(&wasm)?;
    let functions = rewritten
        .exports
        .iter()
        .filter(|(_, kind, _)| *kind == wasmparser::ExternalKind::Func)
        .filter(|(_, _, index)| {
            let ty = rewritten.func_types.get(*index as usize);
            let sig = ty
                .and_then(|t| rewritten.signatures.get(*t as usize))
                .cloned();
            matches!(sig, Some(Some((params, results))) if params.is_empty()
                && (results.is_empty() || results == [ValType::I32]))
        })
        .map(|(name, _, _)| name.clone())
        .collect();
    let globals = rewritten
        .globals
        .iter()
        .enumerate()
        .map(|(index, (ty, mutable))| GlobalInfo {
            ty: *ty,
            mutable: *mutable,
            export: rewritten
                .exports
                .iter()
                .find(|(_, kind, i)| {
                    *kind == wasmparser::ExternalKind::Global && *i == index as u32
                })
                .map(|(name, _, _)| name.clone()),
        })
        .collect();
    Ok(Generated {
        wasm,
        functions,
        globals,
        has_memory: rewritten.has_memory,
    })
}

/// Validates `wasm` with the features the engine runs (the same list as [`base_config`]).
pub fn validate(wasm: &[u8]) -> Result<(), String> {
    use wasmparser::WasmFeatures as F;
    let features = F::MUTABLE_GLOBAL
        | F::SATURATING_FLOAT_TO_INT
        | F::SIGN_EXTENSION
        | F::MULTI_VALUE
        | F::BULK_MEMORY
        | F::REFERENCE_TYPES
        | F::TAIL_CALL
        | F::EXTENDED_CONST
        | F::FLOATS
        | F::GC_TYPES;
    wasmparser::Validator::new_with_features(features)
        .validate_all(wasm)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_validate_and_have_the_reader() {
        for case in 0..40 {
            let mut rng = Rng::for_case("wasm-test", 0, case);
            let module = plugin_module(&mut rng).expect("a module");
            validate(&module.wasm).expect("valid");
            assert!(module.functions.iter().any(|f| f == READER));
            assert!(module.functions.iter().any(|f| f == "f0"));
        }
    }

    /// wasm leaves the NaN a conversion makes open: wasmtime as the differential run configures
    /// it canonicalises, wasmi keeps the payload (seed 20261204, cases 2169, 14653, 23389 of
    /// 100,000 differed only by that). Pure modules canonicalise it themselves.
    #[test]
    fn pure_modules_canonicalise_the_nans_of_conversions() {
        let wasm = wat::parse_str(
            r#"(module
              (global (mut f64) (f64.const 0))
              (func (export "f0") (result i32)
                f64.const -nan:0xfffffffffffff
                f32.demote_f64
                i32.reinterpret_f32)
              (func (export "f1") (result i32)
                f32.const -nan:0x7fffff
                f64.promote_f32
                global.set 0
                i32.const 0))"#,
        )
        .expect("wat");
        let module = rewrite(&wasm, false, true).expect("rewritten");
        // Without canonicalisation of its own, wasmtime keeps the payload as wasmi does.
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &module.wasm).expect("compiles");
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiates");
        let call = |store: &mut wasmtime::Store<()>, name: &str| {
            instance
                .get_typed_func::<(), i32>(&mut *store, name)
                .expect("exported")
                .call(&mut *store, ())
                .expect("runs")
        };
        assert_eq!(call(&mut store, "f0") as u32, 0x7fc0_0000);
        call(&mut store, "f1");
        let global = instance
            .get_global(&mut store, "__g0")
            .expect("exported global")
            .get(&mut store);
        assert_eq!(global.f64().map(f64::to_bits), Some(0x7ff8_0000_0000_0000));
    }

    #[test]
    fn pure_modules_validate_and_export_every_mutable_global() {
        for case in 0..40 {
            let mut rng = Rng::for_case("wasm-test", 1, case);
            let module = pure_module(&mut rng).expect("a module");
            validate(&module.wasm).expect("valid");
            for global in &module.globals {
                assert!(
                    !global.mutable || global.export.is_some(),
                    "case {case}: {:?}",
                    module.globals
                );
            }
        }
    }
}
