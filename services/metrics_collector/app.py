"""Wiring of the metrics-collector: every event and alert -> event log; DORA/audit/status queries."""

from faststream import FastStream
from faststream.nats.annotations import NatsMessage
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.commands import CommandResult
from libs.bus import consume
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.metrics_collector.handlers import Handlers, LoggedEvent
from services.metrics_collector.store import metadata

NAME = "metrics-collector"
# Replicas share one queue group so a query is answered once, not once per replica.
QUERY_GROUP = NAME


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime(NAME, settings, metadatas=[metadata], exporter=exporter)
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
    )
    consume(
        broker,
        settings,
        subject=subjects.ALERTS_WILDCARD,
        durable=f"{NAME}-alerts",
        model=LoggedEvent,
        handle=log_event,
        stream=subjects.ALERTS_STREAM,
    )

    @broker.subscriber(subjects.CMD_DORA, queue=QUERY_GROUP, title="metrics-dora")
    async def on_dora(msg: NatsMessage) -> CommandResult:
        return await handlers.query_dora(msg.body)

    @broker.subscriber(subjects.CMD_AUDIT_VERIFY, queue=QUERY_GROUP, title="metrics-audit-verify")
    async def on_audit_verify(msg: NatsMessage) -> CommandResult:
        return await handlers.verify_audit(msg.body)

    @broker.subscriber(subjects.CMD_RELEASE_STATUS, queue=QUERY_GROUP, title="metrics-release-status")
    async def on_release_status(msg: NatsMessage) -> CommandResult:
        return await handlers.query_releases(msg.body)

    return build_app(runtime)
