//! Installing code: `install` and `upgrade_plugin`, and what both need (the caps on what
//! installs store, compiling, a new instance with its start function and initialiser run).

use std::collections::BTreeMap;

use candid::Principal;
use ic_stable_structures::Memory;
use plugin_host_api::{InstallError, InvokeError};
use sha2::{Digest, Sha256};
use wasmi::Module;

use crate::abi::{CallContext, HostState, Seed, WASI};
use crate::budget::limit;
use crate::call::not_run;
use crate::instance::{CompiledModule, LiveInstance};
use crate::request::{InstallRequest, UpgradePluginRequest};
use crate::script::ListingError;
use crate::store::PluginRecord;
use crate::{Engine, Writes, echo, validate};

/// Whether `Engine::compile` validates every function body up front.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validate {
    /// New bytes from a user: an invalid module must be refused at install.
    Yes,
    /// Bytes from stable memory, validated in full when they were installed.
    No,
}

impl<M: Memory + Clone> Engine<M> {
    /// Validates and installs a module; runs its start function and initialiser once; stores
    /// its initial state. Nothing is stored unless everything succeeds.
    pub fn install(
        &mut self,
        req: InstallRequest<'_>,
        now_ns: u64,
    ) -> Result<PluginRecord, InstallError> {
        validate_name(req.name)?;
        if self.store.has_record(req.name) {
            return Err(InstallError::NameTaken {
                name: req.name.to_owned(),
            });
        }
        self.check_settings(&req.config, &req.invoke_policy)
            .map_err(InstallError::LimitExceeded)?;
        self.check_plugin_counts(&req.owner)?;
        let facts = validate::inspect(req.wasm, &self.limits)?;
        let sha256: [u8; 32] = Sha256::digest(req.wasm).into();
        if !self.store.has_code(&sha256) {
            self.check_code_bytes(req.wasm.len() as u64)?;
        }
        let host = self.host_state(req.config.clone(), BTreeMap::new());
        let context = self.context(req.owner, now_ns, req.name);
        let mut live = self.new_instance(
            sha256,
            req.wasm,
            host,
            facts.initializer.as_deref(),
            context.clone(),
        )?;
        let functions = self.plugin_functions(&mut live, context, facts.functions)?;
        let mut record = PluginRecord {
            id: 0,
            name: req.name.to_owned(),
            owner: req.owner,
            code_sha256: sha256,
            code_size: req.wasm.len() as u64,
            functions,
            memory_pages: live.memory_pages(),
            max_memory_pages: facts.max_memory_pages,
            fuel_limit: req
                .fuel_limit
                .unwrap_or(self.limits.default_fuel)
                .min(self.limits.max_fuel),
            calls: 0,
            fuel_used_total: 0,
            installed_at_ns: now_ns,
            updated_at_ns: now_ns,
            invoke_policy: req.invoke_policy,
            config: req.config,
        };
        let code = if self.store.has_code(&sha256) {
            0
        } else {
            record.code_size
        };
        self.reserve(Writes {
            code,
            record: record.stored_bytes(),
            ..live.initial_writes()
        })
        .map_err(InstallError::StorageFull)?;
        record.id = self.store.next_id();
        self.store.add_code_ref(sha256, req.wasm);
        live.save_initial(&mut self.store, record.id);
        self.store.put_record(&record);
        if let Some(totals) = self.totals.get_mut() {
            *totals.plugins_by_owner.entry(record.owner).or_default() += 1;
            totals.code_bytes += code;
        }
        self.caches.insert_instance(record.name.clone(), live);
        self.make_room(None);
        Ok(record)
    }

