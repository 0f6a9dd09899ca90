"""The deployer's decisions: how traffic is split at each step, and what a verdict leads to."""

from dataclasses import dataclass, replace
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
class Split:
    """Percent of traffic per version; versions with 0 are left out."""

    new: int
    stable: int


def traffic_split(weight: int, has_stable: bool) -> Split:
    # With nothing stable to fall back on (a first deployment) the new version takes all traffic;
    # the steps still gate completion on a healthy verdict.
    if not has_stable:
        return Split(new=100, stable=0)
    return Split(new=weight, stable=100 - weight)


class Next(StrEnum):
    ADVANCE = "advance"
    COMPLETE = "complete"
    AWAIT_ROLLBACK = "await-rollback"
    HOLD = "hold"
    IGNORE = "ignore"


def after_verdict(deployment: Deployment | None, step_index: int, verdict: Verdict) -> tuple[Next, str]:
    """What the deployer does with a step's verdict; the rollback itself is the rollback-controller's call."""
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
    if onward(deployment) is Next.COMPLETE:
        return Next.COMPLETE, f"last step passed ({verdict.value})"
    return Next.ADVANCE, f"step {step_index + 1} of {len(deployment.steps)} passed ({verdict.value})"


def onward(deployment: Deployment) -> Next:
    """Where a release goes once its current step is accepted, by a verdict or by a person."""
    return Next.COMPLETE if deployment.is_last_step else Next.ADVANCE


ENDED = {Status.SUCCEEDED: "succeeded", Status.ROLLED_BACK: "was rolled back", Status.FAILED: "failed"}


def resume_refusal(deployment: Deployment | None, hold: Hold | None, release_id: str) -> str | None:
    """Why a person may not resume this release; None when it is held at its current step."""
    if deployment is None:
        return f"no release {release_id} is known to the deployer"
    if deployment.status is not Status.DEPLOYING:
        return f"release {release_id} {ENDED[deployment.status]}: there is nothing to resume"
    if hold is None or hold.step_index != deployment.step_index:
        return (
            f"release {release_id} is not held: step {deployment.step_index + 1} of {len(deployment.steps)} "
            "is still being judged"
        )
    return None


def advanced(deployment: Deployment) -> Deployment:
    return replace(deployment, step_index=deployment.step_index + 1)


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


def unreported_refusals(reported: tuple[int, int] | None, router_pid: int, count: int) -> int:
    """How many of a router's refused admin calls are news, given the (pid, count) last reported.

    A router counts from zero when it starts, so a router with another pid has reported none of its own.
    """
    if reported is None or reported[0] != router_pid:
        return count
    return max(0, count - reported[1])
