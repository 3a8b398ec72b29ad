// A DAO voting rule in JavaScript, for the QuickJS runtime plugin (`js_runtime`):
//   plugin-host install rule --js plugins/js/dao_rule.js --config rule=quadratic
//
//   decide  {"proposal": ID, "total_supply": N, "ballots": [{"voter", "weight", "choice"}]}
//           -> {"proposal", "rule", "outcome": "passed" | "rejected" | "no_quorum", "yes", "no",
//               "abstain", "turnout_percent"}; invalid ballots are the plugin's error
//   stats   {"decided": D}: proposals decided so far (a JavaScript global: plugin memory)
//
// Config: `rule` = "token_weighted" (default) or "quadratic" (a voter's say is the square root
// of their weight); `quorum_percent` (default 0) of `total_supply` must vote.

let decided = 0;

function decide(input) {
  // Counted first: when the ballots turn out invalid, the host rolls this back with the rest.
  decided += 1;
  const proposal = JSON.parse(input);
  if (!Array.isArray(proposal.ballots)) throw new Error('expected {"ballots": [...]}');
  const rule = config.get("rule") ?? "token_weighted";
  if (rule !== "token_weighted" && rule !== "quadratic") throw new Error(`unknown rule ${rule}`);
  const tally = { yes: 0, no: 0, abstain: 0 };
  const voters = new Set();
  let weights = 0;
  for (const ballot of proposal.ballots) {
    const { voter, weight, choice } = ballot;
    if (typeof voter !== "string" || voter === "") throw new Error("a ballot without a voter");
    if (voters.has(voter)) throw new Error(`${voter} voted twice`);
    if (!Number.isSafeInteger(weight) || weight < 0) throw new Error(`${voter}: bad weight ${weight}`);
    if (!(choice in tally)) throw new Error(`${voter}: bad choice ${choice}`);
    voters.add(voter);
    weights += weight;
    tally[choice] += rule === "quadratic" ? Math.sqrt(weight) : weight;
  }
  const supply = proposal.total_supply ?? weights;
  const turnout = supply > 0 ? (100 * weights) / supply : 0;
  const quorum = Number(config.get("quorum_percent") ?? "0");
  const outcome = turnout < quorum ? "no_quorum" : tally.yes > tally.no ? "passed" : "rejected";
  return { proposal: proposal.proposal ?? null, rule, outcome, ...tally, turnout_percent: turnout };
}

function stats() {
  return { decided };
}
