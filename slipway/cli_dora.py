"""`slipway metrics dora` and `slipway metrics teams`: DORA figures of one scope, and one row per team."""

from datetime import date
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from slipway import render
from slipway.cli_ops import ask, command
from slipway.context import USAGE_ERROR, CliError, NatsUrlOption, fail, out, say

metrics_app = typer.Typer(help="Delivery metrics (DORA).", no_args_is_help=True)

DaysOption = Annotated[int | None, typer.Option(help="Window: from this many days ago to today (default 30)")]
SinceOption = Annotated[str | None, typer.Option(help="Window's first UTC day, YYYY-MM-DD (instead of --days)")]
UntilOption = Annotated[str | None, typer.Option(help="Window's last UTC day, YYYY-MM-DD (with --since; default today)")]
BandsOption = Annotated[bool, typer.Option("--bands", help="Also place each figure in the 2024 DORA report's tiers")]


def parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"{option} must be a day such as 2030-01-31, got {text!r}", USAGE_ERROR) from None


def window(days: int | None, since: str | None, until: str | None) -> dict[str, Any]:
    return {"days": days, "since": parse_day(since, "--since"), "until": parse_day(until, "--until")}


def rework(data: dict[str, Any]) -> str:
    reasons = data.get("rework_reasons") or {}
    why = ", ".join(f"{reasons.get(k, 0)} {k}" for k in ("declared", "emergency", "incident") if reasons.get(k))
    return f"{render.percent(data.get('rework_rate'))} ({data.get('rework', 0)}{': ' + why if why else ''})"


def bands_line(bands: dict[str, Any]) -> str:
    placed = ", ".join(f"{name.replace('_', ' ')} {bands.get(name) or '-'}" for name in (
        "deployment_frequency", "lead_time", "change_failure_rate", "recovery_time"))
    return f"bands ({bands.get('source')}; per figure, rework rate has none): {placed}"


@metrics_app.command("dora")
def dora(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's releases (the team a release names)")] = None,
    environment: Annotated[str | None, typer.Option(help="Only this environment")] = None,
    days: DaysOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    bands: BandsOption = False,
    nats_url: NatsUrlOption = None,
) -> None:
    """Deployment frequency, lead time, change failure rate, recovery time and rework rate of one scope."""
    from contracts.commands import QueryDora
    from contracts.subjects import CMD_DORA

    try:
        query = command(QueryDora, service=service, team=team, environment=environment, bands=bands,
                        **window(days, since, until))
    except CliError as exc:
        fail(str(exc), exc.code)
    data = ask(ctx, nats_url, CMD_DORA, query).data
    table = render.dora_table(data)
    table.add_row("time to restore (p90)", render.duration(data.get("time_to_restore_p90_s")))
    table.add_row("rework rate", rework(data))
    out.print(table)
    for title, key in (("Lead times", "lead_times"), ("Restores", "restores")):
        shown, total = data.get(key) or [], data.get(f"{key}_total")
        if shown:
            more = f" (the newest {len(shown)} of {total})" if isinstance(total, int) and total > len(shown) else ""
            out.print(render.samples_table(title + more, shown))
    say(f"medians and p90s within {render.percent(data.get('percentile_relative_error'))} (per-day histograms)")
    if data.get("bands"):
        say(escape(bands_line(data["bands"])))
    if data.get("note"):
        say(escape(str(data["note"])))


@metrics_app.command("teams")
def teams(
    ctx: typer.Context,
    environment: Annotated[str | None, typer.Option(help="Only this environment, e.g. prod")] = None,
    days: DaysOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    bands: BandsOption = False,
    page: Annotated[int, typer.Option(help="Which page of teams, from 1")] = 1,
    limit: Annotated[int, typer.Option(help="Teams per page")] = 50,
    nats_url: NatsUrlOption = None,
) -> None:
    """One table of DORA figures per team, the same definitions for every team."""
    from contracts.dora_queries import QueryDoraTeams
    from contracts.subjects import CMD_DORA_TEAMS

    try:
        query = command(QueryDoraTeams, environment=environment, bands=bands, page=page, limit=limit,
                        **window(days, since, until))
    except CliError as exc:
        fail(str(exc), exc.code)
    result = ask(ctx, nats_url, CMD_DORA_TEAMS, query)
    data = result.data
    if not data.get("teams"):
        say(escape(result.message))
        return
    out.print(teams_table(data, bands))
    say(f"medians and p90s within {render.percent(data.get('percentile_relative_error'))} (per-day histograms)")
    if bands:
        source = next((t["bands"]["source"] for t in data["teams"] if t.get("bands")), "")
        say(escape(f"bands: {source}; each figure by itself; rework rate has no published tiers"))
    pages = -(-int(data["total"]) // int(data["limit"]))
    if pages > 1:
        say(f"page {data['page']} of {pages} ({data['total']} teams; --page N for another)")


def teams_table(data: dict[str, Any], bands: bool) -> Table:
    where = data.get("environment") or "all environments"
    table = Table(title=f"DORA per team, {where}, {data['first_day']} to {data['last_day']} "
                        f"({data['window_days']} days, UTC)")
    columns = ("team", "deploys", "per day", "lead time p50 / p90", "change failure", "recovery p50 / p90", "rework")
    for column in columns:
        table.add_column(column, justify="left" if column == "team" else "right")
    for row in data["teams"]:
        placed = row.get("bands") or {}

        def band(name: str) -> str:
            return escape(f" [{placed.get(name) or '-'}]") if bands else ""

        table.add_row(
            escape(str(row["team"])), str(row["deployments"]),
            f"{row['deployment_frequency_per_day']:.2f}{band('deployment_frequency')}",
            f"{render.duration(row['lead_time_median_s'])} / {render.duration(row['lead_time_p90_s'])}"
            f"{band('lead_time')}",
            f"{render.percent(row['change_failure_rate'])} ({row['failed_changes']}/{row['changes']})"
            f"{band('change_failure_rate')}",
            f"{render.duration(row['time_to_restore_median_s'])} / {render.duration(row['time_to_restore_p90_s'])}"
            f"{band('recovery_time')}",
            rework(row),
        )
    return table
