//! Changing installed plugins: uninstall, config, invoke policy, and the caps on what a
//! plugin's settings hold.

use std::collections::BTreeMap;

use ic_stable_structures::Memory;
use plugin_host_api::{InvokePolicy, LimitExceeded, ManageError};

use crate::budget::limit;
use crate::install::Validate;
use crate::store::PluginRecord;
use crate::validate::RESERVED_CONFIG_PREFIX;
use crate::{Engine, Writes, echo};

impl<M: Memory + Clone> Engine<M> {
    /// Removes a plugin and all its state; frees its code when no other plugin uses it.
    pub fn uninstall(&mut self, name: &str) -> Result<(), ManageError> {
        let record = self
            .store
            .record(name)
            .ok_or_else(|| ManageError::UnknownPlugin { name: echo(name) })?;
        self.reserve(Writes {
            chunks: self.store.layout_1_chunk_count(record.id),
            ..Writes::default()
        })
        .map_err(ManageError::StorageFull)?;
        self.store.remove_record(name);
        self.caches.remove_instance(name);
        self.store.delete_state(record.id);
        let freed = self.store.release_code_ref(record.code_sha256);
        if freed {
            self.caches.remove_module(&record.code_sha256);
        }
        if let Some(totals) = self.totals.get_mut() {
            if let Some(count) = totals.plugins_by_owner.get_mut(&record.owner) {
                *count = count.saturating_sub(1);
            }
            if freed {
                totals.code_bytes = totals.code_bytes.saturating_sub(record.code_size);
            }
        }
        Ok(())
    }

    /// Replaces a plugin's config.
    pub fn set_config(
        &mut self,
        name: &str,
        config: BTreeMap<String, String>,
        now_ns: u64,
    ) -> Result<PluginRecord, ManageError> {
        let record = self
            .store
            .record(name)
            .ok_or_else(|| ManageError::UnknownPlugin { name: echo(name) })?;
        self.check_settings(&config, &record.invoke_policy)
            .map_err(ManageError::LimitExceeded)?;
        if self.is_script_runtime(&record) {
            return self.set_script_config(record, config, now_ns);
        }
        let info = self.update_record(name, now_ns, |r| r.config = config.clone())?;
        if let Some(live) = self.caches.instance(name) {
            live.host_mut().config = config;
        }
        Ok(info)
    }

    /// Whether the plugin's module is a script runtime (from the compiled module, compiling it
    /// if no cache holds it; a module that no longer compiles is not one).
    fn is_script_runtime(&mut self, record: &PluginRecord) -> bool {
        if self.caches.module(&record.code_sha256).is_none()
            && let Some(wasm) = self.store.code(&record.code_sha256)
        {
            let _ = self.compile(record.code_sha256, &wasm, Validate::No);
        }
        self.caches
            .module(&record.code_sha256)
            .is_some_and(|compiled| compiled.script_runtime)
    }

    /// Replaces a plugin's invoke policy.
    pub fn set_invoke_policy(
        &mut self,
        name: &str,
        policy: InvokePolicy,
        now_ns: u64,
    ) -> Result<PluginRecord, ManageError> {
        self.check_settings(&BTreeMap::new(), &policy)
            .map_err(ManageError::LimitExceeded)?;
        self.update_record(name, now_ns, |r| r.invoke_policy = policy)
    }

    fn update_record(
        &mut self,
        name: &str,
        now_ns: u64,
        change: impl FnOnce(&mut PluginRecord),
    ) -> Result<PluginRecord, ManageError> {
        let mut record = self
            .store
            .record(name)
            .ok_or_else(|| ManageError::UnknownPlugin { name: echo(name) })?;
        change(&mut record);
        record.updated_at_ns = now_ns;
        self.reserve(Writes {
            record: record.stored_bytes(),
            ..Writes::default()
        })
        .map_err(ManageError::StorageFull)?;
        self.store.put_record(&record);
        Ok(record)
    }

    /// Config and invoke policy within the caps.
    pub(crate) fn check_settings(
        &self,
        config: &BTreeMap<String, String>,
        policy: &InvokePolicy,
    ) -> Result<(), LimitExceeded> {
        let limits = &self.limits;
        if config.len() > limits.max_config_entries {
            return Err(limit(
                "config entries",
                config.len() as u64,
                limits.max_config_entries as u64,
            ));
        }
        let reserved = config
            .keys()
            .filter(|key| key.starts_with(RESERVED_CONFIG_PREFIX))
            .count();
        if reserved > 0 {
            return Err(limit(
                "config keys starting with `plugin_host.` (the host's)",
                reserved as u64,
                0,
            ));
        }
        let bytes: usize = config.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes as u64 > limits.max_config_bytes {
            return Err(limit("config bytes", bytes as u64, limits.max_config_bytes));
        }
        if let InvokePolicy::AllowList(list) = policy
            && list.len() > limits.max_allow_list
        {
            return Err(limit(
                "allow-list principals",
                list.len() as u64,
                limits.max_allow_list as u64,
            ));
        }
        Ok(())
    }
}
