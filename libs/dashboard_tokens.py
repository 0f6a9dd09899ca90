"""Short-lived tokens to read the dashboard, signed with an identity's own key and checked against the registry.

A token is `slw1.<claims>.<signature>`: the claims are base64url JSON ({"aud", "sub", "iat", "exp", "jti"},
times in Unix seconds, `jti` the token's id), the signature is ed25519 (the identity's nkey, the one it connects
to NATS with) over a domain-separated copy of the claims' text, so a token signs nothing else and nothing else
passes as a token. No session is stored on the server: the dashboard verifies each request against the registry
as it is on disk, so revoking a key ends its tokens at once, and against the revoked token ids
(libs.dashboard_ledger), so one token can end alone. A token issued before tokens carried an id is known by
one derived from its signature. Pure functions, the clock passed in.
"""

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.identity import IdentityRecord, Kind, Role
from libs.identities import sign, verify

PREFIX = "slw1"
AUDIENCE = "slipway-dashboard"
TOKEN_DOMAIN = b"slipway-dashboard-token/1\n"  # what the signature covers, before the claims
MAX_LIFETIME = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=2)  # a token issued on a clock this far ahead still reads
TOKEN_MAX = 2048
TOKEN_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")  # what `slipway dashboard revoke` takes
# Roles whose holders act on every team's releases (an SRE, a release manager) or approve any team's
# (the policy's approval authorities): they read every team. Developers and team leads read their teams.
TEAM_SCOPED_ROLES = frozenset({Role.DEVELOPER, Role.TEAM_LEAD})
READERS = (Kind.PERSON, Kind.ADMIN)  # people, and the operator who holds the data directory


class TokenRefused(Exception):
    """Why a token does not let its bearer read; the dashboard answers 401 with it."""


@dataclass(frozen=True)
class Reader:
    identity: str
    teams: frozenset[str] | None  # None: every team
    expires_at: datetime
    token_id: str = ""  # what `slipway dashboard revoke` ends this token by

    def reads(self, team: str | None) -> bool:
        return self.teams is None or (team is not None and team in self.teams)


def issue(signer: str, seed: bytes, lifetime: timedelta, now: datetime) -> str:
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise ValueError(f"a dashboard token lives between 1 s and {MAX_LIFETIME}, not {lifetime}")
    issued = int(now.timestamp())
    claims = {"aud": AUDIENCE, "sub": signer, "iat": issued, "exp": issued + int(lifetime.total_seconds()),
              "jti": secrets.token_hex(8)}
    body = _b64(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    return f"{PREFIX}.{body}.{sign(seed, TOKEN_DOMAIN + body.encode())}"


def readable_teams(record: IdentityRecord) -> frozenset[str] | None:
    if record.kind is Kind.ADMIN or any(role not in TEAM_SCOPED_ROLES for role in record.roles):
        return None
    return frozenset(record.teams)


@dataclass(frozen=True)
class Claims:
    """A token's claims as written, not yet verified: what the CLI records about a token it issues."""

    identity: str
    issued_at: datetime
    expires_at: datetime
    token_id: str


def claims_of(token: str) -> Claims:
    """The token's claims, checked for shape only (reader_of verifies them), or TokenRefused with the reason."""
    _, body, signature = _parts(token)
    claims = _claims(body)
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int) or not isinstance(claims.get("sub"), str):
        raise TokenRefused("the token's claims name no identity or no lifetime")
    return Claims(claims["sub"], datetime.fromtimestamp(issued, UTC), datetime.fromtimestamp(expires, UTC),
                  _token_id(claims, signature))


def reader_of(token: str, lookup: Callable[[str], IdentityRecord | None], now: datetime) -> Reader:
    """The reader a token names, or TokenRefused with the reason (revocation of the token itself is the caller's:
    it is state, kept by libs.dashboard_ledger)."""
    _, body, signature = _parts(token)
    claims = _claims(body)
    if claims.get("aud") != AUDIENCE or not isinstance(claims.get("sub"), str):
        raise TokenRefused(f"the token is not for {AUDIENCE} or names no identity")
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int) or not 0 < expires - issued <= MAX_LIFETIME.total_seconds():
        raise TokenRefused(f"the token's lifetime is not between 1 s and {MAX_LIFETIME}")
    issued_at, expires_at = datetime.fromtimestamp(issued, UTC), datetime.fromtimestamp(expires, UTC)
    if expires_at <= now:
        raise TokenRefused(f"the token expired at {expires_at.isoformat()}: `slipway dashboard login` issues a new one")
    if issued_at > now + CLOCK_SKEW:
        raise TokenRefused(f"the token was issued in the future ({issued_at.isoformat()})")
    record = lookup(claims["sub"])
    if record is None:
        raise TokenRefused(f"unknown identity {claims['sub']}: it is not in the identity registry")
    if record.kind not in READERS:
        raise TokenRefused(f"{record.id} is not a person: services, CI and on-call read the bus, not the dashboard")
    if record.revoked_at is not None:
        raise TokenRefused(f"{record.id}'s key was revoked at {record.revoked_at.isoformat()}")
    if not verify(record.public_key, TOKEN_DOMAIN + body.encode(), signature):
        raise TokenRefused(f"bad signature: the token does not verify with {record.id}'s registered key")
    return Reader(record.id, readable_teams(record), expires_at, _token_id(claims, signature))


def _parts(token: str) -> list[str]:
    parts = token.split(".")
    if len(token) > TOKEN_MAX or len(parts) != 3 or parts[0] != PREFIX:
        raise TokenRefused(f"not a slipway dashboard token (expected {PREFIX}.<claims>.<signature>)")
    return parts


def _claims(body: str) -> dict:
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise TokenRefused("the token's claims are not base64url JSON") from None
    if not isinstance(claims, dict):
        raise TokenRefused(f"the token is not for {AUDIENCE} or names no identity")
    return claims


def _token_id(claims: dict, signature: str) -> str:
    """The token's `jti`; for a token issued before tokens carried one, the start of its signature's digest."""
    jti = claims.get("jti")
    if isinstance(jti, str) and TOKEN_ID_PATTERN.match(jti):
        return jti
    return hashlib.sha256(signature.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
