"""docker-compose.yml and the Dockerfile, checked by parsing: Docker itself is not needed to catch a broken wiring."""

import os
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
    environment = service["environment"]
    assert environment["NATS_URL"] == "nats://nats:4222"
    assert environment["SLIPWAY_DATA_DIR"] == "/data"
    # Each service runs as its own identity, from the volume `identities` filled, and checks signers.
    assert environment["SLIPWAY_CREDENTIALS"] == f"/credentials/credentials/service.{name}.nk"
    assert environment["SLIPWAY_IDENTITY_REGISTRY"] == "/credentials/credentials/registry.json"
    assert "credentials:/credentials:ro" in service["volumes"]
    assert service["depends_on"]["streams"] == {"condition": "service_completed_successfully"}
    data_volumes = [v for v in service["volumes"] if v.split(":")[1] == "/data"]
    assert data_volumes == [f"{name}-data:/data"], f"{name} must keep its data in its own volume"
    assert f"{name}-data" in compose["volumes"]


def test_identities_come_first_then_the_server_then_the_streams(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert command_words(services["identities"])[:3] == ["slipway", "identity", "init"]
    assert services["nats"]["depends_on"]["identities"] == {"condition": "service_completed_successfully"}
    assert "--create-streams" in command_words(services["streams"])
    assert services["streams"]["depends_on"]["nats"] == {"condition": "service_healthy"}


def test_nats_runs_jetstream_with_storage_in_a_volume_and_fsync_on_every_ack(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    nats = compose["services"]["nats"]
    assert nats["image"] == "nats:2.10-alpine"
    words = command_words(nats)
    assert words[words.index("-c") + 1] == "/credentials/nats/nats-server.conf"
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in nats["volumes"]}
    assert mounts["/credentials"] == "credentials"
    # What `identities` writes there, made the same way: the server's own check reads it (a typo or an
    # unknown key fails here, not in someone's compose up), with every identity's rights included.
    init = command_words(compose["services"]["identities"])
    base = init[init.index("--server-config") + 1]
    assert base == "/etc/nats/compose.conf" and "./infra/nats:/etc/nats:ro" in compose["services"]["identities"]["volumes"]
    made = subprocess.run(
        [str(Path(nats_server_binary()).parent / "slipway"), "identity", "init", "--server-config",
         str(ROOT / "infra" / "nats" / "compose.conf")],
        capture_output=True, text=True, env={**os.environ, "SLIPWAY_DATA_DIR": str(tmp_path)},
    )
    assert made.returncode == 0, made.stdout + made.stderr
    config = tmp_path / "nats" / "nats-server.conf"
    checked = subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert re.search(r"^\s*sync_interval:\s*always\s*$", text, re.M), "JetStream must fsync before it acknowledges"
    assert 'include "authorization.conf"' in text and "nkey" in (tmp_path / "nats" / "authorization.conf").read_text()
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
