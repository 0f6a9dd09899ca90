"""A CI system that follows contracts/schemas/ci/ReleaseRequest.json, against the real artifact-verifier."""

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema

from contracts.envelope import new_event_id
from contracts.subjects import EVENTS_STREAM, RELEASE_REQUESTED
from libs.client import connected
from libs.settings import Settings
from services.artifact_verifier.app import build
from tests.conftest import running
from tests.support.watch import EventWatcher

CI_SCHEMA = Path(__file__).resolve().parents[2] / "contracts" / "schemas" / "ci" / "ReleaseRequest.json"


def ci_document(artifact: Path) -> dict[str, Any]:
    """Built the way an outside CI would: plain JSON, no slipway code."""
    return {
        "event_id": new_event_id(),
        "release_id": f"shop-2.0.0-{new_event_id()}",
        "service": "shop",
        "environment": "prod",
        "version": "2.0.0",
        "team": "payments",
        "artifact": {"uri": str(artifact), "digest": "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()},
        "commit": {"sha": "abc1234", "committed_at": "2026-11-27T09:30:00Z"},
        "strategy": {"kind": "all-at-once", "analysis_interval_s": 1},
        "requested_by": "ci:jenkins",
    }


async def test_a_request_valid_against_the_ci_schema_is_verified_and_a_retried_publish_is_stored_once(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"release me")
    document = ci_document(artifact)
    jsonschema.validate(document, json.loads(CI_SCHEMA.read_text()))
    body, headers = json.dumps(document).encode(), {"Nats-Msg-Id": document["event_id"]}
    async with running(build(settings)):
        async with connected(settings.nats_url) as nc:
            first = await nc.jetstream().publish(RELEASE_REQUESTED, body, headers=headers, stream=EVENTS_STREAM)
            retry = await nc.jetstream().publish(RELEASE_REQUESTED, body, headers=headers, stream=EVENTS_STREAM)
        verified = await watcher.wait_type("ArtifactVerified", release_id=document["release_id"])
    assert not first.duplicate and retry.duplicate and retry.seq == first.seq
    assert verified["causation_id"] == document["event_id"]
    # No actor in the CI's document: the release is attributed to whoever requested it.
    assert verified["actor"] == "ci:jenkins"


async def test_a_request_without_an_event_id_is_rejected_naming_it(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"release me")
    document = ci_document(artifact)
    del document["event_id"]
    async with running(build(settings)):
        async with connected(settings.nats_url) as nc:
            await nc.jetstream().publish(RELEASE_REQUESTED, json.dumps(document).encode(), stream=EVENTS_STREAM)
        rejected = await watcher.wait_type("ReleaseRequestRejected", release_id=document["release_id"], timeout=10)
    assert rejected["errors"] == [{"field": "event_id", "message": "Field required"}]
    assert "event_id: Field required" in rejected["reason"]
