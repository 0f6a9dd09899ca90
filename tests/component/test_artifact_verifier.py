import json
from pathlib import Path

from libs.client import publish_event, publish_raw
from libs.settings import Settings
from services.artifact_verifier.app import build
from tests.conftest import running
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


async def test_verifies_a_matching_digest(settings: Settings, watcher: EventWatcher, tmp_path: Path) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"real bytes")
    request = release_for(artifact)
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        verified = await watcher.wait_type("ArtifactVerified", release_id=request.release_id)
    assert verified["causation_id"] == request.event_id
    assert verified["size_bytes"] == len(b"real bytes")
    assert verified["release"]["version"] == "1.0.0"


async def test_rejects_a_digest_mismatch(settings: Settings, watcher: EventWatcher, tmp_path: Path) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"tampered")
    request = release_for(artifact, digest="sha256:" + "0" * 64)
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        rejected = await watcher.wait_type("ArtifactRejected", release_id=request.release_id)
    assert "digest mismatch" in rejected["reason"]


async def test_malformed_request_is_rejected_naming_the_field_and_service_stays_up(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"ok")
    good = release_for(artifact)
    bad = json.loads(good.model_dump_json())
    bad["release_id"] = "bad-1"
    bad["event_id"] = "bad-event-1"
    bad["artifact"]["digest"] = "md5:1234"
    bad["strategy"] = {"kind": "teleport"}
    del bad["team"]
    async with running(build(settings)):
        await publish_raw(settings.nats_url, good.subject, json.dumps(bad).encode(), {"Nats-Msg-Id": "bad-event-1"})
        await publish_raw(settings.nats_url, good.subject, b"not json at all", {"Nats-Msg-Id": "garbage-1"})
        rejected = await watcher.wait_type("ReleaseRequestRejected", release_id="bad-1")
        fields = {e["field"] for e in rejected["errors"]}
        assert {"team", "artifact.digest", "strategy"} <= fields
        garbage = await watcher.wait_type("ReleaseRequestRejected", release_id="unknown")
        assert "invalid ReleaseRequested" in garbage["reason"]
        await publish_event(settings.nats_url, good)
        await watcher.wait_type("ArtifactVerified", release_id=good.release_id)
