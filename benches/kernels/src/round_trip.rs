//! The JSON round trip of benchmark P8: a DAO proposal document of a few KiB parsed into typed
//! structs with serde_json and serialized back, natively in the bench build and as the
//! `json_round_trip` plugin.

use serde::{Deserialize, Serialize};

/// A DAO proposal as a governance front end would store it.
#[derive(Serialize, Deserialize)]
pub struct Proposal {
    /// Proposal number.
    pub id: u64,
    /// One-line title.
    pub title: String,
    /// Free text, a paragraph or two.
    pub summary: String,
    /// Who proposed it (principal text).
    pub proposer: String,
    /// When it was submitted, IC time in nanoseconds.
    pub created_ns: u64,
    /// When voting closes.
    pub deadline_ns: u64,
    /// Where voting stands.
    pub status: Status,
    /// What it does if it passes.
    pub actions: Vec<Action>,
    /// The ballots cast so far.
    pub ballots: Vec<Ballot>,
    /// The voting power counted so far.
    pub tally: Tally,
    /// Labels.
    pub tags: Vec<String>,
    /// A forum thread, if any.
    pub discussion_url: Option<String>,
}

/// Where voting stands.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Voting is open.
    Open,
    /// Passed.
    Passed,
    /// Rejected.
    Rejected,
}

/// One action of a proposal: a transfer, a parameter change.
#[derive(Serialize, Deserialize)]
pub struct Action {
    /// What kind of action.
    pub kind: String,
    /// Whom or what it acts on.
    pub target: String,
    /// Tokens (e8s) or the parameter's new value.
    pub amount: u64,
    /// A note, if any.
    pub memo: Option<String>,
}

/// One ballot.
#[derive(Serialize, Deserialize)]
pub struct Ballot {
    /// Voter (principal text).
    pub voter: String,
    /// Voting power.
    pub weight: f64,
    /// The choice.
    pub choice: Choice,
    /// When it was cast.
    pub cast_ns: u64,
}

/// A ballot's choice.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// For.
    Yes,
    /// Against.
    No,
    /// Counted for turnout only.
    Abstain,
}

/// Voting power per choice.
#[derive(Serialize, Deserialize)]
pub struct Tally {
    /// For.
    pub yes: f64,
    /// Against.
    pub no: f64,
    /// Abstaining.
    pub abstain: f64,
}

/// The benchmark's document: a proposal with `ballots` ballots, as compact JSON (serde_json's own
/// output, so that a faithful round trip gives back the very same bytes).
pub fn document(ballots: u64) -> String {
    let ballots: Vec<Ballot> = (0..ballots)
        .map(|i| Ballot {
            voter: format!("{:05}-voter-principal-{:03}", i * 7919 % 100_000, i),
            weight: (i * 37 % 1000) as f64 + 0.25 * (i % 4) as f64,
            choice: match i % 4 {
                0 | 2 => Choice::Yes,
                1 => Choice::No,
                _ => Choice::Abstain,
            },
            cast_ns: 1_700_000_000_000_000_000 + i * 1_234_567_891,
        })
        .collect();
    let power = |choice: fn(&Choice) -> bool| {
        ballots
            .iter()
            .filter(|b| choice(&b.choice))
            .map(|b| b.weight)
            .sum()
    };
    let tally = Tally {
        yes: power(|c| matches!(c, Choice::Yes)),
        no: power(|c| matches!(c, Choice::No)),
        abstain: power(|c| matches!(c, Choice::Abstain)),
    };
    let proposal = Proposal {
        id: 42,
        title: "Fund the plugin registry \"audit\" for Q3".into(),
        summary: "Pays an external team to review every plugin in the registry before it can be \
                  installed by the DAO's canisters.\nThe review covers the module's imports, its \
                  fuel use on the benchmark inputs and its memory growth; the report is \
                  published on the forum. Funds are released in two tranches."
            .into(),
        proposer: "rrkah-fqaaa-aaaaa-aaaaq-cai".into(),
        created_ns: 1_699_999_000_000_000_000,
        deadline_ns: 1_700_604_800_000_000_000,
        status: Status::Open,
        actions: vec![
            Action {
                kind: "transfer".into(),
                target: "audit-team-account".into(),
                amount: 2_500_000_000_000,
                memo: Some("tranche 1 of 2".into()),
            },
            Action {
                kind: "set_parameter".into(),
                target: "registry.review_required".into(),
                amount: 1,
                memo: None,
            },
        ],
        ballots,
        tally,
        tags: vec!["treasury".into(), "registry".into(), "security".into()],
        discussion_url: Some("https://forum.example.org/t/registry-audit/1234".into()),
    };
    serde_json::to_string(&proposal).unwrap_or_default()
}

/// Parses `document` into a [`Proposal`] and serializes it back; answers the sizes and whether the
/// bytes came back unchanged (or why the document did not parse).
pub fn round_trip(document: &[u8]) -> String {
    match serde_json::from_slice::<Proposal>(document).and_then(|p| serde_json::to_vec(&p)) {
        Ok(back) => format!(
            "{} bytes in, {} out, identical: {}",
            document.len(),
            back.len(),
            back == document
        ),
        Err(e) => format!("not a proposal: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_comes_back_byte_for_byte() {
        let document = document(40);
        let answer = round_trip(document.as_bytes());
        assert_eq!(
            answer,
            format!("{0} bytes in, {0} out, identical: true", document.len())
        );
        assert!(round_trip(b"{}").starts_with("not a proposal: "));
    }
}
