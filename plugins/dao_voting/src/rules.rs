//! Vote counting, plain Rust (tested natively; shared by both versions of the module).
//!
//! Input (JSON): `{ "proposal": "id", "total_supply": N, "ballots": [ { "voter": "...",
//! "weight": N, "choice": "yes" | "no" | "abstain" } ] }`.
//! Output (JSON): `{ "proposal", "rule", "outcome": "passed" | "rejected" | "no_quorum",
//! "yes", "no", "abstain", "turnout_percent" }`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A proposal's ballots.
#[derive(Debug, Deserialize)]
pub struct Proposal {
    /// Proposal id.
    #[serde(default)]
    pub proposal: String,
    /// Voting power in existence (for quorum); defaults to the weight cast.
    pub total_supply: Option<f64>,
    /// The ballots.
    pub ballots: Vec<Ballot>,
}

/// One ballot.
#[derive(Debug, Deserialize)]
pub struct Ballot {
    /// Voter id.
    pub voter: String,
    /// Voting power (tokens).
    pub weight: f64,
    /// `yes`, `no`, `abstain` (and `veto` where the rule knows it).
    pub choice: String,
}

/// The decision.
#[derive(Debug, Serialize, PartialEq)]
pub struct Decision {
    /// Proposal id.
    pub proposal: String,
    /// The rule applied.
    pub rule: String,
    /// `passed`, `rejected`, `no_quorum` or `vetoed`.
    pub outcome: String,
    /// Counted yes power.
    pub yes: f64,
    /// Counted no power.
    pub no: f64,
    /// Counted abstain power.
    pub abstain: f64,
    /// Share of total supply that voted, in percent.
    pub turnout_percent: f64,
}

/// How ballots are counted.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// One token, one vote; simple majority of yes over no.
    TokenWeighted,
    /// Voting power is the square root of tokens; simple majority.
    Quadratic,
    /// A quorum of total supply must vote, and yes must reach a threshold of yes + no.
    Supermajority {
        /// Percent of total supply that must vote.
        quorum_percent: f64,
        /// Percent of yes among yes + no needed to pass.
        threshold_percent: f64,
    },
    /// (v2) Token-weighted, but `veto` ballots above a third of the cast power reject.
    Veto,
}

impl Rule {
    /// Reads the rule from config values.
    pub fn from_config(
        rule: Option<&str>,
        quorum: Option<&str>,
        threshold: Option<&str>,
        with_veto: bool,
    ) -> Result<Rule, String> {
        let percent = |v: Option<&str>, default: f64| -> Result<f64, String> {
            v.map_or(Ok(default), |v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| format!("bad percentage in config: {v:?}"))
            })
        };
        match rule.unwrap_or("token_weighted") {
            "token_weighted" => Ok(Rule::TokenWeighted),
            "quadratic" => Ok(Rule::Quadratic),
            "supermajority" => Ok(Rule::Supermajority {
                quorum_percent: percent(quorum, 20.0)?,
                threshold_percent: percent(threshold, 66.67)?,
            }),
            "veto" if with_veto => Ok(Rule::Veto),
            other => Err(format!("unknown rule in config: {other:?}")),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Rule::TokenWeighted => "token_weighted",
            Rule::Quadratic => "quadratic",
            Rule::Supermajority { .. } => "supermajority",
            Rule::Veto => "veto",
        }
    }
}

