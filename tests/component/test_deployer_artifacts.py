"""The deployer's artifact store on real files and a real HTTP server on 127.0.0.1."""

import asyncio
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample, sha256_of
from libs.artifact_sources import ArtifactSources
from libs.artifacts import ArtifactError
from services.deployer.artifacts import ArtifactStore
from tests.support.releases import digest_of


def store_in(tmp_path: Path, *hosts: str) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store", ArtifactSources.of([tmp_path], list(hosts)))


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return build_sample("1.0.0", tmp_path / "dist")


@pytest.fixture
def served(artifact: Path) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(artifact.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{artifact.name}"
    finally:
        server.shutdown()
        server.server_close()


async def test_local_and_remote_artifacts_become_the_same_read_only_copy(
    artifact: Path, served: str, tmp_path: Path
) -> None:
    store = store_in(tmp_path, served.split("/")[2])
    digest = digest_of(artifact)
    from_file = await store.admit(str(artifact), digest)
    assert from_file == store.path_for(digest) and from_file.read_bytes() == artifact.read_bytes()
    assert from_file.stat().st_mode & 0o222 == 0
    from_file.chmod(0o644)
    from_file.write_bytes(b"changed")
    with pytest.raises(ArtifactError, match="changed on disk"):
        await store.check(from_file)

    # A damaged copy is replaced by a fresh one, verified on the way in.
    assert await store.admit(served, digest) == from_file
    await store.check(from_file)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [".downloads", from_file.name]
    assert list((tmp_path / "store" / ".downloads").iterdir()) == []


async def test_bytes_that_do_not_match_leave_nothing_behind(artifact: Path, tmp_path: Path) -> None:
    store = store_in(tmp_path)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ArtifactError, match=f"digest mismatch .* declared {wrong}"):
        await store.admit(str(artifact), wrong)
    assert list((tmp_path / "store").iterdir()) == []
    with pytest.raises(ArtifactError, match="not a copy in the deployer's artifact store"):
        await store.check(artifact)


async def test_hashing_does_not_hold_the_event_loop(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        out.truncate(128 << 20)  # sparse: 128 MiB of zeros
    store = store_in(tmp_path)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        await store.admit(str(big), f"sha256:{sha256_of(big)}")
    finally:
        ticker.cancel()
    assert ticks >= 3, f"the event loop ran only {ticks} times while 128 MiB were hashed and copied"


async def test_sources_outside_the_allow_list_are_never_copied_even_with_the_right_digest(
    artifact: Path, tmp_path: Path
) -> None:
    (tmp_path / "passwd.pyz").symlink_to("/etc/passwd")
    store = ArtifactStore(tmp_path / "store", ArtifactSources.of([artifact.parent], []))
    passwd = digest_of(Path("/etc/passwd"))
    for uri in ("/etc/passwd", "file:///etc/passwd", str(tmp_path / "passwd.pyz"), f"{artifact.parent}/../passwd.pyz"):
        with pytest.raises(ArtifactError, match="not allowed: .* SLIPWAY_ARTIFACT_DIRS") as refused:
            await store.admit(uri, passwd)
        assert passwd.removeprefix("sha256:") not in str(refused.value)
    assert not (tmp_path / "store").exists()

    # A copy already in the store does not make a disallowed source acceptable.
    outside = tmp_path / "outside.pyz"
    outside.write_bytes(artifact.read_bytes())
    await store.admit(str(artifact), digest_of(artifact))
    with pytest.raises(ArtifactError, match="not allowed"):
        await store.admit(str(outside), digest_of(artifact))


async def test_a_redirect_off_the_allowed_hosts_is_not_followed(artifact: Path, tmp_path: Path) -> None:
    from aiohttp import web

    from libs.embedded_nats import free_port

    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.host)
        return web.Response(status=307, headers={"Location": f"http://localhost:{port}/internal"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        store = store_in(tmp_path, f"127.0.0.1:{port}")  # 127.0.0.1 is allowed; "localhost" is another name
        with pytest.raises(ArtifactError, match="redirects to a URL not on a host in SLIPWAY_ARTIFACT_HOSTS"):
            await store.admit(f"http://127.0.0.1:{port}/app.pyz", digest_of(artifact))
    finally:
        await runner.cleanup()
    assert hits == [f"127.0.0.1:{port}"]


async def test_admissions_of_one_artifact_at_once_share_one_check_and_its_outcome(
    tmp_path: Path, artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_in(tmp_path)
    checks: list[Path] = []
    admit_file = store._admit_file
    monkeypatch.setattr(store, "_admit_file", lambda uri, source, digest: checks.append(source) or admit_file(
        uri, source, digest))
    digest = f"sha256:{sha256_of(artifact)}"
    copies = await asyncio.gather(*(store.admit(str(artifact), digest) for _ in range(10)))
    assert set(copies) == {store.path_for(digest)} and len(checks) == 1
    wrong = "sha256:" + "0" * 64
    outcomes = await asyncio.gather(*(store.admit(str(artifact), wrong) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(outcome, ArtifactError) for outcome in outcomes) and len(checks) == 2
    assert await store.admit(str(artifact), digest) == copies[0] and len(checks) == 3  # checked again
