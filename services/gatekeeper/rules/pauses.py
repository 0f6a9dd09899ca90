"""Which rollouts in flight an open incident pauses, and which paused ones may go on. Pure: no I/O.

Level-triggered: the caller passes what is in flight, what is open and what it paused so far, and
gets the difference to act on; asking again with the same state gives nothing to do, so a restart
or a second look never pauses a release twice or forgets one.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from services.gatekeeper.policy import IncidentsPolicy
from services.gatekeeper.rules.incidents import halting
from services.gatekeeper.rules.state import Incident


@dataclass(frozen=True)
class Rollout:
    """A release in flight, as far as pausing goes."""

    release_id: str
    service: str
    environment: str
    fixes: str | None = None  # the incident an emergency release names: that one does not pause it


@dataclass(frozen=True)
class Pause:
    rollout: Rollout
    incidents: tuple[Incident, ...]  # the halting ones, oldest first; the first is the one it is paused for


@dataclass(frozen=True)
class PauseChanges:
    pause: tuple[Pause, ...] = ()
    resume: tuple[str, ...] = ()  # release ids paused so far that nothing halts any more
    # Paused rollouts that another halting incident now holds as well (it must be resolved too before they go on).
    extend: tuple[Pause, ...] = ()
    forget: tuple[str, ...] = ()  # release ids paused so far that are no longer in flight: nothing to resume


def pausing(policy: IncidentsPolicy, incidents: tuple[Incident, ...], rollout: Rollout) -> tuple[Incident, ...]:
    """The open incidents that pause `rollout` now; empty when none does or policy does not pause rollouts."""
    if not policy.pause_in_flight:
        return ()
    found = halting(policy, incidents, rollout.environment)
    # An emergency release that fixes an incident passes it, as it passed the incident rule at the gate.
    found = [i for i in found if not (policy.emergency_may_pass and rollout.fixes == i.incident_id)]
    return tuple(sorted(found, key=lambda i: (i.opened_at, i.incident_id)))


def pause_changes(policy: IncidentsPolicy, incidents: tuple[Incident, ...], in_flight: tuple[Rollout, ...],
                  paused: Mapping[str, tuple[str, ...]]) -> PauseChanges:
    """What to do now, given the rollouts in flight, the open incidents and what paused each release so far
    (release id -> incident ids)."""
    pause, resume, extend = [], [], []
    for rollout in in_flight:
        now_pausing = pausing(policy, incidents, rollout)
        if now_pausing and rollout.release_id not in paused:
            pause.append(Pause(rollout, now_pausing))
        elif not now_pausing and rollout.release_id in paused:
            resume.append(rollout.release_id)
        elif now_pausing and {i.incident_id for i in now_pausing} - set(paused[rollout.release_id]):
            extend.append(Pause(rollout, now_pausing))
    flying = {r.release_id for r in in_flight}
    forget = tuple(sorted(release_id for release_id in paused if release_id not in flying))
    return PauseChanges(pause=tuple(pause), resume=tuple(resume), extend=tuple(extend), forget=forget)


def paused_reason(pause: Pause) -> str:
    first = pause.incidents[0]
    others = f" (and {len(pause.incidents) - 1} more)" if len(pause.incidents) > 1 else ""
    return (f"incident {first.incident_id} ({first.severity.value}) open in {first.environment}{others}"
            + (f": {first.summary}" if first.summary else "")
            + "; the rollout holds its weights after its current step until it is resolved")
