"""The deployer carrying out each strategy's plan on an in-memory deploy target: real NATS and a real SQLite
file, but no processes and no router. The MemoryTarget says which instances and traffic splits it was asked for."""

from pathlib import Path

import pytest

from contracts.events import ReleaseApproved, StepStarted
from libs.client import publish_event
from libs.settings import Settings
from libs.store import Database
from services.deployer import store
from services.deployer.app import build
from services.deployer.memory_target import MemoryTarget
from services.deployer.strategies.plan import Progress
from tests.conftest import running
from tests.support.deployer_events import approve, rollback_of, verdict_for
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

OUTCOMES = ("DeploymentSucceeded", "DeploymentFailed", "RollbackCompleted")
CANARY = {"kind": "canary", "steps": [{"weight": 10}, {"weight": 50}], "analysis_interval_s": 1.0}


def blue_green(keep_warm_s: float = 0.0) -> dict:
    return {"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": keep_warm_s}


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"not run by the memory target")
    return path


@pytest.fixture
def target() -> MemoryTarget:
    return MemoryTarget()


async def step_seen(watcher: EventWatcher, release_id: str, step_index: int) -> StepStarted:
    return StepStarted.model_validate(await watcher.wait_type("StepStarted", release_id=release_id,
                                                              step_index=step_index))


async def outcome(watcher: EventWatcher, release_id: str) -> dict:
    [body] = await watcher.wait_for(lambda _s, b: b.get("release_id") == release_id and b.get("type") in OUTCOMES)
    return body


async def ship(settings: Settings, watcher: EventWatcher, artifact: Path, version: str, **extra: object) -> str:
    """Approve a release of `version` and pass every step it asks to be judged; its release id."""
    approved = approve(release_for(artifact, version, **extra))
    await publish_event(settings.nats_url, approved)
    done = await pass_steps(settings, watcher, approved.release_id)
    assert done["type"] == "DeploymentSucceeded", done
    return approved.release_id


async def pass_steps(settings: Settings, watcher: EventWatcher, release_id: str, index: int = 0) -> dict:
    """Pass every step from `index` on as it starts; the release's outcome."""
    while True:
        [body] = await watcher.wait_for(lambda _s, b: b.get("release_id") == release_id and (
            b.get("type") in OUTCOMES or (b.get("type") == "StepStarted" and b.get("step_index") == index)))
        if body["type"] != "StepStarted":
            return body
        await publish_event(settings.nats_url, verdict_for(StepStarted.model_validate(body)))
        index += 1


async def rewind(settings: Settings, release_id: str, progress: Progress) -> None:
    """Put the deployment back to `progress`, as a deployer that died before recording what it did leaves it."""
    db = Database(settings.database_url_for("deployer"))
    try:
        async with db.transaction() as tx:
            await store.save_progress(tx.session, release_id, progress)
    finally:
        await db.dispose()