    /// Replaces a plugin's code. Its vars and config are kept; its linear memory and globals start
    /// from the new module (a new build lays memory out differently, so old memory cannot be
    /// reused safely). The optional migration runs once on the new instance with the old vars; if
    /// it fails, nothing changes.
    pub fn upgrade_plugin(
        &mut self,
        req: UpgradePluginRequest<'_>,
        now_ns: u64,
    ) -> Result<PluginRecord, InstallError> {
        let mut record =
            self.store
                .record(req.name)
                .ok_or_else(|| InstallError::UnknownPlugin {
                    name: echo(req.name),
                })?;
        let facts = validate::inspect(req.wasm, &self.limits)?;
        if let Some(migration) = req.migration
            && !facts.functions.iter().any(|f| f == migration)
        {
            return Err(InstallError::MigrationFailed(Box::new(not_run(
                InvokeError::UnknownFunction {
                    plugin: record.name,
                    function: echo(migration),
                    available: facts.functions,
                },
            ))));
        }
        let sha256: [u8; 32] = Sha256::digest(req.wasm).into();
        if sha256 != record.code_sha256 && !self.store.has_code(&sha256) {
            self.check_code_bytes(req.wasm.len() as u64)?;
        }
        let host = self.host_state(record.config.clone(), self.store.vars(record.id));
        let context = self.context(record.owner, now_ns, req.name);
        let mut live = self.new_instance(
            sha256,
            req.wasm,
            host,
            facts.initializer.as_deref(),
            context.clone(),
        )?;
        let mut migration_fuel = 0;
        if let Some(migration) = req.migration {
            let budget = self.budget(record.fuel_limit, true);
            let result = live.call(migration, &[], context.clone(), budget, &self.meter);
            migration_fuel = result.fuel_used;
            result
                .into_failure()
                .map_err(|failure| InstallError::MigrationFailed(Box::new(failure)))?;
        }
        let functions = self.plugin_functions(&mut live, context, facts.functions)?;
        let old_sha = record.code_sha256;
        let code = if self.store.has_code(&sha256) {
            0
        } else {
            req.wasm.len() as u64
        };
        let mut writes = Writes {
            code,
            record: record.stored_bytes(),
            ..live.initial_writes()
        };
        writes.chunks += self.store.layout_1_chunk_count(record.id);
        self.reserve(writes).map_err(InstallError::StorageFull)?;
        // Commit: new code, the new instance's memory and globals, vars as the migration left them.
        self.store.add_code_ref(sha256, req.wasm);
        let freed = self.store.release_code_ref(old_sha);
        if freed {
            self.caches.remove_module(&old_sha);
        }
        if let Some(totals) = self.totals.get_mut() {
            totals.code_bytes += code;
            if freed {
                totals.code_bytes = totals.code_bytes.saturating_sub(record.code_size);
            }
        }
        self.store.delete_state(record.id);
        live.save_initial(&mut self.store, record.id);
        record.code_sha256 = sha256;
        record.code_size = req.wasm.len() as u64;
        record.functions = functions;
        record.max_memory_pages = facts.max_memory_pages;
        record.memory_pages = live.memory_pages();
        record.updated_at_ns = now_ns;
        record.fuel_used_total += migration_fuel;
        self.store.put_record(&record);
        self.caches.remove_instance(req.name);
        self.caches.insert_instance(record.name.clone(), live);
        self.make_room(None);
        Ok(record)
    }

    /// The caps on plugins: in all, and per owner.
    fn check_plugin_counts(&self, owner: &Principal) -> Result<(), InstallError> {
        let (max_plugins, per_owner) = (self.limits.max_plugins, self.limits.max_plugins_per_owner);
        let count = self.store.record_count();
        if count >= max_plugins {
            return Err(InstallError::LimitExceeded(limit(
                "plugins",
                count + 1,
                max_plugins,
            )));
        }
        let owned = self.plugins_of(owner);
        if owned >= per_owner {
            return Err(InstallError::LimitExceeded(limit(
                "plugins per owner",
                owned + 1,
                per_owner,
            )));
        }
        Ok(())
    }

    /// The cap on distinct code stored, for `more` bytes of new code.
    fn check_code_bytes(&self, more: u64) -> Result<(), InstallError> {
        let max = self.limits.max_code_bytes;
        let total = self.code_bytes() + more;
        if total > max {
            return Err(InstallError::LimitExceeded(limit("code bytes", total, max)));
        }
        Ok(())
    }

