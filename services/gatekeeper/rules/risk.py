"""Risk classification: a score from impact, visibility and rollback complexity, and the level it falls in."""

from dataclasses import dataclass
from datetime import datetime

from services.gatekeeper.policy import Policy
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.state import GateState

RULE = "risk"


@dataclass(frozen=True)
class Contribution:
    factor: str
    detail: str
    points: int


@dataclass(frozen=True)
class RiskAssessment:
    score: int
    level: str
    contributions: tuple[Contribution, ...]
    raised_by: str | None = None  # why the level is above what the score gives

    def outcomes(self) -> list[RuleOutcome]:
        factors = [RuleOutcome(rule=f"{RULE}.{c.factor}", effect=Effect.NOTE, reason=f"{c.detail}: +{c.points}")
                   for c in self.contributions]
        summary = f"risk score {self.score}: level {self.level}" + (f" ({self.raised_by})" if self.raised_by else "")
        return [*factors, RuleOutcome(rule=RULE, effect=Effect.NOTE, reason=summary)]


def assess_risk(candidate: Candidate, policy: Policy, state: GateState, now: datetime) -> RiskAssessment:
    risk = policy.risk
    entry = policy.services.entry(candidate.service)
    known = "" if entry is not None else f" ({candidate.service} is not in the service catalogue)"

    def profile(name: str) -> tuple[object, str]:
        value = getattr(entry, name, None) if entry is not None else None
        if value is None:
            return getattr(risk.assume, name), " (assumed)" + known
        return value, ""

    tier, tier_note = profile("tier")
    visibility, visibility_note = profile("visibility")
    reach, reach_note = profile("reach")
    terms = candidate.terms
    known_issues = len(terms.known_issues or [])
    pir_factors = state.pir_risk_factors.get(candidate.service, ())
    found = [
        Contribution("tier", f"tier {tier}{tier_note}", risk.tier[tier]),  # type: ignore[index]
        Contribution("reach", f"reach {reach}{reach_note}", risk.reach[reach]),  # type: ignore[index]
        Contribution("visibility", f"{visibility}{visibility_note}", risk.visibility[visibility]),  # type: ignore[index]
        Contribution("migrations", f"{len(terms.migrations)} database migration(s)",
                     risk.migrations.points(len(terms.migrations))),
        Contribution("irreversible_steps", f"{len(terms.irreversible_steps)} irreversible step(s)",
                     risk.irreversible_steps.points(len(terms.irreversible_steps))),
        Contribution("dependents", f"{len(terms.dependents)} dependent service(s)",
                     risk.dependents.points(len(terms.dependents))),
        Contribution("known_issues", f"{known_issues} known issue(s)", risk.known_issues.points(known_issues)),
        Contribution("pir_risk_factors", _pir_detail(pir_factors),
                     risk.pir_risk_factors.points(len(pir_factors))),
        Contribution("unplanned", "unplanned change" if terms.unplanned else "planned change",
                     risk.unplanned if terms.unplanned else 0),
    ]
    score = sum(c.points for c in found)
    level = risk.level_of(score)
    raised_level, raised_by = _after_recent_failure(candidate, policy, state, now, level)
    return RiskAssessment(score, raised_level, tuple(found), raised_by)


def _after_recent_failure(candidate: Candidate, policy: Policy, state: GateState, now: datetime,
                          level: str) -> tuple[str, str | None]:
    rule = policy.risk.recent_failure
    recent = [f for f in state.recent_failures if f.service == candidate.service and now - f.at <= rule.within]
    if not recent or rule.raise_levels == 0:
        return level, None
    names = list(policy.risk.levels)
    if rule.applies_from is not None and names.index(level) < names.index(rule.applies_from):
        return level, None
    latest = max(recent, key=lambda f: f.at)
    raised = names[min(names.index(level) + rule.raise_levels, len(names) - 1)]
    which = f" (release {latest.release_id})" if latest.release_id else ""
    return raised, (f"raised from {level}: {candidate.service} failed in {latest.environment} at "
                    f"{latest.at.isoformat()}{which}, within {rule.within}")


def _pir_detail(factors: tuple[str, ...]) -> str:
    named = f": {'; '.join(factors)}" if factors else ""
    return f"{len(factors)} risk factor(s) from the latest post-implementation review{named}"
