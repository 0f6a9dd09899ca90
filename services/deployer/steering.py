"""What a person may do to a release in flight (pause, resume, promote), decided without I/O.

A person's pause sits beside an incident's (domain.Pause) and works the same way: the current step
is still judged, a failing verdict still rolls the release back, a passing one holds its weights.
Each kind of pause is lifted only by its own kind (a person resumes, the gatekeeper lifts an
incident's), and a step goes on once no pause of either kind holds it.
"""

from dataclasses import dataclass
from datetime import datetime

from services.deployer.domain import ENDED, Deployment, Hold, Pause, Status, resume_refusal


@dataclass(frozen=True)
class PersonPause:
    """A person paused this release (`slipway pause`): it goes on only when someone resumes or promotes it."""

    release_id: str
    actor: str
    reason: str
    paused_at: datetime
    held_verdict_event_id: str | None = None  # the accepted verdict the pause kept from moving the release on


@dataclass(frozen=True)
class Resumption:
    """What a person's resume does: lift their pause, accept the held step, or both."""

    lift_pause: bool
    accept_step: bool


def in_flight_refusal(deployment: Deployment | None, release_id: str, verb: str) -> str | None:
    """Why nobody can `verb` this release: unknown here, or no longer deploying."""
    if deployment is None:
        return f"no release {release_id} is known to the deployer"
    if deployment.status is not Status.DEPLOYING:
        return f"release {release_id} {ENDED[deployment.status]}: there is nothing to {verb}"
    return None


def pause_refusal(deployment: Deployment | None, release_id: str, paused: PersonPause | None) -> str | None:
    if problem := in_flight_refusal(deployment, release_id, "pause"):
        return problem
    if paused is not None:
        return f"release {release_id} is already paused by {paused.actor} since {paused.paused_at:%H:%M:%S} UTC: {paused.reason}"
    return None


def resumption(deployment: Deployment | None, hold: Hold | None, release_id: str, incident: Pause | None,
               paused: PersonPause | None) -> Resumption | str:
    """A person's resume lifts their pause and accepts the step it holds; without a pause, it accepts a step an
    inconclusive verdict holds (as `release resume` always did). The refusal when there is nothing to resume."""
    if paused is None:
        problem = resume_refusal(deployment, hold, release_id, incident)
        return problem if problem is not None else Resumption(lift_pause=False, accept_step=True)
    if problem := in_flight_refusal(deployment, release_id, "resume"):
        return problem
    assert deployment is not None
    held_here = hold is not None and hold.step_index == deployment.step_index
    # An incident's pause still holds the step: lifting the person's pause lets it go on when the incident ends.
    return Resumption(lift_pause=True, accept_step=held_here and incident is None)


def promote_refusal(deployment: Deployment | None, release_id: str, incident: Pause | None) -> str | None:
    if problem := in_flight_refusal(deployment, release_id, "promote"):
        return problem
    if incident is not None:
        return (f"release {release_id} is paused for incident {incident.incident_id}: it cannot be promoted until "
                "the incident is resolved")
    return None


def incident_lift_holds(paused: PersonPause | None) -> bool:
    """Whether a step an incident's pause held stays held when that pause is lifted: a person's pause remains."""
    return paused is not None
