"""Keys and the identity registry on disk: `<data dir>/credentials/`, readable by its owner only.

- `<kind>.<name>.nk`: an identity's nkey seed (its private key), mode 0600;
- `registry.json`: every identity's public record (contracts.identity.Registry), mode 0600.

nkeys encodes the keys the way nats-server reads them; PyNaCl (nkeys' own dependency) verifies
a signature from a public key alone, which nkeys cannot.
"""

import base64
import binascii
import fcntl
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import nacl.exceptions
import nacl.signing
import nkeys

from contracts.envelope import utcnow
from contracts.identity import IdentityRecord, Kind, Registry, Role, identity_id

REGISTRY_FILE = "registry.json"


def credentials_dir(data_dir: Path) -> Path:
    return data_dir / "credentials"


def seed_path(directory: Path, kind: Kind | str, name: str) -> Path:
    return directory / f"{Kind(kind).value}.{name}.nk"


def existing_seed(data_dir: Path, kind: Kind | str, name: str) -> Path | None:
    """The seed file of `<kind>:<name>` in `data_dir`'s credentials, if this machine holds it."""
    path = seed_path(credentials_dir(data_dir), kind, name)
    return path if path.exists() else None


def new_seed() -> bytes:
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)


def public_key_of(seed: bytes) -> str:
    return nkeys.from_seed(seed).public_key.decode()


def sign(seed: bytes, data: bytes) -> str:
    """An ed25519 signature of `data`, base64 (url-safe, unpadded) so it fits a NATS header."""
    return base64.urlsafe_b64encode(_key_pair(seed).sign(data)).rstrip(b"=").decode()


@functools.lru_cache(maxsize=64)
def _key_pair(seed: bytes) -> nkeys.KeyPair:
    # Decoding a seed costs as much as signing with it (`make bench`); a process signs with one or two keys.
    return nkeys.from_seed(seed)


def verify(public_key: str, data: bytes, signature: str) -> bool:
    try:
        raw_sig = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        nacl.signing.VerifyKey(_raw_public_key(public_key)).verify(data, raw_sig)
    except (ValueError, binascii.Error, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError):
        return False
    return True


def _raw_public_key(public_key: str) -> bytes:
    decoded = base64.b32decode(public_key.encode())
    prefix, raw, crc = decoded[0], decoded[1:-2], decoded[-2:]
    if prefix != nkeys.PREFIX_BYTE_USER or len(raw) != 32:
        raise ValueError("not an nkey user public key")
    if nkeys.crc16(bytearray(decoded[:-2])).to_bytes(2, "little") != crc:
        raise ValueError("public key checksum does not match")
    return raw


def write_private(path: Path, data: bytes) -> None:
    """Create or replace `path` with mode 0600 from the start: the bytes are never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class IdentityStore:
    """The credentials directory: seeds and the registry, changed under a file lock by one writer at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cached: tuple[float, int, Registry] | None = None

    @property
    def registry_path(self) -> Path:
        return self.directory / REGISTRY_FILE

    def exists(self) -> bool:
        return self.registry_path.exists()

    def registry(self) -> Registry:
        """The registry as it is on disk now; re-read only when the file changed, so checking is cheap."""
        try:
            stat = self.registry_path.stat()
        except FileNotFoundError:
            return Registry()
        if self._cached and self._cached[:2] == (stat.st_mtime, stat.st_size):
            return self._cached[2]
        registry = Registry.model_validate_json(self.registry_path.read_bytes())
        self._cached = (stat.st_mtime, stat.st_size, registry)
        return registry

    def get(self, ident: str) -> IdentityRecord | None:
        return next((record for record in self.registry().identities if record.id == ident), None)

    def by_public_key(self, public_key: str) -> IdentityRecord | None:
        return next((record for record in self.registry().identities if record.public_key == public_key), None)

    def seed(self, kind: Kind | str, name: str) -> bytes:
        return seed_path(self.directory, kind, name).read_bytes().strip()

    def seed_file(self, kind: Kind | str, name: str) -> Path:
        return seed_path(self.directory, kind, name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.fdopen(os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600), "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, registry: Registry) -> None:
        write_private(self.registry_path, registry.model_dump_json(indent=2).encode())
        self._cached = None

    def create(self, kind: Kind, name: str, roles: tuple[Role, ...] = (), teams: tuple[str, ...] = (),
               *, replace: bool = False) -> IdentityRecord:
        """A new key pair: the seed file and the registry entry. An existing identity is kept unless `replace`."""
        with self._locked():
            registry = self.registry()
            ident = identity_id(kind, name)
            current = next((r for r in registry.identities if r.id == ident), None)
            if current is not None and current.revoked_at is None and not replace:
                raise IdentityExists(f"identity {ident} already exists (revoke it first to issue a new key)")
            seed = new_seed()
            record = IdentityRecord(
                id=ident, kind=kind, name=name, public_key=public_key_of(seed), roles=tuple(sorted(set(roles))),
                teams=tuple(sorted(set(teams))), created_at=utcnow(),
            )
            write_private(seed_path(self.directory, kind, name), seed + b"\n")
            kept = tuple(r for r in registry.identities if r.id != ident)
            self._save(Registry(identities=(*kept, record)))
            return record

    def revoke(self, ident: str, at: datetime | None = None) -> IdentityRecord:
        """From `at` (now) on the key is refused; its record stays, so what it signed before still verifies."""
        with self._locked():
            registry = self.registry()
            record = next((r for r in registry.identities if r.id == ident), None)
            if record is None:
                raise UnknownIdentity(f"no identity {ident}")
            if record.revoked_at is not None:
                return record
            revoked = record.model_copy(update={"revoked_at": at or utcnow()})
            self._save(Registry(identities=tuple(revoked if r.id == ident else r for r in registry.identities)))
            seed_path(self.directory, record.kind, record.name).unlink(missing_ok=True)
            return revoked

    def ensure(self, kind: Kind, name: str, roles: tuple[Role, ...] = (), teams: tuple[str, ...] = ()) -> bool:
        """Create the identity unless a live one with its seed file exists; True if it was created."""
        current = self.get(identity_id(kind, name))
        if current is not None and current.revoked_at is None and seed_path(self.directory, kind, name).exists():
            return False
        self.create(kind, name, roles, teams, replace=True)
        return True


class IdentityExists(Exception):
    pass


class UnknownIdentity(Exception):
    pass
