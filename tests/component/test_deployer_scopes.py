"""The deployer carrying out regional waves and pilot groups on an in-memory deploy target: real NATS and a real
SQLite file, the shipped environment declarations (prod: eu-west 2, us-east 2), no processes."""

from pathlib import Path

from contracts.events import ReleaseApproved, StepStarted
from libs.client import publish_event
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.handlers import REGION_SLOTS
from services.deployer.memory_target import MemoryTarget
from services.deployer.strategies.plan import Progress
from services.deployer.target import PilotRule
from tests.component import test_deployer_plans
from tests.component.test_deployer_plans import outcome, pass_steps, rewind, step_seen
from tests.conftest import running
from tests.support.deployer_events import approve, rollback_of, verdict_for
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

EAST = REGION_SLOTS  # us-east is the second region of prod: its slots start there
CANARY = {"kind": "canary", "steps": [{"weight": 50}], "analysis_interval_s": 1.0}

# The plan tests' fixtures: an artifact the target never runs, and the MemoryTarget the test inspects.
artifact, target = test_deployer_plans.artifact, test_deployer_plans.target


def regional(version: str, artifact: Path, bake_s: float = 0.2, **extra: object) -> ReleaseApproved:
    return approve(release_for(artifact, version, strategy=CANARY, instances=None,
                               scope={"kind": "regional", "bake_s": bake_s}, **extra))


async def first_regional_release(settings: Settings, watcher: EventWatcher, artifact: Path) -> None:
    approved = regional("1.0.0", artifact)
    await publish_event(settings.nats_url, approved)
    assert (await pass_steps(settings, watcher, approved.release_id))["type"] == "DeploymentSucceeded"


async def in_second_wave(settings: Settings, watcher: EventWatcher, artifact: Path) -> tuple[ReleaseApproved, StepStarted]:
    """1.0.0 live in both regions, 2.0.0 through its first wave (eu-west): its release and its step in us-east."""
    await first_regional_release(settings, watcher, artifact)
    approved = regional("2.0.0", artifact)
    await publish_event(settings.nats_url, approved)
    await publish_event(settings.nats_url, verdict_for(await step_seen(watcher, approved.release_id, 0)))
    return approved, await step_seen(watcher, approved.release_id, 1)


