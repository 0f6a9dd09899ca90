"""A slow, hanging or huge artifact costs its own release its deadline and other releases nothing."""

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from contracts.events import ReleaseRequested
from libs.client import publish_event
from libs.embedded_nats import free_port
from libs.settings import Settings
from services.artifact_verifier.app import build
from tests.conftest import running
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

GIB = 1024**3
READ_TIMEOUT_S = 3.0
SAMPLES = 5


@pytest.fixture
async def hanging_url() -> AsyncIterator[str]:
    """An HTTP URL on a server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/app.pyz"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def sparse_file(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)  # no blocks written: a 30 GiB file costs nothing on disk
    return path


def with_uri(request: ReleaseRequested, uri: str) -> ReleaseRequested:
    return request.model_copy(update={"artifact": request.artifact.model_copy(update={"uri": uri})})


async def time_to_verify(settings: Settings, watcher: EventWatcher, request: ReleaseRequested) -> float:
    start = time.perf_counter()
    await publish_event(settings.nats_url, request)
    await watcher.wait_type("ArtifactVerified", release_id=request.release_id)
    return time.perf_counter() - start


def outcomes_of(watcher: EventWatcher, request: ReleaseRequested) -> list[dict]:
    outcomes = ("ArtifactVerified", "ArtifactRejected")
    return watcher.matching(lambda _s, b: b.get("release_id") == request.release_id and b.get("type") in outcomes)


async def test_valid_releases_are_verified_promptly_beside_a_hanging_url_and_huge_files(
    settings: Settings, watcher: EventWatcher, tmp_path: Path, hanging_url: str
) -> None:
    hanging_host = hanging_url.split("/")[2]
    settings = settings.model_copy(update={"artifact_read_timeout_s": READ_TIMEOUT_S, "artifact_hosts": [hanging_host]})
    valid = []
    for n in range(3 * SAMPLES):
        artifact = tmp_path / f"valid-{n}.pyz"
        artifact.write_bytes(b"valid release %d" % n * 1000)
        valid.append(release_for(artifact, f"1.0.{n}"))
    hanging = with_uri(release_for(tmp_path / "valid-0.pyz", "6.6.6", digest="sha256:" + "0" * 64), hanging_url)
    huge = release_for(sparse_file(tmp_path / "huge.pyz", 30 * GIB), "8.0.0", digest="sha256:" + "2" * 64)
    # Half a GiB is under the 2 GiB limit: it is read and hashed (a second or so), then found not to match.
    big = release_for(sparse_file(tmp_path / "big.pyz", GIB // 2), "7.0.0", digest="sha256:" + "1" * 64)

    async with running(build(settings)):
        alone = [await time_to_verify(settings, watcher, r) for r in valid[:SAMPLES]]
        await publish_event(settings.nats_url, hanging)
        await publish_event(settings.nats_url, huge)
        beside_hanging = [await time_to_verify(settings, watcher, r) for r in valid[SAMPLES:2 * SAMPLES]]
        await publish_event(settings.nats_url, big)
        beside_hash = [await time_to_verify(settings, watcher, r) for r in valid[2 * SAMPLES:]]
        slow_ones_done_when_valid_were = {slow.release_id: bool(outcomes_of(watcher, slow)) for slow in (hanging, big)}
        hung = await watcher.wait_type("ArtifactRejected", release_id=hanging.release_id, timeout=READ_TIMEOUT_S + 15)
        too_big = await watcher.wait_type("ArtifactRejected", release_id=huge.release_id)
        mismatch = await watcher.wait_type("ArtifactRejected", release_id=big.release_id, timeout=60)

    def figures(latencies: list[float]) -> str:
        return f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"

    print(
        f"\nvalid release, ReleaseRequested -> ArtifactVerified over {SAMPLES} releases each: alone {figures(alone)}; "
        f"beside a hanging URL and a refused 30 GiB file {figures(beside_hanging)}; "
        f"beside those and a 0.5 GiB file being hashed {figures(beside_hash)}"
    )
    assert slow_ones_done_when_valid_were == {hanging.release_id: False, big.release_id: False}
    assert f"the server sent nothing for {READ_TIMEOUT_S:g}s" in hung["reason"] and hanging_url in hung["reason"]
    assert f"is {30 * GIB} bytes (30.0 GiB), over the limit of {2 * GIB} bytes" in too_big["reason"]
    assert "digest mismatch" in mismatch["reason"]


async def test_an_oversize_artifact_is_refused_with_its_size_before_it_is_read(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    limit = 10_000
    settings = settings.model_copy(update={"max_artifact_bytes": limit})
    payload = b"x" * (limit + 1)

    async def declared(_request: web.Request) -> web.Response:
        return web.Response(body=payload)

    async def undeclared(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()  # no Content-Length: the size is only known while streaming
        await response.prepare(request)
        for _ in range(4):
            await response.write(payload[: limit // 2])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/declared.pyz", declared)
    app.router.add_get("/undeclared.pyz", undeclared)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = settings.model_copy(update={"artifact_hosts": [f"127.0.0.1:{port}"]})
    local = release_for(sparse_file(tmp_path / "huge.pyz", 30 * GIB), "1.0.0", digest="sha256:" + "3" * 64)
    by_length = with_uri(release_for(tmp_path / "huge.pyz", "2.0.0", digest="sha256:" + "4" * 64),
                         f"http://127.0.0.1:{port}/declared.pyz")
    by_stream = with_uri(release_for(tmp_path / "huge.pyz", "3.0.0", digest="sha256:" + "5" * 64),
                         f"http://127.0.0.1:{port}/undeclared.pyz")
    try:
        async with running(build(settings)):
            for request in (local, by_length, by_stream):
                await publish_event(settings.nats_url, request)
            local_reason = (await watcher.wait_type("ArtifactRejected", release_id=local.release_id))["reason"]
            length_reason = (await watcher.wait_type("ArtifactRejected", release_id=by_length.release_id))["reason"]
            stream_reason = (await watcher.wait_type("ArtifactRejected", release_id=by_stream.release_id))["reason"]
    finally:
        await runner.cleanup()
    assert f"huge.pyz is {30 * GIB} bytes (30.0 GiB), over the limit of {limit} bytes" in local_reason
    assert "SLIPWAY_MAX_ARTIFACT_BYTES" in local_reason
    assert f"declared.pyz (Content-Length) is {limit + 1} bytes" in length_reason
    assert "undeclared.pyz is at least" in stream_reason and f"over the limit of {limit} bytes" in stream_reason
    assert not list((settings.data_dir / "artifact-cache").glob("sha256-*"))
    assert not list((settings.data_dir / "artifact-cache").glob(".partial-*"))


async def test_a_download_that_trickles_is_cut_off_at_the_total_deadline(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    # A byte every 0.2 s never trips the read timeout; only the deadline ends it.
    settings = settings.model_copy(update={"artifact_read_timeout_s": 1.0, "artifact_deadline_s": 2.0})

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(200):
            await response.write(b"x")
            await asyncio.sleep(0.2)
        return response

    app = web.Application()
    app.router.add_get("/slow.pyz", trickle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = settings.model_copy(update={"artifact_hosts": [f"127.0.0.1:{port}"]})
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"bytes")
    request = with_uri(release_for(artifact), f"http://127.0.0.1:{port}/slow.pyz")
    try:
        async with running(build(settings)):
            started = time.perf_counter()
            await publish_event(settings.nats_url, request)
            rejected = await watcher.wait_type("ArtifactRejected", release_id=request.release_id)
            took = time.perf_counter() - started
    finally:
        await runner.cleanup()
    assert "did not finish within 2s" in rejected["reason"]
    assert 2.0 <= took < 10.0
