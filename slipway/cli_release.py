"""`slipway release request`: ask for a release the way a CI system does, and watch it happen.
(`slipway release resume` / `abort` are slipway.cli_steer's `resume` / `abort`, kept under `release` too.)"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from contracts.subjects import release_request_subject
from libs.client import use_credentials
from slipway.context import CliError, DataDirOption, NatsUrlOption, fail, globals_of, run, say
from slipway.follow import FollowTimeout, follow_release, succeeded
from slipway.render import event_line

release_app = typer.Typer(help="Request releases; resume or abort one in flight.", no_args_is_help=True)

Opt = typer.Option


@release_app.command("request")
def request(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Release file (YAML or JSON), see infra/release.example.yaml")] = None,
    service: Annotated[str | None, Opt(help="Service to release")] = None,
    environment: Annotated[str | None, Opt(help="Target environment")] = None,
    version: Annotated[str | None, Opt(help="Version being released")] = None,
    team: Annotated[str | None, Opt(help="Owning team")] = None,
    artifact: Annotated[str | None, Opt(help="Artifact path or URL")] = None,
    digest: Annotated[str | None, Opt(help="sha256:<hex>; computed for a local artifact when omitted")] = None,
    commit: Annotated[str | None, Opt(help="Commit SHA; default `git rev-parse HEAD`")] = None,
    committed_at: Annotated[str | None, Opt(help="Commit time (ISO 8601); default from git")] = None,
    strategy: Annotated[str | None, Opt(help="canary | all-at-once | blue-green | rolling | immutable")] = None,
    steps: Annotated[str | None, Opt(help="Canary weights, e.g. 10,50,100")] = None,
    interval: Annotated[float | None, Opt(help="Seconds of analysis per step")] = None,
    keep_warm: Annotated[float | None, Opt(help="Blue-green: seconds the old pool runs on after the switch")] = None,
    instances: Annotated[int | None, Opt(help="Instances the version runs as (per region for --scope regional), "
                                          "overriding the environment's declaration (default: declared, else 1)")] = None,
    scope: Annotated[str | None, Opt(help="full | regional (region by region) | pilot (an opt-in group first)")] = None,
    bake: Annotated[float | None, Opt(help="Regional: seconds a wave that passed runs before the next region")] = None,
    max_surge: Annotated[int | None, Opt(help="Rolling: instances beyond the pool's size while replacing")] = None,
    max_unavailable: Annotated[int | None, Opt(help="Rolling: live instances that may be missing")] = None,
    max_error_rate: Annotated[float | None, Opt(help="Roll back above this error rate (0-1)")] = None,
    max_p99_ms: Annotated[float | None, Opt(help="Roll back above this p99 latency (ms)")] = None,
    min_requests: Annotated[int | None, Opt(help="Requests needed per step to judge it")] = None,
    requested_by: Annotated[str | None, Opt(help="Who asks; default $USER")] = None,
    release_class: Annotated[str | None, Opt(help="standard | emergency | major")] = None,
    release_id: Annotated[str | None, Opt(help="Default <service>-<version>-<ulid>")] = None,
    raw_json: Annotated[Path | None, Opt(help="Publish this file's bytes as they are (no validation)")] = None,
    wait: Annotated[bool, Opt("--wait/--no-wait", help="Follow the release until it ends")] = True,
    timeout: Annotated[float, Opt(help="Seconds to wait for the release to end")] = 120.0,
    nats_url: NatsUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Publish a ReleaseRequested built from FILE and/or flags (flags win), then follow it."""
    from slipway.releases import build_release

    g = globals_of(ctx, nats_url, data_dir)
    url = g.nats_url
    if raw_json is not None:
        if file is not None:
            fail("give either a release FILE or --raw-json, not both", 2)
        try:
            payload = raw_json.read_bytes()
        except OSError as exc:
            fail(f"cannot read {raw_json}: {exc.strerror or exc}", 2)
        release_id, event_id = ids_of(payload)
        team, service = scope_of(payload)
        team = team or catalogue_team(g, service)
        headers = {"Nats-Msg-Id": event_id} if event_id else None
        use_credentials(g.ci_credentials(team))
        subject = release_request_subject(team or "unknown", service or "unknown")
        coro = publish_and_follow(url, subject, payload, headers, release_id, event_id, wait, timeout)
        raise typer.Exit(run(coro, url))

    overrides: dict[str, Any] = {
        "service": service, "environment": environment, "version": version, "team": team, "artifact": artifact,
        "digest": digest, "commit": commit, "committed_at": committed_at, "strategy": strategy, "steps": steps,
        "interval": interval, "max_error_rate": max_error_rate, "max_p99_ms": max_p99_ms,
        "min_requests": min_requests, "requested_by": requested_by, "release_class": release_class,
        "keep_warm": keep_warm, "instances": instances, "max_surge": max_surge, "max_unavailable": max_unavailable,
        "scope": scope, "bake": bake,
        "release_id": release_id,
    }

    async def build_then_publish() -> int:
        # Validation errors surface before anything is published; a missing team is the catalogue's.
        event = build_release(file, overrides, team_of=lambda name: catalogue_team(g, name))
        body = event.model_dump_json().encode()
        use_credentials(g.ci_credentials(event.team))  # the team's pipeline requests its releases
        return await publish_and_follow(url, event.address(), body, event.headers(), event.release_id, event.event_id,
                                        wait, timeout)

    raise typer.Exit(run(build_then_publish(), url))


