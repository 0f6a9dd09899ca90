"""Preview environments in the deployer (real nats-server, real SQLite, real sample-app processes): the quota of
concurrent previews refuses one more, and a preview past its ttl is torn down, router included, and recorded; a
teardown interrupted is finished by the next deployer."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.settings import Settings
from libs.store import Database
from services.deployer import store
from services.deployer.app import build
from services.deployer.local import processes
from services.deployer.local.driver import stop_all
from services.deployer.previews import previews
from tests.component.test_deployer import approve, deploy_live, outcome, recorded
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher
from tests.support.yaml_files import copy_of

async def recorded_handles(settings: Settings) -> tuple[list, list]:
    """The routers and instances the deployer's SQLite file records."""
    db = Database(settings.database_url_for("deployer"))
    try:
        async with db.transaction() as tx:
            return await store.all_routers(tx.session), await store.all_instances(tx.session)
    finally:
        await db.dispose()


@pytest.fixture
def preview_settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    envs = copy_of("environments", tmp_path)
    template = envs / "preview.yaml"
    template.write_text(template.read_text().replace("ttl: 4h", "ttl: 4s").replace("max_concurrent: 3",
                                                                                  "max_concurrent: 1"))
    try:
        yield settings.model_copy(update={"environments_dir": envs, "drift_interval_s": 0.3})
    finally:
        stop_all(settings.data_dir / "run")


async def test_one_preview_at_a_time_and_it_is_torn_down_after_its_ttl(
    preview_settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(preview_settings)):
        first = await deploy_live(preview_settings, watcher, artifact, "1.0.0", environment="preview-pr-1")
        router, instances = await recorded(preview_settings)
        pid = instances["1.0.0"].pid

        second = approve(release_for(artifact, "1.0.0", environment="preview-pr-2"))
        await publish_event(preview_settings.nats_url, second)
        refused = await outcome(watcher, second.release_id)
        assert refused["type"] == "DeploymentFailed"
        assert "1 preview(s) of preview are alive (preview-pr-1), at most 1 at once" in refused["reason"]

        gone = await watcher.wait_type("PreviewExpired", environment="preview-pr-1", timeout=15)
        assert (gone["template"], gone["ttl_s"], gone["stopped"], gone["routers_stopped"]) == (
            "preview", 4, ["shop@1.0.0"], ["shop"])
        assert first.environment == "preview-pr-1"
        for stopped in (pid, router.pid):
            await eventually(lambda: not processes.is_alive(stopped), 10, f"preview process {stopped} exiting")
        assert await recorded_handles(preview_settings) == ([], [])

        # The place is free again.
        third = approve(release_for(artifact, "1.0.0", environment="preview-pr-3"))
        await publish_event(preview_settings.nats_url, third)
        assert (await watcher.wait_type("StepStarted", release_id=third.release_id))["environment"] == "preview-pr-3"


async def test_a_teardown_interrupted_is_finished_by_the_next_deployer_and_recorded_once_whole(
    preview_settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    from services.deployer.memory_target import MemoryTarget
    from tests.component.test_deployer_plans import ship

    artifact = build_sample("1.0.0", tmp_path / "dist")
    target = MemoryTarget()
    async with running(build(preview_settings, target=target)):
        await ship(preview_settings, watcher, artifact, "1.0.0", environment="preview-pr-1")
        target.failing_stops["1.0.0"] = 10**6  # the instance will not stop: the teardown begins and cannot end

        db = Database(preview_settings.database_url_for("deployer"))

        async def teardown_began() -> bool:
            async with db.transaction() as tx:
                return bool(await tx.session.scalar(select(previews.c.teardown)))

        try:
            await eventually(teardown_began, 15, "the teardown of preview-pr-1 to begin")
        finally:
            await db.dispose()
    assert not watcher.matching(lambda _s, body: body.get("type") == "PreviewExpired")
    assert target.routers_stopped == []

    target.failing_stops.clear()
    async with running(build(preview_settings, target=target)):
        gone = await watcher.wait_type("PreviewExpired", environment="preview-pr-1", timeout=15)
    assert (gone["stopped"], gone["routers_stopped"]) == (["shop@1.0.0"], ["shop"])
    assert target.stopped == [("1.0.0", 0)] and target.routers_stopped == [("shop", "preview-pr-1")]
    assert await recorded_handles(preview_settings) == ([], [])
    assert len(watcher.matching(lambda _s, body: body.get("type") == "PreviewExpired")) == 1
