"""Who may change a local router: the pure check of its admin token and what a refusal looks like.

The deployer gives each router a secret token in its environment; every state-changing admin call
must carry it as ``Authorization: Bearer <token>``. No I/O here, so it is unit-testable.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

TOKEN_ENV = "SLIPWAY_ROUTER_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 32  # secrets.token_urlsafe(32) gives 43 characters
RECENT_REFUSALS = 20  # how many refusals a router keeps to show; the count covers all of them


@dataclass(frozen=True)
class Refusal:
    at: float  # unix time
    remote: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "remote": self.remote, "reason": self.reason}


@dataclass(frozen=True)
class Refusals:
    """A router's refusals since it started: how many, and the most recent ones, oldest first."""

    count: int
    recent: tuple[Refusal, ...]

    @property
    def last(self) -> Refusal | None:
        return self.recent[-1] if self.recent else None


def admin_refusal(authorization: str | None, token: str) -> str | None:
    """Why an admin call with this Authorization header is refused, or None when it carries the token.

    The reason never repeats what the caller sent.
    """
    if not authorization:
        return "no Authorization header: the deployer's bearer token is required"
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return "Authorization is not a bearer token"
    # Bytes, because compare_digest refuses non-ASCII str; constant time whatever the caller sent.
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return "wrong bearer token"
    return None


def parse_refusals(payload: Any) -> Refusals:
    """Read a router's ``GET /refusals`` document; ValueError says what is wrong with it."""
    if not isinstance(payload, dict) or not isinstance(payload.get("count"), int) \
            or not isinstance(payload.get("recent"), list):
        raise ValueError('refusals must be an object with an integer "count" and a "recent" list')
    try:
        recent = tuple(Refusal(float(item["at"]), str(item["remote"]), str(item["reason"]))
                       for item in payload["recent"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"a recent refusal lacks at, remote or reason: {err!r}") from err
    return Refusals(payload["count"], recent)
