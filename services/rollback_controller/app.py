"""Wiring of the rollback-controller: StepVerdict(fail) -> RollbackRequested; RollbackCompleted -> time to restore."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.events import RollbackCompleted, StepVerdict
from libs.bus import consume
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.rollback_controller.handlers import ON_COMPLETED, ON_VERDICT, Handlers
from services.rollback_controller.store import metadata


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime("rollback-controller", settings, [metadata], exporter=exporter)
    handlers = Handlers(runtime)
    consume(runtime.broker, settings, subject=subjects.STEP_VERDICT, durable=ON_VERDICT, model=StepVerdict,
            handle=handlers.on_step_verdict)
    consume(runtime.broker, settings, subject=subjects.ROLLBACK_COMPLETED, durable=ON_COMPLETED,
            model=RollbackCompleted, handle=handlers.on_rollback_completed)
    return build_app(runtime)
