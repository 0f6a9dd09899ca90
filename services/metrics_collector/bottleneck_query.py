"""The bottleneck query: where the window's releases waited, ranked per team, from the bottleneck projection.

One function, served over NATS request/reply (CLI) and, through the dashboard, over HTTP. It reads
the releases that began in the window, never the log; a wait still going on counts up to `now`.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from contracts.bottleneck_queries import (FLAKY_SHOWN, BottlenecksReply, FlakyCheck, Intervention, QueryBottlenecks,
                                          ReleaseBottlenecks, TeamBottlenecks, Wait, WaitFigure, WaitKind)
from contracts.commands import CommandResult
from libs.store import Database
from services.metrics_collector import bottleneck_domain, domain
from services.metrics_collector.bottlenecks import BottleneckStore

NO_TEAM = "(no team)"


async def query_bottlenecks(db: Database, query: QueryBottlenecks,
                            clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> CommandResult:
    now = clock()
    first, last = domain.window_days(now, query.days)
    offset = (query.page - 1) * query.limit
    async with db.sessions() as session:
        read = BottleneckStore(session)
        total, page = await read.releases(first, last, query.team, offset, query.limit)
        ids = [r["release_id"] for r in page]
        waits, interventions = await read.waits_of(ids), await read.interventions_of(ids)
        ended = await read.ended_by_day(first, last, query.team)
        ongoing = await read.ongoing(first, last, query.team)
        teams = await read.per_team(first, last, query.team)
        checks = await read.checks_since(first, query.team)
    flaky = bottleneck_domain.flaky(checks)
    owners = {(c.digest, c.check): (c.team, c.service) for c in checks}
    reply = BottlenecksReply(
        page=query.page, limit=query.limit, total=total, window_days=query.days, first_day=first, last_day=last,
        team=query.team, teams=_ranking(ended, ongoing, teams, flaky, owners, now),
        releases=[_release(r, waits, interventions, now) for r in page],
        flaky=[FlakyCheck(digest=f.digest, check=f.check, team=owners[(f.digest, f.check)][0],
                          service=owners[(f.digest, f.check)][1], failures=f.failures,
                          first_failed_at=f.first_failed_at, passed_at=f.passed_at) for f in flaky[:FLAKY_SHOWN]],
        flaky_total=len(flaky),
    )
    return CommandResult(ok=True, message=summary(reply), data=reply.model_dump(mode="json"))


def _seconds(row: dict, now: datetime) -> float:
    """A wait's seconds; one not over yet counts up to `now`."""
    return row["seconds"] if row.get("seconds") is not None else max(0.0, (now - row["started_at"]).total_seconds())


def _ranking(ended: list[tuple], ongoing: list[dict], teams: dict, flaky: list[bottleneck_domain.Flaky], owners: dict,
             now: datetime) -> list[TeamBottlenecks]:
    ended_by_team: dict[str | None, list[tuple[WaitKind, int, int, int, float]]] = {}
    for team, kind, bucket, releases, waits, seconds in ended:
        ended_by_team.setdefault(team, []).append((WaitKind(kind), bucket, releases, waits, seconds))
    ongoing_by_team: dict[str | None, list[tuple[WaitKind, float]]] = {}
    for row in ongoing:
        ongoing_by_team.setdefault(row["team"], []).append((WaitKind(row["kind"]), _seconds(row, now)))
    flaky_by_team: dict[str | None, int] = {}
    for f in flaky:
        team = owners[(f.digest, f.check)][0]
        flaky_by_team[team] = flaky_by_team.get(team, 0) + 1
    ranking = []
    for team in set(teams) | set(ended_by_team) | set(ongoing_by_team) | set(flaky_by_team):
        figures = bottleneck_domain.ranked(ended_by_team.get(team, []), ongoing_by_team.get(team, []))
        releases, commands = teams.get(team, (0, 0))
        ranking.append(TeamBottlenecks(
            team=team or NO_TEAM, releases=releases, interventions=commands, flaky_checks=flaky_by_team.get(team, 0),
            ranked=[WaitFigure(kind=f.kind, releases=f.releases, waits=f.waits, total_s=f.total_s, median_s=f.median_s,
                               ongoing=f.ongoing) for f in figures]))
    return sorted(ranking, key=lambda t: (-(t.ranked[0].total_s if t.ranked else 0.0), t.team))


def _release(row: dict, waits: list[dict], interventions: list[dict], now: datetime) -> ReleaseBottlenecks:
    mine = [Wait(kind=WaitKind(w["kind"]), started_at=w["started_at"], seconds=_seconds(w, now),
                 ongoing=w["seconds"] is None) for w in waits if w["release_id"] == row["release_id"]]
    return ReleaseBottlenecks(
        release_id=row["release_id"], service=row["service"], environment=row["environment"], team=row["team"],
        began_at=row["began_at"], waited_s=sum(w.seconds for w in mine), waits=mine,
        interventions=[Intervention(command=i["command"], actor=i["actor"], at=i["at"], event=i["event"])
                       for i in interventions if i["release_id"] == row["release_id"]])


def summary(reply: BottlenecksReply) -> str:
    """One line a person reads first: the biggest bottleneck of each team."""
    scope = f"team {reply.team}" if reply.team else "all teams"
    window = f"releases that began in the last {reply.window_days} days ({scope})"
    if not reply.teams:
        return f"no {window}"
    tops = [f"{t.team}: {t.ranked[0].kind.value} {domain.human_duration(t.ranked[0].total_s)} in all, median "
            f"{domain.human_duration(t.ranked[0].median_s)}" if t.ranked else f"{t.team}: no waits"
            for t in reply.teams]
    return f"biggest bottleneck per team over {window}: " + "; ".join(tops)
