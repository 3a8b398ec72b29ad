//! DAO voting module, version 1. `decide`: ballots (JSON, see `rules`) in, decision (JSON) out.
//! Config: `rule` = `token_weighted` (default) | `quadratic` | `supermajority` (with
//! `quorum_percent`, `threshold_percent`). Durable state: the var `decisions`, a count.

pub mod rules;

#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
mod plugin {
    use extism_pdk::*;

    use crate::rules::{Rule, decide as count};

    fn rule() -> Result<Rule, Error> {
        Rule::from_config(
            config::get("rule")?.as_deref(),
            config::get("quorum_percent")?.as_deref(),
            config::get("threshold_percent")?.as_deref(),
            false,
        )
        .map_err(Error::msg)
    }

    /// Counts a proposal's ballots.
    #[plugin_fn]
    pub fn decide(input: Vec<u8>) -> FnResult<String> {
        let decision = count(&input, &rule()?).map_err(Error::msg)?;
        let decisions: u64 = var::get::<String>("decisions")?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        var::set("decisions", (decisions + 1).to_string())?;
        Ok(serde_json::to_string(&decision)?)
    }

    /// How many proposals this module has decided.
    #[plugin_fn]
    pub fn stats() -> FnResult<String> {
        let decisions = var::get::<String>("decisions")?.unwrap_or_else(|| "0".into());
        Ok(format!(r#"{{"version":1,"decisions":{decisions}}}"#))
    }
}