/// Counts the ballots of `input` (JSON) under `rule`. Invalid input is an error message.
pub fn decide(input: &[u8], rule: &Rule) -> Result<Decision, String> {
    let proposal: Proposal =
        serde_json::from_slice(input).map_err(|e| format!("invalid ballots JSON: {e}"))?;
    let mut seen = BTreeSet::new();
    let (mut yes, mut no, mut abstain, mut veto, mut cast) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for ballot in &proposal.ballots {
        if !seen.insert(ballot.voter.as_str()) {
            return Err(format!("duplicate ballot from voter {:?}", ballot.voter));
        }
        if !(ballot.weight.is_finite() && ballot.weight > 0.0) {
            return Err(format!(
                "ballot of {:?} has invalid weight {}",
                ballot.voter, ballot.weight
            ));
        }
        cast += ballot.weight;
        let power = match rule {
            Rule::Quadratic => ballot.weight.sqrt(),
            _ => ballot.weight,
        };
        match (ballot.choice.as_str(), rule) {
            ("yes", _) => yes += power,
            ("no", _) => no += power,
            ("abstain", _) => abstain += power,
            ("veto", Rule::Veto) => veto += power,
            (other, _) => {
                return Err(format!(
                    "ballot of {:?} has unknown choice {other:?}",
                    ballot.voter
                ));
            }
        }
    }
    let supply = proposal.total_supply.unwrap_or(cast);
    let turnout = if supply > 0.0 {
        100.0 * cast / supply
    } else {
        0.0
    };
    let outcome = match rule {
        Rule::Supermajority {
            quorum_percent,
            threshold_percent,
        } => {
            if turnout < *quorum_percent {
                "no_quorum"
            } else if yes + no > 0.0 && 100.0 * yes / (yes + no) >= *threshold_percent {
                "passed"
            } else {
                "rejected"
            }
        }
        Rule::Veto if cast > 0.0 && veto * 3.0 > cast => "vetoed",
        _ if yes > no => "passed",
        _ => "rejected",
    };
    Ok(Decision {
        proposal: proposal.proposal,
        rule: rule.name().into(),
        outcome: outcome.into(),
        yes,
        no: no + veto,
        abstain,
        turnout_percent: (turnout * 100.0).round() / 100.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BALLOTS: &str = r#"{"proposal":"p1","total_supply":1000,"ballots":[
        {"voter":"a","weight":400,"choice":"yes"},
        {"voter":"b","weight":100,"choice":"no"},
        {"voter":"c","weight":81,"choice":"no"}]}"#;

    #[test]
    fn token_weighted_is_a_simple_majority_of_tokens() {
        let d = decide(BALLOTS.as_bytes(), &Rule::TokenWeighted).expect("valid");
        assert_eq!((d.outcome.as_str(), d.yes, d.no), ("passed", 400.0, 181.0));
        assert_eq!(d.turnout_percent, 58.1);
    }

    #[test]
    fn quadratic_counts_square_roots() {
        let d = decide(BALLOTS.as_bytes(), &Rule::Quadratic).expect("valid");
        // 20 yes against 10 + 9 no.
        assert_eq!((d.outcome.as_str(), d.yes, d.no), ("passed", 20.0, 19.0));
    }

    #[test]
    fn supermajority_needs_quorum_and_threshold() {
        let rule =
            Rule::from_config(Some("supermajority"), Some("60"), Some("70"), false).expect("rule");
        assert_eq!(
            decide(BALLOTS.as_bytes(), &rule).expect("valid").outcome,
            "no_quorum"
        );
        let rule =
            Rule::from_config(Some("supermajority"), Some("50"), Some("70"), false).expect("rule");
        assert_eq!(
            decide(BALLOTS.as_bytes(), &rule).expect("valid").outcome,
            "rejected"
        );
    }

    #[test]
    fn invalid_ballots_are_errors() {
        let dup = r#"{"ballots":[{"voter":"a","weight":1,"choice":"yes"},{"voter":"a","weight":1,"choice":"no"}]}"#;
        assert!(
            decide(dup.as_bytes(), &Rule::TokenWeighted)
                .unwrap_err()
                .contains("duplicate")
        );
        let neg = r#"{"ballots":[{"voter":"a","weight":-1,"choice":"yes"}]}"#;
        assert!(
            decide(neg.as_bytes(), &Rule::TokenWeighted)
                .unwrap_err()
                .contains("weight")
        );
        let veto = r#"{"ballots":[{"voter":"a","weight":1,"choice":"veto"}]}"#;
        assert!(
            decide(veto.as_bytes(), &Rule::TokenWeighted)
                .unwrap_err()
                .contains("choice")
        );
        assert!(
            decide(b"{", &Rule::TokenWeighted)
                .unwrap_err()
                .contains("JSON")
        );
        assert!(Rule::from_config(Some("veto"), None, None, false).is_err());
    }

    #[test]
    fn veto_rejects_when_a_third_vetoes() {
        let b = r#"{"ballots":[{"voter":"a","weight":5,"choice":"yes"},{"voter":"b","weight":3,"choice":"veto"}]}"#;
        assert_eq!(
            decide(b.as_bytes(), &Rule::Veto).expect("valid").outcome,
            "vetoed"
        );
    }
}
