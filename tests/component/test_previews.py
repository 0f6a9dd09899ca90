"""Preview environments in the deployer (real nats-server, real SQLite, real sample-app processes): the quota of
concurrent previews refuses one more, and a preview past its ttl is torn down and recorded."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.local import processes
from services.deployer.local.driver import stop_all
from tests.component.test_deployer import approve, deploy_live, outcome, recorded
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher
from tests.support.yaml_files import copy_of

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
        _, instances = await recorded(preview_settings)
        pid = instances["1.0.0"].pid

        second = approve(release_for(artifact, "1.0.0", environment="preview-pr-2"))
        await publish_event(preview_settings.nats_url, second)
        refused = await outcome(watcher, second.release_id)
        assert refused["type"] == "DeploymentFailed"
        assert "1 preview(s) of preview are alive (preview-pr-1), at most 1 at once" in refused["reason"]

        gone = await watcher.wait_type("PreviewExpired", environment="preview-pr-1", timeout=15)
        assert (gone["template"], gone["ttl_s"], gone["stopped"]) == ("preview", 4, ["shop@1.0.0"])
        assert first.environment == "preview-pr-1"
        await eventually(lambda: not processes.is_alive(pid), 10, f"preview instance {pid} exiting")
        _, left = await recorded(preview_settings)
        assert left == {}

        # The place is free again.
        third = approve(release_for(artifact, "1.0.0", environment="preview-pr-3"))
        await publish_event(preview_settings.nats_url, third)
        assert (await watcher.wait_type("StepStarted", release_id=third.release_id))["environment"] == "preview-pr-3"