async def test_a_version_runs_as_its_pool_of_instances_and_a_canary_moves_traffic_by_pool(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0", instances=3)
        assert target.started == [("1.0.0", 0), ("1.0.0", 1), ("1.0.0", 2)]
        assert target.split("shop", "prod") == {"1.0.0": 100}

        approved = approve(release_for(artifact, "2.0.0", strategy=CANARY, instances=2))
        await publish_event(settings.nats_url, approved)
        first = await step_seen(watcher, approved.release_id, 0)
        assert (first.weight, first.step_count, first.metrics_url) == (10, 2, "http://memory/shop/prod/admin/metrics")
        assert target.live_instances("2.0.0") == [0, 1] and target.split("shop", "prod") == {"2.0.0": 10, "1.0.0": 90}
        await publish_event(settings.nats_url, verdict_for(first))
        second = await step_seen(watcher, approved.release_id, 1)
        assert target.split("shop", "prod") == {"2.0.0": 50, "1.0.0": 50}
        await publish_event(settings.nats_url, verdict_for(second))
        done = await outcome(watcher, approved.release_id)
        assert (done["type"], done["previous_version"]) == ("DeploymentSucceeded", "1.0.0")
        await eventually(lambda: target.live_instances("1.0.0") == [], 5, "the old pool retired")
        assert target.split("shop", "prod") == {"2.0.0": 100}
        assert sorted(target.stopped) == [("1.0.0", 0), ("1.0.0", 1), ("1.0.0", 2)]
        assert len(target.started) == 5, "no instance started twice"


async def test_a_canary_rolled_back_puts_all_traffic_on_the_stable_pool_and_stops_the_new_one(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0")
        approved = approve(release_for(artifact, "2.0.0", strategy=CANARY))
        await publish_event(settings.nats_url, approved)
        first = await step_seen(watcher, approved.release_id, 0)
        await publish_event(settings.nats_url, rollback_of(first))
        done = await outcome(watcher, approved.release_id)
        assert (done["type"], done["restored_version"]) == ("RollbackCompleted", "1.0.0")
        assert target.split("shop", "prod") == {"1.0.0": 100}  # announced once traffic is back
        await eventually(lambda: target.live_instances("2.0.0") == [], 5, "the new pool stopped after")
        assert target.live_instances("1.0.0") == [0]


async def test_a_bad_pool_that_fails_to_stop_after_its_rollback_is_stopped_by_the_next_round(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    target.failing_stops["2.0.0"] = 1
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0")
        approved = approve(release_for(artifact, "2.0.0", strategy=CANARY))
        await publish_event(settings.nats_url, approved)
        await publish_event(settings.nats_url, rollback_of(await step_seen(watcher, approved.release_id, 0)))
        assert (await outcome(watcher, approved.release_id))["type"] == "RollbackCompleted"
        await eventually(lambda: target.live_instances("2.0.0") == [], 5, "the bad pool stopped on a later round")
        assert target.failing_stops["2.0.0"] == 0, "the first stop did fail"


async def test_blue_green_smoke_tests_the_new_pool_switches_once_and_keeps_the_old_one_warm_after_success(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0", instances=2)
        approved = approve(release_for(artifact, "2.0.0", strategy=blue_green(keep_warm_s=1.5), instances=2))
        await publish_event(settings.nats_url, approved)
        started = await watcher.wait_type("DeploymentStarted", release_id=approved.release_id)
        assert (started["strategy"], started["steps"]) == ("blue-green", [100])
        step = await step_seen(watcher, approved.release_id, 0)
        assert step.weight == 100
        assert target.smoke_tested == ["2.0.0"]
        assert target.weights[("shop", "prod")][-2:] == [{"1.0.0": 100, "2.0.0": 0}, {"2.0.0": 100, "1.0.0": 0}]
        await publish_event(settings.nats_url, verdict_for(step))
        assert (await outcome(watcher, approved.release_id))["type"] == "DeploymentSucceeded"
        # Announced before the old pool goes: it stays warm, routable by a pinned request, for keep_warm_s.
        assert target.live_instances("1.0.0") == [0, 1]
        await eventually(lambda: target.live_instances("1.0.0") == [], 10, "the warm pool retired")
        assert target.split("shop", "prod") == {"2.0.0": 100}


async def test_blue_green_with_a_failing_smoke_test_never_gets_traffic(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    target.fail_smoke.add("2.0.0")
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0")
        approved = approve(release_for(artifact, "2.0.0", strategy=blue_green()))
        await publish_event(settings.nats_url, approved)
        failed = await outcome(watcher, approved.release_id)
        assert failed["type"] == "DeploymentFailed"
        assert "smoke test of 2.0.0" in failed["reason"] and "HTTP 500" in failed["reason"]
        assert all(split.get("2.0.0", 0) == 0 for split in target.weights[("shop", "prod")])
        assert target.split("shop", "prod") == {"1.0.0": 100} and target.live_instances("2.0.0") == []
        assert not watcher.matching(lambda _s, b: b.get("release_id") == approved.release_id
                                    and b.get("type") == "StepStarted")
        # The service is free for the next release.
        target.fail_smoke.clear()
        await ship(settings, watcher, artifact, "2.0.1", strategy=blue_green())


async def test_blue_green_rolled_back_after_the_switch_switches_back_to_the_warm_pool(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0", instances=2)
        approved = approve(release_for(artifact, "2.0.0", strategy=blue_green(), instances=2))
        await publish_event(settings.nats_url, approved)
        step = await step_seen(watcher, approved.release_id, 0)
        assert target.split("shop", "prod") == {"2.0.0": 100, "1.0.0": 0}
        await publish_event(settings.nats_url, rollback_of(step))
        assert (await outcome(watcher, approved.release_id))["type"] == "RollbackCompleted"
        assert target.split("shop", "prod") == {"1.0.0": 100}
        await eventually(lambda: target.live_instances("2.0.0") == [], 5, "the new pool stopped after")
        assert target.live_instances("1.0.0") == [0, 1]
        assert target.started.count(("1.0.0", 0)) == 1, "the old pool was switched back to, not started again"


async def test_an_instance_that_fails_to_start_fails_the_release_and_routes_nothing_to_it(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    target.fail_starts.add("2.0.0")
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0")
        approved = approve(release_for(artifact, "2.0.0", strategy=CANARY, instances=2))
        await publish_event(settings.nats_url, approved)
        failed = await outcome(watcher, approved.release_id)
        assert failed["type"] == "DeploymentFailed" and "failed to become ready" in failed["reason"]
        assert target.split("shop", "prod") == {"1.0.0": 100}


ROLLING = {"kind": "rolling", "analysis_interval_s": 1.0, "max_surge": 1, "max_unavailable": 0}


async def rolling_over_three(settings: Settings, watcher: EventWatcher, artifact: Path) -> ReleaseApproved:
    """1.0.0 live as three instances, and a rolling release of 2.0.0 approved."""
    await ship(settings, watcher, artifact, "1.0.0", instances=3)
    approved = approve(release_for(artifact, "2.0.0", strategy=ROLLING, instances=3))
    await publish_event(settings.nats_url, approved)
    return approved


async def test_rolling_replaces_the_pool_batch_by_batch_never_below_its_size(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        approved = await rolling_over_three(settings, watcher, artifact)
        started = await watcher.wait_type("DeploymentStarted", release_id=approved.release_id)
        assert (started["strategy"], started["steps"]) == ("rolling", [33, 67, 100])
        for index in range(3):
            step = await step_seen(watcher, approved.release_id, index)
            up = (len(target.live_instances("1.0.0")), len(target.live_instances("2.0.0")))
            assert up == (2 - index, index + 1), f"batch {index}: one old instance replaced by one new"
            await publish_event(settings.nats_url, verdict_for(step))
        assert (await outcome(watcher, approved.release_id))["type"] == "DeploymentSucceeded"
    assert target.weights[("shop", "prod")][-6:] == [
        {"2.0.0": 25, "1.0.0": 75}, {"2.0.0": 33, "1.0.0": 67},
        {"2.0.0": 50, "1.0.0": 50}, {"2.0.0": 67, "1.0.0": 33},
        {"2.0.0": 75, "1.0.0": 25}, {"2.0.0": 100},
    ]
    assert target.live_instances("2.0.0") == [0, 1, 2] and target.live_instances("1.0.0") == []


async def test_a_rolling_release_failing_a_batch_restores_the_replaced_instances(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        approved = await rolling_over_three(settings, watcher, artifact)
        await publish_event(settings.nats_url, verdict_for(await step_seen(watcher, approved.release_id, 0)))
        second = await step_seen(watcher, approved.release_id, 1)
        assert target.live_instances("1.0.0") == [2]
        await publish_event(settings.nats_url, rollback_of(second))
        done = await outcome(watcher, approved.release_id)
        assert (done["type"], done["restored_version"]) == ("RollbackCompleted", "1.0.0")
        assert target.live_instances("1.0.0") == [0, 1, 2] and target.split("shop", "prod") == {"1.0.0": 100}
        await eventually(lambda: target.live_instances("2.0.0") == [], 5, "the new pool stopped after")


async def test_immutable_moves_traffic_to_a_fresh_healthy_set_and_destroys_the_old_one(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    immutable = {"kind": "immutable", "analysis_interval_s": 1.0}
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0", instances=2)
        await ship(settings, watcher, artifact, "2.0.0", strategy=immutable, instances=2)
        await eventually(lambda: target.live_instances("1.0.0") == [], 5, "the old set destroyed")
        assert target.live_instances("2.0.0") == [0, 1] and target.split("shop", "prod") == {"2.0.0": 100}

        target.fail_health.add("3.0.0")
        approved = approve(release_for(artifact, "3.0.0", strategy=immutable, instances=2))
        await publish_event(settings.nats_url, approved)
        failed = await outcome(watcher, approved.release_id)
        assert failed["type"] == "DeploymentFailed" and "health check of 3.0.0" in failed["reason"]
        assert target.live_instances("3.0.0") == [] and target.split("shop", "prod") == {"2.0.0": 100}
        assert all("3.0.0" not in split for split in target.weights[("shop", "prod")])


@pytest.mark.parametrize("strategy", [
    CANARY, blue_green(keep_warm_s=0.5), ROLLING, {"kind": "immutable", "analysis_interval_s": 1.0},
], ids=lambda strategy: strategy["kind"])
async def test_every_strategy_repeats_safely_what_a_crash_left_unrecorded_and_starts_no_instance_twice(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget, strategy: dict
) -> None:
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "1.0.0", instances=2)
        approved = approve(release_for(artifact, "2.0.0", strategy=strategy, instances=2))
        await publish_event(settings.nats_url, approved)
        await step_seen(watcher, approved.release_id, 0)
        split = target.split("shop", "prod")
    # As if the deployer had died having done everything up to its first verdict but recorded none of it.
    await rewind(settings, approved.release_id, Progress(cursor=0))

    async with running(build(settings, target=target)):
        steps = await watcher.wait_for(lambda _s, b: b.get("release_id") == approved.release_id
                                       and b.get("type") == "StepStarted", count=2)
        assert target.split("shop", "prod") == split
        await publish_event(settings.nats_url, verdict_for(StepStarted.model_validate(steps[-1])))
        body = await pass_steps(settings, watcher, approved.release_id, index=1)
        assert body["type"] == "DeploymentSucceeded", body
        await eventually(lambda: target.live_instances("1.0.0") == [], 5, "the old pool retired")
    new_starts = [start for start in target.started if start[0] == "2.0.0"]
    assert sorted(new_starts) == [("2.0.0", 0), ("2.0.0", 1)], "each new instance started once"
    assert target.live_instances("2.0.0") == [0, 1] and target.split("shop", "prod") == {"2.0.0": 100}
