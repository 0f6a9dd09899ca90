"""All the rules together: may this release go now, and if not, what does it wait for?"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.gatekeeper.policy import Policy, WaitKind
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.checklist import checklist_outcomes
from services.gatekeeper.rules import approvals, windows
from services.gatekeeper.rules.changes import change_outcome
from services.gatekeeper.rules.concurrency import slot_outcome
from services.gatekeeper.rules.incidents import incident_outcomes
from services.gatekeeper.rules.outcome import ApprovalNeed, Effect, RuleOutcome
from services.gatekeeper.rules.promotion import promotion_outcome
from services.gatekeeper.rules.readiness import class_outcomes
from services.gatekeeper.rules.requirements import requirement_outcome
from services.gatekeeper.rules.risk import RiskAssessment, assess_risk
from services.gatekeeper.rules.state import GateState


class Verdict(StrEnum):
    APPROVED = "approved"
    PENDING_APPROVAL = "pending-approval"
    WAITING_FOR_PIR = "waiting-for-pir"
    WAITING_FOR_PROMOTION = "waiting-for-promotion"
    WAITING_FOR_REQUIREMENTS = "waiting-for-requirements"
    WAITING_FOR_INCIDENT = "waiting-for-incident"
    QUEUED_FOR_WINDOW = "queued-for-window"
    WAITING_FOR_SLOT = "waiting-for-slot"
    WAITING_FOR_CHANGE = "waiting-for-change"
    REFUSED = "refused"


# When a release waits for several things, the one named is the one that ends last by itself:
# a slot is only worth asking for once nothing else holds it.
WAITS = {
    WaitKind.CHANGE: Verdict.WAITING_FOR_CHANGE,
    WaitKind.PIR: Verdict.WAITING_FOR_PIR,
    WaitKind.PROMOTION: Verdict.WAITING_FOR_PROMOTION,
    WaitKind.REQUIREMENTS: Verdict.WAITING_FOR_REQUIREMENTS,
    WaitKind.INCIDENT: Verdict.WAITING_FOR_INCIDENT,
    WaitKind.WINDOW: Verdict.QUEUED_FOR_WINDOW,
    WaitKind.SLOT: Verdict.WAITING_FOR_SLOT,
}
EXCEPTION_PURPOSE = "exception to pass a freeze or window"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    outcomes: tuple[RuleOutcome, ...]
    risk: RiskAssessment
    outstanding: tuple[ApprovalNeed, ...] = ()  # approvals still missing
    wait: WaitKind | None = None
    until: datetime | None = None  # when the wait is expected to end by itself, if known
    # Every approval it needs, each with its whole quorum (an exception included when a window blocks it):
    # what a new approval is checked against, since `outstanding` already counts the approvals given.
    needs: tuple[ApprovalNeed, ...] = ()

    def reasons(self) -> list[str]:
        return [f"{o.rule}: {o.reason}" for o in self.outcomes if o.effect is not Effect.NOTE]


def evaluate(candidate: Candidate, policy: Policy, state: GateState, now: datetime) -> Decision:
    risk = assess_risk(candidate, policy, state, now)
    gate_outcomes = [
        *class_outcomes(candidate, policy, state),
        *checklist_outcomes(candidate, policy),
        promotion_outcome(candidate, policy, state, now),
        requirement_outcome(candidate, state),
        change_outcome(candidate, policy, state, now),
        *incident_outcomes(candidate, policy, state.incidents),
        *windows.window_outcomes(candidate, policy, state.freezes, now),
    ]
    needs = approvals.required_approvals(candidate, policy, risk)
    rules = policy.classes.of(candidate.release_class)
    blocked = any(o.rule == windows.RULE and o.effect is Effect.NEEDS_APPROVAL for o in gate_outcomes)
    if blocked and rules.exception_role is not None:
        needs.append(ApprovalNeed(role=rules.exception_role, quorum=rules.exception_quorum, purpose=EXCEPTION_PURPOSE))
    missing = approvals.outstanding(needs, state.approvals, candidate)
    if not any(n.purpose == EXCEPTION_PURPOSE for n in missing):
        gate_outcomes = [_excepted(o) for o in gate_outcomes]
    outcomes = [*risk.outcomes(), *gate_outcomes, *approvals.approval_outcomes(needs, state.approvals, candidate)]
    effects = {o.effect for o in outcomes}
    if Effect.REFUSE in effects:
        return Decision(Verdict.REFUSED, tuple(outcomes), risk, tuple(missing), needs=tuple(needs))
    if Effect.NEEDS_APPROVAL in effects:
        return Decision(Verdict.PENDING_APPROVAL, tuple(outcomes), risk, tuple(missing), needs=tuple(needs))
    if Effect.WAIT not in effects:
        outcomes.append(slot_outcome(candidate, policy, state))
    for kind, verdict in WAITS.items():
        waiting = [o for o in outcomes if o.effect is Effect.WAIT and o.wait is kind]
        if waiting:
            return Decision(verdict, tuple(outcomes), risk, (), kind, waiting[0].until, tuple(needs))
    return Decision(Verdict.APPROVED, tuple(outcomes), risk, needs=tuple(needs))


def _excepted(outcome: RuleOutcome) -> RuleOutcome:
    if outcome.rule != windows.RULE or outcome.effect is not Effect.NEEDS_APPROVAL:
        return outcome
    return outcome.model_copy(update={"effect": Effect.PASS,
                                      "reason": f"{outcome.reason}: exception approved, the release passes (recorded)"})
