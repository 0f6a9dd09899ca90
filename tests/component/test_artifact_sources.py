"""The artifact-verifier reads only allowed sources and tells nothing about the others (issue 6, item 5).

A real nats-server, the verifier in this process, real files and real HTTP servers on 127.0.0.1.
"""

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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

PAYLOAD = b"served from the allowed host" * 100
TELLING = re.compile(r"[0-9a-f]{64}|not found|exist|no such|regular file|bytes|HTTP \d|permission", re.IGNORECASE)


@dataclass
class Server:
    """An aiohttp server on a random loopback port that counts the requests it gets."""

    routes: dict[str, web.Response] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def answer(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return self.routes.get(request.path, web.Response(status=404))


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Server, Server]]:
    """An allowed artifact host and an internal endpoint that is not allowed."""
    runners, pair = [], (Server(), Server())
    for server in pair:
        app = web.Application()
        app.router.add_get("/{tail:.*}", server.answer)
        runner = web.AppRunner(app)
        await runner.setup()
        server.port = free_port()
        await web.TCPSite(runner, "127.0.0.1", server.port).start()
        runners.append(runner)
    try:
        yield pair
    finally:
        for runner in runners:
            await runner.cleanup()


def with_uri(request: ReleaseRequested, uri: str, digest: str | None = None) -> ReleaseRequested:
    artifact = request.artifact.model_copy(update={"uri": uri, "digest": digest or request.artifact.digest})
    return request.model_copy(update={"artifact": artifact})


def sha256_uri(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def test_sources_outside_the_allow_list_are_rejected_with_reasons_that_tell_nothing(
    settings: Settings, watcher: EventWatcher, tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    allowed_host, internal = servers
    internal.routes["/secret"] = web.Response(body=b"internal only")
    allowed_host.routes["/app.pyz"] = web.Response(body=PAYLOAD)
    allowed_host.routes["/moved"] = web.Response(status=302, headers={"Location": "/app.pyz"})
    allowed_host.routes["/escape"] = web.Response(status=302, headers={"Location": internal.url("/secret")})
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "passwd.pyz").symlink_to("/etc/passwd")
    settings = settings.model_copy(update={"artifact_dirs": [dist], "artifact_hosts": [f"127.0.0.1:{allowed_host.port}"]})
    own_database = (settings.data_dir / "artifact-verifier.db").resolve()
    passwd = sha256_uri(Path("/etc/passwd").read_bytes())  # the right digest: refused all the same
    base = _base_request(tmp_path)
    hostile = {
        "/etc/shadow": with_uri(base("shadow"), "/etc/shadow"),
        "/etc/passwd": with_uri(base("passwd"), "file:///etc/passwd", passwd),
        "/proc/self/environ": with_uri(base("environ"), "/proc/self/environ"),
        "missing": with_uri(base("missing"), "/etc/no-such-file-here"),
        "own database": with_uri(base("database"), str(own_database)),
        "dot-dot": with_uri(base("dotdot"), f"{dist}/../../../etc/passwd", passwd),
        "symlink": with_uri(base("symlink"), str(dist / "passwd.pyz"), passwd),
        "internal endpoint": with_uri(base("internal"), internal.url("/secret"), sha256_uri(b"internal only")),
        "redirect off the list": with_uri(base("redirect"), allowed_host.url("/escape"), sha256_uri(b"internal only")),
        "userinfo": with_uri(base("userinfo"), f"http://127.0.0.1:{allowed_host.port}@127.0.0.1:{internal.port}/secret"),
    }
    redirected_within = with_uri(base("moved"), allowed_host.url("/moved"), sha256_uri(PAYLOAD))

    async with running(build(settings)):
        for request in (*hostile.values(), redirected_within):
            await publish_event(settings.nats_url, request)
        reasons = {name: (await watcher.wait_type("ArtifactRejected", release_id=r.release_id))["reason"]
                   for name, r in hostile.items()}
        await watcher.wait_type("ArtifactVerified", release_id=redirected_within.release_id)

    for name, reason in reasons.items():
        assert "not allowed" in reason or "user name or password" in reason, f"{name}: {reason}"
        assert not TELLING.search(reason), f"{name} told too much: {reason}"
    assert "SLIPWAY_ARTIFACT_DIRS" in reasons["/etc/shadow"] and "SLIPWAY_ARTIFACT_HOSTS" in reasons["internal endpoint"]
    assert reasons["missing"].replace("/etc/no-such-file-here", "X") == reasons["/etc/shadow"].replace("/etc/shadow", "X")
    assert str(internal.port) not in reasons["redirect off the list"]  # where it was sent is not told
    assert internal.hits == []
    assert allowed_host.hits.count("/escape") == 1 and allowed_host.hits.count("/moved") == 1


async def test_a_digest_mismatch_names_the_declared_digest_never_the_actual_one(
    settings: Settings, watcher: EventWatcher, tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    allowed_host, _ = servers
    allowed_host.routes["/app.pyz"] = web.Response(body=PAYLOAD)
    settings = settings.model_copy(update={"artifact_hosts": [f"127.0.0.1:{allowed_host.port}"]})
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"tampered")
    declared = "sha256:" + "0" * 64
    local = release_for(artifact, digest=declared)
    remote = with_uri(release_for(artifact, "2.0.0", digest=declared), allowed_host.url("/app.pyz"))
    async with running(build(settings)):
        for request in (local, remote):
            await publish_event(settings.nats_url, request)
        reasons = [(await watcher.wait_type("ArtifactRejected", release_id=r.release_id))["reason"]
                   for r in (local, remote)]
    for reason, actual in zip(reasons, (b"tampered", PAYLOAD)):
        assert "digest mismatch" in reason and declared in reason
        assert hashlib.sha256(actual).hexdigest() not in reason
        assert re.findall(r"[0-9a-f]{64}", reason) == ["0" * 64]


def _base_request(tmp_path: Path):  # noqa: ANN202
    artifact = tmp_path / "any-bytes.pyz"
    artifact.write_bytes(b"any bytes: only the uri is under test")

    def request(version_tag: str) -> ReleaseRequested:
        return release_for(artifact, f"1.0.0-{version_tag}", digest="sha256:" + "1" * 64)

    return request
