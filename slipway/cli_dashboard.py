"""`slipway dashboard login`: a short-lived token to read the dashboard, signed with your own key.

It prints a login link (open it: the dashboard keeps the token in a cookie), the token itself, for
`Authorization: Bearer` from scripts, and its id. `slipway up` prints a link the same way. Both record the
token in the data directory's ledger (libs.dashboard_ledger): `slipway dashboard tokens` lists them and
`slipway dashboard revoke ID` ends one, which the dashboard refuses from its next request on.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from slipway.cli_identity import AsOption, signing_identity
from slipway.context import USAGE_ERROR, CliError, fail, globals_of, out, say

dashboard_app = typer.Typer(help="The web dashboard and its HTTP API.", no_args_is_help=True)
UP_LINK_LIFETIME = timedelta(hours=12)  # the link `slipway up` prints: a working day, then `dashboard login`


def login_link(url: str, signer: str, seed: bytes, lifetime: timedelta, credentials: Path) -> tuple[str, str]:
    """(the login link, the token in it), the token recorded in the ledger beside the registry in `credentials`."""
    from libs.dashboard_ledger import TokenLedger
    from libs.dashboard_tokens import claims_of, issue

    now = datetime.now(UTC)
    token = issue(signer, seed, lifetime, now)
    TokenLedger(credentials).issued(claims_of(token), now)
    return f"{url}/login?token={token}", token


def _credentials(ctx: typer.Context) -> Path:
    from libs.identities import credentials_dir

    return credentials_dir(globals_of(ctx).data_dir)


def _ledger(ctx: typer.Context):  # noqa: ANN202 - a TokenLedger, imported late to keep the CLI's start fast
    from libs.dashboard_ledger import TokenLedger

    return TokenLedger(_credentials(ctx))


def dashboard_url(data_dir: Path) -> str | None:
    from services.dashboard.address import read_address

    return read_address(data_dir)


@dashboard_app.command("login")
def login(
    ctx: typer.Context,
    as_name: AsOption = None,
    minutes: Annotated[int, typer.Option(help="How long the token lasts (at most 1440, a day)")] = 60,
    url: Annotated[str | None, typer.Option(help="The dashboard's address; default the running stack's")] = None,
) -> None:
    """Print a login link to the dashboard and a token for `Authorization: Bearer`, signed as you."""
    from libs.dashboard_tokens import MAX_LIFETIME

    lifetime = timedelta(minutes=minutes)
    try:
        if not timedelta(0) < lifetime <= MAX_LIFETIME:
            raise CliError(f"--minutes must be between 1 and {int(MAX_LIFETIME.total_seconds() // 60)}, got {minutes}",
                           USAGE_ERROR)
        address = url or dashboard_url(globals_of(ctx).data_dir)
        if address is None:
            raise CliError(f"no dashboard is running from {globals_of(ctx).data_dir} (`slipway up` starts one), "
                           "or give its address with --url", 1)
        signer, seed, _ = signing_identity(ctx, as_name)
        link, token = login_link(address.rstrip("/"), signer, seed, lifetime, _credentials(ctx))
    except CliError as exc:
        fail(str(exc), exc.code)
    from libs.dashboard_tokens import claims_of

    say(f"dashboard login for {escape(signer)}, valid {minutes} min (open the link; scripts send the token as "
        "`Authorization: Bearer <token>`):")
    out.print(link, soft_wrap=True, markup=False, highlight=False)
    out.print(token, soft_wrap=True, markup=False, highlight=False)
    token_id = claims_of(token).token_id
    say(f"token id {token_id} (`slipway dashboard revoke {token_id}` ends it alone)")


@dashboard_app.command("tokens")
def tokens(ctx: typer.Context) -> None:
    """The dashboard tokens issued on this machine or revoked here that have not expired, newest first."""
    from slipway import render

    now = datetime.now(UTC)
    found = _ledger(ctx).records(now)
    if not found:
        say("no live dashboard tokens recorded here (`slipway dashboard login` issues one)")
        return
    out.print(render.titled_table("dashboard tokens", ("id", "identity", "issued", "expires", "state"), [
        (r.token_id, r.identity or "(issued elsewhere)", r.issued_at.isoformat(timespec="seconds") if r.issued_at else None,
         r.expires_at.isoformat(timespec="seconds"),
         f"revoked at {r.revoked_at.isoformat(timespec='seconds')}" if r.revoked_at else "valid") for r in found]))


@dashboard_app.command("revoke")
def revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="The token's id (`dashboard tokens`)")]) -> None:
    """Revoke one dashboard token: the dashboard refuses it from its next request on (the person's other tokens
    and key stay valid; `slipway identity revoke` ends them all)."""
    from libs.dashboard_ledger import UnknownTokenId

    try:
        record, fresh = _ledger(ctx).revoke(token_id, datetime.now(UTC))
    except UnknownTokenId as exc:
        fail(str(exc), USAGE_ERROR)
    assert record.revoked_at is not None  # revoke() sets it
    whose = f" of {escape(record.identity)}" if record.identity else " (not issued here: revoked for the longest a token lives)"
    when = record.revoked_at.isoformat(timespec="seconds")
    say(f"token {token_id}{whose} revoked at {when}" if fresh else f"token {token_id}{whose} was already revoked at {when}")


def up_login_line(store, url: str | None) -> str:  # noqa: ANN001 - an IdentityStore
    """What `slipway up` prints about the dashboard: its address and a login link that works for 12 hours,
    signed as $SLIPWAY_IDENTITY or else the first person whose key this machine holds (the one made on first start)."""
    import os

    from contracts.identity import Kind
    from slipway.cli_identity import IDENTITY_ENV

    if url is None:
        return "dashboard: not running"
    people = [r.name for r in store.registry().identities
              if r.kind is Kind.PERSON and r.revoked_at is None and store.seed_file(Kind.PERSON, r.name).exists()]
    wanted = os.environ.get(IDENTITY_ENV)
    name = wanted if wanted in people else (people[0] if people else None)
    if name is None:
        return f"dashboard: {url}  (nobody here can log in: `slipway identity create NAME --roles ...`, then " \
               "`slipway dashboard login --as NAME`)"
    link, _ = login_link(url, f"person:{name}", store.seed(Kind.PERSON, name), UP_LINK_LIFETIME, store.directory)
    return f"dashboard: {url}  log in as person:{name} for 12 h: {link}"
