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


async def test_fetches_and_verifies_an_http_artifact(settings: Settings, watcher: EventWatcher, tmp_path: Path) -> None:
    from aiohttp import web

    from libs.embedded_nats import free_port

    payload = b"served over http" * 1000
    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=payload)

    async def not_found(_request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/app.pyz", serve)
    app.router.add_get("/missing.pyz", not_found)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    local = tmp_path / "app.pyz"
    local.write_bytes(payload)
    good = release_for(local)
    good = good.model_copy(update={"artifact": good.artifact.model_copy(update={"uri": f"http://127.0.0.1:{port}/app.pyz"})})
    other = tmp_path / "other.pyz"
    other.write_bytes(b"never served")  # a different digest, so the cache cannot answer for it
    missing = release_for(other, version="2.0.0")
    missing = missing.model_copy(
        update={"artifact": missing.artifact.model_copy(update={"uri": f"http://127.0.0.1:{port}/missing.pyz"})}
    )
    settings = settings.model_copy(update={"artifact_hosts": [f"127.0.0.1:{port}"]})
    try:
        async with running(build(settings)):
            await publish_event(settings.nats_url, good)
            await publish_event(settings.nats_url, missing)
            verified = await watcher.wait_type("ArtifactVerified", release_id=good.release_id)
            rejected = await watcher.wait_type("ArtifactRejected", release_id=missing.release_id)
    finally:
        await runner.cleanup()
    assert verified["size_bytes"] == len(payload)
    assert "HTTP 404" in rejected["reason"]
    cached = list((settings.data_dir / "artifact-cache").glob("sha256-*"))
    assert len(cached) == 1 and cached[0].read_bytes() == payload


async def test_release_requests_no_json_reader_accepts_are_rejected_with_their_reason(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    """Before: deep nesting and huge numbers failed in decoding; nothing answered the CI system."""
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"ok")
    good = release_for(artifact)
    hostile = [b"[" * 20_000 + b"]" * 20_000, b'{"release_id": "x", "version": ' + b"9" * 5_000 + b"}"]
    async with running(build(settings)):
        for n, payload in enumerate(hostile):
            await publish_raw(settings.nats_url, good.subject, payload, {"Nats-Msg-Id": f"hostile-{n}"})
        rejections = await watcher.wait_for(
            lambda _s, body: body.get("type") == "ReleaseRequestRejected", count=len(hostile), timeout=20
        )
        await publish_event(settings.nats_url, good)
        await watcher.wait_type("ArtifactVerified", release_id=good.release_id)
    reasons = sorted(r["reason"] for r in rejections)
    assert any("recursion limit" in r for r in reasons) and any("number out of range" in r for r in reasons), reasons
