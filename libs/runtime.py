"""What every service process has: settings, broker, own database, outbox relay, tracing.

A service's `app.py` builds one of these in a factory and registers its consumers on it;
nothing connects until the FastStream app starts.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from faststream import FastStream
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from sqlalchemy import MetaData

from contracts.envelope import Event
from libs.bus import Broker, ensure_streams, make_broker, own_signer, update_consumers
from libs.faults import crash_if_planned
from libs.outbox import OutboxRelay
from libs.settings import Settings
from libs.store import Database, Transaction
from libs.telemetry import tracer_provider

Hook = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    name: str
    settings: Settings
    broker: Broker  # its consumers (libs.consume) start and stop with it
    db: Database
    relay: OutboxRelay
    provider: TracerProvider
    metadatas: Sequence[MetaData] = ()
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)

    async def process_once(self, consumer: str, event: Event, work: Callable[[Transaction], Awaitable[None]]) -> bool:
        """Run `work` in one transaction with the inbox record, unless `event` was already processed."""
        async with self.db.transaction() as tx:
            if await tx.already_processed(consumer, event.event_id):
                return False
            await work(tx)
            await tx.mark_processed(consumer, event.event_id)
        crash_if_planned(self.settings.crash_points, self.settings.data_dir, "committed", consumer, getattr(event, "release_id", ""))
        if tx.emitted:
            self.relay.wake()
        return True

    async def emit(self, *events: Event) -> None:
        """Emit events that are not caused by a consumed message (commands, timers), via the outbox."""
        async with self.db.transaction() as tx:
            for evt in events:
                await tx.emit(evt)
        self.relay.wake()


def build_runtime(
    name: str, settings: Settings, metadatas: Sequence[MetaData] = (), exporter: SpanExporter | None = None
) -> Runtime:
    provider = tracer_provider(name, settings, exporter)
    broker = make_broker(name, settings, provider)
    db = service_database(name, settings)
    return Runtime(name, settings, broker, db, OutboxRelay(db, broker, own_signer(settings)), provider, metadatas)


def service_database(name: str, settings: Settings) -> Database:
    """The service's own database: its SQLite file, or its schema in a shared PostgreSQL."""
    return Database(settings.database_url_for(name), schema=f"slipway_{name.replace('-', '_')}")


def build_app(runtime: Runtime) -> FastStream:
    async def start() -> None:
        runtime.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await runtime.db.migrate(runtime.name, *runtime.metadatas)
        await ensure_streams(runtime.settings.nats_url, runtime.settings.credentials)
        await update_consumers(runtime.broker, runtime.settings.nats_url, runtime.settings.credentials)
        for hook in runtime.on_start:  # before consumers start, e.g. adopting what already runs
            await hook()

    async def started() -> None:
        # Ready means the server knows every subscription: a command sent right after start-up must
        # find its responder, not race the SUB on the wire.
        await runtime.broker.connection.flush()
        runtime.relay.start()
        logging.getLogger("slipway").info("%s is up on %s", runtime.name, runtime.settings.nats_url)

    async def stop() -> None:
        for hook in runtime.on_stop:
            await hook()
        await runtime.relay.stop()

    async def stopped() -> None:
        await runtime.db.dispose()
        runtime.provider.shutdown()

    return FastStream(runtime.broker, on_startup=[start], after_startup=[started], on_shutdown=[stop], after_shutdown=[stopped])


def run_service(build: Callable[[Settings], FastStream]) -> None:
    """Entry point of `python -m services.<name>`: read settings once, build, run until SIGTERM/SIGINT."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Per-request and per-task chatter from the libraries drowns the service's own story.
    for noisy in ("httpx",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    asyncio.run(build(settings).run())
