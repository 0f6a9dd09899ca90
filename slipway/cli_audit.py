"""`slipway audit`: verify the hash-chained trail (from a signed checkpoint, in full, or a range), sign a
checkpoint, show filtered events, answer who did what to a release, export CloudEvents, rebuild projections."""

import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.markup import escape

from slipway import render
from slipway.cli_ops import ask, command
from slipway.context import CliError, NatsUrlOption, err, fail, globals_of, out, run, say

audit_app = typer.Typer(help="The hash-chained audit trail: verify, show, who, export.", no_args_is_help=True)

VERIFY_TIMEOUT_S = 600.0  # a full verify of millions of records takes a while; from a checkpoint, seconds
EXPORT_PAGE = 200

Release = Annotated[str | None, typer.Option("--release", help="Only this release's events")]
Service = Annotated[str | None, typer.Option(help="Only this service's events")]
Team = Annotated[str | None, typer.Option(help="Only this team's events (the event's team, else its release's)")]
Actor = Annotated[str | None, typer.Option(help="Only events this identity is responsible for, e.g. person:alice")]
Environment = Annotated[str | None, typer.Option(help="Only this environment's events")]
Types = Annotated[list[str] | None, typer.Option("--type", help="Only events of this type (repeat for several)")]
Since = Annotated[str | None, typer.Option(help="From this time: ISO 8601 (local unless zoned) or ago: 2h, 7d")]
Until = Annotated[str | None, typer.Option(help="Before this time: ISO 8601 or ago: 30m, 1d")]


