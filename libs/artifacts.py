"""Fetch an artifact and check its digest while streaming it: never trust bytes unverified.

Only sources the configured ArtifactSources allow are read, every redirect included.

Reading and hashing run in worker threads and every fetch is bounded in size and time, so a huge
file or a server that never answers costs its own caller a deadline and never blocks the event loop.
"""

import asyncio
import functools
import hashlib
import os
import ssl
import stat
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import unquote, urlparse

import httpx

from libs.artifact_sources import ArtifactSources, Refused
from libs.settings import Settings

CHUNK = 1 << 20
GIB = 1024**3
# As many as the artifact-verifier's concurrent verifications, so no hash waits behind another.
HASHING_THREADS = 8
MAX_REDIRECTS = 5
_DEFAULTS = Settings.model_fields
T = TypeVar("T")


class ArtifactError(Exception):
    """The artifact could not be fetched or does not match its declared digest."""


@dataclass(frozen=True)
class FetchLimits:
    """How big an artifact may be and how long fetching it may take."""

    max_bytes: int = _DEFAULTS["max_artifact_bytes"].default
    connect_timeout_s: float = 5.0
    read_timeout_s: float = _DEFAULTS["artifact_read_timeout_s"].default
    deadline_s: float = _DEFAULTS["artifact_deadline_s"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> "FetchLimits":
        return cls(
            max_bytes=settings.max_artifact_bytes,
            read_timeout_s=settings.artifact_read_timeout_s,
            deadline_s=settings.artifact_deadline_s,
        )

    def http_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout_s, read=self.read_timeout_s, write=self.read_timeout_s,
            pool=self.connect_timeout_s,
        )

    def refuse_size(self, what: str, size: int, at_least: bool = False) -> ArtifactError:
        return ArtifactError(
            f"artifact {what} is {'at least ' if at_least else ''}{size} bytes ({size / GIB:.1f} GiB), "
            f"over the limit of {self.max_bytes} bytes "
            f"({self.max_bytes / GIB:.1f} GiB, SLIPWAY_MAX_ARTIFACT_BYTES)"
        )


def local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


def allowed_source(uri: str, sources: ArtifactSources) -> Path | httpx.URL:
    """The resolved file or the URL `uri` names, or ArtifactError if configuration does not allow it."""
    source = sources.decide(uri)
    if isinstance(source, Refused):
        raise ArtifactError(source.reason)
    return source


async def fetch_verified(
    uri: str, digest: str, cache_dir: Path, sources: ArtifactSources, limits: FetchLimits = FetchLimits()
) -> tuple[Path, int]:
    """Return a local path whose bytes hash to `digest` (sha256:<hex>), and its size.

    Local files are hashed in place; http(s) artifacts are streamed into `cache_dir`, named by digest
    (content-addressed), and hashed on the way in.
    """
    expected = digest.removeprefix("sha256:")
    source = await asyncio.to_thread(allowed_source, uri, sources)  # resolving symlinks touches the disk
    try:
        async with asyncio.timeout(limits.deadline_s):
            if isinstance(source, Path):
                return await _verify_local(uri, source, expected, limits)
            return await _download(uri, source, expected, cache_dir, sources, limits)
    except TimeoutError:
        raise ArtifactError(f"fetching and hashing {uri} did not finish within {limits.deadline_s:g}s") from None


async def in_hashing_thread(work: Callable[..., T], *args: object) -> T:
    """Run blocking reads and hashing off the event loop, in threads that yield the CPU to it."""
    return await asyncio.get_running_loop().run_in_executor(_hashing_pool(), work, *args)


@functools.cache
def _hashing_pool() -> ThreadPoolExecutor:
    # Its own pool: huge artifacts being hashed cannot take every thread of the default executor.
    return ThreadPoolExecutor(HASHING_THREADS, thread_name_prefix="slipway-hash", initializer=_lower_priority)


def _lower_priority() -> None:
    # Hashing is bulk work: on a busy machine it should wait for a CPU, the event loop should not.
    if sys.platform == "linux":  # only there does a thread id name one thread to setpriority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


