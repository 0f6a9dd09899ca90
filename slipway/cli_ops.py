"""Commands people send to running services: status and freezes (audit: slipway.cli_audit; DORA: slipway.cli_dora)."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from contracts.rights import TEAM_SCOPED_COMMANDS

from slipway import render
from slipway.cli_identity import AsOption
from slipway.context import USAGE_ERROR, CliError, NatsUrlOption, fail, globals_of, out, run, say

freeze_app = typer.Typer(help="Declare, lift and list deployment freezes.", no_args_is_help=True)

DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'2h', '90m', '1h30m', '1d' -> timedelta."""
    cleaned = text.strip().lower()
    if not cleaned or DURATION.sub("", cleaned).strip():
        raise CliError(f"--duration must look like 30m, 2h, 1h30m or 1d, got {text!r}", USAGE_ERROR)
    return timedelta(seconds=sum(float(n) * UNIT_S[u] for n, u in DURATION.findall(cleaned)))


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601; a time without a zone is local time."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option} must be an ISO 8601 time such as 2030-01-31T18:00, got {text!r}", USAGE_ERROR) from None
    return value.astimezone() if value.tzinfo is None else value


def parse_window(start: str | None, end: str | None, duration: str | None, options: tuple[str, str, str]) -> tuple[datetime, datetime]:
    """A window from a start (default now) and either an end or a duration; `options` names the three options."""
    start_option, end_option, duration_option = options
    if (duration is None) == (end is None):
        raise CliError(f"give exactly one of {duration_option} and {end_option}", USAGE_ERROR)
    starts = parse_time(start, start_option) if start else datetime.now(UTC)
    return starts, starts + parse_duration(duration) if duration else parse_time(str(end), end_option)


def command(model: type[BaseModel], **fields: Any) -> BaseModel:
    try:
        return model(**fields)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or model.__name__}: {e['msg']}"
                            for e in exc.errors(include_url=False))
        raise CliError(f"invalid {model.__name__}: {details}", USAGE_ERROR) from None


def ask(ctx: typer.Context, nats_url: str | None, subject: str, cmd: BaseModel) -> Any:
    """Send a command, print its message when it failed, return the CommandResult."""
    from libs.client import send_command

    url = globals_of(ctx, nats_url).nats_url
    result = run(send_command(url, subject, cmd), url)
    if not result.ok:
        fail(result.message or f"{subject} failed", 1)
    return result


def ask_signed(ctx: typer.Context, nats_url: str | None, subject: str, cmd: BaseModel, as_name: str | None) -> Any:
    """Send a person's command signed with their key (see slipway.cli_identity.signing_identity)."""
    from libs.client import send_command
    from libs.command_signing import sign_command
    from slipway.cli_identity import signing_identity

    try:
        signer, seed, seed_file = signing_identity(ctx, as_name)
        try:
            signed = sign_command(subject, cmd, signer, seed)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - nkeys raises several types for a malformed seed
            raise CliError(f"cannot sign as {signer}: the seed file does not hold a usable key "
                           f"({type(exc).__name__})", USAGE_ERROR) from None
    except CliError as exc:
        fail(str(exc), exc.code)
    g = globals_of(ctx, nats_url)
    url = g.nats_url
    release_id = getattr(cmd, "release_id", None)
    if subject in TEAM_SCOPED_COMMANDS and isinstance(release_id, str):
        address = run(addressed_to_team(url, subject, release_id, seed_file, signer, g), url)
        if address != subject:
            signed = sign_command(address, cmd, signer, seed)  # type: ignore[arg-type]
    # The person's key also connects: the server lets only people whose roles allow it send this command.
    result = run(send_command(url, signed.subject, signed, credentials=seed_file, identity=signer), url)
    if not result.ok:
        fail(result.message or f"{subject} failed", 1)
    return result


async def addressed_to_team(url: str, subject: str, release_id: str, seed_file: Any, signer: str, g: Any) -> str:
    """`<subject>.<team>.<service>` of the release, as the gatekeeper knows it (every release passes it: the team
    from the release itself, else from the service catalogue); the bare subject when it is not known there."""
    from contracts.governance import ShowRelease
    from contracts.subjects import CMD_SHOW_RELEASE, address
    from libs.client import send_command
    from libs.service_catalogue import ServiceCatalogue

    reply = await send_command(url, CMD_SHOW_RELEASE, ShowRelease(release_id=release_id),
                               credentials=seed_file, identity=signer)
    if not reply.ok:
        return subject
    service = str(reply.data.get("service") or "")
    spec = reply.data.get("spec") if isinstance(reply.data.get("spec"), dict) else {}
    team = spec.get("team") if isinstance(spec.get("team"), str) else None
    team = team or ServiceCatalogue.load(g.settings().service_catalogue).team_of(service)
    if not (service and team):
        return subject
    return address(f"{subject}.{{team}}.{{service}}", {"team": team, "service": service})


