"""Every NATS subject and stream slipway uses, in one place.

Events:   slipway.evt.<domain>.<event>            (stream SLIPWAY_EVENTS)
          release requests: slipway.evt.release.requested.<team>.<service>, so the server can hold
          each team's CI to its own team's services; evidence likewise:
          slipway.evt.evidence.submitted.<team>.<service>
Alerts:   slipway.alert.<severity>.<team>.<service> (stream SLIPWAY_ALERTS)
Dead letters: slipway.dlq.<consumer>              (stream SLIPWAY_DLQ)
Commands: slipway.cmd.<service>.<command>          (core NATS request/reply)
"""

EVENTS_STREAM = "SLIPWAY_EVENTS"
ALERTS_STREAM = "SLIPWAY_ALERTS"
DLQ_STREAM = "SLIPWAY_DLQ"

EVENTS_WILDCARD = "slipway.evt.>"
ALERTS_WILDCARD = "slipway.alert.>"
DLQ_WILDCARD = "slipway.dlq.>"

RELEASE_REQUESTED_PREFIX = "slipway.evt.release.requested"
RELEASE_REQUESTED = RELEASE_REQUESTED_PREFIX + ".{team}.{service}"
RELEASE_REQUEST_REJECTED = "slipway.evt.release.request_rejected"
# Evidence (test results) for an artifact digest: the team is a token for the same reason as in requests.
EVIDENCE_SUBMITTED_PREFIX = "slipway.evt.evidence.submitted"
EVIDENCE_SUBMITTED = EVIDENCE_SUBMITTED_PREFIX + ".{team}.{service}"
RELEASE_REQUEST_DUPLICATED = "slipway.evt.release.request_duplicated"
ARTIFACT_VERIFIED = "slipway.evt.artifact.verified"
ARTIFACT_REJECTED = "slipway.evt.artifact.rejected"
RELEASE_APPROVED = "slipway.evt.gate.approved"
RELEASE_BLOCKED = "slipway.evt.gate.blocked"
RELEASE_WAITING = "slipway.evt.gate.waiting"
APPROVAL_RECORDED = "slipway.evt.gate.approval_recorded"
RELEASE_REJECTED = "slipway.evt.gate.rejected"
RELEASE_EXPIRED = "slipway.evt.gate.expired"
FREEZE_DECLARED = "slipway.evt.gate.freeze_declared"
FREEZE_LIFTED = "slipway.evt.gate.freeze_lifted"
DEPLOYMENT_STARTED = "slipway.evt.deploy.started"
STEP_STARTED = "slipway.evt.deploy.step_started"
DEPLOYMENT_SUCCEEDED = "slipway.evt.deploy.succeeded"
DEPLOYMENT_FAILED = "slipway.evt.deploy.failed"
STEP_VERDICT = "slipway.evt.health.step_verdict"
ROLLBACK_REQUESTED = "slipway.evt.rollback.requested"
ROLLBACK_COMPLETED = "slipway.evt.rollback.completed"
INSTANCE_RESTARTED = "slipway.evt.deploy.instance_restarted"
RELEASE_RESUMED = "slipway.evt.deploy.release_resumed"
RELEASE_PAUSED = "slipway.evt.deploy.release_paused"
RELEASE_PROMOTED = "slipway.evt.deploy.release_promoted"
SMOKE_TEST_COMPLETED = "slipway.evt.deploy.smoke_test_completed"
ROUTER_ADMIN_REFUSED = "slipway.evt.deploy.router_admin_refused"
EVENT_REFUSED = "slipway.evt.bus.event_refused"
COMMAND_REFUSED = "slipway.evt.command.refused"
CHANGE_RECORD_CREATED = "slipway.evt.change.created"
CHANGE_RECORD_APPROVED = "slipway.evt.change.approved"
INCIDENT_OPENED = "slipway.evt.incident.opened"
INCIDENT_RESOLVED = "slipway.evt.incident.resolved"
INCIDENT_WEBHOOK_REFUSED = "slipway.evt.incident.webhook_refused"
# Both on one prefix so the deployer reads them through one durable, in the order the gatekeeper emitted them.
ROLLOUT_PREFIX = "slipway.evt.rollout"
ROLLOUT_PAUSED = ROLLOUT_PREFIX + ".paused"
ROLLOUT_RESUMED = ROLLOUT_PREFIX + ".resumed"
PIR_RECORDED = "slipway.evt.gate.pir_recorded"
DRIFT_DETECTED = "slipway.evt.env.drift_detected"
PREVIEW_EXPIRED = "slipway.evt.env.preview_expired"
DRIFT_RECONCILED = "slipway.evt.env.drift_reconciled"
FLAG_CHANGED = "slipway.evt.flag.changed"
FLAGS_DECLARED = "slipway.evt.flag.declared"

