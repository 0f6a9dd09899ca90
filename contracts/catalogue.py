"""The catalogue of slipway's channels: which subject carries which model, who sends it, who reads it.

Subjects and models come from the code (`Event.registry`, `contracts.subjects`); the only thing
written by hand here is who produces and who consumes, because that lives in each service's
wiring and cannot be read back from the models. `uncovered_events()` and `stale_mapping()`
keep the hand-written part honest, and `channels()` refuses to describe an uncovered event.
"""

from dataclasses import dataclass, field

from pydantic import BaseModel

from contracts import (audit_queries, bottleneck_queries, ci, commands, dora_queries, environment_events, events, flags,
                       governance, subjects)
from contracts.envelope import Event

CI = "ci"
CLI = "slipway-cli"
ARTIFACT_VERIFIER = "artifact-verifier"
GATEKEEPER = "gatekeeper"
DEPLOYER = "deployer"
HEALTH_WATCHER = "health-watcher"
ROLLBACK_CONTROLLER = "rollback-controller"
METRICS_COLLECTOR = "metrics-collector"

SERVICES = (ARTIFACT_VERIFIER, GATEKEEPER, DEPLOYER, HEALTH_WATCHER, ROLLBACK_CONTROLLER, METRICS_COLLECTOR)
# Processes that only watch: they ask the queries and read the event and alert streams through ephemeral
# ordered consumers, and publish no event (contracts.permissions). The web dashboard is one.
DASHBOARD = "dashboard"
READERS = (DASHBOARD,)

# Event name -> the service that publishes it, or the services when several do.
PRODUCERS: dict[str, str | tuple[str, ...]] = {
    "ReleaseRequested": CI,
    "ReleaseRequestRejected": ARTIFACT_VERIFIER,
    "ReleaseRequestDuplicated": ARTIFACT_VERIFIER,
    "ArtifactVerified": ARTIFACT_VERIFIER,
    "ArtifactRejected": ARTIFACT_VERIFIER,
    "ReleaseApproved": GATEKEEPER,
    "ReleaseBlocked": GATEKEEPER,
    "ReleaseWaiting": GATEKEEPER,
    "ApprovalRecorded": GATEKEEPER,
    "ReleaseRejected": GATEKEEPER,
    "ReleaseExpired": GATEKEEPER,
    "FreezeDeclared": GATEKEEPER,
    "FreezeLifted": GATEKEEPER,
    "DeploymentStarted": DEPLOYER,
    "StepStarted": DEPLOYER,
    "DeploymentSucceeded": DEPLOYER,
    "DeploymentFailed": DEPLOYER,
    "RollbackCompleted": DEPLOYER,
    "InstanceRestarted": DEPLOYER,
    "ReleaseResumed": DEPLOYER,
    "ReleasePaused": DEPLOYER,
    "ReleasePromoted": DEPLOYER,
    "SmokeTestCompleted": DEPLOYER,
    "RouterAdminRefused": DEPLOYER,
    "StepVerdict": HEALTH_WATCHER,
    "AlertRaised": (HEALTH_WATCHER, DEPLOYER),
    "RollbackRequested": ROLLBACK_CONTROLLER,
    "EventRefused": (ARTIFACT_VERIFIER, GATEKEEPER, DEPLOYER, HEALTH_WATCHER, ROLLBACK_CONTROLLER),
    # The owner of each person's command records its refusals (contracts.rights.PEOPLE_COMMANDS).
    "CommandRefused": (GATEKEEPER, DEPLOYER, ROLLBACK_CONTROLLER),
    "ChangeRecordCreated": GATEKEEPER,
    "ChangeRecordApproved": GATEKEEPER,
    "IncidentOpened": GATEKEEPER,
    "IncidentResolved": GATEKEEPER,
    "IncidentWebhookRefused": GATEKEEPER,
    "RolloutPaused": GATEKEEPER,
    "RolloutResumed": GATEKEEPER,
    "PostImplementationReviewRecorded": GATEKEEPER,
    "PolicyReloaded": GATEKEEPER,
    "EvidenceSubmitted": CI,
    "DriftDetected": DEPLOYER,
    "PreviewExpired": DEPLOYER,
    "DriftReconciled": DEPLOYER,
    "FlagChanged": GATEKEEPER,
    "FlagsDeclared": GATEKEEPER,
}

