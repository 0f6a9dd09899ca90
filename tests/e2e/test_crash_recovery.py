"""A service killed in the middle of a release: nothing is lost and nothing runs twice."""

import asyncio
import os
import signal
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.store import Database
from services.deployer import store
from services.deployer.local.processes import is_alive, marked_groups
from services.deployer.local.target import as_instance
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of, operate
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = pytest.mark.e2e
TERMINAL = {"DeploymentSucceeded", "RollbackCompleted", "DeploymentFailed", "ReleaseBlocked", "ArtifactRejected"}


def ended(release_id: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, body: body.get("release_id") == release_id and body.get("type") in TERMINAL


def live_app_pids(run_dir: Path, version: str) -> list[int]:
    pid_files = (run_dir / "pids").glob(f"app.*{version.replace('.', '_')}*.pid")
    return [pid for pid in (int(f.read_text()) for f in pid_files) if is_alive(pid)]


async def test_deployer_killed_mid_canary_resumes_without_losing_or_duplicating(stack: Stack, tmp_path: Path) -> None:
    v1 = build_sample("1.0.0", tmp_path / "artifacts")
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    first = release_for(v1, "1.0.0", strategy={"kind": "all-at-once", "analysis_interval_s": 0.5})
    second = release_for(v2, "2.0.0", strategy={"kind": "canary", "steps": [{"weight": 20}, {"weight": 60}],
                                                 "analysis_interval_s": 2.0})
    async with EventWatcher(stack.nats_url) as watcher:
        await publish_event(stack.nats_url, first, ci_of(stack))
        assert (await watcher.wait_for(ended(first.release_id), 60))[0]["type"] == "DeploymentSucceeded"

        await publish_event(stack.nats_url, second, ci_of(stack))
        await watcher.wait_type("StepStarted", 60, release_id=second.release_id, step_index=0)
        deployer = stack.services["deployer"]
        os.killpg(deployer.pid, signal.SIGKILL)
        await asyncio.to_thread(deployer.wait, 10)
        # The verdict arrives while the deployer is dead and waits in its durable consumer.
        await watcher.wait_type("StepVerdict", 30, release_id=second.release_id, step_index=0)
        await asyncio.to_thread(stack.restart, "deployer")

        outcome = (await watcher.wait_for(ended(second.release_id), 60))[0]
    assert outcome["type"] == "DeploymentSucceeded", outcome
    steps = watcher.matching(lambda _s, b: b.get("type") == "StepStarted" and b.get("release_id") == second.release_id)
    # The relay may publish a row again after the kill (at-least-once); JetStream drops the copy by
    # its Nats-Msg-Id, while this core subscriber sees both. A step started twice would have two ids.
    distinct = {step["event_id"]: step["step_index"] for step in steps}
    assert sorted(distinct.values()) == [0, 1]
    assert len(live_app_pids(stack.run_dir, "2.0.0")) == 1
    # The old version is retired after DeploymentSucceeded is announced, not before.
    await eventually(lambda: live_app_pids(stack.run_dir, "1.0.0") == [], 10, "1.0.0 retired")
    assert stack.dead_service() is None


async def test_deployer_killed_right_after_starting_an_instance_leaves_no_orphan(tmp_path: Path) -> None:
    artifact = build_sample("2.0.0", tmp_path / "artifacts")
    release = release_for(artifact, "2.0.0", strategy={"kind": "all-at-once", "analysis_interval_s": 2.0})
    name = "app.shop.prod.2_0_0"
    # The first deployer dies the moment it has started this process (once: libs/faults.py); the
    # unacknowledged approval comes back after the ack wait.
    stack = Stack(tmp_path / "stack", service_env={"deployer": {"SLIPWAY_CRASH_AT": f"spawned:local-driver:{name}"}})
    stack.start()
    operate(stack)
    try:
        async with EventWatcher(stack.nats_url) as watcher:
            await publish_event(stack.nats_url, release, ci_of(stack))
            deployer = stack.services["deployer"]
            assert await asyncio.to_thread(deployer.wait, 60) == -signal.SIGKILL
            [orphan] = [pgid for pgid, marked in marked_groups(stack.run_dir).items() if marked == name]
            assert await recorded_instances(stack) == {}, "the orphan must be one the database does not know"

            await asyncio.to_thread(stack.restart, "deployer")
            outcome = (await watcher.wait_for(ended(release.release_id), 60))[0]
        assert outcome["type"] == "DeploymentSucceeded", outcome
        assert not is_alive(orphan)
        running = [pgid for pgid, marked in marked_groups(stack.run_dir).items() if marked == name]
        assert running == [(await recorded_instances(stack))["2.0.0"]]
    finally:
        stack.stop()
    assert marked_groups(stack.run_dir) == {}


async def recorded_instances(stack: Stack) -> dict[str, int]:
    db = Database(f"sqlite+aiosqlite:///{stack.data_dir / 'deployer.db'}")
    try:
        async with db.transaction() as tx:
            return {i.version: as_instance(i.handle).pid for i in await store.all_instances(tx.session)}
    finally:
        await db.dispose()
