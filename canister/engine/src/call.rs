//! Running plugin functions: `invoke`, with a live instance warmed up from stable memory if
//! needed, committed or rolled back; and the heap room a call needs.

use std::convert::Infallible;

use candid::Principal;
use ic_stable_structures::Memory;
use plugin_host_api::{InvokeError, InvokeFailure};

use crate::abi::{CallContext, Seed};
use crate::budget::CallBudget;
use crate::install::Validate;
use crate::instance::{self, LiveInstance};
use crate::request::{InvokeOutcome, InvokeRequest};
use crate::store::{PluginRecord, STORE_CACHE_BYTES, Usage};
use crate::{Engine, echo, reserve};

impl<M: Memory + Clone> Engine<M> {
    /// Runs one plugin function, for anyone.
    pub fn invoke(&mut self, req: InvokeRequest<'_>) -> Result<InvokeOutcome, InvokeFailure> {
        match self.invoke_authorized(req, |_| Ok::<_, Infallible>(None)) {
            Ok(result) => result,
            Err(never) => match never {},
        }
    }

    /// Runs one plugin function if `authorize`, given the plugin's record, admits the call, and
    /// under the instruction limit it may set (the lower of it and the request's); its refusal
    /// is the outer error. The record is read once for both, and not copied.
    pub fn invoke_authorized<Refusal>(
        &mut self,
        mut req: InvokeRequest<'_>,
        authorize: impl FnOnce(&PluginRecord) -> Result<Option<u64>, Refusal>,
    ) -> Result<Result<InvokeOutcome, InvokeFailure>, Refusal> {
        let checked = self.store.with_record(req.plugin, |record| {
            let limit = authorize(record)?;
            if !record.functions.iter().any(|f| f == req.function) {
                return Ok(Err(not_run(InvokeError::UnknownFunction {
                    plugin: record.name.clone(),
                    function: echo(req.function),
                    available: record.functions.clone(),
                })));
            }
            Ok(Ok((Target::of(record), limit)))
        });
        let Some(checked) = checked else {
            return Ok(Err(not_run(InvokeError::UnknownPlugin {
                name: echo(req.plugin),
            })));
        };
        let (target, limit) = match checked? {
            Ok(found) => found,
            Err(failure) => return Ok(Err(failure)),
        };
        if let Some(limit) = limit {
            req.instruction_limit = Some(req.instruction_limit.map_or(limit, |l| l.min(limit)));
        }
        Ok(self.call(target, req))
    }

    fn call(
        &mut self,
        target: Target,
        req: InvokeRequest<'_>,
    ) -> Result<InvokeOutcome, InvokeFailure> {
        let budget = CallBudget {
            fuel_limit: req
                .fuel
                .unwrap_or(target.fuel_limit)
                .min(self.limits.max_fuel),
            fuel_slice: self.limits.fuel_slice,
            instruction_limit: self.instruction_limit(req.commit, req.instruction_limit),
        };
        self.make_room(Some((&target.name, target.code_sha256)));
        if self.caches.instance(&target.name).is_none() {
            let record = self.store.record(&target.name).expect("read above");
            self.warm_up(&record).map_err(|reason| {
                not_run(InvokeError::InstantiationFailed {
                    reason: echo(&reason),
                })
            })?;
        }
        let context = CallContext {
            caller: req.caller,
            time_ns: req.now_ns,
            seed: seed(&target.name, target.usage.calls, req.caller, req.now_ns),
            collect_logs: req.logs,
        };
        let live = self.caches.instance(&target.name).expect("warmed up above");
        let result =
            live.call_plugin_function(req.function, req.input, context, budget, &self.meter);
        let pending = live.pending();
        let (fuel_used, logs) = (result.fuel_used, result.logs);
        let failure = |error| InvokeFailure {
            error,
            fuel_used,
            logs: logs.clone(),
        };
        let outcome = match result.outcome {
            Ok(output) if req.commit => {
                let mut writes = pending.writes(live);
                writes.chunks += self.store.layout_1_chunk_count(target.id);
                match reserve(&self.space, &self.ids, writes) {
                    Ok(()) => {
                        live.commit(pending, &mut self.store, target.id);
                        let usage = Usage {
                            calls: target.usage.calls + 1,
                            fuel_used_total: target.usage.fuel_used_total + fuel_used,
                            memory_pages: live.memory_pages(),
                        };
                        self.store.put_usage(target.id, &target.name, usage);
                        Ok(output)
                    }
                    Err(full) => {
                        self.rollback(&target.name, pending);
                        Err(failure(InvokeError::StorageFull(full)))
                    }
                }
            }
            Ok(output) => {
                self.rollback(&target.name, pending);
                Ok(output)
            }
            Err(error) => {
                self.rollback(&target.name, pending);
                Err(failure(error))
            }
        };
        self.make_room(Some((&target.name, target.code_sha256)));
        outcome.map(|output| InvokeOutcome {
            output,
            fuel_used,
            logs,
        })
    }

