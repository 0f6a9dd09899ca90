"""`slipway metrics bottlenecks`: where releases waited, ranked per team, from the collector's projection."""

from typing import Annotated, Any

import typer
from rich.markup import escape

from slipway import render
from slipway.cli_ops import ask, command
from slipway.context import CliError, NatsUrlOption, fail, out


def bottlenecks(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option(help="Only this team's releases")] = None,
    days: Annotated[int, typer.Option(help="Releases that began in this many days, up to today")] = 30,
    limit: Annotated[int, typer.Option(help="Releases listed per page")] = 20,
    page: Annotated[int, typer.Option(help="Which page of releases, from 1")] = 1,
    nats_url: NatsUrlOption = None,
) -> None:
    """Time waiting for approval, a freeze, a slot, a pause, analysis...; people's commands; flaky checks."""
    from contracts.bottleneck_queries import QueryBottlenecks
    from contracts.subjects import CMD_BOTTLENECKS

    try:
        query = command(QueryBottlenecks, team=team, days=days, limit=limit, page=page)
    except CliError as exc:
        fail(str(exc), exc.code)
    result = ask(ctx, nats_url, CMD_BOTTLENECKS, query)
    data = result.data
    out.print(escape(result.message))
    for ranking in data.get("teams") or []:
        out.print(render.titled_table(
            f"Team {ranking['team']}: {ranking['releases']} releases, {ranking['interventions']} people's commands, "
            f"{ranking['flaky_checks']} flaky checks", ("waiting for", "total", "median per release", "releases", "ongoing"),
            [(f["kind"], render.duration(f["total_s"]), render.duration(f["median_s"]), f["releases"], f["ongoing"])
             for f in ranking.get("ranked") or []]))
    if releases := data.get("releases"):
        first = (data["page"] - 1) * data["limit"] + 1
        out.print(render.titled_table(
            f"Releases {first}-{first + len(releases) - 1} of {data['total']}, most recent first",
            ("release", "team", "waited", "longest wait", "people's commands"),
            [(r["release_id"], r.get("team"), render.duration(r["waited_s"]), _longest(r),
              ", ".join(f"{i['command']} by {i['actor']}" for i in r.get("interventions") or []) or None)
             for r in releases]))
    if flaky := data.get("flaky"):
        more = f" (the newest {len(flaky)} of {data['flaky_total']})" if data["flaky_total"] > len(flaky) else ""
        out.print(render.titled_table(
            f"Checks that failed then passed on the same artifact{more}", ("digest", "check", "team", "failures", "passed at"),
            [(f["digest"][:19], f["check"], f.get("team"), f["failures"], render.when(f["passed_at"])) for f in flaky]))


def _longest(release: dict[str, Any]) -> str | None:
    waits = release.get("waits") or []
    if not waits:
        return None
    longest = max(waits, key=lambda w: w["seconds"])
    return f"{longest['kind']} {render.duration(longest['seconds'])}" + (" (ongoing)" if longest.get("ongoing") else "")
