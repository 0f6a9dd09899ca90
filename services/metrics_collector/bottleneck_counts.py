"""How many releases began per team and day, and how many people's commands they drew: what `metrics bottlenecks`
counts over a window, read from a row per team and day instead of an index row per release (at 10^6 events a
30-day window holds some 40,000 releases).

Kept by adding each refreshed release's share and taking its old one away (integers, so any order of refreshes
gives the same rows), in the transaction that writes the release's bottleneck rows.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import Column, Date, Integer, String, Table, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics_collector.inline_writer import insert_rows
from services.metrics_collector.store import metadata

bottleneck_team_days = Table(
    "bottleneck_team_days",
    metadata,
    Column("day", Date, primary_key=True),  # the day the releases began
    Column("team", String(63), primary_key=True),  # "" for releases that name no team
    Column("releases", Integer, nullable=False),
    Column("interventions", Integer, nullable=False),
)

TeamDay = tuple[date, str]


def shares(releases: Iterable[Mapping[str, Any]], interventions: Iterable[Mapping[str, Any]]) -> Counter[tuple[TeamDay, str]]:
    """What bottleneck_releases rows add to their team's day: one release each, and the release_interventions
    rows (people's commands) of them."""
    commands = Counter(i["release_id"] for i in interventions)
    found: Counter[tuple[TeamDay, str]] = Counter()
    for release in releases:
        key = (release["day"], release["team"] or "")
        found[(key, "releases")] += 1
        found[(key, "interventions")] += commands[release["release_id"]]
    return found


class TeamDays:
    """Keeps and reads the per-team daily counts, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def move(self, added: Counter[tuple[TeamDay, str]], taken_back: Counter[tuple[TeamDay, str]]) -> None:
        """counts += added - taken_back, row by row; a row that counts no release any more goes."""
        delta = Counter(added)
        delta.subtract(taken_back)
        keys = sorted({key for (key, _), change in delta.items() if change})
        if not keys:
            return
        t = bottleneck_team_days.c
        scope = tuple_(t.day, t.team).in_(keys)
        counts = {key: [delta[(key, "releases")], delta[(key, "interventions")]] for key in keys}
        for row in await self.session.execute(select(bottleneck_team_days).where(scope)):
            counts[(row.day, row.team)][0] += row.releases
            counts[(row.day, row.team)][1] += row.interventions
        await self.session.execute(delete(bottleneck_team_days).where(scope))
        await insert_rows(self.session, bottleneck_team_days, [
            {"day": day, "team": team, "releases": releases, "interventions": commands}
            for (day, team), (releases, commands) in counts.items() if releases > 0])

    async def clear(self) -> None:
        await self.session.execute(delete(bottleneck_team_days))

    async def per_team(self, first: date, last: date, team: str | None) -> dict[str | None, tuple[int, int]]:
        """team (None: no team) -> (releases that began in the window, people's commands on them)."""
        t = bottleneck_team_days.c
        query = select(t.team, func.sum(t.releases), func.sum(t.interventions)).where(t.day >= first, t.day <= last)
        if team is not None:
            query = query.where(t.team == team)
        return {(row[0] or None): (int(row[1]), int(row[2])) for row in await self.session.execute(query.group_by(t.team))}

