"""Change records and incidents: the values and commands people use to govern releases.

Change records come from slipway's own registry (people create and approve them) or from an ITSM
tool (a ServiceNow `change_request`); incidents are opened by people or by a monitoring tool's
PagerDuty Events API v2 webhook. Neither is about one release: their events are StandaloneEvents
(contracts.events), which carry no release envelope.
"""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from contracts.envelope import Model, Name, ReleaseId, ZonedDatetime
from contracts.release import DIGEST_PATTERN

# What version 1 of those events put in the release envelope they had to fake (see StandaloneEvent.from_v1).
ANY_ENVIRONMENT = "all-environments"
# ServiceNow numbers change requests CHG followed by digits (CHG0030001); slipway's own registry does the same.
CHANGE_NUMBER_PATTERN = r"^CHG[0-9]{1,32}$"
INCIDENT_ID_PATTERN = r"^inc-[0-9a-z]{26}$"


class ChangeRisk(StrEnum):
    """ServiceNow's risk choices, lower-cased."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    VERY_HIGH = "very-high"


class IncidentSeverity(StrEnum):
    """PagerDuty Events API v2 severities, from the least to the most severe."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(IncidentSeverity).index(self)

    def at_least(self, floor: "IncidentSeverity") -> bool:
        return self.rank >= floor.rank


class CreateChangeRecord(Model):
    """Ask for a change: what, and the implementation window in which deployments under it may run."""

    summary: str = Field(min_length=1, max_length=500)
    starts_at: ZonedDatetime
    ends_at: ZonedDatetime
    risk: ChangeRisk = ChangeRisk.MODERATE

    @model_validator(mode="after")
    def ends_after_start(self) -> "CreateChangeRecord":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ApproveChangeRecord(Model):
    number: str = Field(pattern=CHANGE_NUMBER_PATTERN)
    comment: str = Field(min_length=1, max_length=500)


class ShowChangeRecord(Model):
    number: str = Field(pattern=CHANGE_NUMBER_PATTERN)


class OpenIncident(Model):
    environment: Name
    severity: IncidentSeverity
    summary: str = Field(min_length=1, max_length=1024)
    component: Name | None = Field(default=None, description="The service affected, when one is known")


class ResolveIncident(Model):
    incident_id: str = Field(pattern=INCIDENT_ID_PATTERN)
    comment: str = Field(default="", max_length=500)


class ListIncidents(Model):
    environment: Name | None = None
    include_resolved: bool = False


PIR_TEXT_MAX = 4000
RiskFactorText = Annotated[str, Field(min_length=1, max_length=200)]


class RecordPir(Model):
    """A post-implementation review of a release that owes one (it failed or was rolled back in production, or
    was an emergency): what happened, what will be done, and what made it risky (fed to the risk score)."""

    release_id: ReleaseId
    summary: str = Field(min_length=1, max_length=PIR_TEXT_MAX)
    actions: str = Field(min_length=1, max_length=PIR_TEXT_MAX, description="Follow-up actions agreed")
    risk_factors: list[RiskFactorText] = Field(
        default=[], max_length=20, description="What made this release risky; each adds to the service's next risk score")


class ListPirs(Model):
    """Post-implementation reviews owed and recorded, newest first."""

    service: Name | None = None


class ListInventory(Model):
    """What version of each service is live where, as the gatekeeper learned it from the deployer's events."""

    environment: Name | None = Field(default=None, description="Only this environment; none: every one")


class ListEvidence(Model):
    """The evidence CI systems recorded for one artifact digest, newest first."""

    digest: str = Field(pattern=DIGEST_PATTERN, description="sha256:<64 lowercase hex>")


class ChecklistReport(Model):
    """How often releases that left each readiness checklist item undone failed or were blocked, and what to change."""

    days: int = Field(default=90, ge=1, le=3650, description="Releases requested in the last N days")
    min_releases: int = Field(default=5, ge=1, le=10_000,
                              description="Fewer ended releases with or without an item suggest nothing about it")


class ShowRelease(Model):
    """One release as the gatekeeper knows it: spec, state, what it waits for, rules, approvals, known issues."""

    release_id: ReleaseId
