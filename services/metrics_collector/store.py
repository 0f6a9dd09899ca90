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

Not every event is about a release (freezes, incidents, policy reloads): `release_id`, `service`
and `environment` may be NULL in a log created by this version. A log created before keeps its
NOT NULL columns (create_all never alters a table); there an event without them is stored with
empty strings, which the projections treat as "no release" just like NULL.
"""

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, MetaData, Select, String, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime

from services.metrics_collector.domain import GENESIS_HASH
from services.metrics_collector.inline_writer import InlineSession, bind_marks, insert_rows

NAME = "metrics-collector"  # the service, its database and its durables are named after it
metadata = MetaData()

event_log = Table(
    "event_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(100), nullable=False, index=True),
    Column("subject", String(300), nullable=False),
    Column("release_id", String(128), nullable=True, index=True),
    Column("service", String(63), nullable=True),
    Column("environment", String(63), nullable=True),
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


Row = dict[str, Any]


class EventLog:
    """Reads and appends on the event log, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record; (0, genesis) for an empty log."""
        if isinstance(self.session, InlineSession):  # once per append: the driver's SQL, not SQLAlchemy's round
            rows = self.session.driver_rows("SELECT seq, hash FROM event_log ORDER BY seq DESC LIMIT 1", [])
            return (rows[0][0], rows[0][1]) if rows else (0, GENESIS_HASH)
        found = (await self.session.execute(
            select(event_log.c.seq, event_log.c.hash).order_by(event_log.c.seq.desc()).limit(1))).first()
        return (found.seq, found.hash) if found else (0, GENESIS_HASH)

    async def logged(self, event_ids: Iterable[str]) -> set[str]:
        """Which of `event_ids` are in the log already."""
        if isinstance(self.session, InlineSession):
            ids = list(event_ids)
            sql = f"SELECT event_id FROM event_log WHERE event_id IN ({bind_marks(ids)})"
            return {row[0] for row in self.session.driver_rows(sql, ids)} if ids else set()
        found = await self.session.scalars(select(event_log.c.event_id).where(event_log.c.event_id.in_(list(event_ids))))
        return set(found)

    async def known_releases(self, release_ids: Iterable[str], upto: int) -> set[str]:
        """Which of these releases the log named (flagged or not) in its records up to seq `upto`."""
        ids = sorted({r for r in release_ids if r})
        if not ids:
            return set()
        if isinstance(self.session, InlineSession):
            sql = f"SELECT DISTINCT release_id FROM event_log WHERE release_id IN ({bind_marks(ids)}) AND seq <= ?"
            return {row[0] for row in self.session.driver_rows(sql, [*ids, upto])}
        return set(await self.session.scalars(select(event_log.c.release_id).distinct().where(
            event_log.c.release_id.in_(ids), event_log.c.seq <= upto)))

    async def records_after(self, after: int, limit: int) -> list[Row]:
        """Up to `limit` records after seq `after`, in log order, each with its flag (None when unflagged)."""
        log = event_log.c
        query = (select(log.seq, log.type, log.occurred_at, log.payload, event_flags.c.reason.label("flag"))
                 .select_from(event_log.outerjoin(event_flags, event_flags.c.seq == log.seq))
                 .where(log.seq > after).order_by(log.seq).limit(limit))
        return [dict(r._mapping) for r in await self.session.execute(query)]

    async def append(self, rows: list[Row], flags: list[tuple[int, str]]) -> None:
        """Append records (each with its seq, so a flag can name it) and the flags on them, in one go."""
        await insert_rows(self.session, event_log, rows)
        await insert_rows(self.session, event_flags, [{"seq": seq, "reason": why} for seq, why in flags])

    async def flagged(self, limit: int) -> list[tuple[int, str]]:
        """(seq, reason) of the newest `limit` flagged records, newest first."""
        query = select(event_flags.c.seq, event_flags.c.reason).order_by(event_flags.c.seq.desc()).limit(limit)
        return [(r.seq, r.reason) for r in await self.session.execute(query)]

    async def flagged_count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(event_flags)) or 0)

    def _unflagged(self) -> Select[tuple[str]]:
        joined = event_log.outerjoin(event_flags, event_flags.c.seq == event_log.c.seq)
        return select(event_log.c.payload).select_from(joined).where(event_flags.c.seq.is_(None))

    async def histories(self, release_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The unflagged payloads of each release, in log order (a release's events, not the whole log)."""
        found: dict[str, list[dict[str, Any]]] = {}
        query = self._unflagged().add_columns(event_log.c.release_id).order_by(event_log.c.seq)
        for payload, release_id in await self.session.execute(query.where(event_log.c.release_id.in_(list(release_ids)))):
            found.setdefault(release_id, []).append(json.loads(payload))
        return found

    async def release_ids(self, after: str, limit: int) -> list[str]:
        """Release ids named in the log, in order, after `after`: a rebuild walks them a chunk at a time."""
        query = (select(event_log.c.release_id).distinct().where(event_log.c.release_id > after)
                 .order_by(event_log.c.release_id).limit(limit))
        return list(await self.session.scalars(query))

    async def history_page(self, release_id: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(how many unflagged events the release has, one page of them in the order they happened)."""
        mine = self._unflagged().where(event_log.c.release_id == release_id)
        total = int(await self.session.scalar(select(func.count()).select_from(mine.subquery())) or 0)
        page = mine.order_by(event_log.c.occurred_at, event_log.c.seq).offset(offset).limit(limit)
        return total, [json.loads(payload) for payload in await self.session.scalars(page)]
