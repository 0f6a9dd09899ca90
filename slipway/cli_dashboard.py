"""`slipway dashboard login`: a short-lived token to read the dashboard, signed with your own key.

It prints a login link (open it: the dashboard keeps the token in a cookie) and the token itself,
for `Authorization: Bearer` from scripts. `slipway up` prints a link the same way.
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


def login_link(url: str, signer: str, seed: bytes, lifetime: timedelta) -> tuple[str, str]:
    """(the login link, the token in it)."""
    from libs.dashboard_tokens import issue

    token = issue(signer, seed, lifetime, datetime.now(UTC))
    return f"{url}/login?token={token}", token


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
        link, token = login_link(address.rstrip("/"), signer, seed, lifetime)
    except CliError as exc:
        fail(str(exc), exc.code)
    say(f"dashboard login for {escape(signer)}, valid {minutes} min (open the link; scripts send the token as "
        "`Authorization: Bearer <token>`):")
    out.print(link, soft_wrap=True, markup=False, highlight=False)
    out.print(token, soft_wrap=True, markup=False, highlight=False)


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
    link, _ = login_link(url, f"person:{name}", store.seed(Kind.PERSON, name), UP_LINK_LIFETIME)
    return f"dashboard: {url}  log in as person:{name} for 12 h: {link}"
