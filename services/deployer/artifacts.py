"""The deployer's own content-addressed copies of artifacts: the only bytes it ever runs.

A copy is written to a temporary file while it is hashed and renamed to ``sha256-<hex>`` only
when the digest matches, then made read-only; the name is the digest the bytes must have, so a
copy can be checked again at any time (after a restart, before every start) without the release
that brought it. Changing the file the release named afterwards changes nothing that runs.
"""

import asyncio
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from libs.artifact_sources import ArtifactSources
from libs.artifacts import (
    ArtifactError, FetchLimits, allowed_source, fetch_verified, hash_file, in_hashing_thread, mismatch,
)

CHUNK = 1 << 16
PREFIX = "sha256-"
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


class ArtifactStore:
    def __init__(self, root: Path, sources: ArtifactSources, limits: FetchLimits = FetchLimits()) -> None:
        self.root = Path(root).resolve()
        self.sources = sources  # the same sources, size and time bounds the artifact-verifier applied
        self.limits = limits
        # Admissions in progress by (uri, digest): fifty releases of one artifact at once wait for one check of
        # its copy instead of hashing it fifty times over in the (low-priority) hashing threads.
        self._admitting: dict[tuple[str, str], asyncio.Future[Path]] = {}

    def path_for(self, digest: str) -> Path:
        return self.root / f"{PREFIX}{digest.removeprefix('sha256:')}"

    async def admit(self, uri: str, digest: str) -> Path:
        """A verified, read-only copy of the artifact at ``uri`` whose bytes hash to ``digest``.

        A call while the same artifact is being admitted shares that admission's outcome, a failure included."""
        key = (uri, digest)
        if (admitting := self._admitting.get(key)) is None:
            admitting = self._admitting[key] = asyncio.ensure_future(self._admit(uri, digest))
            admitting.add_done_callback(lambda _: self._admitting.pop(key, None))
        return await asyncio.shield(admitting)

    async def _admit(self, uri: str, digest: str) -> Path:
        # Checked before anything, a copy already in the store included: a release naming a source
        # configuration does not allow is refused whatever the store holds.
        source = await asyncio.to_thread(allowed_source, uri, self.sources)
        if isinstance(source, Path):
            return await in_hashing_thread(self._admit_file, uri, source, digest)
        # Remote artifacts arrive through the shared fetcher (verified on the way in), then are copied
        # into the store like any local file, so the store alone decides what a copy looks like.
        downloads = self.root / ".downloads"
        downloaded, _ = await fetch_verified(uri, digest, downloads, self.sources, self.limits)
        try:
            return await in_hashing_thread(self._admit_file, uri, downloaded, digest)
        finally:
            downloaded.unlink(missing_ok=True)

    async def check(self, copy: Path) -> None:
        """Raise ArtifactError unless ``copy`` is a store copy whose bytes still hash to its name."""
        await in_hashing_thread(self._check, Path(copy))

    def _check(self, copy: Path) -> None:
        if copy.parent != self.root or not copy.name.startswith(PREFIX):
            raise ArtifactError(f"{copy} is not a copy in the deployer's artifact store {self.root}")
        expected = copy.name.removeprefix(PREFIX)
        actual, _ = hash_file(copy, self.limits)
        if actual != expected:
            raise ArtifactError(
                f"verified copy {copy} was changed on disk: expected sha256:{expected}, now sha256:{actual}"
            )

    def _admit_file(self, uri: str, source: Path, digest: str) -> Path:
        target = self.path_for(digest)
        if target.exists():
            try:
                self._check(target)
                return target
            except ArtifactError:
                target.unlink()  # a damaged copy is replaced by a fresh, verified one
        if not source.is_file():
            raise ArtifactError(f"artifact not found: {source}")
        self.root.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=self.root, prefix=".partial-")
        try:
            sha = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(CHUNK):
                    sha.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            expected = digest.removeprefix("sha256:")
            if sha.hexdigest() != expected:
                raise ArtifactError(mismatch(uri, expected))
            os.chmod(partial, READ_ONLY)
            os.replace(partial, target)
            return target
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

