//! Example: a DAO canister whose voting rule is a plugin running in `plugin_host`.
//!
//! - `install_voting_module(wasm, rule)` (controllers only) installs the voting module
//!   (`plugins/dao_voting`) into `plugin_host` with its counting rule as config, and an invoke
//!   policy that lets only this canister (and `plugin_host`'s admins) run it.
//! - `decide(proposal)` sends a proposal's ballots to the module and returns its decision. It is
//!   open to anyone and each call costs this canister cycles: a real DAO would take the ballots
//!   from proposals and votes it records itself.
//!
//! The init (and upgrade) argument is the `plugin_host` canister's id; its install policy must
//! let this canister install (e.g. `AllowList` with this canister's id). One `plugin_host` can
//! serve many DAOs: the module is named after this canister, so names never clash.

use std::cell::Cell;

use candid::{CandidType, Deserialize, Principal};
use plugin_host_api::{ByteBuf, InstallArgs, InstallError, InvokeError, InvokePolicy, PluginInfo};
use plugin_host_client::{CallError, PluginHostClient};

thread_local! {
    /// The `plugin_host` canister, set by `init` and `post_upgrade`.
    static PLUGIN_HOST: Cell<Principal> = const { Cell::new(Principal::anonymous()) };
}

/// A voter's choice.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// For the proposal.
    Yes,
    /// Against it.
    No,
    /// Counted for turnout only.
    Abstain,
}

/// One voter's ballot.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct Ballot {
    /// Who voted (unique per proposal).
    pub voter: String,
    /// Voting power (tokens).
    pub weight: u64,
    /// The choice.
    pub choice: Choice,
}

/// A proposal with its ballots.
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct Proposal {
    /// The proposal's id.
    pub id: String,
    /// Voting power in existence, for the quorum (default: the power cast).
    pub total_supply: Option<u64>,
    /// The ballots cast.
    pub ballots: Vec<Ballot>,
}

/// What the voting module decided.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Yes won.
    Passed,
    /// No won (or a tie).
    Rejected,
    /// Too little of the supply voted.
    NoQuorum,
    /// Vetoed (rules that know vetoes).
    Vetoed,
}

/// The voting module's decision on a proposal.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
pub struct Decision {
    /// The proposal's id.
    pub proposal: String,
    /// The rule applied.
    pub rule: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Counted yes power.
    pub yes: f64,
    /// Counted no power.
    pub no: f64,
    /// Counted abstain power.
    pub abstain: f64,
    /// Share of the total supply that voted, in percent.
    pub turnout_percent: f64,
}

/// Why a DAO method failed.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, thiserror::Error)]
pub enum DaoError {
    /// Only a controller of this canister may install the voting module.
    #[error("only a controller of the DAO canister may do this")]
    NotController,
    /// The call to `plugin_host` failed (not sent, rejected, or the reply did not decode).
    #[error("calling plugin_host failed: {message}")]
    CallFailed {
        /// What went wrong.
        message: String,
    },
    /// `plugin_host` refused to install the module.
    #[error("plugin_host refused the voting module: {0}")]
    InstallRefused(InstallError),
    /// The voting module failed (e.g. invalid ballots, or it is not installed yet).
    #[error("the voting module failed: {0}")]
    VotingFailed(InvokeError),
    /// The module's output is not a decision.
    #[error("the voting module's output is not a decision ({reason}): {output}")]
    BadDecision {
        /// The output, as text.
        output: String,
        /// Why it is not a decision.
        reason: String,
    },
}

impl From<CallError> for DaoError {
    fn from(e: CallError) -> Self {
        DaoError::CallFailed {
            message: e.to_string(),
        }
    }
}

#[ic_cdk::init]
fn init(plugin_host: Principal) {
    PLUGIN_HOST.set(plugin_host);
}

#[ic_cdk::post_upgrade]
fn post_upgrade(plugin_host: Principal) {
    PLUGIN_HOST.set(plugin_host);
}

fn plugin_host() -> PluginHostClient {
    PluginHostClient::new(PLUGIN_HOST.get())
}

/// The voting module's plugin name: named after this canister.
fn module_name() -> String {
    format!("dao-{}", ic_cdk::api::canister_self())
}

/// Installs the voting module `wasm` (`dao_voting.wasm`) with counting `rule`
/// (`token_weighted`, `quadratic` or `supermajority`). Controllers only.
#[ic_cdk::update]
async fn install_voting_module(wasm: ByteBuf, rule: String) -> Result<PluginInfo, DaoError> {
    if !ic_cdk::api::is_controller(&ic_cdk::api::msg_caller()) {
        return Err(DaoError::NotController);
    }
    let args = InstallArgs {
        name: module_name(),
        wasm,
        config: Some(vec![("rule".to_owned(), rule)]),
        invoke_policy: Some(InvokePolicy::AllowList(vec![ic_cdk::api::canister_self()])),
        fuel_limit: None,
    };
    plugin_host()
        .install(args)
        .await?
        .map_err(DaoError::InstallRefused)
}

