"""`slipway change` and `slipway incident`: change records and incidents, people's commands signed with their key."""

from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from slipway.cli_identity import AsOption
from slipway.cli_ops import ask, ask_signed, command, parse_window
from slipway.context import CliError, NatsUrlOption, fail, out, say

change_app = typer.Typer(help="Change records: create, approve (another change manager), show.", no_args_is_help=True)
incident_app = typer.Typer(help="Incidents: open, resolve, list. Open incidents halt releases.", no_args_is_help=True)


def _signed(ctx: typer.Context, nats_url: str | None, subject: str, as_: str | None, model: type[BaseModel],
            **fields: Any) -> Any:
    """Validate the command here (a usage error names the field), sign it as the person, send it."""
    try:
        cmd = command(model, **fields)
    except CliError as exc:
        fail(str(exc), exc.code)
    return ask_signed(ctx, nats_url, subject, cmd, as_)


def _query(ctx: typer.Context, nats_url: str | None, subject: str, model: type[BaseModel], **fields: Any) -> Any:
    try:
        query = command(model, **fields)
    except CliError as exc:
        fail(str(exc), exc.code)
    return ask(ctx, nats_url, subject, query)


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
        starts, ends = parse_window(start, end, duration, ("--start", "--end", "--duration"))
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

    result = _signed(ctx, nats_url, CMD_APPROVE_CHANGE, as_, ApproveChangeRecord, number=number, comment=comment)
    say(f"[green]ok:[/] {escape(result.message)}")


@change_app.command("show")
def change_show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The change, e.g. CHG0000001")],
    nats_url: NatsUrlOption = None,
) -> None:
    """A change record as the gatekeeper sees it (from slipway's registry or ServiceNow)."""
    from contracts.governance import ShowChangeRecord
    from contracts.subjects import CMD_SHOW_CHANGE

    change = _query(ctx, nats_url, CMD_SHOW_CHANGE, ShowChangeRecord, number=number).data.get("change") or {}
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

    result = _signed(ctx, nats_url, CMD_OPEN_INCIDENT, as_, OpenIncident, environment=environment, severity=severity,
                     summary=summary, component=component)
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

    result = _signed(ctx, nats_url, CMD_RESOLVE_INCIDENT, as_, ResolveIncident, incident_id=incident_id, comment=comment)
    say(f"[green]ok:[/] {escape(result.message)}")


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

    result = _query(ctx, nats_url, CMD_LIST_INCIDENTS, ListIncidents, environment=environment, include_resolved=all_)
    incidents = result.data.get("incidents") or []
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
