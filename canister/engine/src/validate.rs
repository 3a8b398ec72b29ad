//! Install-time checks of an untrusted module, before wasmi sees it: size, imports against the
//! ABI table, memory and table caps, the plugin functions it exports, and the features whose
//! state the engine could not save (see [`unsupported`]).

use plugin_host_api::InstallError;
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef, ValType};

use crate::abi::all_imports;
use crate::budget::limit;
use crate::echo;
use crate::limits::Limits;

/// Exports run once at install (reactor initialisers), never offered as plugin functions.
pub const INITIALIZERS: &[&str] = &["_initialize", "__wasm_call_ctors"];

/// A module exporting both [`LIST_FUNCTIONS`] and [`DISPATCH`] is a script runtime (e.g. the
/// QuickJS plugin): its plugin functions are also those its script defines. `__plugin_functions`
/// outputs their names, one per line, at install and whenever its config changes;
/// `__plugin_call` runs one of them, named in the config entry [`FUNCTION_KEY`]. Neither is
/// offered as a plugin function.
pub const LIST_FUNCTIONS: &str = "__plugin_functions";
/// See [`LIST_FUNCTIONS`].
pub const DISPATCH: &str = "__plugin_call";
/// The config entry `config_get` answers, during a dispatched call, with the script function's
/// name. Config keys starting with [`RESERVED_CONFIG_PREFIX`] are the host's: installs and
/// `set_config` refuse them.
pub const FUNCTION_KEY: &str = "plugin_host.function";
/// See [`FUNCTION_KEY`].
pub const RESERVED_CONFIG_PREFIX: &str = "plugin_host.";

/// What install learns about a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFacts {
    /// Exports of type `() -> i32` or `() -> ()`, sorted, initialisers and a script runtime's
    /// entry points excluded.
    pub functions: Vec<String>,
    /// Whether the module is a script runtime (see [`LIST_FUNCTIONS`]).
    pub script_runtime: bool,
    /// The first initialiser the module exports, if any.
    pub initializer: Option<String>,
    /// Declared maximum memory, if any.
    pub max_memory_pages: Option<u32>,
}

/// A module the engine refuses because it could not save and restore what it uses: the engine
/// persists a plugin's memory and numeric globals, not its tables or which segments it dropped.
fn unsupported(feature: &str, reason: &str) -> InstallError {
    InstallError::UnsupportedFeature {
        feature: feature.to_owned(),
        reason: reason.to_owned(),
    }
}

fn invalid(reason: impl ToString) -> InstallError {
    InstallError::InvalidWasm {
        reason: echo(&reason.to_string()),
    }
}

