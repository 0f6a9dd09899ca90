"""`slipway env`: environment declarations (infra/environments/) checked, shown and compared; drift asked for."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from slipway.cli_identity import AsOption
from slipway.cli_ops import ask_signed
from slipway.context import USAGE_ERROR, NatsUrlOption, err, fail, say

env_app = typer.Typer(help="Environments as code (infra/environments/<env>.yaml).", no_args_is_help=True)
DirOption = Annotated[Path | None, typer.Option(
    "--dir", help="The declarations' directory; default SLIPWAY_ENVIRONMENTS_DIR, else infra/environments",
    show_default=False)]


def _declarations(directory: Path | None) -> Any:
    from libs.environments import load_environments
    from libs.policy_yaml import PolicyError
    from libs.settings import Settings

    try:
        return load_environments(directory if directory is not None else Settings().environments_dir)
    except PolicyError as broken:
        _print_problems(broken)


def _print_problems(broken: Any) -> None:
    for problem in broken.problems:
        err.print(escape(str(problem)), soft_wrap=True, highlight=False)
    fail(f"{len(broken.problems)} problem(s)", USAGE_ERROR)


def _declared(directory: Path | None, name: str) -> Any:
    found = _declarations(directory).get(name)
    if found is None:
        fail(f"environment {name} is not declared in {directory or 'the environments directory'}", USAGE_ERROR)
    return found


@env_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="A declaration (checked with the others of its directory, for "
                                              "isolation) or a directory of them")],
) -> None:
    """Validate declarations; print each problem as file:line: field: message and exit 2 if there is any."""
    if not path.exists():
        fail(f"{path}: no such file or directory", USAGE_ERROR)
    declarations = _declarations(path if path.is_dir() else path.parent)
    names = sorted(declarations.environments) if path.is_dir() else [path.stem]
    if not names:
        fail(f"{path}: no environment declarations (*.yaml) there", USAGE_ERROR)
    for name in names:
        env = declarations.environments[name]
        kind = "production" if env.production else f"non-production, quota {env.quotas.max_instances} instance(s)"
        say(f"{escape(name)}: ok ({kind}; {env.total_instances} instance(s) in {', '.join(env.regions)}; drift "
            f"reconciled {'never' if env.reconcile == 'off' else env.reconcile})")


@env_app.command("show")
def show(name: Annotated[str, typer.Argument(help="An environment, e.g. staging")], directory: DirOption = None) -> None:
    """Print an environment's declaration as slipway reads it."""
    import yaml

    env = _declared(directory, name)
    say(escape(yaml.safe_dump(env.model_dump(mode="json", exclude_none=True), sort_keys=False).rstrip()))


@env_app.command("parity")
def parity(
    left: Annotated[str, typer.Argument(help="An environment, e.g. staging")],
    right: Annotated[str, typer.Argument(help="The environment it should match, e.g. prod")],
    directory: DirOption = None,
) -> None:
    """List every difference between two environments; exit 1 if one is not in either file's allowed_differences."""
    from libs.env_parity import parity as differences

    found = differences(_declared(directory, left), _declared(directory, right))
    refused = [d for d in found if not d.allowed]
    for d in found:
        mark = "allowed" if d.allowed else "[red]NOT ALLOWED[/]"
        say(f"{mark}  {escape(d.path)}: {escape(left)}={escape(str(d.left))}  {escape(right)}={escape(str(d.right))}")
    if refused:
        fail(f"{len(refused)} difference(s) between {left} and {right} not marked allowed", 1)
    say(f"[green]ok:[/] {left} and {right} differ only where allowed ({len(found)} difference(s))")


@env_app.command("drift")
def drift(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="An environment, e.g. prod")],
    reconcile: Annotated[bool, typer.Option(
        "--reconcile", help="Then put what drifted back as declared (refused where the declaration says "
                            "drift.reconcile: off)")] = False,
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Have the deployer compare what runs in ENV with its declaration now (SREs, release managers); each drifted
    service is recorded as DriftDetected, and with --reconcile what the deployer did as DriftReconciled. Exit 1
    when something drifted and was not (all) put back."""
    from contracts.commands import CheckDrift
    from contracts.subjects import CMD_CHECK_DRIFT

    result = ask_signed(ctx, nats_url, CMD_CHECK_DRIFT, CheckDrift(environment=name, reconcile=reconcile), as_)
    for service, findings in result.data.get("drift", {}).items():
        for finding in findings:
            where = f" in {finding['region']}" if finding.get("region") else ""
            say(f"{escape(service)}: [red]{escape(finding['kind'])}[/]{escape(where)} expected "
                f"{escape(finding['expected'])}, actual {escape(finding['actual'])}: {escape(finding['detail'])}")
    reconciled = result.data.get("reconciled", {})
    for service, done in reconciled.items():
        for verb in ("started", "stopped", "restarted"):
            for item in done[verb]:
                say(f"{escape(service)}: [green]{verb}[/] {escape(item)}")
        for item in done["left"]:
            say(f"{escape(service)}: [yellow]left[/] {escape(item)}")
    if result.data.get("drift") and (not reconcile or any(done["left"] for done in reconciled.values())
                                     or set(result.data["drift"]) - set(reconciled)):
        fail(result.message, 1)
    say(f"[green]ok:[/] {escape(result.message)}")
