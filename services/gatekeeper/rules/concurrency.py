"""Deployment slots: at most N in flight per environment, one per service and environment, the rest in order."""

from services.gatekeeper.policy import Policy, WaitKind
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.state import GateState, Slot

RULE = "concurrency"


def queue_order(waiting: list[Slot]) -> list[Slot]:
    """Emergencies first, then first come, first served (the release id breaks a tie, so the order is total)."""
    return sorted(waiting, key=lambda s: (s.release_class.value != "emergency", s.since, s.release_id))


def admitted(environment: str, limit: int, in_flight: tuple[Slot, ...], waiting: list[Slot]) -> list[str]:
    """Release ids from `waiting` that may start now in `environment`, in the order they should."""
    busy = {s.service for s in in_flight if s.environment == environment}
    free = limit - sum(1 for s in in_flight if s.environment == environment)
    chosen = []
    for slot in queue_order([s for s in waiting if s.environment == environment]):
        if free <= 0:
            break
        if slot.service not in busy:
            chosen.append(slot.release_id)
            busy.add(slot.service)
            free -= 1
    return chosen


def slot_outcome(candidate: Candidate, policy: Policy, state: GateState) -> RuleOutcome:
    me = Slot(candidate.release_id, candidate.service, candidate.environment, candidate.requested_at,
              candidate.release_class)
    waiting = [s for s in state.waiting_for_slot if s.release_id != candidate.release_id] + [me]
    limit = policy.concurrency.limit(candidate.environment)
    if candidate.release_id in admitted(candidate.environment, limit, state.in_flight, waiting):
        return RuleOutcome(rule=RULE, effect=Effect.PASS,
                           reason=f"a deployment slot is free in {candidate.environment} (limit {limit})")
    here = [s for s in state.in_flight if s.environment == candidate.environment]
    same = [s.release_id for s in here if s.service == candidate.service]
    ahead = queue_order([s for s in waiting if s.environment == candidate.environment]).index(me)
    why = (f"release {', '.join(same)} of {candidate.service} is in flight in {candidate.environment}" if same
           else f"{len(here)} of {limit} deployment slot(s) in {candidate.environment} are in use")
    return RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.SLOT,
                       reason=f"{why}; position {ahead + 1} in the queue")
