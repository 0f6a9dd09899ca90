"""When does a verdict or a person's abort become a rollback, and how long did restoring take?"""

from dataclasses import dataclass
from datetime import datetime

from contracts.events import Verdict


@dataclass(frozen=True)
class InFlight:
    """A release the deployer started, as the rollback-controller learnt it from events; outcome once it ended."""

    release_id: str
    service: str
    environment: str
    version: str
    stable_version: str | None
    outcome: str | None = None
    warm_until: datetime | None = None  # succeeded, with the old pool kept warm until then (blue-green)


def rollback_reason(verdict: Verdict, reasons: list[str], step_index: int, weight_version: str) -> str | None:
    """A failing verdict rolls back at once; marginal and passing verdicts let the release go on."""
    if verdict is not Verdict.FAIL:
        return None
    return f"{weight_version} failed step {step_index + 1}: {'; '.join(reasons)}"


def abort_refusal(release: InFlight | None, earlier_rollback: str | None, release_id: str,
                  now: datetime | None = None) -> str | None:
    """Why a person may not abort this release; None while it is in flight and nobody asked to roll it back, or
    after it succeeded while the old pool is kept warm (the deployer switches back to it)."""
    if earlier_rollback is not None:
        # One rollback per release, whoever asked first.
        return f"release {release_id} is already being rolled back: {earlier_rollback}"
    if release is None:
        return f"no release {release_id} in flight is known to the rollback-controller"
    if release.outcome is not None:
        if release.warm_until is not None and now is not None and now < release.warm_until:
            return None
        warm_over = f" and its old pool was kept warm only until {release.warm_until.isoformat()}" \
            if release.warm_until is not None else ""
        return f"release {release_id} is over: it {release.outcome}{warm_over}"
    return None


def abort_reason(actor: str, reason: str) -> str:
    return f"aborted by {actor}: {reason}"


def time_to_restore(failed_at: datetime, completed_at: datetime) -> float:
    return max(0.0, (completed_at - failed_at).total_seconds())