    pub(crate) fn instruction_limit(&self, commit: bool, requested: Option<u64>) -> u64 {
        let engine = if commit {
            self.limits.update_instruction_limit
        } else {
            self.limits.query_instruction_limit
        };
        requested.map_or(engine, |r| r.min(engine))
    }

    pub(crate) fn budget(&self, fuel_limit: u64, commit: bool) -> CallBudget {
        CallBudget {
            fuel_limit,
            fuel_slice: self.limits.fuel_slice,
            instruction_limit: self.instruction_limit(commit, None),
        }
    }

    /// Makes sure the plugin has a live instance, rebuilding it from stable memory if needed.
    pub(crate) fn warm_up(&mut self, record: &PluginRecord) -> Result<(), String> {
        if self.caches.instance(&record.name).is_some() {
            return Ok(());
        }
        if self.caches.module(&record.code_sha256).is_none() {
            let wasm = self
                .store
                .code(&record.code_sha256)
                .ok_or("the plugin's code is not stored")?;
            self.compile(record.code_sha256, &wasm, Validate::No)
                .map_err(|e| e.to_string())?;
        }
        let host = self.host_state(record.config.clone(), self.store.vars(record.id));
        let compiled = self.caches.module(&record.code_sha256).ok_or("evicted")?;
        let live = LiveInstance::restore(
            &self.wasmi,
            crate::linker_for(&self.wasmi, &self.linker, &self.wasi_linker, compiled.wasi),
            compiled,
            host,
            &self.store,
            record,
        )?;
        self.caches.insert_instance(record.name.clone(), live);
        Ok(())
    }

    /// Keeps the caches within the heap budget, leaving room for one call; `keep` names the
    /// plugin (and its module) about to run or just run.
    pub(crate) fn make_room(&mut self, keep: Option<(&str, [u8; 32])>) {
        let budget = self
            .limits
            .heap_budget_bytes
            .saturating_sub(STORE_CACHE_BYTES + self.limits.call_heap_bytes());
        self.caches.shrink_to(
            budget,
            keep.map(|(name, _)| name),
            keep.as_ref().map(|(_, sha)| sha),
        );
    }

    /// Undoes the last call of a plugin (or drops its instance when that is not possible).
    pub(crate) fn rollback(&mut self, name: &str, pending: instance::PendingCommit) {
        let kept = self
            .caches
            .instance(name)
            .is_some_and(|live| live.rollback(pending));
        if !kept {
            self.caches.remove_instance(name);
        }
    }
}

/// The failure of a call that did not start.
pub(crate) fn not_run(error: InvokeError) -> InvokeFailure {
    InvokeFailure {
        error,
        fuel_used: 0,
        logs: Vec::new(),
    }
}

/// What a call needs of its plugin's record: a few fields, copied out of the record cache
/// (cloning a whole record costs a heap allocation per function name and config entry).
struct Target {
    id: u64,
    name: String,
    code_sha256: [u8; 32],
    fuel_limit: u64,
    usage: Usage,
}

impl Target {
    fn of(record: &PluginRecord) -> Self {
        Target {
            id: record.id,
            name: record.name.clone(),
            code_sha256: record.code_sha256,
            fuel_limit: record.fuel_limit,
            usage: record.usage(),
        }
    }
}

/// The deterministic per-call seed, from the plugin's name and committed calls: not secret
/// (anyone can compute it from public facts).
fn seed(name: &str, calls: u64, caller: Principal, now_ns: u64) -> Seed {
    Seed::of(&[
        name.as_bytes(),
        &calls.to_le_bytes(),
        &now_ns.to_le_bytes(),
        caller.as_slice(),
    ])
}
