"""The bottleneck projection beside the log: each release's waits and interventions, and check results per digest.

- `bottleneck_releases`: one row per release (its team and when it began: what a window and a team select).
- `release_waits`: every wait of a release (bottleneck_domain.release_bottleneck); `ended_at` NULL while it lasts.
- `release_interventions`: the people's signed commands on a release.
- `bottleneck_daily`: per team, kind, day (the release began) and bucket of a release's total wait of that
  kind, how many releases, waits and milliseconds: a team's ranking and medians read these few rows per
  day of the window, however many releases it holds (bottleneck_domain.bucket_of). Kept by adding each
  refreshed release's new share and taking its old one away.
- `bottleneck_team_days` (bottleneck_counts): per team and day, how many releases began and the people's
  commands on them, kept the same way: what a window's release and command counts are summed from.
- `artifact_checks`: verification results (from a release's events) and evidence (EvidenceSubmitted, about
  a digest) per artifact digest; a digest's check that failed then passed is flaky.

Written in the append transaction (Projections.refresh for a release's rows, `record_evidence` for
evidence), rebuilt from the log with the other projections.
"""

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (BigInteger, Boolean, Column, Date, Float, Index, Integer, String, Table, delete, func, select,
                        tuple_)
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime
from services.metrics_collector.bottleneck_counts import TeamDay, TeamDays, shares
from services.metrics_collector.bottleneck_domain import (EVIDENCE, CheckResult, DayKey, daily_contributions,
                                                          evidence_check, release_bottleneck)
from services.metrics_collector.store import event_flags, event_log, metadata
from services.metrics_collector.inline_writer import insert_rows

EVIDENCE_CHUNK = 1000  # evidence events read per step of a rebuild