# Service -> the events it subscribes to. The metrics-collector keeps the audit trail, so it reads
# every event; it is not listed here but added by `consumers_of`.
CONSUMES: dict[str, tuple[str, ...]] = {
    ARTIFACT_VERIFIER: ("ReleaseRequested",),
    # Deployments in flight (concurrency), recent failures (risk), successes and evidence (promotion gates),
    # what is live where (requirements).
    GATEKEEPER: ("ArtifactVerified", "DeploymentStarted", "DeploymentSucceeded", "DeploymentFailed", "RollbackCompleted",
                 "EvidenceSubmitted",
                 # its own approvals: the flags an approved release declares are added to its environment
                 "ReleaseApproved"),
    DEPLOYER: ("ReleaseApproved", "StepVerdict", "RollbackRequested", "RolloutPaused", "RolloutResumed"),
    HEALTH_WATCHER: ("StepStarted",),
    ROLLBACK_CONTROLLER: ("StepVerdict", "DeploymentStarted", "DeploymentSucceeded", "RollbackCompleted"),
}
CONSUMES_EVERYTHING = (METRICS_COLLECTOR,)

# Service -> its durable consumers as (stream, durable name). The server lets each service create,
# read and acknowledge through these and no others (contracts.permissions); a test checks that
# every durable a service's app declares is listed here.
DURABLES: dict[str, tuple[tuple[str, str], ...]] = {
    ARTIFACT_VERIFIER: ((subjects.EVENTS_STREAM, "artifact-verifier"),),
    GATEKEEPER: (
        (subjects.EVENTS_STREAM, "gatekeeper"), (subjects.EVENTS_STREAM, "gatekeeper-deployments"),
        (subjects.EVENTS_STREAM, "gatekeeper-rollbacks"), (subjects.EVENTS_STREAM, "gatekeeper-evidence"),
        (subjects.EVENTS_STREAM, "gatekeeper-flags"),
    ),
    DEPLOYER: (
        (subjects.EVENTS_STREAM, "deployer-approved"), (subjects.EVENTS_STREAM, "deployer-verdicts"),
        (subjects.EVENTS_STREAM, "deployer-rollbacks"), (subjects.EVENTS_STREAM, "deployer-pauses"),
    ),
    HEALTH_WATCHER: ((subjects.EVENTS_STREAM, "health-watcher"),),
    ROLLBACK_CONTROLLER: (
        (subjects.EVENTS_STREAM, "rollback-controller-verdicts"), (subjects.EVENTS_STREAM, "rollback-controller-completions"),
        (subjects.EVENTS_STREAM, "rollback-controller-starts"), (subjects.EVENTS_STREAM, "rollback-controller-successes"),
    ),
    METRICS_COLLECTOR: ((subjects.EVENTS_STREAM, "metrics-collector-events"), (subjects.ALERTS_STREAM, "metrics-collector-alerts")),
}

