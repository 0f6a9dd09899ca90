"""Wiring of the metrics-collector: every event and alert -> event log; DORA/audit/status queries.

The two streams are read by pull loops of the collector's own (libs.pull_loop), started once the
broker is connected and stopped before it disconnects, each appending whole batches.
"""

from functools import partial

from faststream import FastStream
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.audit_queries import CheckpointAudit, ShowAudit, WhoAudit
from contracts.bottleneck_queries import QueryBottlenecks
from contracts.commands import QueryDora, QueryReleases, VerifyAudit
from contracts.dora_queries import QueryDoraTeams
from libs.bus import declare_durable
from libs.commands import serve_command
from libs.nats_auth import connect_options
from libs.pull_loop import PullLoop
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.metrics_collector.bottleneck_query import query_bottlenecks
from services.metrics_collector.handlers import Handlers
from services.metrics_collector.intake import Intake
from services.metrics_collector.projector import up_to_date
from services.metrics_collector.store import NAME, metadata

BATCH_SIZE = 100  # events appended per transaction at most
FETCH_TIMEOUT_S = 1.0  # an idle fetch returns after this long and the loop fetches again
EVENTS_DURABLE, ALERTS_DURABLE = f"{NAME}-events", f"{NAME}-alerts"

# Its tables, as its migration history (migrations/<service>/) creates them.
METADATAS = (metadata,)


def build(settings: Settings, exporter: SpanExporter | None = None) -> FastStream:
    runtime = build_runtime(NAME, settings, metadatas=METADATAS, exporter=exporter)
    handlers = Handlers(runtime)
    broker = runtime.broker
    runtime.on_start.append(handlers.prepare)

    intakes = {durable: Intake(broker, settings, handlers, durable, BATCH_SIZE) for durable in (EVENTS_DURABLE, ALERTS_DURABLE)}
    handlers.intake_backlog = lambda: any(intake.backlog for intake in intakes.values())
    loops = [
        PullLoop(stream=stream, subject=subject, durable=durable, batch_size=BATCH_SIZE,
                 fetch_timeout_s=FETCH_TIMEOUT_S, handle=intakes[durable],
                 max_deliver=settings.max_deliver + 1, ack_wait_s=settings.ack_wait_s)
        for stream, subject, durable in (
            (subjects.EVENTS_STREAM, subjects.EVENTS_WILDCARD, EVENTS_DURABLE),
            (subjects.ALERTS_STREAM, subjects.ALERTS_WILDCARD, ALERTS_DURABLE),
        )
    ]
    for loop in loops:  # declared like every service's durables: created or brought up to date at start
        declare_durable(broker, loop.stream, loop.config)
    # Pull replies come to this identity's own inbox, the only one the server lets it read.
    inbox = connect_options(settings.credentials).get("inbox_prefix")

    async def start_loops() -> None:
        for loop in loops:
            await loop.start(broker.connection, inbox_prefix=f"{inbox}.".encode() if inbox else None)

    async def stop_loops() -> None:
        for loop in loops:
            await loop.stop()
        await handlers.stop()

    # The queries that read projections first wait for them to hold what the log held when asked.
    fresh = partial(up_to_date, handlers.projector)
    serve_command(broker, subjects.CMD_DORA, QueryDora, fresh(handlers.query_dora))
    serve_command(broker, subjects.CMD_DORA_TEAMS, QueryDoraTeams, fresh(handlers.query_dora_teams))
    serve_command(broker, subjects.CMD_AUDIT_VERIFY, VerifyAudit, handlers.audit.verify)
    serve_command(broker, subjects.CMD_AUDIT_SHOW, ShowAudit, fresh(handlers.audit.show))
    serve_command(broker, subjects.CMD_AUDIT_WHO, WhoAudit, handlers.audit.who)
    serve_command(broker, subjects.CMD_AUDIT_CHECKPOINT, CheckpointAudit, handlers.audit.checkpoint)
    serve_command(broker, subjects.CMD_RELEASE_STATUS, QueryReleases, fresh(handlers.query_releases))
    serve_command(broker, subjects.CMD_BOTTLENECKS, QueryBottlenecks, fresh(partial(query_bottlenecks, runtime.db)))
    app = build_app(runtime)
    app.after_startup(start_loops)
    app.on_shutdown(stop_loops)
    app.after_shutdown(handlers.close)
    return app