/// Checks `wasm` against the host's rules. Full validation is wasmi's (`Module::new`).
pub fn inspect(wasm: &[u8], limits: &Limits) -> Result<ModuleFacts, InstallError> {
    if wasm.len() as u64 > limits.max_module_bytes {
        return Err(InstallError::TooLarge {
            size: wasm.len() as u64,
            max: limits.max_module_bytes,
        });
    }
    let mut types: Vec<Option<(Vec<ValType>, Vec<ValType>)>> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, u32)> = Vec::new();
    let mut memories = 0;
    let mut memory_exported = false;
    let mut max_memory_pages = None;

    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding, .. } if encoding != wasmparser::Encoding::Module => {
                return Err(invalid("components are not supported, only core modules"));
            }
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    types.push(Some({
                        let f = ty.map_err(invalid)?;
                        (f.params().to_vec(), f.results().to_vec())
                    }));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    let forbidden = |reason: &str| InstallError::ForbiddenImport {
                        module: echo(import.module),
                        name: echo(import.name),
                        reason: reason.to_owned(),
                    };
                    let TypeRef::Func(index) = import.ty else {
                        return Err(forbidden("only function imports are provided"));
                    };
                    let Some(function) =
                        all_imports().find(|f| f.module == import.module && f.name == import.name)
                    else {
                        return Err(forbidden("not a host function of plugin_host"));
                    };
                    match types.get(index as usize) {
                        Some(Some((p, r))) if p == function.params && r == function.results => {}
                        _ => return Err(forbidden("wrong signature")),
                    }
                    func_types.push(index);
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    func_types.push(index.map_err(invalid)?);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(invalid)?;
                    memories += 1;
                    if memories > 1 {
                        return Err(invalid("more than one memory"));
                    }
                    if memory.memory64 || memory.shared {
                        return Err(invalid("64-bit and shared memories are not supported"));
                    }
                    if memory.initial > u64::from(limits.max_memory_pages) {
                        return Err(InstallError::LimitExceeded(limit(
                            "memory pages",
                            memory.initial,
                            limits.max_memory_pages.into(),
                        )));
                    }
                    max_memory_pages = memory.maximum.map(|m| m.min(u32::MAX.into()) as u32);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(invalid)?;
                    if table.ty.initial > u64::from(limits.max_table_elements) {
                        return Err(InstallError::LimitExceeded(limit(
                            "table elements",
                            table.ty.initial,
                            limits.max_table_elements.into(),
                        )));
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let ty = global.map_err(invalid)?.ty;
                    if ty.mutable
                        && !matches!(
                            ty.content_type,
                            ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
                        )
                    {
                        return Err(unsupported(
                            "mutable reference global",
                            "only numeric mutable globals are saved between calls",
                        ));
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut operators = body.get_operators_reader().map_err(invalid)?;
                while !operators.eof() {
                    if let Some((feature, reason)) =
                        unsaved_state(&operators.read().map_err(invalid)?)
                    {
                        return Err(unsupported(feature, reason));
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    if export.name.len() > limits.max_export_name_bytes {
                        return Err(InstallError::LimitExceeded(limit(
                            "export name bytes",
                            export.name.len() as u64,
                            limits.max_export_name_bytes as u64,
                        )));
                    }
                    match export.kind {
                        ExternalKind::Func => exports.push((export.name.to_owned(), export.index)),
                        ExternalKind::Memory => memory_exported = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    // The host saves and restores memory through its export (Extism PDKs export it as `memory`).
    if memories > 0 && !memory_exported {
        return Err(invalid("the module's memory must be exported"));
    }
    let mut functions = Vec::new();
    let mut initializer = None;
    let mut entry_points = 0;
    for (name, index) in exports {
        let signature = func_types
            .get(index as usize)
            .and_then(|t| types.get(*t as usize))
            .and_then(|t| t.as_ref());
        let Some((params, results)) = signature else {
            continue;
        };
        let plugin_fn = params.is_empty() && (results.is_empty() || results == &[ValType::I32]);
        if !plugin_fn {
            continue;
        }
        if INITIALIZERS.contains(&name.as_str()) {
            initializer.get_or_insert(name);
        } else if name == LIST_FUNCTIONS || name == DISPATCH {
            entry_points += 1;
        } else {
            functions.push(name);
        }
    }
    let script_runtime = match entry_points {
        0 => false,
        2 => true,
        _ => {
            return Err(invalid(format!(
                "a script runtime exports both `{LIST_FUNCTIONS}` and `{DISPATCH}`, as `() -> i32`"
            )));
        }
    };
    // A script runtime's functions come from its script, checked once it has run.
    if functions.is_empty() && !script_runtime {
        return Err(InstallError::NoPluginFunctions);
    }
    if functions.len() > limits.max_plugin_functions {
        return Err(InstallError::LimitExceeded(limit(
            "plugin functions",
            functions.len() as u64,
            limits.max_plugin_functions as u64,
        )));
    }
    functions.sort();
    Ok(ModuleFacts {
        functions,
        script_runtime,
        initializer,
        max_memory_pages,
    })
}

/// Instructions that change state the engine does not save: tables (it would restore them as
/// instantiated) and dropped segments (a restored instance has them all again).
fn unsaved_state(operator: &Operator<'_>) -> Option<(&'static str, &'static str)> {
    const TABLES: &str =
        "tables are not saved between calls: a plugin may read its table, not change it";
    const SEGMENTS: &str = "dropped segments are not saved between calls";
    Some(match operator {
        Operator::TableSet { .. } => ("table.set", TABLES),
        Operator::TableGrow { .. } => ("table.grow", TABLES),
        Operator::TableFill { .. } => ("table.fill", TABLES),
        Operator::TableCopy { .. } => ("table.copy", TABLES),
        Operator::TableInit { .. } => ("table.init", TABLES),
        Operator::ElemDrop { .. } => ("elem.drop", SEGMENTS),
        Operator::DataDrop { .. } => ("data.drop", SEGMENTS),
        _ => return None,
    })
}
