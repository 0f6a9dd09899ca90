"""One release per release_id: what the artifact-verifier does with a CI retry and with a reused id."""

import asyncio
from datetime import timedelta, timezone
from pathlib import Path

from contracts.envelope import new_event_id, utcnow
from contracts.events import ReleaseRequested
from libs.client import publish_event
from libs.settings import Settings
from services.artifact_verifier.app import build
from tests.conftest import running
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


def retry_of(request: ReleaseRequested, **changes: object) -> ReleaseRequested:
    """What a CI job that retries sends: a new envelope (event id, time, actor), the same release."""
    in_another_zone = request.commit.committed_at.astimezone(timezone(timedelta(hours=2)))
    envelope = {"event_id": new_event_id(), "occurred_at": utcnow(), "actor": "ci:retry", "source": "ci-retry"}
    commit = {**request.commit.model_dump(), "committed_at": in_another_zone}
    body = {**request.model_dump(), **envelope, "commit": commit}
    return ReleaseRequested.model_validate({**body, **changes})


def of_release(release_id: str, kind: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, b: b.get("release_id") == release_id and b.get("type") == kind


async def test_a_retried_request_is_acknowledged_as_a_duplicate_and_verified_once(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"release bytes")
    request = release_for(artifact)
    retry = retry_of(request)
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await watcher.wait_type("ArtifactVerified", release_id=request.release_id)
        await publish_event(settings.nats_url, retry)
        duplicate = await watcher.wait_type("ReleaseRequestDuplicated", causation_id=retry.event_id)
    # The retry's handling emits exactly one event, and that is the duplicate: no second verification.
    assert len(watcher.matching(of_release(request.release_id, "ArtifactVerified"))) == 1
    assert duplicate["release_id"] == request.release_id
    assert duplicate["original_event_id"] == request.event_id
    assert duplicate["original_outcome"] == "ArtifactVerified"
    assert (duplicate["service"], duplicate["environment"]) == (request.service, request.environment)


async def test_retries_racing_the_first_request_on_two_replicas_still_give_one_verification(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    # Replicas verify copies at the same time; the unique release id lets only one of them commit.
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"release bytes" * 100_000)
    request = release_for(artifact)
    retries = [retry_of(request) for _ in range(5)]
    async with running(build(settings)), running(build(settings)):
        await asyncio.gather(*(publish_event(settings.nats_url, r) for r in [request, *retries]))
        await watcher.wait_for(of_release(request.release_id, "ReleaseRequestDuplicated"), count=5)
    # Two replicas' relays share one outbox and may both publish a row: JetStream drops the second copy (same
    # event id), the watcher on core NATS sees both. One verification means one event id.
    [verified] = {b["event_id"]: b for b in watcher.matching(of_release(request.release_id, "ArtifactVerified"))}.values()
    duplicates = watcher.matching(of_release(request.release_id, "ReleaseRequestDuplicated"))
    requests = {request.event_id, *(r.event_id for r in retries)}
    assert {verified["causation_id"], *(d["causation_id"] for d in duplicates)} == requests
    assert {d["original_event_id"] for d in duplicates} == {verified["causation_id"]}


async def test_the_same_release_id_with_another_specification_is_rejected_naming_the_id_and_fields(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"release bytes")
    other = tmp_path / "other.pyz"
    other.write_bytes(b"other bytes")
    request = release_for(artifact)
    conflicting = retry_of(
        request, version="9.9.9", artifact={"uri": str(other), "digest": release_for(other).artifact.digest}
    )
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await watcher.wait_type("ArtifactVerified", release_id=request.release_id)
        await publish_event(settings.nats_url, conflicting)
        rejected = await watcher.wait_type("ReleaseRequestRejected", causation_id=conflicting.event_id)
    assert rejected["release_id"] == request.release_id
    assert request.release_id in rejected["reason"]
    assert request.event_id in rejected["reason"]
    assert {e["field"] for e in rejected["errors"]} == {"version", "artifact.uri", "artifact.digest"}
    assert "version" in rejected["reason"] and "artifact.digest" in rejected["reason"]
    assert len(watcher.matching(of_release(request.release_id, "ArtifactVerified"))) == 1


async def test_a_rejected_release_repeated_is_a_duplicate_naming_its_outcome(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"tampered")
    request = release_for(artifact, digest="sha256:" + "0" * 64)
    retry = retry_of(request)
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await watcher.wait_type("ArtifactRejected", release_id=request.release_id)
        await publish_event(settings.nats_url, retry)
        duplicate = await watcher.wait_type("ReleaseRequestDuplicated", causation_id=retry.event_id)
    assert duplicate["original_outcome"] == "ArtifactRejected"
    assert len(watcher.matching(of_release(request.release_id, "ArtifactRejected"))) == 1


async def test_a_repeat_after_a_restart_is_still_a_duplicate(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"release bytes")
    request = release_for(artifact)
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await watcher.wait_type("ArtifactVerified", release_id=request.release_id)
    retry = retry_of(request)
    async with running(build(settings)):
        await publish_event(settings.nats_url, retry)
        await watcher.wait_type("ReleaseRequestDuplicated", causation_id=retry.event_id)
    assert len(watcher.matching(of_release(request.release_id, "ArtifactVerified"))) == 1
