"""The events on the release path, in the order a release meets them."""

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from contracts import subjects
from contracts.envelope import Event, Model
from contracts.release import ReleaseSpec


class ReleaseRequested(Event, ReleaseSpec):
    """Published by a CI system: please ship this artifact."""

    subject: ClassVar[str] = subjects.RELEASE_REQUESTED


class FieldError(Model):
    field: str
    message: str


class ReleaseRequestRejected(Event):
    """A ReleaseRequested that could not be read, or reuses a release_id with another specification; nothing started."""

    subject: ClassVar[str] = subjects.RELEASE_REQUEST_REJECTED
    reason: str
    errors: list[FieldError] = []


class ReleaseRequestDuplicated(Event):
    """A repeat of a release already requested with the same specification (a CI retry): nothing else happens."""

    subject: ClassVar[str] = subjects.RELEASE_REQUEST_DUPLICATED
    original_event_id: str = Field(description="event_id of the first request of this release")
    original_outcome: str = Field(description="What the first request led to: ArtifactVerified or ArtifactRejected")


class ArtifactVerified(Event):
    subject: ClassVar[str] = subjects.ARTIFACT_VERIFIED
    release: ReleaseSpec
    size_bytes: int


class ArtifactRejected(Event):
    subject: ClassVar[str] = subjects.ARTIFACT_REJECTED
    reason: str


class ReleaseApproved(Event):
    subject: ClassVar[str] = subjects.RELEASE_APPROVED
    release: ReleaseSpec
    reasons: list[str]


class ReleaseBlocked(Event):
    subject: ClassVar[str] = subjects.RELEASE_BLOCKED
    reasons: list[str]


class FreezeDeclared(Event):
    subject: ClassVar[str] = subjects.FREEZE_DECLARED
    freeze_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str


class FreezeLifted(Event):
    subject: ClassVar[str] = subjects.FREEZE_LIFTED
    freeze_id: str


class DeploymentStarted(Event):
    subject: ClassVar[str] = subjects.DEPLOYMENT_STARTED
    version: str
    stable_version: str | None
    strategy: str
    steps: list[int]
    router_url: str
    commit_sha: str
    committed_at: datetime


class StepStarted(Event):
    """The new version now receives `weight` percent of traffic; judge it over the interval."""

    subject: ClassVar[str] = subjects.STEP_STARTED
    deployment_id: str
    step_index: int
    step_count: int
    weight: int
    version: str
    stable_version: str | None
    team: str
    analysis_interval_s: float
    max_error_rate: float
    max_p99_latency_ms: float
    min_requests: int
    router_url: str
    metrics_url: str


class DeploymentSucceeded(Event):
    subject: ClassVar[str] = subjects.DEPLOYMENT_SUCCEEDED
    version: str
    previous_version: str | None


class DeploymentFailed(Event):
    subject: ClassVar[str] = subjects.DEPLOYMENT_FAILED
    version: str
    reason: str


class Verdict(StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"


class StepVerdict(Event):
    subject: ClassVar[str] = subjects.STEP_VERDICT
    deployment_id: str
    step_index: int
    version: str
    stable_version: str | None
    team: str
    verdict: Verdict
    reasons: list[str]
    requests: int
    errors: int
    error_rate: float
    p99_latency_ms: float


class RollbackRequested(Event):
    subject: ClassVar[str] = subjects.ROLLBACK_REQUESTED
    deployment_id: str
    bad_version: str
    restore_version: str | None
    reason: str
    failed_at: AwareDatetime = Field(description="When the failing verdict was reached")


class RollbackCompleted(Event):
    subject: ClassVar[str] = subjects.ROLLBACK_COMPLETED
    deployment_id: str
    bad_version: str
    restored_version: str | None
    root_cause: str
    failed_at: AwareDatetime


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertRaised(Event):
    """Published on slipway.alert.<severity>.<team>.<service> for on-call engineers."""

    subject: ClassVar[str] = "slipway.alert.{severity}.{team}.{service}"
    severity: Severity
    team: str
    summary: str
    details: dict[str, float | int | str] = {}


class DeadLettered(Model):
    """A message a consumer gave up on after its delivery limit, with the last error."""

    kind: Literal["dead-lettered"] = "dead-lettered"
    consumer: str
    subject: str
    deliveries: int
    error: str
    payload: str
    occurred_at: AwareDatetime