def _filters(release: str | None, service: str | None, team: str | None, actor: str | None,
             environment: str | None, types: list[str] | None, since: str | None, until: str | None) -> dict[str, Any]:
    return {"release_id": release, "service": service, "team": team, "actor": actor, "environment": environment,
            "types": types or [], "since": since, "until": until}


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option("--full", help="Re-hash the whole log, not only what follows the newest "
                                                      "signed checkpoint")] = False,
    from_seq: Annotated[int | None, typer.Option("--from", help="Re-hash from this seq")] = None,
    to_seq: Annotated[int | None, typer.Option("--to", help="Re-hash up to this seq")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Recompute the audit trail's hash chain from the newest signed checkpoint that holds; exit 1 when it is broken."""
    from contracts.commands import VerifyAudit
    from contracts.queries import AuditReply
    from contracts.subjects import CMD_AUDIT_VERIFY
    from libs.client import send_command

    try:
        query = command(VerifyAudit, full=full, from_seq=from_seq, to_seq=to_seq)
    except CliError as exc:
        fail(str(exc), exc.code)
    url = globals_of(ctx, nats_url).nats_url
    result = run(send_command(url, CMD_AUDIT_VERIFY, query, timeout=VERIFY_TIMEOUT_S), url)
    if "records" not in result.data:
        fail(result.message or "the audit check failed", 1)
    reply = AuditReply.model_validate(result.data)
    say(f"records: {reply.records}")
    say(f"head hash: {escape(str(reply.head_hash or '-'))}")
    span = f"{reply.checked_from}..{reply.checked_to}" if reply.checked_from is not None else "none"
    how = {"checkpoint": f"from signed checkpoint {reply.checkpoint_seq}", "range": "a range"}.get(reply.mode, "in full")
    say(f"verified {how}: re-hashed {reply.rehashed} records ({span}); {reply.checkpoints} checkpoints checked")
    if result.ok:
        say(f"[green]ok:[/] the audit trail is intact ({escape(result.message)})")
        return
    for bad in reply.bad_checkpoints:
        err.print(f"[red]checkpoint {bad.seq}:[/] {escape(bad.reason)}", soft_wrap=True)
    if reply.first_bad_seq is not None:
        err.print(f"[red]broken[/] at seq {reply.first_bad_seq}: {escape(reply.reason)}", soft_wrap=True)
    elif reply.unverified_count:
        err.print(f"[red]{reply.unverified_count} signed command(s) do not verify:[/]", soft_wrap=True)
        for cmd in reply.unverified_commands:
            err.print(f"  record {cmd.seq} ({escape(cmd.type)} {escape(cmd.event_id)}): {escape(cmd.reason)}",
                      soft_wrap=True)
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(ctx: typer.Context, nats_url: NatsUrlOption = None) -> None:
    """Have the collector sign a checkpoint of its log as it is now (it signs one every N records anyway)."""
    from contracts.audit_queries import CheckpointAudit
    from contracts.subjects import CMD_AUDIT_CHECKPOINT

    result = ask(ctx, nats_url, CMD_AUDIT_CHECKPOINT, CheckpointAudit())
    say(f"[green]ok:[/] {escape(result.message)}")


@audit_app.command("show")
def audit_show(
    ctx: typer.Context, release: Release = None, service: Service = None, team: Team = None, actor: Actor = None,
    environment: Environment = None, types: Types = None, since: Since = None, until: Until = None,
    limit: Annotated[int, typer.Option(help="Events per page (at most 200)")] = 50,
    page: Annotated[int, typer.Option(help="Which page, from 1, in log order")] = 1,
    after: Annotated[int | None, typer.Option(help="Only events after this seq (what the last page says)")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """The logged events that match every filter, in log order, a page at a time; with --release, who did what first."""
    from contracts.audit_queries import AuditEventsReply, ShowAudit
    from contracts.subjects import CMD_AUDIT_SHOW

    try:
        query = command(ShowAudit, **_filters(release, service, team, actor, environment, types, since, until),
                        limit=limit, page=page, after=after)
    except CliError as exc:
        fail(str(exc), exc.code)
    if release:
        _who(ctx, nats_url, release, missing_ok=True)
    reply = AuditEventsReply.model_validate(ask(ctx, nats_url, CMD_AUDIT_SHOW, query).data)
    if not reply.events:
        where = f"page {page} is past the end" if page > 1 or after else "no events match"
        say(f"{where}: {_matching(reply)} matching in all ({escape(reply.filter)})")
        return
    rows = [(e.seq, render.when(e.occurred_at.isoformat()), render.styled(e.type), e.release_id or "-",
             e.service or "-", e.environment or "-", e.team or "-", e.actor or "-",
             ("[red]TAMPERED[/] " if not e.intact else "") + (f"[yellow]flagged:[/] {escape(render.short(e.flag, 60))}"
                                                             if e.flag else ("" if not e.intact else "ok")))
            for e in reply.events]
    columns = ("seq", "occurred", "type", "release", "service", "env", "team", "actor", "record")
    out.print(render.titled_table(f"audit trail ({escape(reply.filter)})", columns, rows, styles=False))
    pages = -(-(reply.total or 0) // reply.limit)
    more = f"; next: --after {reply.next_after}" if reply.next_after else ""
    of = f"{max(pages, 1)}+" if reply.total_capped else f"{max(pages, 1)}"
    say(f"page {reply.page} of {of} ({_matching(reply)} matching events){more}")


def _matching(reply: Any) -> str:
    return f"more than {reply.total:,}" if reply.total_capped else f"{reply.total}"


@audit_app.command("who")
def audit_who(ctx: typer.Context, release_id: Annotated[str, typer.Argument(help="The release")],
              nats_url: NatsUrlOption = None) -> None:
    """Who triggered this deployment, which commit and artifact it deployed, who approved and intervened, how it ended."""
    _who(ctx, nats_url, release_id, missing_ok=False)


def _who(ctx: typer.Context, nats_url: str | None, release_id: str, missing_ok: bool) -> None:
    from contracts.audit_queries import WhoAudit, WhoReply
    from contracts.subjects import CMD_AUDIT_WHO
    from libs.client import send_command

    try:
        query = command(WhoAudit, release_id=release_id)
    except CliError as exc:
        fail(str(exc), exc.code)
    url = globals_of(ctx, nats_url).nats_url
    result = run(send_command(url, CMD_AUDIT_WHO, query), url)
    if not result.ok:
        if missing_ok:
            return
        fail(result.message, 1)
    who = WhoReply.model_validate(result.data)

    def at(value: Any) -> str:
        return value.isoformat() if value else "-"

    rows = [
        ("release", f"{who.release_id} ({who.service or '?'} {who.version or '?'} to {who.environment or '?'}, "
                    f"team {who.team or '?'})"),
        ("requested by", f"{who.requested_by or '?'} via {who.requested_via or '?'} at {at(who.requested_at)}"),
        ("commit", f"{who.commit_sha or '?'} committed at {at(who.committed_at)}"),
        ("artifact", f"{who.artifact_digest or '?'} ({who.artifact_uri or '?'})"),
        ("approved by", "; ".join(f"{a.actor}{' (signed)' if a.signed else ''} at {at(a.at)}"
                                  + (f": {a.comment}" if a.comment else "") for a in who.approvers) or "-"),
        ("interventions", "; ".join(f"{i.what} by {i.actor}{' (signed)' if i.signed else ''} at {at(i.at)}"
                                    + (f": {i.comment}" if i.comment else "") for i in who.interventions) or "-"),
        ("outcome", f"{who.outcome} at {at(who.outcome_at)}"
                    + (f", {who.deployed_version} deployed" if who.deployed_version else "")),
    ]
    out.print(render.titled_table(f"who: {escape(who.release_id)} ({who.events} events)", ("", ""), rows))


@audit_app.command("export")
def audit_export(
    ctx: typer.Context, release: Release = None, service: Service = None, team: Team = None, actor: Actor = None,
    environment: Environment = None, types: Types = None, since: Since = None, until: Until = None,
    output: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output)")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Matching events as JSON lines of CloudEvents 1.0 (application/cloudevents+json), CDEvents types where they exist."""
    from contracts.audit_queries import ShowAudit

    try:
        query = command(ShowAudit, **_filters(release, service, team, actor, environment, types, since, until),
                        limit=EXPORT_PAGE)
    except CliError as exc:
        fail(str(exc), exc.code)
    url = globals_of(ctx, nats_url).nats_url
    if output is None:
        written, total = run(_export(url, query, sys.stdout.buffer), url)
    else:
        with output.open("wb") as sink:
            written, total = run(_export(url, query, sink), url)
    counted = f"{written} of {total}" if total >= written else f"{written}"  # past the count's cap: all of them
    err.print(f"exported {counted} matching events as CloudEvents"
              + (f" to {escape(str(output))}" if output else ""), soft_wrap=True)


async def _export(url: str, query: Any, sink: BinaryIO) -> tuple[int, int]:
    """Page through the matches with the seq cursor on one connection, writing each page as it comes."""
    from contracts.audit_queries import AuditEventsReply
    from contracts.commands import CommandResult
    from contracts.subjects import CMD_AUDIT_SHOW
    from libs.client import connected

    from slipway.audit_export import json_line

    written, total, after = 0, 0, 0
    async with connected(url) as nc:
        while True:
            question = query.model_copy(update={"after": after, "count": written == 0})
            reply = CommandResult.model_validate_json(
                (await nc.request(CMD_AUDIT_SHOW, question.model_dump_json().encode(), timeout=60)).data)
            if not reply.ok:
                raise CliError(reply.message, 1)
            page = AuditEventsReply.model_validate(reply.data)
            total = page.total if page.total is not None else total
            sink.writelines(json_line(entry) for entry in page.events)
            written += len(page.events)
            if page.next_after is None:
                return written, total
            after = page.next_after


@audit_app.command("rebuild")
def audit_rebuild(ctx: typer.Context) -> None:
    """Recompute the collector's projections (status, DORA, audit index) from its event log, in the data
    directory's database."""
    import asyncio

    from services.metrics_collector.rebuild import rebuild_projections

    settings = globals_of(ctx).settings()
    releases = asyncio.run(rebuild_projections(settings))
    say(f"[green]ok:[/] projections rebuilt from the event log: {releases} releases")
