"""`slipway evidence submit`: record a test result for an artifact digest, as the team's CI does, for promotion
gates. Flags, or a CDEvents testsuiterun.finished document (--cdevent FILE) converted by contracts.cdevents."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from slipway.context import CliError, DataDirOption, NatsUrlOption, fail, globals_of, run, say

evidence_app = typer.Typer(help="Evidence (test results) for artifact digests, read by promotion gates.",
                           no_args_is_help=True)

Opt = typer.Option
DEFAULT_ENVIRONMENT = "ci"  # where the tests ran, when neither the flag nor the CDEvent says


@evidence_app.command("submit")
def submit(
    ctx: typer.Context,
    digest: Annotated[str | None, Opt(help="sha256:<hex> of the artifact tested")] = None,
    kind: Annotated[str | None, Opt(help="What was tested, as promotion.yaml names it: performance, security...")] = None,
    outcome: Annotated[str | None, Opt(help="pass | fail | cancel | error")] = None,
    url: Annotated[str | None, Opt(help="Where the results are")] = None,
    service: Annotated[str | None, Opt(help="The service it is about; default: any service of the team")] = None,
    team: Annotated[str | None, Opt(help="The submitting team; default the service catalogue's for --service")] = None,
    environment: Annotated[str | None, Opt(help=f"Where the tests ran; default {DEFAULT_ENVIRONMENT}")] = None,
    reason: Annotated[str | None, Opt(help="Why it failed, or anything worth keeping")] = None,
    cdevent: Annotated[Path | None, Opt(help="A CDEvents testsuiterun.finished JSON file; flags win over it")] = None,
    nats_url: NatsUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Publish an EvidenceSubmitted as the team's CI identity (SLIPWAY_CREDENTIALS, else the team's CI key here)."""
    from contracts.events import ALL_SERVICES, EvidenceSubmitted
    from libs.client import use_credentials
    from slipway.cli_ops import command
    from slipway.cli_release import catalogue_team

    g = globals_of(ctx, nats_url, data_dir)
    given = {"digest": digest, "kind": kind, "outcome": outcome, "url": url, "reason": reason, "service": service,
             "environment": environment}
    try:
        fields = _from_cdevent(cdevent, given) if cdevent is not None else {k: v for k, v in given.items() if v}
        service = fields.pop("service", None)
        team = team or catalogue_team(g, service)
        if not team:
            raise CliError("give --team, or a --service the service catalogue names a team for", 2)
        if "outcome" not in fields:
            raise CliError("give --outcome (pass, fail, cancel or error), or a --cdevent", 2)
        fields.setdefault("environment", DEFAULT_ENVIRONMENT)
        evidence = command(EvidenceSubmitted, service=service, team=team, actor=f"ci:{team}", source="slipway-cli",
                           **fields)
    except CliError as exc:
        fail(str(exc), exc.code)
    use_credentials(g.ci_credentials(team))  # the team's pipeline vouches for its own artifacts
    run(_publish(g.nats_url, evidence), g.nats_url)
    say(f"[green]published[/] {escape(evidence.kind)} evidence ({escape(evidence.outcome)}) for "
        f"{escape(evidence.digest)}: team {escape(team)}, service {escape(evidence.service or ALL_SERVICES)}")


def _from_cdevent(path: Path, given: dict[str, str | None]) -> dict[str, Any]:
    from contracts.cdevents import NotATestSuiteRun, evidence_fields

    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", 2) from None
    except ValueError as exc:
        raise CliError(f"{path} is not JSON: {exc}", 2) from None
    try:
        return evidence_fields(document, **given)
    except NotATestSuiteRun as exc:
        raise CliError(f"{path}: {exc}", 2) from None


async def _publish(url: str, evidence: Any) -> None:
    from libs.bus import ensure_streams
    from libs.client import current_credentials, publish_event

    await ensure_streams(url, current_credentials())  # evidence published before any service started is kept
    await publish_event(url, evidence)