CMD_RELOAD_POLICY = "slipway.cmd.gatekeeper.reload_policy"
POLICY_RELOADED = "slipway.evt.gate.policy_reloaded"
CMD_APPROVE = "slipway.cmd.gatekeeper.approve"
CMD_REJECT = "slipway.cmd.gatekeeper.reject"
CMD_LIST_APPROVALS = "slipway.cmd.gatekeeper.list_approvals"
CMD_FREEZE = "slipway.cmd.gatekeeper.freeze"
CMD_LIFT_FREEZE = "slipway.cmd.gatekeeper.lift_freeze"
CMD_LIST_FREEZES = "slipway.cmd.gatekeeper.list_freezes"
CMD_DORA = "slipway.cmd.metrics.dora"
CMD_DORA_TEAMS = "slipway.cmd.metrics.dora_teams"
CMD_AUDIT_VERIFY = "slipway.cmd.metrics.audit_verify"
CMD_RELEASE_STATUS = "slipway.cmd.metrics.release_status"
CMD_AUDIT_SHOW = "slipway.cmd.metrics.audit_show"
CMD_AUDIT_WHO = "slipway.cmd.metrics.audit_who"
CMD_AUDIT_CHECKPOINT = "slipway.cmd.metrics.audit_checkpoint"
CMD_BOTTLENECKS = "slipway.cmd.metrics.bottlenecks"
CMD_RESUME_RELEASE = "slipway.cmd.deployer.resume_release"
CMD_PAUSE_RELEASE = "slipway.cmd.deployer.pause_release"
CMD_PROMOTE_RELEASE = "slipway.cmd.deployer.promote_release"
CMD_CHECK_DRIFT = "slipway.cmd.deployer.check_drift"
CMD_ABORT_RELEASE = "slipway.cmd.rollback.abort_release"
# A person steering a release in flight; each acts on one team's release (contracts.rights).
STEERING_COMMANDS = (CMD_PAUSE_RELEASE, CMD_RESUME_RELEASE, CMD_PROMOTE_RELEASE, CMD_ABORT_RELEASE)
CMD_CREATE_CHANGE = "slipway.cmd.gatekeeper.create_change"
CMD_APPROVE_CHANGE = "slipway.cmd.gatekeeper.approve_change"
CMD_SHOW_CHANGE = "slipway.cmd.gatekeeper.show_change"
CMD_OPEN_INCIDENT = "slipway.cmd.gatekeeper.open_incident"
CMD_RESOLVE_INCIDENT = "slipway.cmd.gatekeeper.resolve_incident"
CMD_LIST_INCIDENTS = "slipway.cmd.gatekeeper.list_incidents"
CMD_RECORD_PIR = "slipway.cmd.gatekeeper.record_pir"
CMD_LIST_PIRS = "slipway.cmd.gatekeeper.list_pirs"
CMD_SHOW_RELEASE = "slipway.cmd.gatekeeper.show_release"
CMD_LIST_INVENTORY = "slipway.cmd.gatekeeper.list_inventory"
CMD_LIST_EVIDENCE = "slipway.cmd.gatekeeper.list_evidence"
CMD_CHECKLIST_REPORT = "slipway.cmd.gatekeeper.checklist_report"
CMD_CHANGE_FLAG = "slipway.cmd.gatekeeper.change_flag"
CMD_LIST_FLAGS = "slipway.cmd.gatekeeper.list_flags"


def address(template: str, values: dict[str, str]) -> str:
    """A subject template (`...{team}.{service}`) filled in, each value made a safe subject token."""
    return ".".join(_token(values[t[1:-1]]) if t.startswith("{") else t for t in template.split("."))


def pattern(template: str) -> str:
    """A subject template as the NATS wildcard subject that matches every filling of it."""
    return ".".join("*" if token.startswith("{") else token for token in template.split("."))


def release_request_subject(team: str, service: str) -> str:
    return address(RELEASE_REQUESTED, {"team": team, "service": service})


def alert_subject(severity: str, team: str, service: str) -> str:
    return f"slipway.alert.{severity}.{_token(team)}.{_token(service)}"


def alert_filter(severity: str | None, team: str | None, service: str | None) -> str:
    """The wildcard an on-call engineer subscribes to; a missing part matches everything."""
    return f"slipway.alert.{severity or '*'}.{_token(team) if team else '*'}.{_token(service) if service else '*'}"


def dead_letter_subject(consumer: str) -> str:
    return f"slipway.dlq.{_token(consumer)}"


def _token(value: str) -> str:
    # A subject token may not contain separators or wildcards; keep names readable.
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in value) or "_"
