"""Use cases of the artifact-verifier: fetch, hash, compare, say so."""

import logging

from pydantic import ValidationError

from contracts.events import ArtifactRejected, ArtifactVerified, ReleaseRequested
from contracts.release import ReleaseSpec
from libs.artifacts import ArtifactError, fetch_verified
from libs.runtime import Runtime
from libs.store import Transaction
from services.artifact_verifier.domain import SOURCE, rejection_for

log = logging.getLogger("slipway.artifact_verifier")
CONSUMER = "artifact-verifier"


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cache_dir = runtime.settings.data_dir / "artifact-cache"

    async def on_release_requested(self, request: ReleaseRequested) -> None:
        try:
            _, size = await fetch_verified(request.artifact.uri, request.artifact.digest, self.cache_dir)
            outcome: ArtifactVerified | ArtifactRejected = ArtifactVerified.caused_by(
                request, SOURCE, release=ReleaseSpec.model_validate(request.model_dump()), size_bytes=size
            )
        except ArtifactError as exc:
            outcome = ArtifactRejected.caused_by(request, SOURCE, reason=str(exc))
        log.info("release %s: %s", request.release_id, outcome.type)

        async def record(tx: Transaction) -> None:
            await tx.emit(outcome)

        await self.runtime.process_once(CONSUMER, request, record)

    async def on_invalid_request(self, raw: bytes, error: ValidationError) -> None:
        rejection = rejection_for(raw, error)
        log.warning("rejected a malformed ReleaseRequested: %s", rejection.reason)
        await self.runtime.emit(rejection)
