"""`slipway flags`: a feature flag's exposure in one environment, changed without a deployment (signed)."""

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from slipway.cli_governance import _query, _signed
from slipway.cli_identity import AsOption
from slipway.cli_pir import print_table
from slipway.context import NatsUrlOption, say

flags_app = typer.Typer(help="Feature flags: switch on or off, roll out to a percent of users, list.",
                        no_args_is_help=True)
EnvOption = Annotated[str, typer.Option("--env", help="The environment, e.g. staging")]
FlagArgument = Annotated[str, typer.Argument(help="The flag key, as a release declared it")]


class Switch(StrEnum):
    ON = "on"
    OFF = "off"


def _change(ctx: typer.Context, nats_url: str | None, as_: str | None, flag: str, env: str, percent: int) -> None:
    from contracts.flags import ChangeFlag
    from contracts.subjects import CMD_CHANGE_FLAG

    result = _signed(ctx, nats_url, CMD_CHANGE_FLAG, as_, ChangeFlag, flag=flag, environment=env, percent=percent)
    say(f"[green]ok:[/] {escape(result.message)}")


@flags_app.command("set")
def set_flag(
    ctx: typer.Context, flag: FlagArgument, state: Annotated[Switch, typer.Argument(help="on or off")],
    env: EnvOption, as_: AsOption = None, nats_url: NatsUrlOption = None,
) -> None:
    """Turn a flag on (every user) or off (none) in one environment."""
    _change(ctx, nats_url, as_, flag, env, 100 if state is Switch.ON else 0)


@flags_app.command("rollout")
def rollout(
    ctx: typer.Context, flag: FlagArgument, env: EnvOption,
    percent: Annotated[int, typer.Option(help="Percent of targeting keys (users) served `on`, 0 to 100")],
    as_: AsOption = None, nats_url: NatsUrlOption = None,
) -> None:
    """Serve a flag to a percent of users (flagd fractional targeting: a user keeps their answer as it grows)."""
    _change(ctx, nats_url, as_, flag, env, percent)


@flags_app.command("list")
def list_flags(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """The flags each environment has, with their exposure and the release that declared them."""
    from contracts.flags import ListFlags
    from contracts.subjects import CMD_LIST_FLAGS

    flags = _query(ctx, nats_url, CMD_LIST_FLAGS, ListFlags, environment=env).data.get("flags") or []
    if not flags:
        say("no flags" + (f" in {escape(env)}" if env else ""))
        return
    print_table("Feature flags", ("flag", "env", "exposure", "declared by", "description"),
                [tuple(f.get(key) for key in ("flag", "environment", "exposure", "declared_by", "description"))
                 for f in flags], styles=False)

