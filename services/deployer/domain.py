"""The deployer's decisions: what a verdict, a pause or a person leads to (how traffic moves is the strategies')."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contracts.events import Verdict


class Status(StrEnum):
    DEPLOYING = "deploying"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


@dataclass(frozen=True)
class Deployment:
    release_id: str
    service: str
    environment: str
    version: str
    stable_version: str | None
    steps: list[int]
    step_index: int
    status: Status

    @property
    def is_last_step(self) -> bool:
        return self.step_index >= len(self.steps) - 1


@dataclass(frozen=True)
class Hold:
    """A release held at a step by an inconclusive verdict, until a person resumes or aborts it."""

    release_id: str
    step_index: int
    reasons: list[str]
    held_at: datetime
    verdict_event_id: str


@dataclass(frozen=True)
class Pause:
    """The gatekeeper paused this release for an incident: its current step is judged, but it does not move on."""

    release_id: str
    incident_id: str
    reason: str
    paused_at: datetime
    held_verdict_event_id: str | None = None  # the accepted verdict the pause kept from moving the release on


class Next(StrEnum):
    ADVANCE = "advance"
    COMPLETE = "complete"
    AWAIT_ROLLBACK = "await-rollback"
    HOLD = "hold"
    PAUSE = "pause"
    IGNORE = "ignore"


def after_verdict(deployment: Deployment | None, step_index: int, verdict: Verdict,
                  paused: bool = False) -> tuple[Next, str]:
    """What the deployer does with a step's verdict; the rollback itself is the rollback-controller's call.

    A paused release still rolls back on a failing verdict and still waits for a person on an inconclusive one;
    an accepted step holds its weights instead of moving on (or to 100%) until the pause is lifted."""
    if deployment is None:
        return Next.IGNORE, "no such deployment here"
    if deployment.status is not Status.DEPLOYING:
        return Next.IGNORE, f"deployment is {deployment.status.value}"
    if step_index != deployment.step_index:
        return Next.IGNORE, f"verdict for step {step_index}, deployment is at step {deployment.step_index}"
    if verdict is Verdict.FAIL:
        return Next.AWAIT_ROLLBACK, "failing verdict: traffic stays put until the rollback-controller decides"
    if verdict is Verdict.INCONCLUSIVE:
        return Next.HOLD, "inconclusive verdict: traffic stays put until a person decides"
    if paused:
        return Next.PAUSE, f"step {step_index + 1} passed ({verdict.value}) but the rollout is paused"
    if onward(deployment) is Next.COMPLETE:
        return Next.COMPLETE, f"last step passed ({verdict.value})"
    return Next.ADVANCE, f"step {step_index + 1} of {len(deployment.steps)} passed ({verdict.value})"


def onward(deployment: Deployment) -> Next:
    """Where a release goes once its current step is accepted, by a verdict or by a person."""
    return Next.COMPLETE if deployment.is_last_step else Next.ADVANCE


def after_pause_lifted(deployment: Deployment | None, hold: Hold | None,
                       held_verdict_event_id: str | None) -> tuple[Next, str]:
    """What lifting an incident's pause does: move on a step the pause held, otherwise only let the next verdict count."""
    if deployment is None or deployment.status is not Status.DEPLOYING:
        return Next.IGNORE, "no deployment in progress here"
    if hold is None or hold.step_index != deployment.step_index:
        return Next.IGNORE, f"step {deployment.step_index + 1} is still being judged; its verdict moves it on"
    if hold.verdict_event_id != held_verdict_event_id:
        return Next.IGNORE, f"step {deployment.step_index + 1} was inconclusive: it waits for a person"
    return onward(deployment), f"step {deployment.step_index + 1} had passed while the rollout was paused"


ENDED = {Status.SUCCEEDED: "succeeded", Status.ROLLED_BACK: "was rolled back", Status.FAILED: "failed"}


def resume_refusal(deployment: Deployment | None, hold: Hold | None, release_id: str,
                   pause: Pause | None = None) -> str | None:
    """Why a person may not resume this release; None when it is held at its current step."""
    if deployment is None:
        return f"no release {release_id} is known to the deployer"
    if deployment.status is not Status.DEPLOYING:
        return f"release {release_id} {ENDED[deployment.status]}: there is nothing to resume"
    if pause is not None:
        # The gatekeeper's incident policy paused it; only resolving the incident lifts that.
        return f"release {release_id} is paused for incident {pause.incident_id}: it goes on when the incident is resolved"
    if hold is None or hold.step_index != deployment.step_index:
        return (
            f"release {release_id} is not held: step {deployment.step_index + 1} of {len(deployment.steps)} "
            "is still being judged"
        )
    return None


def conflict(active: Deployment | None, release_id: str) -> str | None:
    """One deployment per service and environment at a time."""
    if active is not None and active.release_id != release_id and active.status is Status.DEPLOYING:
        return (
            f"deployment {active.release_id} of {active.service} {active.version} to {active.environment} "
            "is still in progress"
        )
    return None


def restart_delay(failures: int) -> float:
    """Seconds before another attempt to restart an instance that failed to start `failures` times in a row."""
    return min(30.0, 0.5 * 2**failures)


def unreported_refusals(reported: tuple[str, int] | None, router: str, count: int) -> int:
    """How many of a router's refused admin calls are news, given the (router identity, count) last reported.

    A router counts from zero when it starts, so a restarted router (another identity) has reported none of its own.
    """
    if reported is None or reported[0] != router:
        return count
    return max(0, count - reported[1])
