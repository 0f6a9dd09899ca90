"""Change records: one interface over every source, and the rule of whether one allows a deployment now.

Pure: no I/O here. The sources are slipway's own registry (services.gatekeeper.change_store) and
a ServiceNow-compatible Table API (services.gatekeeper.servicenow); the gatekeeper's app picks one
from settings (`change_records`), and its workflow only ever sees `ChangeRecords`.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class ChangeState(StrEnum):
    """Where a change stands, in ServiceNow's lifecycle (slipway's own records use a subset)."""

    NEW = "new"
    ASSESS = "assess"
    AUTHORIZE = "authorize"  # waiting for its approval
    SCHEDULED = "scheduled"  # approved, waiting for its window
    IMPLEMENT = "implement"
    REVIEW = "review"
    CLOSED = "closed"
    CANCELED = "canceled"


# A change whose work is done or abandoned covers no further deployment, whatever its window says.
FINISHED = frozenset({ChangeState.REVIEW, ChangeState.CLOSED, ChangeState.CANCELED})


@dataclass(frozen=True)
class ChangeRecord:
    number: str
    source: str  # "slipway" or "servicenow"
    state: ChangeState
    approval: str  # "approved", "requested", "rejected", "not requested", as the source says it
    starts_at: datetime | None  # the planned implementation window; None when the source has none
    ends_at: datetime | None
    type: str  # standard, normal, emergency
    risk: str
    summary: str = ""
    requested_by: str | None = None
    approved_by: str | None = None

    @property
    def approved(self) -> bool:
        return self.approval == "approved"

    def as_data(self) -> dict[str, str | bool | None]:
        """A plain dict for a command's reply."""
        return {
            "number": self.number, "source": self.source, "state": self.state.value, "approval": self.approval,
            "approved": self.approved, "starts_at": _iso(self.starts_at), "ends_at": _iso(self.ends_at),
            "type": self.type, "risk": self.risk, "summary": self.summary, "requested_by": self.requested_by,
            "approved_by": self.approved_by,
        }


class ChangeSourceUnavailable(Exception):
    """The source could not say (unreachable, refused our credentials, answered nonsense): not the same as unknown."""


class ChangeRecords(Protocol):
    """Where change records come from. `get` is None for a number the source does not know."""

    async def get(self, number: str) -> ChangeRecord | None: ...


@dataclass(frozen=True)
class ChangeCheck:
    allowed: bool
    reason: str
    # When the window has not opened yet: the moment it does, so a workflow can wait instead of refuse.
    opens_at: datetime | None = None


def deployment_allowed(change: ChangeRecord | None, number: str, now: datetime) -> ChangeCheck:
    """Whether change `number` lets a deployment start at `now`, with the reason either way."""
    if change is None:
        return ChangeCheck(False, f"change {number} is not known to the change records")
    if not change.approved:
        return ChangeCheck(False, f"change {number} is not approved (approval: {change.approval}, "
                                  f"state: {change.state.value})")
    if change.state in FINISHED:
        return ChangeCheck(False, f"change {number} is {change.state.value}: no deployment may start under it")
    if change.starts_at is None or change.ends_at is None:
        return ChangeCheck(False, f"change {number} has no planned implementation window")
    if now < change.starts_at:
        return ChangeCheck(False, f"the implementation window of change {number} opens at "
                                  f"{change.starts_at.isoformat()}", opens_at=change.starts_at)
    if now >= change.ends_at:
        return ChangeCheck(False, f"the implementation window of change {number} closed at "
                                  f"{change.ends_at.isoformat()}")
    return ChangeCheck(True, f"change {number} is approved and its implementation window "
                             f"({change.starts_at.isoformat()} to {change.ends_at.isoformat()}) covers now")


def approval_refusal(change: ChangeRecord | None, number: str, approver: str) -> str | None:
    """Why `approver` may not approve change `number` in slipway's registry; None when they may."""
    if change is None:
        return f"no change record {number} in slipway's registry"
    if change.approved:
        return f"change {number} was already approved by {change.approved_by}"
    if change.requested_by == approver:
        return f"four-eyes: {approver} created change {number} and may not approve it"
    return None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
