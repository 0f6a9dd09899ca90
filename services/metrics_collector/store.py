"""The collector's own data: the append-only, hash-chained event log (the audit trail).

Rows are only ever inserted. Each row's hash covers the previous row's hash and its own
canonical payload, so editing, deleting or reordering a row breaks the chain from there on.
`prev_hash` is unique: two writers that both read the same chain head cannot both commit, the
loser's transaction fails and its message is redelivered against the new head. The chain is
meant to be written by one collector replica at a time (SQLite serialises writers anyway); the
constraint turns a second concurrent writer into retries instead of a forked chain.

`event_flags` names the records the log cannot vouch for (an undeclared type, a payload that
does not validate as its type, a wrong subject), with the reason. It is a table of its own, not a
column, so an event_log created before flags existed keeps working: `metadata.create_all` adds
the new table and never alters an existing one. Flags sit outside the chain, which covers exactly
what was sent; they are written in the same transaction as the record they flag.
"""

import json
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime

from services.metrics_collector.domain import GENESIS_HASH, ChainRecord

metadata = MetaData()

event_log = Table(
    "event_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(100), nullable=False, index=True),
    Column("subject", String(300), nullable=False),
    Column("release_id", String(128), nullable=False, index=True),
    Column("service", String(63), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False),
)

event_flags = Table(
    "event_flags",
    metadata,
    Column("seq", Integer, ForeignKey("event_log.seq"), primary_key=True),
    Column("reason", Text, nullable=False),
)


class EventLog:
    """Reads and appends on the event log, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def head_hash(self) -> str:
        found = await self.session.scalar(select(event_log.c.hash).order_by(event_log.c.seq.desc()).limit(1))
        return found or GENESIS_HASH

    async def append(self, flag: str | None = None, **row: Any) -> int:
        """Append one record (and its flag, if any); returns its seq."""
        result = await self.session.execute(event_log.insert().values(**row))
        seq = int(result.inserted_primary_key[0])
        if flag is not None:
            await self.session.execute(event_flags.insert().values(seq=seq, reason=flag))
        return seq

    async def flagged(self, limit: int) -> list[tuple[int, str]]:
        """(seq, reason) of the newest `limit` flagged records, newest first."""
        query = select(event_flags.c.seq, event_flags.c.reason).order_by(event_flags.c.seq.desc()).limit(limit)
        return [(r.seq, r.reason) for r in await self.session.execute(query)]

    async def flagged_count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(event_flags)) or 0)

    async def chain(self) -> list[ChainRecord]:
        # The whole log, in chain order: verification has to look at every row anyway.
        rows = await self.session.execute(
            select(event_log.c.seq, event_log.c.payload, event_log.c.prev_hash, event_log.c.hash).order_by(
                event_log.c.seq
            )
        )
        return [(r.seq, r.payload, r.prev_hash, r.hash) for r in rows]

    async def payloads(self, release_id: str | None = None) -> list[dict[str, Any]]:
        """Logged payloads in log order, flagged ones left out; all of them unless one release is asked for.

        Reports load every row and aggregate in memory, which is fine for thousands of events; a
        larger log wants per-release summary tables updated on append.
        """
        unflagged = event_log.outerjoin(event_flags, event_flags.c.seq == event_log.c.seq)
        query = select(event_log.c.payload).select_from(unflagged).where(event_flags.c.seq.is_(None))
        query = query.order_by(event_log.c.seq)
        if release_id is not None:
            query = query.where(event_log.c.release_id == release_id)
        return [json.loads(payload) for payload in await self.session.scalars(query)]
