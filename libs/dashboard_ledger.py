"""The dashboard tokens this machine issued and the ones revoked: a small JSON file beside the identity registry.

`slipway dashboard login` (and `slipway up`'s link) record each token they issue; `slipway dashboard revoke ID`
marks one revoked, recorded or not (a token issued elsewhere is revoked for the longest a token can live). The
dashboard asks `revoked_at` on every request: the file is re-read only when it changed (its mtime and size), so
a check is one stat() and a dict look-up, and a revocation holds across restarts of either side. Entries leave
the file once their token has expired, since an expired token is refused anyway: the file stays small.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from libs.dashboard_tokens import CLOCK_SKEW, MAX_LIFETIME, TOKEN_ID_PATTERN, Claims
from libs.identities import write_private

LEDGER_FILE = "dashboard-tokens.json"


class TokenRecord(BaseModel):
    token_id: str
    identity: str | None = None  # None: revoked here, issued elsewhere
    issued_at: datetime | None = None
    expires_at: datetime  # the token's, or the latest it could be for one issued elsewhere
    revoked_at: datetime | None = None


class Ledger(BaseModel):
    tokens: list[TokenRecord] = []


class UnknownTokenId(ValueError):
    """What `revoke` was given is not a token id."""


class TokenLedger:
    def __init__(self, directory: Path) -> None:
        self.path = directory / LEDGER_FILE
        self._cached: tuple[tuple[int, int, int], dict[str, datetime]] | None = None

    def revoked_at(self, token_id: str) -> datetime | None:
        """When the token was revoked, or None; cheap enough for every request."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        # Each write replaces the file (a new inode), so a change within one mtime tick is still seen.
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cached is None or self._cached[0] != version:
            revoked = {r.token_id: r.revoked_at for r in self._read().tokens if r.revoked_at is not None}
            self._cached = (version, revoked)
        return self._cached[1].get(token_id)

    def records(self, now: datetime) -> list[TokenRecord]:
        """The tokens still alive, recorded or revoked here, newest first."""
        alive = [r for r in self._read().tokens if r.expires_at > now]
        return sorted(alive, key=lambda r: (r.issued_at or r.revoked_at or now), reverse=True)

    def issued(self, claims: Claims, now: datetime) -> None:
        with self._changing(now) as ledger:
            ledger.tokens.append(TokenRecord(token_id=claims.token_id, identity=claims.identity,
                                             issued_at=claims.issued_at, expires_at=claims.expires_at))

    def revoke(self, token_id: str, now: datetime) -> tuple[TokenRecord, bool]:
        """(the token's record, whether this call revoked it: False when it already was)."""
        if not TOKEN_ID_PATTERN.match(token_id):
            raise UnknownTokenId(f"{token_id!r} is not a token id (16 hex digits, as `slipway dashboard tokens` "
                                 "lists them and /api/me shows)")
        with self._changing(now) as ledger:
            record = next((r for r in ledger.tokens if r.token_id == token_id), None)
            if record is None:
                record = TokenRecord(token_id=token_id, expires_at=now + MAX_LIFETIME + CLOCK_SKEW)
                ledger.tokens.append(record)
            if record.revoked_at is not None:
                return record, False
            record.revoked_at = now
            return record, True

    def _read(self) -> Ledger:
        try:
            return Ledger.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return Ledger()

    @contextmanager
    def _changing(self, now: datetime) -> Iterator[Ledger]:
        """The ledger under a file lock, written back whole (and pruned of expired tokens) when the block ends."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.fdopen(os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600), "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                ledger = self._read()
                yield ledger
                ledger.tokens = [r for r in ledger.tokens if r.expires_at > now]
                write_private(self.path, ledger.model_dump_json(indent=2).encode())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
