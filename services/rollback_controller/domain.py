"""When does a verdict become a rollback, and how long did restoring take?"""

from datetime import datetime

from contracts.events import Verdict


def rollback_reason(verdict: Verdict, reasons: list[str], step_index: int, weight_version: str) -> str | None:
    """A failing verdict rolls back at once; marginal and passing verdicts let the release go on."""
    if verdict is not Verdict.FAIL:
        return None
    return f"{weight_version} failed step {step_index + 1}: {'; '.join(reasons)}"


def time_to_restore(failed_at: datetime, completed_at: datetime) -> float:
    return max(0.0, (completed_at - failed_at).total_seconds())
