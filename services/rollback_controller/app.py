"""Wiring of the rollback-controller: StepVerdict(fail) or an abort command -> RollbackRequested;
DeploymentStarted/DeploymentSucceeded -> releases in flight; RollbackCompleted -> time to restore."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.commands import AbortRelease
from contracts.events import DeploymentStarted, DeploymentSucceeded, RollbackCompleted, StepVerdict
from libs.commands import serve_signed_command
from libs.consume import consume
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.rollback_controller.handlers import ON_COMPLETED, ON_STARTED, ON_SUCCEEDED, ON_VERDICT, Handlers
from services.rollback_controller.store import metadata

# Its tables, as its migration history (migrations/<service>/) creates them.
METADATAS = (metadata,)


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime("rollback-controller", settings, METADATAS, exporter=exporter)
    handlers = Handlers(runtime)
    for subject, durable, model, handle in (
        (subjects.STEP_VERDICT, ON_VERDICT, StepVerdict, handlers.on_step_verdict),
        (subjects.DEPLOYMENT_STARTED, ON_STARTED, DeploymentStarted, handlers.on_deployment_started),
        (subjects.DEPLOYMENT_SUCCEEDED, ON_SUCCEEDED, DeploymentSucceeded, handlers.on_deployment_succeeded),
        (subjects.ROLLBACK_COMPLETED, ON_COMPLETED, RollbackCompleted, handlers.on_rollback_completed),
    ):
        consume(runtime.broker, settings, subject=subject, durable=durable, model=model, handle=handle)
    serve_signed_command(runtime, subjects.CMD_ABORT_RELEASE, AbortRelease, handlers.abort_release)
    return build_app(runtime)
