"""Wiring of the metrics-collector: every event and alert -> event log; DORA/audit/status queries."""

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.commands import QueryDora, QueryReleases, VerifyAudit
from libs.bus import consume
from libs.commands import serve_command
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.metrics_collector.handlers import Handlers, LoggedEvent
from services.metrics_collector.store import metadata

NAME = "metrics-collector"

# Its tables, as its migration history (migrations/<service>/) creates them.
METADATAS = (metadata,)


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime(NAME, settings, metadatas=METADATAS, exporter=exporter)
    handlers = Handlers(runtime)
    broker = runtime.broker

    async def log_event(event: LoggedEvent) -> None:
        # `consume` hands over the parsed event only; the subject it arrived on is the message's.
        message = broker.context.get_local("message")
        await handlers.on_event(event, message.raw_message.subject if message is not None else "")

    consume(
        broker,
        settings,
        subject=subjects.EVENTS_WILDCARD,
        durable=f"{NAME}-events",
        model=LoggedEvent,
        handle=log_event,
        refuse_unverified=False,
    )
    consume(
        broker,
        settings,
        subject=subjects.ALERTS_WILDCARD,
        durable=f"{NAME}-alerts",
        model=LoggedEvent,
        handle=log_event,
        refuse_unverified=False,
        stream=subjects.ALERTS_STREAM,
    )

    serve_command(broker, subjects.CMD_DORA, QueryDora, handlers.query_dora)
    serve_command(broker, subjects.CMD_AUDIT_VERIFY, VerifyAudit, handlers.verify_audit)
    serve_command(broker, subjects.CMD_RELEASE_STATUS, QueryReleases, handlers.query_releases)
    return build_app(runtime)
