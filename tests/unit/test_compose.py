"""docker-compose.yml and the Dockerfile, checked by parsing: Docker itself is not needed to catch a broken wiring."""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.embedded_nats import nats_server_binary

ROOT = Path(__file__).resolve().parents[2]

# compose service name -> the Python package under services/ that it runs.
SLIPWAY_SERVICES = {
    "artifact-verifier": "artifact_verifier",
    "gatekeeper": "gatekeeper",
    "deployer": "deployer",
    "health-watcher": "health_watcher",
    "rollback-controller": "rollback_controller",
    "metrics-collector": "metrics_collector",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def module_of(words: list[str]) -> str:
    assert "-m" in words, f"command {words} does not run a module with -m"
    return words[words.index("-m") + 1]


def test_every_slipway_service_is_in_compose(compose: dict[str, Any]) -> None:
    assert set(SLIPWAY_SERVICES) <= set(compose["services"]), "a slipway service is missing from docker-compose.yml"


@pytest.mark.parametrize("name", sorted(SLIPWAY_SERVICES))
def test_service_runs_an_existing_module(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    module = module_of(command_words(service))
    assert module == f"services.{SLIPWAY_SERVICES[name]}", f"{name} runs {module}"
    package = ROOT / Path(*module.split("."))
    main = package / "__main__.py"
    assert main.is_file(), f"{name} runs `python -m {module}` but {main.relative_to(ROOT)} does not exist"


@pytest.mark.parametrize("name", sorted(SLIPWAY_SERVICES))
def test_service_wiring(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service.get("build") in (".", {"context": "."}), f"{name} is not built from the repository's Dockerfile"
    assert service["environment"]["NATS_URL"] == "nats://nats:4222"
    assert service["environment"]["SLIPWAY_DATA_DIR"] == "/data"
    assert "nats" in service["depends_on"]
    data_volumes = [v for v in service["volumes"] if v.split(":")[1] == "/data"]
    assert data_volumes == [f"{name}-data:/data"], f"{name} must keep its data in its own volume"
    assert f"{name}-data" in compose["volumes"]


def test_nats_runs_jetstream_with_storage_in_a_volume_and_fsync_on_every_ack(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert nats["image"] == "nats:2.10-alpine"
    words = command_words(nats)
    config_in_container = words[words.index("-c") + 1]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in nats["volumes"]}
    config_dir = mounts[str(Path(config_in_container).parent)]
    config = ROOT / config_dir / Path(config_in_container).name
    # The real server reads the file: a typo or an unknown key fails here, not in someone's compose up.
    checked = subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert re.search(r"^\s*sync_interval:\s*always\s*$", text, re.M), "JetStream must fsync before it acknowledges"
    store = re.search(r'^\s*store_dir:\s*"?([^"\n]+)"?\s*$', text, re.M).group(1)  # type: ignore[union-attr]
    assert store in mounts and mounts[store] == "nats-data", "JetStream storage is not on a volume"


def test_the_self_operated_server_config_is_valid_and_fsyncs_on_every_ack() -> None:
    config = ROOT / "infra" / "nats" / "nats-server.conf"
    checked = subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"^\s*sync_interval:\s*always\s*$", config.read_text(), re.M)


def test_dockerfile_builds_the_package_as_a_non_root_user() -> None:
    dockerfile = ROOT / "Dockerfile"
    assert dockerfile.is_file(), "docker-compose.yml builds from a Dockerfile that does not exist"
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the services must not run as root"
