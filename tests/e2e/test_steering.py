"""People steering releases through the CLI, with real processes and traffic through the router: a canary paused
then promoted; a blue-green release that succeeded, aborted while its old pool is warm and switched back to it."""

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from libs.client import publish_event
from services.deployer.local.processes import marked_groups
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of, slipway
from tests.e2e.test_held_release import row
from tests.e2e.test_strategies import TERMINAL, live_v1, load_on, traffic_after
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def cli(stack: Stack, *args: str):  # noqa: ANN201
    return await asyncio.to_thread(slipway, *args, "--nats-url", stack.nats_url, "--as", "ana",
                                   data_dir=stack.data_dir, timeout=60)


def developer_of_payments(stack: Stack) -> None:
    person = slipway("identity", "create", "ana", "--roles", "developer", "--team", "payments", data_dir=stack.data_dir)
    assert person.returncode == 0, person.stdout + person.stderr


async def test_a_canary_paused_from_the_cli_holds_its_weights_then_promoted_takes_all_traffic(
    stack: Stack, tmp_path: Path
) -> None:
    developer_of_payments(stack)
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    canary = {"kind": "canary", "steps": [{"weight": 10}, {"weight": 20}, {"weight": 30}, {"weight": 40}],
              "analysis_interval_s": 2.0}
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        release = release_for(v2, "2.0.0", strategy=canary, rollback_triggers={"min_requests": 5})
        rid = release.release_id
        async with load_on(router_url) as load:
            await publish_event(stack.nats_url, release, ci_of(stack))
            await watcher.wait_type("StepStarted", 30, release_id=rid, step_index=0)
            paused = await cli(stack, "pause", rid, "--reason", "watching the dashboards")
            assert paused.returncode == 0 and "paused at step" in paused.stdout, paused.stdout + paused.stderr
            note = await watcher.wait_type("ReleasePaused", 10, release_id=rid)
            step = note["step_index"]  # the step being judged when the pause arrived
            assert note["actor"] == "person:ana"
            verdict = await watcher.wait_type("StepVerdict", 30, release_id=rid, step_index=step)
            assert verdict["verdict"] == "pass", verdict
            await eventually(lambda: row(stack, "deployer", "SELECT step_index FROM holds WHERE release_id = ?", rid),
                             10, "the deployer holding the passed step")
            assert not watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") == "StepStarted"
                                        and b.get("step_index") == step + 1), "a passing verdict did not move it on"
            promoted = await cli(stack, "promote", rid, "--comment", "looks good")
            assert promoted.returncode == 0 and "2.0.0 now takes all traffic" in promoted.stdout, promoted.stdout
            [outcome] = await watcher.wait_for(lambda _s, b: b.get("release_id") == rid and b.get("type") in TERMINAL)
            assert (outcome["type"], outcome["actor"]) == ("DeploymentSucceeded", "person:ana"), outcome
            after = await traffic_after(load, "the promotion")
        assert load.served_by(after) == {"2.0.0"} and load.failures() == []
        [announced] = watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") == "ReleasePromoted")
        assert (announced["skipped_steps"], announced["comment"]) == (3 - step, "looks good")


async def test_a_canary_step_that_asks_for_a_person_holds_its_traffic_until_resumed_from_the_cli(
    stack: Stack, tmp_path: Path
) -> None:
    developer_of_payments(stack)
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    canary = {"kind": "canary", "steps": [{"weight": 30, "pause": True}, {"weight": 100}], "analysis_interval_s": 1.0}
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        release = release_for(v2, "2.0.0", strategy=canary, rollback_triggers={"min_requests": 5})
        rid = release.release_id
        async with load_on(router_url) as load:
            await publish_event(stack.nats_url, release, ci_of(stack))
            paused = await watcher.wait_type("ReleasePaused", 30, release_id=rid)
            assert (paused["actor"], paused["step_index"]) == ("deployer", 0), paused
            held = await traffic_after(load, "the pause")
            assert load.served_by(held) == {"1.0.0", "2.0.0"}, "30% stays on 2.0.0 while it waits"
            assert not watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") in TERMINAL)
            resumed = await cli(stack, "resume", rid, "--comment", "checked the dashboards")
            assert resumed.returncode == 0 and "step 2 of 2 started" in resumed.stdout, resumed.stdout + resumed.stderr
            [outcome] = await watcher.wait_for(lambda _s, b: b.get("release_id") == rid and b.get("type") in TERMINAL)
            assert outcome["type"] == "DeploymentSucceeded", outcome
            after = await traffic_after(load, "the last step")
        assert load.served_by(after) == {"2.0.0"} and load.failures() == []


def instance_groups(stack: Stack, version: str) -> set[int]:
    return {group for group, name in marked_groups(stack.run_dir).items()
            if name.startswith("app.") and name.split(".")[3] == version.replace(".", "_")}


async def test_a_blue_green_release_aborted_while_its_old_pool_is_warm_switches_back_without_starting_it(
    stack: Stack, tmp_path: Path
) -> None:
    developer_of_payments(stack)
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        warm_pool = instance_groups(stack, "1.0.0")
        release = release_for(v2, "2.0.0", instances=2, rollback_triggers={"min_requests": 5},
                              strategy={"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": 60.0})
        rid = release.release_id
        async with load_on(router_url) as load:
            await publish_event(stack.nats_url, release, ci_of(stack))
            [outcome] = await watcher.wait_for(lambda _s, b: b.get("release_id") == rid and b.get("type") in TERMINAL,
                                               60)
            assert outcome["type"] == "DeploymentSucceeded" and outcome["warm_until"], outcome
            switched = await traffic_after(load, "the switch")
            assert load.served_by(switched) == {"2.0.0"}
            await eventually(lambda: row(stack, "rollback-controller",
                                         "SELECT outcome FROM releases WHERE release_id = ?", rid) == ("succeeded",),
                             10, "the rollback-controller knowing it succeeded")
            aborted = await cli(stack, "abort", rid, "--reason", "late complaints")
            assert aborted.returncode == 0, aborted.stdout + aborted.stderr
            [restored] = await watcher.wait_for(lambda _s, b: b.get("release_id") == rid
                                                and b.get("type") == "RollbackCompleted", 30)
            back = await traffic_after(load, "the switch back")
        assert load.served_by(back) == {"1.0.0"} and load.failures() == []
        assert instance_groups(stack, "1.0.0") == warm_pool, "the warm pool took the traffic back: no process started"
        await eventually(lambda: not instance_groups(stack, "2.0.0"), 15, "the new pool retired")
        taken = datetime.fromisoformat(restored["occurred_at"]) - datetime.fromisoformat(restored["failed_at"])
        print(f"\n[blue-green warm] abort to traffic restored: {taken.total_seconds() * 1000:.0f} ms")