HISTORY_PAGE = 200  # events of one release per page of `status --release-id`


def status(
    ctx: typer.Context,
    release_id: Annotated[str | None, typer.Option(help="Show one release and its events")] = None,
    limit: Annotated[int | None, typer.Option(
        help=f"Releases per page (default 20), or with --release-id its events per page (default {HISTORY_PAGE})")] = None,
    page: Annotated[int, typer.Option(help="Which page, from 1 (newest first; a release's events oldest first)")] = 1,
    team: Annotated[list[str] | None, typer.Option(help="Only this team's releases (repeat for several)")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Releases and where each one stands."""
    from contracts.commands import QueryReleases
    from contracts.queries import ReleasesReply
    from contracts.subjects import CMD_RELEASE_STATUS
    from slipway.stages import stages

    try:
        query = command(QueryReleases, release_id=release_id, limit=limit or (HISTORY_PAGE if release_id else 20),
                        page=page, teams=team or None)
    except CliError as exc:
        fail(str(exc), exc.code)
    reply = ReleasesReply.model_validate(ask(ctx, nats_url, CMD_RELEASE_STATUS, query).data)
    releases = [r.model_dump(mode="json") for r in reply.releases]
    if not releases:
        if page > 1 and reply.total:
            say(f"page {page} is past the end: {reply.total} releases in all")
            return
        of = f" of team {escape(', '.join(team))}" if team else ""
        say(f"no release {escape(release_id)} known" if release_id else f"no releases{of} yet")
        raise typer.Exit(1 if release_id else 0)
    out.print(render.releases_table(releases))
    if release_id and len(releases) == 1 and isinstance(releases[0].get("history"), list):
        history = [event for event in releases[0]["history"] if isinstance(event, dict)]
        # Stages from the events on this page: the first page (oldest first) holds how the release began.
        if found := stages(history):
            out.print(render.titled_table("stages", ("stage", "started", "took", "outcome", "detail"), [
                (s.name, render.clock(s.started.isoformat() if s.started else None), render.duration(s.seconds),
                 s.outcome, s.detail or "-") for s in found]))
        for event in history:
            say(render.event_line(event))
    pages = -(-reply.total // reply.limit)
    if pages > 1:
        what = "events" if release_id else "releases"
        say(f"page {reply.page} of {pages} ({reply.total} {what}; --page N for another)")


@freeze_app.command("create")
def freeze_create(
    ctx: typer.Context,
    environment: Annotated[str, typer.Option(help="Environment to freeze")],
    reason: Annotated[str, typer.Option(help="Why; shown to anyone whose release is blocked")],
    duration: Annotated[str | None, typer.Option(help="How long from --from, e.g. 2h, 1d")] = None,
    until: Annotated[str | None, typer.Option(help="End time, ISO 8601 (local time unless zoned)")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start time, ISO 8601; default now")] = None,
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Freeze an environment: releases to it are blocked for the window."""
    from contracts.commands import FreezeEnvironment
    from contracts.subjects import CMD_FREEZE

    try:
        starts, ends = parse_window(from_, until, duration, ("--from", "--until", "--duration"))
        cmd = command(FreezeEnvironment, environment=environment, starts_at=starts, ends_at=ends, reason=reason)
    except CliError as exc:
        fail(str(exc), exc.code)
    result = ask_signed(ctx, nats_url, CMD_FREEZE, cmd, as_)
    say(f"[green]ok:[/] {escape(result.message)}")


@freeze_app.command("lift")
def freeze_lift(
    ctx: typer.Context,
    freeze_id: Annotated[str, typer.Argument(help="The freeze to lift (see `slipway freeze list`)")],
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Lift a freeze before it ends."""
    from contracts.commands import LiftFreeze
    from contracts.subjects import CMD_LIFT_FREEZE

    try:
        cmd = command(LiftFreeze, freeze_id=freeze_id)
    except CliError as exc:
        fail(str(exc), exc.code)
    result = ask_signed(ctx, nats_url, CMD_LIFT_FREEZE, cmd, as_)
    say(f"[green]ok:[/] {escape(result.message)}")


@freeze_app.command("list")
def freeze_list(
    ctx: typer.Context,
    environment: Annotated[str | None, typer.Option(help="Only this environment")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Current and upcoming freezes."""
    from contracts.commands import ListFreezes
    from contracts.subjects import CMD_LIST_FREEZES

    result = ask(ctx, nats_url, CMD_LIST_FREEZES, ListFreezes(environment=environment))
    freezes = result.data.get("freezes") or []
    if not freezes:
        say("no freezes" + (f" for {escape(environment)}" if environment else ""))
        return
    out.print(render.freezes_table(freezes))
