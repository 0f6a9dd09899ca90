"""The events on the release path, in the order a release meets them."""

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from contracts import subjects
from contracts.commands import SignedCommand
from contracts.envelope import (
    EVENT_ID_DESCRIPTION,
    ITEMS_MAX,
    RELEASE_ID_MAX,
    Event,
    EventId,
    Name,
    ReleaseEvent,
    ReleaseId,
    Model,
    Text,
    ZonedDatetime,
)
from contracts.governance import (
    ANY_ENVIRONMENT,
    CHANGE_NUMBER_PATTERN, INCIDENT_ID_PATTERN, PIR_TEXT_MAX, ChangeRisk, IncidentSeverity, RiskFactorText,
)
from contracts.release import DIGEST_PATTERN, MAX_STEPS, SHA_PATTERN, ReleaseSpec, Team, Version

URL_MAX = 2048
SIGNED_COMMAND_DESCRIPTION = "The person's signed command that caused this event; `actor` is its verified signer"

FREEZE_ID_MAX = 64
DEAD_LETTER_PAYLOAD_MAX = 100_000  # libs.bus cuts a dead letter's payload to this
Reasons = Annotated[list[Text], Field(max_length=ITEMS_MAX)]
DeploymentId = Annotated[str, Field(min_length=1, max_length=RELEASE_ID_MAX)]
Url = Annotated[str, Field(max_length=URL_MAX)]
StepIndex = Annotated[int, Field(ge=0, lt=MAX_STEPS)]
Count = Annotated[int, Field(ge=0, le=10**12)]
Integer = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]  # what a database integer holds
Rate = Annotated[float, Field(ge=0, le=1)]
LatencyLimitMs = Annotated[float, Field(gt=0, le=3_600_000)]  # as RollbackTriggers.max_p99_latency_ms
# Measured, not asked for: generous, so a slow version is judged rather than its verdict refused.
ObservedMs = Annotated[float, Field(ge=0, le=86_400_000)]


class ReleaseRequested(ReleaseEvent, ReleaseSpec):
    """Published by a CI system: please ship this artifact."""

    subject: ClassVar[str] = subjects.RELEASE_REQUESTED

    # Required on the wire: every reader would otherwise make up its own id for the same request,
    # and a redelivery would look like a new request.
    event_id: EventId = Field(description=EVENT_ID_DESCRIPTION)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        # Whoever asked is responsible for every event of the release, unless the sender says otherwise.
        if "actor" not in self.model_fields_set:
            object.__setattr__(self, "actor", self.requested_by)


class FieldError(Model):
    field: str = Field(max_length=500)
    message: Text


class ReleaseRequestRejected(ReleaseEvent):
    """A ReleaseRequested that could not be read, or reuses a release_id with another specification; nothing started."""

    subject: ClassVar[str] = subjects.RELEASE_REQUEST_REJECTED
    reason: Text
    errors: list[FieldError] = Field(default=[], max_length=ITEMS_MAX)


class ReleaseRequestDuplicated(ReleaseEvent):
    """A repeat of a release already requested with the same specification (a CI retry): nothing else happens."""

    subject: ClassVar[str] = subjects.RELEASE_REQUEST_DUPLICATED
    original_event_id: EventId = Field(description="event_id of the first request of this release")
    original_outcome: Literal["ArtifactVerified", "ArtifactRejected"] = Field(
        description="What the first request led to"
    )


class ArtifactVerified(ReleaseEvent):
    subject: ClassVar[str] = subjects.ARTIFACT_VERIFIED
    release: ReleaseSpec
    size_bytes: int = Field(ge=0, le=2**63 - 1)


class ArtifactRejected(ReleaseEvent):
    subject: ClassVar[str] = subjects.ARTIFACT_REJECTED
    reason: Text


class AppliedRule(Model):
    """One rule the gatekeeper applied to a release, what it did and why (machine-readable, for status and audit)."""

    rule: str = Field(max_length=100)
    effect: Literal["pass", "wait", "needs-approval", "refuse", "note"]
    reason: Text
    until: ZonedDatetime | None = Field(default=None, description="When a wait is expected to end by itself")


