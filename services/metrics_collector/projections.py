"""Read models beside the log, so that no query reads the whole log.

- `release_status`: one row per release, where it stands (what `slipway status` lists).
- `dora_facts`: each release's deployments, changes and restores (domain.release_facts), with
  their day; the samples medians are taken from.
- `dora_daily`: the facts summed per service, environment and UTC day; DORA counts and sums
  read these rows, a few per day of the window, however long the log is.

They are written in the transaction that appends the events they come from, by recomputing each
touched release from its own events (a release has tens of events, the log millions). So the
projections are a function of the log alone, and `rebuild()` recomputing every release gives the
same rows as appending did.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (Boolean, Column, Date, Float, Index, Integer, String, Table, Text, case, delete, func, select,
                        tuple_)
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime
from services.metrics_collector import domain
from services.metrics_collector.bottlenecks import BottleneckStore
from services.metrics_collector.store import EventLog, metadata

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
)

dora_facts = Table(
    "dora_facts",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("n", Integer, primary_key=True),  # the fact's place among its release's facts
    Column("kind", String(20), nullable=False),
    Column("service", String(63), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("day", Date, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("seconds", Float, nullable=True),
    Column("failed", Boolean, nullable=False),
    Index("ix_dora_facts_day", "day", "kind"),
    Index("ix_dora_facts_scope", "service", "environment", "day"),
)

dora_daily = Table(
    "dora_daily",
    metadata,
    Column("service", String(63), primary_key=True),
    Column("environment", String(63), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("deployments", Integer, nullable=False),
    Column("changes", Integer, nullable=False),
    Column("failed_changes", Integer, nullable=False),
    Column("lead_times", Integer, nullable=False),
    Column("lead_time_sum_s", Float, nullable=False),
    Column("restores", Integer, nullable=False),
    Column("restore_sum_s", Float, nullable=False),
    Index("ix_dora_daily_day", "day"),
)

REBUILD_CHUNK = 500  # releases recomputed per step of a rebuild


@dataclass(frozen=True)
class DoraTotals:
    deployments: int = 0
    changes: int = 0
    failed_changes: int = 0
    lead_times: int = 0
    lead_time_sum_s: float = 0.0
    restores: int = 0
    restore_sum_s: float = 0.0


class Projections:
    """Keeps and reads the projections, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def refresh(self, release_ids: Iterable[str], facts_of: Iterable[str] = ()) -> None:
        """Recompute the rows of these releases from their logged events; their DORA facts too for those in
        `facts_of` (the releases that got an event of a type the facts are made of, domain.FACT_TYPES)."""
        ids = sorted({r for r in release_ids if r})
        if not ids:
            return
        histories = await EventLog(self.session).histories(ids)
        await self.session.execute(delete(release_status).where(release_status.c.release_id.in_(ids)))
        states = [_status_row(s) for s in domain.release_states(e for history in histories.values() for e in history)]
        if states:
            await self.session.execute(release_status.insert(), states)
        await BottleneckStore(self.session).refresh(histories)
        if facts := sorted({r for r in facts_of if r}):
            await self._refresh_facts({r: histories.get(r, []) for r in facts})

    async def _refresh_facts(self, histories: dict[str, list[dict[str, Any]]]) -> None:
        ids = list(histories)
        old_days = await self._fact_days(ids)
        await self.session.execute(delete(dora_facts).where(dora_facts.c.release_id.in_(ids)))
        facts = [row for release_id, history in histories.items() if history for row in _fact_rows(release_id, history)]
        if facts:
            await self.session.execute(dora_facts.insert(), facts)
        await self._sum_days(old_days | {(f["service"], f["environment"], f["day"]) for f in facts})

    async def rebuild(self) -> int:
        """Recompute every projection from the log; returns how many releases it holds."""
        for table in (release_status, dora_facts, dora_daily):
            await self.session.execute(delete(table))
        await BottleneckStore(self.session).clear()
        log, after, seen = EventLog(self.session), "", 0
        while chunk := await log.release_ids(after, REBUILD_CHUNK):
            await self.refresh(chunk, facts_of=chunk)
            after, seen = chunk[-1], seen + len(chunk)
        await BottleneckStore(self.session).rebuild_evidence()
        return seen

    async def _fact_days(self, release_ids: Sequence[str]) -> set[tuple[str, str, date]]:
        query = select(dora_facts.c.service, dora_facts.c.environment, dora_facts.c.day).where(
            dora_facts.c.release_id.in_(release_ids))
        return {(r.service, r.environment, r.day) for r in await self.session.execute(query)}

    async def _sum_days(self, days: set[tuple[str, str, date]]) -> None:
        """Re-add the daily rows of these (service, environment, day) from their facts."""
        if not days:
            return
        keys = sorted(days)
        scope = tuple_(dora_facts.c.service, dora_facts.c.environment, dora_facts.c.day).in_(keys)
        await self.session.execute(delete(dora_daily).where(
            tuple_(dora_daily.c.service, dora_daily.c.environment, dora_daily.c.day).in_(keys)))
        f = dora_facts.c

        def count(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        def total(kind: str) -> Any:
            return func.coalesce(func.sum(case((f.kind == kind, f.seconds), else_=None)), 0.0)

        query = select(
            f.service, f.environment, f.day, count(f.kind == domain.DEPLOYMENT).label("deployments"),
            count(f.kind == domain.CHANGE).label("changes"),
            count((f.kind == domain.CHANGE) & f.failed).label("failed_changes"),
            count((f.kind == domain.DEPLOYMENT) & f.seconds.is_not(None)).label("lead_times"),
            total(domain.DEPLOYMENT).label("lead_time_sum_s"),
            count((f.kind == domain.RESTORE) & f.seconds.is_not(None)).label("restores"),
            total(domain.RESTORE).label("restore_sum_s"),
        ).where(scope).group_by(f.service, f.environment, f.day)
        rows = [dict(r._mapping) for r in await self.session.execute(query)]
        if rows:
            await self.session.execute(dora_daily.insert(), rows)

    # --- reading -----------------------------------------------------------------------------

    async def empty(self) -> bool:
        return await self.session.scalar(select(release_status.c.release_id).limit(1)) is None

    async def releases(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(how many releases there are, one page of them, newest first)."""
        total = int(await self.session.scalar(select(func.count()).select_from(release_status)) or 0)
        query = (select(release_status).order_by(release_status.c.updated_at.desc(), release_status.c.release_id)
                 .offset(offset).limit(limit))
        return total, [dict(r._mapping) for r in await self.session.execute(query)]

    async def release(self, release_id: str) -> dict[str, Any] | None:
        found = (await self.session.execute(
            select(release_status).where(release_status.c.release_id == release_id))).first()
        return dict(found._mapping) if found else None

    async def dora_totals(self, first: date, last: date, service: str | None, environment: str | None) -> DoraTotals:
        d = dora_daily.c
        query = select(*(func.coalesce(func.sum(c), 0) for c in (
            d.deployments, d.changes, d.failed_changes, d.lead_times, d.lead_time_sum_s, d.restores, d.restore_sum_s)))
        query = _scoped(query.where(d.day >= first, d.day <= last), d, service, environment)
        row = (await self.session.execute(query)).one()
        return DoraTotals(int(row[0]), int(row[1]), int(row[2]), int(row[3]), float(row[4]), int(row[5]), float(row[6]))

    async def durations(self, kind: str, first: date, last: date, service: str | None,
                        environment: str | None) -> list[float]:
        """The seconds of every timed fact of `kind` in the window (what percentiles are taken over)."""
        f = dora_facts.c
        query = select(f.seconds).where(f.kind == kind, f.seconds.is_not(None), f.day >= first, f.day <= last)
        return list(await self.session.scalars(_scoped(query, f, service, environment)))

    async def newest(self, kind: str, first: date, last: date, service: str | None, environment: str | None,
                     limit: int) -> list[tuple[str, float]]:
        """(release_id, seconds) of the newest `limit` timed facts of `kind` in the window, oldest of them first."""
        f = dora_facts.c
        query = select(f.release_id, f.seconds).where(
            f.kind == kind, f.seconds.is_not(None), f.day >= first, f.day <= last)
        query = _scoped(query, f, service, environment).order_by(f.at.desc(), f.release_id.desc()).limit(limit)
        return [(r.release_id, r.seconds) for r in reversed((await self.session.execute(query)).all())]


def _scoped(query: Any, columns: Any, service: str | None, environment: str | None) -> Any:
    if service is not None:
        query = query.where(columns.service == service)
    if environment is not None:
        query = query.where(columns.environment == environment)
    return query


def _status_row(state: domain.ReleaseState) -> dict[str, Any]:
    return {"release_id": state.release_id, "service": state.service, "environment": state.environment,
            "team": state.team, "version": state.version, "state": state.state, "reason": state.reason,
            "last_event": state.last_event, "updated_at": state.updated_at, "events": state.events}


def _fact_rows(release_id: str, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = history[0]
    service, environment = str(first.get("service") or ""), str(first.get("environment") or "")
    return [
        {"release_id": release_id, "n": n, "kind": fact.kind, "service": service, "environment": environment,
         "day": fact.at.astimezone(UTC).date(), "at": fact.at, "seconds": fact.seconds, "failed": fact.failed}
        for n, fact in enumerate(domain.release_facts(history))
    ]