    /// The plugin functions of a new instance: the module's, and for a script runtime those its
    /// script defines (listed now, on the instance about to be stored).
    fn plugin_functions(
        &self,
        live: &mut LiveInstance,
        context: CallContext,
        module_functions: Vec<String>,
    ) -> Result<Vec<String>, InstallError> {
        if !live.is_script_runtime() {
            return Ok(module_functions);
        }
        self.list_functions_at_setup(live, context, &module_functions)
            .map_err(|error| match error {
                ListingError::Failed(failure) => InstallError::StartFailed(Box::new(failure)),
                ListingError::TooMany(too_many) => InstallError::LimitExceeded(too_many),
            })
    }

    /// The context of a start function, initialiser or migration: the owner calls at `now_ns`.
    pub(crate) fn context(&self, owner: Principal, now_ns: u64, name: &str) -> CallContext {
        CallContext {
            caller: owner,
            time_ns: now_ns,
            seed: Seed::of(&[name.as_bytes(), &now_ns.to_le_bytes()]),
            collect_logs: false,
        }
    }

    /// Compiles `wasm` (validated in full), instantiates it and runs its start function and
    /// initialiser under the install fuel.
    fn new_instance(
        &mut self,
        sha256: [u8; 32],
        wasm: &[u8],
        host: HostState,
        initializer: Option<&str>,
        context: CallContext,
    ) -> Result<LiveInstance, InstallError> {
        self.make_room(None);
        self.compile(sha256, wasm, Validate::Yes)?;
        let budget = self.budget(self.limits.install_fuel, true);
        let compiled = self.caches.module(&sha256).expect("compiled above");
        let mut live = LiveInstance::new(
            &self.wasmi,
            crate::linker_for(&self.wasmi, &self.linker, &self.wasi_linker, compiled.wasi),
            compiled,
            host,
        )
        .map_err(|reason| InstallError::InstantiationFailed {
            reason: echo(&reason),
        })?;
        live.initialize(compiled, initializer, context, budget, &self.meter)
            .map_err(|failure| InstallError::StartFailed(Box::new(failure)))?;
        Ok(live)
    }

    /// Compiles (or finds in the cache) the module with this hash.
    pub(crate) fn compile(
        &mut self,
        sha256: [u8; 32],
        wasm: &[u8],
        validate: Validate,
    ) -> Result<(), InstallError> {
        if self.caches.module(&sha256).is_some() {
            return Ok(());
        }
        let invalid = |reason: String| InstallError::InvalidWasm {
            reason: echo(&reason),
        };
        let rewritten = export_globals::export_mutable_globals_and_start(wasm)
            .map_err(|e| invalid(e.to_string()))?;
        if validate == Validate::Yes {
            Module::validate(&self.wasmi, &rewritten.wasm).map_err(|e| invalid(e.to_string()))?;
        }
        let module =
            Module::new(&self.wasmi, &rewritten.wasm).map_err(|e| invalid(e.to_string()))?;
        self.caches.insert_module(
            sha256,
            CompiledModule {
                globals: rewritten.globals.into_iter().map(|g| g.export).collect(),
                has_start: rewritten.start_exported,
                wasm_bytes: wasm.len() as u64,
                wasi: module.imports().any(|import| import.module() == WASI),
                script_runtime: [validate::LIST_FUNCTIONS, validate::DISPATCH]
                    .iter()
                    .all(|name| module.get_export(name).is_some_and(|e| e.func().is_some())),
                module,
            },
        );
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), InstallError> {
    let reason = if name.is_empty() || name.len() > 64 {
        Some("must be 1 to 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("only a-z, 0-9, `_` and `-` are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InstallError::InvalidName {
            name: echo(name),
            reason: reason.to_owned(),
        }),
        None => Ok(()),
    }
}
