"""Each service's own database: SQLite file by default, PostgreSQL (own schema) by URL.

The inbox and outbox tables live beside a service's own tables so that "I processed event X",
"my state changed" and "these events must go out" commit in one transaction.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Text, event, select, text
from sqlalchemy.types import TypeDecorator
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from contracts.envelope import Event
from libs.telemetry import current_trace_headers



class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite keeps only the wall-clock time and drops the offset: 18:00+02:00 would come back as
    18:00 with no zone. Normalising to UTC on the way in and tagging UTC on the way out keeps
    comparisons right whatever offset a caller used.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


messaging = MetaData()

inbox = Table(
    "inbox",
    messaging,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("processed_at", UtcDateTime(), nullable=False),
)

outbox = Table(
    "outbox",
    messaging,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("subject", String(300), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime(), nullable=True, index=True),
)

# People's signed commands this service has acted on or refused after checking the signature: a
# command id is taken once. Entries older than the command window are pruned (libs.commands), since
# a command that old is refused as too old anyway.
seen_commands = Table(
    "seen_commands",
    messaging,
    Column("command_id", String(64), primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("signer", String(200), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False, index=True),
    Column("received_at", UtcDateTime(), nullable=False),
)


def now() -> datetime:
    return datetime.now(UTC)


# The database whose turn the current task holds (Database._one_at_a_time).
_holding: ContextVar["Database | None"] = ContextVar("slipway_database_turn", default=None)


class Database:
    def __init__(self, url: str, schema: str | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.schema = None if self.is_sqlite else schema
        self.engine: AsyncEngine = create_async_engine(url, **self._engine_options())
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._turn = asyncio.Lock()  # SQLite: transactions of this process take turns (see _one_at_a_time)

    def _engine_options(self) -> dict:
        if self.is_sqlite:
            return {"connect_args": {"timeout": 30}}
        if self.schema:
            # Each service owns a schema in a shared PostgreSQL database; unqualified names resolve there.
            return {"connect_args": {"server_settings": {"search_path": self.schema}}, "pool_pre_ping": True}
        return {"pool_pre_ping": True}

    async def migrate(self, service: str, *metadatas: MetaData) -> None:
        """Bring the database to the newest revision of `service`'s migration history (libs.migrations)."""
        from libs.migrations import upgrade

        async with self._ready() as conn:
            await conn.run_sync(upgrade, service, [messaging, *metadatas])

    async def create_all(self, *metadatas: MetaData) -> None:
        """Tables straight from the models, without a migration history: for tests of one store."""
        async with self._ready() as conn:
            for metadata in (messaging, *metadatas):
                await conn.run_sync(metadata.create_all)

    @asynccontextmanager
    async def _ready(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, the SQLite file's directory or the PostgreSQL schema made first."""
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        async with self.engine.begin() as conn:
            if self.schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["Transaction"]:
        async with self._one_at_a_time(), self.sessions() as session, session.begin():
            yield Transaction(session)

    @asynccontextmanager
    async def _one_at_a_time(self) -> AsyncIterator[None]:
        """SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps with a
        growing back-off (up to 100 ms) whether or not the lock was freed meanwhile. Fifty releases at once
        spent seconds there (a release's first commit took up to 12 s). Taking turns in this process instead
        hands the file over the moment a transaction ends. A transaction opened inside one this task already
        holds does not wait for itself."""
        if not self.is_sqlite or _holding.get() is self:
            yield
            return
        async with self._turn:
            token = _holding.set(self)
            try:
                yield
            finally:
                _holding.reset(token)


def sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the single writer
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Transaction:
    """One unit of work: inbox check, state change and outgoing events, committed together."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.emitted: list[Event] = []

    async def already_processed(self, consumer: str, event_id: str) -> bool:
        found = await self.session.scalar(
            select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id == event_id)
        )
        return found is not None

    async def mark_processed(self, consumer: str, event_id: str) -> None:
        # A concurrent replica inserting the same key makes this commit fail: the message is
        # redelivered and then seen as processed, so the state change happens once.
        await self.session.execute(inbox.insert().values(consumer=consumer, event_id=event_id, processed_at=now()))

    async def emit(self, evt: Event, subject: str | None = None, stream: str | None = None) -> None:
        from contracts.subjects import ALERTS_STREAM, EVENTS_STREAM

        target = subject or evt.address()
        chosen_stream = stream or (ALERTS_STREAM if target.startswith("slipway.alert.") else EVENTS_STREAM)
        headers = {**evt.headers(), **current_trace_headers()}
        await self.session.execute(
            outbox.insert().values(
                event_id=evt.event_id,
                subject=target,
                stream=chosen_stream,
                payload=evt.model_dump_json(),
                headers=json.loads(json.dumps(headers)),
                created_at=now(),
            )
        )
        self.emitted.append(evt)
