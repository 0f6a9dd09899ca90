"""Beside the hash chain: an index of each record's filterable fields, and the signed checkpoints.

`audit_index` holds, per logged record (its seq), the fields `audit show` filters on, each indexed
together with seq, so a filtered page reads index ranges in log order instead of the log. It is a
projection: written by the projector as it follows the log (projector.py), filled from the log for records
logged before it existed (`index_backlog`), outside the chain (the chain covers exactly what was sent).

`audit_checkpoints` holds what the collector signed about its own log every N records and on demand:
the seq, that record's chain hash and how many records there were up to it, with its key. A
verification trusts the log up to the newest checkpoint whose signature, hash and count still hold.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.audit_queries import AuditFilter
from libs.store import UtcDateTime
from services.metrics_collector import audit_plan, audit_search
from services.metrics_collector.store import event_flags, event_log, metadata
from services.metrics_collector.inline_writer import InlineSession, bind_marks, insert_rows

audit_index = Table(
    "audit_index",
    metadata,
    # No foreign key to event_log: a projection follows the log, it never holds the log's rows in place (an
    # auditor's tampering tests, and a rebuild, delete and rewrite records freely).
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("type", String(100), nullable=False),
    Column("release_id", String(128), nullable=True),
    Column("service", String(63), nullable=True),
    Column("environment", String(63), nullable=True),
    Column("team", String(63), nullable=True),
    Column("actor", String(200), nullable=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    # Each filter with the type, then seq: a page of one filter, or of one filter and one type (the question
    # asked most: a team's verdicts, a release's approvals), is a range of one index, already in log order, and
    # counting it reads that range alone, never the table; so it costs the same at any log size. The event time
    # rides last, so a time range is checked within the range walked, not by looking each row up (revision 0010).
    Index("ix_audit_release_type", "release_id", "type", "seq", "occurred_at"),
    Index("ix_audit_service_type", "service", "type", "seq", "occurred_at"),
    Index("ix_audit_environment_type", "environment", "type", "seq", "occurred_at"),
    Index("ix_audit_team_type", "team", "type", "seq", "occurred_at"),
    Index("ix_audit_actor_type", "actor", "type", "seq", "occurred_at"),
    Index("ix_audit_type", "type", "seq", "occurred_at"),
    Index("ix_audit_occurred", "occurred_at", "seq"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # the log's seq it covers, not a counter
    Column("hash", String(64), nullable=False),
    Column("records", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("signer", String(200), nullable=False),
    Column("signature", String(100), nullable=False),
)

Row = dict[str, Any]


class AuditIndex:
    """The filterable fields of logged records, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rows: list[Row]) -> None:
        await insert_rows(self.session, audit_index, rows)

    async def teams_of(self, release_ids: Iterable[str]) -> dict[str, str]:
        """The team the log already names for each release (the first record that named one)."""
        ids = sorted({r for r in release_ids if r})
        if not ids:
            return {}
        if isinstance(self.session, InlineSession):
            sql = (f"SELECT release_id, min(team) FROM audit_index WHERE release_id IN ({bind_marks(ids)}) "
                   "AND team IS NOT NULL GROUP BY release_id")
            return dict(self.session.driver_rows(sql, ids))
        query = (select(audit_index.c.release_id, func.min(audit_index.c.team))
                 .where(audit_index.c.release_id.in_(ids), audit_index.c.team.is_not(None))
                 .group_by(audit_index.c.release_id))
        return {release_id: team for release_id, team in await self.session.execute(query)}

    async def newest_seq(self) -> int:
        return int(await self.session.scalar(select(func.max(audit_index.c.seq))) or 0)

    async def type_known(self, kind: str) -> bool:
        found = await self.session.scalar(select(audit_index.c.seq).where(audit_index.c.type == kind).limit(1))
        return found is not None

    async def sizes(self, wanted: AuditFilter) -> dict[str, int]:
        """How many entries (up to audit_plan.SIZE_PROBE) each range the filter could be read from holds: what
        `count` and `page` choose their walk by (empty when there is one way to read it, or no choice to make)."""
        if not self._planned():
            return {}
        ranges = audit_plan.to_size(audit_plan.shape_of(wanted))
        return await audit_search.sizes(self.session, audit_index, wanted, ranges)

    async def count(self, wanted: AuditFilter, cap: int, sizes: dict[str, int] | None = None) -> int:
        """Matching records, counted up to `cap` + 1 (so the caller can tell there are more than `cap`)."""
        if not self._planned():
            return await audit_search.plain_count(self.session, audit_index, wanted, cap)
        sizes = await self.sizes(wanted) if sizes is None else sizes
        asked = audit_plan.shape_of(wanted)
        walk = audit_plan.count_walk(asked, sizes)
        merge = audit_plan.merged(asked, walk, sizes)
        return await audit_search.count(self.session, audit_index, wanted, walk, cap, merge)

    async def page(self, wanted: AuditFilter, *, after: int | None, offset: int, limit: int,
                   sizes: dict[str, int] | None = None) -> list[Row]:
        """Matching records in log order with their payload, hash and flag: after the seq `after`, else from `offset`."""
        after, offset = (after, 0) if after is not None else (0, offset)
        if not self._planned():
            return await self.rows(await audit_search.plain_page(self.session, audit_index, wanted, after=after,
                                                                 offset=offset, limit=limit))
        sizes = await self.sizes(wanted) if sizes is None else sizes
        asked = audit_plan.shape_of(wanted)
        walk = audit_plan.page_walk(asked, sizes)
        seqs = await audit_search.page(self.session, audit_index, wanted, walk, after=after, offset=offset, limit=limit,
                                       merge=audit_plan.merged(asked, walk, sizes))
        return await self.rows(seqs)

    def _planned(self) -> bool:
        """SQLite plans without statistics (audit_plan chooses for it); PostgreSQL keeps statistics and plans the
        plain statement itself, combining the indexes (the inline session is SQLite's alone)."""
        return isinstance(self.session, InlineSession) or self.session.bind.dialect.name == "sqlite"

    async def rows(self, seqs: list[int]) -> list[Row]:
        """The records at `seqs`, in log order, with what a page shows of each."""
        if not seqs:
            return []
        i, log = audit_index.c, event_log.c
        joined = audit_index.join(event_log, log.seq == i.seq).outerjoin(event_flags, event_flags.c.seq == i.seq)
        query = select(i.seq, log.event_id, i.type, log.subject, i.occurred_at, log.recorded_at, i.release_id,
                       i.service, i.environment, i.team, i.actor, event_flags.c.reason.label("flag"), log.hash,
                       log.prev_hash, log.payload).select_from(joined).where(i.seq.in_(seqs)).order_by(i.seq)
        return [dict(r._mapping) for r in await self.session.execute(query)]

    async def unindexed(self, after: int, limit: int) -> list[Row]:
        """Logged records after `after` with what the index needs, for a backfill."""
        log = event_log.c
        query = (select(log.seq, log.type, log.release_id, log.service, log.environment, log.occurred_at, log.payload)
                 .where(log.seq > after).order_by(log.seq).limit(limit))
        return [dict(r._mapping) for r in await self.session.execute(query)]


