"""The DORA projections beside the log, kept and read so that a query costs the same at any log size.

- `dora_facts`: each release's deployments, changes and restores (domain.release_facts), with their
  day, team, rework reason and histogram bucket: the rows the other two are summed from.
- `dora_daily`: the facts summed per service, environment, team and UTC day.
- `dora_histogram_rollup` (dora_rollup): the timed facts counted per kind and bucket (dora.bucket_of) per
  day and per week, under their own scope and every wider one, which medians and p90s are taken from.

A query reads daily rows (a few per scope and day of the window) and rolled-up histogram rows (the
buckets of one scope, per whole week and edge day of the window), however many deployments there are.
Writing a release's facts re-sums the days they touch, from their facts, and moves the rollup's counts
by the facts taken back and added.
"""

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (Boolean, Column, Date, Float, Index, Integer, PrimaryKeyConstraint, String, Table, case,
                        delete, func, select, tuple_)
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime
from services.metrics_collector import domain
from services.metrics_collector.dora import NO_TEAM, REWORK_REASONS, Window, bucket_of, rework_reason, team_of
from services.metrics_collector.dora_rollup import DoraRollup, changes, dora_rollup
from services.metrics_collector.store import metadata

dora_facts = Table(
    "dora_facts",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("n", Integer, primary_key=True),  # the fact's place among its release's facts
    Column("kind", String(20), nullable=False),
    Column("service", String(63), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("team", String(63), nullable=False),
    Column("day", Date, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("seconds", Float, nullable=True),
    Column("bucket", Integer, nullable=True),  # dora.bucket_of(seconds), for the histogram
    Column("failed", Boolean, nullable=False),
    Column("rework", String(20), nullable=True),  # a deployment's rework reason (dora.REWORK_REASONS)
    Index("ix_dora_facts_day", "day", "kind"),
    Index("ix_dora_facts_scope", "service", "environment", "day"),
    Index("ix_dora_facts_newest", "kind", "at"),
    Index("ix_dora_facts_scope_newest", "kind", "service", "environment", "at"),
)

_SCOPE = ("service", "environment", "team", "day")
# dora_daily is read by a range of days: clustered by day first (WITHOUT ROWID on SQLite), a window is one
# range scan of the primary key, with no lookups from an index into the table.
dora_daily = Table(
    "dora_daily",
    metadata,
    Column("day", Date, nullable=False),
    Column("environment", String(63), nullable=False),
    Column("team", String(63), nullable=False),
    Column("service", String(63), nullable=False),
    Column("deployments", Integer, nullable=False),
    Column("changes", Integer, nullable=False),
    Column("failed_changes", Integer, nullable=False),
    Column("lead_times", Integer, nullable=False),
    Column("lead_time_sum_s", Float, nullable=False),
    Column("restores", Integer, nullable=False),
    Column("restore_sum_s", Float, nullable=False),
    *(Column(f"rework_{reason}", Integer, nullable=False) for reason in REWORK_REASONS),
    PrimaryKeyConstraint("day", "environment", "team", "service"),
    Index("ix_dora_daily_team", "team"),
    Index("ix_dora_daily_service", "service"),
    sqlite_with_rowid=False,
)

TABLES = (dora_facts, dora_daily, dora_rollup)
TOTALS = ("deployments", "changes", "failed_changes", "lead_times", "lead_time_sum_s", "restores", "restore_sum_s",
          *(f"rework_{reason}" for reason in REWORK_REASONS))


@dataclass(frozen=True)
class Scope:
    """Which facts a query covers; None covers every value."""

    service: str | None = None
    environment: str | None = None
    team: str | None = None


@dataclass
class Totals:
    """A scope's sums over a window, and its duration histograms (kind -> bucket -> count)."""

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TOTALS, 0))
    histograms: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    services: set[str] = field(default_factory=set)

    def count(self, name: str) -> int:
        return int(self.sums[name])