/// Counts a proposal's ballots with the voting module and returns its decision.
#[ic_cdk::update]
async fn decide(proposal: Proposal) -> Result<Decision, DaoError> {
    let input = ballots_json(&proposal);
    let reply = plugin_host()
        .invoke(
            module_name(),
            "decide".to_owned(),
            ByteBuf::from(input),
            None,
        )
        .await?
        .map_err(|failure| DaoError::VotingFailed(failure.error))?;
    parse_decision(&reply.output)
}

/// The module's input: `{"proposal", "total_supply", "ballots": [{"voter", "weight", "choice"}]}`.
fn ballots_json(proposal: &Proposal) -> Vec<u8> {
    let ballots: Vec<serde_json::Value> = proposal
        .ballots
        .iter()
        .map(|b| {
            let choice = match b.choice {
                Choice::Yes => "yes",
                Choice::No => "no",
                Choice::Abstain => "abstain",
            };
            serde_json::json!({ "voter": b.voter, "weight": b.weight, "choice": choice })
        })
        .collect();
    let input = serde_json::json!({
        "proposal": proposal.id,
        "total_supply": proposal.total_supply,
        "ballots": ballots,
    });
    input.to_string().into_bytes()
}

/// Reads the module's output: `{"proposal", "rule", "outcome", "yes", "no", "abstain",
/// "turnout_percent"}`.
fn parse_decision(output: &[u8]) -> Result<Decision, DaoError> {
    #[derive(serde::Deserialize)]
    struct Json {
        proposal: String,
        rule: String,
        outcome: String,
        yes: f64,
        no: f64,
        abstain: f64,
        turnout_percent: f64,
    }
    let bad = |reason: String| DaoError::BadDecision {
        output: String::from_utf8_lossy(output).into_owned(),
        reason,
    };
    let json: Json = serde_json::from_slice(output).map_err(|e| bad(e.to_string()))?;
    let outcome = match json.outcome.as_str() {
        "passed" => Outcome::Passed,
        "rejected" => Outcome::Rejected,
        "no_quorum" => Outcome::NoQuorum,
        "vetoed" => Outcome::Vetoed,
        other => return Err(bad(format!("unknown outcome {other:?}"))),
    };
    Ok(Decision {
        proposal: json.proposal,
        rule: json.rule,
        outcome,
        yes: json.yes,
        no: json.no,
        abstain: json.abstain,
        turnout_percent: json.turnout_percent,
    })
}

/// The Candid interface, generated from the endpoints above (`export_candid!` must follow them).
mod interface {
    #![allow(missing_docs)]
    use super::*;
    ic_cdk::export_candid!();

    #[cfg(test)]
    mod tests {
        /// The interface the code exports is the one checked in (`dao_canister.did`).
        #[test]
        fn candid_interface_matches_the_checked_in_did() {
            plugin_host_api::assert_interface_matches_did(
                &super::__export_service(),
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dao_canister.did"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ballots_become_the_modules_json() {
        let proposal = Proposal {
            id: "p\"1".into(),
            total_supply: Some(1000),
            ballots: vec![
                Ballot {
                    voter: "alice".into(),
                    weight: 400,
                    choice: Choice::Yes,
                },
                Ballot {
                    voter: "bob".into(),
                    weight: 100,
                    choice: Choice::Abstain,
                },
            ],
        };
        let json: serde_json::Value =
            serde_json::from_slice(&ballots_json(&proposal)).expect("valid JSON");
        assert_eq!(
            json,
            serde_json::json!({"proposal": "p\"1", "total_supply": 1000, "ballots": [
                {"voter": "alice", "weight": 400, "choice": "yes"},
                {"voter": "bob", "weight": 100, "choice": "abstain"}]})
        );
    }

    #[test]
    fn the_modules_output_becomes_a_decision() {
        let output = br#"{"proposal":"p","rule":"quadratic","outcome":"no_quorum","yes":20.0,"no":19.0,"abstain":0.0,"turnout_percent":58.1}"#;
        assert_eq!(
            parse_decision(output),
            Ok(Decision {
                proposal: "p".into(),
                rule: "quadratic".into(),
                outcome: Outcome::NoQuorum,
                yes: 20.0,
                no: 19.0,
                abstain: 0.0,
                turnout_percent: 58.1,
            })
        );
        assert!(matches!(
            parse_decision(br#"{"outcome":"maybe"}"#),
            Err(DaoError::BadDecision { .. })
        ));
        let unknown = br#"{"proposal":"p","rule":"r","outcome":"maybe","yes":0,"no":0,"abstain":0,"turnout_percent":0}"#;
        assert!(matches!(
            parse_decision(unknown),
            Err(DaoError::BadDecision { reason, .. }) if reason.contains("maybe")
        ));
    }
}
