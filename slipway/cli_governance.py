"""`slipway change` and `slipway incident`: change records and incidents, people's commands signed with their key."""

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from slipway.cli_identity import AsOption
from slipway.cli_ops import ask, ask_signed, command, parse_duration, parse_time
from slipway.context import USAGE_ERROR, CliError, NatsUrlOption, fail, out, say

change_app = typer.Typer(help="Change records: create, approve (another change manager), show.", no_args_is_help=True)
incident_app = typer.Typer(help="Incidents: open, resolve, list. Open incidents halt releases.", no_args_is_help=True)


@change_app.command("create")
def change_create(
    ctx: typer.Context,
    summary: Annotated[str, typer.Option(help="What the change does")],
    end: Annotated[str | None, typer.Option(help="The implementation window closes, ISO 8601 (local unless zoned)")] = None,
    duration: Annotated[str | None, typer.Option(help="Or its length from --start, e.g. 2h")] = None,
    start: Annotated[str | None, typer.Option(help="The window opens, ISO 8601; default now")] = None,
    risk: Annotated[str, typer.Option(help="low, moderate, high or very-high")] = "moderate",
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Ask for a change in slipway's registry; a change manager other than you approves it."""
    from contracts.governance import CreateChangeRecord
    from contracts.subjects import CMD_CREATE_CHANGE

    try:
        if (duration is None) == (end is None):
            raise CliError("give exactly one of --end and --duration", USAGE_ERROR)
        starts = parse_time(start, "--start") if start else datetime.now(UTC)
        ends = starts + parse_duration(duration) if duration else parse_time(str(end), "--end")
        cmd = command(CreateChangeRecord, summary=summary, starts_at=starts, ends_at=ends, risk=risk)
    except CliError as exc:
        fail(str(exc), exc.code)
    result = ask_signed(ctx, nats_url, CMD_CREATE_CHANGE, cmd, as_)
    say(f"[green]ok:[/] {escape(result.message)}")
    say(escape(str(result.data.get("number", ""))))


@change_app.command("approve")
def change_approve(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The change, e.g. CHG0000001")],
    comment: Annotated[str, typer.Option(help="Why it may go ahead; kept in the audit trail")],
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Approve a change record (change managers; never one you created)."""
    from contracts.governance import ApproveChangeRecord
    from contracts.subjects import CMD_APPROVE_CHANGE

    try:
        cmd = command(ApproveChangeRecord, number=number, comment=comment)
    except CliError as exc:
        fail(str(exc), exc.code)
    say(f"[green]ok:[/] {escape(ask_signed(ctx, nats_url, CMD_APPROVE_CHANGE, cmd, as_).message)}")


@change_app.command("show")
def change_show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The change, e.g. CHG0000001")],
    nats_url: NatsUrlOption = None,
) -> None:
    """A change record as the gatekeeper sees it (from slipway's registry or ServiceNow)."""
    from contracts.governance import ShowChangeRecord
    from contracts.subjects import CMD_SHOW_CHANGE

    try:
        query = command(ShowChangeRecord, number=number)
    except CliError as exc:
        fail(str(exc), exc.code)
    change = ask(ctx, nats_url, CMD_SHOW_CHANGE, query).data.get("change") or {}
    table = Table(title=f"Change {escape(str(change.get('number', number)))}", show_header=False)
    for name in ("source", "state", "approval", "starts_at", "ends_at", "type", "risk", "summary", "requested_by",
                 "approved_by"):
        table.add_row(name.replace("_", " "), escape(str(change.get(name) or "-")))
    out.print(table)


@incident_app.command("open")
def incident_open(
    ctx: typer.Context,
    environment: Annotated[str, typer.Option(help="Where it happens")],
    severity: Annotated[str, typer.Option(help="info, warning, error or critical")],
    summary: Annotated[str, typer.Option(help="What is wrong")],
    component: Annotated[str | None, typer.Option(help="The service affected, if known")] = None,
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Declare an incident: releases into the environment wait while it is open (per policy)."""
    from contracts.governance import OpenIncident
    from contracts.subjects import CMD_OPEN_INCIDENT

    try:
        cmd = command(OpenIncident, environment=environment, severity=severity, summary=summary, component=component)
    except CliError as exc:
        fail(str(exc), exc.code)
    result = ask_signed(ctx, nats_url, CMD_OPEN_INCIDENT, cmd, as_)
    say(f"[green]ok:[/] {escape(result.message)}")
    say(escape(str(result.data.get("incident_id", ""))))


@incident_app.command("resolve")
def incident_resolve(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The incident (see `slipway incident list`)")],
    comment: Annotated[str, typer.Option(help="What ended it")] = "",
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Resolve an incident (SREs): releases it held may go on."""
    from contracts.governance import ResolveIncident
    from contracts.subjects import CMD_RESOLVE_INCIDENT

    try:
        cmd = command(ResolveIncident, incident_id=incident_id, comment=comment)
    except CliError as exc:
        fail(str(exc), exc.code)
    say(f"[green]ok:[/] {escape(ask_signed(ctx, nats_url, CMD_RESOLVE_INCIDENT, cmd, as_).message)}")


@incident_app.command("list")
def incident_list(
    ctx: typer.Context,
    environment: Annotated[str | None, typer.Option(help="Only this environment")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too")] = False,
    nats_url: NatsUrlOption = None,
) -> None:
    """Open incidents, newest first."""
    from contracts.governance import ListIncidents
    from contracts.subjects import CMD_LIST_INCIDENTS

    try:
        query = command(ListIncidents, environment=environment, include_resolved=all_)
    except CliError as exc:
        fail(str(exc), exc.code)
    incidents = ask(ctx, nats_url, CMD_LIST_INCIDENTS, query).data.get("incidents") or []
    if not incidents:
        say("no open incidents" + (f" in {escape(environment)}" if environment else ""))
        return
    out.print(incidents_table(incidents))


def incidents_table(incidents: list[dict[str, Any]]) -> Table:
    table = Table(title="Incidents")
    for column in ("incident", "env", "severity", "open", "opened", "by", "origin"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary", overflow="fold", min_width=16)
    for i in incidents:
        table.add_row(
            escape(str(i.get("incident_id"))), escape(str(i.get("environment"))), escape(str(i.get("severity"))),
            "[red]yes[/]" if i.get("open") else "no", escape(str(i.get("opened_at", "-"))[:19]),
            escape(str(i.get("opened_by"))), escape(str(i.get("origin"))), escape(str(i.get("summary", ""))),
        )
    return table
