//! Per-function instruction profiles of a message (opt-in: [`crate::Runtime::profiling`]).
//!
//! A profiling runtime rewrites the canister module before compiling it: two imports,
//! `profile.enter(i32)` and `profile.exit(i32)`, are appended to the import section (every
//! function index after them moves up by two), and each defined function `f` becomes
//!
//! ```text
//! i32.const f  call $enter  block (result ..)  <f's body>  end  i32.const f  call $exit
//! ```
//!
//! with `i32.const f  call $exit` also before each `return` and tail call. A branch to the
//! function's own label now leaves the block and runs the exit probe; `block` and `end` cost
//! nothing. Each probe reads the message's instruction count (fuel spent + System API charges +
//! top-ups, as the runtime counts it) and charges what ran since the last probe to the function
//! on top of a shadow stack, less the probe's own cost ([`PROBE`]: `i32.const` 1 + `call` 5). So
//! the self counts add up exactly to the unprofiled count of the message (the profiled module
//! charges the same for everything else). Attribution: a call's cost (5, and the callee's entry
//! charge) counts to the caller; a `return` (1) to the caller too, as it runs after the exit
//! probe; a System API call's charge to the function that made it. A frame still open when the
//! message ends (a trap) is closed there.

use std::collections::HashMap;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{BlockType, CodeSection, EntityType, ImportSection, Instruction, TypeSection};
use wasmtime::wasmparser::{
    self, BinaryReaderError, KnownCustom, Name, Operator, Parser, Payload, TypeRef,
};

/// Import module of the probes.
pub(crate) const MODULE: &str = "profile";
/// What one probe (`i32.const` 1, `call` 5) costs in the runtime's table.
pub const PROBE: u64 = 6;

/// A module with probes, and the names of its functions.
pub(crate) struct Instrumented {
    /// The rewritten module.
    pub wasm: Vec<u8>,
    /// Each function's name (demangled), by index in the original module.
    pub names: Vec<String>,
}

/// Why a module could not be instrumented.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    /// The module did not parse or re-encode.
    #[error("cannot instrument the module: {0}")]
    Encode(String),
    /// Probes are appended to existing type and import sections.
    #[error("the module has no type or no import section, which profiling appends to")]
    NoImports,
}

impl From<BinaryReaderError> for InstrumentError {
    fn from(e: BinaryReaderError) -> Self {
        Self::Encode(e.to_string())
    }
}

