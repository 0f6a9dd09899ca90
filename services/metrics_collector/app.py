"""Wiring of the metrics-collector: every event and alert -> event log; DORA/audit/status queries."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.commands import QueryDora, QueryReleases, VerifyAudit
from libs.bus import consume_batches
from libs.commands import serve_command
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.metrics_collector.handlers import Handlers, LoggedEvent
from services.metrics_collector.store import metadata

NAME = "metrics-collector"


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime(NAME, settings, metadatas=[metadata], exporter=exporter)
    handlers = Handlers(runtime)
    broker = runtime.broker

    for subject, stream, durable in (
        (subjects.EVENTS_WILDCARD, subjects.EVENTS_STREAM, f"{NAME}-events"),
        (subjects.ALERTS_WILDCARD, subjects.ALERTS_STREAM, f"{NAME}-alerts"),
    ):
        consume_batches(
            broker, settings, subject=subject, durable=durable, model=LoggedEvent, stream=stream,
            handle_batch=handlers.on_events, handle_one=handlers.on_event,
        )
    serve_command(broker, subjects.CMD_DORA, QueryDora, handlers.query_dora)
    serve_command(broker, subjects.CMD_AUDIT_VERIFY, VerifyAudit, handlers.verify_audit)
    serve_command(broker, subjects.CMD_RELEASE_STATUS, QueryReleases, handlers.query_releases)
    return build_app(runtime)
