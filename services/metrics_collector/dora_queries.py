"""Use cases: the DORA queries, answered from the daily sums and histograms (dora_projection).

One scope (QueryDora) or one row per team (QueryDoraTeams), with the same figures computed the
same way; served over NATS by the collector and, through the dashboard, over HTTP.
"""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.commands import CommandResult, QueryDora
from contracts.dora_queries import DoraBands, DoraScopeReply, DoraTeamsReply, QueryDoraTeams, ReworkReasons, TeamDora
from contracts.queries import SAMPLES_SHOWN, Sample
from services.metrics_collector import domain
from services.metrics_collector.dora import (NO_TEAM, RELATIVE_ERROR, REWORK_REASONS, BadWindow, Window,
                                             percentile_of_buckets, window)
from services.metrics_collector.dora_bands import bands
from services.metrics_collector.dora_projection import DoraProjection, Scope, Totals

Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
NO_TEAM_SHOWN = "(no team)"


def figures(totals: Totals, span: Window, banded: bool) -> dict[str, Any]:
    """The DORA figures of one scope's sums and histograms, by one definition for every scope and team."""
    deployments, changes, failed = totals.count("deployments"), totals.count("changes"), totals.count("failed_changes")
    leads, restores = totals.histograms.get(domain.DEPLOYMENT, {}), totals.histograms.get(domain.RESTORE, {})
    reasons = {reason: totals.count(f"rework_{reason}") for reason in REWORK_REASONS}
    rework = sum(reasons.values())
    found: dict[str, Any] = {
        "deployments": deployments, "deployment_frequency_per_day": deployments / span.days,
        "lead_time_median_s": percentile_of_buckets(leads, 50), "lead_time_p90_s": percentile_of_buckets(leads, 90),
        "changes": changes, "failed_changes": failed, "change_failure_rate": failed / changes if changes else 0.0,
        "time_to_restore_median_s": percentile_of_buckets(restores, 50),
        "time_to_restore_p90_s": percentile_of_buckets(restores, 90),
        "rework": rework, "rework_rate": rework / deployments if deployments else 0.0,
        "rework_reasons": ReworkReasons(**reasons),
    }
    if banded:
        placed = bands(found["deployment_frequency_per_day"], deployments, found["lead_time_median_s"],
                       found["change_failure_rate"], changes, found["time_to_restore_median_s"])
        found["bands"] = DoraBands(**placed.__dict__)
    return found


def summary(scope: str, span: Window, found: dict[str, Any]) -> str:
    reasons = found["rework_reasons"]
    line = (
        f"{scope}, {span.first} to {span.last} ({span.days} days): {found['deployments']} deployments "
        f"({found['deployment_frequency_per_day']:.2f}/day), lead time median "
        f"{domain.human_duration(found['lead_time_median_s'])} p90 {domain.human_duration(found['lead_time_p90_s'])}, "
        f"change failure rate {found['change_failure_rate']:.0%} ({found['failed_changes']} of {found['changes']}), "
        f"recovery median {domain.human_duration(found['time_to_restore_median_s'])} "
        f"p90 {domain.human_duration(found['time_to_restore_p90_s'])}, rework rate {found['rework_rate']:.0%} "
        f"({found['rework']}: {reasons.declared} declared, {reasons.emergency} emergency, {reasons.incident} incident)"
    )
    if (placed := found.get("bands")) is not None:
        line += (f"; bands ({placed.source}): deployment frequency {placed.deployment_frequency or '-'}, lead time "
                 f"{placed.lead_time or '-'}, change failure rate {placed.change_failure_rate or '-'}, recovery "
                 f"{placed.recovery_time or '-'}, rework rate - (no published tiers)")
    return line


def _refused(model: str, problem: BadWindow) -> CommandResult:
    return CommandResult(ok=False, message=f"invalid {model}: {problem}")


async def query_dora(sessions: Sessions, query: QueryDora, now: datetime) -> CommandResult:
    try:
        span = window(now, query.window_days, query.since, query.until)
    except BadWindow as problem:
        return _refused("QueryDora", problem)
    scope = Scope(query.service, query.environment, query.team)
    async with sessions() as session:
        read = DoraProjection(session)
        totals = (await read.totals(span, scope)).get("", Totals())
        newest_leads = await read.newest(domain.DEPLOYMENT, span, scope, SAMPLES_SHOWN)
        newest_restores = await read.newest(domain.RESTORE, span, scope, SAMPLES_SHOWN)
        unknown = [f"{name} {value!r}" for name, value in (("service", query.service), ("team", query.team))
                   if value is not None and not await read.known(Scope(**{name: value}))]
    found = figures(totals, span, query.bands)
    described = (f"{query.service or 'all services'} of {f'team {query.team}' if query.team else 'every team'} "
                 f"in {query.environment or 'all environments'}")
    note = None
    if unknown:
        note = f"the event log has no deployment, change or restore of {' or '.join(unknown)}: is the name right?"
    elif not (found["deployments"] or found["changes"]):
        note = f"no deployment or change of {described} in the window"
    reply = DoraScopeReply(
        window_days=span.days, first_day=span.first, last_day=span.last, service=query.service,
        environment=query.environment, team=query.team, **found,
        lead_time_mean_s=totals.sums["lead_time_sum_s"] / totals.count("lead_times") if totals.count("lead_times") else None,
        lead_times=[Sample(release_id=r, seconds=s) for r, s in newest_leads], lead_times_total=totals.count("lead_times"),
        time_to_restore_mean_s=totals.sums["restore_sum_s"] / totals.count("restores") if totals.count("restores") else None,
        restores=[Sample(release_id=r, seconds=s) for r, s in newest_restores], restores_total=totals.count("restores"),
        percentile_relative_error=RELATIVE_ERROR, note=note,
    )
    message = summary(described, span, found) + (f" ({note})" if note else "")
    return CommandResult(ok=True, message=message, data=reply.model_dump(mode="json"))


async def query_dora_teams(sessions: Sessions, query: QueryDoraTeams, now: datetime) -> CommandResult:
    try:
        span = window(now, query.window_days, query.since, query.until)
    except BadWindow as problem:
        return _refused("QueryDoraTeams", problem)
    offset = (query.page - 1) * query.limit
    async with sessions() as session:
        read = DoraProjection(session)
        total, names = await read.teams(span, query.environment, offset, query.limit)
        by_team = await read.totals(span, Scope(environment=query.environment), by_team=names) if names else {}
    rows = []
    for name in names:
        totals = by_team.get(name, Totals())
        rows.append(TeamDora(team=name if name != NO_TEAM else NO_TEAM_SHOWN, services=sorted(totals.services),
                             restores=totals.count("restores"), **figures(totals, span, query.bands)))
    reply = DoraTeamsReply(page=query.page, limit=query.limit, total=total, window_days=span.days,
                           first_day=span.first, last_day=span.last, environment=query.environment,
                           percentile_relative_error=RELATIVE_ERROR, teams=rows)
    where = f"in {query.environment}" if query.environment else "in all environments"
    if rows:
        message = f"teams {offset + 1}-{offset + len(rows)} of {total} {where}, {span.first} to {span.last}"
    elif total:
        message = f"no teams on page {query.page}: {total} teams have DORA facts {where} in the window"
    else:
        message = f"no team has a deployment, change or restore {where} from {span.first} to {span.last}"
    return CommandResult(ok=True, message=message, data=reply.model_dump(mode="json"))
