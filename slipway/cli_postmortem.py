"""`slipway postmortem RELEASE`: a blameless post-mortem in Markdown, from the release's events in the log
(metrics-collector) and its post-implementation review (gatekeeper); people appear as their roles."""

from pathlib import Path
from typing import Annotated, Any

import typer

from slipway.context import CliError, DataDirOption, NatsUrlOption, fail, globals_of, out, run, say


def postmortem_command(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="The release to write it for")],
    output: Annotated[Path | None, typer.Option(help="Write the Markdown here instead of printing it")] = None,
    nats_url: NatsUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the blameless post-mortem of a release: timeline, detection and recovery, trigger, prompts."""
    from slipway.postmortem import postmortem

    g = globals_of(ctx, nats_url, data_dir)
    events, review = run(_gather(g.nats_url, release_id), g.nats_url)
    try:
        text = postmortem(release_id, events, _roles_in(g.data_dir), review)
    except ValueError as exc:
        fail(str(exc), 1)
    if output is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", 2)
    say(f"[green]written[/] {output} ({len(events)} events)")


async def _gather(url: str, release_id: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    from contracts.commands import QueryReleases
    from contracts.governance import ShowRelease
    from contracts.subjects import CMD_RELEASE_STATUS, CMD_SHOW_RELEASE
    from libs.client import send_command

    status = await send_command(url, CMD_RELEASE_STATUS, QueryReleases(release_id=release_id))
    if not status.ok:
        raise CliError(status.message or "the event log did not answer", 1)
    releases = status.data.get("releases") or []
    events = releases[0].get("history") or [] if releases else []
    shown = await send_command(url, CMD_SHOW_RELEASE, ShowRelease(release_id=release_id))
    # A release the gatekeeper never saw (rejected artifact) has no review to link: the post-mortem says so.
    return events, shown.data.get("pir") if shown.ok else None


def _roles_in(data_dir: Path):  # noqa: ANN202 - slipway.postmortem.RolesOf
    from libs.identities import IdentityStore, credentials_dir

    directory = credentials_dir(data_dir)
    store = IdentityStore(directory) if (directory / "registry.json").is_file() else None

    def roles_of(actor: str) -> tuple[str, ...] | None:
        record = store.get(actor) if store is not None else None
        return tuple(role.value for role in record.roles) if record is not None else None

    return roles_of
