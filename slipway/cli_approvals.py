"""`slipway approve / reject RELEASE --comment ...` and `slipway approvals`: people decide on waiting releases."""

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from slipway.cli_identity import AsOption
from slipway.cli_ops import ask, ask_signed, command
from slipway.context import CliError, NatsUrlOption, fail, out, say


def approve(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="A release waiting for approvals (see `slipway approvals`)")],
    comment: Annotated[str, typer.Option(help="Why; kept with your signature in the audit trail")],
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Approve a waiting release as yourself: it counts where policy lets your roles count (never your own release)."""
    from contracts.commands import ApproveRelease
    from contracts.subjects import CMD_APPROVE

    try:
        cmd = command(ApproveRelease, release_id=release_id, comment=comment)
    except CliError as exc:
        fail(str(exc), exc.code)
    say(f"[green]ok:[/] {escape(ask_signed(ctx, nats_url, CMD_APPROVE, cmd, as_).message)}")


def reject(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="A waiting release")],
    comment: Annotated[str, typer.Option(help="Why; the release ends with it")],
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Reject a waiting release: it ends here, with your comment."""
    from contracts.commands import RejectRelease
    from contracts.subjects import CMD_REJECT

    try:
        cmd = command(RejectRelease, release_id=release_id, comment=comment)
    except CliError as exc:
        fail(str(exc), exc.code)
    say(f"[green]ok:[/] {escape(ask_signed(ctx, nats_url, CMD_REJECT, cmd, as_).message)}")


def approvals(
    ctx: typer.Context,
    environment: Annotated[str | None, typer.Option(help="Only releases into this environment")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """What waits for whom: releases pending approval, oldest first, with the approvals each still needs."""
    from contracts.commands import ListApprovals
    from contracts.subjects import CMD_LIST_APPROVALS

    try:
        query = command(ListApprovals, environment=environment)
    except CliError as exc:
        fail(str(exc), exc.code)
    rows = ask(ctx, nats_url, CMD_LIST_APPROVALS, query).data.get("approvals") or []
    if not rows:
        say("nothing waits for an approval")
        return
    table = Table(title="releases waiting for approvals, oldest first")
    for column in ("release", "service", "env", "class", "requested by", "waiting since", "needs", "approved by"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(v)) for v in (
            row["release_id"], row["service"], row["environment"], row["release_class"], row["requested_by"],
            row["waiting_since"][:19], "; ".join(row["needs"]), ", ".join(row["approved_by"]) or "-",
        )))
    out.print(table)
