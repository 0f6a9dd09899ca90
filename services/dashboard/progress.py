"""What the page shows of each release, folded from the events on the bus as they pass. Pure: no I/O.

The dashboard reads new events only, so it knows a release from the first event it saw of it; the
collector's status query (/api/releases) holds the whole history.
"""

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# The event that ends a release's deployment, and how the counters name that outcome.
OUTCOMES = {"DeploymentSucceeded": "succeeded", "DeploymentFailed": "failed", "RollbackCompleted": "rolled_back"}
KEPT = 500  # releases remembered; the oldest is forgotten first, so memory stays bounded
VERDICTS_KEPT = 50  # per release: more steps than any strategy has


@dataclass
class Progress:
    release_id: str
    service: str | None = None
    environment: str | None = None
    team: str | None = None
    version: str | None = None
    state: str = "seen"
    weight: int | None = None  # of the new version, in percent, at the current step
    step: int | None = None
    steps: int | None = None
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    requested_at: str | None = None
    updated_at: str | None = None
    last_event: str | None = None

    def as_data(self) -> dict[str, Any]:
        return asdict(self)


class Releases:
    """The releases seen on the bus, newest last; `apply` folds one event in and returns the changed release."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._by_id: OrderedDict[str, Progress] = OrderedDict()

    def apply(self, event: dict[str, Any]) -> Progress | None:
        release_id = event.get("release_id")
        if not isinstance(release_id, str) or not release_id:
            return None  # freezes, incidents and the other events not about one release
        progress = self._by_id.pop(release_id, None) or Progress(release_id)
        self._by_id[release_id] = progress
        while len(self._by_id) > self.kept:
            self._by_id.popitem(last=False)
        fold(progress, event)
        return progress

    def get(self, release_id: str) -> Progress | None:
        return self._by_id.get(release_id)

    def newest_first(self) -> list[Progress]:
        return list(reversed(self._by_id.values()))


def fold(progress: Progress, event: dict[str, Any]) -> None:
    kind = str(event.get("type") or "unknown")
    for name in ("service", "environment", "team", "version"):
        if isinstance(event.get(name), str):
            setattr(progress, name, event[name])
    progress.last_event, progress.updated_at = kind, event.get("occurred_at")
    match kind:
        case "ReleaseRequested":
            progress.requested_at, progress.state = event.get("occurred_at"), "requested"
        case "DeploymentStarted":
            progress.state, progress.weight = "deploying", 0
            progress.steps = len(event.get("steps") or []) or None
        case "StepStarted":
            progress.state = "deploying"
            progress.weight, progress.step, progress.steps = event.get("weight"), event.get("step_index"), event.get("step_count")
        case "StepVerdict":
            progress.verdicts = [*progress.verdicts, {
                "step": event.get("step_index"), "verdict": event.get("verdict"), "at": event.get("occurred_at"),
                "error_rate": event.get("error_rate"), "weight": progress.weight,
            }][-VERDICTS_KEPT:]
        case "DeploymentSucceeded":
            progress.state, progress.weight = "succeeded", 100
        case "RollbackRequested":
            progress.state = "rolling back"
        case "RollbackCompleted":
            progress.state, progress.weight = "rolled back", 0
        case "DeploymentFailed":
            progress.state = "failed"
        case _:
            progress.state = STATES.get(kind, progress.state)


# What the other events a release passes through say of it.
STATES = {
    "ArtifactVerified": "verified", "ArtifactRejected": "rejected", "ReleaseRequestRejected": "rejected",
    "ReleaseApproved": "approved", "ReleaseBlocked": "blocked", "ReleaseWaiting": "waiting",
    "ReleaseRejected": "rejected", "ReleaseExpired": "expired", "RolloutPaused": "paused",
    "RolloutResumed": "deploying", "ReleaseResumed": "deploying", "ReleasePaused": "paused",
    "ReleasePromoted": "deploying",
}


def duration_s(requested_at: str | None, ended_at: str | None) -> float | None:
    """Seconds from the request to the end of its deployment; None when either time is unknown or unreadable."""
    try:
        start, end = datetime.fromisoformat(str(requested_at)), datetime.fromisoformat(str(ended_at))
    except ValueError:
        return None
    if start.tzinfo is None or end.tzinfo is None:
        return None
    return max(0.0, (end - start).total_seconds())
