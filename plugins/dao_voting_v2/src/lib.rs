//! DAO voting module, version 2: adds the `veto` rule (config `rule = veto`) and keeps its
//! statistics as JSON in the var `stats`. `migrate` moves version 1's `decisions` count there;
//! `upgrade_plugin` runs it once (and rolls the upgrade back if it fails).

#[path = "../../dao_voting/src/rules.rs"]
pub mod rules;

#[cfg(target_arch = "wasm32")]
mod plugin {
    use extism_pdk::*;
    use serde::{Deserialize, Serialize};

    use crate::rules::{Rule, decide as count};

    #[derive(Serialize, Deserialize, Default)]
    struct Stats {
        version: u32,
        decisions: u64,
    }

    fn stats_now() -> Result<Stats, Error> {
        Ok(match var::get::<String>("stats")? {
            Some(json) => serde_json::from_str(&json)?,
            None => Stats {
                version: 2,
                decisions: 0,
            },
        })
    }

    /// Moves v1's `decisions` var into v2's `stats`. Idempotent.
    #[plugin_fn]
    pub fn migrate() -> FnResult<String> {
        let mut stats = stats_now()?;
        if let Some(old) = var::get::<String>("decisions")? {
            stats.decisions += old
                .parse::<u64>()
                .map_err(|e| Error::msg(format!("v1 state is corrupt: {e}")))?;
            var::remove("decisions")?;
        }
        var::set("stats", serde_json::to_string(&stats)?)?;
        Ok(format!("migrated: {} decisions", stats.decisions))
    }

    /// Counts a proposal's ballots.
    #[plugin_fn]
    pub fn decide(input: Vec<u8>) -> FnResult<String> {
        let rule = Rule::from_config(
            config::get("rule")?.as_deref(),
            config::get("quorum_percent")?.as_deref(),
            config::get("threshold_percent")?.as_deref(),
            true,
        )
        .map_err(Error::msg)?;
        let decision = count(&input, &rule).map_err(Error::msg)?;
        let mut stats = stats_now()?;
        stats.decisions += 1;
        var::set("stats", serde_json::to_string(&stats)?)?;
        Ok(serde_json::to_string(&decision)?)
    }

    /// Version and decision count.
    #[plugin_fn]
    pub fn stats() -> FnResult<String> {
        Ok(serde_json::to_string(&stats_now()?)?)
    }
}
