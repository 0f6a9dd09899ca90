import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.deployer.local.driver import stop_all
from slipway.supervisor import Stack

SLIPWAY = str(Path(sys.executable).parent / "slipway")


def slipway(*args: str, data_dir: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI the way a person or a CI job does."""
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("NATS_URL", None)
    return subprocess.run([SLIPWAY, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(autouse=True)
def artifacts_allowed_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Stack passes this environment to its services: they may read the artifacts tests build in tmp_path."""
    monkeypatch.setenv("SLIPWAY_ARTIFACT_DIRS", str(tmp_path))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The six services as separate processes on an embedded nats-server."""
    running = Stack(tmp_path / "stack")
    running.start()
    try:
        yield running
    finally:
        running.stop()
        stop_all(running.run_dir)
