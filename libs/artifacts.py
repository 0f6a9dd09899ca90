"""Fetch an artifact and check its digest while streaming it: never trust bytes unverified."""

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

CHUNK = 1 << 16


class ArtifactError(Exception):
    """The artifact could not be fetched or does not match its declared digest."""


def local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


async def fetch_verified(uri: str, digest: str, cache_dir: Path, timeout: float = 60.0) -> tuple[Path, int]:
    """Return a local path whose bytes hash to `digest` (sha256:<hex>), and its size.

    Local files are hashed in place; http(s) artifacts are streamed into `cache_dir`, named by digest
    (content-addressed), and hashed on the way in.
    """
    expected = digest.removeprefix("sha256:")
    path = local_path(uri)
    if path is not None:
        actual, size = hash_file(path)
        _check(uri, expected, actual)
        return path, size
    if urlparse(uri).scheme not in ("http", "https"):
        raise ArtifactError(f"unsupported artifact URI scheme in {uri!r}: use a path, file://, http:// or https://")
    return await _download(uri, expected, cache_dir, timeout)


def hash_file(path: Path) -> tuple[str, int]:
    if not path.is_file():
        raise ArtifactError(f"artifact not found: {path}")
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


async def _download(uri: str, expected: str, cache_dir: Path, timeout: float) -> tuple[Path, int]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"sha256-{expected}"
    if target.exists():
        actual, size = hash_file(target)  # checked on every retrieval, cached or not
        if actual == expected:
            return target, size
        target.unlink()
    sha, size = hashlib.sha256(), 0
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as out:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
                async with client.stream("GET", uri) as response:
                    if response.status_code != 200:
                        raise ArtifactError(f"fetching {uri} answered HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes(CHUNK):
                        sha.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        _check(uri, expected, sha.hexdigest())
        os.replace(tmp_name, target)
        return target, size
    except httpx.HTTPError as exc:
        raise ArtifactError(f"fetching {uri} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _check(uri: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactError(f"digest mismatch for {uri}: declared sha256:{expected}, actual sha256:{actual}")