Rules = Annotated[list[AppliedRule], Field(max_length=ITEMS_MAX)]


class RiskFactor(Model):
    factor: str = Field(max_length=100)
    detail: Text
    points: int = Field(ge=-1000, le=1000)


class Risk(Model):
    """The release's risk score and level, with every factor's contribution."""

    score: int = Field(ge=-100_000, le=100_000)
    level: str = Field(max_length=50)
    factors: list[RiskFactor] = Field(default=[], max_length=ITEMS_MAX)
    raised_by: Text | None = None


class ReleaseApproved(ReleaseEvent):
    subject: ClassVar[str] = subjects.RELEASE_APPROVED
    release: ReleaseSpec
    reasons: Reasons
    rules: Rules = Field(default=[], description="Every rule that applied, with its effect and reason")
    risk: Risk | None = None
    approvers: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=ITEMS_MAX)
    strategy_source: Literal["named", "recommended"] = Field(
        default="named", description="recommended: the request named no strategy, the gatekeeper chose `release."
        "strategy` from the service catalogue's delivery profile, for `strategy_reasons`")
    strategy_reasons: Reasons = Field(default=[], description="Why that strategy, and what was assumed")


class ReleaseBlocked(ReleaseEvent):
    subject: ClassVar[str] = subjects.RELEASE_BLOCKED
    reasons: Reasons
    rules: Rules = []
    risk: Risk | None = None


class ReleaseWaiting(ReleaseEvent):
    """The release may not go yet: it waits for people, a window, an incident, a slot... (published when that changes)."""

    subject: ClassVar[str] = subjects.RELEASE_WAITING
    waiting_for: Literal[
        "pending-approval", "waiting-for-pir", "waiting-for-promotion", "waiting-for-incident", "queued-for-window",
        "waiting-for-slot", "waiting-for-change", "waiting-for-requirements",
    ]
    summary: Text = Field(description="What it waits for, in words")
    outstanding: list[Text] = Field(default=[], max_length=ITEMS_MAX, description="Approvals still missing")
    until: ZonedDatetime | None = Field(default=None, description="When the wait is expected to end by itself")
    deadline: ZonedDatetime = Field(description="When the release expires if it is still waiting")
    rules: Rules = []
    risk: Risk | None = None
    release_class: Literal["standard", "emergency", "major"] = "standard"


class ApprovalRecorded(ReleaseEvent):
    """A person approved a waiting release (a sign-off, a risk approval or an exception); actor is who."""

    subject: ClassVar[str] = subjects.APPROVAL_RECORDED
    roles: list[Annotated[str, Field(max_length=50)]] = Field(default=[], max_length=20)
    comment: Text
    signed_command: SignedCommand | None = None


class ReleaseRejected(ReleaseEvent):
    """A person rejected a waiting release; it ends here, with their comment. actor is who."""

    subject: ClassVar[str] = subjects.RELEASE_REJECTED
    comment: Text
    signed_command: SignedCommand | None = None


class ReleaseExpired(ReleaseEvent):
    """A release waited past its deadline; it ends here."""

    subject: ClassVar[str] = subjects.RELEASE_EXPIRED
    waited_for: str = Field(max_length=50)
    reason: Text


STANDALONE_SCHEMA_VERSION = 2


