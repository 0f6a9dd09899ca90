import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from faststream import FastStream

from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings
from tests.support.watch import EventWatcher


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A real nats-server with JetStream on a random loopback port, its own data directory."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path, nats_url: str) -> Settings:
    return Settings(nats_url=nats_url, data_dir=tmp_path / "data", max_deliver=3)


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
