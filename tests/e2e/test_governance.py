"""Governed releases end to end, through the CLI as separate processes: releases that wait for sign-offs,
for an exception to pass a freeze, for a recurring window to end; four eyes."""

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from examples.build_sample import build as build_sample
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of, slipway
from tests.support.poll import eventually_sync
from tests.support.releases import release_for
from tests.support.watch import EventWatcher
from libs.client import publish_event

pytestmark = pytest.mark.e2e


def cli(stack: Stack, *args: str):  # noqa: ANN201
    done = slipway(*args, "--nats-url", stack.nats_url, data_dir=stack.data_dir, timeout=120)
    return done


def person(stack: Stack, name: str, *roles: str) -> None:
    made = slipway("identity", "create", name, "--roles", ",".join(roles), data_dir=stack.data_dir)
    assert made.returncode == 0, made.stdout + made.stderr


def release_file(tmp_path: Path, artifact: Path, **fields: object) -> Path:
    document = {
        "service": "shop", "environment": "prod", "version": "2.0.0", "team": "payments", "artifact": {"uri": str(artifact)},
        "commit": {"sha": "abc1234", "committed_at": "2026-11-01T10:00:00Z"}, "requested_by": "ci:e2e",
        # One instance, not the four prod declares: these releases are about governance, not pool sizes.
        "strategy": {"kind": "all-at-once", "analysis_interval_s": 1}, "instances": 1, **fields,
    }
    path = tmp_path / f"release-{fields.get('release_id', 'x')}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_major_release_waits_for_three_sign_offs_then_deploys_and_nobody_approves_their_own(
    stack: Stack, tmp_path: Path
) -> None:
    for name, role in (("olga", "operations"), ("sven", "security"), ("bea", "business"), ("cmo", "change-manager")):
        person(stack, name, role)
    # A major release into prod links an approved change record (changes.yaml): olga asks, cmo approves.
    created = cli(stack, "change", "create", "--summary", "shop 2.0", "--duration", "2h", "--as", "olga")
    assert created.returncode == 0, created.stdout + created.stderr
    number = re.search(r"CHG\d+", created.stdout).group(0)  # type: ignore[union-attr]
    approved = cli(stack, "change", "approve", number, "--comment", "planned", "--as", "cmo")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    artifact = build_sample("2.0.0", tmp_path / "artifacts")
    major = release_file(tmp_path, artifact, release_id="shop-major-1", release_class="major", change=number,
                         known_issues=[{"summary": "first login is slow", "workaround": "retry once"}])
    requested = cli(stack, "release", "request", str(major), "--no-wait")
    assert requested.returncode == 0, requested.stdout + requested.stderr

    waiting = eventually_sync(lambda: "shop-major-1" in (done := cli(stack, "approvals")).stdout and done, 30,
                              "the major release listed as waiting for approvals")
    listing = " ".join(waiting.stdout.split())
    for role in ("operations", "security", "business"):
        assert role in listing, listing

    # olga asks for a release herself: she can never approve it (four eyes).
    own = release_file(tmp_path, artifact, release_id="shop-major-own", release_class="major", known_issues=[],
                       requested_by="person:olga", version="2.0.1", change=number)
    assert cli(stack, "release", "request", str(own), "--no-wait").returncode == 0
    eventually_sync(lambda: "shop-major-own" in cli(stack, "approvals").stdout, 30, "olga's release waiting")
    refused = cli(stack, "approve", "shop-major-own", "--comment", "looks fine", "--as", "olga")
    assert refused.returncode == 1
    assert "four eyes: person:olga requested release shop-major-own and may not approve it" in " ".join(
        refused.stderr.split()), refused.stderr

    for name in ("olga", "sven"):
        given = cli(stack, "approve", "shop-major-1", "--comment", f"{name} signs off", "--as", name)
        assert given.returncode == 0 and "recorded" in given.stdout, given.stdout + given.stderr
    last = cli(stack, "approve", "shop-major-1", "--comment", "business is ready", "--as", "bea")
    assert last.returncode == 0 and "may go out now" in last.stdout, last.stdout + last.stderr

    # The CI job run again follows its release to the end.
    deployed = cli(stack, "release", "request", str(major))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    shown = cli(stack, "status", "--release-id", "shop-major-1")
    assert "succeeded" in shown.stdout, shown.stdout


def test_an_emergency_release_passes_a_freeze_with_an_executive_exception(stack: Stack, tmp_path: Path) -> None:
    person(stack, "rita", "release-manager")
    person(stack, "eve", "executive")
    frozen = cli(stack, "freeze", "create", "--environment", "prod", "--duration", "1h", "--reason", "board meeting",
                 "--as", "rita")
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    artifact = build_sample("9.9.1", tmp_path / "artifacts")
    hotfix = release_file(tmp_path, artifact, release_id="shop-hotfix-1", release_class="emergency", version="9.9.1",
                          unplanned=True)
    assert cli(stack, "release", "request", str(hotfix), "--no-wait").returncode == 0
    waiting = eventually_sync(lambda: "shop-hotfix-1" in (done := cli(stack, "approvals")).stdout and done, 30,
                              "the emergency release waiting for an exception")
    assert "executive" in waiting.stdout
    given = cli(stack, "approve", "shop-hotfix-1", "--comment", "outage costs more than the risk", "--as", "eve")
    assert given.returncode == 0 and "may go out now" in given.stdout, given.stdout + given.stderr
    deployed = cli(stack, "release", "request", str(hotfix))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    listed = cli(stack, "freeze", "list")
    assert "board meeting" in listed.stdout  # the freeze is still on: only this release was let through


async def test_a_release_queued_by_a_recurring_window_starts_when_it_ends(stack: Stack, tmp_path: Path) -> None:
    # A daily window that is open now and closes a few seconds from now; the gatekeeper reads the
    # changed policy file by itself.
    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    closes = opened + timedelta(seconds=8)
    policy = Path(os.environ["SLIPWAY_POLICY_DIR"])
    (policy / "windows.yaml").write_text(yaml.safe_dump({
        "freeze_action": "queue",
        "windows": [{
            "name": "nightly-batch", "reason": "the batch run must not meet a new shop",
            "rrule": "FREQ=DAILY", "start": opened.replace(tzinfo=None).isoformat(), "timezone": "UTC",
            "duration": "PT8S", "scope": {"environments": ["prod"], "services": ["shop"]},
            "blocks": ["automation"], "action": "queue",
        }],
    }))
    artifact = build_sample("3.0.0", tmp_path / "artifacts")
    request = release_for(artifact, "3.0.0")
    async with EventWatcher(stack.nats_url) as watcher:
        await publish_event(stack.nats_url, request, ci_of(stack))
        queued = await watcher.wait_type("ReleaseWaiting", release_id=request.release_id, timeout=30)
        assert queued["waiting_for"] == "queued-for-window" and "nightly-batch" in queued["summary"]
        assert datetime.fromisoformat(queued["until"]) == closes
        approved = await watcher.wait_type("ReleaseApproved", release_id=request.release_id, timeout=30)
        started = datetime.fromisoformat(approved["occurred_at"])
        print(f"\nqueued release approved {(started - closes).total_seconds():.3f} s after its window closed")
        assert started >= closes
        await watcher.wait_type("DeploymentSucceeded", release_id=request.release_id, timeout=60)
    assert json.loads(json.dumps(queued))["deadline"]
    assert re.search(r"window", " ".join(r["rule"] for r in approved["rules"]))