class StandaloneEvent(Event):
    """An event about something other than a release: a freeze, an incident, a change record, a policy, a refusal.

    Schema version 2. In version 1 these types carried a release envelope they had to make up (release_id
    was the freeze, incident or change id, or `policy`; service was all-services; environment
    all-environments). A version-1 message still reads: `from_v1` maps what meant something and the rest
    is ignored, as every reader ignores unknown fields.
    """

    schema_version: int = Field(default=STANDALONE_SCHEMA_VERSION, ge=1, le=1000)
    # The field that names what the event is about; it becomes the correlation id when none is given,
    # so a freeze's or an incident's events read as one thread, as a release's do.
    thread_field: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _read_v1(cls, data: Any) -> Any:
        version = data.get("schema_version") if isinstance(data, dict) else None
        if isinstance(version, int) and version < STANDALONE_SCHEMA_VERSION:
            return cls.from_v1(dict(data))
        return data

    @classmethod
    def from_v1(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A version-1 body as this version reads it; by default the made-up release envelope is dropped."""
        for made_up in ("release_id", "service"):
            data.pop(made_up, None)
        if data.get("environment") == ANY_ENVIRONMENT:
            data.pop("environment")
        return data

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        if not self.correlation_id and self.thread_field and getattr(self, self.thread_field, None):
            object.__setattr__(self, "correlation_id", str(getattr(self, self.thread_field))[:RELEASE_ID_MAX])


class FreezeDeclared(StandaloneEvent):
    """A deployment freeze in `environment` from starts_at to ends_at; releases there wait until it ends."""

    subject: ClassVar[str] = subjects.FREEZE_DECLARED
    thread_field: ClassVar[str | None] = "freeze_id"
    environment: Name = Field(description="The environment frozen")
    freeze_id: str = Field(min_length=1, max_length=FREEZE_ID_MAX)
    starts_at: ZonedDatetime
    ends_at: ZonedDatetime
    reason: Text
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class FreezeLifted(StandaloneEvent):
    subject: ClassVar[str] = subjects.FREEZE_LIFTED
    thread_field: ClassVar[str | None] = "freeze_id"
    environment: Name = Field(description="The environment that was frozen")
    freeze_id: str = Field(min_length=1, max_length=FREEZE_ID_MAX)
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class DeploymentStarted(ReleaseEvent):
    subject: ClassVar[str] = subjects.DEPLOYMENT_STARTED
    version: Version
    stable_version: Version | None
    strategy: str = Field(max_length=32)
    steps: list[Annotated[int, Field(ge=0, le=100)]] = Field(max_length=MAX_STEPS)
    router_url: Url
    commit_sha: str = Field(pattern=SHA_PATTERN)
    committed_at: ZonedDatetime
    team: Team | None = Field(default=None, description="The owning team: whose people may resume or abort it")
    scope: str = Field(default="full", max_length=32, description="full, regional or pilot (the release's scope)")
    regions: list[Name] = Field(default=[], max_length=50,
                                description="A regional release's waves, in rollout order; empty for one wave")
    instances: dict[str, Annotated[int, Field(ge=0, le=1000)]] = Field(
        default={}, max_length=50,
        description="Instances of the new version per region (the key is the environment for one wave)")
    instances_from: Literal["release", "declaration", "default"] | None = Field(
        default=None, description="Where those counts come from: the release's `instances` (an override), the "
        "environment's declaration, or the default of 1 for an undeclared environment")


class StepStarted(ReleaseEvent):
    """The new version now receives `weight` percent of traffic; judge it over the interval."""

    subject: ClassVar[str] = subjects.STEP_STARTED
    deployment_id: DeploymentId
    step_index: StepIndex
    step_count: int = Field(ge=1, le=MAX_STEPS)
    weight: int = Field(ge=0, le=100)
    version: Version
    stable_version: Version | None
    team: Team
    analysis_interval_s: float = Field(gt=0, le=3600)
    max_error_rate: Rate
    max_p99_latency_ms: LatencyLimitMs
    min_requests: int = Field(ge=1, le=10_000)
    router_url: Url
    metrics_url: Url
    region: Name | None = Field(default=None, description="The region judged (a wave of a regional release); its "
                                "router's URLs are the ones given")
    pilot: bool = Field(default=False, description="The pilot group's phase: only requests carrying the pilot header "
                        "or cookie (and probes) reach the new version, the public's weight is 0")


class DeploymentSucceeded(ReleaseEvent):
    subject: ClassVar[str] = subjects.DEPLOYMENT_SUCCEEDED
    version: Version
    previous_version: Version | None
    warm_until: ZonedDatetime | None = Field(
        default=None, description="The previous version's pool is kept warm until then (blue-green): a rollback "
        "requested before is a switch back to it")


class DeploymentFailed(ReleaseEvent):
    subject: ClassVar[str] = subjects.DEPLOYMENT_FAILED
    version: Version
    reason: Text


class InstanceRestarted(ReleaseEvent):
    """An instance of a release's version had died; the deployer started it again on the same port."""

    subject: ClassVar[str] = subjects.INSTANCE_RESTARTED
    version: Version
    reason: Text


class RouterAdminRefused(ReleaseEvent):
    """Calls to change a service's router without the deployer's token were refused; its routes did not change.

    Reported on the release that deployed the live version (or the service's latest deployment).
    """

    subject: ClassVar[str] = subjects.ROUTER_ADMIN_REFUSED
    admin_url: Url
    refused: Count = Field(description="Refusals since the last report")
    total_refused: Count = Field(description="Refusals since the router started")
    last_reason: Text
    last_remote_address: str = Field(max_length=100)
    last_refused_at: ZonedDatetime


class Verdict(StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # too little evidence to judge; the release holds until a person decides


class StepVerdict(ReleaseEvent):
    subject: ClassVar[str] = subjects.STEP_VERDICT
    deployment_id: DeploymentId
    step_index: StepIndex
    version: Version
    stable_version: Version | None
    team: Team
    verdict: Verdict
    reasons: Reasons
    requests: Count
    errors: Count
    error_rate: Rate
    p99_latency_ms: ObservedMs


class ReleaseResumed(ReleaseEvent):
    """A person resumed a release: lifted their pause (ReleasePaused) and/or accepted the step it was held at (after an
    inconclusive verdict, or a passing one while paused); a step no pause holds any more goes on."""

    subject: ClassVar[str] = subjects.RELEASE_RESUMED
    step_index: StepIndex
    comment: Text
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class ReleasePaused(ReleaseEvent):
    """A person paused a release in flight: its current step is still judged, a failing verdict still rolls it
    back, a passing one holds its weights until someone resumes (ReleaseResumed) or promotes it."""

    subject: ClassVar[str] = subjects.RELEASE_PAUSED
    step_index: StepIndex = Field(description="The step it holds at")
    reason: Text
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class ReleasePromoted(ReleaseEvent):
    """A person skipped the rest of a release's analysis and steps: it goes to all traffic and succeeds."""

    subject: ClassVar[str] = subjects.RELEASE_PROMOTED
    step_index: StepIndex = Field(description="The step it was at when promoted")
    skipped_steps: int = Field(ge=0, le=MAX_STEPS, description="Steps that will not be judged")
    comment: Text
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class SmokeTestCompleted(ReleaseEvent):
    """Requests pinned to a new pool through the router, before it has any share of traffic, and how they went."""

    subject: ClassVar[str] = subjects.SMOKE_TEST_COMPLETED
    version: Version
    outcome: Literal["passed", "failed"]
    started_at: ZonedDatetime
    duration_ms: float = Field(ge=0, le=86_400_000)
    problem: Text = Field(default="", description="What went wrong, when it failed")


class RollbackRequested(ReleaseEvent):
    subject: ClassVar[str] = subjects.ROLLBACK_REQUESTED
    deployment_id: DeploymentId
    bad_version: Version
    restore_version: Version | None
    reason: Text
    failed_at: ZonedDatetime = Field(description="When the failing verdict was reached")
    signed_command: SignedCommand | None = Field(
        default=None, description="A person's signed abort, when one caused this rollback; `actor` is its verified signer"
    )


class RollbackCompleted(ReleaseEvent):
    subject: ClassVar[str] = subjects.ROLLBACK_COMPLETED
    deployment_id: DeploymentId
    bad_version: Version
    restored_version: Version | None
    root_cause: Text
    failed_at: ZonedDatetime
    regions: list[Name] = Field(default=[], max_length=50, description="A regional release: the regions whose "
                                "traffic was put back on the restored version (the failing wave and every one before)")


class CommandRefused(StandaloneEvent):
    """A person's command the owning service refused, and why; nothing else happened.

    `actor` is the signer when the signature verified, else `unverified`.
    """

    subject: ClassVar[str] = subjects.COMMAND_REFUSED
    thread_field: ClassVar[str | None] = "about"
    about: str | None = Field(default=None, max_length=RELEASE_ID_MAX,
                              description="What the command named: a release, freeze, incident or change record")
    environment: Name | None = Field(default=None, description="The environment the command named, if any")
    command: str = Field(max_length=200, description="The command subject it was sent to")
    command_id: str | None = Field(default=None, max_length=64)
    claimed_signer: str | None = Field(default=None, max_length=200, description="Who the command says signed it")
    reason: Text
    signed_command: SignedCommand | None = Field(default=None, description="What was sent, when it was readable")

    @classmethod
    def from_v1(cls, data: dict[str, Any]) -> dict[str, Any]:
        named = data.get("release_id")
        # Version 1 made `cmd-<command id>` up when the command named nothing.
        if isinstance(named, str) and not named.startswith("cmd-"):
            data.setdefault("about", named)
        return super().from_v1(data)


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


UNADDRESSED = "unknown"  # the subject token of an alert's team or service when it could not be told


class AlertRaised(ReleaseEvent):
    """Published on slipway.alert.<severity>.<team>.<service> for on-call engineers.

    Nearly always about a release. One about a message too broken to name its release (a refused,
    unreadable approval) leaves release_id, service, environment and team out, and travels with
    `unknown` as the team and service tokens of its subject.
    """

    subject: ClassVar[str] = "slipway.alert.{severity}.{team}.{service}"
    release_id: ReleaseId | None = None  # type: ignore[assignment] - see the docstring
    service: Name | None = None  # type: ignore[assignment]
    environment: Name | None = None  # type: ignore[assignment]
    severity: Severity
    team: Team | None = None
    summary: Text
    details: dict[Annotated[str, Field(max_length=100)], float | Integer | Text] = Field(default={}, max_length=50)

    def address(self) -> str:
        return subjects.alert_subject(self.severity.value, self.team or UNADDRESSED, self.service or UNADDRESSED)


class DeadLettered(Model):
    """A message a consumer gave up on after its delivery limit, with the last error."""

    kind: Literal["dead-lettered"] = "dead-lettered"
    consumer: str = Field(max_length=200)
    subject: str = Field(max_length=1024)
    deliveries: int = Field(ge=0, le=1_000_000)
    error: Text
    payload: str = Field(
        max_length=DEAD_LETTER_PAYLOAD_MAX, description="The message body, cut to its first 100,000 characters"
    )
    occurred_at: ZonedDatetime


class EventRefused(StandaloneEvent):
    """A service refused a message: unsigned, altered, or signed by an identity that may not publish it.

    release_id, service and environment are the refused event's, when it could be read as a release's event.
    """

    subject: ClassVar[str] = subjects.EVENT_REFUSED
    release_id: ReleaseId | None = Field(default=None, description="The refused event's release, if it named one")
    service: Name | None = None
    environment: Name | None = None
    consumer: str = Field(max_length=200, description="The durable consumer that refused it")
    refused_subject: str = Field(max_length=1024)
    refused_sequence: Count = Field(description="The refused message's sequence in its stream")
    refused_type: str | None = Field(default=None, max_length=100)
    refused_event_id: str | None = Field(default=None, max_length=200)
    claimed_signer: str | None = Field(default=None, max_length=200, description="Who the message says signed it")
    reason: Text

    @classmethod
    def about(cls, refused: Model | None, *, consumer: str, refused_sequence: int, **fields: Any) -> "EventRefused":
        scope: dict[str, str] = {}
        if isinstance(refused, ReleaseEvent):
            scope = {"release_id": refused.release_id, "service": refused.service, "environment": refused.environment}
        if isinstance(refused, Event):
            fields |= {"refused_type": refused.type, "refused_event_id": refused.event_id,
                       "correlation_id": refused.correlation_id, "causation_id": refused.event_id}
        # One refusal per message: a redelivered refusal has the same id, so JetStream keeps it once.
        return cls(event_id=f"refused-{consumer}-{refused_sequence}"[:64], consumer=consumer,
                   refused_sequence=refused_sequence, **scope, **fields)


class ChangeRecordCreated(StandaloneEvent):
    """A person asked for a change in slipway's own registry; it waits for a change manager's approval."""

    subject: ClassVar[str] = subjects.CHANGE_RECORD_CREATED
    thread_field: ClassVar[str | None] = "number"
    number: str = Field(pattern=CHANGE_NUMBER_PATTERN)
    summary: Text
    starts_at: ZonedDatetime = Field(description="The implementation window opens")
    ends_at: ZonedDatetime = Field(description="The implementation window closes")
    risk: ChangeRisk
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class ChangeRecordApproved(StandaloneEvent):
    """A change manager other than its creator approved a change record; `actor` is the approver."""

    subject: ClassVar[str] = subjects.CHANGE_RECORD_APPROVED
    thread_field: ClassVar[str | None] = "number"
    number: str = Field(pattern=CHANGE_NUMBER_PATTERN)
    comment: Text
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


IncidentOrigin = Literal["slipway", "pagerduty"]


class IncidentOpened(StandaloneEvent):
    """An incident is open in `environment`: opened by a person (signed) or by a PagerDuty Events API v2 trigger.

    The affected service, when known, is `component`.
    """

    subject: ClassVar[str] = subjects.INCIDENT_OPENED
    thread_field: ClassVar[str | None] = "incident_id"
    environment: Name = Field(description="Where the incident is")
    incident_id: str = Field(pattern=INCIDENT_ID_PATTERN)
    severity: IncidentSeverity
    summary: Text
    origin: IncidentOrigin
    dedup_key: str | None = Field(default=None, max_length=255, description="PagerDuty's dedup_key, for a webhook incident")
    component: str | None = Field(default=None, max_length=255, description="payload.component, or the person's --component")
    reported_by: str | None = Field(default=None, max_length=255, description="payload.source of a webhook incident")
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class IncidentResolved(StandaloneEvent):
    subject: ClassVar[str] = subjects.INCIDENT_RESOLVED
    thread_field: ClassVar[str | None] = "incident_id"
    environment: Name = Field(description="Where the incident was")
    incident_id: str = Field(pattern=INCIDENT_ID_PATTERN)
    origin: IncidentOrigin = Field(description="Who resolved it: a person (signed) or a PagerDuty resolve")
    dedup_key: str | None = Field(default=None, max_length=255)
    comment: Text = ""
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


IncidentId = Annotated[str, Field(pattern=INCIDENT_ID_PATTERN)]


class RolloutPauseChange(ReleaseEvent):
    """What RolloutPaused and RolloutResumed both say: which release, because of which incidents, and why.

    No `subject` of its own: the deployer reads both through this one model, in stream order.
    """

    incident_id: IncidentId = Field(description="The incident that paused it (or, on resume, the last one resolved)")
    incidents: list[IncidentId] = Field(default=[], max_length=ITEMS_MAX,
                                        description="Every halting incident open there when it paused")
    reason: Text


class RolloutPaused(RolloutPauseChange):
    """An incident of at least the policy's `halt_at` opened where this release is rolling out, and policy says
    `pause_in_flight`: the deployer lets its current step be judged but does not move it on until it resumes."""

    subject: ClassVar[str] = subjects.ROLLOUT_PAUSED


class RolloutResumed(RolloutPauseChange):
    """No incident halts this release's environment any more: it goes on from where it was paused."""

    subject: ClassVar[str] = subjects.ROLLOUT_RESUMED


class IncidentWebhookRefused(StandaloneEvent):
    """A call to the incident webhook that was not acted on: bad or missing signature, or an unreadable payload.

    Each refusal stands alone; nothing else happened.
    """

    subject: ClassVar[str] = subjects.INCIDENT_WEBHOOK_REFUSED
    reason: Text
    status: int = Field(ge=400, le=599, description="The HTTP status the caller got")
    remote_address: str = Field(max_length=100)
    dedup_key: str | None = Field(default=None, max_length=255, description="When the payload could be read")


class PostImplementationReviewRecorded(ReleaseEvent):
    """A person recorded the post-implementation review a release owed; `actor` is who (signed).

    Its service no longer owes it; the risk factors count in the service's next risk score."""

    subject: ClassVar[str] = subjects.PIR_RECORDED
    summary: str = Field(max_length=PIR_TEXT_MAX)
    actions: str = Field(max_length=PIR_TEXT_MAX)
    risk_factors: list[RiskFactorText] = Field(default=[], max_length=20)
    owed_because: Text = Field(description="Why the release owed it (a failure in production, an emergency)")
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


EvidenceOutcome = Literal["pass", "fail", "cancel", "error"]  # CDEvents testSuiteRun outcomes
ALL_SERVICES = "all-services"


class EvidenceSubmitted(StandaloneEvent):
    """A CI system's test result for an artifact digest (performance, security, ...), for promotion gates.

    Shaped after the CDEvents `testsuiterun.finished` event (contracts.cdevents maps one onto this):
    `outcome` is its subject.content.outcome, `url` its subject.content.url, `test_suite` its
    subject.content.testSuite.name, `cdevent_id` its context.id. Published by the team's CI identity on
    slipway.evt.evidence.submitted.<team>.<service>. Evidence belongs to an artifact, not to one release:
    `service` is empty when it is about the digest whatever service ships it (it then counts for that
    team's releases only, and travels on the subject token all-services).
    """

    subject: ClassVar[str] = subjects.EVIDENCE_SUBMITTED
    thread_field: ClassVar[str | None] = "digest"
    team: Team
    service: Name | None = Field(default=None, description="The service it is for; empty: any of the team's")
    environment: Name | None = Field(default=None, description="Where the tests ran (ci, staging...), if said")
    digest: str = Field(pattern=DIGEST_PATTERN, description="sha256:<64 lowercase hex> of the artifact tested")
    kind: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")] = Field(
        description="What was tested, as promotion.yaml names it: performance, security, ...")
    outcome: EvidenceOutcome
    url: Url = Field(default="", description="Where the results are")
    reason: Text = ""
    test_suite: str | None = Field(default=None, max_length=200)
    cdevent_id: str | None = Field(default=None, max_length=200, description="context.id of the CDEvent it came from")
    finished_at: ZonedDatetime | None = Field(default=None, description="When the test run finished, if said")

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def address(self) -> str:
        return subjects.address(self.subject, {"team": self.team, "service": self.service or ALL_SERVICES})

    @classmethod
    def from_v1(cls, data: dict[str, Any]) -> dict[str, Any]:
        service = data.pop("service", None)
        return super().from_v1(data) | {"service": service}

    @field_validator("service", mode="before")
    @classmethod
    def _any_service(cls, service: Any) -> Any:
        # all-services is the subject token for "any of the team's"; a body may say it too.
        return None if service in (ALL_SERVICES, "") else service


class PolicyReloaded(StandaloneEvent):
    """A person had the gatekeeper read its policy files again; later decisions use them. `actor` is who (signed)."""

    subject: ClassVar[str] = subjects.POLICY_RELOADED
    fingerprint: str = Field(max_length=80, description="sha256 over the policy files' names and bytes")
    files: list[Annotated[str, Field(max_length=500)]] = Field(default=[], max_length=50)
    reason: Text = ""
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)