async def test_waves_go_region_by_region_in_declared_order_with_the_declared_pools(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        await first_regional_release(settings, watcher, artifact)
        assert target.live_instances("1.0.0", "eu-west") == [0, 1]
        assert target.live_instances("1.0.0", "us-east") == [EAST, EAST + 1]

        approved = regional("2.0.0", artifact)
        await publish_event(settings.nats_url, approved)
        started = await watcher.wait_type("DeploymentStarted", release_id=approved.release_id)
        assert (started["scope"], started["regions"], started["instances"], started["instances_from"], started["steps"]) \
            == ("regional", ["eu-west", "us-east"], {"eu-west": 2, "us-east": 2}, "declaration", [50, 50])
        west = await step_seen(watcher, approved.release_id, 0)
        assert (west.region, west.step_count, west.metrics_url) == (
            "eu-west", 2, "http://memory/shop/prod/eu-west/admin/metrics")
        assert target.split("shop", "prod", "eu-west") == {"2.0.0": 50, "1.0.0": 50}
        assert target.split("shop", "prod", "us-east") == {"1.0.0": 100}, "the next region waits its turn"
        assert target.live_instances("2.0.0", "us-east") == []

        await publish_event(settings.nats_url, verdict_for(west))
        east = await step_seen(watcher, approved.release_id, 1)
        assert (east.region, east.router_url) == ("us-east", "http://memory/shop/prod/us-east")
        assert target.split("shop", "prod", "eu-west") == {"2.0.0": 100}
        assert target.split("shop", "prod", "us-east") == {"2.0.0": 50, "1.0.0": 50}
        assert target.live_instances("1.0.0", "eu-west") == [0, 1], "old pools are retired only at the end"

        await publish_event(settings.nats_url, verdict_for(east))
        assert (await outcome(watcher, approved.release_id))["type"] == "DeploymentSucceeded"
        await eventually(lambda: target.live_instances("1.0.0") == [], 5, "every region's old pool retired")
        assert target.live_instances("2.0.0", "us-east") == [EAST, EAST + 1]


async def test_a_failing_wave_rolls_back_itself_and_every_wave_before_it(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        approved, east = await in_second_wave(settings, watcher, artifact)
        await publish_event(settings.nats_url, rollback_of(east))
        done = await outcome(watcher, approved.release_id)
        assert (done["type"], done["regions"], done["restored_version"]) == (
            "RollbackCompleted", ["us-east", "eu-west"], "1.0.0")
        assert target.split("shop", "prod", "eu-west") == {"1.0.0": 100}, "the wave that had passed is undone too"
        assert target.split("shop", "prod", "us-east") == {"1.0.0": 100}
        await eventually(lambda: target.live_instances("2.0.0") == [], 5, "the new pools stopped in both regions")
        assert target.live_instances("1.0.0", "eu-west") == [0, 1]
        assert target.live_instances("1.0.0", "us-east") == [EAST, EAST + 1]


async def test_a_deployer_restarted_mid_wave_resumes_it_without_starting_an_instance_twice(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        approved, _ = await in_second_wave(settings, watcher, artifact)
    # As if the deployer had died in the second wave having recorded nothing since the first wave's verdict.
    await rewind(settings, approved.release_id, Progress(cursor=4))  # EnterRegion(eu-west), StartPool, Shift, Await

    async with running(build(settings, target=target)):
        steps = await watcher.wait_for(lambda _s, b: b.get("release_id") == approved.release_id
                                       and b.get("type") == "StepStarted" and b.get("step_index") == 1, count=2)
        assert steps[-1]["region"] == "us-east"
        await publish_event(settings.nats_url, verdict_for(StepStarted.model_validate(steps[-1])))
        body = await outcome(watcher, approved.release_id)
        assert body["type"] == "DeploymentSucceeded", body
        await eventually(lambda: target.live_instances("1.0.0") == [], 5, "the old pools retired")
    new_starts = sorted(start for start in target.started if start[0] == "2.0.0")
    assert new_starts == [("2.0.0", 0), ("2.0.0", 1), ("2.0.0", EAST), ("2.0.0", EAST + 1)], "each started once"


async def test_a_regional_release_into_an_undeclared_environment_fails_with_the_reason(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        approved = regional("1.0.0", artifact, environment="nowhere")
        await publish_event(settings.nats_url, approved)
        done = await outcome(watcher, approved.release_id)
        assert done["type"] == "DeploymentFailed" and "need a declaration of nowhere" in done["reason"], done
        assert target.started == []


async def test_a_pilot_group_is_routed_and_judged_first_then_the_release_widens(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    pilot = {"kind": "pilot", "header": "X-Beta", "cookie": "beta", "analysis_interval_s": 0.5}
    async with running(build(settings, target=target)):
        first = approve(release_for(artifact, "1.0.0"))
        await publish_event(settings.nats_url, first)
        assert (await pass_steps(settings, watcher, first.release_id))["type"] == "DeploymentSucceeded"

        approved = approve(release_for(artifact, "2.0.0", strategy=CANARY, scope=pilot))
        await publish_event(settings.nats_url, approved)
        group = await step_seen(watcher, approved.release_id, 0)
        assert (group.pilot, group.weight, group.analysis_interval_s, group.step_count) == (True, 0, 0.5, 2)
        assert target.split("shop", "prod") == {"1.0.0": 100, "2.0.0": 0}, "the public stays on stable"
        assert target.pilots[("shop", "prod")] == PilotRule("2.0.0", "X-Beta", "beta")

        await publish_event(settings.nats_url, verdict_for(group))
        widened = await step_seen(watcher, approved.release_id, 1)
        assert (widened.pilot, widened.weight, widened.analysis_interval_s) == (False, 50, 1.0)
        await publish_event(settings.nats_url, verdict_for(widened))
        assert (await outcome(watcher, approved.release_id))["type"] == "DeploymentSucceeded"
        assert target.pilots[("shop", "prod")] is None, "no rule outlives its release"
        assert target.split("shop", "prod") == {"2.0.0": 100}


async def test_a_pilot_group_rolled_back_loses_its_rule_and_the_new_pool(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget
) -> None:
    async with running(build(settings, target=target)):
        first = approve(release_for(artifact, "1.0.0"))
        await publish_event(settings.nats_url, first)
        assert (await pass_steps(settings, watcher, first.release_id))["type"] == "DeploymentSucceeded"
        approved = approve(release_for(artifact, "2.0.0", strategy=CANARY, scope={"kind": "pilot"}))
        await publish_event(settings.nats_url, approved)
        await publish_event(settings.nats_url, rollback_of(await step_seen(watcher, approved.release_id, 0)))
        done = await outcome(watcher, approved.release_id)
        assert (done["type"], done["regions"]) == ("RollbackCompleted", [])
        assert target.pilots[("shop", "prod")] is None and target.split("shop", "prod") == {"1.0.0": 100}
        await eventually(lambda: target.live_instances("2.0.0") == [], 5, "the new pool stopped")
