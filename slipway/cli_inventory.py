"""`slipway inventory`: what version of each service is live where, as the gatekeeper knows it; `slipway evidence
list DIGEST`: the test results recorded for an artifact. Both are what promotion gates and `requires` judge."""

from typing import Annotated

import typer

from slipway.cli_governance import _query
from slipway.context import NatsUrlOption, out, say
from slipway.render import titled_table, when


def inventory(
    ctx: typer.Context,
    environment: Annotated[str | None, typer.Option(help="Only this environment")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """What is live where, from the deployer's events as the gatekeeper recorded them."""
    from contracts.governance import ListInventory
    from contracts.subjects import CMD_LIST_INVENTORY

    live = _query(ctx, nats_url, CMD_LIST_INVENTORY, ListInventory, environment=environment).data.get("live") or []
    if not live:
        say(f"nothing is known to be live in {environment or 'any environment'}")
        return
    out.print(titled_table("live", ("env", "service", "version", "release", "since"),
                           [(r["environment"], r["service"], r["version"], r["release_id"], when(r["since"]))
                            for r in live], styles=False))


def evidence_list(
    ctx: typer.Context,
    digest: Annotated[str, typer.Argument(help="sha256:<hex> of the artifact")],
    nats_url: NatsUrlOption = None,
) -> None:
    """The evidence recorded for a digest, newest first (the newest of each kind is the one that counts)."""
    from contracts.governance import ListEvidence
    from contracts.subjects import CMD_LIST_EVIDENCE

    found = _query(ctx, nats_url, CMD_LIST_EVIDENCE, ListEvidence, digest=digest).data.get("evidence") or []
    if not found:
        say(f"no evidence is recorded for {digest}")
        return
    out.print(titled_table(f"evidence for {digest}", ("kind", "outcome", "team", "service", "by", "at", "url"),
                           [(r["kind"], r["outcome"], r["team"], r["service"] or "any", r["actor"], when(r["at"]),
                             r["url"] or "-") for r in found]))
