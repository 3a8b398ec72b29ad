//! Script runtimes: plugins whose functions are defined by a script in their config, not by
//! their module's exports (e.g. the QuickJS plugin; `validate::LIST_FUNCTIONS` says how). The
//! engine asks the module for the script's functions when it is installed or upgraded and when
//! its config changes, and records them as the plugin's functions.

use std::collections::BTreeMap;

use ic_stable_structures::Memory;
use plugin_host_api::{InvokeError, InvokeFailure, LimitExceeded, ManageError};

use crate::abi::CallContext;
use crate::budget::limit;
use crate::call::not_run;
use crate::instance::LiveInstance;
use crate::limits::Limits;
use crate::store::PluginRecord;
use crate::validate::{INITIALIZERS, LIST_FUNCTIONS};
use crate::{Engine, echo};

/// Why a script runtime's list of functions was refused.
pub(crate) enum ListingError {
    /// `__plugin_functions` failed, or listed a name no plugin function may have.
    Failed(InvokeFailure),
    /// It listed more functions than a plugin may have.
    TooMany(LimitExceeded),
}

impl<M: Memory + Clone> Engine<M> {
    /// Runs the runtime's `__plugin_functions` on a new instance (its effects, e.g. the script
    /// evaluated, become the instance's initial state) and returns the plugin's functions: the
    /// module's own and the script's.
    pub(crate) fn list_functions_at_setup(
        &self,
        live: &mut LiveInstance,
        context: CallContext,
        module_functions: &[String],
    ) -> Result<Vec<String>, ListingError> {
        let budget = self.budget(self.limits.install_fuel, true);
        let output = live
            .run_once(LIST_FUNCTIONS, context, budget, &self.meter)
            .map_err(ListingError::Failed)?;
        merge_functions(&output, module_functions, &self.limits)
    }

    /// `set_config` for a script runtime: the new config (a new script, say) is only kept if
    /// the runtime lists its functions under it; what listing changed in the plugin's memory is
    /// committed with it. On failure nothing changes.
    pub(crate) fn set_script_config(
        &mut self,
        mut record: PluginRecord,
        config: BTreeMap<String, String>,
        now_ns: u64,
    ) -> Result<PluginRecord, ManageError> {
        let failed = |failure| ManageError::ListingFailed(Box::new(failure));
        self.make_room(Some((&record.name, record.code_sha256)));
        self.warm_up(&record).map_err(|reason| {
            failed(not_run(InvokeError::InstantiationFailed {
                reason: echo(&reason),
            }))
        })?;
        let context = self.context(record.owner, now_ns, &record.name);
        let budget = self.budget(self.limits.install_fuel, true);
        let live = self.caches.instance(&record.name).expect("warmed up above");
        // The module's own plugin functions stay; the script's are listed afresh.
        let module_functions: Vec<String> = record
            .functions
            .iter()
            .filter(|name| live.exports_plugin_function(name))
            .cloned()
            .collect();
        let old_config = std::mem::replace(&mut live.host_mut().config, config.clone());
        let result = live.call(LIST_FUNCTIONS, &[], context, budget, &self.meter);
        let pending = live.pending();
        let listed = match result.into_failure() {
            Ok((output, _, _)) => merge_functions(&output, &module_functions, &self.limits),
            Err(failure) => Err(ListingError::Failed(failure)),
        };
        let mut writes = pending.writes(live);
        writes.chunks += self.store.layout_1_chunk_count(record.id);
        let refusal = match listed {
            Ok(functions) => {
                record.config = config;
                record.functions = functions;
                record.updated_at_ns = now_ns;
                writes.record = record.stored_bytes();
                match self.reserve(writes) {
                    Ok(()) => None,
                    Err(full) => Some(ManageError::StorageFull(full)),
                }
            }
            Err(ListingError::Failed(failure)) => Some(failed(failure)),
            Err(ListingError::TooMany(too_many)) => Some(ManageError::LimitExceeded(too_many)),
        };
        let live = self.caches.instance(&record.name).expect("warmed up above");
        if let Some(refusal) = refusal {
            live.host_mut().config = old_config;
            self.rollback(&record.name, pending);
            return Err(refusal);
        }
        live.commit(pending, &mut self.store, record.id);
        record.memory_pages = live.memory_pages();
        self.store.put_record(&record);
        Ok(record)
    }
}

/// The module's functions and the names the runtime listed (one per line), sorted, without
/// repeats, within the caps. A listed name must be one an export could have: not empty, no
/// longer than an export name may be, without whitespace or control characters, and not one
/// the host reserves (`__`-prefixed names and initialisers).
fn merge_functions(
    listing: &[u8],
    module_functions: &[String],
    limits: &Limits,
) -> Result<Vec<String>, ListingError> {
    let refuse = |message: String| {
        ListingError::Failed(not_run(InvokeError::PluginError { code: 0, message }))
    };
    let listing = std::str::from_utf8(listing).map_err(|_| {
        refuse(format!(
            "`{LIST_FUNCTIONS}` listed names that are not UTF-8"
        ))
    })?;
    let mut functions: Vec<String> = module_functions.to_vec();
    for name in listing.lines().filter(|line| !line.is_empty()) {
        if name.len() > limits.max_export_name_bytes {
            return Err(ListingError::TooMany(limit(
                "export name bytes",
                name.len() as u64,
                limits.max_export_name_bytes as u64,
            )));
        }
        let reserved = name.starts_with("__") || INITIALIZERS.contains(&name);
        if reserved || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse(format!(
                "`{LIST_FUNCTIONS}` listed `{}`, which cannot name a plugin function",
                echo(name)
            )));
        }
        functions.push(name.to_owned());
        if functions.len() > limits.max_plugin_functions.saturating_mul(2) {
            break; // far past the cap already: stop copying
        }
    }
    functions.sort();
    functions.dedup();
    if functions.len() > limits.max_plugin_functions {
        return Err(ListingError::TooMany(limit(
            "plugin functions",
            functions.len() as u64,
            limits.max_plugin_functions as u64,
        )));
    }
    if functions.is_empty() {
        return Err(refuse(format!(
            "`{LIST_FUNCTIONS}` listed no function, and the module exports none"
        )));
    }
    Ok(functions)
}
