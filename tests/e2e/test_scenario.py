"""The whole system as separate processes, driven the way a user drives it."""

import json
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample, sha256_of
from slipway.supervisor import Stack
from tests.e2e.conftest import slipway

pytestmark = pytest.mark.e2e


def test_demo_scenario_passes_end_to_end(tmp_path: Path) -> None:
    result = slipway("demo", data_dir=tmp_path / "data")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "v2 rolled back automatically" in output
    assert "critical alert seen on the alert stream" in output
    assert "time from the faulty canary's first step to RollbackCompleted" in output
    assert "every outcome matched" in output


def test_malformed_release_is_rejected_with_its_fields_and_nothing_breaks(stack: Stack, tmp_path: Path) -> None:
    artifact = build_sample("1.0.0", tmp_path / "artifacts")
    bad = {
        "release_id": "shop-bad-1", "event_id": "01BADBADBADBADBADBADBADBAD", "service": "shop", "environment": "prod",
        "version": "1.0.0", "artifact": {"uri": str(artifact), "digest": "md5:abc"},
        "commit": {"sha": "abc1234", "committed_at": "2026-11-01T10:00:00Z"},
        "strategy": {"kind": "teleport"}, "requested_by": "ci:e2e",
    }
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad))
    rejected = slipway("release", "request", "--raw-json", str(bad_file), "--nats-url", stack.nats_url,
                       "--timeout", "60", data_dir=stack.data_dir)
    output = rejected.stdout + rejected.stderr
    assert rejected.returncode == 1, output
    for field in ("team", "artifact.digest", "strategy"):
        assert field in output, f"{field} not named in: {output}"
    assert stack.dead_service() is None

    good = slipway(
        "release", "request", "--nats-url", stack.nats_url, "--service", "shop", "--environment", "prod",
        "--version", "1.0.0", "--team", "payments", "--artifact", str(artifact),
        "--digest", f"sha256:{sha256_of(artifact)}", "--commit", "abc1234",
        "--committed-at", "2026-11-01T10:00:00Z", "--strategy", "all-at-once", "--interval", "1",
        "--requested-by", "ci:e2e", "--timeout", "90", data_dir=stack.data_dir,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "DeploymentSucceeded" in good.stdout
    assert stack.dead_service() is None
