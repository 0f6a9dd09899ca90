"""Wiring of the gatekeeper: ArtifactVerified -> the release workflow (approve, refuse, or wait for what it needs);
deployments in flight and what is live where; evidence for promotion gates; approvals, freezes, change records,
incidents and feature flags as people's commands."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.commands import ApproveRelease, FreezeEnvironment, LiftFreeze, ListApprovals, ListFreezes, RejectRelease
from contracts.events import ArtifactVerified, EvidenceSubmitted
from libs.commands import serve_command, serve_signed_command
from libs.consume import consume
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.gatekeeper import (
    change_commands, change_store, checklist_commands, evidence, flag_commands, flag_store, incident_commands,
    incident_store, inventory_commands, inventory_store, pause_store, pir_commands, pir_store, policy_commands,
    workflow_store,
)
from services.gatekeeper.approval_commands import ApprovalCommands
from services.gatekeeper.handlers import CONSUMER, DEPLOYMENTS_CONSUMER, ROLLBACKS_CONSUMER, DeploymentNews, Handlers
from services.gatekeeper.policy_source import PolicySource
from services.gatekeeper.rollout_pauses import RolloutPauses
from services.gatekeeper.store import metadata
from services.gatekeeper.workflow import ReleaseWorkflow

# Its tables, as its migration history (migrations/<service>/) creates them.
METADATAS = (metadata, workflow_store.metadata, pause_store.metadata, inventory_store.metadata,
             change_store.metadata, pir_store.metadata, incident_store.metadata, flag_store.metadata)


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime(
        "gatekeeper", settings, METADATAS,
        exporter=exporter,
    )
    policy = PolicySource(settings.policy_dir, settings.service_catalogue)
    changes = change_commands.register(runtime)
    workflow = ReleaseWorkflow(runtime, policy, changes, tick_s=settings.gate_tick_s)
    handlers = Handlers(runtime, workflow)
    approvals = ApprovalCommands(workflow)
    consume(runtime.broker, settings, subject=subjects.ARTIFACT_VERIFIED, durable=CONSUMER, model=ArtifactVerified,
            handle=handlers.on_artifact_verified)
    consume(runtime.broker, settings, subject="slipway.evt.deploy.>", durable=DEPLOYMENTS_CONSUMER, model=DeploymentNews,
            handle=handlers.on_deployment_news)
    consume(runtime.broker, settings, subject=subjects.ROLLBACK_COMPLETED, durable=ROLLBACKS_CONSUMER,
            model=DeploymentNews, handle=handlers.on_deployment_news)
    intake = evidence.EvidenceIntake(runtime, workflow)
    consume(runtime.broker, settings, subject=f"{subjects.EVIDENCE_SUBMITTED_PREFIX}.>", durable=evidence.CONSUMER,
            model=EvidenceSubmitted, handle=intake.on_evidence)
    serve_signed_command(runtime, subjects.CMD_FREEZE, FreezeEnvironment, handlers.freeze)
    serve_signed_command(runtime, subjects.CMD_LIFT_FREEZE, LiftFreeze, handlers.lift_freeze)
    serve_command(runtime.broker, subjects.CMD_LIST_FREEZES, ListFreezes, handlers.list_freezes)
    serve_signed_command(runtime, subjects.CMD_APPROVE, ApproveRelease, approvals.approve)
    serve_signed_command(runtime, subjects.CMD_REJECT, RejectRelease, approvals.reject)
    serve_command(runtime.broker, subjects.CMD_LIST_APPROVALS, ListApprovals, approvals.list)
    incidents = incident_commands.register(runtime)
    incidents.on_change = workflow.wake  # a resolved incident may let waiting releases go
    # ... and an incident opened or resolved pauses or resumes the rollouts in flight there, at the same wake-up.
    workflow.also.append(RolloutPauses(runtime, policy).reconcile)
    pir_commands.register(runtime, workflow)  # post-implementation reviews and `release show`
    flag_commands.register(runtime)  # slipway flags: declared flags added off, exposure changed by people
    policy_commands.register(workflow, policy)  # slipway policy reload
    inventory_commands.register(runtime)  # slipway inventory, slipway evidence list
    checklist_commands.register(runtime, policy)  # slipway checklist report

    async def load_policy() -> None:
        policy.load()  # a broken policy at start stops the gatekeeper with file, line and field

    # The policy is read before anything is decided; waiting releases are picked up again after a restart.
    runtime.on_start[:0] = [load_policy]
    runtime.on_start.append(workflow.start)
    runtime.on_stop.insert(0, workflow.stop)
    return build_app(runtime)
