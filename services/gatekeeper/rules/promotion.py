"""Promotion gates: a digest reaches an environment only after it succeeded earlier and has passing evidence."""

from datetime import datetime
from fnmatch import fnmatchcase

from contracts.events import ALL_SERVICES
from services.gatekeeper.policy import Gate, Policy, WaitKind, WindowAction
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.state import Evidence, GateState

RULE = "promotion"


def gate_for(candidate: Candidate, policy: Policy) -> Gate | None:
    gate = policy.promotion.environments.get(candidate.environment)
    if gate is None or (gate.services and not any(fnmatchcase(candidate.service, p) for p in gate.services)):
        return None
    return gate


def missing_for_promotion(gate: Gate, digest: str, state: GateState, now: datetime,
                          candidate: Candidate | None = None) -> list[str]:
    """What the digest still lacks, each as a reason; empty when the gate is passed. With a `candidate`,
    only evidence its own team submitted (for its service or for any) counts."""
    missing = []
    evidence = state.evidence if candidate is None else tuple(e for e in state.evidence if _counts_for(e, candidate))
    succeeded = {s.environment for s in state.successes if s.digest == digest}
    missing += [f"no successful deployment of {digest} in {env}" for env in gate.after if env not in succeeded]
    for kind in gate.evidence:
        latest = _latest(evidence, digest, kind)
        if latest is None:
            missing.append(f"no {kind} evidence for {digest}")
        elif not latest.passed:
            missing.append(f"latest {kind} evidence for {digest} failed ({latest.at.isoformat()}{_url(latest)})")
        elif gate.evidence_max_age is not None and now - latest.at > gate.evidence_max_age:
            missing.append(f"{kind} evidence for {digest} is older than {gate.evidence_max_age}")
    return missing


def promotion_outcome(candidate: Candidate, policy: Policy, state: GateState, now: datetime) -> RuleOutcome:
    gate = gate_for(candidate, policy)
    if gate is None:
        return RuleOutcome(rule=RULE, effect=Effect.PASS, reason=f"no promotion gate on {candidate.environment}")
    digest = candidate.spec.artifact.digest
    missing = missing_for_promotion(gate, digest, state, now, candidate)
    if not missing:
        asked = [*(f"succeeded in {env}" for env in gate.after), *(f"{kind} passed" for kind in gate.evidence)]
        return RuleOutcome(rule=RULE, effect=Effect.PASS,
                           reason=f"promotion gate of {candidate.environment} passed: {', '.join(asked) or 'nothing asked'}")
    if gate.on_missing is WindowAction.QUEUE:
        return RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.PROMOTION,
                           reason=f"promotion gate of {candidate.environment}: waits for {'; '.join(missing)}")
    return RuleOutcome(rule=RULE, effect=Effect.REFUSE,
                       reason=f"promotion gate of {candidate.environment}: {'; '.join(missing)}")


def _counts_for(evidence: Evidence, candidate: Candidate) -> bool:
    # A digest is content, not ownership: another team's test of the same bytes does not vouch for this release.
    return (evidence.team in ("", candidate.spec.team)
            and evidence.service in ("", None, ALL_SERVICES, candidate.service))


def _latest(evidence: tuple[Evidence, ...], digest: str, kind: str) -> Evidence | None:
    # The newest record decides: a failing run after a passing one means the digest is not proven any more.
    matching = [e for e in evidence if e.digest == digest and e.kind == kind]
    return max(matching, key=lambda e: e.at) if matching else None


def _url(evidence: Evidence) -> str:
    return f", {evidence.url}" if evidence.url else ""