class DoraProjection:
    """Keeps and reads the DORA projections, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def clear(self) -> None:
        for table in TABLES:
            await self.session.execute(delete(table))

    async def refresh(self, histories: dict[str, list[dict[str, Any]]], new: Collection[str] = ()) -> None:
        """Recompute these releases' facts from their events, and re-sum the days they touched before and after.
        `new`: releases the log did not name before this append, which have no facts to take back."""
        ids = [r for r in histories if r not in new]
        f = dora_facts.c
        old: list[dict[str, Any]] = []
        if ids:
            old = [dict(r._mapping) for r in await self.session.execute(
                select(*(f[k] for k in _SCOPE), f.kind, f.bucket).where(f.release_id.in_(ids)))]
            await self.session.execute(delete(dora_facts).where(f.release_id.in_(ids)))
        facts = [row for release_id, history in histories.items() if history for row in _fact_rows(release_id, history)]
        if facts:
            await self.session.execute(dora_facts.insert(), facts)
        await self._sum_days({tuple(fact[k] for k in _SCOPE) for fact in (*old, *facts)})
        await DoraRollup(self.session).apply(changes(old, facts))

    async def _sum_days(self, days: set[tuple[Any, ...]]) -> None:
        if not days:
            return
        keys = sorted(days)
        f = dora_facts.c
        await self.session.execute(delete(dora_daily).where(tuple_(*(dora_daily.c[k] for k in _SCOPE)).in_(keys)))
        scope, group = tuple_(*(f[k] for k in _SCOPE)).in_(keys), [f[k] for k in _SCOPE]

        def count(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        def total(kind: str) -> Any:
            return func.coalesce(func.sum(case((f.kind == kind, f.seconds), else_=None)), 0.0)

        deployment = f.kind == domain.DEPLOYMENT
        daily = select(
            *group, count(deployment).label("deployments"), count(f.kind == domain.CHANGE).label("changes"),
            count((f.kind == domain.CHANGE) & f.failed).label("failed_changes"),
            count(deployment & f.seconds.is_not(None)).label("lead_times"),
            total(domain.DEPLOYMENT).label("lead_time_sum_s"),
            count((f.kind == domain.RESTORE) & f.seconds.is_not(None)).label("restores"),
            total(domain.RESTORE).label("restore_sum_s"),
            *(count(deployment & (f.rework == reason)).label(f"rework_{reason}") for reason in REWORK_REASONS),
        ).where(scope).group_by(*group)
        if rows := [dict(r._mapping) for r in await self.session.execute(daily)]:
            await self.session.execute(dora_daily.insert(), rows)

    # --- reading -------------------------------------------------------------------------------

    async def totals(self, window: Window, scope: Scope, by_team: Sequence[str] | None = None) -> dict[str, Totals]:
        """Sums and histograms over the window: one Totals for the scope (key ""), or with `by_team`, one per
        listed team. Reads daily and histogram rows only."""
        d = dora_daily.c
        found: dict[str, Totals] = defaultdict(Totals)

        def key(row: Any) -> str:
            return row.team if by_team is not None else ""

        team_column = [d.team] if by_team is not None else []
        sums = select(*team_column, *(func.coalesce(func.sum(d[name]), 0).label(name) for name in TOTALS))
        sums = _scoped(sums.where(d.day >= window.first, d.day <= window.last), d, scope, by_team)
        if by_team is not None:
            sums = sums.group_by(d.team)
        for row in await self.session.execute(sums):
            found[key(row)].sums = {name: row._mapping[name] for name in TOTALS}
        services = _scoped(select(d.team, d.service).distinct().where(d.day >= window.first, d.day <= window.last),
                           d, scope, by_team)
        for row in await self.session.execute(services):
            found[key(row)].services.add(row.service)
        histograms = await DoraRollup(self.session).histograms(window, scope.service, scope.environment, scope.team,
                                                               by_team)
        for name, kinds in histograms.items():
            found[name].histograms.update(kinds)
        return found

    async def teams(self, window: Window, environment: str | None, offset: int, limit: int) -> tuple[int, list[str]]:
        """(how many teams have facts in the window, one page of them in name order)."""
        d = dora_daily.c
        named = _scoped(select(d.team).distinct().where(d.day >= window.first, d.day <= window.last), d,
                        Scope(environment=environment), None)
        total = int(await self.session.scalar(select(func.count()).select_from(named.subquery())) or 0)
        return total, list(await self.session.scalars(named.order_by(d.team).offset(offset).limit(limit)))

    async def known(self, scope: Scope) -> bool:
        """Whether the projection has any fact of this scope, on any day."""
        d = dora_daily.c
        return await self.session.scalar(_scoped(select(d.day), d, scope, None).limit(1)) is not None

    async def newest(self, kind: str, window: Window, scope: Scope, limit: int) -> list[tuple[str, float]]:
        """(release_id, seconds) of the newest `limit` timed facts of `kind` in the window, oldest of them first."""
        f = dora_facts.c
        # By `at`, of which `day` is the UTC date: an index on kind, scope and at then gives the window newest first
        # (by day, SQLite took the scope index and sorted every fact of the scope in the window).
        start, end = (datetime.combine(day, time.min, tzinfo=UTC) for day in (window.first, window.last + timedelta(days=1)))
        query = select(f.release_id, f.seconds).where(f.kind == kind, f.seconds.is_not(None), f.at >= start, f.at < end)
        query = _scoped(query, f, scope, None).order_by(f.at.desc(), f.release_id.desc()).limit(limit)
        return [(r.release_id, r.seconds) for r in reversed((await self.session.execute(query)).all())]


def _scoped(query: Any, columns: Any, scope: Scope, teams: Sequence[str] | None) -> Any:
    for name in ("service", "environment", "team"):
        if (value := getattr(scope, name)) is not None:
            query = query.where(columns[name] == value)
    if teams is not None:
        query = query.where(columns.team.in_(list(teams)))
    return query


def _fact_rows(release_id: str, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = history[0]
    service, environment = str(first.get("service") or ""), str(first.get("environment") or "")
    team, rework = team_of(history), rework_reason(history)
    return [
        {"release_id": release_id, "n": n, "kind": fact.kind, "service": service, "environment": environment,
         "team": team or NO_TEAM, "day": fact.at.astimezone(UTC).date(), "at": fact.at, "seconds": fact.seconds,
         "bucket": bucket_of(fact.seconds) if fact.seconds is not None else None, "failed": fact.failed,
         "rework": rework if fact.kind == domain.DEPLOYMENT else None}
        for n, fact in enumerate(domain.release_facts(history))
    ]