# Request/reply commands: subject -> (request model, the service that answers it).
COMMANDS: dict[str, tuple[type[BaseModel], str]] = {
    subjects.CMD_FREEZE: (commands.FreezeEnvironment, GATEKEEPER),
    subjects.CMD_LIFT_FREEZE: (commands.LiftFreeze, GATEKEEPER),
    subjects.CMD_LIST_FREEZES: (commands.ListFreezes, GATEKEEPER),
    subjects.CMD_RELOAD_POLICY: (commands.ReloadPolicy, GATEKEEPER),
    subjects.CMD_APPROVE: (commands.ApproveRelease, GATEKEEPER),
    subjects.CMD_REJECT: (commands.RejectRelease, GATEKEEPER),
    subjects.CMD_LIST_APPROVALS: (commands.ListApprovals, GATEKEEPER),
    subjects.CMD_DORA: (commands.QueryDora, METRICS_COLLECTOR),
    subjects.CMD_DORA_TEAMS: (dora_queries.QueryDoraTeams, METRICS_COLLECTOR),
    subjects.CMD_AUDIT_VERIFY: (commands.VerifyAudit, METRICS_COLLECTOR),
    subjects.CMD_RELEASE_STATUS: (commands.QueryReleases, METRICS_COLLECTOR),
    subjects.CMD_AUDIT_SHOW: (audit_queries.ShowAudit, METRICS_COLLECTOR),
    subjects.CMD_AUDIT_WHO: (audit_queries.WhoAudit, METRICS_COLLECTOR),
    subjects.CMD_AUDIT_CHECKPOINT: (audit_queries.CheckpointAudit, METRICS_COLLECTOR),
    subjects.CMD_BOTTLENECKS: (bottleneck_queries.QueryBottlenecks, METRICS_COLLECTOR),
    subjects.CMD_RESUME_RELEASE: (commands.ResumeRelease, DEPLOYER),
    subjects.CMD_PAUSE_RELEASE: (commands.PauseRelease, DEPLOYER),
    subjects.CMD_PROMOTE_RELEASE: (commands.PromoteRelease, DEPLOYER),
    subjects.CMD_CHECK_DRIFT: (commands.CheckDrift, DEPLOYER),
    subjects.CMD_ABORT_RELEASE: (commands.AbortRelease, ROLLBACK_CONTROLLER),
    subjects.CMD_CREATE_CHANGE: (governance.CreateChangeRecord, GATEKEEPER),
    subjects.CMD_APPROVE_CHANGE: (governance.ApproveChangeRecord, GATEKEEPER),
    subjects.CMD_SHOW_CHANGE: (governance.ShowChangeRecord, GATEKEEPER),
    subjects.CMD_OPEN_INCIDENT: (governance.OpenIncident, GATEKEEPER),
    subjects.CMD_RESOLVE_INCIDENT: (governance.ResolveIncident, GATEKEEPER),
    subjects.CMD_LIST_INCIDENTS: (governance.ListIncidents, GATEKEEPER),
    subjects.CMD_RECORD_PIR: (governance.RecordPir, GATEKEEPER),
    subjects.CMD_LIST_PIRS: (governance.ListPirs, GATEKEEPER),
    subjects.CMD_SHOW_RELEASE: (governance.ShowRelease, GATEKEEPER),
    subjects.CMD_LIST_INVENTORY: (governance.ListInventory, GATEKEEPER),
    subjects.CMD_LIST_EVIDENCE: (governance.ListEvidence, GATEKEEPER),
    subjects.CMD_CHECKLIST_REPORT: (governance.ChecklistReport, GATEKEEPER),
    subjects.CMD_CHANGE_FLAG: (flags.ChangeFlag, GATEKEEPER),
    subjects.CMD_LIST_FLAGS: (flags.ListFlags, GATEKEEPER),
}
COMMAND_REPLY = commands.CommandResult

DEAD_LETTER_ADDRESS = "slipway.dlq.{consumer}"

# Event name -> the schema an outside producer validates against before publishing it.
OUTSIDE_MODELS: dict[str, type[BaseModel]] = {"ReleaseRequested": ci.ReleaseRequest}


@dataclass(frozen=True)
class Parameter:
    """A `{name}` parameter in a channel address (AsyncAPI channel parameters)."""

    description: str
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Channel:
    """A JetStream subject (or subject template) and the one model it carries."""

    name: str
    address: str
    model: type[BaseModel]
    stream: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    parameters: dict[str, Parameter] = field(default_factory=dict)
    # Events carry Nats-Msg-Id/slipway-type headers (Event.headers); dead letters do not.
    has_event_headers: bool = True
    # What a producer outside slipway sends on this channel, when stricter than `model` (contracts.ci).
    outside_model: type[BaseModel] | None = None


