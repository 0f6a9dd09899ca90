"""`slipway pause / resume / promote / abort RELEASE`: a person steering a release in flight, whatever its strategy.

Each is a signed command (your identity, `--as` to choose one) sent to the service that owns it:
pause, resume and promote to the deployer, abort to the rollback-controller. The answer says what
happened, or why nothing did.
"""

from typing import Annotated

import typer
from pydantic import BaseModel
from rich.markup import escape

from slipway.cli_identity import AsOption
from slipway.cli_ops import ask_signed, command
from slipway.context import CliError, NatsUrlOption, fail, say

Opt = typer.Option
ReleaseArg = Annotated[str, typer.Argument(help="A release in flight (see `slipway status`)")]


def _send(ctx: typer.Context, nats_url: str | None, subject: str, model: type[BaseModel], as_: str | None,
          **fields: str) -> None:
    try:
        cmd = command(model, **fields)
    except CliError as exc:
        fail(str(exc), exc.code)
    result = ask_signed(ctx, nats_url, subject, cmd, as_)
    say(f"[green]ok:[/] {escape(result.message)}")


def pause(
    ctx: typer.Context, release_id: ReleaseArg,
    reason: Annotated[str, Opt(help="Why; kept in the audit trail")],
    as_: AsOption = None, nats_url: NatsUrlOption = None,
) -> None:
    """Hold a release where it is: its step is still judged (a failing verdict still rolls it back), but a passing
    one does not move it on until it is resumed or promoted."""
    from contracts.commands import PauseRelease
    from contracts.subjects import CMD_PAUSE_RELEASE

    _send(ctx, nats_url, CMD_PAUSE_RELEASE, PauseRelease, as_, release_id=release_id, reason=reason)


def resume(
    ctx: typer.Context, release_id: ReleaseArg,
    comment: Annotated[str, Opt(help="Why it may go on; kept in the audit trail")],
    as_: AsOption = None, nats_url: NatsUrlOption = None,
) -> None:
    """Lift a person's pause, and accept the step a release is held at (after an inconclusive verdict, or a passing
    one while paused): it goes on as after a passing verdict."""
    from contracts.commands import ResumeRelease
    from contracts.subjects import CMD_RESUME_RELEASE

    _send(ctx, nats_url, CMD_RESUME_RELEASE, ResumeRelease, as_, release_id=release_id, comment=comment)


def promote(
    ctx: typer.Context, release_id: ReleaseArg,
    comment: Annotated[str, Opt(help="Why its remaining analysis is skipped; kept in the audit trail")],
    as_: AsOption = None, nats_url: NatsUrlOption = None,
) -> None:
    """Skip a release's remaining analysis and steps: it goes to all traffic, then succeeds as usual."""
    from contracts.commands import PromoteRelease
    from contracts.subjects import CMD_PROMOTE_RELEASE

    _send(ctx, nats_url, CMD_PROMOTE_RELEASE, PromoteRelease, as_, release_id=release_id, comment=comment)


def abort(
    ctx: typer.Context, release_id: Annotated[str, typer.Argument(help="A release in flight, held or not")],
    reason: Annotated[str, Opt(help="Why; becomes the rollback's reason")],
    as_: AsOption = None, nats_url: NatsUrlOption = None,
) -> None:
    """Roll a release in flight back to the version that was stable."""
    from contracts.commands import AbortRelease
    from contracts.subjects import CMD_ABORT_RELEASE

    _send(ctx, nats_url, CMD_ABORT_RELEASE, AbortRelease, as_, release_id=release_id, reason=reason)
