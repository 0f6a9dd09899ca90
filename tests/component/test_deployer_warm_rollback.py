"""A blue-green release rolled back after it succeeded (real NATS, a real SQLite file, the in-memory target): while
its old pool is kept warm the rollback is a switch back to it, with no instance started; once the old pool may have
been retired the new version stays live and the rollback is ignored."""

from datetime import datetime
from pathlib import Path

from contracts.events import StepStarted
from libs.client import publish_event
from libs.settings import Settings
from services.deployer import store
from libs.artifact_sources import ArtifactSources
from libs.runtime import build_runtime
from services.deployer.app import METADATAS, build
from services.deployer.artifacts import ArtifactStore
from services.deployer.handlers import ON_ROLLBACK, Handlers
from services.deployer.memory_target import MemoryTarget
from tests.component.test_deployer import in_deployer_db, processed_by_deployer
from tests.component.test_deployer_plans import (  # noqa: F401 - artifact and target are fixtures
    artifact, blue_green, outcome, ship, step_seen, target,
)
from tests.conftest import running
from tests.support.deployer_events import approve, rollback_of, verdict_for
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


async def blue_green_succeeded(settings: Settings, watcher: EventWatcher, artifact: Path, keep_warm_s: float
                               ) -> tuple[StepStarted, dict]:
    """1.0.0 live as two instances, then 2.0.0 by blue-green switched to and judged healthy."""
    await ship(settings, watcher, artifact, "1.0.0", instances=2)
    approved = approve(release_for(artifact, "2.0.0", strategy=blue_green(keep_warm_s=keep_warm_s), instances=2))
    await publish_event(settings.nats_url, approved)
    step = await step_seen(watcher, approved.release_id, 0)
    await publish_event(settings.nats_url, verdict_for(step))
    succeeded = await outcome(watcher, approved.release_id)
    assert succeeded["type"] == "DeploymentSucceeded", succeeded
    return step, succeeded


async def test_a_rollback_while_the_old_pool_is_warm_switches_back_to_it_and_retires_the_new_one(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget  # noqa: F811
) -> None:
    async with running(build(settings, target=target)):
        step, succeeded = await blue_green_succeeded(settings, watcher, artifact, keep_warm_s=60)
        warm_until = datetime.fromisoformat(succeeded["warm_until"])
        assert 50 < (warm_until - datetime.fromisoformat(succeeded["occurred_at"])).total_seconds() <= 60
        assert target.live_instances("1.0.0") == [0, 1] and target.split("shop", "prod") == {"2.0.0": 100, "1.0.0": 0}

        late = rollback_of(step, "a late failing verdict: error rate 40%")
        await publish_event(settings.nats_url, late)
        [done] = await watcher.wait_for(lambda _s, b: b.get("type") == "RollbackCompleted"
                                        and b.get("release_id") == step.release_id)
        assert (done["restored_version"], done["root_cause"]) == ("1.0.0", "a late failing verdict: error rate 40%")
        assert target.split("shop", "prod") == {"1.0.0": 100}, "traffic back on the warm pool when announced"
        await eventually(lambda: target.live_instances("2.0.0") == [], 5, "the new pool retired after")
        assert target.live_instances("1.0.0") == [0, 1]
        assert target.started.count(("1.0.0", 0)) == 1 and target.started.count(("1.0.0", 1)) == 1, "no process start"
        assert await in_deployer_db(settings, lambda tx: store.live_version(tx.session, "shop", "prod")) == "1.0.0"
        deployment = await in_deployer_db(settings, lambda tx: store.get_deployment(tx.session, step.release_id))
        assert deployment.status.value == "rolled_back"

    # A restarted deployer does not go back to retiring the old pool: the plan walks the switch back, done.
    async with running(build(settings, target=target)):
        await ship(settings, watcher, artifact, "2.0.1")  # the service is free for the next release
        await eventually(lambda: target.live_instances("1.0.0") == [], 5, "the restored pool replaced as usual")


async def test_once_the_old_pool_was_retired_a_rollback_leaves_the_new_version_live(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget  # noqa: F811
) -> None:
    async with running(build(settings, target=target)):
        step, _ = await blue_green_succeeded(settings, watcher, artifact, keep_warm_s=0.5)
        await eventually(lambda: target.live_instances("1.0.0") == [], 10, "the warm pool retired")
        late = rollback_of(step)
        await publish_event(settings.nats_url, late)
        await eventually(lambda: processed_by_deployer(settings, late.event_id, ON_ROLLBACK), 10, "the rollback read")
        assert not watcher.matching(lambda _s, b: b.get("type") == "RollbackCompleted")
        assert target.split("shop", "prod") == {"2.0.0": 100} and target.live_instances("2.0.0") == [0, 1]


async def test_a_plan_the_supervision_found_due_just_before_its_old_pool_was_kept_warm_waits_all_the_same(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget  # noqa: F811
) -> None:
    """The supervision loop lists the plans that go on by themselves, then carries each on once it holds its service's
    lock. A blue-green plan listed between its success and the start of its keep-warm wait (both recorded by the
    handler holding that lock) used to be carried on past the wait: the old pool was retired at once, and a late
    rollback found nothing warm to switch back to (seen in CI as an abort that never completed)."""
    async with running(build(settings, target=target)):
        step, _ = await blue_green_succeeded(settings, watcher, artifact, keep_warm_s=60)
        # The supervision's side of that race, as it resumes the plan it listed a moment before the wait began.
        supervision = build_runtime("deployer", settings, METADATAS)
        try:
            artifacts = ArtifactStore(settings.data_dir / "deployer-artifacts", ArtifactSources.from_settings(settings))
            late = Handlers(supervision, target, artifacts)
            await late.resume_plan(step.release_id)
        finally:
            await supervision.db.dispose()
        assert target.live_instances("1.0.0") == [0, 1], "the old pool is kept warm until its wait ends"

        await publish_event(settings.nats_url, rollback_of(step, "aborted while warm"))
        [done] = await watcher.wait_for(lambda _s, b: b.get("type") == "RollbackCompleted"
                                        and b.get("release_id") == step.release_id)
        assert done["restored_version"] == "1.0.0" and target.split("shop", "prod") == {"1.0.0": 100}
