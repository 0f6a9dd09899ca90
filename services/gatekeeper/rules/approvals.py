"""Whose approval a release needs, whether it has it, and who may give it (four eyes, quorum)."""

from collections.abc import Iterable

from contracts.identity import Role
from services.gatekeeper.policy import Policy
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import ApprovalNeed, Effect, RuleOutcome
from services.gatekeeper.rules.risk import RiskAssessment
from services.gatekeeper.rules.state import Approval

RULE = "approvals"


def required_approvals(candidate: Candidate, policy: Policy, risk: RiskAssessment) -> list[ApprovalNeed]:
    """What its class and risk level ask for, before any block it may need an exception to pass."""
    rules = policy.classes.of(candidate.release_class)
    needs = [ApprovalNeed(role=role, quorum=1, purpose=f"{candidate.release_class.value} release readiness sign-off")
             for role in rules.sign_offs]
    if rules.risk_approvals:
        needs += [ApprovalNeed(role=a.role, quorum=a.quorum, same_team=a.same_team, purpose=f"risk level {risk.level}")
                  for a in policy.approvals.levels.get(risk.level, ())]
    return needs


def may_count(approval: Approval, need: ApprovalNeed, candidate: Candidate) -> bool:
    return _qualifies(approval.approver, approval.roles, approval.teams, need, candidate)


def _qualifies(approver: str, roles: tuple[Role, ...], teams: tuple[str, ...], need: ApprovalNeed,
               candidate: Candidate) -> bool:
    # The requester's own approval never counts, even if it was recorded somehow: four eyes.
    return (approver != candidate.requester and need.role in roles
            and (not need.same_team or candidate.spec.team in teams))


def assign(needs: list[ApprovalNeed], approvals: Iterable[Approval], candidate: Candidate) -> list[list[str]]:
    """Approvers counted towards each need, each person once across all needs: a readiness review of three
    roles means three people looked. Scarcest needs are filled first so one versatile approver is not spent
    where anyone else would do (greedy: good enough for a handful of roles)."""
    people: dict[str, Approval] = {}
    for approval in approvals:
        if approval.release_id == candidate.release_id:
            people.setdefault(approval.approver, approval)
    counted: list[list[str]] = [[] for _ in needs]
    used: set[str] = set()
    order = sorted(range(len(needs)), key=lambda i: sum(may_count(a, needs[i], candidate) for a in people.values()))
    for i in order:
        for approver, approval in people.items():
            if len(counted[i]) < needs[i].quorum and approver not in used and may_count(approval, needs[i], candidate):
                counted[i].append(approver)
                used.add(approver)
    return counted


def outstanding(needs: list[ApprovalNeed], approvals: Iterable[Approval], candidate: Candidate) -> list[ApprovalNeed]:
    counted = assign(needs, approvals, candidate)
    return [need.model_copy(update={"quorum": need.quorum - len(got)})
            for need, got in zip(needs, counted, strict=True) if len(got) < need.quorum]


def approval_outcomes(needs: list[ApprovalNeed], approvals: Iterable[Approval], candidate: Candidate) -> list[RuleOutcome]:
    if not needs:
        return [RuleOutcome(rule=RULE, effect=Effect.PASS, reason="no approval needed: pre-approved by policy")]
    outcomes = []
    for need, got in zip(needs, assign(needs, approvals, candidate), strict=True):
        who = _who(need, candidate)
        if len(got) >= need.quorum:
            outcomes.append(RuleOutcome(rule=RULE, effect=Effect.PASS,
                                        reason=f"{need.purpose}: approved by {', '.join(got)}"))
        else:
            outcomes.append(RuleOutcome(rule=RULE, effect=Effect.NEEDS_APPROVAL,
                                        reason=f"{need.purpose}: waits for {need.quorum - len(got)} more {who}"
                                        + (f" (approved so far by {', '.join(got)})" if got else "")))
    return outcomes


def approval_refusal(candidate: Candidate, approver: str, roles: Iterable[Role], teams: Iterable[str],
                     needs: list[ApprovalNeed], approvals: Iterable[Approval]) -> str | None:
    """Why `approver` may not approve this release now; None when their approval would count."""
    given = [a for a in approvals if a.release_id == candidate.release_id]
    if approver == candidate.requester:
        return f"four eyes: {approver} requested release {candidate.release_id} and may not approve it"
    if any(a.approver == approver for a in given):
        return f"{approver} has already approved release {candidate.release_id}"
    missing = outstanding(needs, given, candidate)
    if not missing:
        return f"release {candidate.release_id} is not waiting for an approval"
    held_roles, held_teams = tuple(roles), tuple(teams)
    if any(_qualifies(approver, held_roles, held_teams, need, candidate) for need in missing):
        return None
    held = ", ".join(r.value for r in held_roles) or "no role"
    wanted = "; ".join(f"{n.quorum} {_who(n, candidate)}" for n in missing)
    return f"release {candidate.release_id} waits for {wanted}; {approver} has {held}" + (
        f" in teams {', '.join(held_teams)}" if held_teams else "")


def _who(need: ApprovalNeed, candidate: Candidate) -> str:
    return f"{need.role.value}" + (f" of team {candidate.spec.team}" if need.same_team else "")
