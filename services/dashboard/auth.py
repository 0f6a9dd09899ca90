"""Who reads the dashboard: a token from `slipway dashboard login` (libs.dashboard_tokens), verified per request.

The token comes as `Authorization: Bearer <token>` (scripts, curl) or in the `slipway_token` cookie
that `/login?token=...` sets (the browser: the login link `slipway up` and `slipway dashboard login`
print). No token, or one that does not verify, is a 401 with the reason. The cookie is HttpOnly and
SameSite=Strict, so the page's own requests carry it and other sites' do not; it lasts as long as the token.
A token revoked by id (`slipway dashboard revoke`, libs.dashboard_ledger) is a 401 saying when.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse

from contracts.identity import IdentityRecord
from libs.dashboard_tokens import Reader, TokenRefused, reader_of

COOKIE = "slipway_token"
CHALLENGE = 'Bearer realm="slipway dashboard"'


class Authenticator:
    """Checks tokens against the registry as it is now (`lookup`), so a revoked key ends its tokens at once, and
    against the tokens revoked one by one (`revoked_at`, by token id)."""

    def __init__(self, lookup: Callable[[str], IdentityRecord | None] | None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 revoked_at: Callable[[str], datetime | None] = lambda _: None) -> None:
        self.lookup, self.clock, self.revoked_at = lookup, clock, revoked_at

    def reader(self, token: str) -> Reader:
        if self.lookup is None:
            raise TokenRefused("this dashboard has no identity registry (SLIPWAY_IDENTITY_REGISTRY): nobody can log in")
        reader = reader_of(token, self.lookup, self.clock())
        if (when := self.revoked_at(reader.token_id)) is not None:
            raise TokenRefused(f"token {reader.token_id} of {reader.identity} was revoked at {when.isoformat()}: "
                               "`slipway dashboard login` issues a new one")
        return reader

    async def __call__(self, request: Request) -> Reader:
        """The FastAPI dependency of every route that shows data."""
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else request.cookies.get(COOKIE, "")
        if not token:
            raise unauthorised("no credential: send `Authorization: Bearer <token>` or open the login link "
                               "`slipway dashboard login` prints")
        try:
            return self.reader(token)
        except TokenRefused as refused:
            raise unauthorised(str(refused)) from None


def unauthorised(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'})


def forbidden_team(reader: Reader, team: str | None, what: str) -> HTTPException:
    shown = ", ".join(sorted(reader.teams or ())) or "none"
    return HTTPException(403, f"{what} is of team {team or 'unknown'}; {reader.identity} reads the teams {shown}")


def login_routes(authenticator: Authenticator) -> APIRouter:
    routes = APIRouter()

    @routes.get("/login", tags=["auth"])
    async def login(token: Annotated[str, Query(description="A token from `slipway dashboard login`")]) -> RedirectResponse:
        """Exchange a login link's token for a cookie, then go to the page."""
        try:
            reader = authenticator.reader(token)
        except TokenRefused as refused:
            raise unauthorised(str(refused)) from None
        page = RedirectResponse("/", status_code=303)
        page.set_cookie(COOKIE, token, expires=reader.expires_at, httponly=True, samesite="strict", path="/")
        return page

    @routes.get("/logout", tags=["auth"])
    async def logout() -> RedirectResponse:
        page = RedirectResponse("/", status_code=303)
        page.delete_cookie(COOKIE, path="/")
        return page

    return routes