async def _verify_local(uri: str, path: Path, expected: str, limits: FetchLimits) -> tuple[Path, int]:
    actual, size = await in_hashing_thread(hash_file, path, limits)
    _check(uri, expected, actual)
    return path, size


def hash_file(path: Path, limits: FetchLimits = FetchLimits()) -> tuple[str, int]:
    """sha256 hex digest and size of a regular file; refuses one over the size limit before reading it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ArtifactError(f"artifact not found: {path}") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {path}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ArtifactError(f"artifact is not a regular file: {path}")
    if info.st_size > limits.max_bytes:
        raise limits.refuse_size(str(path), info.st_size)
    sha, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                size += len(chunk)
                if size > limits.max_bytes:  # it grew while being read
                    raise limits.refuse_size(str(path), size, at_least=True)
                sha.update(chunk)
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {path}: {exc}") from exc
    return sha.hexdigest(), size


async def _download(
    uri: str, url: httpx.URL, expected: str, cache_dir: Path, sources: ArtifactSources, limits: FetchLimits
) -> tuple[Path, int]:
    await asyncio.to_thread(cache_dir.mkdir, parents=True, exist_ok=True)
    target = cache_dir / f"sha256-{expected}"
    if await asyncio.to_thread(target.exists):
        actual, size = await in_hashing_thread(hash_file, target, limits)  # checked on every retrieval
        if actual == expected:
            return target, size
        await asyncio.to_thread(target.unlink)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as out:
            actual, size = await _stream_into(uri, url, out, sources, limits)
        _check(uri, expected, actual)
        os.replace(tmp_name, target)
        return target, size
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


async def _stream_into(
    uri: str, url: httpx.URL, out: BinaryIO, sources: ArtifactSources, limits: FetchLimits
) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    tls = await asyncio.to_thread(_tls_context)
    try:
        async with httpx.AsyncClient(timeout=limits.http_timeout(), verify=tls) as client:
            async with _followed(client, uri, url, sources) as response:
                if response.status_code != 200:
                    raise ArtifactError(f"fetching {uri} answered HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes:
                    raise limits.refuse_size(f"{uri} (Content-Length)", int(declared))
                async for chunk in response.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise limits.refuse_size(uri, size, at_least=True)
                    await in_hashing_thread(_absorb, sha, out, chunk)
    except httpx.ConnectTimeout:
        raise ArtifactError(f"fetching {uri}: no connection within {limits.connect_timeout_s:g}s") from None
    except httpx.ReadTimeout:
        raise ArtifactError(f"fetching {uri}: the server sent nothing for {limits.read_timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise ArtifactError(f"fetching {uri} failed: {type(exc).__name__}: {exc}") from exc
    return sha.hexdigest(), size


@asynccontextmanager
async def _followed(
    client: httpx.AsyncClient, uri: str, url: httpx.URL, sources: ArtifactSources
) -> AsyncIterator[httpx.Response]:
    """The streamed response to GET `url`, redirects followed one hop at a time, each checked like `uri`."""
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(client.build_request("GET", url), stream=True)
        if not response.is_redirect:
            try:
                yield response
            finally:
                await response.aclose()
            return
        await response.aclose()
        hop = sources.remote(response.next_request.url) if response.next_request is not None else None
        if not isinstance(hop, httpx.URL):  # where it pointed is not told: that is the internal host's business
            raise ArtifactError(
                f"artifact source not allowed: {uri} redirects to a URL not on a host in SLIPWAY_ARTIFACT_HOSTS"
            )
        url = hop
    raise ArtifactError(f"fetching {uri} was redirected more than {MAX_REDIRECTS} times")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes 0.1-0.25 s of CPU: a client built with the default would block the
    # event loop that long on every download. Built once, in a thread.
    return httpx.create_ssl_context()


def _absorb(sha: "hashlib._Hash", out: BinaryIO, chunk: bytes) -> None:
    sha.update(chunk)
    out.write(chunk)


def _check(uri: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactError(mismatch(uri, expected))


def mismatch(uri: str, expected: str) -> str:
    # The actual hash is never told: it would turn the verifier into an oracle for any file's contents.
    return f"digest mismatch for {uri}: its bytes do not hash to the declared sha256:{expected}"
