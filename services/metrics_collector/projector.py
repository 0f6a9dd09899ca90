"""The read models follow the log: the append writes the chain alone, a projector brings the rest up to it.

An append (handlers.Handlers.append) writes the hash-chained records and their flags, and acks. Everything
the queries read (the audit index, release status, DORA facts and rollups, bottleneck timings and checks) is
written here, a chunk of records at a time in log order, with `projection_cursor` (the seq they are up to)
moved in the same transaction: each record is projected exactly once, and a crash resumes at the cursor.

Why not in the append's own transaction, as before: the projections cost three times what the chain does,
so the log took events at a third of the rate it can; and a fault in a projection (a bug meeting an event it
did not expect) failed the append, so the audit trail itself refused the event. Now the trail keeps every
event whatever happens to a read model; a projection that fails is retried here, with the error logged.

Queries stay exact: each first waits until the projections reach the record that was the log's head when it
was asked (`caught_up`), so a reader never sees the log without what it already holds. During a flood the
projector gives way to the append while the intake has a backlog, but never for longer than MAX_LAG_S at a
time; a waiting query, or an idle intake, has it run at once.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from pydantic import BaseModel

from sqlalchemy import Column, Integer, String, Table, select, text

from contracts.commands import CommandResult
from services.metrics_collector import audit_rules, domain
from services.metrics_collector.audit_handlers import index_records
from services.metrics_collector.audit_store import AuditIndex
from services.metrics_collector.bottleneck_domain import EVIDENCE
from services.metrics_collector.bottlenecks import BottleneckStore
from services.metrics_collector.projections import Projections
from services.metrics_collector.store import EventLog, metadata

log = logging.getLogger("slipway.metrics_collector")

CHUNK = 500  # records projected per transaction: long enough to amortise, short enough not to hold appends up
MAX_LAG_S = 1.0  # a backlog at the intake defers the projections at most this long at a time
RETRY_S = (1.0, 30.0)  # after a failed chunk: first wait, longest wait
QUERY_WAIT_S = 10.0  # a query waits this long at most for the projections to reach it, then answers with a note
CURSOR = "projections"

projection_cursor = Table(
    "projection_cursor",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("seq", Integer, nullable=False),  # every record up to this seq is in every read model
)
_MOVE = text("INSERT INTO projection_cursor (name, seq) VALUES (:name, :seq) "
             "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq")

Transaction = Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]
Q = TypeVar("Q", bound=BaseModel)


async def cursor_of(session: Any) -> int:
    return int(await session.scalar(select(projection_cursor.c.seq).where(projection_cursor.c.name == CURSOR)) or 0)


async def move_cursor(session: Any, seq: int) -> None:
    await session.execute(_MOVE, {"name": CURSOR, "seq": seq})


async def project_next(session: Any, limit: int = CHUNK) -> int:
    """Project the records after the cursor, up to `limit`, and move it past them; returns where it stands."""
    cursor = await cursor_of(session)
    entries = EventLog(session)
    records = await entries.records_after(cursor, limit)
    if not records:
        return cursor
    payloads = [audit_rules.payload_of(r["payload"]) for r in records]
    # The record's own type wins over its payload: it is what the log filed it under.
    await index_records(AuditIndex(session), records, [p | {"type": r["type"]} for r, p in zip(records, payloads)])
    # Only a release's own, unflagged events move its projections.
    unflagged = [p for r, p in zip(records, payloads) if r["flag"] is None]
    releases = {str(p["release_id"]) for p in unflagged if p.get("release_id")}
    facts_of = {str(p["release_id"]) for p in unflagged if p.get("release_id") and p.get("type") in domain.FACT_TYPES}
    # A release the log had not named before this chunk: its history so far is this chunk's events of it.
    known = await entries.known_releases(releases, upto=cursor)
    new: dict[str, list[dict[str, Any]]] = {}
    for p in unflagged:
        if (release_id := p.get("release_id")) and release_id not in known:
            new.setdefault(str(release_id), []).append(p)
    await Projections(session).refresh(releases, facts_of, new)
    await BottleneckStore(session).record_evidence(p for p in unflagged if p.get("type") == EVIDENCE)
    reached = int(records[-1]["seq"])
    await move_cursor(session, reached)
    return reached


class Projector:
    """Keeps the read models up with the log in the background, and lets queries wait for them."""

    def __init__(self, transaction: Transaction, lock: asyncio.Lock, intake_backlog: Callable[[], bool]) -> None:
        self.transaction, self.lock, self.intake_backlog = transaction, lock, intake_backlog
        self.cursor = self.head = 0
        self._moved = asyncio.Condition()
        self._nudged = asyncio.Event()
        self._waiting = 0  # queries waiting for the projections to reach them
        self._behind_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.failing: str | None = None  # the last chunk's error, while the projector is retrying it

    async def start(self, head: int) -> None:
        self.head = head
        self.cursor = await self.transaction(cursor_of)
        self._stopping.clear()
        self._task = asyncio.create_task(self._follow(), name="projector")

    async def stop(self) -> None:
        """Stop after the chunk in hand (its transaction commits or rolls back whole); the cursor says where."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._nudged.set()
        with suppress(asyncio.CancelledError):
            await task

    def appended(self, head: int) -> None:
        """The log's head moved to `head` (a committed append)."""
        if head > self.head:
            if self.cursor >= self.head:
                self._behind_since = time.monotonic()
            self.head = head
            self._nudged.set()

    async def caught_up(self, timeout: float) -> int:
        """Wait until the projections hold every record the log held when asked; how many they still lack when
        `timeout` ran out first (0 when they are up to date)."""
        target = self.head
        if self.cursor >= target:
            return 0
        if self.failing is not None:  # waiting would only make every query as slow as the timeout
            return target - self.cursor
        self._waiting += 1
        self._nudged.set()
        try:
            async with self._moved:  # until they get there, or projecting fails
                await asyncio.wait_for(self._moved.wait_for(lambda: self.cursor >= target or self.failing is not None),
                                       timeout)
        except TimeoutError:
            pass
        finally:
            self._waiting -= 1
        return max(0, target - self.cursor)

    async def catch_up(self) -> int:
        """Project everything now, whatever the intake is doing (tests drive it so); returns the cursor."""
        while True:
            async with self.lock:
                reached = await self.transaction(project_next)
            moved = reached != self.cursor
            await self._advance(reached)
            if not moved:
                return reached

    async def _advance(self, reached: int) -> None:
        self.cursor = reached
        self.head = max(self.head, reached)
        self._behind_since = time.monotonic() if reached < self.head else None
        async with self._moved:
            self._moved.notify_all()

    def _defer_for(self) -> float:
        """How long to give way to the intake still (0: project now)."""
        if self._waiting or not self.intake_backlog() or self._behind_since is None:
            return 0.0
        return max(0.0, MAX_LAG_S - (time.monotonic() - self._behind_since))

    async def _follow(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self.cursor >= self.head or (wait := self._defer_for()) > 0:
                self._nudged.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), None if self.cursor >= self.head else wait)
                continue
            try:
                async with self.lock:
                    reached = await self.transaction(project_next)
            except Exception as exc:  # noqa: BLE001 - the log is safe; the read models wait for the fault to be fixed
                failures, self.failing = failures + 1, f"{type(exc).__name__}: {exc}"
                pause = min(RETRY_S[1], RETRY_S[0] * 2 ** (failures - 1))
                log.exception("projecting the records after seq %d failed (%d in a row); trying again in %.0f s",
                              self.cursor, failures, pause)
                async with self._moved:  # queries waiting for them answer now, saying so
                    self._moved.notify_all()
                with suppress(TimeoutError):  # appends go on meanwhile: their nudges do not cut the pause short
                    await asyncio.wait_for(self._stopping.wait(), pause)
                continue
            failures, self.failing = 0, None
            await self._advance(reached)


def up_to_date(projector: Projector, answer: Callable[[Q], Awaitable[CommandResult]]
               ) -> Callable[[Q], Awaitable[CommandResult]]:
    """`answer` once the projections hold what the log held when the query came; said in the reply when they
    could not catch up within QUERY_WAIT_S (a flood far ahead of them), or at once while projecting fails."""
    async def answered(query: Q) -> CommandResult:
        behind = await projector.caught_up(QUERY_WAIT_S)
        result = await answer(query)
        if behind:
            note = f"not counted yet: the last {behind} events logged, which the projections are still catching up on"
            if projector.failing is not None:
                note += f"; projecting them fails ({projector.failing[:200]}), see the metrics-collector's log"
            result = result.model_copy(update={"message": f"{result.message} ({note})"})
        return result

    return answered
