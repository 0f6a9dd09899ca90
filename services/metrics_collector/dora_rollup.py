"""The duration histograms rolled up, so that a DORA query reads about the same rows at any log size.

Counting durations per service, environment, team and day only, a window of 30 days over all services
would read every bucket any scope filled on any of its days, which grows with the deployments until
each scope's days have all their buckets (tens of thousands of rows at 10^6 events). Here each fact is
counted under its own scope and every wider one (each of service, environment and team either its own
value or ANY), per day and per ISO week. A query names one row key per scope: it reads the window's
whole weeks and its ragged edge days, a few hundred buckets each at most, however many deployments
there were.

Counts are integers kept by adding the difference each refresh makes (facts taken back, facts added),
so appending and a rebuild from the log give the same rows in any order.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Column, Date, Integer, PrimaryKeyConstraint, String, Table, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics_collector.dora import Window
from services.metrics_collector.store import metadata

ANY = "*"  # a scope column counted over every value; no service, environment or team can be named so (NAME_PATTERN)
DAY, WEEK = 1, 7

dora_rollup = Table(
    "dora_histogram_rollup",
    metadata,
    Column("environment", String(63), nullable=False),
    Column("team", String(63), nullable=False),
    Column("service", String(63), nullable=False),
    Column("days", Integer, nullable=False),  # DAY: the day `first_day`; WEEK: the ISO week starting on it
    Column("first_day", Date, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    # A query fixes the scope and the period's length, then reads a range of days: one range scan per period.
    PrimaryKeyConstraint("environment", "team", "service", "days", "first_day", "kind", "bucket"),
    sqlite_with_rowid=False,
)

KEY = ("environment", "team", "service", "days", "first_day", "kind", "bucket")
Key = tuple[str, str, str, int, date, str, int]
# One statement per row whatever its count was before, in SQLite and PostgreSQL alike (their schema is the
# connection's search path): a refresh touches a few hundred rows, which a read-then-write would look up twice.
_ADD = text(f"INSERT INTO {dora_rollup.name} ({', '.join(KEY)}, count) VALUES ({', '.join(':' + k for k in KEY)}, "
            f":count) ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET count = {dora_rollup.name}.count + excluded.count"
            ).bindparams(bindparam("first_day", type_=Date))
_EMPTIED = text(f"DELETE FROM {dora_rollup.name} WHERE {' AND '.join(f'{k} = :{k}' for k in KEY)} AND count <= 0"
                ).bindparams(bindparam("first_day", type_=Date))


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def keys_of(fact: Mapping[str, Any]) -> list[Key]:
    """Every rollup row a timed fact (a dora_facts row with a bucket) is counted in: 8 scopes, by day and by week."""
    day, kind, bucket = fact["day"], fact["kind"], fact["bucket"]
    return [(environment, team, service, days, first, kind, bucket)
            for days, first in ((DAY, day), (WEEK, monday(day)))
            for environment in (fact["environment"], ANY)
            for team in (fact["team"], ANY)
            for service in (fact["service"], ANY)]


def changes(taken_back: Iterable[Mapping[str, Any]], added: Iterable[Mapping[str, Any]]) -> Counter[Key]:
    """What each rollup row's count moves by when these facts are replaced by those (timed facts only)."""
    moved: Counter[Key] = Counter()
    for sign, facts in ((-1, taken_back), (1, added)):
        for fact in facts:
            if fact["bucket"] is not None:
                for key in keys_of(fact):
                    moved[key] += sign
    return moved


def split(window: Window) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The window as (first and last Monday of the whole weeks it holds, or None) and its edge day ranges."""
    first_monday = window.first + timedelta(days=-window.first.weekday() % 7)
    last_sunday = window.last - timedelta(days=(window.last.weekday() + 1) % 7)
    if first_monday + timedelta(days=6) > last_sunday:
        return None, [(window.first, window.last)]
    edges = [(a, b) for a, b in ((window.first, first_monday - timedelta(days=1)),
                                 (last_sunday + timedelta(days=1), window.last)) if a <= b]
    return (first_monday, last_sunday - timedelta(days=6)), edges


class DoraRollup:
    """Keeps and reads the rolled-up histograms, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply(self, moved: Counter[Key]) -> None:
        """Add the changes to the rows' counts; a row whose count falls to zero goes."""
        rows = [dict(zip(KEY, key)) | {"count": change} for key, change in sorted(moved.items()) if change]
        if rows:
            await self.session.execute(_ADD, rows)
        if lowered := [row for row in rows if row["count"] < 0]:
            await self.session.execute(_EMPTIED, lowered)

    async def histograms(self, window: Window, service: str | None, environment: str | None, team: str | None,
                         by_team: Sequence[str] | None) -> dict[str, dict[str, dict[int, int]]]:
        """Bucket counts over the window, per kind: under "" for the scope, or per team of `by_team`."""
        r = dora_rollup.c
        weeks, edges = split(window)
        periods = [(DAY, a, b) for a, b in edges] + ([(WEEK, *weeks)] if weeks is not None else [])
        scoped = [r.environment == (environment or ANY), r.service == (service or ANY),
                  r.team.in_(list(by_team)) if by_team is not None else r.team == (team or ANY)]
        found: dict[str, dict[str, dict[int, int]]] = {}
        # One range of the primary key per period: OR-ed together, SQLite read the scope's every day instead.
        for days, first, last in periods:
            query = (select(r.team, r.kind, r.bucket, func.sum(r.count).label("count"))
                     .where(*scoped, r.days == days, r.first_day >= first, r.first_day <= last)
                     .group_by(r.team, r.kind, r.bucket))
            for row in await self.session.execute(query):
                counts = found.setdefault(row.team if by_team is not None else "", {}).setdefault(row.kind, {})
                counts[row.bucket] = counts.get(row.bucket, 0) + int(row.count)
        return found
