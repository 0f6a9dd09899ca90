"""Which artifact sources a release may name: files under allowed directories, URLs on allowed hosts.

Decided before the file is opened or stat'ed and before any request is sent, so a refusal is the same
whether the file exists or not; its reason names the setting to change and never the file's size,
hash, existence or where a symlink leads.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import httpx

if TYPE_CHECKING:
    from libs.settings import Settings

# Slipway's own artifact areas in data_dir; the rest of it (the services' databases, credentials) is not.
OWN_AREAS = ("demo-artifacts", "artifact-cache")
DEFAULT_PORTS = {"http": 80, "https": 443}
LOCAL_FILE_HOSTS = ("", "localhost")


@dataclass(frozen=True)
class Refused:
    reason: str


@dataclass(frozen=True)
class ArtifactSources:
    """Resolved directories and (host, port) pairs; port None stands for the scheme's default port."""

    dirs: tuple[Path, ...]
    hosts: frozenset[tuple[str, int | None]]

    @classmethod
    def of(cls, dirs: list[Path], hosts: list[str]) -> "ArtifactSources":
        return cls(tuple(Path(d).resolve() for d in dirs), frozenset(host_entry(entry) for entry in hosts))

    @classmethod
    def from_settings(cls, settings: "Settings") -> "ArtifactSources":
        own = [settings.data_dir / area for area in OWN_AREAS]
        return cls.of([*settings.artifact_dirs, *own], settings.artifact_hosts)

    def decide(self, uri: str) -> Path | httpx.URL | Refused:
        """The resolved file or the URL to read for `uri`, or why it may not be read."""
        parsed = urlsplit(uri)
        scheme = parsed.scheme
        if scheme == "":
            return self._local(uri, Path(uri))
        if scheme == "file":
            if parsed.netloc not in LOCAL_FILE_HOSTS:
                return Refused(f"artifact source not allowed: {uri} names a file on another host")
            return self._local(uri, Path(unquote(parsed.path)))
        if scheme in DEFAULT_PORTS:
            return self.remote(uri)
        return Refused(f"unsupported artifact URI scheme in {uri!r}: use a path, file://, http:// or https://")

    def remote(self, uri: str | httpx.URL) -> httpx.URL | Refused:
        """`uri` parsed by the client that will fetch it, if it is http(s) on an allowed host."""
        try:
            url = httpx.URL(uri)
        except httpx.InvalidURL:
            return Refused("artifact URL is not a valid URL")
        if url.userinfo:  # never echoed: it may hold a password
            return Refused("artifact URLs may not carry a user name or password")
        default = DEFAULT_PORTS.get(url.scheme)
        port = url.port or default
        allowed = (url.host, port) in self.hosts or (port == default and (url.host, None) in self.hosts)
        if default is None or not allowed:
            return Refused(
                f"artifact source not allowed: {url} is not on a host in SLIPWAY_ARTIFACT_HOSTS "
                "(host or host:port entries)"
            )
        return url

    def _local(self, uri: str, path: Path) -> Path | Refused:
        refused = Refused(
            f"artifact source not allowed: {uri} is not a file under a directory in SLIPWAY_ARTIFACT_DIRS"
        )
        if ".." in path.parts:
            return refused
        try:
            # Symlinks followed: a link inside an allowed directory that leads outside it is outside.
            resolved = path.resolve(strict=False)
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
            return refused
        if not any(resolved.is_relative_to(allowed) for allowed in self.dirs):
            return refused
        return resolved


def host_entry(entry: str) -> tuple[str, int | None]:
    """`host` or `host:port` (IPv6 in brackets) as the lower-case host and the port, if one is given."""
    parsed = urlsplit(f"//{entry.strip()}")
    try:
        port = parsed.port
    except ValueError as exc:
        raise ValueError(f"SLIPWAY_ARTIFACT_HOSTS entry {entry!r} has an invalid port") from exc
    if not parsed.hostname or parsed.username is not None or parsed.path:
        raise ValueError(f"SLIPWAY_ARTIFACT_HOSTS entry {entry!r} is not a host or host:port")
    return parsed.hostname.lower(), port
