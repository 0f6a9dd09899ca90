"""What a release's class asks of it before anyone approves: known issues listed, no review still owed."""

from services.gatekeeper.policy import Policy, WaitKind
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.state import GateState

RULE = "class"


def class_outcomes(candidate: Candidate, policy: Policy, state: GateState) -> list[RuleOutcome]:
    name = candidate.release_class.value
    rules = policy.classes.of(candidate.release_class)
    outcomes = []
    if rules.known_issues_required and candidate.terms.known_issues is None:
        outcomes.append(RuleOutcome(rule=f"{RULE}.known_issues", effect=Effect.REFUSE,
                                    reason=f"a {name} release must list its known issues (known_issues: [] "
                                    "states there are none)"))
    if rules.waits_for_owed_pir and candidate.service in state.owed_pirs:
        outcomes.append(RuleOutcome(rule=f"{RULE}.pir", effect=Effect.WAIT, wait=WaitKind.PIR,
                                    reason=f"{candidate.service} owes a post-implementation review; a {name} release "
                                    "waits until it is recorded"))
    if rules.pir_owed:
        outcomes.append(RuleOutcome(rule=f"{RULE}.pir_owed", effect=Effect.NOTE,
                                    reason=f"a {name} release owes a post-implementation review afterwards"))
    if rules.flagged:
        outcomes.append(RuleOutcome(rule=f"{RULE}.flagged", effect=Effect.NOTE,
                                    reason=f"{name} release: flagged in the audit trail"))
    return outcomes
