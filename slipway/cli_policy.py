"""`slipway policy check`: validate the gatekeeper's policy files without applying them."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from slipway.cli_identity import AsOption
from slipway.cli_ops import ask_signed
from slipway.context import USAGE_ERROR, NatsUrlOption, err, say

policy_app = typer.Typer(help="The gatekeeper's policy files (infra/policies/).", no_args_is_help=True)


@policy_app.command("check")
def check(
    path: Annotated[Path | None, typer.Argument(
        help="A policy directory, or one policy file (checked alone); default SLIPWAY_POLICY_DIR (with "
        "SLIPWAY_SERVICE_CATALOGUE), else infra/policies",
        show_default=False)] = None,
) -> None:
    """Validate policy files; print each problem as file:line: field: message and exit 2 if there is any."""
    from libs.policy_yaml import PolicyError
    from libs.settings import Settings
    from services.gatekeeper.policy_files import FILES, load_policy, load_policy_file

    settings = Settings()
    target = path if path is not None else settings.policy_dir
    # With no argument, check what the gatekeeper would load: the configured catalogue may live elsewhere.
    own = target / "services.yaml"
    catalogue = settings.service_catalogue if path is None and settings.service_catalogue.resolve() != own.resolve() \
        else None
    try:
        if target.is_file():
            load_policy_file(target)
            say(f"{escape(str(target))}: ok")
            return
        policy = load_policy(target, catalogue)
    except PolicyError as broken:
        for problem in broken.problems:
            err.print(escape(str(problem)), soft_wrap=True, highlight=False)
        err.print(f"[red]{len(broken.problems)} problem(s)[/]; nothing was applied")
        raise typer.Exit(USAGE_ERROR) from None
    present = [name for name in FILES if (target / name).is_file()]
    if catalogue is not None:
        say(f"catalogue: {escape(str(catalogue))}")
    absent = [name for name in FILES if name not in present]
    say(f"{escape(str(target))}: ok ({', '.join(present)})")
    if absent:
        say(f"defaults for {', '.join(absent)}")
    levels = ", ".join(f"{name} from {score}" for name, score in policy.risk.levels.items())
    say(f"risk levels: {levels}; {len(policy.windows.windows)} recurring window(s); "
        f"{len(policy.services.services)} catalogued service(s)")


@policy_app.command("reload")
def reload(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why; kept with your signature in the audit trail")] = "",
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Have the running gatekeeper read its policy files now (release managers). A broken policy is refused with
    file, line and field, and the last good one stays in force; the gatekeeper also reloads by itself when files change."""
    from contracts.commands import ReloadPolicy
    from contracts.subjects import CMD_RELOAD_POLICY

    result = ask_signed(ctx, nats_url, CMD_RELOAD_POLICY, ReloadPolicy(reason=reason), as_)
    say(f"[green]ok:[/] {escape(result.message)}")
