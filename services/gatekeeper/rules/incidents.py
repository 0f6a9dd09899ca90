"""Open incidents halt releases in their environment (and pause rollouts there: rules.pauses)."""

from contracts.release import ReleaseClass
from services.gatekeeper.policy import IncidentsPolicy, Policy, WaitKind
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.state import Incident

RULE = "incidents"


def halting(policy: IncidentsPolicy, incidents: tuple[Incident, ...], environment: str) -> list[Incident]:
    return [i for i in incidents if i.environment == environment and i.severity.rank >= policy.halt_at.rank]


def incident_outcomes(candidate: Candidate, policy: Policy, incidents: tuple[Incident, ...]) -> list[RuleOutcome]:
    open_here = halting(policy.incidents, incidents, candidate.environment)
    if not open_here:
        return [RuleOutcome(rule=RULE, effect=Effect.PASS,
                            reason=f"no incident of severity {policy.incidents.halt_at.value} or worse open in "
                            f"{candidate.environment}")]
    names_it = candidate.release_class is ReleaseClass.EMERGENCY and policy.incidents.emergency_may_pass
    outcomes = []
    for incident in open_here:
        described = f"incident {incident.incident_id} ({incident.severity.value}) open in {incident.environment} " \
                    f"since {incident.opened_at.isoformat()}" + (f": {incident.summary}" if incident.summary else "")
        if names_it and candidate.terms.incident == incident.incident_id:
            outcomes.append(RuleOutcome(rule=RULE, effect=Effect.PASS,
                                        reason=f"{described}; this emergency release fixes it and may pass"))
        else:
            outcomes.append(RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.INCIDENT,
                                        reason=f"{described}; waits until it is resolved"))
    return outcomes
