"""Wiring of the health-watcher: StepStarted -> (watch the interval) -> StepVerdict, alerts."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.events import StepStarted
from libs.consume import consume
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.health_watcher.handlers import CONSUMER, Handlers
from services.health_watcher.store import metadata

# Its tables, as its migration history (migrations/<service>/) creates them.
METADATAS = (metadata,)


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime("health-watcher", settings, METADATAS, exporter=exporter)
    handlers = Handlers(runtime)
    consume(
        runtime.broker, settings, subject=subjects.STEP_STARTED, durable=CONSUMER, model=StepStarted,
        handle=handlers.on_step_started,
    )
    runtime.on_start.append(handlers.start)
    runtime.on_stop.append(handlers.stop)
    return build_app(runtime)
