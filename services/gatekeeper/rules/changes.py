"""Change records: a release the policy names must link one that is approved and whose window covers now."""

from datetime import datetime

from services.gatekeeper.changes import deployment_allowed
from services.gatekeeper.policy import Policy, WaitKind
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.state import GateState

RULE = "change-record"


def change_outcome(candidate: Candidate, policy: Policy, state: GateState, now: datetime) -> RuleOutcome:
    number = candidate.terms.change
    if not policy.changes.required(candidate.environment, candidate.release_class):
        reason = "no change record required" + (f" (names {number})" if number else "")
        return RuleOutcome(rule=RULE, effect=Effect.PASS, reason=reason)
    what = f"a {candidate.release_class.value} release to {candidate.environment}"
    if number is None:
        return RuleOutcome(rule=RULE, effect=Effect.REFUSE,
                           reason=f"{what} must name an approved change record (change: CHG...)")
    if number in state.unreachable_changes:
        return RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.CHANGE,
                           reason=f"the change records cannot be read now ({state.unreachable_changes[number]}): "
                                  f"waiting to check {number}")
    check = deployment_allowed(state.changes.get(number), number, now)
    if check.allowed:
        return RuleOutcome(rule=RULE, effect=Effect.PASS, reason=check.reason)
    record = state.changes.get(number)
    # Not yet approved, or its window not yet open: that may still come; closed, finished or unknown will not.
    may_come = record is not None and (not record.approved or check.opens_at is not None) and \
        (record.ends_at is None or now < record.ends_at)
    if may_come:
        return RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.CHANGE, until=check.opens_at, reason=check.reason)
    return RuleOutcome(rule=RULE, effect=Effect.REFUSE, reason=check.reason)