bottleneck_releases = Table(
    "bottleneck_releases",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("service", String(63), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("team", String(63), nullable=True),
    Column("began_at", UtcDateTime(), nullable=False),
    Column("day", Date, nullable=False),
    Index("ix_bottleneck_releases_day", "day", "team"),
    Index("ix_bottleneck_releases_began", "began_at"),  # a window's page, newest first
    Index("ix_bottleneck_releases_team_began", "team", "began_at"),  # one team's
)

release_waits = Table(
    "release_waits",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("n", Integer, primary_key=True),  # the wait's place among its release's waits
    Column("kind", String(20), nullable=False),
    Column("team", String(63), nullable=True),
    Column("day", Date, nullable=False),  # the day the release began: the window it counts in
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("seconds", Float, nullable=True),
    Index("ix_release_waits_day", "day", "team"),
    Index("ix_release_waits_ongoing", "seconds", "day"),  # the waits not over yet (seconds NULL) of a window
)

bottleneck_daily = Table(
    "bottleneck_daily",
    metadata,
    Column("team", String(63), primary_key=True),  # "" for releases that name no team
    Column("kind", String(20), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("releases", Integer, nullable=False),
    Column("waits", Integer, nullable=False),
    Column("ms", BigInteger, nullable=False),
    Index("ix_bottleneck_daily_day", "day", "team"),
)

release_interventions = Table(
    "release_interventions",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("command", String(100), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("event", String(100), nullable=False),
)

artifact_checks = Table(
    "artifact_checks",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("release_id", String(128), nullable=True, index=True),  # NULL for evidence, which is about a digest
    Column("digest", String(100), nullable=False),
    Column("check", String(100), nullable=False),
    Column("team", String(63), nullable=True),
    Column("service", String(63), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("passed", Boolean, nullable=False),
    Index("ix_artifact_checks_digest", "digest", "check"),
    Index("ix_artifact_checks_at", "at", "team"),
)

TABLES = (bottleneck_releases, release_waits, release_interventions, artifact_checks)  # rows per release


class BottleneckStore:
    """Keeps and reads the bottleneck projection, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def refresh(self, histories: Mapping[str, Sequence[Mapping[str, Any]]], new: Collection[str] = ()) -> None:
        """Recompute the rows of these releases from their logged events. `new`: releases the log did not name
        before this append, which have no rows to take back."""
        ids = sorted(histories)
        if not ids:
            return
        if known := [r for r in ids if r not in new]:
            before, taken_back = daily_contributions(await self._ended_waits(known)), await self._shares(known)
            for table in TABLES:
                await self.session.execute(delete(table).where(table.c.release_id.in_(known)))
        else:
            before, taken_back = {}, Counter()
        releases, waits, interventions, checks = [], [], [], []
        for release_id in ids:
            found = release_bottleneck(release_id, histories[release_id])
            if found is None:
                continue
            day = found.began_at.astimezone(UTC).date()
            releases.append({"release_id": release_id, "service": found.service, "environment": found.environment,
                             "team": found.team, "began_at": found.began_at, "day": day})
            waits.extend({"release_id": release_id, "n": n, "kind": w.kind.value, "team": found.team, "day": day,
                          "started_at": w.started_at, "ended_at": w.ended_at,
                          "seconds": w.seconds(w.ended_at) if w.ended_at else None} for n, w in enumerate(found.waits))
            interventions.extend({"release_id": release_id, "n": n, "command": i.command[:100], "actor": i.actor[:200],
                                  "at": i.at, "event": i.event[:100]} for n, i in enumerate(found.interventions))
            checks.extend(_check_row(c, release_id) for c in found.checks)
        for table, rows in ((bottleneck_releases, releases), (release_waits, waits),
                            (release_interventions, interventions), (artifact_checks, _unique(checks))):
            await insert_rows(self.session, table, rows)
        after = daily_contributions((w["team"], w["kind"], w["day"], w["release_id"], w["seconds"])
                                    for w in waits if w["seconds"] is not None)
        await self._add_to_days(after, before)
        await TeamDays(self.session).move(shares(releases, interventions), taken_back)

    async def _shares(self, release_ids: Sequence[str]) -> Counter[tuple[TeamDay, str]]:
        r, i = bottleneck_releases.c, release_interventions.c
        releases = await self.session.execute(select(r.release_id, r.day, r.team).where(r.release_id.in_(release_ids)))
        commands = await self.session.execute(select(i.release_id).where(i.release_id.in_(release_ids)))
        return shares([row._mapping for row in releases], [row._mapping for row in commands])

    async def _ended_waits(self, release_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        w = release_waits.c
        query = select(w.team, w.kind, w.day, w.release_id, w.seconds).where(
            w.release_id.in_(release_ids), w.seconds.is_not(None))
        return [tuple(row) for row in await self.session.execute(query)]

    async def _add_to_days(self, plus: dict[DayKey, list[int]], minus: dict[DayKey, list[int]]) -> None:
        """bottleneck_daily += plus - minus, row by row; a row that counts no release any more goes."""
        delta: dict[DayKey, list[int]] = {}
        for sign, part in ((1, plus), (-1, minus)):
            for key, values in part.items():
                row = delta.setdefault(key, [0, 0, 0])
                for n, value in enumerate(values):
                    row[n] += sign * value
        keys = sorted(key for key, values in delta.items() if any(values))
        if not keys:
            return
        d = bottleneck_daily.c
        scope = tuple_(d.team, d.kind, d.day, d.bucket).in_(keys)
        for row in await self.session.execute(select(bottleneck_daily).where(scope)):
            current = delta[(row.team, row.kind, row.day, row.bucket)]
            current[0], current[1], current[2] = current[0] + row.releases, current[1] + row.waits, current[2] + row.ms
        await self.session.execute(delete(bottleneck_daily).where(scope))
        rows = [{"team": key[0], "kind": key[1], "day": key[2], "bucket": key[3], "releases": delta[key][0],
                 "waits": delta[key][1], "ms": delta[key][2]} for key in keys if delta[key][0] > 0]
        await insert_rows(self.session, bottleneck_daily, rows)

    async def record_evidence(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Evidence just logged, as check results of its digest (the log has de-duplicated the events)."""
        rows = _unique(_check_row(c, None) for e in events if (c := evidence_check(e)) is not None)
        known = set(await self.session.scalars(select(artifact_checks.c.event_id).where(
            artifact_checks.c.event_id.in_([r["event_id"] for r in rows])))) if rows else set()
        await insert_rows(self.session, artifact_checks, [r for r in rows if r["event_id"] not in known])

    async def clear(self) -> None:
        for table in (*TABLES, bottleneck_daily):
            await self.session.execute(delete(table))
        await TeamDays(self.session).clear()

    async def rebuild_evidence(self) -> None:
        """Check results of every unflagged EvidenceSubmitted in the log, a chunk at a time."""
        joined = event_log.outerjoin(event_flags, event_flags.c.seq == event_log.c.seq)
        after = 0
        while True:
            query = (select(event_log.c.seq, event_log.c.payload).select_from(joined)
                     .where(event_log.c.type == EVIDENCE, event_flags.c.seq.is_(None), event_log.c.seq > after)
                     .order_by(event_log.c.seq).limit(EVIDENCE_CHUNK))
            chunk = (await self.session.execute(query)).all()
            if not chunk:
                return
            await self.record_evidence(json.loads(r.payload) for r in chunk)
            after = chunk[-1].seq

    async def empty(self) -> bool:
        return await self.session.scalar(select(bottleneck_releases.c.release_id).limit(1)) is None

    # --- reading -----------------------------------------------------------------------------

    async def releases(self, first: date, last: date, team: str | None, offset: int,
                       limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(how many releases began in the window, one page of them, most recent first)."""
        r = bottleneck_releases.c
        total = sum(releases for releases, _ in (await TeamDays(self.session).per_team(first, last, team)).values())
        # By began_at, of which day is the UTC date: one index gives the window and its newest first.
        began = r.began_at >= _start_of(first), r.began_at < _start_of(last + timedelta(days=1))
        page = _team(select(bottleneck_releases).where(*began), r, team).order_by(r.began_at.desc(), r.release_id)
        page = page.offset(offset).limit(limit)
        return total, [dict(row._mapping) for row in await self.session.execute(page)]

    async def waits_of(self, release_ids: Sequence[str]) -> list[dict[str, Any]]:
        query = select(release_waits).where(release_waits.c.release_id.in_(release_ids)).order_by(
            release_waits.c.release_id, release_waits.c.n)
        return [dict(row._mapping) for row in await self.session.execute(query)]

    async def interventions_of(self, release_ids: Sequence[str]) -> list[dict[str, Any]]:
        query = select(release_interventions).where(release_interventions.c.release_id.in_(release_ids)).order_by(
            release_interventions.c.release_id, release_interventions.c.n)
        return [dict(row._mapping) for row in await self.session.execute(query)]

    async def ended_by_day(self, first: date, last: date, team: str | None) -> list[tuple[Any, ...]]:
        """(team, kind, bucket, releases, waits, seconds) of the waits that ended, of the releases that began in
        the window: a few rows per day, summed over the days."""
        d = bottleneck_daily.c
        query = select(d.team, d.kind, d.bucket, func.sum(d.releases), func.sum(d.waits), func.sum(d.ms)).where(
            d.day >= first, d.day <= last)
        if team is not None:
            query = query.where(d.team == team)
        rows = await self.session.execute(query.group_by(d.team, d.kind, d.bucket))
        return [(t or None, k, b, int(r), int(w), int(ms) / 1000) for t, k, b, r, w, ms in rows]

    async def ongoing(self, first: date, last: date, team: str | None) -> list[dict[str, Any]]:
        """The waits not over yet of the releases that began in the window."""
        w = release_waits.c
        query = select(w.team, w.release_id, w.kind, w.started_at).where(
            w.seconds.is_(None), w.day >= first, w.day <= last)
        return [dict(row._mapping) for row in await self.session.execute(_team(query, w, team))]

    async def per_team(self, first: date, last: date, team: str | None) -> dict[str | None, tuple[int, int]]:
        """team -> (releases that began in the window, people's commands on them)."""
        return await TeamDays(self.session).per_team(first, last, team)

    async def checks_since(self, first: date, team: str | None) -> list[CheckResult]:
        """The check results since the window began of every digest and check that failed in it."""
        c = artifact_checks.c
        since = _start_of(first)
        failed = _team(select(c.digest, c.check).where(c.at >= since, c.passed.is_(False)), c, team).distinct()
        keys = [(row.digest, row.check) for row in await self.session.execute(failed)]
        if not keys:
            return []
        digests = sorted({d for d, _ in keys})
        rows = await self.session.execute(
            _team(select(artifact_checks).where(c.at >= since, c.digest.in_(digests)), c, team))
        wanted = set(keys)
        return [CheckResult(r.event_id, r.digest, r.check, bool(r.passed), r.at, r.team, r.service)
                for r in rows if (r.digest, r.check) in wanted]


def _team(query: Any, columns: Any, team: str | None) -> Any:
    return query if team is None else query.where(columns.team == team)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _check_row(check: CheckResult, release_id: str | None) -> dict[str, Any]:
    return {"event_id": check.key[:64], "release_id": release_id, "digest": check.digest[:100],
            "check": check.check[:100], "team": (check.team or None) and check.team[:63],
            "service": (check.service or None) and check.service[:63], "at": check.at, "passed": check.passed}


def _unique(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_id.setdefault(row["event_id"], row)
    return list(by_id.values())
