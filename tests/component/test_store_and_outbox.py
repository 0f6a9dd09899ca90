"""The inbox/outbox contract, run against SQLite and PostgreSQL alike."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faststream.nats import NatsBroker
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from contracts.events import ReleaseBlocked
from libs.bus import ensure_streams
from libs.outbox import OutboxRelay
from libs.store import Database, outbox
from tests.support.watch import EventWatcher

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    else:
        if not postgres_reachable():
            pytest.skip("no PostgreSQL server reachable on 127.0.0.1:5432")
        db = Database(POSTGRES_URL, schema=f"slipway_test_{uuid.uuid4().hex[:8]}")
    await db.create_all()
    try:
        yield db
    finally:
        if db.schema:
            async with db.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{db.schema}" CASCADE'))
        await db.dispose()


def blocked(n: int) -> ReleaseBlocked:
    return ReleaseBlocked(release_id=f"r-{n}", service="shop", environment="prod", source="test", reasons=["frozen"])


async def test_inbox_records_each_event_once(database: Database) -> None:
    async with database.transaction() as tx:
        assert not await tx.already_processed("consumer", "evt-1")
        await tx.mark_processed("consumer", "evt-1")
    async with database.transaction() as tx:
        assert await tx.already_processed("consumer", "evt-1")
        assert not await tx.already_processed("other-consumer", "evt-1")
    with pytest.raises(IntegrityError):
        async with database.transaction() as tx:
            await tx.mark_processed("consumer", "evt-1")


async def test_rolled_back_transaction_emits_nothing(database: Database, nats_url: str) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await tx.emit(blocked(0))
            raise RuntimeError("state change failed")
    async with NatsBroker(nats_url) as broker:
        assert await OutboxRelay(database, broker).publish_pending() == 0


async def test_committed_events_survive_a_crash_before_publish(database: Database, nats_url: str) -> None:
    """Rows committed while no relay ran (the process died after commit) go out when one starts."""
    await ensure_streams(nats_url)
    events = [blocked(n) for n in range(3)]
    async with database.transaction() as tx:
        for event in events:
            await tx.emit(event)
    async with EventWatcher(nats_url) as watcher, NatsBroker(nats_url) as broker:
        relay = OutboxRelay(database, broker, poll_interval=0.2)
        relay.start()
        try:
            seen = await watcher.wait_for(lambda _s, body: body.get("type") == "ReleaseBlocked", count=3)
        finally:
            await relay.stop()
    assert [body["event_id"] for body in seen] == [event.event_id for event in events]
    async with NatsBroker(nats_url) as broker:
        assert await OutboxRelay(database, broker).publish_pending() == 0


async def test_relay_publish_is_deduplicated_by_event_id(database: Database, nats_url: str) -> None:
    """Two relays (two replicas) publishing the same row store it once in the stream."""
    await ensure_streams(nats_url)
    event = blocked(9)
    async with NatsBroker(nats_url) as broker:
        for _ in range(2):
            ack = await broker.publish(event.model_dump_json().encode(), event.subject, stream="SLIPWAY_EVENTS",
                                       headers=event.headers())
        assert ack is not None and ack.duplicate



async def test_rows_sent_before_a_failed_publish_are_marked_and_the_rest_wait(database: Database, nats_url: str) -> None:
    """Rows are marked sent together after their batch; a publish that fails still marks those sent before it."""
    await ensure_streams(nats_url)
    sent, refused, behind = blocked(1), blocked(2), blocked(3)
    async with database.transaction() as tx:
        await tx.emit(sent)
        await tx.emit(refused, subject="nowhere.in.any.stream")  # no stream takes it: the publish fails
        await tx.emit(behind)
    async with NatsBroker(nats_url) as broker:
        with pytest.raises(Exception):
            await OutboxRelay(database, broker).publish_pending()
    async with database.sessions() as session:
        pending = (await session.execute(
            select(outbox.c.event_id).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id))).scalars().all()
    assert pending == [refused.event_id, behind.event_id]


async def test_sqlite_transactions_of_a_process_take_turns_and_one_inside_another_does_not_wait(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    await db.create_all()
    inside, overlaps = 0, 0

    async def writer(n: int) -> None:
        nonlocal inside, overlaps
        async with db.transaction() as tx:
            inside += 1
            overlaps = max(overlaps, inside)
            await tx.mark_processed("consumer", f"evt-{n}")
            async with db.transaction() as nested:  # the same task: its own turn already
                assert not await nested.already_processed("other", f"evt-{n}")
            inside -= 1

    try:
        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(20))), 60)
        async with db.transaction() as tx:
            assert all([await tx.already_processed("consumer", f"evt-{n}") for n in range(20)])
    finally:
        await db.dispose()
    assert overlaps == 1
