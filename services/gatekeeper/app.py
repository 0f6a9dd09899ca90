"""Wiring of the gatekeeper: ArtifactVerified -> ReleaseApproved | ReleaseBlocked; freeze commands."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.commands import FreezeEnvironment, LiftFreeze, ListFreezes
from contracts.events import ArtifactVerified
from libs.bus import consume
from libs.commands import serve_command, serve_signed_command
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.gatekeeper.handlers import CONSUMER, Handlers
from services.gatekeeper.store import metadata


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime("gatekeeper", settings, [metadata], exporter=exporter)
    handlers = Handlers(runtime)
    consume(
        runtime.broker,
        settings,
        subject=subjects.ARTIFACT_VERIFIED,
        durable=CONSUMER,
        model=ArtifactVerified,
        handle=handlers.on_artifact_verified,
    )
    serve_signed_command(runtime, subjects.CMD_FREEZE, FreezeEnvironment, handlers.freeze)
    serve_signed_command(runtime, subjects.CMD_LIFT_FREEZE, LiftFreeze, handlers.lift_freeze)
    serve_command(runtime.broker, subjects.CMD_LIST_FREEZES, ListFreezes, handlers.list_freezes)
    return build_app(runtime)
