"""Read models beside the log, so that no query reads the whole log.

- `release_status`: one row per release, where it stands (what `slipway status` lists), and `release_count`,
  how many rows it has.
- the DORA facts, their daily sums and duration histograms (dora_projection), for the releases
  that got an event of a type the facts are made of.

They are written in the transaction that appends the events they come from, by recomputing each
touched release from its own events (a release has tens of events, the log millions). So the
projections are a function of the log alone, and `rebuild()` recomputing every release gives the
same rows as appending did.
"""

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, Text, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime
from services.metrics_collector import domain
from services.metrics_collector.bottlenecks import BottleneckStore
from services.metrics_collector.dora_projection import DoraProjection
from services.metrics_collector.store import EventLog, metadata
from services.metrics_collector.inline_writer import insert_rows

release_status = Table(
    "release_status",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("service", String(63), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("team", String(63), nullable=True),
    Column("version", String(128), nullable=False),
    Column("state", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("last_event", String(100), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False, index=True),
    Column("events", Integer, nullable=False),
    # A team's page newest first (`status --team`, a team-scoped dashboard reader) reads this index alone.
    Index("ix_release_status_team", "team", "updated_at"),
)

# How many rows release_status has, kept beside it: `status` reports the total, which a count of the table
# would find by reading an index entry per release (1.6 ms at 125,000 releases, growing with them).
release_count = Table(
    "release_count",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # 1, the only row
    Column("releases", Integer, nullable=False),
)
_MOVE_COUNT = text("INSERT INTO release_count (id, releases) VALUES (1, :moved) "
                   "ON CONFLICT (id) DO UPDATE SET releases = release_count.releases + excluded.releases")

REBUILD_CHUNK = 2000  # releases recomputed per step of a rebuild


class Projections:
    """Keeps and reads the projections, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def refresh(self, release_ids: Iterable[str], facts_of: Iterable[str] = (),
                      new: Mapping[str, list[dict[str, Any]]] | None = None) -> None:
        """Recompute the rows of these releases from their logged events; their DORA facts too for those in
        `facts_of` (the releases that got an event of a type the facts are made of, domain.FACT_TYPES).

        `new`: the unflagged payloads, in log order, of releases the log did not name before this append: their
        whole history is at hand and they have no rows yet, so nothing is read back or deleted for them.
        """
        ids = sorted({r for r in release_ids if r})
        if not ids:
            return
        new = new or {}
        known = [r for r in ids if r not in new]
        histories = await EventLog(self.session).histories(known) if known else {}
        histories.update((r, new[r]) for r in ids if r in new)
        deleted = 0
        if known:
            deleted = (await self.session.execute(
                delete(release_status).where(release_status.c.release_id.in_(known)))).rowcount
        states = [_status_row(s) for s in domain.release_states(e for history in histories.values() for e in history)]
        await insert_rows(self.session, release_status, states)
        if moved := len(states) - deleted:
            await self.session.execute(_MOVE_COUNT, {"moved": moved})
        await BottleneckStore(self.session).refresh(histories, new=new.keys())
        if facts := sorted({r for r in facts_of if r}):
            await DoraProjection(self.session).refresh({r: histories.get(r, []) for r in facts}, new=new.keys())

    async def rebuild(self) -> int:
        """Recompute every projection from the log; returns how many releases it holds."""
        await self.session.execute(delete(release_status))
        await self.session.execute(delete(release_count))
        await DoraProjection(self.session).clear()
        await BottleneckStore(self.session).clear()
        log, after, seen = EventLog(self.session), "", 0
        while chunk := await log.release_ids(after, REBUILD_CHUNK):
            await self.refresh(chunk, facts_of=chunk)
            after, seen = chunk[-1], seen + len(chunk)
        await BottleneckStore(self.session).rebuild_evidence()
        return seen

    # --- reading -----------------------------------------------------------------------------

    async def empty(self) -> bool:
        return await self.session.scalar(select(release_status.c.release_id).limit(1)) is None

    async def releases(self, offset: int, limit: int,
                       teams: Collection[str] | None = None) -> tuple[int, list[dict[str, Any]]]:
        """(how many releases there are, one page of them, newest first); of `teams` only, when given."""
        where = [release_status.c.team.in_(sorted(teams))] if teams is not None else []
        # Everyone's from the kept count; some teams' from their index (ix_release_status_team).
        counted = select(func.count()).select_from(release_status).where(*where) if where else select(
            release_count.c.releases)
        total = int(await self.session.scalar(counted) or 0)
        query = (select(release_status).where(*where)
                 .order_by(release_status.c.updated_at.desc(), release_status.c.release_id)
                 .offset(offset).limit(limit))
        return total, [dict(r._mapping) for r in await self.session.execute(query)]

    async def release(self, release_id: str) -> dict[str, Any] | None:
        found = (await self.session.execute(
            select(release_status).where(release_status.c.release_id == release_id))).first()
        return dict(found._mapping) if found else None


def _status_row(state: domain.ReleaseState) -> dict[str, Any]:
    return {"release_id": state.release_id, "service": state.service, "environment": state.environment,
            "team": state.team, "version": state.version, "state": state.state, "reason": state.reason,
            "last_event": state.last_event, "updated_at": state.updated_at, "events": state.events}