/// Adds the probes to `wasm` (see the module docs).
pub(crate) fn instrument(wasm: &[u8]) -> Result<Instrumented, InstrumentError> {
    let mut rewriter = Rewriter::default();
    let mut has_types = false;
    let mut has_imports = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(reader) => {
                has_types = true;
                for ty in reader.into_iter_err_on_gc_types() {
                    let ty = ty?;
                    rewriter.results.push(ty.results().to_vec());
                }
            }
            Payload::ImportSection(reader) => {
                has_imports = true;
                for import in reader.into_imports() {
                    let import = import?;
                    if let TypeRef::Func(ty) = import.ty {
                        rewriter.imported += 1;
                        rewriter
                            .names
                            .push(format!("{}.{}", import.module, import.name));
                        rewriter.func_types.push(ty);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    rewriter.func_types.push(ty?);
                    let index = rewriter.names.len();
                    rewriter.names.push(format!("func[{index}]"));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    if export.kind == wasmparser::ExternalKind::Func
                        && let Some(slot) = rewriter.names.get_mut(export.index as usize)
                    {
                        *slot = export.name.to_string();
                    }
                }
            }
            Payload::CustomSection(section) => {
                if let KnownCustom::Name(reader) = section.as_known() {
                    for name in reader {
                        if let Ok(Name::Function(map)) = name {
                            for naming in map.into_iter().flatten() {
                                if let Some(slot) = rewriter.names.get_mut(naming.index as usize) {
                                    *slot = demangle(naming.name);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !has_types || !has_imports {
        return Err(InstrumentError::NoImports);
    }
    rewriter.probe_type = rewriter.results.len() as u32;
    let mut module = wasm_encoder::Module::new();
    rewriter
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| InstrumentError::Encode(e.to_string()))?;
    Ok(Instrumented {
        wasm: module.finish(),
        names: rewriter.names,
    })
}

/// A Rust symbol demangled without its hash; any other name as it is.
fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(symbol) => format!("{symbol:#}"),
        Err(_) => name.to_string(),
    }
}

/// The re-encoder that adds the probes.
#[derive(Default)]
struct Rewriter {
    /// Results of each type of the type section.
    results: Vec<Vec<wasmparser::ValType>>,
    /// Type index of every function, imported ones first.
    func_types: Vec<u32>,
    /// Imported functions.
    imported: u32,
    /// Function names, by original index.
    names: Vec<String>,
    /// Index of the probes' type `(i32) -> ()`, appended to the type section.
    probe_type: u32,
    /// Block types appended for bodies with several results, by type index of the function.
    multi_value: HashMap<u32, u32>,
    /// Defined functions re-encoded so far.
    bodies: u32,
}

impl Rewriter {
    fn enter(&self) -> u32 {
        self.imported
    }

    fn exit(&self) -> u32 {
        self.imported + 1
    }
}

/// A re-encoding result.
type Encoded<T> = Result<T, reencode::Error>;

impl Reencode for Rewriter {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Encoded<u32> {
        Ok(if func < self.imported { func } else { func + 2 })
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Encoded<()> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([wasm_encoder::ValType::I32], []);
        // `[] -> results` for each function type with more than one result (a block's type).
        let mut next = self.probe_type + 1;
        for (index, results) in self.results.clone().into_iter().enumerate() {
            if results.len() > 1 {
                let results = results
                    .iter()
                    .map(|&t| self.val_type(t))
                    .collect::<Encoded<Vec<_>>>()?;
                types.ty().function([], results);
                self.multi_value.insert(index as u32, next);
                next += 1;
            }
        }
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Encoded<()> {
        reencode::utils::parse_import_section(self, imports, section)?;
        for name in ["enter", "exit"] {
            imports.import(MODULE, name, EntityType::Function(self.probe_type));
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        _module: &mut wasm_encoder::Module,
        _section: wasmparser::CustomSectionReader<'_>,
    ) -> Encoded<()> {
        // Names are kept in `Instrumented::names`; nothing else is needed to run.
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Encoded<()> {
        let index = self.imported + self.bodies;
        self.bodies += 1;
        let ty = self.func_types[index as usize];
        let block = match self.results[ty as usize].as_slice() {
            [] => BlockType::Empty,
            [one] => BlockType::Result(self.val_type(*one)?),
            _ => BlockType::FunctionType(self.multi_value[&ty]),
        };
        let (enter, exit) = (self.enter(), self.exit());
        let probe = |f: &mut wasm_encoder::Function, at: u32| {
            f.instruction(&Instruction::I32Const(index as i32));
            f.instruction(&Instruction::Call(at));
        };
        let mut f = self.new_function_with_parsed_locals(&func)?;
        probe(&mut f, enter);
        f.instruction(&Instruction::Block(block));
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            let last = reader.eof();
            match op {
                Operator::Return
                | Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::ReturnCallRef { .. } => probe(&mut f, exit),
                Operator::End if last => {
                    f.instruction(&Instruction::End);
                    probe(&mut f, exit);
                }
                _ => {}
            }
            f.instruction(&self.instruction(op)?);
        }
        code.function(&f);
        Ok(())
    }
}

/// The shadow stack and counts of one message, kept while it runs.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// The count at the last probe.
    last: u64,
    /// Open calls: function and what ran inside it so far (with its callees).
    stack: Vec<(u32, u64)>,
    /// Per function: self, inclusive, calls.
    counts: HashMap<u32, Counts>,
    /// What ran outside any function (before the first probe, after the last).
    outside: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    self_: u64,
    inclusive: u64,
    calls: u64,
}

impl Recorder {
    /// Charges what ran since the last probe (`used` now, less the probe's cost) to the top
    /// function.
    fn charge(&mut self, used: u64, probe: u64) {
        let ran = used.saturating_sub(self.last).saturating_sub(probe);
        self.last = used;
        match self.stack.last_mut() {
            Some((func, inside)) => {
                *inside += ran;
                self.counts.entry(*func).or_default().self_ += ran;
            }
            None => self.outside += ran,
        }
    }

    /// Probe at the entry of `func`.
    pub(crate) fn enter(&mut self, func: u32, used: u64) {
        self.charge(used, PROBE);
        self.counts.entry(func).or_default().calls += 1;
        self.stack.push((func, 0));
    }

    /// Probe at an exit of `func` (the top of the stack).
    pub(crate) fn exit(&mut self, func: u32, used: u64) {
        self.charge(used, PROBE);
        self.pop(func);
    }

    fn pop(&mut self, func: u32) {
        let Some((top, inside)) = self.stack.pop() else {
            return;
        };
        debug_assert_eq!(top, func, "exit probe of a function not on top");
        // A recursive call's time is in its outermost activation's.
        if !self.stack.iter().any(|&(f, _)| f == top) {
            self.counts.entry(top).or_default().inclusive += inside;
        }
        if let Some((_, parent)) = self.stack.last_mut() {
            *parent += inside;
        }
    }

    /// Closes the message at `used` instructions, with `names` by function index.
    pub(crate) fn finish(mut self, used: u64, names: &[String]) -> Profile {
        self.charge(used, 0);
        while let Some(&(func, _)) = self.stack.last() {
            self.pop(func);
        }
        let mut functions: Vec<FunctionCost> = self
            .counts
            .into_iter()
            .map(|(index, c)| FunctionCost {
                index,
                name: names
                    .get(index as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("func[{index}]")),
                self_instructions: c.self_,
                inclusive: c.inclusive,
                calls: c.calls,
            })
            .collect();
        functions.sort_by_key(|f| f.index);
        Profile {
            total: self.outside + functions.iter().map(|f| f.self_instructions).sum::<u64>(),
            outside: self.outside,
            functions,
        }
    }
}

/// Where one message's instructions went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The message's instructions, as an unprofiled run counts them: the profiled count less
    /// the probes'.
    pub total: u64,
    /// Instructions outside any function (the exported function's entry).
    pub outside: u64,
    /// Every function that ran, by index.
    pub functions: Vec<FunctionCost>,
}

/// One function's share of a [`Profile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCost {
    /// Index in the canister module.
    pub index: u32,
    /// Name from the module's name section, demangled; else an export name, else `func[i]`.
    pub name: String,
    /// Instructions in the function itself, System API charges of its calls included.
    pub self_instructions: u64,
    /// Instructions in the function and everything it called.
    pub inclusive: u64,
    /// Times it was entered.
    pub calls: u64,
}

#[cfg(test)]
mod tests;
