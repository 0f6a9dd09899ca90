import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from faststream import FastStream

from contracts.identity import Role
from libs.embedded_nats import EmbeddedNats
from libs.identities import IdentityStore
from libs.settings import Settings
from tests.support.people import People
from tests.support.policies import policy_for_tests
from tests.support.watch import EventWatcher

TEST_CATALOGUE = Path(__file__).parent / "support" / "services.yaml"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A real nats-server with JetStream on a random loopback port, its own data directory; a test may
    kill it and start it again (same port, same data)."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture
def settings(tmp_path: Path, nats_url: str) -> Settings:
    # Tests build their artifacts anywhere in tmp_path; the services may read them there and nowhere else.
    data_dir = tmp_path / "data"
    return Settings(nats_url=nats_url, data_dir=data_dir, max_deliver=3, artifact_dirs=[tmp_path],
                    identity_registry=data_dir / "credentials" / "registry.json",
                    # Low-risk profiles: releases in tests that are not about governance are pre-approved.
                    service_catalogue=TEST_CATALOGUE, policy_dir=policy_for_tests(tmp_path / "policies"))


@pytest.fixture
def people(settings: Settings) -> People:
    """The registry the services read, with a release manager (alice), an SRE (sam) and a developer of
    team payments (dev), the team tests' releases belong to (tests.support.releases)."""
    assert settings.identity_registry is not None
    found = People(IdentityStore(settings.identity_registry.parent), settings.nats_url)
    found.add("alice", Role.RELEASE_MANAGER)
    found.add("sam", Role.SRE)
    found.add("dev", Role.DEVELOPER, teams=("payments",))
    return found


@pytest.fixture
async def watcher(nats_url: str) -> AsyncIterator[EventWatcher]:
    async with EventWatcher(nats_url) as watching:
        yield watching


@contextlib.asynccontextmanager
async def running(app: FastStream) -> AsyncIterator[FastStream]:
    """Run a service in this process against the real server, stopping it cleanly afterwards."""
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
