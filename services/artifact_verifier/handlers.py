"""Use cases of the artifact-verifier: take each release in once, fetch, hash, compare, say so."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from contracts.envelope import Event
from contracts.events import ArtifactRejected, ArtifactVerified, ReleaseRequested, ReleaseRequestRejected
from contracts.release import ReleaseSpec
from libs.artifact_sources import ArtifactSources
from libs.artifacts import ArtifactError, FetchLimits, fetch_verified
from libs.consume import broker_message, current_publisher
from libs.runtime import Runtime
from libs.service_catalogue import ServiceCatalogue
from libs.store import Transaction
from services.artifact_verifier import store
from services.artifact_verifier.domain import (
    SOURCE, KnownRelease, answer_repeat, canonical_spec, fingerprint, ownership_refusal, rejection_for,
)

log = logging.getLogger("slipway.artifact_verifier")
CONSUMER = "artifact-verifier"


class KeyedTurns:
    """One holder per key at a time; a key is forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def of(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cache_dir = runtime.settings.data_dir / "artifact-cache"
        self.sources = ArtifactSources.from_settings(runtime.settings)
        self.limits = FetchLimits.from_settings(runtime.settings)
        self._turns = KeyedTurns()
        self.catalogue = ServiceCatalogue.load(runtime.settings.service_catalogue)

    async def on_release_requested(self, request: ReleaseRequested) -> None:
        publisher = current_publisher.get()
        if publisher is not None:  # identities are checked: only the owning team's CI may ask
            message = broker_message()
            refusal = ownership_refusal(
                request, message.subject if message else "", self.catalogue.team_of(request.service), publisher,
            )
            if refusal is not None:
                await self._refuse(request, refusal)
                return
        # A retry arriving while its release is being verified waits here, then finds the record.
        async with self._turns.of(request.release_id):
            await self._take_in(request)

    async def _refuse(self, request: ReleaseRequested, reason: str) -> None:
        """Who tried what, as an answer to the request; the release id stays free for its rightful team."""
        log.warning("refused release request %s: %s", request.event_id, reason)
        rejection = ReleaseRequestRejected.caused_by(request, SOURCE, reason=reason)

        async def record(tx: Transaction) -> None:
            await tx.emit(rejection)

        await self.runtime.process_once(CONSUMER, request, record)

    async def _take_in(self, request: ReleaseRequested) -> None:
        spec = canonical_spec(request)
        async with self.runtime.db.transaction() as tx:
            known = await store.find_release(tx.session, request.release_id)
        # A repeat is answered from the record alone: a retry must not fetch (or wait on) the artifact again.
        outcome = None if known else await self._verify(request)

        async def record(tx: Transaction) -> None:
            earlier = known or await store.find_release(tx.session, request.release_id)
            answer: Event | None = None
            if earlier is not None:
                answer = answer_repeat(request, spec, earlier)
            elif outcome is not None:
                answer = outcome
                await store.add_release(
                    tx.session,
                    KnownRelease(request.release_id, fingerprint(spec), spec, request.event_id, outcome.type),
                )
            if answer is not None:
                log.info("release %s (request %s): %s", request.release_id, request.event_id, answer.type)
                await tx.emit(answer)

        try:
            await self.runtime.process_once(CONSUMER, request, record)
        except IntegrityError:
            # Another replica committed this release id (or this event) between our look and our commit;
            # looking again answers the request as the repeat it now is.
            log.info("release %s was taken in by another replica meanwhile: looking again", request.release_id)
            await self.runtime.process_once(CONSUMER, request, record)

    async def _verify(self, request: ReleaseRequested) -> ArtifactVerified | ArtifactRejected:
        try:
            _, size = await fetch_verified(
                request.artifact.uri, request.artifact.digest, self.cache_dir, self.sources, self.limits
            )
        except ArtifactError as exc:
            return ArtifactRejected.caused_by(request, SOURCE, reason=str(exc))
        return ArtifactVerified.caused_by(
            request, SOURCE, release=ReleaseSpec.model_validate(request.model_dump()), size_bytes=size
        )

    async def on_invalid_request(self, raw: bytes, error: ValidationError) -> None:
        rejection = rejection_for(raw, error)
        log.warning("rejected a malformed ReleaseRequested: %s", rejection.reason)
        await self.runtime.emit(rejection)