def catalogue_team(g: Any, service: str | None) -> str | None:
    """The team the service catalogue names for `service`: a request that names no team is that team's."""
    from libs.service_catalogue import CatalogueError, ServiceCatalogue

    if not service:
        return None
    try:
        return ServiceCatalogue.load(g.settings().service_catalogue).team_of(service)
    except CatalogueError as exc:
        raise CliError(str(exc), 2) from None


def strings_of(payload: bytes, *keys: str) -> tuple[str | None, ...]:
    """The values of `keys` in a raw payload, each None unless the payload is an object holding a non-empty string."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return tuple(None for _ in keys)
    return tuple(body[key] if isinstance(body.get(key), str) and body[key] else None for key in keys)


def scope_of(payload: bytes) -> tuple[str | None, str | None]:
    """team and service of a raw payload: they pick the subject and the identity."""
    team, service = strings_of(payload, "team", "service")
    return team, service


def ids_of(payload: bytes) -> tuple[str | None, str | None]:
    """release_id and event_id of a raw payload, when it has them."""
    release_id, event_id = strings_of(payload, "release_id", "event_id")
    return release_id, event_id


async def publish_and_follow(
    url: str, subject: str, payload: bytes, headers: dict[str, str] | None,
    release_id: str | None, event_id: str | None, wait: bool, timeout: float,
) -> int:
    from libs.bus import ensure_streams
    from libs.client import connected, current_credentials, publish_raw

    async with connected(url):
        pass  # fail fast and clearly when NATS is not there
    await ensure_streams(url, current_credentials())  # a request published before any service started is kept

    async def publish() -> None:
        await publish_raw(url, subject, payload, headers)
        say(f"[green]published[/] release request {escape(release_id or '(no release_id)')} to {escape(url)}")

    if not wait:
        await publish()
        return 0

    def show(event: dict[str, Any]) -> None:
        say(event_line(event))

    try:
        terminal = await follow_release(url, release_id, event_id, show, publish=publish, timeout=timeout)
    except FollowTimeout as exc:
        raise CliError(str(exc), 1) from None
    return outcome(terminal)


def outcome(terminal: dict[str, Any]) -> int:
    kind = terminal.get("type")
    if succeeded(terminal):
        say("[bold green]deployed[/] " + escape(f"{terminal.get('service')} {terminal.get('version')} "
                                                 f"to {terminal.get('environment')}"))
        return 0
    if kind == "RollbackCompleted":
        say(f"[bold red]rolled back:[/] {escape(str(terminal.get('root_cause')))}")
    elif kind == "ReleaseRequestRejected":
        say(f"[bold red]request rejected:[/] {escape(str(terminal.get('reason')))}")
        for error in terminal.get("errors") or []:
            say(f"  [bold]{escape(str(error.get('field')))}[/]: {escape(str(error.get('message')))}")
    elif kind == "ReleaseBlocked":
        say(f"[bold red]blocked:[/] {escape('; '.join(map(str, terminal.get('reasons') or [])))}")
    elif kind == "ReleaseRejected":
        say(f"[bold red]rejected by {escape(str(terminal.get('actor')))}:[/] {escape(str(terminal.get('comment')))}")
    else:
        say(f"[bold red]{escape(str(kind))}:[/] {escape(str(terminal.get('reason')))}")
    return 1
