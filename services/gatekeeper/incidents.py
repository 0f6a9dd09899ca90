"""Incidents as the gatekeeper sees them, and which of them halt releases. Pure: no I/O."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from contracts.governance import IncidentSeverity


@dataclass(frozen=True)
class Incident:
    incident_id: str
    environment: str
    severity: IncidentSeverity
    summary: str
    origin: str  # "slipway" (a person) or "pagerduty" (the webhook)
    opened_by: str
    opened_at: datetime
    dedup_key: str | None = None
    component: str | None = None
    reported_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def as_data(self) -> dict[str, str | bool | None]:
        return {
            "incident_id": self.incident_id, "environment": self.environment, "severity": self.severity.value,
            "summary": self.summary, "origin": self.origin, "opened_by": self.opened_by,
            "opened_at": self.opened_at.isoformat(), "dedup_key": self.dedup_key, "component": self.component,
            "reported_by": self.reported_by, "open": self.open,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None, "resolved_by": self.resolved_by,
        }


def halting(incidents: Iterable[Incident], environment: str, at_least: IncidentSeverity) -> list[Incident]:
    """The open incidents in `environment` of severity `at_least` or worse, oldest first."""
    found = [i for i in incidents if i.open and i.environment == environment and i.severity.at_least(at_least)]
    return sorted(found, key=lambda i: i.opened_at)


def resolve_refusal(incident: Incident | None, incident_id: str) -> str | None:
    if incident is None:
        return f"no incident {incident_id}"
    if incident.resolved_at is not None:
        return f"incident {incident_id} was already resolved by {incident.resolved_by} at " \
               f"{incident.resolved_at.isoformat()}"
    return None