class Checkpoints:
    """The signed checkpoints, and the few reads of the log a verification needs, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Row) -> None:
        await self.session.execute(audit_checkpoints.insert(), [row])

    async def newest_seq(self) -> int:
        return int(await self.session.scalar(select(func.max(audit_checkpoints.c.seq))) or 0)

    async def all(self) -> list[Row]:
        """Every checkpoint, newest first (a hundred at a million records)."""
        query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc())
        return [dict(r._mapping) for r in await self.session.execute(query)]

    async def hashes_at(self, seqs: Iterable[int]) -> dict[int, str]:
        wanted = sorted(set(seqs))
        if not wanted:
            return {}
        query = select(event_log.c.seq, event_log.c.hash).where(event_log.c.seq.in_(wanted))
        return {seq: digest for seq, digest in await self.session.execute(query)}

    async def records(self) -> int:
        # Counted over the narrowest index, not the table's pages, which hold the payloads.
        return int(await self.session.scalar(select(func.count()).select_from(event_log)) or 0)

    async def records_upto(self, seq: int, records: int | None = None) -> int:
        """Records up to seq: all of them (`records` when the caller counted already) less the few after seq."""
        everything = await self.records() if records is None else records
        after = int(await self.session.scalar(select(func.count()).select_from(event_log).where(event_log.c.seq > seq)) or 0)
        return everything - after

    async def first_gap(self, upto: int) -> int | None:
        """The first seq up to `upto` with no record (a deleted one), or None."""
        if await self.session.scalar(select(event_log.c.seq).where(event_log.c.seq == 1)) is None:
            return 1
        after = event_log.alias("after")
        query = (select(event_log.c.seq + 1).where(event_log.c.seq < upto)
                 .where(~select(after.c.seq).where(after.c.seq == event_log.c.seq + 1).exists())
                 .order_by(event_log.c.seq).limit(1))
        return await self.session.scalar(query)

    async def chain_after(self, after: int, upto: int | None, limit: int) -> list[tuple[int, str, str, str]]:
        """(seq, payload, prev_hash, hash) of up to `limit` records after `after` (and up to `upto`), in order."""
        query = select(event_log.c.seq, event_log.c.payload, event_log.c.prev_hash, event_log.c.hash).where(
            event_log.c.seq > after)
        if upto is not None:
            query = query.where(event_log.c.seq <= upto)
        rows = await self.session.execute(query.order_by(event_log.c.seq).limit(limit))
        return [(r.seq, r.payload, r.prev_hash, r.hash) for r in rows]
