"""Fifty healthy releases requested at once: every one deployed, none rolled back for lack of evidence."""

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from libs.client import publish_event
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of
from tests.e2e.recovery import TERMINAL
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
RELEASES = 50


async def test_fifty_healthy_releases_at_once_are_all_deployed(stack: Stack, tmp_path: Path) -> None:
    artifact = build_sample("1.0.0", tmp_path / "artifacts")
    strategy = {"kind": "all-at-once", "analysis_interval_s": 2.0}
    releases = [release_for(artifact, "1.0.0", service=f"load{n:02d}", strategy=strategy) for n in range(RELEASES)]
    ids = {release.release_id for release in releases}
    async with EventWatcher(stack.nats_url) as watcher:
        started = time.monotonic()
        await asyncio.gather(*(publish_event(stack.nats_url, release, ci_of(stack)) for release in releases))
        ended = await watcher.wait_for(
            lambda _s, body: body.get("release_id") in ids and body.get("type") in TERMINAL,
            count=RELEASES, timeout=400,
        )
        took = time.monotonic() - started
    outcomes = Counter(body["type"] for body in {b["release_id"]: b for b in ended}.values())
    reasons = [b.get("root_cause") or b.get("reason") for b in ended if b["type"] != "DeploymentSucceeded"]
    print(f"\n{RELEASES} releases at once: {dict(outcomes)} in {took:.1f} s ({RELEASES / took:.2f} releases/s)")
    assert outcomes == Counter({"DeploymentSucceeded": RELEASES}), reasons[:5]