@dataclass(frozen=True)
class Command:
    """A core-NATS request/reply subject: `owner` answers `request` with `reply`."""

    name: str
    subject: str
    request: type[BaseModel]
    reply: type[BaseModel]
    owner: str
    sender: str = CLI


def event_classes() -> dict[str, type[Event]]:
    # Importing contracts.events (done above) is what fills the registry; copy so callers cannot mutate it.
    return dict(sorted(Event.registry.items()))


def uncovered_events() -> list[str]:
    """Event classes nobody has said who produces: describing them would be guessing."""
    return sorted(set(event_classes()) - set(PRODUCERS))


def stale_mapping() -> list[str]:
    """Names in the hand-written mapping that are not (or no longer) event classes."""
    named = set(PRODUCERS) | {name for consumed in CONSUMES.values() for name in consumed}
    return sorted(named - set(event_classes()))


def consumers_of(event_name: str) -> tuple[str, ...]:
    readers = {service for service, consumed in CONSUMES.items() if event_name in consumed}
    return tuple(sorted(readers | set(CONSUMES_EVERYTHING)))


def channels() -> list[Channel]:
    """Every event channel plus the dead-letter channel, sorted by name."""
    missing, stale = uncovered_events(), stale_mapping()
    if missing or stale:
        raise ValueError(f"contracts.catalogue is out of date: uncovered events {missing}, unknown names {stale}")
    found = [_event_channel(name, cls) for name, cls in event_classes().items()]
    found.append(_dead_letter_channel())
    return sorted(found, key=lambda c: c.name)


def command_list() -> list[Command]:
    found = [
        Command(name=model.__name__, subject=subject, request=model, reply=COMMAND_REPLY, owner=owner)
        for subject, (model, owner) in COMMANDS.items()
    ]
    return sorted(found, key=lambda c: c.name)


def _event_channel(name: str, cls: type[Event]) -> Channel:
    is_alert = cls is events.AlertRaised
    return Channel(
        name=name,
        address=cls.subject,
        model=cls,
        stream=subjects.ALERTS_STREAM if is_alert else subjects.EVENTS_STREAM,
        producers=_as_tuple(PRODUCERS[name]),
        consumers=consumers_of(name),
        parameters=_alert_parameters() if is_alert else _request_parameters() if "{" in cls.subject else {},
        outside_model=OUTSIDE_MODELS.get(name),
    )


def _as_tuple(producers: str | tuple[str, ...]) -> tuple[str, ...]:
    return (producers,) if isinstance(producers, str) else producers


def _request_parameters() -> dict[str, Parameter]:
    # The team is in the subject so nats-server can hold each team's CI identity to its own services.
    return {
        "team": Parameter("The publishing team, as a subject token (a CI identity may publish only its own)"),
        "service": Parameter("The service it is about, as a subject token"),
    }


def _alert_parameters() -> dict[str, Parameter]:
    # Team and service are subject tokens: subjects.alert_subject replaces separators with "_".
    return {
        "severity": Parameter("How urgent the alert is", tuple(s.value for s in events.Severity)),
        "team": Parameter("The owning team, as a subject token"),
        "service": Parameter("The deployed service, as a subject token"),
    }


def _dead_letter_channel() -> Channel:
    # libs.consume dead-letters on behalf of whichever service's durable consumer gave up.
    consuming_services = {service for service in CONSUMES} | set(CONSUMES_EVERYTHING)
    return Channel(
        name="DeadLettered",
        address=DEAD_LETTER_ADDRESS,
        model=events.DeadLettered,
        stream=subjects.DLQ_STREAM,
        producers=tuple(sorted(consuming_services)),
        consumers=(),
        parameters={"consumer": Parameter("The durable consumer that gave up on the message")},
        has_event_headers=False,
    )
