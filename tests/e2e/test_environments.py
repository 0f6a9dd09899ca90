"""Environments as code against the running system: `slipway env drift [--reconcile]` as a person, through
nats-server's permissions, recorded in the audit trail with its signature; a preview environment torn down, router
included, after its ttl."""

import asyncio
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from slipway.supervisor import Stack
from tests.e2e.conftest import slipway
from tests.e2e.test_operator_commands import request_release
from tests.support.watch import EventWatcher
from tests.support.yaml_files import copy_of, edit

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def declarations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped declarations with a preview ttl of seconds, read by the stack's deployer on a short schedule."""
    envs = copy_of("environments", tmp_path)
    edit(envs / "preview.yaml", "ttl: 4h", "ttl: 3s")
    monkeypatch.setenv("SLIPWAY_ENVIRONMENTS_DIR", str(envs))
    monkeypatch.setenv("SLIPWAY_DRIFT_INTERVAL_S", "0.5")
    return envs


def test_drift_is_asked_for_signed_and_audited_and_a_preview_expires(stack: Stack, tmp_path: Path) -> None:
    def cli(*args: str):  # noqa: ANN202
        return slipway(*args, "--nats-url", stack.nats_url, data_dir=stack.data_dir, timeout=60)

    assert slipway("identity", "create", "rita", "--roles", "release-manager", data_dir=stack.data_dir).returncode == 0
    artifact = build_sample("1.0.0", tmp_path / "artifacts")
    deployed = request_release(stack, artifact, "1.0.0", "--strategy", "all-at-once")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    drift = cli("env", "drift", "prod", "--as", "rita")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "shop: instances expected 4, actual 1" in drift.stdout, drift.stdout
    developer = slipway("identity", "create", "dee", "--roles", "developer", "--team", "payments",
                        data_dir=stack.data_dir)
    assert developer.returncode == 0
    refused = cli("env", "drift", "prod", "--as", "dee")
    assert refused.returncode == 1 and "check_drift" in refused.stderr, refused.stdout + refused.stderr

    reconciled = cli("env", "drift", "prod", "--reconcile", "--as", "rita")  # prod: only when a person asks
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "shop: started 1.0.0 slot 3 for the whole environment" in reconciled.stdout, reconciled.stdout

    expired = asyncio.run(_preview_released_and_expired(stack, artifact))
    assert (expired["environment"], expired["stopped"], expired["routers_stopped"]) == (
        "preview-pr-1", ["shop@1.0.0"], ["shop"])

    audit = cli("audit", "verify")
    assert audit.returncode == 0 and "intact" in audit.stdout and "flagged" not in audit.stdout, audit.stdout


async def _preview_released_and_expired(stack: Stack, artifact: Path) -> dict:
    async with EventWatcher(stack.nats_url) as watcher:  # listening before the preview starts its ttl
        preview = await asyncio.to_thread(
            slipway, "release", "request", "--nats-url", stack.nats_url, "--service", "shop", "--environment",
            "preview-pr-1", "--version", "1.0.0", "--team", "payments", "--artifact", str(artifact), "--commit",
            "abc1234", "--committed-at", "2026-11-01T10:00:00Z", "--requested-by", "ci:e2e", "--interval", "1",
            "--timeout", "60", "--strategy", "all-at-once", data_dir=stack.data_dir)
        assert preview.returncode == 0, preview.stdout + preview.stderr
        return await watcher.wait_type("PreviewExpired", timeout=30)
