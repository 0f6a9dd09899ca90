import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.identity import Kind
from libs.client import use_credentials
from libs.nats_auth import ADMIN
from services.deployer.local.driver import stop_all
from tests.support.policies import policy_for_tests
from slipway.supervisor import Stack

SLIPWAY = str(Path(sys.executable).parent / "slipway")
CATALOGUE = Path(__file__).parent.parent / "support" / "services.yaml"


def slipway(*args: str, data_dir: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI the way a person or a CI job does."""
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("NATS_URL", None)
    return subprocess.run([SLIPWAY, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(autouse=True)
def artifacts_allowed_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Stack passes this environment to its services: they may read the artifacts tests build in tmp_path."""
    monkeypatch.setenv("SLIPWAY_ARTIFACT_DIRS", str(tmp_path))


@pytest.fixture(autouse=True)
def test_service_catalogue(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every service the tests release is in the catalogue (payments' unless the test says otherwise), and the
    committed policy with room for many deployments at once (tests.support.policies)."""
    monkeypatch.setenv("SLIPWAY_SERVICE_CATALOGUE", str(CATALOGUE))
    monkeypatch.setenv("SLIPWAY_POLICY_DIR", str(policy_for_tests(tmp_path / "policies")))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()
LOG_LINES_ON_FAILURE = 25


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The six services as separate processes on an embedded nats-server, with its identities: the test
    process watches and asks as the operator; it publishes release requests as payments' CI (`ci_of`).

    When the test fails, the end of each service's log is printed with it: a failure seen only in CI is
    then explained by what the services said, not just by the event the test missed."""
    running = Stack(tmp_path / "stack")
    running.start()
    operate(running)
    try:
        yield running
    finally:
        running.stop()
        stop_all(running.run_dir)
        if request.node.stash.get(CALL_FAILED, False):
            for log in sorted(running.logs_dir.glob("*.log")):
                if log.stem != "nats":
                    print(f"\n--- {log.name}, its last {LOG_LINES_ON_FAILURE} lines but migrations' ---\n"
                          f"{said(log, LOG_LINES_ON_FAILURE)}")


def said(log: Path, lines: int) -> str:
    """The end of a service's log, without alembic's lines (every start prints a dozen)."""
    kept = [line for line in log.read_text(errors="replace").splitlines() if " alembic." not in line]
    return "\n".join(kept[-lines:])


def operate(stack: Stack) -> None:
    """From here on the test process watches and asks as the stack's operator (admin identity)."""
    use_credentials(stack.credentials(Kind.ADMIN, ADMIN))


@pytest.fixture(autouse=True)
def no_identity_left_behind() -> Iterator[None]:
    yield
    use_credentials(None)


def ci_of(stack: Stack, team: str = "payments") -> Path:
    return stack.credentials(Kind.CI, team)
